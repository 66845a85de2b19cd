//! The raw body of each inbox event moves to a table of its own.
//!
//! An inbox row is written once by the intake and then updated by the workers (claimed, then
//! marked processed), and every update rewrites the whole row: with the 2–3 KB body inside it,
//! each one rewrote a page per event. The body never changes after the intake, so it lives in
//! `inbox_payloads`, keyed by the inbox row's id, and the row the workers update is ~150 bytes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(InboxPayloads::Table)
                .col(big_integer(InboxPayloads::InboxEventId).primary_key())
                .col(text(InboxPayloads::Payload))
                .foreign_key(
                    ForeignKey::create()
                        .from(InboxPayloads::Table, InboxPayloads::InboxEventId)
                        .to(InboxEvents::Table, InboxEvents::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(InboxPayloads::Table)
                .columns([InboxPayloads::InboxEventId, InboxPayloads::Payload])
                .select_from(
                    Query::select()
                        .columns([InboxEvents::Id, InboxEvents::Payload])
                        .from(InboxEvents::Table)
                        .to_owned(),
                )
                .map_err(|e| DbErr::Migration(e.to_string()))?
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(InboxEvents::Table)
                .drop_column(InboxEvents::Payload)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(InboxEvents::Table)
                .add_column(text(InboxEvents::Payload).default(""))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::update()
                .table(InboxEvents::Table)
                .value(
                    InboxEvents::Payload,
                    SimpleExpr::SubQuery(
                        None,
                        Box::new(SubQueryStatement::SelectStatement(
                            Query::select()
                                .column(InboxPayloads::Payload)
                                .from(InboxPayloads::Table)
                                .and_where(
                                    Expr::col((InboxPayloads::Table, InboxPayloads::InboxEventId))
                                        .equals((InboxEvents::Table, InboxEvents::Id)),
                                )
                                .to_owned(),
                        )),
                    ),
                )
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(InboxPayloads::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum InboxEvents {
    Table,
    Id,
    Payload,
}

#[derive(DeriveIden)]
enum InboxPayloads {
    Table,
    InboxEventId,
    Payload,
}
