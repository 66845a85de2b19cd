//! The back office: company users, their one-time invitations, and the web sessions of users and
//! operators.

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
                .table(CompanyUsers::Table)
                .col(string_len(CompanyUsers::Id, 40).primary_key())
                .col(big_integer(CompanyUsers::CompanyPk))
                .col(string_len(CompanyUsers::Email, 320))
                // NULL until the invitation is accepted.
                .col(string_null(CompanyUsers::PasswordHash))
                .col(string_len(CompanyUsers::Role, 16))
                .col(big_integer(CompanyUsers::CreatedAt))
                .col(big_integer_null(CompanyUsers::LastSignInAt))
                .col(boolean(CompanyUsers::Disabled).default(false))
                .foreign_key(
                    ForeignKey::create()
                        .from(CompanyUsers::Table, CompanyUsers::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_company_users_company_email",
            CompanyUsers::Table,
            [CompanyUsers::CompanyPk, CompanyUsers::Email],
        ))
        .await?;
        // Sign-in looks a user up by e-mail across companies.
        m.create_index(index(
            "ix_company_users_email",
            CompanyUsers::Table,
            [CompanyUsers::Email],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(UserInvitations::Table)
                .col(string_len(UserInvitations::Id, 40).primary_key())
                .col(string_len(UserInvitations::TokenHash, 64))
                .col(string_len(UserInvitations::UserId, 40))
                .col(big_integer(UserInvitations::CompanyPk))
                .col(big_integer(UserInvitations::CreatedAt))
                .col(big_integer(UserInvitations::ExpiresAt))
                .col(big_integer_null(UserInvitations::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(UserInvitations::Table, UserInvitations::UserId)
                        .to(CompanyUsers::Table, CompanyUsers::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(UserInvitations::Table, UserInvitations::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_user_invitations_token_hash",
            UserInvitations::Table,
            [UserInvitations::TokenHash],
        ))
        .await?;
        m.create_index(index(
            "ix_user_invitations_user",
            UserInvitations::Table,
            [UserInvitations::UserId],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(WebSessions::Table)
                // SHA-256 (hex) of the random cookie token: the token itself is never stored.
                .col(string_len(WebSessions::Id, 64).primary_key())
                .col(string_len(WebSessions::PrincipalKind, 16))
                .col(string_len(WebSessions::PrincipalId, 40))
                .col(big_integer_null(WebSessions::CompanyPk))
                .col(string_len(WebSessions::Csrf, 64))
                .col(big_integer(WebSessions::CreatedAt))
                .col(big_integer(WebSessions::ExpiresAt))
                .col(big_integer(WebSessions::LastSeenAt))
                .col(string_len_null(WebSessions::Language, 8))
                .foreign_key(
                    ForeignKey::create()
                        .from(WebSessions::Table, WebSessions::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_web_sessions_principal",
            WebSessions::Table,
            [WebSessions::PrincipalId],
        ))
        .await?;
        m.create_index(index(
            "ix_web_sessions_expires",
            WebSessions::Table,
            [WebSessions::ExpiresAt],
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            WebSessions::Table.into_iden(),
            UserInvitations::Table.into_iden(),
            CompanyUsers::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum CompanyUsers {
    Table,
    Id,
    CompanyPk,
    Email,
    PasswordHash,
    Role,
    CreatedAt,
    LastSignInAt,
    Disabled,
}

#[derive(DeriveIden)]
enum UserInvitations {
    Table,
    Id,
    TokenHash,
    UserId,
    CompanyPk,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum WebSessions {
    Table,
    Id,
    PrincipalKind,
    PrincipalId,
    CompanyPk,
    Csrf,
    CreatedAt,
    ExpiresAt,
    LastSeenAt,
    Language,
}
