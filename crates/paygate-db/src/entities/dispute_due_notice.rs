//! `dispute_due_notices`: the `dispute.due_soon` notices sent for a dispute (`3d`, `1d`), each
//! once (unique company + mode + dispute + notice).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dispute_due_notices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    pub dispute_id: String,
    /// `3d` or `1d`.
    pub notice: String,
    /// The deadline (seconds) the notice was about.
    pub due_by: i64,
    pub sent_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
