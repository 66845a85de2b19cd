//! `line_items`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "line_items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    pub session_id: String,
    pub stripe_line_item_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub quantity: Option<i64>,
    pub amount_subtotal: i64,
    pub amount_total: i64,
    pub currency: Option<String>,
    pub price_id: Option<String>,
    pub product_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
