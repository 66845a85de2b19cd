//! Orders found by their charge: a legacy Source order's `charge.*` events and a dispute on a
//! charge look the order up by `(company, charge id)`, once per event, so that lookup is indexed.

use sea_orm_migration::prelude::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            "ix_orders_company_charge",
            Orders::Table,
            [Orders::CompanyPk, Orders::ChargeId],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_orders_company_charge")
                .table(Orders::Table)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    CompanyPk,
    ChargeId,
}
