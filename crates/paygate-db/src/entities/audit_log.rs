//! `audit_log`: who changed what in tenant configuration, when. Append-only; never secrets.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    pub at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
