//! Outbound notifications: the merchant's endpoints and their signing secrets, the outbox of
//! messages (written in the transaction of the change that caused them), one delivery per
//! message and destination, every attempt, and the per-company shopper e-mail settings.

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
                .table(NotificationEndpoints::Table)
                .col(string_len(NotificationEndpoints::Id, 40).primary_key())
                .col(big_integer(NotificationEndpoints::CompanyPk))
                .col(text(NotificationEndpoints::Url))
                .col(string_len_null(NotificationEndpoints::Description, 500))
                .col(text(NotificationEndpoints::EventTypes))
                .col(boolean(NotificationEndpoints::Enabled))
                .col(text_null(NotificationEndpoints::DisabledReason))
                .col(big_integer_null(NotificationEndpoints::FailingSince))
                .col(big_integer(NotificationEndpoints::CreatedAt))
                .col(big_integer(NotificationEndpoints::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            NotificationEndpoints::Table,
                            NotificationEndpoints::CompanyPk,
                        )
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_notification_endpoints_company",
            NotificationEndpoints::Table,
            [NotificationEndpoints::CompanyPk],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(NotificationEndpointSecrets::Table)
                .col(big_pk_auto(NotificationEndpointSecrets::Id))
                .col(string_len(NotificationEndpointSecrets::EndpointId, 40))
                .col(text(NotificationEndpointSecrets::SecretSealed))
                .col(big_integer(NotificationEndpointSecrets::CreatedAt))
                .col(big_integer_null(NotificationEndpointSecrets::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            NotificationEndpointSecrets::Table,
                            NotificationEndpointSecrets::EndpointId,
                        )
                        .to(NotificationEndpoints::Table, NotificationEndpoints::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_notification_endpoint_secrets_endpoint",
            NotificationEndpointSecrets::Table,
            [NotificationEndpointSecrets::EndpointId],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(NotificationMessages::Table)
                .col(string_len(NotificationMessages::Id, 40).primary_key())
                .col(big_integer(NotificationMessages::CompanyPk))
                .col(string_len(NotificationMessages::EventType, 64))
                .col(boolean(NotificationMessages::Livemode))
                .col(string_len(NotificationMessages::DedupeKey, 255))
                .col(text(NotificationMessages::Payload))
                .col(big_integer(NotificationMessages::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(NotificationMessages::Table, NotificationMessages::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // One domain change, one message: however often its Stripe event is delivered or
        // replayed, the message's key is the same.
        m.create_index(unique_index(
            "uq_notification_messages_company_dedupe",
            NotificationMessages::Table,
            [
                NotificationMessages::CompanyPk,
                NotificationMessages::DedupeKey,
            ],
        ))
        .await?;
        m.create_index(index(
            "ix_notification_messages_company_created",
            NotificationMessages::Table,
            [
                NotificationMessages::CompanyPk,
                NotificationMessages::CreatedAt,
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(NotificationDeliveries::Table)
                .col(big_pk_auto(NotificationDeliveries::Id))
                .col(string_len(NotificationDeliveries::MessageId, 40))
                .col(big_integer(NotificationDeliveries::CompanyPk))
                .col(string_len(NotificationDeliveries::Channel, 16))
                .col(string_len_null(NotificationDeliveries::EndpointId, 40))
                .col(string_len_null(NotificationDeliveries::Recipient, 320))
                .col(string_len_null(NotificationDeliveries::Language, 8))
                .col(string_len(NotificationDeliveries::Status, 16))
                .col(integer(NotificationDeliveries::Attempts).default(0))
                .col(big_integer(NotificationDeliveries::NextAttemptAt))
                .col(big_integer_null(NotificationDeliveries::LockedUntil))
                .col(string_len_null(NotificationDeliveries::LockedBy, 64))
                .col(integer_null(NotificationDeliveries::LastStatusCode))
                .col(text_null(NotificationDeliveries::LastError))
                .col(big_integer_null(NotificationDeliveries::DeliveredAt))
                .col(big_integer(NotificationDeliveries::CreatedAt))
                .col(big_integer(NotificationDeliveries::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            NotificationDeliveries::Table,
                            NotificationDeliveries::MessageId,
                        )
                        .to(NotificationMessages::Table, NotificationMessages::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            NotificationDeliveries::Table,
                            NotificationDeliveries::EndpointId,
                        )
                        .to(NotificationEndpoints::Table, NotificationEndpoints::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_notification_deliveries_due",
            NotificationDeliveries::Table,
            [
                NotificationDeliveries::Status,
                NotificationDeliveries::NextAttemptAt,
            ],
        ))
        .await?;
        m.create_index(index(
            "ix_notification_deliveries_message",
            NotificationDeliveries::Table,
            [NotificationDeliveries::MessageId],
        ))
        .await?;
        m.create_index(index(
            "ix_notification_deliveries_endpoint",
            NotificationDeliveries::Table,
            [
                NotificationDeliveries::EndpointId,
                NotificationDeliveries::Id,
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(NotificationAttempts::Table)
                .col(big_pk_auto(NotificationAttempts::Id))
                .col(big_integer(NotificationAttempts::DeliveryId))
                .col(big_integer(NotificationAttempts::AttemptedAt))
                .col(integer_null(NotificationAttempts::StatusCode))
                .col(integer(NotificationAttempts::DurationMs))
                .col(text_null(NotificationAttempts::Error))
                .col(text_null(NotificationAttempts::ResponseBody))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            NotificationAttempts::Table,
                            NotificationAttempts::DeliveryId,
                        )
                        .to(NotificationDeliveries::Table, NotificationDeliveries::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_notification_attempts_delivery",
            NotificationAttempts::Table,
            [NotificationAttempts::DeliveryId],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(NotificationSettings::Table)
                .col(big_integer(NotificationSettings::CompanyPk).primary_key())
                .col(boolean(NotificationSettings::ShopperEmails).default(false))
                .col(string_len_null(NotificationSettings::SenderName, 200))
                .col(big_integer(NotificationSettings::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(NotificationSettings::Table, NotificationSettings::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        // The shopper's language, for the e-mails about their order.
        m.alter_table(
            Table::alter()
                .table(Orders::Table)
                .add_column(string_len_null(Orders::Locale, 16))
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum NotificationEndpoints {
    Table,
    Id,
    CompanyPk,
    Url,
    Description,
    EventTypes,
    Enabled,
    DisabledReason,
    FailingSince,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NotificationEndpointSecrets {
    Table,
    Id,
    EndpointId,
    SecretSealed,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum NotificationMessages {
    Table,
    Id,
    CompanyPk,
    EventType,
    Livemode,
    DedupeKey,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NotificationDeliveries {
    Table,
    Id,
    MessageId,
    CompanyPk,
    Channel,
    EndpointId,
    Recipient,
    Language,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LockedBy,
    LastStatusCode,
    LastError,
    DeliveredAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NotificationAttempts {
    Table,
    Id,
    DeliveryId,
    AttemptedAt,
    StatusCode,
    DurationMs,
    Error,
    ResponseBody,
}

#[derive(DeriveIden)]
enum NotificationSettings {
    Table,
    CompanyPk,
    ShopperEmails,
    SenderName,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Locale,
}
