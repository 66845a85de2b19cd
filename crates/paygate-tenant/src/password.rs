//! The one bounded pool where passwords are hashed and verified (Argon2id, 19 MiB each).
//!
//! Policy: Argon2id is memory-hard on purpose, so how many hashes run at once decides how much
//! memory Paygate needs. Every hash and every verification of the process runs on a few
//! dedicated threads ([`PasswordPool::global`]: as many as the CPUs, at least 2 and at most 4),
//! each with its own Argon2 memory, reused from one job to the next: the memory is bounded by
//! the thread count whatever the load, and never churns through the allocator while sign-ins
//! come. A thread left without work for [`RELEASE_IDLE`] gives its memory back (19 MiB each:
//! kept, two threads' memory was a third of the process's resident memory for as long as it
//! ran, after a single sign-in). Work waits in a
//! queue of sixteen jobs per thread (a wait of about a second in a release build; waiting jobs
//! hold no Argon2 memory). Admission is decided before any work:
//!
//! - sign-ins ([`PasswordPool::try_admit`]) never wait for room: when the pool and its queue
//!   are full, or one client address already holds half of them, the attempt is refused at once
//!   with [`Busy`] (the web edge answers 503 with `Retry-After`). A flood from one address thus
//!   cannot take the room another address needs: the owner of an account signs in during it.
//! - changes made by signed-in people (a new operator, a new password, an accepted invitation)
//!   wait for their turn ([`PasswordPool::admit`]).
//!
//! A job whose caller has gone away (the request was dropped while it waited) is skipped.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::{self, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// How long a refused sign-in is told to wait (`Retry-After`).
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A hashing thread without work for this long frees its Argon2 memory; the next job
/// allocates it again (a few milliseconds, against the tens a hash takes).
pub const RELEASE_IDLE: Duration = Duration::from_secs(10);

/// The most Argon2 memory a stored hash may ask for (KiB): more is refused rather than
/// allocated (ours use 19 MiB).
const MAX_M_COST: u32 = 64 * 1024;

/// The pool is full: try again after [`BUSY_RETRY_AFTER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-ins are being checked; try again in a moment")]
pub struct Busy;

/// Hashing failed (an internal error: the pool's threads are gone, or Argon2 refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashFailed;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// A bounded pool of hashing threads (see the module's policy).
#[derive(Clone, Debug)]
pub struct PasswordPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queue: Arc<Queue>,
    /// Room: threads plus queue.
    room: Arc<Semaphore>,
    /// Admitted sign-ins per client address.
    by_client: Mutex<HashMap<Option<IpAddr>, usize>>,
    per_client: usize,
    /// Argon2 memory the threads hold now, in bytes.
    held: Arc<std::sync::atomic::AtomicUsize>,
}

impl PasswordPool {
    /// The process's pool, sized from the CPUs on first use.
    pub fn global() -> &'static PasswordPool {
        static POOL: OnceLock<PasswordPool> = OnceLock::new();
        POOL.get_or_init(|| {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
            let threads = cpus.clamp(2, 4);
            PasswordPool::new(threads, 16 * threads)
        })
    }

    /// A pool of `threads` hashing threads (at least one) and `queue` jobs waiting.
    pub fn new(threads: usize, queue: usize) -> Self {
        Self::with_release(threads, queue, RELEASE_IDLE)
    }

    /// [`PasswordPool::new`], a thread freeing its memory after `idle` without work.
    pub fn with_release(threads: usize, queue: usize, idle: Duration) -> Self {
        let threads = threads.max(1);
        let room = threads + queue;
        let jobs = Arc::new(Queue::default());
        let held = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for n in 0..threads {
            let jobs = jobs.clone();
            let held = held.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("paygate-argon2-{n}"))
                .spawn(move || {
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        match jobs.next(idle) {
                            Next::Job(job) => job(&mut memory),
                            Next::Idle => {
                                if !memory.is_empty() {
                                    held.fetch_sub(
                                        memory.len() * std::mem::size_of::<Block>(),
                                        std::sync::atomic::Ordering::Relaxed,
                                    );
                                    memory = Vec::new();
                                }
                            }
                            // The pool was dropped.
                            Next::Closed => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "a password hashing thread could not start");
            }
        }
        Self {
            inner: Arc::new(Inner {
                queue: jobs,
                room: Arc::new(Semaphore::new(room)),
                by_client: Mutex::new(HashMap::new()),
                per_client: (room / 2).max(1),
                held,
            }),
        }
    }

    /// Bytes of Argon2 memory the pool's threads hold now: one hash's worth per thread that
    /// worked within [`RELEASE_IDLE`], none once they have all been idle that long.
    pub fn memory_held(&self) -> usize {
        self.inner.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Room for one sign-in from `client`, or [`Busy`] at once (see the module's policy).
    pub fn try_admit(&self, client: Option<IpAddr>) -> Result<Permit, Busy> {
        let mut by_client = self
            .inner
            .by_client
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let held = by_client.get(&client).copied().unwrap_or(0);
        if held >= self.inner.per_client {
            return Err(Busy);
        }
        let room = self
            .inner
            .room
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        *by_client.entry(client).or_insert(0) += 1;
        Ok(Permit {
            pool: self.clone(),
            _room: room,
            client: Some(client),
        })
    }

    /// Room for one change, waiting for it.
    pub async fn admit(&self) -> Permit {
        let room = self
            .inner
            .room
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the pool's semaphore is never closed"));
        Permit {
            pool: self.clone(),
            _room: room,
            client: None,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let held = self.inner.held.clone();
        let job: Job = Box::new(move |memory| {
            if !tx.is_closed() {
                let before = memory.len();
                let out = work(memory);
                // Counted before the caller hears back.
                let grown = memory.len().saturating_sub(before);
                held.fetch_add(
                    grown * std::mem::size_of::<Block>(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                let _ = tx.send(out);
            }
        });
        self.inner.queue.push(job)?;
        rx.await.ok()
    }
}

/// The jobs waiting for a hashing thread. Idle threads wait on the condition variable side by
/// side (not one holding a lock while the others queue behind it), so each notices its own
/// idleness and frees its memory.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// The pool is gone: the threads end.
    closed: bool,
}

/// What a hashing thread does next.
enum Next {
    Job(Job),
    /// No job came within the idle delay.
    Idle,
    Closed,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` for the next free thread; `None` once the pool is closed.
    fn push(&self, job: Job) -> Option<()> {
        let mut st = self.lock();
        if st.closed {
            return None;
        }
        st.jobs.push_back(job);
        drop(st);
        self.ready.notify_one();
        Some(())
    }

    /// The next job, waiting at most `idle` for one.
    fn next(&self, idle: Duration) -> Next {
        let st = self.lock();
        let (mut st, _) = self
            .ready
            .wait_timeout_while(st, idle, |s| s.jobs.is_empty() && !s.closed)
            .unwrap_or_else(|e| e.into_inner());
        match st.jobs.pop_front() {
            Some(job) => Next::Job(job),
            None if st.closed => Next::Closed,
            None => Next::Idle,
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Room in the pool, held while a request hashes or verifies; released when dropped.
#[derive(Debug)]
pub struct Permit {
    pool: PasswordPool,
    _room: OwnedSemaphorePermit,
    /// The client address of an admitted sign-in.
    client: Option<Option<IpAddr>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let mut by_client = self
                .pool
                .inner
                .by_client
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(n) = by_client.get_mut(&client) {
                *n -= 1;
                if *n == 0 {
                    by_client.remove(&client);
                }
            }
        }
    }
}

impl Permit {
    /// Hashes `password` with Argon2id (a PHC string).
    pub async fn hash(&mut self, password: SecretString) -> Result<String, HashFailed> {
        self.pool
            .run(move |memory| hash_with(memory, password.expose_secret().as_bytes()))
            .await
            .ok_or(HashFailed)?
    }

    /// Whether `password` matches the PHC string `hash`; for `None`, a dummy hash is verified at
    /// the same cost and the answer is `false` (timing does not tell which accounts exist).
    pub async fn verify(&mut self, hash: Option<&str>, password: &SecretString) -> bool {
        let known = hash.is_some();
        let hash = hash.unwrap_or(DUMMY_HASH).to_owned();
        let password = SecretString::from(password.expose_secret().to_owned());
        let ok = self
            .pool
            .run(move |memory| verify_with(memory, &hash, password.expose_secret().as_bytes()))
            .await
            .unwrap_or(false);
        ok && known
    }
}

/// A throwaway hash verified when the e-mail is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3Yb3bnQJ5bY8xQ1qZ2cN7J3m0a7S7c9oQy8M8dFh2uM";

/// Blocks reserved, at least, whenever a thread's memory is allocated: more than glibc's largest
/// mmap threshold (32 MiB), so that the allocation is always a mapping of its own, which `free`
/// unmaps. A smaller one (19 MiB with the default parameters) comes, once a block of its size
/// has been freed, from the thread's arena, where glibc keeps it after it is freed: the memory
/// was freed after [`RELEASE_IDLE`] but stayed resident. Only the pages Argon2 writes become
/// resident; the rest of the reservation is address space.
const OWN_MAPPING_BLOCKS: usize = (33 << 20) / std::mem::size_of::<Block>();

/// `memory` grown to `blocks` (kept for the next job of the thread).
fn blocks(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        if memory.capacity() < blocks {
            memory.reserve_exact(blocks.max(OWN_MAPPING_BLOCKS) - memory.len());
        }
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

fn hash_with(memory: &mut Vec<Block>, password: &[u8]) -> Result<String, HashFailed> {
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|_| HashFailed)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(
            password,
            salt_raw,
            &mut out,
            blocks(memory, params.block_count()),
        )
        .map_err(|_| HashFailed)?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|_| HashFailed)?,
        salt: Some(salt.as_salt()),
        hash: Some(password_hash::Output::new(&out).map_err(|_| HashFailed)?),
    };
    Ok(phc.to_string())
}

fn verify_with(memory: &mut Vec<Block>, phc: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    if argon
        .hash_password_into_with_memory(
            password,
            salt_raw,
            &mut out,
            blocks(memory, params.block_count()),
        )
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    password_hash::Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_verify_here_and_with_the_argon2_crate() {
        let pool = PasswordPool::new(1, 1);
        let mut p = pool.admit().await;
        let pw: SecretString = "correct horse battery".into();
        let hash = p.hash(pw.clone()).await.expect("hashed");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(p.verify(Some(&hash), &pw).await);
        assert!(!p.verify(Some(&hash), &"wrong horse battery".into()).await);
        assert!(!p.verify(None, &pw).await);
        assert!(!p.verify(Some("not a hash"), &pw).await);
        // The standard verifier agrees, both ways.
        let parsed = PasswordHash::new(&hash).expect("PHC");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let theirs = {
            use argon2::PasswordHasher;
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(b"correct horse battery", &salt)
                .expect("hashed")
                .to_string()
        };
        assert!(p.verify(Some(&theirs), &pw).await);
    }

    #[tokio::test]
    async fn a_full_pool_refuses_sign_ins_at_once_and_one_address_gets_half() {
        let pool = PasswordPool::new(1, 3);
        let a: Option<IpAddr> = Some("203.0.113.1".parse().expect("ip"));
        let b: Option<IpAddr> = Some("198.51.100.2".parse().expect("ip"));
        // Room 4: one address gets 2.
        let a1 = pool.try_admit(a).expect("room");
        let a2 = pool.try_admit(a).expect("room");
        assert_eq!(pool.try_admit(a).err(), Some(Busy));
        // Another address still gets in, up to the room left.
        let b1 = pool.try_admit(b).expect("room for b");
        let b2 = pool.try_admit(b).expect("room for b");
        assert_eq!(pool.try_admit(None).err(), Some(Busy));
        drop(a1);
        let a3 = pool.try_admit(a).expect("room again");
        drop((a2, a3, b1, b2));
        // Changes wait rather than fail.
        let all: Vec<Permit> = admit_all(&pool, 4).await;
        assert_eq!(pool.try_admit(b).err(), Some(Busy));
        drop(all);
        assert!(pool.try_admit(b).is_ok());
    }

    /// A thread keeps its Argon2 memory from one job to the next, and gives it back once it
    /// has been idle for the release delay.
    #[tokio::test]
    async fn idle_threads_give_their_memory_back() {
        let idle = Duration::from_millis(200);
        let pool = PasswordPool::with_release(2, 2, idle);
        assert_eq!(pool.memory_held(), 0);
        let pw: SecretString = "correct horse battery".into();
        let hash = pool.admit().await.hash(pw.clone()).await.expect("hashed");
        let one = Params::default().block_count() * std::mem::size_of::<Block>();
        assert_eq!(
            pool.memory_held(),
            one,
            "the thread that hashed keeps its memory"
        );
        // Two at once: each thread works, and keeps its memory.
        let (mut a, mut b) = (pool.admit().await, pool.admit().await);
        let (ra, rb) = tokio::join!(a.verify(Some(&hash), &pw), b.verify(Some(&hash), &pw));
        assert!(ra && rb);
        assert_eq!(pool.memory_held(), 2 * one);
        // Idle: each thread frees its own.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.memory_held() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "memory still held: {}",
                pool.memory_held()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // And the next job allocates it again.
        assert!(pool.admit().await.verify(Some(&hash), &pw).await);
        assert_eq!(pool.memory_held(), one);
    }

    async fn admit_all(pool: &PasswordPool, n: usize) -> Vec<Permit> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(pool.admit().await);
        }
        v
    }
}
