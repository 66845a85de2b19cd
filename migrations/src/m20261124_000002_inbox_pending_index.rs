//! The workers' claim reads the inbox through an index of the pending rows only.
//!
//! The claim asks for the oldest due `pending` rows (`ORDER BY id LIMIT n`). Through
//! `ix_inbox_events_due (status, next_attempt_at)` PostgreSQL had to visit every index entry
//! still filed under `pending`, including those of rows processed since the last vacuum (an
//! update leaves the old entry behind), and sort them: after a few hundred thousand events
//! between two autovacuum runs a claim took 200 ms. A partial index on `id` of the pending rows
//! is read in order and stops after `n`, and the entries of processed rows that it meets are
//! marked dead by the first scan that finds them, so later scans skip them.

use sea_orm_migration::prelude::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut idx = index(
            "ix_inbox_events_pending",
            InboxEvents::Table,
            [InboxEvents::Id],
        );
        idx.and_where(Expr::col(InboxEvents::Status).eq("pending"));
        m.create_index(idx).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_inbox_events_pending")
                .table(InboxEvents::Table)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum InboxEvents {
    Table,
    Id,
    Status,
}
