//! What the inbox writers share: the event to store, a delivery waiting for its commit, the
//! outcome, and the bookkeeping after a commit. Apart from `inbox` (the PostgreSQL writer and
//! the handle) so the SQLite writer in `inbox_sqlite` and `inbox` both depend on it, not on
//! each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{Notify, mpsc};

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

/// Deliveries that make a batch worth starting at once, gap or sync under way: the pages (on
/// SQLite) or the statement and commit (on PostgreSQL) that a batch costs whatever its size are
/// shared by this many already, and a sender that waits for its answer before the next
/// delivery (a closed loop of 32, where nothing new arrives while a sync is under way) would
/// otherwise find its next batch split in two: on SQLite, with only the gap and the sync, 32
/// senders got 7 994–9 656 events/s against 10 440–12 571 before.
pub(crate) const ENOUGH: usize = 16;

/// Batches a writer handed on and that are not answered yet (on SQLite, to the thread that
/// syncs the WAL): while any is, the writer's next batch waits ([`gather`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct InFlight {
    count: Arc<AtomicUsize>,
    /// Notified whenever none is left.
    idle: Arc<Notify>,
}

impl InFlight {
    /// One more batch handed on.
    pub(crate) fn add(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// `n` batches answered.
    pub(crate) fn done(&self, n: usize) {
        if self.count.fetch_sub(n, Ordering::AcqRel) == n {
            self.idle.notify_one();
        }
    }

    fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }
}

/// The writer's side of the channel while it gathers: how many more deliveries would fill its
/// batch, so that the senders wake it only then.
///
/// Waiting on the channel itself woke the writer for every delivery (each sender's `send`
/// writes the runtime's `eventfd`, and the writer thread is scheduled in, takes one job and
/// sleeps again): at 5 000 events/s the HTTP workers spent 7 % of their time in that write and
/// the writer switched 3 400 times a second for 860 commits. While gathering, the writer now
/// sleeps until the gap (or the sync) ends and takes what waits then; a sender wakes it early
/// only when the queue reaches what the batch still wants ([`Self::sent`]).
///
/// The PostgreSQL writers keep the wake-up per delivery ([`Self::every_delivery`]): their gap
/// ends on the next delivery after it rather than on tokio's timer, which rounds it up to the
/// next millisecond, and three alternated `--find-max` pairs on PostgreSQL did not show the
/// SQLite writer's gain (docs/benchmarks.md, fifteenth pass).
#[derive(Clone, Debug)]
pub(crate) struct Wanted {
    /// Deliveries still wanted; `usize::MAX` while the writer does not gather.
    more: Arc<AtomicUsize>,
    full: Arc<Notify>,
    /// Woken by every delivery while gathering, not only by a full batch.
    each: bool,
}

impl Default for Wanted {
    fn default() -> Self {
        Self {
            more: Arc::new(AtomicUsize::new(usize::MAX)),
            full: Arc::new(Notify::new()),
            each: false,
        }
    }
}

impl Wanted {
    /// A writer woken by every delivery while it gathers.
    pub(crate) fn every_delivery() -> Self {
        Self {
            each: true,
            ..Self::default()
        }
    }

    /// After a send on `tx`: wakes a gathering writer whose batch the queue now fills.
    pub(crate) fn sent<T>(&self, tx: &mpsc::Sender<T>) {
        let queued = tx.max_capacity() - tx.capacity();
        if queued >= self.more.load(Ordering::SeqCst) {
            self.full.notify_one();
        }
    }
}

/// Adds what arrives to `batch` (up to `max_batch`) until `not_before` and, after it, while a
/// batch handed on is not answered (`in_flight`); never past `until`. Returns at once when the
/// batch is full, or when the writer's last sender is gone. Senders wake it only when what
/// waits fills the batch (`wanted`, see [`Wanted`]).
///
/// Every commit costs something whatever it holds: on SQLite each page it touched is written to
/// the WAL again (the leaf that each of a dozen b-trees appends to, the random leaves of the
/// unique indexes, the header: ~15 pages, 31 KB, for a delivery alone of 2 KB); on PostgreSQL a
/// statement and a commit. So a writer under a stream starts a batch at most every gap, and on
/// SQLite not while a sync is under way (nobody committed now would be answered before the next
/// sync anyway): what arrives meanwhile joins the next batch. The first delivery of a quiet
/// spell goes at once (the caller passes a `not_before` already past).
pub(crate) async fn gather(
    rx: &mut mpsc::Receiver<Job>,
    batch: &mut Vec<Job>,
    max_batch: usize,
    not_before: Instant,
    until: Instant,
    in_flight: Option<&InFlight>,
    wanted: &Wanted,
) {
    let stop = |wanted: &Wanted| wanted.more.store(usize::MAX, Ordering::SeqCst);
    loop {
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return stop(wanted),
            }
        }
        let now = Instant::now();
        let waiting = in_flight.is_some_and(InFlight::any);
        if batch.len() >= max_batch || now >= until || (now >= not_before && !waiting) {
            return stop(wanted);
        }
        let more = match wanted.each {
            true => 1,
            false => max_batch - batch.len(),
        };
        wanted.more.store(more, Ordering::SeqCst);
        if rx.len() >= more {
            // Filled between the look above and the store: no sender saw the want.
            continue;
        }
        let wake_at = match now < not_before {
            true => not_before,
            false => until,
        };
        let idle = async {
            match in_flight {
                Some(f) if waiting => f.idle.notified().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            // A permit left by an earlier batch only ends the wait early.
            () = idle => {}
            () = wanted.full.notified() => {}
            () = tokio::time::sleep_until(wake_at.into()) => {}
        }
    }
}

/// Jobs for the writers' tests.
#[cfg(test)]
pub(crate) mod testing {
    use tokio::sync::mpsc;

    use super::{Job, NewInboxEvent, Wanted, status};
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
    pub(crate) fn send_paced(
        tx: mpsc::Sender<Job>,
        wanted: &Wanted,
        n: usize,
        every: std::time::Duration,
    ) {
        let wanted = wanted.clone();
        tokio::spawn(async move {
            for i in 0..n {
                tokio::time::sleep(every).await;
                // The receiver may be gone (its test took what it wanted).
                if tx.send(job(i)).await.is_err() {
                    return;
                }
                wanted.sent(&tx);
            }
            // The sender stays (a writer whose senders are all gone stops gathering).
            std::future::pending::<()>().await;
            drop(tx);
        });
    }
}
