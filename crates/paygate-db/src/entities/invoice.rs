//! `invoices`: the latest known state of each Stripe invoice, per company and mode (issue 19).
//! `status` is Stripe's (draft, open, paid, uncollectible, void).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    pub stripe_invoice_id: String,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub number: Option<String>,
    pub status: String,
    pub currency: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub attempt_count: i32,
    pub next_payment_attempt: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub hosted_invoice_url: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub customer_email: Option<String>,
    pub billing_reason: Option<String>,
    pub stripe_created: i64,
    /// `created` of the newest event applied (forward-only guard).
    pub last_event_created: i64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
