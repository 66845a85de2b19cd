//! `inbox_payloads`: the raw body of each inbox event, apart from the row the workers update.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inbox_payloads")]
pub struct Model {
    /// The `inbox_events` row this is the body of.
    #[sea_orm(primary_key, auto_increment = false)]
    pub inbox_event_id: i64,
    /// The raw body bytes as Stripe sent them.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
}

/// Reached from `inbox_event` (see its `Relation::Payload`).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
