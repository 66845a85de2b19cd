//! Issue 19 (subscriptions and invoices): `customers`, `subscriptions` and `invoices`, the latest
//! known state of each Stripe billing object per company and mode.
//!
//! Every row carries `livemode` and is unique per (company, mode, Stripe id); handlers write them
//! forward-only: `last_event_created` is the `created` of the newest event applied, and an older
//! event never overwrites a newer one.

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
                .table(Customers::Table)
                .col(big_pk_auto(Customers::Id))
                .col(big_integer(Customers::CompanyPk))
                .col(boolean(Customers::Livemode))
                .col(string_len(Customers::StripeCustomerId, 255))
                .col(text_null(Customers::Email))
                .col(text_null(Customers::Name))
                .col(string_len_null(Customers::Locale, 35))
                .col(boolean(Customers::Deleted).default(false))
                .col(big_integer(Customers::StripeCreated))
                .col(big_integer(Customers::LastEventCreated))
                .col(big_integer(Customers::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Customers::Table, Customers::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_customers_company_mode_stripe",
            Customers::Table,
            [
                Customers::CompanyPk,
                Customers::Livemode,
                Customers::StripeCustomerId,
            ],
        ))
        .await?;
        m.create_index(index(
            "ix_customers_company_mode_email",
            Customers::Table,
            [Customers::CompanyPk, Customers::Livemode, Customers::Email],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Subscriptions::Table)
                .col(big_pk_auto(Subscriptions::Id))
                .col(big_integer(Subscriptions::CompanyPk))
                .col(boolean(Subscriptions::Livemode))
                .col(string_len(Subscriptions::StripeSubscriptionId, 255))
                .col(string_len(Subscriptions::StripeCustomerId, 255))
                .col(string_len(Subscriptions::Status, 32))
                .col(text(Subscriptions::ItemsJson))
                .col(string_len_null(Subscriptions::Currency, 8))
                .col(big_integer_null(Subscriptions::CurrentPeriodStart))
                .col(big_integer_null(Subscriptions::CurrentPeriodEnd))
                .col(big_integer_null(Subscriptions::TrialEnd))
                .col(boolean(Subscriptions::CancelAtPeriodEnd))
                .col(big_integer_null(Subscriptions::CancelAt))
                .col(big_integer_null(Subscriptions::CanceledAt))
                .col(big_integer_null(Subscriptions::EndedAt))
                .col(string_len_null(Subscriptions::PauseCollection, 32))
                .col(string_len_null(Subscriptions::LatestInvoiceId, 255))
                .col(big_integer(Subscriptions::StripeCreated))
                .col(big_integer(Subscriptions::LastEventCreated))
                .col(big_integer(Subscriptions::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Subscriptions::Table, Subscriptions::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_subscriptions_company_mode_stripe",
            Subscriptions::Table,
            [
                Subscriptions::CompanyPk,
                Subscriptions::Livemode,
                Subscriptions::StripeSubscriptionId,
            ],
        ))
        .await?;
        m.create_index(index(
            "ix_subscriptions_company_mode_status",
            Subscriptions::Table,
            [
                Subscriptions::CompanyPk,
                Subscriptions::Livemode,
                Subscriptions::Status,
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Invoices::Table)
                .col(big_pk_auto(Invoices::Id))
                .col(big_integer(Invoices::CompanyPk))
                .col(boolean(Invoices::Livemode))
                .col(string_len(Invoices::StripeInvoiceId, 255))
                .col(string_len_null(Invoices::StripeCustomerId, 255))
                .col(string_len_null(Invoices::StripeSubscriptionId, 255))
                .col(string_len_null(Invoices::Number, 255))
                .col(string_len(Invoices::Status, 32))
                .col(string_len(Invoices::Currency, 8))
                .col(big_integer(Invoices::AmountDue))
                .col(big_integer(Invoices::AmountPaid))
                .col(big_integer(Invoices::AmountRemaining))
                .col(integer(Invoices::AttemptCount))
                .col(big_integer_null(Invoices::NextPaymentAttempt))
                .col(text_null(Invoices::HostedInvoiceUrl))
                .col(text_null(Invoices::CustomerEmail))
                .col(string_len_null(Invoices::BillingReason, 64))
                .col(big_integer(Invoices::StripeCreated))
                .col(big_integer(Invoices::LastEventCreated))
                .col(big_integer(Invoices::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Invoices::Table, Invoices::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_invoices_company_mode_stripe",
            Invoices::Table,
            [
                Invoices::CompanyPk,
                Invoices::Livemode,
                Invoices::StripeInvoiceId,
            ],
        ))
        .await?;
        m.create_index(index(
            "ix_invoices_company_mode_subscription",
            Invoices::Table,
            [
                Invoices::CompanyPk,
                Invoices::Livemode,
                Invoices::StripeSubscriptionId,
            ],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Invoices::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Subscriptions::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Customers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
    CompanyPk,
    Livemode,
    StripeCustomerId,
    Email,
    Name,
    Locale,
    Deleted,
    StripeCreated,
    LastEventCreated,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Id,
    CompanyPk,
    Livemode,
    StripeSubscriptionId,
    StripeCustomerId,
    Status,
    ItemsJson,
    Currency,
    CurrentPeriodStart,
    CurrentPeriodEnd,
    TrialEnd,
    CancelAtPeriodEnd,
    CancelAt,
    CanceledAt,
    EndedAt,
    PauseCollection,
    LatestInvoiceId,
    StripeCreated,
    LastEventCreated,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Invoices {
    Table,
    Id,
    CompanyPk,
    Livemode,
    StripeInvoiceId,
    StripeCustomerId,
    StripeSubscriptionId,
    Number,
    Status,
    Currency,
    AmountDue,
    AmountPaid,
    AmountRemaining,
    AttemptCount,
    NextPaymentAttempt,
    HostedInvoiceUrl,
    CustomerEmail,
    BillingReason,
    StripeCreated,
    LastEventCreated,
    UpdatedAt,
}
