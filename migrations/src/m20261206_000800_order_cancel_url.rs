//! Issue 20: an order keeps its Checkout Session's `cancel_url` (nullable; older orders and
//! orders not made through `POST /api/v1/checkout-sessions` have none). The shopper's page and
//! e-mail link a failed or expired payment back to it, so the shopper can pay again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Orders::Table)
                .add_column(text_null(Orders::CancelUrl))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Orders::Table)
                .drop_column(Orders::CancelUrl)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    CancelUrl,
}
