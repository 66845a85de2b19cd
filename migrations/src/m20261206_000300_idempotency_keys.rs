//! Issue 18 (merchant API): `idempotency_keys`, the answers of the merchant API's `POST`s sent
//! with an `Idempotency-Key` header, kept 24 hours.
//!
//! One row per (company, mode, key) under the named unique index
//! `uq_idempotency_keys_company_mode_key`: the insert of a new key is the claim of it, so two
//! requests with the same key cannot both run. `request_hash` is the SHA-256 (hex) of the
//! method, path and body of the first request; `state` is `in_flight` while it runs and `done`
//! once its answer (`status`, `response_body`) is stored. The orders' `locale` column already
//! exists (`m20261123_000002_notifications`).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_tenant_tables::Companies;
use crate::{index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(string_len(IdempotencyKeys::Id, 64).primary_key())
                .col(big_integer(IdempotencyKeys::CompanyPk))
                .col(boolean(IdempotencyKeys::Livemode))
                .col(string_len(IdempotencyKeys::Key, 255))
                .col(string_len(IdempotencyKeys::RequestHash, 64))
                .col(string_len(IdempotencyKeys::State, 16))
                .col(integer_null(IdempotencyKeys::Status))
                .col(text_null(IdempotencyKeys::ResponseBody))
                .col(big_integer(IdempotencyKeys::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(IdempotencyKeys::Table, IdempotencyKeys::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_idempotency_keys_company_mode_key",
            IdempotencyKeys::Table,
            [
                IdempotencyKeys::CompanyPk,
                IdempotencyKeys::Livemode,
                IdempotencyKeys::Key,
            ],
        ))
        .await?;
        // The purge of expired keys, per company and mode.
        m.create_index(index(
            "ix_idempotency_keys_company_mode_created",
            IdempotencyKeys::Table,
            [
                IdempotencyKeys::CompanyPk,
                IdempotencyKeys::Livemode,
                IdempotencyKeys::CreatedAt,
            ],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Id,
    CompanyPk,
    Livemode,
    Key,
    RequestHash,
    State,
    Status,
    ResponseBody,
    CreatedAt,
}
