//! `inbox_events`: every accepted Stripe event with its processing state (the raw body is in
//! `inbox_payloads`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inbox_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub stripe_event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    /// `account` of Connect events, when present.
    pub account_id: Option<String>,
    /// Stripe's `created`, seconds.
    pub created: i64,
    pub received_at: i64,
    /// `webhook`, `recovered` (missed-event recovery) or `test`.
    pub origin: String,
    /// `pending`, `processed`, `ignored` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub locked_until: Option<i64>,
    pub locked_by: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub processed_at: Option<i64>,
}

/// The raw body, in `inbox_payloads` (one per event, keyed by the event's id). Written from
/// this side only, so the payload's module does not need to know the inbox.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::inbox_payload::Entity",
        from = "Column::Id",
        to = "super::inbox_payload::Column::InboxEventId"
    )]
    Payload,
}

impl Related<super::inbox_payload::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Payload.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
