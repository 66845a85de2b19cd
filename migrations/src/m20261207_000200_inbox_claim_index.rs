//! Issue 15: the workers' claim reads one index in the order it wants, whatever the plan.
//!
//! The claim asks for the oldest due `pending` rows (`WHERE status = $1 … ORDER BY id LIMIT n`).
//! It had two indexes to choose from, and both backends chose badly where it mattered:
//! - PostgreSQL plans a prepared statement once for all later executions after five (a generic
//!   plan, the status a parameter). Such a plan cannot use the partial index of the pending rows
//!   (`ix_inbox_events_pending`, `WHERE status = 'pending'`): it read every entry filed under
//!   `pending` in `ix_inbox_events_due (status, next_attempt_at)` and sorted them all by id to
//!   keep the first 256. With a backlog of 12 000 events a claim took 64 ms (an 18 MB sort on
//!   disk), the longer the larger the backlog it was there to drain.
//! - SQLite, without statistics, read `ix_inbox_events_due` and sorted every pending row too.
//!
//! `(status, id)` serves the claim on both, bound or not: the pending rows in id order, read
//! until the batch is full, no sort. It also serves what `ix_inbox_events_due` served besides
//! (counts by status over all companies), so both older indexes go, and every insert writes one
//! index entry fewer.

use sea_orm_migration::prelude::*;

use crate::{drop_index, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // An operator may have built it beforehand, without holding the intake (PostgreSQL's
        // `CREATE INDEX CONCURRENTLY`, docs/operator-guide.md, Upgrading).
        let mut claim = index(
            "ix_inbox_events_status_id",
            InboxEvents::Table,
            [InboxEvents::Status, InboxEvents::Id],
        );
        claim.if_not_exists();
        m.create_index(claim).await?;
        for name in ["ix_inbox_events_pending", "ix_inbox_events_due"] {
            m.drop_index(drop_index(name, InboxEvents::Table)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            "ix_inbox_events_due",
            InboxEvents::Table,
            [InboxEvents::Status, InboxEvents::NextAttemptAt],
        ))
        .await?;
        let mut pending = index(
            "ix_inbox_events_pending",
            InboxEvents::Table,
            [InboxEvents::Id],
        );
        pending.and_where(Expr::col(InboxEvents::Status).eq("pending"));
        m.create_index(pending).await?;
        m.drop_index(drop_index("ix_inbox_events_status_id", InboxEvents::Table))
            .await
    }
}

#[derive(DeriveIden)]
enum InboxEvents {
    Table,
    Id,
    Status,
    NextAttemptAt,
}
