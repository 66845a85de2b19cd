//! The delivery workers' claim counts the deliveries in flight (pending, lease not yet run out)
//! per endpoint and company, to keep each endpoint and company within its limit. Only leased
//! rows carry `locked_until` (recording an attempt clears it), so a partial index over them
//! stays as small as what is in flight, however many deliveries wait for a retry.

use sea_orm_migration::prelude::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut idx = index(
            "ix_notification_deliveries_leased",
            NotificationDeliveries::Table,
            [NotificationDeliveries::LockedUntil],
        );
        idx.and_where(Expr::col(NotificationDeliveries::LockedUntil).is_not_null());
        m.create_index(idx).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_notification_deliveries_leased")
                .table(NotificationDeliveries::Table)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum NotificationDeliveries {
    Table,
    LockedUntil,
}
