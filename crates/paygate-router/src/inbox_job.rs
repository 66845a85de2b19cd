//! What the inbox writers share: the event to store, a delivery waiting for its commit, the
//! outcome, and the bookkeeping after a commit. Apart from `inbox` (the PostgreSQL writer and
//! the handle) so the SQLite writer in `inbox_sqlite` and `inbox` both depend on it, not on
//! each other.

use tokio::sync::Notify;

/// Inbox row status values.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const PROCESSED: &str = "processed";
    pub const IGNORED: &str = "ignored";
    pub const FAILED: &str = "failed";
    /// A Connect platform's event naming an account no linked company has a profile for (in
    /// the event's mode): acknowledged, listed for the operator, never processed.
    pub const UNROUTABLE: &str = "unroutable";
}

/// An event to store.
#[derive(Debug, Clone)]
pub struct NewInboxEvent {
    pub company_pk: i64,
    pub stripe_event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub account_id: Option<String>,
    pub created: i64,
    pub payload: String,
    /// `webhook`, `recovered` or `test`.
    pub origin: &'static str,
    /// The status it is stored with: [`status::PENDING`], or [`status::UNROUTABLE`].
    pub status: &'static str,
}

pub use crate::reply::{InboxError, InsertOutcome};

pub(crate) struct Job {
    pub(crate) event: NewInboxEvent,
    /// What the SQLite writer will apply in the transaction that stores the event
    /// ([`crate::intake_payments::take`]; decided by the request's task, not by the one writer
    /// thread).
    pub(crate) taken: Option<Taken>,
    pub(crate) reply: crate::reply::Reply,
}

/// A payment intent's event the intake will apply ([`crate::intake_payments::take`]): the row
/// it leaves, and the payment intent it is about (one event per payment intent in a batch).
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) key: (paygate_db::Scope, String),
    pub(crate) row: paygate_db::entities::payment_intent::ActiveModel,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("event", &self.event.stripe_event_id)
            .finish()
    }
}

/// After a group commit of `size` deliveries: the metrics, and the workers woken when
/// something new was stored, so they start at once.
pub(crate) fn committed(
    metrics: &paygate_web::metrics::Metrics,
    wake: &Notify,
    size: usize,
    started: std::time::Instant,
    any_new: bool,
) {
    metrics.inbox_commit.observe(started.elapsed());
    metrics
        .inbox_rows
        .fetch_add(size as u64, std::sync::atomic::Ordering::Relaxed);
    if any_new {
        wake.notify_waiters();
        wake.notify_one();
    }
}

/// Jobs for the writers' tests.
#[cfg(test)]
pub(crate) mod testing {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use tokio::sync::mpsc;

    use super::{Job, NewInboxEvent, status};
    use crate::reply::Reply;

    pub(crate) fn job(i: usize) -> Job {
        Job {
            event: NewInboxEvent {
                company_pk: 1,
                stripe_event_id: format!("evt_{i}"),
                event_type: String::new(),
                livemode: false,
                api_version: None,
                account_id: None,
                created: 0,
                payload: "{}".into(),
                origin: "webhook",
                status: status::PENDING,
            },
            taken: None,
            reply: Reply::channel().0,
        }
    }

    /// Sends `n` jobs, one every `every`, from another task that keeps the sender.
    pub(crate) fn send_paced(tx: mpsc::Sender<Job>, n: usize, every: std::time::Duration) {
        tokio::spawn(async move {
            for i in 0..n {
                tokio::time::sleep(every).await;
                tx.send(job(i)).await.unwrap();
            }
            // The sender stays (a writer whose senders are all gone stops gathering).
            std::future::pending::<()>().await;
            drop(tx);
        });
    }
}
