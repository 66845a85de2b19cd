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

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::inbox_event::Entity",
        from = "Column::InboxEventId",
        to = "super::inbox_event::Column::Id"
    )]
    InboxEvent,
}

impl Related<super::inbox_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::InboxEvent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
