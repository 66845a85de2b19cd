//! `company_users`: the people of a company who sign in to the back office.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "company_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub company_pk: i64,
    /// Lower-case; unique per company.
    pub email: String,
    /// Argon2id (PHC string); `None` until the user accepts the invitation.
    pub password_hash: Option<String>,
    /// `admin` (may change things) or `viewer` (sees everything, changes nothing).
    pub role: String,
    pub created_at: i64,
    pub last_sign_in_at: Option<i64>,
    pub disabled: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
