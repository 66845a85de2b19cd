//! The durable inbox and its group-commit writer.
//!
//! Policy: an event is acknowledged only after the transaction holding it has committed with
//! the database's durable default. Deliveries that arrive while a commit is in flight wait for
//! the next one and are committed together: one transaction, one flush, every waiting request
//! answered after it. A batch that fails as a whole (say, one row's company was deleted a moment
//! ago) is retried row by row, so one bad row never fails its neighbours.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use paygate_db::now_ms;

use crate::inbox_job::{ENOUGH, Wanted, gather};
pub use crate::inbox_job::{InboxError, InsertOutcome, NewInboxEvent, status};
pub(crate) use crate::inbox_job::{Job, committed};
pub use crate::intake_payments::ObjectFields;
use crate::reply::{Replies, Reply};

/// Handle to the writer tasks; cheap to clone.
#[derive(Clone, Debug)]
pub struct InboxWriter {
    tx: mpsc::Sender<Job>,
    /// What a gathering writer waits for (see [`Wanted`]).
    wanted: Wanted,
    /// SQLite only: whether the writer applies payment intents' events in its own transaction
    /// ([`crate::intake_payments`]), once [`crate::worker::WorkerPool::apply_at_intake`] asked.
    apply: Option<Arc<AtomicBool>>,
    /// SQLite only: asks the writer thread to finalise the statements it keeps prepared on the
    /// pool's connection ([`Self::let_go`]).
    let_go: Option<mpsc::UnboundedSender<oneshot::Sender<()>>>,
}

impl InboxWriter {
    /// Starts `writers` tasks committing batches (on SQLite, one thread: see
    /// [`crate::inbox_sqlite`]) of up to `max_batch` events. `wake` is notified
    /// after each commit that stored something new, so the workers start at once.
    pub fn spawn(
        db: DatabaseConnection,
        writers: usize,
        max_batch: usize,
        wake: Arc<Notify>,
        metrics: Arc<paygate_web::metrics::Metrics>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>(max_batch * writers.max(1) * 8);
        if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            // SQLite has one writer: one thread, driving the connection directly.
            let apply = Arc::new(AtomicBool::new(false));
            let (let_go, let_go_rx) = mpsc::unbounded_channel();
            let wanted = Wanted::default();
            crate::inbox_sqlite::spawn(
                db,
                rx,
                max_batch,
                wake,
                metrics,
                apply.clone(),
                let_go_rx,
                wanted.clone(),
            )?;
            return Ok(Self {
                tx,
                wanted,
                apply: Some(apply),
                let_go: Some(let_go),
            });
        }
        // With when the last batch started: batches start at most every [`BATCH_GAP`], whichever
        // writer takes them.
        let rx = Arc::new(Mutex::new((rx, None)));
        let breaker = Arc::new(Breaker::default());
        let wanted = Wanted::every_delivery();
        for _ in 0..writers.max(1) {
            let rx = rx.clone();
            let breaker = breaker.clone();
            let db = db.clone();
            let wake = wake.clone();
            let metrics = metrics.clone();
            let wanted = wanted.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(max_batch);
                loop {
                    {
                        let mut guard = rx.lock().await;
                        let (rx, last_started) = &mut *guard;
                        let Some(first) = rx.recv().await else { return };
                        batch.push(first);
                        if let Some(last) = *last_started {
                            let gap_ends = last + BATCH_GAP;
                            gather(
                                rx,
                                &mut batch,
                                max_batch.min(ENOUGH),
                                gap_ends,
                                gap_ends,
                                None,
                                &wanted,
                            )
                            .await;
                        }
                        while batch.len() < max_batch {
                            match rx.try_recv() {
                                Ok(j) => batch.push(j),
                                Err(_) => break,
                            }
                        }
                        *last_started = Some(std::time::Instant::now());
                    }
                    let size = batch.len();
                    if breaker.open() {
                        // The database was unreachable a moment ago: answer 503 at once
                        // instead of making every sender wait for a connection.
                        let mut replies = Replies::default();
                        for job in batch.drain(..) {
                            replies.push(job.reply, Err(InboxError(None)));
                        }
                        replies.send();
                        continue;
                    }
                    let started = std::time::Instant::now();
                    let any_new = write_batch(&db, &mut batch, &breaker).await;
                    committed(&metrics, &wake, size, started, any_new);
                }
            });
        }
        Ok(Self {
            tx,
            wanted,
            apply: None,
            let_go: None,
        })
    }

    /// Before the database pool is closed: on SQLite, the writer finalises the statements it
    /// keeps prepared on the pool's one connection (sqlx cannot close a connection that still
    /// has some), and every later batch lets its own go. Returns once they are gone (at once
    /// if the writer has stopped, or on PostgreSQL).
    pub async fn let_go(&self) {
        if let Some(tx) = &self.let_go {
            let (done, rx) = oneshot::channel();
            if tx.send(done).is_ok() {
                let _ = rx.await;
            }
        }
    }

    /// See [`crate::worker::WorkerPool::apply_at_intake`].
    pub(crate) fn apply_payments(&self) {
        if let Some(apply) = &self.apply {
            apply.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the writer applies payment intents' events as it stores them (SQLite, with
    /// `PAYGATE_APPLY_AT_INTAKE`): only then is [`ObjectFields`] worth reading with the
    /// envelope for [`Self::insert_read`].
    pub fn reads_objects(&self) -> bool {
        self.apply
            .as_ref()
            .is_some_and(|a| a.load(Ordering::Relaxed))
    }

    /// Stores one event; returns after the commit.
    pub async fn insert(&self, event: NewInboxEvent) -> Result<InsertOutcome, InboxError> {
        self.insert_read(event, None).await
    }

    /// [`Self::insert`] for an event whose `data.object` was read with its envelope
    /// ([`paygate_wire::envelope::parse_with`]): its body is not read again.
    pub async fn insert_read(
        &self,
        event: NewInboxEvent,
        object: Option<ObjectFields>,
    ) -> Result<InsertOutcome, InboxError> {
        let (reply, rx) = Reply::channel();
        // Whether the writer will apply it, decided here on the request's task: parsing the
        // body and building the row cost the one writer thread nothing.
        let taken = match self.reads_objects() {
            true => crate::intake_payments::take(&event, object),
            false => None,
        };
        self.tx
            .send(Job {
                event,
                taken,
                reply,
            })
            .await
            .map_err(|_| InboxError(None))?;
        self.wanted.sent(&self.tx);
        rx.await.map_err(|_| InboxError(None))?
    }
}

/// The least time between the starts of two batches (each one statement and one commit):
/// what arrives meanwhile joins the next. PostgreSQL's CPU per event goes per statement and per
/// commit; at 1 500 events/s, 1 ms took the commits per event from 0.82–0.93 to 0.61–0.63 and
/// PostgreSQL's CPU per event from 604–648 µs to 514–568 (docs/benchmarks.md, twelfth pass).
/// The first delivery after a quiet spell goes at once.
const BATCH_GAP: std::time::Duration = std::time::Duration::from_millis(1);

/// Stores one event (the row-by-row path after a batch failed).
async fn insert_one(
    db: &DatabaseConnection,
    e: &NewInboxEvent,
    now: i64,
) -> Result<InsertOutcome, DbErr> {
    Ok(insert_many(db, &[e], now)
        .await?
        .pop()
        .unwrap_or(InsertOutcome::Duplicate))
}

/// Inserts the events of a batch on PostgreSQL, bound as one array per column and unnested:
/// a data-modifying `WITH` inserts the inbox rows (`ON CONFLICT DO NOTHING`) and the bodies of
/// the rows that were new, and returns their keys. One statement whatever the batch size: it
/// commits by itself (one round trip, one flush), and each connection prepares it once.
const INSERT_MANY: &str = "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], \
     $4::boolean[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $11::text[]) \
     AS v(company_pk, stripe_event_id, event_type, livemode, api_version, account_id, created, \
     origin, payload, status)), \
     ins AS (INSERT INTO inbox_events (company_pk, stripe_event_id, event_type, livemode, \
     api_version, account_id, created, received_at, origin, status, attempts, next_attempt_at) \
     SELECT company_pk, stripe_event_id, event_type, livemode, api_version, account_id, created, \
     $10, origin, status, 0, $10 FROM v \
     ON CONFLICT (company_pk, livemode, stripe_event_id) DO NOTHING \
     RETURNING id, company_pk, livemode, stripe_event_id), \
     body AS (INSERT INTO inbox_payloads (inbox_event_id, payload) \
     SELECT ins.id, v.payload FROM ins JOIN v USING (company_pk, livemode, stripe_event_id)) \
     SELECT company_pk, livemode, stripe_event_id FROM ins";

/// Inserts many events (with their bodies) in one statement ([`INSERT_MANY`]); the keys the
/// database returns are the ones that were new. Outcomes in the order of `events`.
async fn insert_many(
    db: &DatabaseConnection,
    events: &[&NewInboxEvent],
    now: i64,
) -> Result<Vec<InsertOutcome>, DbErr> {
    // Each key once in the statement (its body row is joined on the key); a repeat within the
    // batch is a duplicate of the first.
    let mut seen: HashSet<(i64, bool, &str)> = HashSet::with_capacity(events.len());
    let distinct: Vec<&NewInboxEvent> = events
        .iter()
        .copied()
        .filter(|e| seen.insert((e.company_pk, e.livemode, e.stripe_event_id.as_str())))
        .collect();
    let column = |f: fn(&NewInboxEvent) -> &str| distinct.iter().map(|e| f(e)).collect::<Vec<_>>();
    let rows: Vec<(i64, bool, String)> = sea_orm::sqlx::query_as(INSERT_MANY)
        .bind(distinct.iter().map(|e| e.company_pk).collect::<Vec<_>>())
        .bind(column(|e| &e.stripe_event_id))
        .bind(column(|e| &e.event_type))
        .bind(distinct.iter().map(|e| e.livemode).collect::<Vec<_>>())
        .bind(
            distinct
                .iter()
                .map(|e| e.api_version.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            distinct
                .iter()
                .map(|e| e.account_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(distinct.iter().map(|e| e.created).collect::<Vec<_>>())
        .bind(column(|e| e.origin))
        .bind(column(|e| &e.payload))
        .bind(now)
        .bind(column(|e| e.status))
        .fetch_all(db.get_postgres_connection_pool())
        .await
        .map_err(|e| match e {
            sea_orm::sqlx::Error::Database(_) => DbErr::Custom(format!("inbox: {e}")),
            // The database could not be reached, or the connection broke.
            e => DbErr::Conn(sea_orm::RuntimeErr::SqlxError(Arc::new(e))),
        })?;
    let mut inserted: HashSet<(i64, bool, String)> = rows.into_iter().collect();
    // The first event of each inserted key takes the "inserted"; repeats are duplicates of it.
    Ok(events
        .iter()
        .map(|e| {
            if inserted.remove(&(e.company_pk, e.livemode, e.stripe_event_id.clone())) {
                InsertOutcome::Inserted
            } else {
                InsertOutcome::Duplicate
            }
        })
        .collect())
}

/// Whether an error says the database could not be reached (rather than refusing a row).
fn unreachable(err: &DbErr) -> bool {
    matches!(err, DbErr::Conn(_) | DbErr::ConnectionAcquire(_))
}

/// Open for [`Breaker::PAUSE`] after the database was found unreachable: deliveries arriving
/// meanwhile are answered 503 at once (Stripe retries them), then one batch tries again.
#[derive(Debug, Default)]
struct Breaker {
    open_until_ms: std::sync::atomic::AtomicI64,
}

impl Breaker {
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

    fn open(&self) -> bool {
        self.open_until_ms
            .load(std::sync::atomic::Ordering::Relaxed)
            > now_ms()
    }

    fn trip(&self) {
        let until = now_ms() + i64::try_from(Self::PAUSE.as_millis()).unwrap_or(500);
        self.open_until_ms
            .store(until, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!("the database is unreachable; deliveries are answered 503 for a moment");
    }
}

/// Writes a batch in one statement; on failure, row by row. Answers every job. Returns
/// whether anything new was stored.
async fn write_batch(db: &DatabaseConnection, batch: &mut Vec<Job>, breaker: &Breaker) -> bool {
    let now = now_ms();
    // In key order: writers inserting the same events (a delivery and its retry, two
    // replicas) then take the unique index's locks in the same order and never deadlock.
    batch.sort_unstable_by(|a, b| {
        (a.event.company_pk, &a.event.stripe_event_id)
            .cmp(&(b.event.company_pk, &b.event.stripe_event_id))
    });
    let events: Vec<&NewInboxEvent> = batch.iter().map(|j| &j.event).collect();
    let together = insert_many(db, &events, now).await;
    let mut any_new = false;
    let mut replies = Replies::default();
    match together {
        Ok(outcomes) => {
            for (job, outcome) in batch.drain(..).zip(outcomes) {
                any_new |= outcome == InsertOutcome::Inserted;
                replies.push(job.reply, Ok(outcome));
            }
        }
        Err(err) if batch.len() == 1 || unreachable(&err) => {
            if unreachable(&err) {
                breaker.trip();
            }
            tracing::error!(error = %err, "inbox insert failed");
            for job in batch.drain(..) {
                replies.push(job.reply, Err(InboxError(Some(err.clone()))));
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, size = batch.len(), "inbox batch failed; retrying row by row");
            for job in batch.drain(..) {
                let r = insert_one(db, &job.event, now).await;
                if let Err(e) = &r {
                    tracing::error!(error = %e, "inbox insert failed");
                }
                any_new |= matches!(r, Ok(InsertOutcome::Inserted));
                // Row by row, each answered as soon as it is stored.
                job.reply.send(r.map_err(|e| InboxError(Some(e))));
            }
        }
    }
    replies.send();
    any_new
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::inbox_job::testing::{job, send_paced};

    /// A batch taken less than the gap after the last one waits for the gap's end, gathering
    /// what arrives; a full batch goes at once: whether every delivery wakes the writer (as
    /// the PostgreSQL writers have it) or only a full batch.
    #[tokio::test]
    async fn a_batch_gathers_until_the_gap_ends() {
        for wanted in [Wanted::every_delivery(), Wanted::default()] {
            gathers_until_the_gap_ends(&wanted).await;
        }
    }

    async fn gathers_until_the_gap_ends(wanted: &Wanted) {
        let ms = Duration::from_millis;
        let (tx, mut rx) = mpsc::channel(64);
        let mut batch = vec![job(100)];
        let t = std::time::Instant::now();
        send_paced(tx, wanted, 3, ms(10));
        gather(
            &mut rx,
            &mut batch,
            64,
            t + ms(150),
            t + ms(150),
            None,
            wanted,
        )
        .await;
        assert_eq!(batch.len(), 4);
        assert!(t.elapsed() >= ms(150), "went before the gap ended");
        assert!(t.elapsed() < ms(3000));

        let (tx, mut rx) = mpsc::channel(64);
        let mut batch = Vec::new();
        let t = std::time::Instant::now();
        send_paced(tx, wanted, 5, ms(1));
        gather(
            &mut rx,
            &mut batch,
            2,
            t + ms(5000),
            t + ms(5000),
            None,
            wanted,
        )
        .await;
        assert_eq!(batch.len(), 2);
        assert!(t.elapsed() < ms(3000), "a full batch waited for the gap");
    }
}
