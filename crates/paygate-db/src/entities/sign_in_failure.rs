//! `sign_in_failures`: failed sign-ins by account and client address, the memory of the sign-in
//! lockout shared by every replica (see `paygate_tenant::signin`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_in_failures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The normalized e-mail that was tried (known or not).
    pub account: String,
    /// The client address (behind trusted proxies, the forwarded one); empty when unknown.
    pub client: String,
    pub failed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
