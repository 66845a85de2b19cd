//! `setup_tokens`: the first-run setup link (`/setup/<token>`) that creates the first operator.
//!
//! Only the SHA-256 (hex) of the token is stored, under a named unique index. While no operator
//! exists, each start of `paygate serve` replaces whatever row is there with a new one (so the
//! link of an earlier start stops working); creating the operator through the link deletes it.

use sea_orm_migration::{prelude::*, schema::*};

use crate::unique_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SetupTokens::Table)
                .col(big_pk_auto(SetupTokens::Id))
                .col(string_len(SetupTokens::TokenHash, 64))
                .col(big_integer(SetupTokens::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_setup_tokens_token_hash",
            SetupTokens::Table,
            [SetupTokens::TokenHash],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SetupTokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SetupTokens {
    Table,
    Id,
    TokenHash,
    CreatedAt,
}
