//! `auto_refunds`: the claim of the one automatic refund of a payment warned of fraud.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auto_refunds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    /// The warned charge: unique per company and mode, so one automatic refund per payment.
    pub charge_id: String,
    /// The warning that asked for it.
    pub warning_id: String,
    /// `claimed` (being requested), `refunded` or `not_refundable`.
    pub status: String,
    pub refund_id: Option<String>,
    /// Stripe's refusal, when it would not refund.
    pub error: Option<String>,
    /// While `claimed`, until when (ms) the claimer holds it; after that another may retry.
    pub lease_until: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
