//! `fulfillments`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "fulfillments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    pub session_id: String,
    pub order_id: String,
    pub payment_status: String,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub customer_email: Option<String>,
    pub line_item_count: i32,
    pub fulfilled_by: String,
    pub fulfilled_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
