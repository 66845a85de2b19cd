//! `user_invitations`: one-time links that let a company user set a password. Only the SHA-256
//! of the token is stored.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 (hex) of the token in the link.
    pub token_hash: String,
    pub user_id: String,
    pub company_pk: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set once, when the password is chosen: the link works only once.
    pub used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
