//! Sealed secrets are bound to the row that owns them.
//!
//! Stripe secret keys, webhook signing secrets and notification endpoint secrets were sealed with
//! only their purpose as associated data (`pg1.…`), so a database writer could move one
//! company's value into another company's row and it opened there. From this version each value
//! is sealed for its owner — company, table, row, column (`pg2.…`, see `paygate_tenant::crypto`).
//!
//! A migration holds no master key and cannot re-seal, so this one only asks for it: it records
//! the task `bind_sealed_secrets` in `pending_upgrades`. The server's start (and `paygate
//! rekey`) re-seals every `pg1` value for the row it is found in, then removes the task; a
//! `pg1` value that turns up after that is never opened nor bound (it could have been moved).
//!
//! Undoing this migration drops the table; values already re-sealed stay `pg2` (an older version
//! cannot open them).

use sea_orm_migration::{prelude::*, schema::*};

/// The task name the server looks for (`paygate_db::entities::pending_upgrade`).
const TASK: &str = "bind_sealed_secrets";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PendingUpgrades::Table)
                .col(string_len(PendingUpgrades::Name, 64).primary_key())
                .col(big_integer(PendingUpgrades::CreatedAt))
                .to_owned(),
        )
        .await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| <i64 as TryFrom<u128>>::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        m.exec_stmt(
            Query::insert()
                .into_table(PendingUpgrades::Table)
                .columns([PendingUpgrades::Name, PendingUpgrades::CreatedAt])
                .values_panic([TASK.into(), now.into()])
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PendingUpgrades::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum PendingUpgrades {
    Table,
    Name,
    CreatedAt,
}
