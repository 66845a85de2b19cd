//! The payment domain: orders and their Checkout Sessions, line items and fulfillments, and the
//! latest known state of each Stripe object (payment intents, charges, disputes, sources,
//! accounts, payment methods, issuing cards and cardholders), each with the `created` of the
//! event that set it so only newer state is applied.

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
                .table(Orders::Table)
                .col(string_len(Orders::Id, 40).primary_key())
                .col(big_integer(Orders::CompanyPk))
                .col(boolean(Orders::Livemode))
                .col(string_len(Orders::Kind, 16))
                .col(string_len(Orders::Status, 32))
                .col(string_len_null(Orders::CheckoutSessionId, 255))
                .col(string_len_null(Orders::SourceId, 255))
                .col(string_len_null(Orders::PaymentIntentId, 255))
                .col(string_len_null(Orders::ChargeId, 255))
                .col(big_integer_null(Orders::Amount))
                .col(string_len_null(Orders::Currency, 8))
                .col(string_len_null(Orders::CustomerEmail, 320))
                .col(string_len_null(Orders::ClientReferenceId, 255))
                .col(text_null(Orders::Description))
                .col(text(Orders::Metadata))
                .col(text_null(Orders::ReturnUrl))
                .col(boolean(Orders::Disputed))
                .col(big_integer_null(Orders::FulfilledAt))
                .col(big_integer(Orders::StatusCreated))
                .col(big_integer(Orders::CreatedAt))
                .col(big_integer(Orders::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Orders::Table, Orders::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_orders_company_checkout_session",
            Orders::Table,
            [Orders::CompanyPk, Orders::CheckoutSessionId],
        ))
        .await?;
        m.create_index(index(
            "ix_orders_company_source",
            Orders::Table,
            [Orders::CompanyPk, Orders::SourceId],
        ))
        .await?;
        m.create_index(index(
            "ix_orders_company_payment_intent",
            Orders::Table,
            [Orders::CompanyPk, Orders::PaymentIntentId],
        ))
        .await?;
        m.create_index(index(
            "ix_orders_company_created",
            Orders::Table,
            [Orders::CompanyPk, Orders::CreatedAt],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(CheckoutSessions::Table)
                .col(big_pk_auto(CheckoutSessions::Id))
                .col(big_integer(CheckoutSessions::CompanyPk))
                .col(string_len(CheckoutSessions::SessionId, 255))
                .col(string_len(CheckoutSessions::OrderId, 40))
                .col(boolean(CheckoutSessions::Livemode))
                .col(string_len_null(CheckoutSessions::Status, 32))
                .col(string_len_null(CheckoutSessions::PaymentStatus, 32))
                .col(big_integer_null(CheckoutSessions::AmountTotal))
                .col(string_len_null(CheckoutSessions::Currency, 8))
                .col(string_len_null(CheckoutSessions::CustomerEmail, 320))
                .col(string_len_null(CheckoutSessions::PaymentIntentId, 255))
                .col(string_len(CheckoutSessions::FulfillmentStatus, 16))
                .col(big_integer_null(CheckoutSessions::ClaimUntil))
                .col(big_integer_null(CheckoutSessions::FulfilledAt))
                .col(big_integer(CheckoutSessions::StateCreated))
                .col(big_integer(CheckoutSessions::CreatedAt))
                .col(big_integer(CheckoutSessions::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(CheckoutSessions::Table, CheckoutSessions::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_checkout_sessions_company_session",
            CheckoutSessions::Table,
            [CheckoutSessions::CompanyPk, CheckoutSessions::SessionId],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(LineItems::Table)
                .col(big_pk_auto(LineItems::Id))
                .col(big_integer(LineItems::CompanyPk))
                .col(string_len(LineItems::SessionId, 255))
                .col(string_len(LineItems::StripeLineItemId, 255))
                .col(text_null(LineItems::Description))
                .col(big_integer_null(LineItems::Quantity))
                .col(big_integer(LineItems::AmountSubtotal))
                .col(big_integer(LineItems::AmountTotal))
                .col(string_len_null(LineItems::Currency, 8))
                .col(string_len_null(LineItems::PriceId, 255))
                .col(string_len_null(LineItems::ProductId, 255))
                .foreign_key(
                    ForeignKey::create()
                        .from(LineItems::Table, LineItems::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_line_items_company_session_item",
            LineItems::Table,
            [
                LineItems::CompanyPk,
                LineItems::SessionId,
                LineItems::StripeLineItemId,
            ],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(Fulfillments::Table)
                .col(big_pk_auto(Fulfillments::Id))
                .col(big_integer(Fulfillments::CompanyPk))
                .col(string_len(Fulfillments::SessionId, 255))
                .col(string_len(Fulfillments::OrderId, 40))
                .col(string_len(Fulfillments::PaymentStatus, 32))
                .col(big_integer_null(Fulfillments::AmountTotal))
                .col(string_len_null(Fulfillments::Currency, 8))
                .col(string_len_null(Fulfillments::CustomerEmail, 320))
                .col(integer(Fulfillments::LineItemCount))
                .col(string_len(Fulfillments::FulfilledBy, 32))
                .col(big_integer(Fulfillments::FulfilledAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Fulfillments::Table, Fulfillments::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_fulfillments_company_session",
            Fulfillments::Table,
            [Fulfillments::CompanyPk, Fulfillments::SessionId],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(PaymentIntents::Table)
                .col(big_pk_auto(PaymentIntents::Id))
                .col(big_integer(PaymentIntents::CompanyPk))
                .col(string_len(PaymentIntents::StripeId, 255))
                .col(boolean(PaymentIntents::Livemode))
                .col(string_len(PaymentIntents::Status, 32))
                .col(big_integer(PaymentIntents::Amount))
                .col(big_integer(PaymentIntents::AmountCapturable))
                .col(big_integer(PaymentIntents::AmountReceived))
                .col(string_len(PaymentIntents::Currency, 8))
                .col(string_len_null(PaymentIntents::Customer, 255))
                .col(text_null(PaymentIntents::LastPaymentError))
                .col(string_len_null(PaymentIntents::CancellationReason, 64))
                .col(boolean(PaymentIntents::Disputed))
                .col(big_integer(PaymentIntents::StateCreated))
                .col(integer(PaymentIntents::StateRank))
                .col(big_integer(PaymentIntents::CreatedAt))
                .col(big_integer(PaymentIntents::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(PaymentIntents::Table, PaymentIntents::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_payment_intents_company_stripe",
            PaymentIntents::Table,
            [PaymentIntents::CompanyPk, PaymentIntents::StripeId],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(Charges::Table)
                .col(big_pk_auto(Charges::Id))
                .col(big_integer(Charges::CompanyPk))
                .col(string_len(Charges::StripeId, 255))
                .col(boolean(Charges::Livemode))
                .col(string_len_null(Charges::PaymentIntentId, 255))
                .col(string_len_null(Charges::SourceId, 255))
                .col(string_len(Charges::Status, 32))
                .col(big_integer(Charges::Amount))
                .col(big_integer(Charges::AmountRefunded))
                .col(boolean(Charges::Refunded))
                .col(string_len(Charges::Currency, 8))
                .col(string_len_null(Charges::FailureCode, 64))
                .col(text_null(Charges::FailureMessage))
                .col(boolean(Charges::Disputed))
                .col(big_integer(Charges::StateCreated))
                .col(integer(Charges::StateRank))
                .col(big_integer(Charges::CreatedAt))
                .col(big_integer(Charges::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Charges::Table, Charges::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_charges_company_stripe",
            Charges::Table,
            [Charges::CompanyPk, Charges::StripeId],
        ))
        .await?;
        m.create_index(index(
            "ix_charges_company_payment_intent",
            Charges::Table,
            [Charges::CompanyPk, Charges::PaymentIntentId],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(Disputes::Table)
                .col(big_pk_auto(Disputes::Id))
                .col(big_integer(Disputes::CompanyPk))
                .col(string_len(Disputes::StripeId, 255))
                .col(boolean(Disputes::Livemode))
                .col(string_len_null(Disputes::ChargeId, 255))
                .col(string_len_null(Disputes::PaymentIntentId, 255))
                .col(string_len(Disputes::Status, 32))
                .col(string_len_null(Disputes::Reason, 64))
                .col(big_integer(Disputes::Amount))
                .col(string_len(Disputes::Currency, 8))
                .col(big_integer_null(Disputes::EvidenceDueBy))
                .col(big_integer(Disputes::FundsWithdrawn))
                .col(big_integer(Disputes::FundsReinstated))
                .col(big_integer(Disputes::StateCreated))
                .col(integer(Disputes::StateRank))
                .col(big_integer(Disputes::CreatedAt))
                .col(big_integer(Disputes::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Disputes::Table, Disputes::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_disputes_company_stripe",
            Disputes::Table,
            [Disputes::CompanyPk, Disputes::StripeId],
        ))
        .await?;
        m.create_index(index(
            "ix_disputes_company_status",
            Disputes::Table,
            [Disputes::CompanyPk, Disputes::Status],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(Sources::Table)
                .col(big_pk_auto(Sources::Id))
                .col(big_integer(Sources::CompanyPk))
                .col(string_len(Sources::StripeId, 255))
                .col(boolean(Sources::Livemode))
                .col(string_len(Sources::Status, 32))
                .col(string_len_null(Sources::SourceType, 64))
                .col(big_integer_null(Sources::Amount))
                .col(string_len_null(Sources::Currency, 8))
                .col(big_integer(Sources::StateCreated))
                .col(integer(Sources::StateRank))
                .col(big_integer(Sources::CreatedAt))
                .col(big_integer(Sources::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sources::Table, Sources::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_sources_company_stripe",
            Sources::Table,
            [Sources::CompanyPk, Sources::StripeId],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(StripeAccounts::Table)
                .col(big_pk_auto(StripeAccounts::Id))
                .col(big_integer(StripeAccounts::CompanyPk))
                .col(string_len(StripeAccounts::AccountId, 255))
                .col(boolean(StripeAccounts::Livemode))
                .col(boolean(StripeAccounts::ChargesEnabled))
                .col(boolean(StripeAccounts::PayoutsEnabled))
                .col(boolean(StripeAccounts::DetailsSubmitted))
                .col(text(StripeAccounts::CurrentlyDue))
                .col(string_len_null(StripeAccounts::DisabledReason, 255))
                .col(big_integer(StripeAccounts::StateCreated))
                .col(big_integer(StripeAccounts::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(StripeAccounts::Table, StripeAccounts::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_stripe_accounts_company_account",
            StripeAccounts::Table,
            [StripeAccounts::CompanyPk, StripeAccounts::AccountId],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(PaymentMethods::Table)
                .col(big_pk_auto(PaymentMethods::Id))
                .col(big_integer(PaymentMethods::CompanyPk))
                .col(string_len(PaymentMethods::StripeId, 255))
                .col(string_len_null(PaymentMethods::Customer, 255))
                .col(string_len_null(PaymentMethods::Brand, 32))
                .col(string_len_null(PaymentMethods::Last4, 8))
                .col(integer_null(PaymentMethods::ExpMonth))
                .col(integer_null(PaymentMethods::ExpYear))
                .col(big_integer(PaymentMethods::StateCreated))
                .col(big_integer(PaymentMethods::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(PaymentMethods::Table, PaymentMethods::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_payment_methods_company_stripe",
            PaymentMethods::Table,
            [PaymentMethods::CompanyPk, PaymentMethods::StripeId],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(IssuingObjects::Table)
                .col(big_pk_auto(IssuingObjects::Id))
                .col(big_integer(IssuingObjects::CompanyPk))
                .col(string_len(IssuingObjects::StripeId, 255))
                .col(string_len(IssuingObjects::Kind, 16))
                .col(string_len_null(IssuingObjects::Status, 32))
                .col(big_integer(IssuingObjects::StateCreated))
                .col(big_integer(IssuingObjects::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(IssuingObjects::Table, IssuingObjects::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_issuing_objects_company_stripe",
            IssuingObjects::Table,
            [IssuingObjects::CompanyPk, IssuingObjects::StripeId],
        ))
        .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    CompanyPk,
    Livemode,
    Kind,
    Status,
    CheckoutSessionId,
    SourceId,
    PaymentIntentId,
    ChargeId,
    Amount,
    Currency,
    CustomerEmail,
    ClientReferenceId,
    Description,
    Metadata,
    ReturnUrl,
    Disputed,
    FulfilledAt,
    StatusCreated,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CheckoutSessions {
    Table,
    Id,
    CompanyPk,
    SessionId,
    OrderId,
    Livemode,
    Status,
    PaymentStatus,
    AmountTotal,
    Currency,
    CustomerEmail,
    PaymentIntentId,
    FulfillmentStatus,
    ClaimUntil,
    FulfilledAt,
    StateCreated,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LineItems {
    Table,
    Id,
    CompanyPk,
    SessionId,
    StripeLineItemId,
    Description,
    Quantity,
    AmountSubtotal,
    AmountTotal,
    Currency,
    PriceId,
    ProductId,
}

#[derive(DeriveIden)]
enum Fulfillments {
    Table,
    Id,
    CompanyPk,
    SessionId,
    OrderId,
    PaymentStatus,
    AmountTotal,
    Currency,
    CustomerEmail,
    LineItemCount,
    FulfilledBy,
    FulfilledAt,
}

#[derive(DeriveIden)]
enum PaymentIntents {
    Table,
    Id,
    CompanyPk,
    StripeId,
    Livemode,
    Status,
    Amount,
    AmountCapturable,
    AmountReceived,
    Currency,
    Customer,
    LastPaymentError,
    CancellationReason,
    Disputed,
    StateCreated,
    StateRank,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Charges {
    Table,
    Id,
    CompanyPk,
    StripeId,
    Livemode,
    PaymentIntentId,
    SourceId,
    Status,
    Amount,
    AmountRefunded,
    Refunded,
    Currency,
    FailureCode,
    FailureMessage,
    Disputed,
    StateCreated,
    StateRank,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Disputes {
    Table,
    Id,
    CompanyPk,
    StripeId,
    Livemode,
    ChargeId,
    PaymentIntentId,
    Status,
    Reason,
    Amount,
    Currency,
    EvidenceDueBy,
    FundsWithdrawn,
    FundsReinstated,
    StateCreated,
    StateRank,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sources {
    Table,
    Id,
    CompanyPk,
    StripeId,
    Livemode,
    Status,
    SourceType,
    Amount,
    Currency,
    StateCreated,
    StateRank,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StripeAccounts {
    Table,
    Id,
    CompanyPk,
    AccountId,
    Livemode,
    ChargesEnabled,
    PayoutsEnabled,
    DetailsSubmitted,
    CurrentlyDue,
    DisabledReason,
    StateCreated,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PaymentMethods {
    Table,
    Id,
    CompanyPk,
    StripeId,
    Customer,
    Brand,
    Last4,
    ExpMonth,
    ExpYear,
    StateCreated,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IssuingObjects {
    Table,
    Id,
    CompanyPk,
    StripeId,
    Kind,
    Status,
    StateCreated,
    UpdatedAt,
}
