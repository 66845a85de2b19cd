//! `companies`: the tenants.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "companies")]
pub struct Model {
    /// Internal id: every company-owned row carries it.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Public id, in the callback URL.
    pub company_id: String,
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    pub stripe_enabled: bool,
    /// `test` or `live`: which profile the company charges with.
    pub environment: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
