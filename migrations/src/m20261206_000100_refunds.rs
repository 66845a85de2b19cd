//! Refunds and early fraud warnings (issue 18, parts 1 and 2).
//!
//! - `refunds`: the latest known state of each Stripe refund, forward only like every mirrored
//!   object (`state_created`, `state_rank`), unique per (company, mode, refund id). A refund made
//!   through Paygate also keeps the idempotency key it was requested with (`request_key`, unique
//!   per company and mode), so the same request answers the same refund.
//! - `orders` gain `amount_refunded` (what is refunded and not failed) and
//!   `status_before_refund` (the payment status an order goes back to when every refund
//!   failed).
//! - `early_fraud_warnings`: Stripe's Radar warnings, one per (company, mode, warning id).
//! - `auto_refunds`: the claim of the one automatic refund of a warned payment (unique per
//!   company, mode and charge).
//! - `companies` gain `auto_refund_fraud_warnings` (off by default).

use sea_orm_migration::{prelude::*, schema::*};

use crate::{index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Refunds::Table)
                .col(big_pk_auto(Refunds::Id))
                .col(big_integer(Refunds::CompanyPk))
                .col(boolean(Refunds::Livemode))
                .col(string_len(Refunds::StripeRefundId, 255))
                .col(string_len_null(Refunds::ChargeId, 255))
                .col(string_len_null(Refunds::PaymentIntentId, 255))
                .col(string_len_null(Refunds::OrderId, 40))
                .col(big_integer(Refunds::Amount))
                .col(string_len(Refunds::Currency, 8))
                .col(string_len(Refunds::Status, 32))
                .col(string_len_null(Refunds::Reason, 64))
                .col(string_len_null(Refunds::FailureReason, 64))
                .col(string_len_null(Refunds::RequestKey, 255))
                .col(big_integer(Refunds::StateCreated))
                .col(integer(Refunds::StateRank))
                .col(big_integer(Refunds::CreatedAt))
                .col(big_integer(Refunds::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_refunds_company_mode_refund",
            Refunds::Table,
            [
                Refunds::CompanyPk,
                Refunds::Livemode,
                Refunds::StripeRefundId,
            ],
        ))
        .await?;
        m.create_index(unique_index(
            "uq_refunds_company_mode_request_key",
            Refunds::Table,
            [Refunds::CompanyPk, Refunds::Livemode, Refunds::RequestKey],
        ))
        .await?;
        m.create_index(index(
            "ix_refunds_company_mode_charge",
            Refunds::Table,
            [Refunds::CompanyPk, Refunds::Livemode, Refunds::ChargeId],
        ))
        .await?;
        m.create_index(index(
            "ix_refunds_company_mode_payment_intent",
            Refunds::Table,
            [
                Refunds::CompanyPk,
                Refunds::Livemode,
                Refunds::PaymentIntentId,
            ],
        ))
        .await?;

        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        m.alter_table(
            Table::alter()
                .table(Orders::Table)
                .add_column(big_integer(Orders::AmountRefunded).default(0))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Orders::Table)
                .add_column(string_len_null(Orders::StatusBeforeRefund, 32))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(EarlyFraudWarnings::Table)
                .col(big_pk_auto(EarlyFraudWarnings::Id))
                .col(big_integer(EarlyFraudWarnings::CompanyPk))
                .col(boolean(EarlyFraudWarnings::Livemode))
                .col(string_len(EarlyFraudWarnings::StripeId, 255))
                .col(string_len_null(EarlyFraudWarnings::ChargeId, 255))
                .col(string_len_null(EarlyFraudWarnings::PaymentIntentId, 255))
                .col(string_len(EarlyFraudWarnings::FraudType, 64))
                .col(boolean(EarlyFraudWarnings::Actionable))
                .col(big_integer(EarlyFraudWarnings::StateCreated))
                .col(big_integer(EarlyFraudWarnings::CreatedAt))
                .col(big_integer(EarlyFraudWarnings::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_early_fraud_warnings_company_mode_warning",
            EarlyFraudWarnings::Table,
            [
                EarlyFraudWarnings::CompanyPk,
                EarlyFraudWarnings::Livemode,
                EarlyFraudWarnings::StripeId,
            ],
        ))
        .await?;
        m.create_index(index(
            "ix_early_fraud_warnings_company_mode_charge",
            EarlyFraudWarnings::Table,
            [
                EarlyFraudWarnings::CompanyPk,
                EarlyFraudWarnings::Livemode,
                EarlyFraudWarnings::ChargeId,
            ],
        ))
        .await?;
        m.create_index(index(
            "ix_early_fraud_warnings_company_mode_payment_intent",
            EarlyFraudWarnings::Table,
            [
                EarlyFraudWarnings::CompanyPk,
                EarlyFraudWarnings::Livemode,
                EarlyFraudWarnings::PaymentIntentId,
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(AutoRefunds::Table)
                .col(big_pk_auto(AutoRefunds::Id))
                .col(big_integer(AutoRefunds::CompanyPk))
                .col(boolean(AutoRefunds::Livemode))
                .col(string_len(AutoRefunds::ChargeId, 255))
                .col(string_len(AutoRefunds::WarningId, 255))
                .col(string_len(AutoRefunds::Status, 32))
                .col(string_len_null(AutoRefunds::RefundId, 255))
                .col(string_len_null(AutoRefunds::Error, 255))
                .col(big_integer(AutoRefunds::LeaseUntil))
                .col(big_integer(AutoRefunds::CreatedAt))
                .col(big_integer(AutoRefunds::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_auto_refunds_company_mode_charge",
            AutoRefunds::Table,
            [
                AutoRefunds::CompanyPk,
                AutoRefunds::Livemode,
                AutoRefunds::ChargeId,
            ],
        ))
        .await?;

        m.alter_table(
            Table::alter()
                .table(Companies::Table)
                .add_column(boolean(Companies::AutoRefundFraudWarnings).default(false))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Companies::Table)
                .drop_column(Companies::AutoRefundFraudWarnings)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(AutoRefunds::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(EarlyFraudWarnings::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Orders::Table)
                .drop_column(Orders::StatusBeforeRefund)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Orders::Table)
                .drop_column(Orders::AmountRefunded)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(Refunds::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Refunds {
    Table,
    Id,
    CompanyPk,
    Livemode,
    StripeRefundId,
    ChargeId,
    PaymentIntentId,
    OrderId,
    Amount,
    Currency,
    Status,
    Reason,
    FailureReason,
    RequestKey,
    StateCreated,
    StateRank,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    AmountRefunded,
    StatusBeforeRefund,
}

#[derive(DeriveIden)]
enum EarlyFraudWarnings {
    Table,
    Id,
    CompanyPk,
    Livemode,
    StripeId,
    ChargeId,
    PaymentIntentId,
    FraudType,
    Actionable,
    StateCreated,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AutoRefunds {
    Table,
    Id,
    CompanyPk,
    Livemode,
    ChargeId,
    WarningId,
    Status,
    RefundId,
    Error,
    LeaseUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Companies {
    Table,
    AutoRefundFraudWarnings,
}
