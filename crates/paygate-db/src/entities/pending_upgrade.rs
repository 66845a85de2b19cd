//! `pending_upgrades`: one-time data upgrades a migration asked for and only the server can do
//! (it holds the master key), e.g. `bind_sealed_secrets`. The server removes a task when done.
use sea_orm::entity::prelude::*;

/// Re-seal every legacy (`pg1`) secret for the row it is in (migration
/// `m20261205_000002_bind_sealed_secrets`).
pub const BIND_SEALED_SECRETS: &str = "bind_sealed_secrets";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pending_upgrades")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
