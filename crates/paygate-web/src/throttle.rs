//! In-memory throttles for abuse: rejected deliveries per address.
//!
//! A key (an IP) may fail `limit` times within `window`; beyond that it is locked out for
//! `lockout`. Successful attempts do not count. Per replica, which is enough to make flooding
//! expensive; the lockout is short enough that a legitimate caller recovers.
//!
//! Memory is bounded by a hard cap on keys ([`Throttle::with_capacity`], default
//! [`DEFAULT_CAPACITY`]). When the table is full, stale keys are swept (at most once a second, so
//! a full table of live keys does not cost a scan per call); if it is still full, a new key is
//! not added: its failures count under one shared overflow entry, and while that entry is locked
//! every key outside the table is treated as locked too. So a flood of fresh keys cannot grow
//! the table, and cannot escape the limit by being too many to remember: the keys already known
//! keep their own counts, the unknown ones share one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Keys a throttle remembers unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 50_000;

/// How often a full table may be swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            window_start: now,
            failures: 0,
            locked_until: None,
        }
    }
}

#[derive(Debug)]
struct Table {
    keys: HashMap<String, Entry>,
    /// The failures of keys that found the table full.
    overflow: Entry,
    last_sweep: Option<Instant>,
}

/// A failure counter with lockout.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    lockout: Duration,
    capacity: usize,
    table: Mutex<Table>,
    /// When the latest lockout ends (ms after `epoch`): while none is in force, `locked` answers
    /// from this atomic without touching the map, so callers on a hot path pay one load.
    locked_until_ms: AtomicU64,
    epoch: Instant,
}

impl Throttle {
    /// `limit` failures per `window`, then locked for `lockout`; at most [`DEFAULT_CAPACITY`]
    /// keys.
    pub fn new(limit: u32, window: Duration, lockout: Duration) -> Self {
        Self::with_capacity(limit, window, lockout, DEFAULT_CAPACITY)
    }

    /// The same with at most `capacity` keys (at least one).
    pub fn with_capacity(limit: u32, window: Duration, lockout: Duration, capacity: usize) -> Self {
        let epoch = Instant::now();
        Self {
            limit,
            window,
            lockout,
            capacity: capacity.max(1),
            table: Mutex::new(Table {
                keys: HashMap::new(),
                overflow: Entry::new(epoch),
                last_sweep: None,
            }),
            locked_until_ms: AtomicU64::new(0),
            epoch,
        }
    }

    fn ms_since_epoch(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any key may be locked out right now (one atomic load).
    pub fn any_locked(&self) -> bool {
        self.locked_until_ms.load(Ordering::Relaxed) > self.ms_since_epoch(Instant::now())
    }

    /// How long `key` is still locked out, if it is.
    pub fn locked(&self, key: &str) -> Option<Duration> {
        if !self.any_locked() {
            return None;
        }
        let t = self.table();
        let until = match t.keys.get(key) {
            Some(e) => e.locked_until?,
            None => t.overflow.locked_until?,
        };
        until.checked_duration_since(Instant::now())
    }

    /// How many keys the table holds (never more than its capacity).
    pub fn len(&self) -> usize {
        self.table().keys.len()
    }

    /// Whether the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a failure of `key`.
    pub fn fail(&self, key: &str) {
        let now = Instant::now();
        let mut t = self.table();
        let t = &mut *t;
        if !t.keys.contains_key(key) && t.keys.len() >= self.capacity {
            let due = t
                .last_sweep
                .is_none_or(|s| now.duration_since(s) >= SWEEP_EVERY);
            if due {
                t.last_sweep = Some(now);
                let horizon = self.window.max(self.lockout);
                t.keys.retain(|_, e| {
                    now.duration_since(e.window_start) < horizon
                        || e.locked_until.is_some_and(|u| u > now)
                });
            }
        }
        let e = if t.keys.contains_key(key) || t.keys.len() < self.capacity {
            t.keys.entry(key.to_owned()).or_insert(Entry::new(now))
        } else {
            &mut t.overflow
        };
        if now.duration_since(e.window_start) > self.window
            && e.locked_until.is_none_or(|u| u <= now)
        {
            *e = Entry::new(now);
        }
        e.failures = e.failures.saturating_add(1);
        if e.failures >= self.limit {
            e.locked_until = Some(now + self.lockout);
            self.locked_until_ms
                .fetch_max(self.ms_since_epoch(now + self.lockout), Ordering::Relaxed);
        }
    }

    /// Forgets `key` (after a success).
    pub fn clear(&self, key: &str) {
        self.table().keys.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_clears_on_success() {
        let t = Throttle::new(3, Duration::from_secs(60), Duration::from_secs(60));
        t.fail("a");
        t.fail("a");
        assert!(t.locked("a").is_none());
        t.fail("a");
        assert!(t.locked("a").is_some());
        assert!(t.locked("b").is_none());
        t.clear("a");
        assert!(t.locked("a").is_none());
    }

    #[test]
    fn a_full_table_does_not_grow_and_new_keys_share_one_limit() {
        let t = Throttle::with_capacity(3, Duration::from_secs(60), Duration::from_secs(60), 4);
        for k in ["a", "b", "c", "d"] {
            t.fail(k);
        }
        assert_eq!(t.len(), 4);
        // A flood of fresh keys: the table stays at its cap…
        for n in 0..10_000 {
            t.fail(&format!("fresh-{n}"));
        }
        assert_eq!(t.len(), 4);
        // …and the keys it could not remember are throttled together, the fresh ones included,
        assert!(t.locked("fresh-1").is_some());
        assert!(t.locked("never-seen").is_some());
        // while the known ones keep their own counts.
        assert!(t.locked("a").is_none());
        t.fail("a");
        t.fail("a");
        assert!(t.locked("a").is_some());
        assert!(t.locked("b").is_none());
        // Clearing a known key makes room for a new one.
        t.clear("b");
        t.fail("e");
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn stale_keys_are_swept_to_make_room() {
        let t = Throttle::with_capacity(3, Duration::ZERO, Duration::ZERO, 2);
        t.fail("a");
        t.fail("b");
        std::thread::sleep(Duration::from_millis(5));
        // Both are stale: the sweep frees the table for the new key.
        t.fail("c");
        assert_eq!(t.len(), 1);
        assert!(t.locked("c").is_none());
    }
}
