//! `charges`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "charges")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub stripe_id: String,
    pub livemode: bool,
    pub payment_intent_id: Option<String>,
    pub source_id: Option<String>,
    pub status: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub refunded: bool,
    pub currency: String,
    pub failure_code: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub failure_message: Option<String>,
    pub disputed: bool,
    pub state_created: i64,
    pub state_rank: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
