//! `payment_intents`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_intents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub stripe_id: String,
    pub livemode: bool,
    pub status: String,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub currency: String,
    pub customer: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_payment_error: Option<String>,
    pub cancellation_reason: Option<String>,
    pub disputed: bool,
    pub state_created: i64,
    pub state_rank: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
