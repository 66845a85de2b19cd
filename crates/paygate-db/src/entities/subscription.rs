//! `subscriptions`: the latest known state of each Stripe subscription, per company and mode
//! (issue 19). `status` is Stripe's (incomplete, incomplete_expired, trialing, active, past_due,
//! canceled, unpaid, paused).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    pub stripe_subscription_id: String,
    pub stripe_customer_id: String,
    pub status: String,
    /// JSON array of `{id, price, product, quantity, unit_amount, currency, interval}`.
    #[sea_orm(column_type = "Text")]
    pub items_json: String,
    pub currency: Option<String>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// `pause_collection.behavior` while collection is paused.
    pub pause_collection: Option<String>,
    pub latest_invoice_id: Option<String>,
    pub stripe_created: i64,
    /// `created` of the newest event applied (forward-only guard).
    pub last_event_created: i64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
