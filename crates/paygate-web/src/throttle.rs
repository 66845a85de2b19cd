//! In-memory throttles for abuse: failed sign-ins, rejected deliveries per address.
//!
//! A key (an e-mail and address, an IP) may fail `limit` times within `window`; beyond that it
//! is locked out for `lockout`. Successful attempts do not count. Memory is bounded: the table
//! is swept of stale keys when it grows. Per replica, which is enough to make guessing and
//! flooding expensive; the lockout is short enough that a legitimate caller recovers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

/// A failure counter with lockout.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    lockout: Duration,
    map: Mutex<HashMap<String, Entry>>,
    /// When the latest lockout ends (ms after `epoch`): while none is in force, `locked` answers
    /// from this atomic without touching the map, so callers on a hot path pay one load.
    locked_until_ms: AtomicU64,
    epoch: Instant,
}

impl Throttle {
    /// `limit` failures per `window`, then locked for `lockout`.
    pub fn new(limit: u32, window: Duration, lockout: Duration) -> Self {
        Self {
            limit,
            window,
            lockout,
            map: Mutex::new(HashMap::new()),
            locked_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn ms_since_epoch(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
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
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let until = map.get(key)?.locked_until?;
        until.checked_duration_since(Instant::now())
    }

    /// Records a failure of `key`.
    pub fn fail(&self, key: &str) {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 50_000 {
            let horizon = self.window.max(self.lockout);
            map.retain(|_, e| {
                now.duration_since(e.window_start) < horizon
                    || e.locked_until.is_some_and(|u| u > now)
            });
        }
        let e = map.entry(key.to_owned()).or_insert(Entry {
            window_start: now,
            failures: 0,
            locked_until: None,
        });
        if now.duration_since(e.window_start) > self.window {
            *e = Entry {
                window_start: now,
                failures: 0,
                locked_until: None,
            };
        }
        e.failures += 1;
        if e.failures >= self.limit {
            e.locked_until = Some(now + self.lockout);
            self.locked_until_ms
                .fetch_max(self.ms_since_epoch(now + self.lockout), Ordering::Relaxed);
        }
    }

    /// Forgets `key` (after a success).
    pub fn clear(&self, key: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
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
}
