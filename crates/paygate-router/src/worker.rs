//! Workers over the inbox.
//!
//! Policy: a worker claims due rows (`pending`, due, lease free or expired) and leases them; on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED`, so any number of replicas share the queue without
//! waiting on each other; on SQLite the single connection makes the claim exclusive. Each event
//! is dispatched and marked `processed` or `ignored`; a failure is retried with exponential
//! backoff and jitter until `max_attempts`, then marked `failed`, its last error and attempt
//! count visible; a handler error that cannot heal (a payload without the fields it needs) fails
//! at once. A worker that dies mid-event leaves the lease to expire: the event is claimed
//! again, and the handlers being idempotent, the second run changes nothing. An outcome is
//! recorded only by the worker still holding the event. On PostgreSQL, the events handled in
//! the claim's own transaction are held by the claim's row lock and are not leased (a lease
//! would write each row once more, only to be released before the commit).
//!
//! Within a batch, the claim and the database-only handlers share one transaction (savepoints
//! only when the batch is rerun after a failure, see [`WorkerPool::run_once`]); handlers that
//! call Stripe run after it commits, up to `concurrency` at once, events about one Stripe object
//! one after the other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, TransactionTrait, UpdateMany,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use paygate_db::entities::{inbox_event, inbox_payload};
use paygate_db::{Scope, now_ms};
use paygate_stripe::StripeClient;
use paygate_tenant::TenantService;
use paygate_web::metrics::Metrics;

use crate::handlers::{
    EventMeta, HandlerCtx, HandlerError, HandlerResult, Outcome, calls_stripe, dispatch,
    dispatch_many,
};
use crate::inbox::status;
use paygate_notify::outbox::OutboxBatch;

/// A claimed inbox event: what its handler and its outcome need, with the raw body.
#[derive(Clone, Debug, FromQueryResult)]
pub struct ClaimedEvent {
    pub id: i64,
    pub company_pk: i64,
    pub stripe_event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub account_id: Option<String>,
    pub created: i64,
    pub attempts: i32,
    pub payload: String,
}

/// Knobs of the workers.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Rows claimed at once.
    pub batch_size: u64,
    /// Events of a batch whose handlers call Stripe handled at once (the others share one
    /// transaction and run one after the other).
    pub concurrency: usize,
    /// Attempts before an event is marked `failed`.
    pub max_attempts: i32,
    /// How long a claim holds.
    pub lease: Duration,
    /// First retry delay; doubles per attempt, with jitter.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// How often an idle worker looks for due retries.
    pub poll_interval: Duration,
    /// How long a worker waits after a partial batch before claiming again.
    pub linger: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            concurrency: 16,
            max_attempts: 8,
            lease: Duration::from_secs(60),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(3600),
            poll_interval: Duration::from_secs(1),
            linger: Duration::from_millis(5),
        }
    }
}

/// A pool of workers of one process; cheap to clone.
#[derive(Clone, Debug)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: DatabaseConnection,
    tenants: TenantService,
    stripe: StripeClient,
    config: WorkerConfig,
    wake: Arc<Notify>,
    id: String,
    metrics: Arc<Metrics>,
    /// Where thin events' reconciliations store what they recover (set by the server).
    writer: std::sync::OnceLock<crate::inbox::InboxWriter>,
    /// SQLite: a read-only connection on which due events are read before the write
    /// transaction begins (see [`WorkerPool::set_reader`]).
    reader: std::sync::OnceLock<DatabaseConnection>,
}

impl WorkerPool {
    /// A pool; `wake` is notified by the inbox writer when something new arrives.
    pub fn new(
        db: DatabaseConnection,
        tenants: TenantService,
        stripe: StripeClient,
        config: WorkerConfig,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let id = paygate_db::new_id("wrk");
        Self {
            inner: Arc::new(Inner {
                db,
                tenants,
                stripe,
                config,
                wake,
                id,
                metrics,
                writer: std::sync::OnceLock::new(),
                reader: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Gives the pool the inbox writer: a thin `v2.core.health.event_generation_failure.resolved`
    /// reconciles its window into the inbox through it. Set once; later calls change nothing.
    pub fn set_writer(&self, writer: crate::inbox::InboxWriter) {
        let _ = self.inner.writer.set(writer);
    }

    /// Gives the pool a read-only connection to the same SQLite file
    /// ([`paygate_db::connect_reader`]). Each batch's due events, bodies included, are then read
    /// and parsed there, while the intake keeps committing; the write transaction that follows
    /// only leases them (checking nobody took them meanwhile), applies them and records the
    /// outcomes, and holds the one writer that much shorter. Set once.
    pub fn set_reader(&self, reader: DatabaseConnection) {
        let _ = self.inner.reader.set(reader);
    }

    /// Another pool over the same inbox with the same knobs and an id of its own: a second
    /// worker task of this process.
    pub fn sibling(&self) -> Self {
        let i = &self.inner;
        let s = Self::new(
            i.db.clone(),
            i.tenants.clone(),
            i.stripe.clone(),
            i.config.clone(),
            i.wake.clone(),
            i.metrics.clone(),
        );
        if let Some(w) = i.writer.get() {
            s.set_writer(w.clone());
        }
        if let Some(r) = i.reader.get() {
            s.set_reader(r.clone());
        }
        s
    }

    /// This pool's id, written to `inbox_events.locked_by` while it holds an event.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Claims up to a batch of due events (in a transaction of its own).
    pub async fn claim(&self) -> Result<Vec<ClaimedEvent>, DbErr> {
        let txn = self.inner.db.begin().await?;
        let rows = self.claim_in(&txn, Hold::Lease).await?;
        txn.commit().await?;
        Ok(rows)
    }

    /// Claims up to a batch of due events within `txn`: the leases hold once it commits (on
    /// PostgreSQL the rows stay locked to other claimers until then). With [`Hold::Lock`] (only
    /// on PostgreSQL, see [`WorkerPool::holds_by_lock`]) only the events handled after the
    /// commit, those that call Stripe, are leased: the others are handled and recorded in `txn`,
    /// under the lock of the claim.
    async fn claim_in(
        &self,
        txn: &DatabaseTransaction,
        hold: Hold,
    ) -> Result<Vec<ClaimedEvent>, DbErr> {
        let rows = self
            .claim_query()
            .into_model::<ClaimedEvent>()
            .all(txn)
            .await?;
        let leased = rows
            .iter()
            .filter(|r| hold == Hold::Lease || calls_stripe(&r.event_type));
        self.lease(txn, leased.map(|r| r.id).collect()).await?;
        Ok(rows)
    }

    /// The query of a claim: the due events ([`WorkerPool::due`]), on PostgreSQL locked.
    fn claim_query(&self) -> sea_orm::Select<inbox_event::Entity> {
        let mut q = self.due(now_ms());
        if self.inner.db.get_database_backend() == DatabaseBackend::Postgres {
            // The inbox rows only: the bodies are never updated, and locking a row writes to it.
            QueryTrait::query(&mut q).lock_with_tables_behavior(
                LockType::Update,
                [inbox_event::Entity],
                LockBehavior::SkipLocked,
            );
        }
        q
    }

    /// The statement a claim runs, as built now, so that its plan can be inspected (a claim
    /// must read the oldest due events in order and stop at a batch, whatever the backlog).
    pub fn claim_statement(&self) -> sea_orm::Statement {
        self.claim_query()
            .build(self.inner.db.get_database_backend())
    }

    /// Whether rows claimed in a transaction stay out of other claimers' reach until it
    /// commits without a lease: on PostgreSQL the claim locks them (`FOR UPDATE`), and a
    /// lease would write every row once more (a new version and new index entries) only to be
    /// released in the same transaction. On SQLite the lease is also how a batch read before
    /// its transaction checks that nobody took its events meanwhile, so every row is leased.
    fn holds_by_lock(&self) -> bool {
        self.inner.db.get_database_backend() == DatabaseBackend::Postgres
    }

    /// Leases the rows `ids` within `txn` if they are still due and nobody holds them; returns
    /// how many it leased.
    async fn lease<C: ConnectionTrait>(&self, txn: &C, ids: Vec<i64>) -> Result<u64, DbErr> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let done = inbox_event::Entity::update_many()
            .col_expr(
                inbox_event::Column::LockedUntil,
                Expr::value(now + self.inner.config.lease.as_millis() as i64),
            )
            .col_expr(
                inbox_event::Column::LockedBy,
                Expr::value(self.inner.id.clone()),
            )
            .filter(inbox_event::Column::Id.is_in(ids))
            .filter(inbox_event::Column::Status.eq(status::PENDING))
            .filter(lease_free(now))
            .exec(txn)
            .await?;
        Ok(done.rows_affected)
    }

    /// The query of up to a batch of due events (`pending`, due, lease free or expired), oldest
    /// first, with their bodies.
    fn due(&self, now: i64) -> sea_orm::Select<inbox_event::Entity> {
        use inbox_event::Column as C;
        inbox_event::Entity::find()
            .select_only()
            .columns([
                C::Id,
                C::CompanyPk,
                C::StripeEventId,
                C::EventType,
                C::Livemode,
                C::AccountId,
                C::Created,
                C::Attempts,
            ])
            .column(inbox_payload::Column::Payload)
            .inner_join(inbox_payload::Entity)
            .filter(inbox_event::Column::Status.eq(status::PENDING))
            .filter(inbox_event::Column::NextAttemptAt.lte(now))
            .filter(lease_free(now))
            .order_by_asc(inbox_event::Column::Id)
            .limit(self.inner.config.batch_size)
    }

    /// Runs the handler of one claimed event within `db`.
    async fn handle<C: ConnectionTrait + TransactionTrait>(
        &self,
        row: &ClaimedEvent,
        db: &C,
        outbox: Option<&OutboxBatch>,
    ) -> HandlerResult {
        let i = &self.inner;
        let v: serde_json::Value = serde_json::from_str(&row.payload)
            .map_err(|e| HandlerError::Payload(format!("stored payload is not JSON: {e}")))?;
        let meta = meta_of(row);
        let ctx = HandlerCtx {
            db,
            pool: &i.db,
            tenants: &i.tenants,
            stripe: &i.stripe,
            scope: Scope::of_livemode(row.company_pk, row.livemode),
            event: &meta,
            object: &v["data"]["object"],
            previous_attributes: v["data"].get("previous_attributes"),
            outbox,
        };
        let span = tracing::info_span!(
            "event",
            event_id = %row.stripe_event_id,
            event_type = %row.event_type,
            company_pk = row.company_pk,
        );
        if v["object"].as_str() == Some("v2.core.event") {
            let thin = crate::handlers::thin::handle(&ctx, &v, i.writer.get());
            return tracing::Instrument::instrument(thin, span).await;
        }
        tracing::Instrument::instrument(dispatch(&ctx), span).await
    }

    /// Runs the handlers of `rows` within `db`, those that can be together in one go
    /// ([`dispatch_many`]); stops at the first failure (the rest are not run, and reported
    /// failed too).
    async fn handle_all<C: ConnectionTrait + TransactionTrait>(
        &self,
        rows: &[&ClaimedEvent],
        parsed: Option<Vec<serde_json::Value>>,
        db: &C,
        outbox: &OutboxBatch,
    ) -> Vec<HandlerResult> {
        let i = &self.inner;
        let parsed = match parsed.map_or_else(|| parse_all(rows), Ok) {
            Ok(values) => values
                .into_iter()
                .zip(rows)
                .map(|(v, row)| (v, meta_of(row)))
                .collect::<Vec<_>>(),
            Err(e) => {
                // Reported per event when the batch is rerun one event at a time.
                let msg = format!("a stored payload of the batch is not JSON: {e}");
                return rows
                    .iter()
                    .map(|_| Err(HandlerError::Other(msg.clone())))
                    .collect();
            }
        };
        let ctxs: Vec<HandlerCtx<'_, C>> = rows
            .iter()
            .zip(&parsed)
            .map(|(row, (v, meta))| HandlerCtx {
                db,
                pool: &i.db,
                tenants: &i.tenants,
                stripe: &i.stripe,
                scope: Scope::of_livemode(row.company_pk, row.livemode),
                event: meta,
                object: &v["data"]["object"],
                previous_attributes: v["data"].get("previous_attributes"),
                outbox: Some(outbox),
            })
            .collect();
        let span = tracing::info_span!("batch", events = rows.len());
        tracing::Instrument::instrument(dispatch_many(&ctxs), span).await
    }

    /// From now on, on SQLite, `writer` applies payment intents' events in the transaction
    /// that stores them ([`crate::intake_payments`]); the workers handle the rest. Set once;
    /// without it (an intake-only replica, `PAYGATE_WORKERS=false`) every event waits for the
    /// workers. No effect on PostgreSQL.
    pub fn apply_at_intake(&self, writer: &crate::inbox::InboxWriter) {
        writer.apply_payments();
    }

    /// Records the outcome of one event (only while this worker still holds it, as `hold`
    /// says).
    async fn record<C: ConnectionTrait>(
        &self,
        row: &ClaimedEvent,
        result: HandlerResult,
        db: &C,
        hold: Hold,
    ) -> Result<(), DbErr> {
        let i = &self.inner;
        let now = now_ms();
        let mine = self.held(hold).add(inbox_event::Column::Id.eq(row.id));
        match result {
            Ok(outcome) => {
                let st = outcome_status(outcome);
                i.metrics.handler(&row.event_type, st);
                self.mark_done(vec![row.id], st, db, hold).await?;
            }
            Err(e) => {
                let attempts = row.attempts + 1;
                let give_up = !e.retryable() || attempts >= i.config.max_attempts;
                let msg = paygate_web::error_chain(&e);
                tracing::warn!(event_id = %row.stripe_event_id, event_type = %row.event_type, attempts, error = %msg, "handler failed");
                i.metrics
                    .handler(&row.event_type, if give_up { "failed" } else { "retry" });
                let delay = backoff(&i.config, attempts);
                released()
                    .col_expr(
                        inbox_event::Column::Status,
                        Expr::value(if give_up {
                            status::FAILED
                        } else {
                            status::PENDING
                        }),
                    )
                    .col_expr(inbox_event::Column::Attempts, Expr::value(attempts))
                    .col_expr(
                        inbox_event::Column::NextAttemptAt,
                        Expr::value(now + delay.as_millis() as i64),
                    )
                    .col_expr(inbox_event::Column::LastError, Expr::value(msg))
                    .filter(mine)
                    .exec(db)
                    .await?;
            }
        }
        Ok(())
    }

    /// Handles one claimed event on its own and records the outcome.
    pub async fn process(&self, row: &ClaimedEvent) -> Result<(), DbErr> {
        let result = self.handle(row, &self.inner.db, None).await;
        self.record(row, result, &self.inner.db, Hold::Lease).await
    }

    /// The rows this worker holds, as `hold` says: those it leased, or (within the transaction
    /// that claimed them) those still pending, since the claim's lock keeps everyone else from
    /// changing them.
    fn held(&self, hold: Hold) -> Condition {
        match hold {
            Hold::Lease => {
                Condition::all().add(inbox_event::Column::LockedBy.eq(self.inner.id.clone()))
            }
            Hold::Lock => Condition::all().add(inbox_event::Column::Status.eq(status::PENDING)),
        }
    }

    /// Marks events that were handled successfully, all in one statement per outcome; they
    /// were claimed in the same transaction, so they are this worker's (held as `hold` says).
    async fn record_done<C: ConnectionTrait>(
        &self,
        done: &[(&ClaimedEvent, Outcome)],
        db: &C,
        hold: Hold,
    ) -> Result<(), DbErr> {
        for (outcome, st) in [
            (Outcome::Processed, status::PROCESSED),
            (Outcome::Ignored, status::IGNORED),
        ] {
            let ids: Vec<i64> = done
                .iter()
                .filter(|(_, o)| *o == outcome)
                .map(|(r, _)| r.id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            self.mark_done(ids, st, db, hold).await?;
        }
        Ok(())
    }

    /// Marks events `st` (processed or ignored) and releases them, if this worker still holds
    /// them (as `hold` says).
    async fn mark_done<C: ConnectionTrait>(
        &self,
        ids: Vec<i64>,
        st: &str,
        db: &C,
        hold: Hold,
    ) -> Result<(), DbErr> {
        released()
            .col_expr(inbox_event::Column::Status, Expr::value(st))
            .col_expr(
                inbox_event::Column::Attempts,
                Expr::col(inbox_event::Column::Attempts).add(1),
            )
            .col_expr(inbox_event::Column::ProcessedAt, Expr::value(now_ms()))
            .col_expr(
                inbox_event::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(inbox_event::Column::Id.is_in(ids))
            .filter(self.held(hold))
            .exec(db)
            .await?;
        Ok(())
    }

    /// Claims and handles one batch; returns how many events it handled.
    ///
    /// The claim, the database-only handlers, their messages and their outcomes share one
    /// transaction: one commit for the whole batch instead of several per event. Handlers are
    /// first run one after the other with nothing between them, their messages written together
    /// at the end; if any fails (or the messages cannot be written), the whole transaction is
    /// rolled back and the batch is claimed and run again with a savepoint around each handler
    /// and its messages, so a failing handler rolls back only its own changes and its failure
    /// is recorded. Handlers that call Stripe run afterwards, on their own, so no transaction
    /// waits on the network.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        match self.run_batch(false).await? {
            Some(n) => Ok(n),
            None => Ok(self.run_batch(true).await?.unwrap_or(0)),
        }
    }

    /// One batch; `None` when an optimistic run (`careful` false) met a failing handler or
    /// could not write the batch's messages, and rolled everything back.
    async fn run_batch(&self, careful: bool) -> Result<Option<usize>, DbErr> {
        let i = &self.inner;
        // How the events handled in the batch's transaction are held: on SQLite every claim
        // leases (see `holds_by_lock`).
        let hold = if self.holds_by_lock() {
            Hold::Lock
        } else {
            Hold::Lease
        };
        // With a reader (SQLite), optimistically: the due events are read and their bodies
        // parsed before the write transaction begins, so the one writer is held only for
        // leasing, applying and recording them.
        let early = match (careful, i.reader.get()) {
            (false, Some(reader)) => {
                let rows = self
                    .due(now_ms())
                    .into_model::<ClaimedEvent>()
                    .all(reader)
                    .await?;
                if rows.is_empty() {
                    return Ok(Some(0));
                }
                let together: Vec<&ClaimedEvent> = rows
                    .iter()
                    .filter(|r| !calls_stripe(&r.event_type))
                    .collect();
                // A body that is not JSON is found (and reported) again inside.
                let parsed = parse_all(&together).ok();
                Some((rows, parsed))
            }
            _ => None,
        };
        let (txn, rows, parsed) = match early {
            Some((rows, parsed)) => {
                let txn = i.db.begin().await?;
                let ids = rows.iter().map(|r| r.id).collect();
                if self.lease(&txn, ids).await? == rows.len() as u64 {
                    (txn, rows, parsed)
                } else {
                    // Some were taken meanwhile (another task, an operator's replay): claim
                    // afresh inside the transaction.
                    txn.rollback().await?;
                    let txn = i.db.begin().await?;
                    let rows = self.claim_in(&txn, hold).await?;
                    (txn, rows, None)
                }
            }
            None => {
                let txn = i.db.begin().await?;
                let rows = self.claim_in(&txn, hold).await?;
                (txn, rows, None)
            }
        };
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(Some(0));
        }
        let (solo, together): (Vec<_>, Vec<_>) =
            rows.iter().partition(|r| calls_stripe(&r.event_type));
        let mut done = Vec::with_capacity(together.len());
        // Optimistically, the messages of the whole batch are written together at the end;
        // carefully, each with its own handler, so a failure to write one is that handler's.
        let outbox = OutboxBatch::default();
        if careful {
            for row in together {
                let sp = txn.begin().await?;
                let result = self.handle(row, &sp, None).await;
                match result {
                    Ok(outcome) => {
                        sp.commit().await?;
                        done.push((row, outcome));
                    }
                    Err(e) => {
                        sp.rollback().await?;
                        self.record(row, Err(e), &txn, hold).await?;
                    }
                }
            }
        } else {
            let results = self.handle_all(&together, parsed, &txn, &outbox).await;
            for (row, result) in together.iter().zip(results) {
                match result {
                    Ok(outcome) => done.push((row, outcome)),
                    Err(_) => {
                        txn.rollback().await?;
                        return Ok(None);
                    }
                }
            }
        }
        if let Err(e) = outbox.flush(&txn).await {
            tracing::debug!(error = %e, "writing the batch's messages failed; handling it event by event");
            txn.rollback().await?;
            return Ok(None);
        }
        self.record_done(&done, &txn, hold).await?;
        txn.commit().await?;
        for (row, outcome) in &done {
            i.metrics.handler(&row.event_type, outcome_status(*outcome));
        }
        // Each on its own, a bounded number at once. Events about the same Stripe object run
        // one after the other (three deliveries of one `source.chargeable` in a batch make one
        // call to Stripe, not three racing ones); every outcome is recorded before the first
        // error (if any) is reported.
        let jobs: Vec<_> = by_object(solo)
            .into_iter()
            .map(|group| async move {
                let mut first_error = None;
                for row in group {
                    if let Err(e) = self.process(row).await {
                        first_error.get_or_insert(e);
                    }
                }
                first_error.map_or(Ok(()), Err)
            })
            .collect();
        let results: Vec<Result<(), DbErr>> = futures_util::stream::iter(jobs)
            .buffer_unordered(i.config.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<(), DbErr>>()?;
        Ok(Some(rows.len()))
    }

    /// Handles events until none is due (retries scheduled later are left for later); returns
    /// how many were handled. Tests call this instead of sleeping.
    pub async fn drain(&self) -> Result<usize, DbErr> {
        let mut total = 0;
        loop {
            let n = self.run_once().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Runs until `cancel` fires, finishing the current batch first.
    pub fn spawn(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if cancel.is_cancelled() {
                    return;
                }
                match me.run_once().await {
                    Ok(n) if n as u64 >= me.inner.config.batch_size => continue,
                    Ok(n) if n > 0 => {
                        // A partial batch: more is probably arriving. Leave the database to
                        // the intake for a moment and take the next ones together, rather
                        // than a batch of one now (on SQLite the two share one connection).
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(me.inner.config.linger) => {}
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "worker could not reach the inbox"),
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = me.inner.wake.notified() => {}
                    _ = tokio::time::sleep(me.inner.config.poll_interval) => {}
                }
            }
        })
    }
}

/// Groups events by the Stripe object they are about (`data.object.id`, per company and mode), keeping
/// the order of arrival within a group.
fn by_object(rows: Vec<&ClaimedEvent>) -> Vec<Vec<&ClaimedEvent>> {
    let mut groups: Vec<Vec<&ClaimedEvent>> = Vec::new();
    let mut index: HashMap<(i64, bool, String), usize> = HashMap::new();
    for row in rows {
        let object_id = serde_json::from_str::<serde_json::Value>(&row.payload)
            .ok()
            .and_then(|v| v["data"]["object"]["id"].as_str().map(str::to_owned));
        match object_id {
            Some(id) => match index.get(&(row.company_pk, row.livemode, id.clone())) {
                Some(&i) => groups[i].push(row),
                None => {
                    index.insert((row.company_pk, row.livemode, id), groups.len());
                    groups.push(vec![row]);
                }
            },
            None => groups.push(vec![row]),
        }
    }
    groups
}

/// How a worker holds the events it claimed until it records their outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// `locked_by` and `locked_until` written at the claim: holds beyond the claim's
    /// transaction, until the lease runs out.
    Lease,
    /// The row lock of the claim (`FOR UPDATE`, PostgreSQL): holds until the claim's
    /// transaction ends, in which the outcome is recorded.
    Lock,
}

/// Rows nobody holds at `now`: never leased, released, or their lease expired.
fn lease_free(now: i64) -> Condition {
    Condition::any()
        .add(inbox_event::Column::LockedUntil.is_null())
        .add(inbox_event::Column::LockedUntil.lt(now))
}

/// An update of inbox rows that releases their lease.
fn released() -> UpdateMany<inbox_event::Entity> {
    released_in(inbox_event::Entity::update_many())
}

/// `update` that also releases the rows' lease.
fn released_in(update: UpdateMany<inbox_event::Entity>) -> UpdateMany<inbox_event::Entity> {
    update
        .col_expr(
            inbox_event::Column::LockedUntil,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(
            inbox_event::Column::LockedBy,
            Expr::value(Option::<String>::None),
        )
}

/// Parses the bodies of `rows`, in order; the first error if any is not JSON.
fn parse_all(rows: &[&ClaimedEvent]) -> Result<Vec<serde_json::Value>, serde_json::Error> {
    rows.iter()
        .map(|r| serde_json::from_str(&r.payload))
        .collect()
}

fn meta_of(row: &ClaimedEvent) -> EventMeta {
    EventMeta {
        id: row.stripe_event_id.clone(),
        event_type: row.event_type.clone(),
        kind: paygate_wire::EventType::parse(&row.event_type),
        created: row.created,
        livemode: row.livemode,
        account: row.account_id.clone(),
    }
}

fn outcome_status(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Processed => status::PROCESSED,
        Outcome::Ignored => status::IGNORED,
    }
}

fn backoff(c: &WorkerConfig, attempts: i32) -> Duration {
    let exp = c
        .backoff_base
        .saturating_mul(2u32.saturating_pow(attempts.clamp(1, 30) as u32 - 1));
    let capped = exp.min(c.backoff_max);
    // Full jitter between half and all of the delay.
    capped.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// Makes a stored event due again (operator replay). Returns false when it does not exist or
/// is a Connect platform's unroutable event (those are never processed).
pub async fn replay(
    db: &DatabaseConnection,
    scope: Scope,
    stripe_event_id: &str,
) -> Result<bool, DbErr> {
    let n = released_in(scope.update::<inbox_event::Entity>())
        .col_expr(inbox_event::Column::Status, Expr::value(status::PENDING))
        .col_expr(inbox_event::Column::Attempts, Expr::value(0))
        .col_expr(inbox_event::Column::NextAttemptAt, Expr::value(now_ms()))
        .filter(inbox_event::Column::StripeEventId.eq(stripe_event_id))
        // A platform's unroutable event is never processed for the platform.
        .filter(inbox_event::Column::Status.ne(status::UNROUTABLE))
        .exec(db)
        .await?
        .rows_affected;
    Ok(n > 0)
}
