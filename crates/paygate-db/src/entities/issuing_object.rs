//! `issuing_objects`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "issuing_objects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    pub stripe_id: String,
    pub kind: String,
    pub status: Option<String>,
    pub state_created: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
