#![doc = include_str!("../README.md")]

pub mod entities;
pub mod scope;
pub mod status;
pub mod wal_vfs;

use std::time::Duration;

use rand::Rng;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    Statement,
};

pub use paygate_migrations::Migrator;
pub use scope::{CompanyOwned, Mode, ModeOwned, Scope, Tenant};
pub use sea_orm;
pub use status::{
    ChargeStatus, DisputeStatus, Lifecycle, NotificationStatus, OrderStatus, PaymentStatus,
    RefundStatus, SourceStatus,
};

/// How to open the database.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// `sqlite://path?mode=rwc` or `postgres://…`.
    pub url: String,
    /// Pool size on PostgreSQL. SQLite always writes through one connection: it has one writer
    /// anyway, and one connection rules out `SQLITE_BUSY` between our own writers (the workers
    /// read on a second, read-only one: [`connect_reader`]).
    pub max_connections: u32,
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported database URL scheme (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("database error")]
    Db(#[from] DbErr),
}

/// What every connection of [`connect`] and [`connect_reader`] starts from: no statement
/// logging, 10 s to connect, 30 s to wait for a pooled connection.
fn base_options(url: &str) -> ConnectOptions {
    let mut co = ConnectOptions::new(url.to_owned());
    co.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    co
}

/// Opens the database and checks it answers.
pub async fn connect(opts: &DbOptions) -> Result<DatabaseConnection, Error> {
    let url = opts.url.as_str();
    let mut co = base_options(url);
    if url.starts_with("sqlite:") {
        // The writer's WAL frames go to the file a commit at a time (`wal_vfs`).
        let vfs = match wal_vfs::register() {
            Ok(()) => wal_vfs::NAME.to_str().ok(),
            Err(e) => {
                tracing::warn!(error = %e, "SQLite: the WAL-gathering VFS is unavailable; using the default");
                None
            }
        };
        co.max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(move |o| {
                let o = match vfs {
                    Some(name) => o.vfs(name),
                    None => o,
                };
                // 2 KiB pages (for a new database; an existing one keeps its own): an event
                // body of 2–3 KB takes a page and an overflow page instead of a 4 KiB page to
                // itself, and the random leaf of a unique index that every insert dirties
                // costs 2 KiB of WAL instead of 4. The intake and the workers write ~40 % fewer
                // bytes per event (docs/benchmarks.md).
                o.page_size(2048)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .create_if_missing(true)
                    // The inbox writer's checkpointer thread checkpoints the WAL; the
                    // committing connection never stalls on it.
                    .pragma("wal_autocheckpoint", "0")
                    // Statement journals (a multi-row statement inside a transaction) in
                    // memory, not in temporary files: in a profile of the intake applying
                    // events, a third of the driver thread's time was writing and reading them.
                    .pragma("temp_store", "memory")
                // The page cache stays at SQLite's default 2 MiB: with 16 MiB, every commit
                // walked the cache's whole hash table (`pcache1TruncateUnsafe`, a quarter of
                // the inbox writer's time in a profile) and the end-to-end rate was no
                // higher.
            })
            // The one connection is kept for as long as the pool lives (no idle timeout, no
            // lifetime): the inbox writer keeps statements prepared on it between two batches
            // (`paygate-router`'s `inbox_sqlite::Held`), and sqlx panics when it closes a
            // connection that still has some.
            .map_sqlx_sqlite_pool_opts(|o| o.max_lifetime(None).idle_timeout(None));
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // Every connection is opened here, on the runtime that opens the pool, and kept (no
        // maximum lifetime): a connection opened inside an HTTP worker would be bound to that
        // worker's runtime and break for everyone when the worker stops.
        let size = opts.max_connections.max(2);
        co.max_connections(size)
            .min_connections(size)
            // While the server is unreachable a request waits this long for a connection, then
            // fails (the intake answers 503; Stripe retries).
            .acquire_timeout(Duration::from_secs(3))
            .map_sqlx_postgres_pool_opts(|o| {
                o.max_lifetime(None).after_connect(|conn, _| {
                    Box::pin(async move {
                        nodelay::set_for(conn).await;
                        Ok(())
                    })
                })
            });
    } else {
        return Err(Error::UnsupportedUrl);
    }
    let db = Database::connect(co).await?;
    Ok(db)
}

/// A second connection to a SQLite database file, read-only, for the workers' look-ups of due
/// events: in WAL mode a reader neither waits for the one writer nor holds it up, so reading a
/// batch (bodies included) no longer keeps the intake's commits waiting. `None` on PostgreSQL
/// (its pool reads side by side already) and for an in-memory database, which a second
/// connection would not see.
pub async fn connect_reader(opts: &DbOptions) -> Result<Option<DatabaseConnection>, Error> {
    let url = opts.url.as_str();
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(None);
    }
    let mut co = base_options(url);
    co.max_connections(1)
        .min_connections(1)
        .map_sqlx_sqlite_opts(|o| {
            o.read_only(true)
                .create_if_missing(false)
                .busy_timeout(Duration::from_secs(10))
        });
    Ok(Some(Database::connect(co).await?))
}

/// A key every replica agrees on for the migration advisory lock ("paygate" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0070_6179_6761_7465;

/// Applies every pending migration.
///
/// On PostgreSQL the run holds a session-level advisory lock on a dedicated connection, so
/// replicas that start together apply the migrations once, one after the other.
pub async fn migrate(db: &DatabaseConnection, url: &str) -> Result<(), Error> {
    use paygate_migrations::MigratorTrait;
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let mut co = ConnectOptions::new(url.to_owned());
            co.max_connections(1).min_connections(1).sqlx_logging(false);
            let lock_conn = Database::connect(co).await?;
            lock_conn
                .execute_raw(Statement::from_string(
                    DatabaseBackend::Postgres,
                    format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"),
                ))
                .await?;
            let result = Migrator::up(&lock_conn, None).await;
            let unlock = lock_conn
                .execute_raw(Statement::from_string(
                    DatabaseBackend::Postgres,
                    format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"),
                ))
                .await;
            let _ = lock_conn.close().await;
            result?;
            unlock?;
        }
        _ => Migrator::up(db, None).await?,
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, the unit of every `*_at` column.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

const ID_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new random id with a type prefix, e.g. `new_id("prf")` → `prf_3kF9…` (22 random
/// base62 characters, about 131 bits).
pub fn new_id(prefix: &str) -> String {
    let mut s = id_start(prefix);
    push_random(&mut s, 22);
    s
}

/// `prefix_`, with room for the 22 characters of an id.
fn id_start(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 23);
    s.push_str(prefix);
    s.push('_');
    s
}

/// `n` random base62 characters.
fn push_random(s: &mut String, n: usize) {
    let mut rng = rand::thread_rng();
    for _ in 0..n {
        s.push(ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())] as char);
    }
}

/// A new id whose characters sort in the order the ids were made (to the millisecond), with a
/// type prefix: 8 base62 characters of the milliseconds since the epoch, then 14 random ones
/// (about 83 bits), the same length as [`new_id`]'s. For rows written by the thousand (the
/// messages), whose primary-key index then grows at its end, one page for a whole batch,
/// instead of taking a random leaf page per row that each commit writes to the WAL and each
/// checkpoint back to the file.
pub fn new_ordered_id(prefix: &str) -> String {
    new_ordered_id_at(prefix, now_ms())
}

fn new_ordered_id_at(prefix: &str, ms: i64) -> String {
    let mut s = id_start(prefix);
    let base = ID_ALPHABET.len() as u64;
    let mut t = u64::try_from(ms).unwrap_or(0);
    let mut time = [b'0'; 8];
    for c in time.iter_mut().rev() {
        *c = ID_ALPHABET[(t % base) as usize];
        t /= base;
    }
    s.extend(time.iter().map(|&c| c as char));
    push_random(&mut s, 14);
    s
}

/// True when the error is the violation of a unique rule (a duplicate).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// `TCP_NODELAY` on PostgreSQL connections over TCP.
///
/// sqlx does not set it, and with Nagle's algorithm a statement whose message leaves in more
/// than one segment waits for the server's delayed ACK: 40 ms stalls on a loopback connection
/// that otherwise answers in a fraction of a millisecond. The socket is found by its address
/// pair (the server reports the client's port) among the process's open descriptors.
mod nodelay {
    use sea_orm::sqlx::{self, PgConnection};

    pub(crate) async fn set_for(conn: &mut PgConnection) {
        let ports: Result<(Option<i32>, Option<i32>), _> =
            sqlx::query_as("SELECT inet_client_port(), inet_server_port()")
                .fetch_one(&mut *conn)
                .await;
        // Unix-socket connections have no ports and no Nagle.
        if let Ok((Some(local), Some(remote))) = ports
            && let (Ok(local), Ok(remote)) = (u16::try_from(local), u16::try_from(remote))
            && !set(local, remote)
        {
            tracing::debug!(local, "TCP_NODELAY not set on a database connection");
        }
    }

    /// Sets `TCP_NODELAY` on this process's TCP socket from `local` to `remote` (the ports as
    /// PostgreSQL sees them; behind NAT the pair may not be found, and nothing changes).
    #[cfg(target_os = "linux")]
    fn set(local: u16, remote: u16) -> bool {
        use std::os::fd::BorrowedFd;
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return false;
        };
        for entry in dir.flatten() {
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if !is_socket {
                continue;
            }
            // SAFETY: `fd` was listed as an open socket of this process a moment ago, and the
            // borrow lives only for the two queries and the option below. If another thread
            // closed it meanwhile, the calls fail (EBADF) or the addresses do not match.
            #[allow(unsafe_code)]
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let sock = socket2::SockRef::from(&fd);
            let port = |a: std::io::Result<socket2::SockAddr>| {
                a.ok().and_then(|a| a.as_socket()).map(|a| a.port())
            };
            if port(sock.local_addr()) == Some(local) && port(sock.peer_addr()) == Some(remote) {
                return sock.set_tcp_nodelay(true).is_ok();
            }
        }
        false
    }

    #[cfg(not(target_os = "linux"))]
    fn set(_local: u16, _remote: u16) -> bool {
        false
    }
}

/// Statement shapes (rows per multi-row `INSERT`): a batch is cut into chunks of these sizes
/// (its binary decomposition) so that only a few distinct statements exist, each prepared once
/// per connection and reused. (Every batch size having its own statement filled the statement
/// caches with large prepared statements: memory grew with every run.)
const CHUNKS: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];

/// `rows` cut into chunks of the sizes in [`CHUNKS`] (largest first), one statement each.
pub fn chunked<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = CHUNKS
            .iter()
            .copied()
            .find(|c| *c <= rest.len())
            .unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids made later sort after ids made earlier, across a carry of every digit, and look
    /// like every other id (prefix, 22 base62 characters).
    #[test]
    fn ordered_ids_sort_by_time_and_keep_the_id_shape() {
        let times = [
            0,
            1,
            61,
            62,
            3843,
            3844,
            1_764_979_200_000,
            1_764_979_200_001,
            218_340_105_584_895,
        ];
        let ids: Vec<String> = times.iter().map(|&t| new_ordered_id_at("msg", t)).collect();
        for pair in ids.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{} should sort before {}",
                pair[0],
                pair[1]
            );
        }
        let now = new_ordered_id("msg");
        assert_eq!(now.len(), new_id("msg").len());
        assert!(now.starts_with("msg_"));
        assert!(now[4..].bytes().all(|c| ID_ALPHABET.contains(&c)));
        // Two ids of the same millisecond differ in their random part.
        assert_ne!(new_ordered_id_at("msg", 5), new_ordered_id_at("msg", 5));
    }
}
