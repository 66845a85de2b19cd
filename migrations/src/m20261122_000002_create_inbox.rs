//! The durable inbox of Stripe events and the record of rejected deliveries.

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
                .table(InboxEvents::Table)
                .col(big_pk_auto(InboxEvents::Id))
                .col(big_integer(InboxEvents::CompanyPk))
                .col(string_len(InboxEvents::StripeEventId, 255))
                .col(string_len(InboxEvents::EventType, 255))
                .col(boolean(InboxEvents::Livemode))
                .col(string_len_null(InboxEvents::ApiVersion, 64))
                .col(string_len_null(InboxEvents::AccountId, 255))
                .col(big_integer(InboxEvents::Created))
                .col(big_integer(InboxEvents::ReceivedAt))
                .col(string_len(InboxEvents::Origin, 16))
                .col(text(InboxEvents::Payload))
                .col(string_len(InboxEvents::Status, 16))
                .col(integer(InboxEvents::Attempts).default(0))
                .col(big_integer(InboxEvents::NextAttemptAt))
                .col(big_integer_null(InboxEvents::LockedUntil))
                .col(string_len_null(InboxEvents::LockedBy, 64))
                .col(text_null(InboxEvents::LastError))
                .col(big_integer_null(InboxEvents::ProcessedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(InboxEvents::Table, InboxEvents::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_inbox_events_company_event",
            InboxEvents::Table,
            [InboxEvents::CompanyPk, InboxEvents::StripeEventId],
        ))
        .await?;
        // The workers' claim query: due rows by status and time.
        m.create_index(index(
            "ix_inbox_events_due",
            InboxEvents::Table,
            [InboxEvents::Status, InboxEvents::NextAttemptAt],
        ))
        .await?;
        // The event list of one company, newest first.
        m.create_index(index(
            "ix_inbox_events_company_id",
            InboxEvents::Table,
            [InboxEvents::CompanyPk, InboxEvents::Id],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(DeliveryFailures::Table)
                .col(big_pk_auto(DeliveryFailures::Id))
                .col(big_integer(DeliveryFailures::CompanyPk))
                .col(string_len(DeliveryFailures::Reason, 64))
                .col(string_len_null(DeliveryFailures::RemoteAddr, 64))
                .col(big_integer(DeliveryFailures::OccurredAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(DeliveryFailures::Table, DeliveryFailures::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_delivery_failures_company_id",
            DeliveryFailures::Table,
            [DeliveryFailures::CompanyPk, DeliveryFailures::Id],
        ))
        .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum InboxEvents {
    Table,
    Id,
    CompanyPk,
    StripeEventId,
    EventType,
    Livemode,
    ApiVersion,
    AccountId,
    Created,
    ReceivedAt,
    Origin,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LockedBy,
    LastError,
    ProcessedAt,
}

#[derive(DeriveIden)]
enum DeliveryFailures {
    Table,
    Id,
    CompanyPk,
    Reason,
    RemoteAddr,
    OccurredAt,
}
