//! `signing_secrets`: the `whsec_` secrets of a profile; rotated ones carry `expires_at`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub company_pk: i64,
    pub profile_id: String,
    #[sea_orm(column_type = "Text")]
    pub secret_enc: String,
    pub secret_mask: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
