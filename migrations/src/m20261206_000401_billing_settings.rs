//! `billing_settings` (issue 19): a company's dunning choices. Whether shoppers get an e-mail
//! when a subscription invoice's payment fails (`dunning_emails`) and after which attempts
//! (`dunning_attempts`, a JSON array of attempt numbers, e.g. `[1,2,3]`). A company without a
//! row has dunning e-mails off.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_tenant_tables::Companies;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(BillingSettings::Table)
                .col(big_integer(BillingSettings::CompanyPk).primary_key())
                .col(boolean(BillingSettings::DunningEmails).default(false))
                .col(string_len(BillingSettings::DunningAttempts, 200).default("[1,2,3]"))
                .col(big_integer(BillingSettings::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(BillingSettings::Table, BillingSettings::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(BillingSettings::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum BillingSettings {
    Table,
    CompanyPk,
    DunningEmails,
    DunningAttempts,
    UpdatedAt,
}
