//! `sources`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sources")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub stripe_id: String,
    pub livemode: bool,
    pub status: String,
    pub source_type: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub state_created: i64,
    pub state_rank: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
