//! Rejected deliveries, counted per company with reason and time — never the body.
//!
//! Recording happens off the request path: the intake hands the record to a channel and answers
//! at once; a background task writes records in batches and keeps at most
//! [`KEEP_PER_COMPANY`] rows per company. When the channel is full (a flood), records are
//! dropped rather than slowing the intake down.

use std::collections::HashSet;

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use paygate_db::Tenant;
use paygate_db::entities::delivery_failure;

/// Rows kept per company.
pub const KEEP_PER_COMPANY: u64 = 1000;

enum Msg {
    Record(delivery_failure::ActiveModel),
    Flush(oneshot::Sender<()>),
}

/// Handle to the recorder task.
#[derive(Clone, Debug)]
pub struct FailureRecorder {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl FailureRecorder {
    /// Starts the recorder task.
    pub fn spawn(db: DatabaseConnection) -> Self {
        let (tx, mut rx) = mpsc::channel::<Msg>(4096);
        tokio::spawn(async move {
            let mut rows = Vec::new();
            let mut flushes = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                while let Some(m) = next.take().or_else(|| rx.try_recv().ok()) {
                    match m {
                        Msg::Record(r) => rows.push(r),
                        Msg::Flush(f) => flushes.push(f),
                    }
                    if rows.len() >= 500 {
                        break;
                    }
                }
                if !rows.is_empty()
                    && let Err(e) = write(&db, std::mem::take(&mut rows)).await
                {
                    tracing::warn!(error = %e, "could not record rejected deliveries");
                }
                for f in flushes.drain(..) {
                    let _ = f.send(());
                }
            }
        });
        Self { tx }
    }

    /// Records one rejected delivery, without waiting.
    pub fn record(&self, company_pk: i64, reason: &str, remote_addr: Option<String>) {
        let row = delivery_failure::ActiveModel {
            company_pk: Set(company_pk),
            reason: Set(reason.to_owned()),
            remote_addr: Set(remote_addr),
            occurred_at: Set(paygate_db::now_ms()),
            ..Default::default()
        };
        let _ = self.tx.try_send(Msg::Record(row));
    }

    /// Waits until every record handed over so far is written (tests, shutdown).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn write(
    db: &DatabaseConnection,
    rows: Vec<delivery_failure::ActiveModel>,
) -> Result<(), sea_orm::DbErr> {
    let companies: HashSet<i64> = rows
        .iter()
        .filter_map(|r| r.company_pk.clone().take())
        .collect();
    let txn = db.begin().await?;
    // Insert one by one: a company deleted meanwhile must not fail the others.
    for r in rows {
        let _ = delivery_failure::Entity::insert(r)
            .exec_without_returning(&txn)
            .await;
    }
    for pk in companies {
        let tenant = Tenant::new(pk);
        let cutoff: Option<i64> = tenant
            .find::<delivery_failure::Entity>()
            .select_only()
            .column(delivery_failure::Column::Id)
            .order_by_desc(delivery_failure::Column::Id)
            .offset(KEEP_PER_COMPANY)
            .limit(1)
            .into_tuple()
            .one(&txn)
            .await?;
        if let Some(cutoff) = cutoff {
            tenant
                .delete::<delivery_failure::Entity>()
                .filter(delivery_failure::Column::Id.lte(cutoff))
                .exec(&txn)
                .await?;
        }
    }
    txn.commit().await
}
