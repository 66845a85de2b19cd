//! Sign-in failures shared by every replica, and operators whose credentials can be revoked.
//!
//! `sign_in_failures` holds one row per failed sign-in: the account (the normalized e-mail, at
//! most 254 characters, as the sign-in checks before anything is written), the client address
//! and the time. The lockout per (account, address) and the per-account slowdown are counted from
//! it, so every replica sees the same failures; rows older than the window are swept as new ones
//! are written.
//!
//! `operators.token_epoch` and `web_sessions.principal_epoch`: an operator's tokens and sessions
//! carry the epoch they were issued in; disabling the operator or changing their password moves
//! it on, and what carries an older one is refused at once. Existing rows start at 0, as do the
//! tokens of before this migration (they have no epoch claim), so nothing is signed out by the
//! upgrade itself.

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SignInFailures::Table)
                .col(big_pk_auto(SignInFailures::Id))
                .col(string_len(SignInFailures::Account, 254))
                // An IPv6 address is at most 45 characters; empty when unknown.
                .col(string_len(SignInFailures::Client, 64))
                .col(big_integer(SignInFailures::FailedAt))
                .to_owned(),
        )
        .await?;
        // The lockout: one account from one address.
        m.create_index(index(
            "ix_sign_in_failures_account_client_failed_at",
            SignInFailures::Table,
            [
                SignInFailures::Account,
                SignInFailures::Client,
                SignInFailures::FailedAt,
            ],
        ))
        .await?;
        // The slowdown: one account from anywhere, newest first.
        m.create_index(index(
            "ix_sign_in_failures_account_failed_at",
            SignInFailures::Table,
            [SignInFailures::Account, SignInFailures::FailedAt],
        ))
        .await?;
        // The sweep.
        m.create_index(index(
            "ix_sign_in_failures_failed_at",
            SignInFailures::Table,
            [SignInFailures::FailedAt],
        ))
        .await?;
        // One column per statement: SQLite alters one thing at a time.
        m.alter_table(
            Table::alter()
                .table(Operators::Table)
                .add_column(big_integer(Operators::TokenEpoch).default(0))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(WebSessions::Table)
                .add_column(big_integer(WebSessions::PrincipalEpoch).default(0))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(WebSessions::Table)
                .drop_column(WebSessions::PrincipalEpoch)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Operators::Table)
                .drop_column(Operators::TokenEpoch)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(SignInFailures::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SignInFailures {
    Table,
    Id,
    Account,
    Client,
    FailedAt,
}

#[derive(DeriveIden)]
enum Operators {
    Table,
    TokenEpoch,
}

#[derive(DeriveIden)]
enum WebSessions {
    Table,
    PrincipalEpoch,
}
