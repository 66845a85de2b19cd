//! Connect platforms: a company may be marked a Connect platform (`is_connect_platform`) and
//! other companies linked to it (`connect_platform_id`, the platform's public company id). Events
//! delivered to the platform's callback URL that name a connected account are stored for the
//! linked company whose active profile of the event's mode has that account id.
//!
//! The link is the platform's public id (immutable once created), so the API shows it without a
//! lookup; deleting the platform clears the links in the same transaction (`paygate-tenant`).
//! The index serves the one query that builds a platform's routing table.

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        m.alter_table(
            Table::alter()
                .table(Companies::Table)
                .add_column(boolean(Companies::IsConnectPlatform).default(false))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Companies::Table)
                .add_column(string_len_null(Companies::ConnectPlatformId, 64))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_companies_connect_platform_id",
            Companies::Table,
            [Companies::ConnectPlatformId],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_companies_connect_platform_id")
                .table(Companies::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Companies::Table)
                .drop_column(Companies::ConnectPlatformId)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Companies::Table)
                .drop_column(Companies::IsConnectPlatform)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Companies {
    Table,
    IsConnectPlatform,
    ConnectPlatformId,
}
