//! `dispute_evidence`: the merchant's evidence for a dispute as Paygate last saved (`draft`) or
//! submitted it (`submitted`), or `accepted` when the merchant accepted the dispute; one row per
//! dispute (unique company + mode + dispute).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dispute_evidence")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    /// Stripe's dispute id (`dp_…`).
    pub dispute_id: String,
    /// `draft`, `submitted` or `accepted`.
    pub status: String,
    /// The evidence fields (a JSON object of strings: texts and `file_…` ids).
    #[sea_orm(column_type = "Text")]
    pub fields: String,
    pub submitted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
