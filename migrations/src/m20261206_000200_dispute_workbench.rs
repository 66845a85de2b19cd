//! Issue 18 part 3 (the dispute workbench).
//!
//! - `disputes` gains what Stripe's `evidence_details` says: `submission_count`, `has_evidence`,
//!   `past_due` (the deadline itself is the existing `evidence_due_by`).
//! - `dispute_evidence`: the merchant's evidence as Paygate last saved or submitted it, one row
//!   per dispute (unique company + mode + dispute), so a draft survives and the form shows it;
//!   `status` is `draft`, `submitted` or `accepted`.
//! - `dispute_due_notices`: the `dispute.due_soon` notices sent (`3d`, `1d`), unique per
//!   company + mode + dispute + notice, so each is sent once whatever the number of sweeps and
//!   replicas.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_tenant_tables::Companies;
use crate::unique_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        m.alter_table(
            Table::alter()
                .table(Disputes::Table)
                .add_column(integer(Disputes::SubmissionCount).default(0))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Disputes::Table)
                .add_column(boolean(Disputes::HasEvidence).default(false))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Disputes::Table)
                .add_column(boolean(Disputes::PastDue).default(false))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(DisputeEvidence::Table)
                .col(big_pk_auto(DisputeEvidence::Id))
                .col(big_integer(DisputeEvidence::CompanyPk))
                .col(boolean(DisputeEvidence::Livemode))
                .col(string_len(DisputeEvidence::DisputeId, 255))
                .col(string_len(DisputeEvidence::Status, 16))
                .col(text(DisputeEvidence::Fields))
                .col(big_integer_null(DisputeEvidence::SubmittedAt))
                .col(big_integer(DisputeEvidence::CreatedAt))
                .col(big_integer(DisputeEvidence::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(DisputeEvidence::Table, DisputeEvidence::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_dispute_evidence_company_mode_dispute",
            DisputeEvidence::Table,
            [
                DisputeEvidence::CompanyPk,
                DisputeEvidence::Livemode,
                DisputeEvidence::DisputeId,
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(DisputeDueNotices::Table)
                .col(big_pk_auto(DisputeDueNotices::Id))
                .col(big_integer(DisputeDueNotices::CompanyPk))
                .col(boolean(DisputeDueNotices::Livemode))
                .col(string_len(DisputeDueNotices::DisputeId, 255))
                .col(string_len(DisputeDueNotices::Notice, 8))
                .col(big_integer(DisputeDueNotices::DueBy))
                .col(big_integer(DisputeDueNotices::SentAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(DisputeDueNotices::Table, DisputeDueNotices::CompanyPk)
                        .to(Companies::Table, Companies::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "uq_dispute_due_notices_company_mode_dispute_notice",
            DisputeDueNotices::Table,
            [
                DisputeDueNotices::CompanyPk,
                DisputeDueNotices::Livemode,
                DisputeDueNotices::DisputeId,
                DisputeDueNotices::Notice,
            ],
        ))
        .await?;
        // The sweep looks for disputes due soon.
        m.create_index(
            Index::create()
                .name("ix_disputes_evidence_due_by")
                .table(Disputes::Table)
                .col(Disputes::EvidenceDueBy)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_disputes_evidence_due_by")
                .table(Disputes::Table)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(DisputeDueNotices::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(DisputeEvidence::Table).to_owned())
            .await?;
        for col in [
            Disputes::PastDue,
            Disputes::HasEvidence,
            Disputes::SubmissionCount,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Disputes::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Disputes {
    Table,
    EvidenceDueBy,
    SubmissionCount,
    HasEvidence,
    PastDue,
}

#[derive(DeriveIden)]
enum DisputeEvidence {
    Table,
    Id,
    CompanyPk,
    Livemode,
    DisputeId,
    Status,
    Fields,
    SubmittedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DisputeDueNotices {
    Table,
    Id,
    CompanyPk,
    Livemode,
    DisputeId,
    Notice,
    DueBy,
    SentAt,
}
