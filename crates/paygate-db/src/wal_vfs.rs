//! A SQLite VFS that hands a commit's WAL frames to the kernel in one write.
//!
//! SQLite writes each frame of a commit to the WAL with two `pwrite` calls (the 24-byte frame
//! header, then the page), and a commit of the intake writes ~20 frames whatever it holds (one
//! per b-tree page it changed): 40 system calls a commit, which were 28 % of the inbox writer's
//! time at 5 000 events/s (docs/benchmarks.md, ninth pass). This VFS wraps the default one and
//! changes one thing for WAL files: consecutive writes are gathered in memory and written with
//! one `pwrite` when the commit's last frame is complete.
//!
//! When gathered data reaches the file, and why that is soon enough:
//! - at the end of a commit: a frame header whose "database size" field is not zero marks a
//!   commit frame, and the write of its page (the next one) writes everything out before it
//!   returns, so the frames are in the file before SQLite publishes the commit to other
//!   connections (the WAL index is updated after the frames are written). A commit that
//!   syncs (`synchronous = FULL`) syncs through this file, which writes first;
//! - before any other use of the file (read, size, truncate, sync, file control, close): the
//!   writing connection reading back a frame it spilled before its commit reads it from the
//!   file, and the file's size includes what was written;
//! - before a write that does not follow on (SQLite rewriting a frame of the same
//!   transaction), so the file sees the writes in the order SQLite made them;
//! - before gathering more than [`GATHER_LIMIT`] bytes (a large commit goes out in a few
//!   writes, in order).
//!
//! Durability is unchanged: a commit's frames reach the file before the commit returns, as
//! they did, and whoever syncs the WAL (the inbox's sync thread, or SQLite itself) syncs them.
//! A failed write fails the commit that wrote it (SQLite rolls it back). Other files (the
//! database, its shared memory) go straight through.

#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::ffi;

/// The name the pool's SQLite connections open the database with ([`crate::connect`]).
pub const NAME: &CStr = c"paygate-wal";

/// Bytes gathered at most: what is gathered goes to the default VFS's `xWrite` in one call, and
/// it writes at most 128 KiB − 1 bytes a call (it masks the length with `0x1ffff`: a larger
/// write fails as "disk full").
const GATHER_LIMIT: usize = 96 << 10;

/// A WAL frame header's size: a write of this many bytes is a frame header.
const FRAME_HEADER: usize = 24;

/// What a registered VFS of this kind shares with its files.
struct Shared {
    /// The VFS wrapped (the default one).
    inner: *mut ffi::sqlite3_vfs,
    /// Writes made to WAL files, gathered or not (for tests and for the figures).
    wal_writes: AtomicU64,
}

/// A file opened through the VFS: SQLite allocates `szOsFile` bytes for it, this struct first
/// and the wrapped VFS's own file right after it.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    shared: *const Shared,
    wal: bool,
    /// The last write was a commit frame's header: the next one (its page) ends the commit.
    commit_next: bool,
    /// Where `gathered` starts in the file.
    at: i64,
    gathered: Vec<u8>,
}

/// Registers the VFS under [`NAME`] (once; later calls return the first outcome).
pub fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| register_as(NAME).map(|_| ()))
        .clone()
}

/// Registers a VFS of this kind under `name` (leaked: a VFS lives as long as the process);
/// returns a reader of how many writes it made to WAL files.
fn register_as(name: &'static CStr) -> Result<impl Fn() -> u64, String> {
    // SAFETY: `sqlite3_vfs_find` with a null name returns the default VFS (initialising the
    // library first), a static of SQLite's that is never freed.
    let inner = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
    if inner.is_null() {
        return Err("SQLite has no default VFS".into());
    }
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        inner,
        wal_writes: AtomicU64::new(0),
    }));
    // SAFETY: `inner` is valid (above). The copy keeps the default's functions; of them only
    // `xOpen` reads the VFS it is given (its `pAppData`), and `xOpen` is replaced by ours,
    // which calls the default's with the default itself.
    let mut vfs = unsafe { *inner };
    let own = std::mem::size_of::<File>();
    debug_assert_eq!(own % 8, 0, "the wrapped file must stay aligned");
    vfs.szOsFile += c_int::try_from(own).map_err(|e| e.to_string())?;
    vfs.pNext = std::ptr::null_mut();
    vfs.zName = name.as_ptr();
    vfs.pAppData = std::ptr::from_ref(shared).cast_mut().cast();
    vfs.xOpen = Some(x_open);
    let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(vfs));
    // SAFETY: `vfs` is leaked, so it outlives every connection that may use it.
    let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
    if rc != ffi::SQLITE_OK {
        return Err(format!("registering the {name:?} VFS failed: {rc}"));
    }
    Ok(|| shared.wal_writes.load(Ordering::Relaxed))
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives `szOsFile` bytes at `file` (our `File`, then the wrapped file) and
    // the VFS registered by `register_as`, whose `pAppData` is a leaked `Shared`.
    unsafe {
        let shared = (*vfs).pAppData.cast::<Shared>().cast_const();
        let inner = file
            .cast::<u8>()
            .add(std::mem::size_of::<File>())
            .cast::<ffi::sqlite3_file>();
        (*file).pMethods = std::ptr::null();
        let inner_vfs = (*shared).inner;
        let Some(open) = (*inner_vfs).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        let rc = open(inner_vfs, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK || (*inner).pMethods.is_null() {
            return rc;
        }
        file.cast::<File>().write(File {
            base: ffi::sqlite3_file { pMethods: &METHODS },
            inner,
            shared,
            wal: flags & ffi::SQLITE_OPEN_WAL != 0,
            commit_next: false,
            at: 0,
            gathered: Vec::new(),
        });
        rc
    }
}

/// The file behind `f` and its methods.
///
/// # Safety
/// `f` must be a file opened by [`x_open`] and not yet closed.
unsafe fn inner(
    f: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    // SAFETY: per the contract, `f` is our `File`, whose wrapped file is open with methods.
    unsafe {
        let inner = (*f.cast::<File>()).inner;
        (inner, &*(*inner).pMethods)
    }
}

/// Writes what `f` gathered, if anything.
///
/// # Safety
/// As [`inner`].
unsafe fn flush(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: per the contract; the gathered bytes stay alive for the call.
    unsafe {
        let file = &mut *f.cast::<File>();
        if file.gathered.is_empty() {
            return ffi::SQLITE_OK;
        }
        let (inner, m) = inner(f);
        let Some(write) = m.xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let Ok(n) = c_int::try_from(file.gathered.len()) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let rc = write(inner, file.gathered.as_ptr().cast(), n, file.at);
        (*file.shared).wal_writes.fetch_add(1, Ordering::Relaxed);
        // Written or failed, it is gone: a failed write fails the commit, which SQLite rolls
        // back (frames past the last commit are never read).
        file.gathered.clear();
        rc
    }
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite calls this on a file of ours, with `amount` bytes at `data`.
    unsafe {
        let file = &mut *f.cast::<File>();
        let Ok(len) = usize::try_from(amount) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        if !file.wal || len > GATHER_LIMIT {
            // (A write larger than what is gathered at most: never SQLite's, whose pages are
            // at most 64 KiB; written as it comes, after what was gathered.)
            let rc = flush(f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            (*f.cast::<File>()).commit_next = false;
            let (inner, m) = inner(f);
            return m
                .xWrite
                .map_or(ffi::SQLITE_IOERR_WRITE, |w| w(inner, data, amount, offset));
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
        let follows = i64::try_from(file.gathered.len())
            .is_ok_and(|n| file.at.checked_add(n) == Some(offset));
        if !file.gathered.is_empty() && (!follows || file.gathered.len() + len > GATHER_LIMIT) {
            let rc = flush(f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let file = &mut *f.cast::<File>();
        if file.gathered.is_empty() {
            file.at = offset;
        }
        file.gathered.extend_from_slice(bytes);
        let ends_commit = std::mem::take(&mut file.commit_next);
        // A frame header: bytes 4..8 hold the database size after a commit, 0 otherwise.
        if len == FRAME_HEADER && bytes[4..8] != [0; 4] {
            file.commit_next = true;
        }
        if ends_commit {
            return flush(f);
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file of ours once; its `File` is dropped here and never used
    // again (SQLite clears `pMethods` after the close).
    unsafe {
        let flushed = flush(f);
        let (inner, m) = inner(f);
        let closed = m.xClose.map_or(ffi::SQLITE_OK, |c| c(inner));
        std::ptr::drop_in_place(&raw mut (*f.cast::<File>()).gathered);
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

/// Defines a method that writes what was gathered, then calls the wrapped file's.
macro_rules! flushing {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*), $missing:expr) => {
        unsafe extern "C" fn $name(f: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite calls this on an open file of ours.
            unsafe {
                let rc = flush(f);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                let (inner, m) = inner(f);
                m.$field.map_or($missing, |g| g(inner $(, $arg)*))
            }
        }
    };
}

/// Defines a method that calls the wrapped file's (nothing gathered is concerned).
macro_rules! passing {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*), $ret:ty, $missing:expr) => {
        unsafe extern "C" fn $name(f: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: SQLite calls this on an open file of ours.
            unsafe {
                let (inner, m) = inner(f);
                m.$field.map_or($missing, |g| g(inner $(, $arg)*))
            }
        }
    };
}

flushing!(x_read, xRead, (buf: *mut c_void, amount: c_int, offset: i64), ffi::SQLITE_IOERR_READ);
flushing!(x_truncate, xTruncate, (size: i64), ffi::SQLITE_IOERR_TRUNCATE);
flushing!(x_sync, xSync, (flags: c_int), ffi::SQLITE_IOERR_FSYNC);
flushing!(x_file_size, xFileSize, (size: *mut i64), ffi::SQLITE_IOERR_FSTAT);
flushing!(x_file_control, xFileControl, (op: c_int, arg: *mut c_void), ffi::SQLITE_NOTFOUND);
flushing!(x_fetch, xFetch, (offset: i64, amount: c_int, out: *mut *mut c_void), ffi::SQLITE_OK);
passing!(x_lock, xLock, (level: c_int), c_int, ffi::SQLITE_OK);
passing!(x_unlock, xUnlock, (level: c_int), c_int, ffi::SQLITE_OK);
passing!(x_check_reserved_lock, xCheckReservedLock, (out: *mut c_int), c_int, ffi::SQLITE_OK);
passing!(x_sector_size, xSectorSize, (), c_int, 4096);
passing!(
    x_device_characteristics,
    xDeviceCharacteristics,
    (),
    c_int,
    0
);
passing!(x_shm_map, xShmMap, (page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void), c_int, ffi::SQLITE_IOERR_SHMMAP);
passing!(x_shm_lock, xShmLock, (offset: c_int, n: c_int, flags: c_int), c_int, ffi::SQLITE_IOERR_SHMLOCK);
passing!(x_shm_unmap, xShmUnmap, (delete: c_int), c_int, ffi::SQLITE_OK);
passing!(x_unfetch, xUnfetch, (offset: i64, p: *mut c_void), c_int, ffi::SQLITE_OK);

unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite calls this on an open file of ours.
    unsafe {
        let (inner, m) = inner(f);
        if let Some(b) = m.xShmBarrier {
            b(inner);
        }
    }
}

/// Version 3, as the default VFS's files (`xFetch`, `xUnfetch`); a method the wrapped file
/// lacks answers as SQLite's own code expects of a file without it.
static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use rusqlite::{Connection, OpenFlags};

    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("paygate-walvfs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The writer's connection (through the VFS, committing as the inbox writer does) and a
    /// second one through the default VFS, as the checkpointer and the workers' reader are.
    fn open(path: &std::path::Path, vfs: &'static CStr) -> (Connection, Connection) {
        let w = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs).unwrap();
        w.execute_batch(
            "PRAGMA page_size = 2048; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = 0; \
             CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, body BLOB); \
             CREATE INDEX t_body ON t (body);",
        )
        .unwrap();
        let r = Connection::open(path).unwrap();
        (w, r)
    }

    /// Inserts `n` rows keyed `k00000`, `k00001`, … with bodies made by `body` (SQL, the key
    /// bound as `?1`).
    fn insert(c: &Connection, n: usize, body: &str) {
        let sql = format!("INSERT INTO t (k, body) VALUES (?1, {body})");
        for i in 0..n {
            c.execute(&sql, [format!("k{i:05}")]).unwrap();
        }
    }

    /// Rows of `t` seen by the other connection, and by a new connection through the default
    /// VFS once the writer has closed (SQLite's integrity check passing); removes the files.
    fn committed(w: Connection, r: Connection, d: &std::path::Path) -> (i64, i64) {
        let seen = r
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        drop((w, r));
        let c = Connection::open(d.join("t.db")).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let reopened = c
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        drop(c);
        let _ = std::fs::remove_dir_all(d);
        (seen, reopened)
    }

    /// Every commit reaches the file in one write, and is there for another connection the
    /// moment it returns: the other connection sees each commit's rows, and reads back the
    /// exact bytes written.
    #[test]
    fn a_commit_reaches_the_file_in_one_write_and_is_seen_at_once() {
        let writes = register_as(c"paygate-wal-test-commits").unwrap();
        let d = dir("commits");
        let (w, r) = open(&d.join("t.db"), c"paygate-wal-test-commits");
        let before = writes();
        let commits = 200;
        for i in 0..commits {
            let tx = w.unchecked_transaction().unwrap();
            for j in 0..3 {
                tx.execute(
                    "INSERT INTO t (k, body) VALUES (?1, hex(randomblob(350)) || ?1)",
                    [format!("{}-{i}-{j}", 1000 - i)],
                )
                .unwrap();
            }
            tx.commit().unwrap();
            let (n, last): (i64, String) = r
                .query_row(
                    "SELECT count(*), max(body) FROM t WHERE k LIKE ?1",
                    [format!("%-{i}-%")],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .unwrap();
            assert_eq!(n, 3, "commit {i} not seen by the other connection");
            let mine: String = w
                .query_row(
                    "SELECT max(body) FROM t WHERE k LIKE ?1",
                    [format!("%-{i}-%")],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(last, mine);
        }
        let frames: i64 = w
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .unwrap();
        let made = writes() - before;
        assert!(
            made <= commits + 1 && frames > 3 * i64::try_from(commits).unwrap(),
            "{made} writes for {commits} commits of {frames} frames in all"
        );
        drop((w, r));
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A transaction larger than the page cache spills frames before its commit and reads
    /// them back (from the file: they were written first); what it committed survives the
    /// connection's close and a reopening through the default VFS, checked by SQLite.
    #[test]
    fn a_transaction_that_spills_reads_its_frames_back_and_commits_whole() {
        let d = dir("spill");
        register().unwrap();
        let (w, r) = open(&d.join("t.db"), NAME);
        w.execute_batch("PRAGMA cache_size = 10").unwrap();
        let tx = w.unchecked_transaction().unwrap();
        insert(&tx, 3000, "zeroblob(300) || ?1");
        let seen: i64 = tx
            .query_row("SELECT count(*) FROM t WHERE body IS NOT NULL", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(seen, 3000);
        tx.commit().unwrap();
        assert_eq!(committed(w, r, &d), (3000, 3000));
    }

    /// A commit larger than one write may carry (the default VFS writes at most 128 KiB a
    /// call) reaches the file whole.
    #[test]
    fn a_large_commit_is_written_whole() {
        let d = dir("large");
        register().unwrap();
        let (w, r) = open(&d.join("t.db"), NAME);
        let tx = w.unchecked_transaction().unwrap();
        insert(&tx, 600, "hex(randomblob(600))");
        tx.commit().unwrap();
        assert_eq!(committed(w, r, &d), (600, 600));
    }
}
