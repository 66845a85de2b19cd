//! Limits on the Stripe lookups that the shopper's landing page can cause.
//!
//! The landing page needs no authentication. A session id that Paygate has not recorded is
//! looked up at Stripe with the company's secret key, and Stripe's rate limits apply to the
//! whole account. Without limits, a stranger could use up a merchant's Stripe rate limit.
//!
//! Policy:
//! - **Unknown ids are remembered.** When Stripe answers 404 for an id, the answer is kept for
//!   [`UNKNOWN_TTL`] per company, mode and id. Asking for the same id again costs no call. At
//!   most [`MAX_UNKNOWN`] ids are kept: when the cache is full, expired entries go first, then
//!   the oldest.
//! - **Each company has a budget.** Every company and mode has a token bucket of `per_minute`
//!   lookups. It allows bursts up to that many and refills evenly over the minute. When the
//!   bucket is empty, the page answers from the database alone ("awaiting payment
//!   confirmation"), and the webhook completes the order. A 429 from Stripe empties the bucket.
//! - **Limits are per replica.** Everything is kept in memory, so N replicas allow N times the
//!   budget. That is still bounded, and nothing needs to be shared.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an id Stripe does not know is answered as unknown without asking again.
pub const UNKNOWN_TTL: Duration = Duration::from_secs(600);

/// The most unknown ids remembered at once. Ids are at most 255 bytes, so this stays under a
/// few MiB.
pub const MAX_UNKNOWN: usize = 10_000;

/// Buckets kept before full ones are dropped (a full bucket is the same as a new one).
const BUCKET_SWEEP_AT: usize = 10_000;

/// The company (internal id) and mode (`livemode`) a lookup spends from.
type Account = (i64, bool);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    unknown: HashMap<(Account, String), Instant>,
    buckets: HashMap<Account, Bucket>,
}

/// The negative cache and the budgets, shared by every worker thread of the process.
#[derive(Debug)]
pub struct ShopperLookups {
    per_minute: u32,
    unknown_ttl: Duration,
    max_unknown: usize,
    inner: Mutex<Inner>,
}

impl ShopperLookups {
    /// Budgets of `per_minute` lookups per company and mode (`0`: the page never calls Stripe).
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            unknown_ttl: UNKNOWN_TTL,
            max_unknown: MAX_UNKNOWN,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether Stripe said recently that it does not know this session.
    pub fn is_unknown(&self, company_pk: i64, livemode: bool, session_id: &str) -> bool {
        let inner = self.inner();
        inner
            .unknown
            .get(&((company_pk, livemode), session_id.to_owned()))
            .is_some_and(|at| at.elapsed() < self.unknown_ttl)
    }

    /// Remembers that Stripe does not know this session.
    pub fn remember_unknown(&self, company_pk: i64, livemode: bool, session_id: &str) {
        if self.max_unknown == 0 {
            return;
        }
        let key = ((company_pk, livemode), session_id.to_owned());
        let mut inner = self.inner();
        if inner.unknown.len() >= self.max_unknown && !inner.unknown.contains_key(&key) {
            let ttl = self.unknown_ttl;
            inner.unknown.retain(|_, at| at.elapsed() < ttl);
            // Still full: the oldest goes. Each insertion follows a Stripe call within the
            // budget, so this scan runs at most at the budgets' pace.
            while inner.unknown.len() >= self.max_unknown {
                let Some(oldest) = inner
                    .unknown
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                inner.unknown.remove(&oldest);
            }
        }
        inner.unknown.insert(key, Instant::now());
    }

    /// Takes one lookup from the company's budget for this mode. Returns `false` when the
    /// budget is used up, and then the page must not call Stripe.
    pub fn try_take(&self, company_pk: i64, livemode: bool) -> bool {
        if self.per_minute == 0 {
            return false;
        }
        let capacity = f64::from(self.per_minute);
        let now = Instant::now();
        let mut inner = self.inner();
        if inner.buckets.len() >= BUCKET_SWEEP_AT {
            let per_sec = capacity / 60.0;
            inner.buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < capacity
            });
        }
        let bucket = inner
            .buckets
            .entry((company_pk, livemode))
            .or_insert(Bucket {
                tokens: capacity,
                at: now,
            });
        let refill = now.duration_since(bucket.at).as_secs_f64() * capacity / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Empties the budget after Stripe answered 429. The account is at its rate limit, so the
    /// page waits for the bucket to refill before it adds more calls.
    pub fn pause(&self, company_pk: i64, livemode: bool) {
        self.inner().buckets.insert(
            (company_pk, livemode),
            Bucket {
                tokens: 0.0,
                at: Instant::now(),
            },
        );
    }

    /// How many unknown ids are remembered (expired ones included until they are swept).
    pub fn unknown_len(&self) -> usize {
        self.inner().unknown.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unknown_ids_have_a_hard_cap() {
        let l = ShopperLookups {
            max_unknown: 50,
            ..ShopperLookups::new(60)
        };
        for i in 0..500 {
            l.remember_unknown(1, false, &format!("cs_test_{i}"));
        }
        assert_eq!(l.unknown_len(), 50);
        assert!(l.is_unknown(1, false, "cs_test_499"));
        assert!(
            !l.is_unknown(1, false, "cs_test_0"),
            "the oldest went first"
        );
        assert!(!l.is_unknown(1, true, "cs_test_499"), "modes apart");
        assert!(!l.is_unknown(2, false, "cs_test_499"), "companies apart");
    }

    #[test]
    fn a_budget_is_per_company_and_mode_and_a_429_empties_it() {
        let l = ShopperLookups::new(3);
        assert!((0..3).all(|_| l.try_take(1, false)));
        assert!(!l.try_take(1, false));
        assert!(l.try_take(1, true));
        assert!(l.try_take(2, false));
        l.pause(2, false);
        assert!(!l.try_take(2, false));
        assert!(!ShopperLookups::new(0).try_take(1, false));
    }
}
