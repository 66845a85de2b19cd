//! Operators, companies, their Stripe profiles and signing secrets, API keys, the audit log.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Operators::Table)
                .col(string_len(Operators::Id, 40).primary_key())
                .col(string_len(Operators::Email, 320))
                .col(string(Operators::PasswordHash))
                .col(boolean(Operators::Disabled).default(false))
                .col(big_integer(Operators::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_operators_email",
            Operators::Table,
            [Operators::Email],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Companies::Table)
                .col(big_pk_auto(Companies::Id))
                .col(string_len(Companies::CompanyId, 64))
                .col(string(Companies::Name))
                .col(string_len(Companies::Status, 16))
                .col(boolean(Companies::StripeEnabled).default(false))
                .col(string_len(Companies::Environment, 8))
                .col(big_integer(Companies::CreatedAt))
                .col(big_integer(Companies::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_companies_company_id",
            Companies::Table,
            [Companies::CompanyId],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(StripeProfiles::Table)
                .col(string_len(StripeProfiles::Id, 40).primary_key())
                .col(big_integer(StripeProfiles::CompanyPk))
                .col(string(StripeProfiles::Name))
                .col(string_len(StripeProfiles::Mode, 8))
                // The mode while this profile is the active one of its mode, NULL otherwise:
                // a portable "one active profile per (company, mode)" unique rule.
                .col(string_len_null(StripeProfiles::ActiveMode, 8))
                .col(string_null(StripeProfiles::AccountId))
                .col(string(StripeProfiles::PublishableKey))
                .col(text(StripeProfiles::SecretKeyEnc))
                .col(string(StripeProfiles::SecretKeyMask))
                .col(big_integer(StripeProfiles::CreatedAt))
                .col(big_integer(StripeProfiles::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(StripeProfiles::Table, StripeProfiles::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_stripe_profiles_company_name",
            StripeProfiles::Table,
            [StripeProfiles::CompanyPk, StripeProfiles::Name],
        ))
        .await?;
        m.create_index(unique_index(
            "uq_stripe_profiles_company_active_mode",
            StripeProfiles::Table,
            [StripeProfiles::CompanyPk, StripeProfiles::ActiveMode],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(SigningSecrets::Table)
                .col(string_len(SigningSecrets::Id, 40).primary_key())
                .col(big_integer(SigningSecrets::CompanyPk))
                .col(string_len(SigningSecrets::ProfileId, 40))
                .col(text(SigningSecrets::SecretEnc))
                .col(string(SigningSecrets::SecretMask))
                .col(big_integer(SigningSecrets::CreatedAt))
                .col(big_integer_null(SigningSecrets::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(SigningSecrets::Table, SigningSecrets::ProfileId)
                        .to(StripeProfiles::Table, StripeProfiles::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(SigningSecrets::Table, SigningSecrets::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_signing_secrets_company",
            SigningSecrets::Table,
            [SigningSecrets::CompanyPk],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(string_len(ApiKeys::Id, 40).primary_key())
                .col(big_integer(ApiKeys::CompanyPk))
                .col(string(ApiKeys::Name))
                .col(string_len(ApiKeys::Prefix, 32))
                .col(string_len(ApiKeys::KeyHash, 64))
                .col(big_integer(ApiKeys::CreatedAt))
                .col(big_integer_null(ApiKeys::LastUsedAt))
                .col(big_integer_null(ApiKeys::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiKeys::Table, ApiKeys::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_api_keys_key_hash",
            ApiKeys::Table,
            [ApiKeys::KeyHash],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(big_pk_auto(AuditLog::Id))
                .col(big_integer_null(AuditLog::CompanyPk))
                .col(string(AuditLog::Actor))
                .col(string(AuditLog::Action))
                .col(string(AuditLog::Target))
                .col(text(AuditLog::Detail))
                .col(big_integer(AuditLog::At))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_audit_log_company",
            AuditLog::Table,
            [AuditLog::CompanyPk],
        ))
        .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Operators {
    Table,
    Id,
    Email,
    PasswordHash,
    Disabled,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Companies {
    Table,
    Id,
    CompanyId,
    Name,
    Status,
    StripeEnabled,
    Environment,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StripeProfiles {
    Table,
    Id,
    CompanyPk,
    Name,
    Mode,
    ActiveMode,
    AccountId,
    PublishableKey,
    SecretKeyEnc,
    SecretKeyMask,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SigningSecrets {
    Table,
    Id,
    CompanyPk,
    ProfileId,
    SecretEnc,
    SecretMask,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    CompanyPk,
    Name,
    Prefix,
    KeyHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    CompanyPk,
    Actor,
    Action,
    Target,
    Detail,
    At,
}
