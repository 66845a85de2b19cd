//! The intake's view of a company, cached in memory.
//!
//! The intake looks a company up on every delivery; a database round trip there would cost more
//! than the whole verification. Entries live for a short TTL (changes made on another replica
//! show up within it) and are dropped at once when this process changes the company. Unknown
//! companies are cached too, so a flood aimed at a made-up company id costs no query.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hmac::Mac;

pub use paygate_wire::signature::SecretMac;

/// A company as the intake needs it.
#[derive(Debug)]
pub struct IntakeCompany {
    /// Internal id.
    pub pk: i64,
    pub company_id: String,
    pub active: bool,
    pub secrets: Vec<IntakeSecret>,
}

/// One signing secret that may verify a delivery.
pub struct IntakeSecret {
    /// HMAC keyed with the whole secret string (`whsec_` included), as Stripe signs.
    pub mac: SecretMac,
    /// Mode of the profile the secret belongs to.
    pub livemode: bool,
    pub profile_id: String,
    /// Rotated-out secrets verify until then (ms since epoch).
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for IntakeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeSecret")
            .field("livemode", &self.livemode)
            .field("profile_id", &self.profile_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl IntakeSecret {
    /// A secret keyed for verification.
    pub fn new(secret: &str, livemode: bool, profile_id: String, expires_at: Option<i64>) -> Self {
        let mac = <SecretMac as Mac>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Self {
            mac,
            livemode,
            profile_id,
            expires_at,
        }
    }

    /// Still accepted at `now_ms`.
    pub fn valid_at(&self, now_ms: i64) -> bool {
        self.expires_at.is_none_or(|e| e > now_ms)
    }
}

impl paygate_wire::signature::VerifyKey for IntakeSecret {
    fn mac(&self) -> &SecretMac {
        &self.mac
    }
    fn valid_at(&self, now_ms: i64) -> bool {
        IntakeSecret::valid_at(self, now_ms)
    }
}

type Entry = (Instant, Option<Arc<IntakeCompany>>);

/// The cache itself: company id → entry, with a TTL.
#[derive(Debug)]
pub struct IntakeCache {
    ttl: Duration,
    map: RwLock<HashMap<String, Entry>>,
}

impl IntakeCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// The cached entry, if fresh: `Some(None)` means "known not to exist".
    pub fn get(&self, company_id: &str) -> Option<Option<Arc<IntakeCompany>>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let (at, v) = map.get(company_id)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    /// Stores an entry.
    pub fn put(&self, company_id: &str, value: Option<Arc<IntakeCompany>>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            // Bounded: a flood of random company ids must not grow memory without limit.
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() > 100_000 {
                map.clear();
            }
        }
        map.insert(company_id.to_owned(), (Instant::now(), value));
    }

    /// Drops a company's entry (after a change in this process).
    pub fn invalidate(&self, company_id: &str) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(company_id);
    }
}
