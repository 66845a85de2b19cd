//! `refunds`: the latest known state of each Stripe refund (forward only).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    /// Stripe's `re_…` (or `pyr_…`).
    pub stripe_refund_id: String,
    pub charge_id: Option<String>,
    pub payment_intent_id: Option<String>,
    /// The order, when the refund was made through Paygate (others are found by payment).
    pub order_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub reason: Option<String>,
    pub failure_reason: Option<String>,
    /// The idempotency key the refund was requested from Stripe with, through Paygate.
    pub request_key: Option<String>,
    pub state_created: i64,
    pub state_rank: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
