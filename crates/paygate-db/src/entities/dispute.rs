//! `disputes`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "disputes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub stripe_id: String,
    pub livemode: bool,
    pub charge_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub evidence_due_by: Option<i64>,
    pub funds_withdrawn: i64,
    pub funds_reinstated: i64,
    pub state_created: i64,
    pub state_rank: i32,
    pub created_at: i64,
    pub updated_at: i64,
    /// Stripe's `evidence_details.submission_count` (only grows).
    pub submission_count: i32,
    /// Stripe's `evidence_details.has_evidence` (only goes true).
    pub has_evidence: bool,
    /// Stripe's `evidence_details.past_due` (only goes true).
    pub past_due: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
