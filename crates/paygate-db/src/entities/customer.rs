//! `customers`: the latest known state of each Stripe customer, per company and mode (issue 19).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    pub stripe_customer_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub email: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub name: Option<String>,
    /// The first of the customer's `preferred_locales`, as Stripe sends it (e.g. `it`, `de-CH`).
    pub locale: Option<String>,
    pub deleted: bool,
    pub stripe_created: i64,
    /// `created` of the newest event applied (forward-only guard).
    pub last_event_created: i64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
