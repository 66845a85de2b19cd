//! `notification_endpoints`: where a company wants to be told about its orders, payments and
//! disputes.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub company_pk: i64,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    pub description: Option<String>,
    /// A JSON array of event types; empty means every type.
    #[sea_orm(column_type = "Text")]
    pub event_types: String,
    pub enabled: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub disabled_reason: Option<String>,
    /// Since when every delivery to it has failed (cleared by a success).
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
