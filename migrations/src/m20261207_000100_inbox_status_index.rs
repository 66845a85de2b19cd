//! Issue 15: counting a company's events by status reads an index, not the rows.
//!
//! `GET …/events/stats` (the operator's dashboard, the back office's health view, a benchmark
//! following the backlog) grouped a company's events by status through the rows themselves:
//! on SQLite every count held the one connection the intake commits on for a time growing with
//! the inbox (30–90 ms at 20 000 events, open-loop acknowledgements stalled behind it). With
//! `(company_pk, livemode, status)` the counts are an index-only scan, and a count of one
//! status (`?status=pending`: the backlog) reads only that status's entries.

use sea_orm_migration::prelude::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            "ix_inbox_events_company_mode_status",
            InboxEvents::Table,
            [
                InboxEvents::CompanyPk,
                InboxEvents::Livemode,
                InboxEvents::Status,
            ],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_inbox_events_company_mode_status")
                .table(InboxEvents::Table)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum InboxEvents {
    Table,
    CompanyPk,
    Livemode,
    Status,
}
