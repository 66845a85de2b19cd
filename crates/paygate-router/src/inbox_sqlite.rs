//! The inbox writer on SQLite: one thread that commits batches on the pool's own connection.
//!
//! SQLite has a single writer, so going through the async driver costs more than the work: each
//! statement of a batch (`BEGIN`, the insert, `COMMIT`) is a message to the driver's thread and a
//! wake-up back, and a multi-row insert has to be built, bound and its `RETURNING` rows streamed
//! back one by one. Here the writer thread borrows the pool's connection, locks its raw handle
//! (sqlx lets nobody else touch the connection while it is locked) and runs the whole batch
//! synchronously: `BEGIN IMMEDIATE`, two prepared inserts per delivery (the inbox row and its
//! body in `inbox_payloads`), `COMMIT`. While more deliveries wait, or the next one comes
//! within [`IDLE_WAIT`], it goes on with the next batch on the same connection, for up to
//! [`HOLD`]: one hand-over in and one out for all of them (each is a round trip through sqlx's
//! thread, which spent 6.5–7.8 % of a core on them at 4 000 events/s, 2.5–3.2 % with the hold,
//! 1.4–1.6 % at 5 000 events/s since it waits through short gaps). Nobody is answered before
//! their commit is on disk (see [`Syncer`]). Within a hold, commits start at most every
//! [`COMMIT_GAP`] and not while a sync is under way: what arrives meanwhile is gathered into
//! the next commit ([`gather`]), since each commit writes every page it touched again. The
//! connection writes the WAL through `paygate_db::wal_vfs`, which hands a commit's frames to
//! the kernel in one `pwrite`.
//!
//! Routine checkpoints (copying the WAL back into the database file, with its own `fsync`) are
//! not run by the committing connection, where one would stall every waiting delivery for
//! ~10 ms every thousand pages: the connection is opened with `wal_autocheckpoint = 0` and a
//! checkpointer thread with its own connection runs `PRAGMA wal_checkpoint(PASSIVE)`, which
//! never blocks the writer, after every few thousand deliveries and at least every second.
//!
//! A passive checkpoint alone never lets the WAL start over under steady load: SQLite rewinds
//! the log only when a write begins after a checkpoint that caught up with every frame, and
//! with commits arriving all the time it never quite does. The log (and the shared-memory index
//! mapped into the process) then grows for as long as the load lasts: 23 GB of WAL and 90 MB of
//! index after five minutes of the end-to-end benchmark. So once the log holds more than
//! [`WAL_RESTART_FRAMES`], the checkpointer runs a few more passive passes back to back (each
//! copying what was committed during the one before, until one is quick) and then asks the
//! writer thread to run a last `wal_checkpoint(PASSIVE)` between two batches, on the connection
//! that commits, so that nothing is committed while it runs: it copies the few frames left and
//! syncs, and the next transaction, finding every frame copied, rewinds the log. (Not
//! `RESTART`: it would wait, sleeping, for the workers' read-only connection to end a read,
//! and a rewind missed because a read was under way is asked for again after the next pass.)
//! The writer's pass costs what its copy and its `fsync` of the pages it copies cost, so the
//! fewer frames the catch-up passes leave it, the shorter the moment nothing is committed: at
//! 6 000 events/s, 1.3 ms a restart after up to 16 passes (the last under 300 µs), 3.6–5.1 ms
//! after up to 4 (under 1 ms), 9 ms after none (docs/benchmarks.md, thirteenth pass). The WAL
//! stays within a few tens of MB, and a log left large by an earlier run is truncated at start.
//!
//! Using the same connection as everything else (rather than a second one) keeps SQLite's one
//! writer at a time inside this process: the workers' read-then-write transactions never meet a
//! snapshot changed under them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::sqlx::SqlitePool;
use sea_orm::{DatabaseConnection, DbErr};

use tokio::sync::{Notify, mpsc, oneshot};

use paygate_db::now_ms;

use crate::inbox_job::{
    ENOUGH, InFlight, InboxError, InsertOutcome, Job, Wanted, committed, gather, status,
};
use crate::intake_payments;
use crate::reply::{Replies, Reply};

const INSERT: &str = "INSERT INTO inbox_events \
    (company_pk, stripe_event_id, event_type, livemode, api_version, account_id, created, \
     received_at, origin, status, attempts, next_attempt_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?8) \
    ON CONFLICT (company_pk, livemode, stripe_event_id) DO NOTHING";

/// [`INSERT`] for an event the intake applies in the same transaction
/// ([`intake_payments`]): stored `processed` after one attempt.
const INSERT_APPLIED: &str = "INSERT INTO inbox_events \
    (company_pk, stripe_event_id, event_type, livemode, api_version, account_id, created, \
     received_at, origin, status, attempts, next_attempt_at, processed_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?8, ?8) \
    ON CONFLICT (company_pk, livemode, stripe_event_id) DO NOTHING";

const INSERT_PAYLOAD: &str = "INSERT INTO inbox_payloads (inbox_event_id, payload) VALUES (?1, ?2)";

/// Starts the writer thread; it ends when every sender of `rx` is gone.
#[expect(
    clippy::too_many_arguments,
    reason = "the writer's wiring, passed once"
)]
pub(crate) fn spawn(
    db: DatabaseConnection,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    wake: Arc<Notify>,
    metrics: Arc<paygate_web::metrics::Metrics>,
    apply: Arc<AtomicBool>,
    mut let_go: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    wanted: Wanted,
) -> std::io::Result<()> {
    let pool = db.get_sqlite_connection_pool().clone();
    // Fails early (not on the thread) if the runtime cannot be built.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("inbox-writer".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
                let mut held = Held::default();
                // No file (an in-memory database): nothing to checkpoint.
                let path = held
                    .with(
                        &pool,
                        |c| Ok(c.path().filter(|p| !p.is_empty()).map(str::to_owned)),
                        true,
                    )
                    .await;
                let path = path.ok().flatten();
                if path.is_some() {
                    // A log left large by an earlier run goes back to zero bytes, before any
                    // delivery waits on this connection.
                    let _ = held
                        .with(&pool, |c| Ok(checkpoint(c, "TRUNCATE")), true)
                        .await;
                }
                // The batches' commits are made durable by a thread of their own, while the
                // writer goes on with the next batch (see [`Syncer`]).
                let syncer = path
                    .as_deref()
                    .and_then(|p| Syncer::start(p, wake.clone(), metrics.clone()));
                let checkpointer = path.and_then(|p| Checkpointer::start(p, WAL_RESTART_FRAMES));
                let mut since_checkpoint = 0usize;
                // Asked to let the statements go (the pool is about to close): from then on
                // every batch finalises what it prepared before it gives the connection back.
                let mut closing = false;
                loop {
                    if let Some(c) = &checkpointer
                        && c.restart_wanted()
                    {
                        // Between two batches, with the connection to itself: nobody else
                        // writes, so the checkpoint takes the writer lock at once.
                        let started = std::time::Instant::now();
                        let done = held
                            .with(&pool, |c| Ok(checkpoint(c, "PASSIVE")), !closing)
                            .await;
                        metrics.wal_restart.observe(started.elapsed());
                        c.restarted(done.unwrap_or(Checkpointed::Failed));
                    }
                    let asked = async {
                        match &checkpointer {
                            Some(c) => c.asked.notified().await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        n = rx.recv_many(&mut batch, max_batch) => if n == 0 { break },
                        () = asked => continue,
                        Some(done) = let_go.recv() => {
                            closing = true;
                            held.let_go(&pool).await;
                            let _ = done.send(());
                            continue;
                        }
                    }
                    let apply = apply.load(Ordering::Relaxed);
                    let held_since = std::time::Instant::now();
                    // Batch after batch on the connection, while more wait and for at most
                    // [`HOLD`]: one hand-over of the connection for them all.
                    let run = async |c: &rusqlite::Connection| {
                        // The [`Syncer`] makes these commits durable: they do not sync the
                        // WAL themselves (set for the hold, not for each commit).
                        let unsynced = syncer.is_some() && set_synchronous(c, false);
                        loop {
                            let size = batch.len();
                            let started = std::time::Instant::now();
                            let answers = write_batch(c, &mut batch, apply, &metrics);
                            since_checkpoint += size;
                            if since_checkpoint >= CHECKPOINT_EVERY
                                && let Some(c) = &checkpointer
                            {
                                c.poke();
                                since_checkpoint = 0;
                            }
                            committed(&metrics, &wake, size, started, false);
                            match &syncer {
                                Some(s) => s.after_sync(answers),
                                None => answers.send(None, &wake),
                            }
                            if held_since.elapsed() >= HOLD
                                || checkpointer
                                    .as_ref()
                                    .is_some_and(Checkpointer::restart_pending)
                            {
                                break;
                            }
                            while batch.len() < max_batch {
                                match rx.try_recv() {
                                    Ok(job) => batch.push(job),
                                    Err(_) => break,
                                }
                            }
                            let hold_ends = held_since + HOLD;
                            gather(
                                &mut rx,
                                &mut batch,
                                max_batch.min(ENOUGH),
                                (started + COMMIT_GAP).min(hold_ends),
                                hold_ends,
                                syncer.as_ref().map(|s| &s.in_flight),
                                &wanted,
                            )
                            .await;
                            if batch.is_empty() {
                                // Nothing waits yet: the next delivery of a busy stream is
                                // a moment away. Waiting for it here, the connection still
                                // held, spares a hand-over back and forth through sqlx's
                                // thread; a quiet stream lets it go after [`IDLE_WAIT`].
                                let left = HOLD.saturating_sub(held_since.elapsed());
                                let wait = rx.recv_many(&mut batch, max_batch);
                                match tokio::time::timeout(left.min(IDLE_WAIT), wait).await {
                                    Ok(n) if n > 0 => {}
                                    _ => break,
                                }
                            }
                        }
                        // Back to what everyone else commits with, whatever happened.
                        if unsynced {
                            set_synchronous(c, true);
                        }
                        Ok(())
                    };
                    if let Err(e) = held.with_async(&pool, run, !closing).await {
                        // The connection could not be had: nothing of the batch is stored.
                        tracing::error!(error = %e, size = batch.len(), "inbox batch failed");
                        let answers = Answers {
                            replies: batch.drain(..).map(|j| (j.reply, Err(e.clone()))).collect(),
                            any_new: false,
                            committed: false,
                        };
                        answers.send(None, &wake);
                    }
                }
                // Every sender is gone: the pool (kept open by `pool` until now) may close.
                held.let_go(&pool).await;
            });
        })?;
    Ok(())
}

fn db_err(e: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("inbox: {e}"))
}

/// Deliveries between two checkpoints (a few WAL pages each).
const CHECKPOINT_EVERY: usize = 3000;

/// How long the writer keeps the connection for batch after batch while more wait, at most:
/// taking it from the pool and handing it back is a round trip through the driver's thread
/// each time, and the workers' and the pages' queries wait no longer than this for it.
const HOLD: std::time::Duration = std::time::Duration::from_millis(5);

/// The least time between the starts of two commits of one hold ([`gather`]). At 4 000
/// events/s, 1 ms gave ~4 deliveries a commit instead of 1.1: 31 KB written to the disk per
/// event instead of 52 KB, and 181 µs of CPU per event instead of 275 (docs/benchmarks.md,
/// twelfth pass); 500 µs gave 207 µs.
const COMMIT_GAP: std::time::Duration = std::time::Duration::from_millis(1);

/// How long the writer, holding the connection, waits for the next delivery when none waits
/// (tokio's timer rounds it up to its next millisecond): a stream at a few thousand events a
/// second has the next one in well under that.
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_micros(500);

/// WAL frames (2 KiB pages) above which the checkpointer makes the log start over: ~32 MiB,
/// about a second of the intake at full speed.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Passive passes run back to back before the writer is asked to finish the checkpoint, at most.
/// Each copies what was committed during the one before, so they shrink towards the least a
/// pass costs (its two syncs); the writer's own pass then copies about one pass's worth.
/// At 6 000 events/s, the writer's pass (nothing committed meanwhile) took 1.3 ms after up to
/// 16 passes with [`CAUGHT_UP`] at 300 µs, 2.6–3.0 ms after up to 8 (500 µs), 3.6–5.1 ms after
/// up to 4 (1 ms), 7.5 ms after up to 10 (3 ms); the checkpointer's CPU did not change (4 % of
/// a core).
const CATCH_UP_PASSES: usize = 16;

/// A passive pass this quick had little to copy: the writer's own pass will be as quick.
const CAUGHT_UP: std::time::Duration = std::time::Duration::from_micros(300);

/// What a checkpoint did.
#[derive(Clone, Copy, Debug)]
enum Checkpointed {
    /// It ran; the log holds this many frames.
    Done {
        log_frames: i64,
    },
    /// Another checkpoint was running (SQLite answers at once, without waiting), or a reader
    /// or writer kept it from finishing.
    Busy,
    Failed,
}

/// Runs `PRAGMA wal_checkpoint(<mode>)`.
fn checkpoint(c: &rusqlite::Connection, mode: &str) -> Checkpointed {
    let row = c.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    });
    match row {
        Ok((0, log_frames)) => Checkpointed::Done { log_frames },
        Ok(_) => Checkpointed::Busy,
        Err(e) => {
            tracing::warn!(error = %e, mode, "WAL checkpoint failed");
            Checkpointed::Failed
        }
    }
}

/// A thread checkpointing the WAL through its own connection; ends with the writer. When the
/// log has grown past the restart threshold it asks the writer (the one connection that
/// commits) to finish the checkpoint between two batches, so that the log rewinds.
struct Checkpointer {
    tx: std::sync::mpsc::SyncSender<()>,
    restart: Arc<std::sync::atomic::AtomicBool>,
    /// Wakes an idle writer when a restart is wanted.
    asked: Arc<Notify>,
}

impl Checkpointer {
    /// `restart_frames`: see [`WAL_RESTART_FRAMES`].
    fn start(path: String, restart_frames: i64) -> Option<Self> {
        let c = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| tracing::warn!(error = %e, "the WAL checkpointer could not open the database"))
        .ok()?;
        let _ = c.busy_timeout(std::time::Duration::from_secs(10));
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let restart = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = Arc::new(Notify::new());
        let (restart_flag, ask) = (restart.clone(), asked.clone());
        let spawned = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                // Asked for (`Ok`) or a second without asking (`Timeout`): checkpoint.
                while let Ok(()) | Err(RecvTimeoutError::Timeout) =
                    rx.recv_timeout(std::time::Duration::from_secs(1))
                {
                    if restart_flag.load(std::sync::atomic::Ordering::Relaxed) {
                        // The writer is about to checkpoint; a pass now would only make it
                        // find the checkpoint taken.
                        continue;
                    }
                    if let Checkpointed::Done { log_frames } = checkpoint(&c, "PASSIVE")
                        && log_frames > restart_frames
                    {
                        // What the writer has left to copy is what was committed since the
                        // last pass began, and the cost of its copy is mostly the `fsync` of
                        // the pages it writes (~30 µs a page here): passes back to back, each
                        // copying what came in during the one before, until one is quick,
                        // leave it a few milliseconds' worth instead of a pass's.
                        for _ in 0..CATCH_UP_PASSES {
                            let started = std::time::Instant::now();
                            checkpoint(&c, "PASSIVE");
                            if started.elapsed() < CAUGHT_UP {
                                break;
                            }
                        }
                        restart_flag.store(true, std::sync::atomic::Ordering::Relaxed);
                        ask.notify_one();
                    }
                }
                // The writer is gone: leave the WAL checkpointed for the next start.
                checkpoint(&c, "PASSIVE");
            });
        match spawned {
            Ok(_) => Some(Self { tx, restart, asked }),
            Err(e) => {
                tracing::warn!(error = %e, "the WAL checkpointer thread could not start");
                None
            }
        }
    }

    /// Asks for a checkpoint soon (a no-op while one is already asked for).
    fn poke(&self) {
        let _ = self.tx.try_send(());
    }

    /// Whether a restart is asked for (without taking the request).
    fn restart_pending(&self) -> bool {
        self.restart.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the writer should finish a checkpoint now (once per request).
    fn restart_wanted(&self) -> bool {
        self.restart
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// The writer finished the checkpoint: if the checkpointer's own pass was running
    /// just then, it is asked again (at once if it is idle: the checkpointer skips its own
    /// passes while a restart is pending).
    fn restarted(&self, outcome: Checkpointed) {
        if matches!(outcome, Checkpointed::Busy) {
            self.restart
                .store(true, std::sync::atomic::Ordering::Relaxed);
            self.asked.notify_one();
        }
    }
}

/// The writer's own handle on the pool's connection, kept from one batch to the next with the
/// statements it prepared (SQLite's `prepare` of the batch's half-dozen statements was a sixth
/// of the writer's time at 4 000 events/s, when a batch holds five events).
///
/// sqlx closes a connection with `sqlite3_close`, and panics if a statement prepared on it is
/// still alive. The pool closes its connection only when it is closed or dropped (no idle
/// timeout, no lifetime: see `paygate_db::connect`). It is not dropped while the writer lives
/// (the writer holds a clone), and the writer finalises its statements ([`Held::let_go`]) when
/// its last sender is gone, before it lets its clone go; whoever closes the pool first asks the
/// writer to let them go ([`crate::inbox::InboxWriter::let_go`], `Paygate::stop`), and from then
/// on every batch finalises what it prepared before it gives the connection back. Until then
/// the statements stay prepared between batches, however long the writer idles: finalising
/// them whenever no batch waited (as before) meant preparing them all again for most batches
/// below full speed, 12.8 % of the writer's time at 5 000 events/s (docs/benchmarks.md,
/// eighth pass). A kept statement is reset after each use, so it holds no lock and no snapshot
/// while sqlx has the connection.
#[derive(Default)]
struct Held {
    kept: Option<(usize, rusqlite::Connection)>,
}

impl Held {
    /// Runs `f` on the pool's connection, borrowed through sqlx's lock on its raw handle; keeps
    /// its statements prepared afterwards if `keep`, else finalises them first.
    async fn with<R>(
        &mut self,
        pool: &SqlitePool,
        f: impl FnOnce(&rusqlite::Connection) -> Result<R, DbErr>,
        keep: bool,
    ) -> Result<R, DbErr> {
        self.with_async(pool, async |c| f(c), keep).await
    }

    /// [`Self::with`] for an `f` that may wait (the connection stays borrowed meanwhile).
    async fn with_async<R>(
        &mut self,
        pool: &SqlitePool,
        f: impl AsyncFnOnce(&rusqlite::Connection) -> Result<R, DbErr>,
        keep: bool,
    ) -> Result<R, DbErr> {
        let mut conn = pool.acquire().await.map_err(db_err)?;
        let mut locked = conn.lock_handle().await.map_err(db_err)?;
        let raw = locked.as_raw_handle().as_ptr();
        if self
            .kept
            .as_ref()
            .is_some_and(|(at, _)| *at != raw as usize)
            && let Some((_, stale)) = self.kept.take()
        {
            // Another connection than last time: the one before cannot have been closed with
            // statements alive (sqlx would have panicked), but finalising them on a handle that
            // may be gone is not worth the risk: they are left.
            std::mem::forget(stale);
        }
        let c = match &mut self.kept {
            Some((_, c)) => c,
            kept @ None => {
                // SAFETY: `raw` is the open connection of `locked`, which gives this thread
                // exclusive use of it until `locked` drops; `c` does not own the handle (it
                // will not close it), and it is only used while a later lock is held on the
                // same handle (checked above). Its statements are finalised under such a lock
                // before the pool may close the connection (see the type's documentation).
                #[allow(unsafe_code)]
                let c = unsafe { rusqlite::Connection::from_handle(raw) }.map_err(db_err)?;
                c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                &mut kept.insert((raw as usize, c)).1
            }
        };
        let r = f(c).await;
        if !keep {
            c.flush_prepared_statement_cache();
        }
        drop(locked);
        r
    }

    /// Finalises the kept statements (none kept: nothing to do, no connection taken).
    async fn let_go(&mut self, pool: &SqlitePool) {
        if self.kept.is_some()
            && let Err(e) = self.with(pool, |_| Ok(()), false).await
        {
            tracing::error!(error = %e, "inbox: the statements kept prepared could not be let go");
        }
    }
}

/// Statements the writer keeps prepared: its own half-dozen, with room to spare.
const STATEMENT_CACHE: usize = 32;

/// A batch's answers, sent once its commit is durable.
struct Answers {
    replies: Vec<(Reply, Result<InsertOutcome, DbErr>)>,
    /// Something new waits for the workers.
    any_new: bool,
    /// Something was committed (the batch did not fail as a whole).
    committed: bool,
}

impl Answers {
    /// Answers every job (each stored event as failed if the log could not be synced: it is
    /// stored, but not known to be durable) and wakes the workers if something new waits.
    fn send(self, unsynced: Option<&std::io::Error>, wake: &Notify) {
        let mut replies = Replies::default();
        for (reply, outcome) in self.replies {
            let outcome = match (outcome, unsynced) {
                (Ok(InsertOutcome::Inserted), Some(e)) => {
                    Err(db_err(format!("the WAL could not be synced: {e}")))
                }
                (outcome, _) => outcome,
            };
            replies.push(reply, outcome.map_err(|e| InboxError(Some(e))));
        }
        replies.send();
        if self.any_new && unsynced.is_none() {
            wake.notify_waiters();
            wake.notify_one();
        }
    }
}

/// The thread that makes the writer's commits durable: the writer commits with
/// `synchronous = NORMAL` (the WAL frames written, not synced) and hands the batch's answers
/// over; this thread runs `fdatasync` on the WAL file and answers every batch committed before
/// it began. Nobody is told their event is stored before it is on disk, as with
/// `synchronous = FULL`, but the writer builds and commits the next batch while the disk
/// syncs the last one, where it used to wait (the commit time of a batch of a few events was a
/// third `fdatasync`).
///
/// The guarantees are SQLite's own: in WAL mode a `NORMAL` commit writes its frames before it
/// returns, a checkpoint syncs the WAL before it copies frames into the database and the
/// database before the log may start over, and the log's header is synced when it does. So a
/// frame is either in the log when this thread syncs it, or already in a synced database
/// file. The workers' own transactions stay `FULL` (the setting is changed for the writer's
/// batches only), and they are woken once the events they will find are durable.
struct Syncer {
    tx: std::sync::mpsc::Sender<Answers>,
    /// Batches handed over and not yet answered: while any is, a sync is under way or about
    /// to start.
    in_flight: InFlight,
}

impl Syncer {
    /// `None` (the writer then commits with `synchronous = FULL`) when the WAL file cannot be
    /// opened or the thread cannot start.
    fn start(
        db_path: &str,
        wake: Arc<Notify>,
        metrics: Arc<paygate_web::metrics::Metrics>,
    ) -> Option<Self> {
        let wal = std::fs::File::open(format!("{db_path}-wal"))
            .map_err(|e| tracing::warn!(error = %e, "the WAL file could not be opened for syncing; the inbox commits with synchronous = FULL"))
            .ok()?;
        let (tx, rx) = std::sync::mpsc::channel::<Answers>();
        let in_flight = InFlight::default();
        let answered = in_flight.clone();
        let spawned = std::thread::Builder::new()
            .name("inbox-sync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut all = vec![first];
                    all.extend(rx.try_iter());
                    let n = all.len();
                    let synced = match all.iter().any(|a| a.committed) {
                        true => {
                            let began = std::time::Instant::now();
                            let synced = wal.sync_data();
                            metrics.inbox_sync.observe(began.elapsed());
                            synced
                        }
                        false => Ok(()),
                    };
                    if let Err(e) = &synced {
                        tracing::error!(error = %e, "the WAL could not be synced");
                    }
                    for answers in all {
                        answers.send(synced.as_ref().err(), &wake);
                    }
                    answered.done(n);
                }
            });
        match spawned {
            Ok(_) => Some(Self { tx, in_flight }),
            Err(e) => {
                tracing::warn!(error = %e, "the inbox sync thread could not start; the inbox commits with synchronous = FULL");
                None
            }
        }
    }

    /// Answers `answers` once what was committed so far is on disk.
    fn after_sync(&self, answers: Answers) {
        self.in_flight.add();
        if let Err(std::sync::mpsc::SendError(answers)) = self.tx.send(answers) {
            self.in_flight.done(1);
            // The thread is gone (it panicked): nothing is known to be durable.
            let gone = std::io::Error::other("the inbox sync thread stopped");
            answers.send(Some(&gone), &Notify::new());
        }
    }
}

/// Commits a batch on `c`; returns every job's answer. With `apply`, the payment intents'
/// events among them are applied in the same transaction ([`intake_payments`]); if that fails,
/// the batch is stored again without.
fn write_batch(
    c: &rusqlite::Connection,
    batch: &mut Vec<Job>,
    apply: bool,
    metrics: &paygate_web::metrics::Metrics,
) -> Answers {
    let now = now_ms();
    let apply = apply && batch.iter().any(|j| j.taken.is_some());
    let mut outcomes = insert_all(c, batch, now, apply);
    if apply && let Err(e) = &outcomes {
        tracing::debug!(error = %e, "storing the batch with its payments applied failed; storing it plainly");
        outcomes = insert_all(c, batch, now, false);
    }
    let mut answers = Answers {
        replies: Vec::with_capacity(batch.len()),
        any_new: false,
        committed: outcomes.is_ok(),
    };
    match outcomes {
        Ok(Stored { outcomes, applied }) => {
            for (i, (job, outcome)) in batch.drain(..).zip(outcomes).enumerate() {
                if applied.get(i).copied().unwrap_or(false) {
                    metrics.handler(&job.event.event_type, status::PROCESSED);
                } else {
                    answers.any_new |= matches!(outcome, Ok(InsertOutcome::Inserted));
                }
                if let Err(e) = &outcome {
                    tracing::error!(error = %e, "inbox insert failed");
                }
                answers.replies.push((job.reply, outcome));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, size = batch.len(), "inbox batch failed");
            for job in batch.drain(..) {
                answers.replies.push((job.reply, Err(err.clone())));
            }
        }
    }
    answers
}

/// What [`insert_all`] committed: the outcome of each job, and (when it applied any) which
/// of their events it applied.
struct Stored {
    outcomes: Vec<Result<InsertOutcome, DbErr>>,
    applied: Vec<bool>,
}

/// One transaction for the batch. A row that fails on its own (a constraint: its company was
/// deleted a moment ago) fails alone and the others commit; anything that ends the transaction
/// fails the whole batch, and then nobody is told their event was stored. With `apply`, the
/// payment intents' events just stored are applied before the commit; if that fails, nothing
/// of the batch is stored.
fn insert_all(
    c: &rusqlite::Connection,
    batch: &[Job],
    now: i64,
    apply: bool,
) -> Result<Stored, DbErr> {
    if !c.is_autocommit() {
        // A transaction left open by a failure that could not be rolled back then (say, the
        // disk was full): end it now, or every later batch would fail to begin.
        rollback(c);
    }
    run_cached(c, "BEGIN IMMEDIATE")?;
    let run = || -> Result<Stored, DbErr> {
        let mut insert = c.prepare_cached(INSERT).map_err(db_err)?;
        let mut insert_applied = match apply {
            true => Some(c.prepare_cached(INSERT_APPLIED).map_err(db_err)?),
            false => None,
        };
        let mut insert_payload = c.prepare_cached(INSERT_PAYLOAD).map_err(db_err)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut applied = vec![false; if apply { batch.len() } else { 0 }];
        let mut taken: Vec<(&crate::inbox_job::NewInboxEvent, &crate::inbox_job::Taken)> =
            Vec::new();
        let mut keys = std::collections::HashSet::new();
        for (i, job) in batch.iter().enumerate() {
            let e = &job.event;
            // Applied here (stored `processed`): the first event of the batch about its
            // payment intent that the intake takes; every other one waits for the workers.
            let take = match (&mut insert_applied, &job.taken) {
                (Some(st), Some(t)) if !keys.contains(&t.key) => Some((st, t)),
                _ => None,
            };
            let stored_as = match take {
                Some(_) => status::PROCESSED,
                None => e.status,
            };
            let params = rusqlite::params![
                e.company_pk,
                e.stripe_event_id,
                e.event_type,
                e.livemode,
                e.api_version,
                e.account_id,
                e.created,
                now,
                e.origin,
                stored_as,
            ];
            let (r, take) = match take {
                Some((st, t)) => (st.execute(params), Some(t)),
                None => (insert.execute(params), None),
            };
            match r {
                Ok(1) => {
                    // The body of the row just inserted. Its id is new, so only a failure of
                    // the database itself can fail this: then the whole batch is not stored.
                    insert_payload
                        .execute(rusqlite::params![c.last_insert_rowid(), e.payload])
                        .map_err(db_err)?;
                    outcomes.push(Ok(InsertOutcome::Inserted));
                    if let Some(t) = take {
                        keys.insert(t.key.clone());
                        taken.push((e, t));
                        applied[i] = true;
                    }
                }
                Ok(_) => outcomes.push(Ok(InsertOutcome::Duplicate)),
                Err(e) if !c.is_autocommit() => outcomes.push(Err(db_err(e))),
                // The error rolled the transaction back: nothing of this batch is stored.
                Err(e) => return Err(db_err(e)),
            }
        }
        if !taken.is_empty() {
            intake_payments::apply(c, &taken)?;
        }
        Ok(Stored { outcomes, applied })
    };
    match run() {
        Ok(stored) => match run_cached(c, "COMMIT") {
            Ok(()) => Ok(stored),
            Err(e) => {
                rollback(c);
                Err(db_err(e))
            }
        },
        Err(e) => {
            rollback(c);
            Err(e)
        }
    }
}

/// Sets `PRAGMA synchronous` on `c` to `FULL` (`full`) or `NORMAL`; whether it was set. A
/// commit with the setting left as it was (`FULL`) is only synced once more than needed, so a
/// failure is logged, not passed on.
fn set_synchronous(c: &rusqlite::Connection, full: bool) -> bool {
    // The setting cannot change inside a transaction: end one a failure left open.
    rollback(c);
    let sql = match full {
        true => "PRAGMA synchronous = FULL",
        false => "PRAGMA synchronous = NORMAL",
    };
    let set = run_cached(c, sql);
    if let Err(e) = &set {
        tracing::error!(error = %e, sql, "inbox: could not set synchronous");
    }
    set.is_ok()
}

/// Runs a statement without parameters or rows (`BEGIN`, `COMMIT`), prepared once.
fn run_cached(c: &rusqlite::Connection, sql: &str) -> Result<(), DbErr> {
    c.prepare_cached(sql)
        .and_then(|mut st| st.execute([]))
        .map(|_| ())
        .map_err(db_err)
}

/// Rolls back the open transaction, if there is one.
fn rollback(c: &rusqlite::Connection) {
    if !c.is_autocommit()
        && let Err(e) = c.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "inbox: could not roll back; retried before the next batch");
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use crate::inbox_job::testing::{job, send_paced};

    /// A single-threaded runtime with timers, for one test.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A directory of this test process's own (the caller removes it).
    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("paygate-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The writer gathers a stream's deliveries into one commit: until the commit gap ends
    /// (and not once the batch is full: `inbox::tests::a_batch_gathers_until_the_gap_ends`,
    /// for both kinds of writer), then while a sync is under way; never past the hold.
    #[test]
    fn a_stream_is_gathered_into_one_commit_until_the_gap_and_the_sync_end() {
        use std::time::{Duration, Instant};
        let rt = runtime();
        let dir = scratch_dir("gather");
        let db = dir.join("g.db");
        std::fs::write(dir.join("g.db-wal"), b"").unwrap();
        rt.block_on(async {
            let ms = Duration::from_millis;
            let wanted = Wanted::default();
            // The gap over, it waits while a sync is under way, and goes when it ends.
            let wake = Arc::new(Notify::new());
            let metrics = Arc::new(paygate_web::metrics::Metrics::default());
            let syncer = Syncer::start(db.to_str().unwrap(), wake, metrics).unwrap();
            syncer.in_flight.add();
            let (in_flight, flight) = (syncer.in_flight.clone(), Some(&syncer.in_flight));
            tokio::spawn(async move {
                tokio::time::sleep(ms(200)).await;
                in_flight.done(1);
            });
            let (tx, mut rx) = mpsc::channel(64);
            let mut batch = Vec::new();
            let t = Instant::now();
            send_paced(tx, &wanted, 2, ms(10));
            gather(&mut rx, &mut batch, 64, t, t + ms(5000), flight, &wanted).await;
            assert_eq!(batch.len(), 2);
            assert!(
                t.elapsed() >= ms(200),
                "committed while the sync was under way"
            );
            assert!(t.elapsed() < ms(3000), "waited past the sync's end");

            // A sync that does not end holds the batch no longer than the hold.
            syncer.in_flight.add();
            let (_tx, mut rx) = mpsc::channel(64);
            let mut batch = vec![job(0)];
            let t = Instant::now();
            gather(&mut rx, &mut batch, 64, t, t + ms(100), flight, &wanted).await;
            assert!(t.elapsed() >= ms(100) && t.elapsed() < ms(3000));
            assert_eq!(batch.len(), 1);

            // Nothing under way and the gap over: no wait at all.
            syncer.in_flight.done(1);
            let t = Instant::now();
            gather(&mut rx, &mut batch, 64, t, t + ms(5000), flight, &wanted).await;
            assert!(t.elapsed() < ms(1000));
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The largest the WAL file gets over 6 000 commits that never pause (with short reads
    /// between them, as the workers' claims are), the checkpointer asking for a restart past
    /// `restart_frames` and the writer running it between two commits.
    fn largest_wal(name: &str, restart_frames: i64) -> u64 {
        let dir = scratch_dir(&format!("wal-{name}"));
        let path = dir.join("wal.db");
        let w = rusqlite::Connection::open(&path).unwrap();
        w.execute_batch(
            "PRAGMA page_size = 2048; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB);",
        )
        .unwrap();
        let r = rusqlite::Connection::open(&path).unwrap();
        let cp = Checkpointer::start(path.to_string_lossy().into_owned(), restart_frames).unwrap();
        let mut largest = 0;
        for i in 0..6000 {
            if cp.restart_wanted() {
                cp.restarted(checkpoint(&w, "PASSIVE"));
            }
            w.execute("INSERT INTO t VALUES (randomblob(1500))", [])
                .unwrap();
            if i % 20 == 0 {
                let _: i64 = r
                    .query_row("SELECT count(*) FROM t WHERE rowid > ?1", [i - 5], |row| {
                        row.get(0)
                    })
                    .unwrap();
                cp.poke();
            }
            largest = largest.max(std::fs::metadata(dir.join("wal.db-wal")).unwrap().len());
        }
        drop(cp);
        let _ = std::fs::remove_dir_all(&dir);
        largest
    }

    /// The writer keeps its statements prepared from batch to batch however long it idles
    /// between them, and lets them go when asked: the pool then closes its connection (sqlx
    /// panics when a statement is still alive on it). Asked to let go, it still runs what it
    /// kept, prepares again what it needs, and keeps nothing past the batch.
    #[test]
    fn statements_kept_between_batches_are_let_go_before_the_pool_closes() {
        let rt = runtime();
        let dir = scratch_dir("held");
        let url = format!("sqlite://{}?mode=rwc", dir.join("held.db").display());
        rt.block_on(async {
            let db = paygate_db::connect(&paygate_db::DbOptions {
                url,
                max_connections: 1,
            })
            .await
            .unwrap();
            let pool = db.get_sqlite_connection_pool().clone();
            let mut held = Held::default();
            let ours = ["SELECT count(*) FROM t", "INSERT INTO t VALUES (1)"];
            let count = |c: &rusqlite::Connection| {
                c.prepare_cached(ours[0])
                    .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
                    .map_err(db_err)
            };
            // Of `ours`, how many are prepared on the connection (SQLite's own list of its
            // statements; sqlx keeps some of its own there too).
            let kept = |held: &Held| {
                held.kept.as_ref().map_or(0, |(_, c)| {
                    let mut n = 0;
                    // SAFETY: walks the connection's list of statements (under its mutex)
                    // while nobody else uses the connection (one thread here); each `sql` is
                    // read while its statement is alive.
                    #[allow(unsafe_code)]
                    unsafe {
                        use rusqlite::ffi::{sqlite3_next_stmt, sqlite3_sql};
                        let db = c.handle();
                        let mut st = sqlite3_next_stmt(db, std::ptr::null_mut());
                        while !st.is_null() {
                            let sql = std::ffi::CStr::from_ptr(sqlite3_sql(st)).to_string_lossy();
                            n += usize::from(ours.contains(&sql.as_ref()));
                            st = sqlite3_next_stmt(db, st);
                        }
                    }
                    n
                })
            };
            held.with(
                &pool,
                |c| c.execute_batch("CREATE TABLE t (x)").map_err(db_err),
                true,
            )
            .await
            .unwrap();
            assert_eq!(held.with(&pool, count, true).await.unwrap(), 0);
            // Between two batches the pool's connection serves others, the statement kept.
            sea_orm::ConnectionTrait::execute_unprepared(&db, "INSERT INTO t VALUES (0)")
                .await
                .unwrap();
            held.with(&pool, |c| run_cached(c, ours[1]), true)
                .await
                .unwrap();
            assert_eq!(kept(&held), 2, "both statements stay prepared");
            assert_eq!(held.with(&pool, count, true).await.unwrap(), 2);
            held.let_go(&pool).await;
            assert_eq!(kept(&held), 0, "let go: nothing prepared is left");
            // After letting go, a batch prepares what it needs and keeps nothing.
            assert_eq!(held.with(&pool, count, false).await.unwrap(), 2);
            assert_eq!(kept(&held), 0);
            db.close().await.unwrap();
        });
        // The connection really closed (a statement left alive makes `sqlite3_close` refuse,
        // and sqlx panics on its own thread): the last connection to close removes the WAL.
        assert!(
            !dir.join("held.db-wal").exists(),
            "the connection is still open after the pool closed"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Under steady writes the WAL is rewound: with restarts it stays a fraction of what it
    /// grows to when only passive checkpoints run (which never catch up with the writer).
    #[test]
    fn the_wal_starts_over_under_steady_writes() {
        let with_restarts = largest_wal("restart", 256);
        let passive_only = largest_wal("passive", i64::MAX);
        assert!(
            with_restarts * 2 < passive_only,
            "the WAL grew to {with_restarts} bytes with restarts, {passive_only} without"
        );
    }
}
