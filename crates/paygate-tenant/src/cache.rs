//! The intake's view of a company, cached in memory.
//!
//! The intake looks a company up on every delivery; a database round trip there would cost more
//! than the whole verification. Entries live for a short TTL (changes made on another replica
//! show up within it) and are dropped at once when this process changes the company. Unknown
//! companies are cached too, so a flood aimed at a made-up company id costs no query.
//!
//! Policy: only ids shaped like a company's (`validate::is_company_id`, 64 bytes at most) are
//! looked up and cached, and the unknown ones are held up to a hard cap
//! ([`MAX_UNKNOWN_COMPANIES`]), apart from the known companies so a flood of made-up ids never
//! pushes a real company out.

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
    /// Set only for a Connect platform: where its connected accounts' events go. `None` for
    /// every other company, so their deliveries cost nothing more.
    pub connect: Option<ConnectRoutes>,
}

/// A Connect platform's routing table, loaded with the platform's cache entry: the linked
/// companies' active profiles by (account id, livemode).
#[derive(Debug, Default)]
pub struct ConnectRoutes {
    routes: HashMap<(String, bool), ConnectTarget>,
}

/// Where a connected account's events of one mode go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectTarget {
    /// The linked company (internal id), active.
    Company(i64),
    /// No company takes them: the linked company is suspended, or two linked companies
    /// claim the account in that mode.
    Unroutable,
}

impl ConnectRoutes {
    /// Adds a linked company's active profile of `livemode` with `account_id`. A second
    /// company claiming the same account and mode makes it unroutable (never a guess).
    pub fn add(&mut self, account_id: &str, livemode: bool, company_pk: i64, active: bool) {
        let target = if active {
            ConnectTarget::Company(company_pk)
        } else {
            ConnectTarget::Unroutable
        };
        self.routes
            .entry((account_id.to_owned(), livemode))
            .and_modify(|t| {
                if *t != ConnectTarget::Company(company_pk) {
                    *t = ConnectTarget::Unroutable;
                }
            })
            .or_insert(target);
    }

    /// The linked company for an event of `livemode` naming `account_id`; `None` when none
    /// takes it.
    pub fn route(&self, account_id: &str, livemode: bool) -> Option<i64> {
        // The key is owned; a lookup with a borrowed pair would need a custom Borrow impl,
        // and platforms are few: the allocation is only paid on their deliveries.
        match self.routes.get(&(account_id.to_owned(), livemode)) {
            Some(ConnectTarget::Company(pk)) => Some(*pk),
            _ => None,
        }
    }
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

/// The most company ids remembered as unknown at once (a hard cap: a flood of made-up ids
/// cannot grow the cache past it). Ids are 64 bytes at most (only well-shaped ids are cached),
/// so the negative half of the cache stays under a few MiB.
pub const MAX_UNKNOWN_COMPANIES: usize = 10_000;

/// Known companies held before stale entries are swept (there are only as many as companies).
const KNOWN_SWEEP_AT: usize = 100_000;

/// The cache itself: known companies and ids known not to exist, each with a TTL.
#[derive(Debug)]
pub struct IntakeCache {
    ttl: Duration,
    max_unknown: usize,
    known: RwLock<HashMap<String, (Instant, Arc<IntakeCompany>)>>,
    /// Ids known not to exist, with when that was learnt; at most `max_unknown` of them.
    unknown: RwLock<HashMap<String, Instant>>,
}

impl IntakeCache {
    /// An empty cache whose entries live `ttl`, holding at most [`MAX_UNKNOWN_COMPANIES`]
    /// unknown ids.
    pub fn new(ttl: Duration) -> Self {
        Self::with_max_unknown(ttl, MAX_UNKNOWN_COMPANIES)
    }

    /// An empty cache holding at most `max_unknown` unknown ids.
    pub fn with_max_unknown(ttl: Duration, max_unknown: usize) -> Self {
        Self {
            ttl,
            max_unknown,
            known: RwLock::new(HashMap::new()),
            unknown: RwLock::new(HashMap::new()),
        }
    }

    /// The cached entry, if fresh: `Some(None)` means "known not to exist".
    pub fn get(&self, company_id: &str) -> Option<Option<Arc<IntakeCompany>>> {
        {
            let known = self.known.read().unwrap_or_else(|e| e.into_inner());
            if let Some((at, c)) = known.get(company_id)
                && at.elapsed() < self.ttl
            {
                return Some(Some(c.clone()));
            }
        }
        let unknown = self.unknown.read().unwrap_or_else(|e| e.into_inner());
        let at = unknown.get(company_id)?;
        (at.elapsed() < self.ttl).then_some(None)
    }

    /// Stores an entry (`None`: the company does not exist).
    pub fn put(&self, company_id: &str, value: Option<Arc<IntakeCompany>>) {
        let ttl = self.ttl;
        match value {
            Some(c) => {
                self.unknown
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(company_id);
                let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
                if known.len() >= KNOWN_SWEEP_AT {
                    known.retain(|_, (at, _)| at.elapsed() < ttl);
                }
                known.insert(company_id.to_owned(), (Instant::now(), c));
            }
            None => {
                self.known
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(company_id);
                if self.max_unknown == 0 {
                    return;
                }
                let mut unknown = self.unknown.write().unwrap_or_else(|e| e.into_inner());
                if unknown.len() >= self.max_unknown && !unknown.contains_key(company_id) {
                    // Full: drop what expired; if a flood keeps it full, forget every unknown id
                    // (they only save a query each) rather than grow.
                    unknown.retain(|_, at| at.elapsed() < ttl);
                    if unknown.len() >= self.max_unknown {
                        unknown.clear();
                    }
                }
                unknown.insert(company_id.to_owned(), Instant::now());
            }
        }
    }

    /// Drops a company's entry (after a change in this process).
    pub fn invalidate(&self, company_id: &str) {
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(company_id);
        self.unknown
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(company_id);
    }

    /// How many ids are held: `(known, unknown)`, fresh or not.
    pub fn sizes(&self) -> (usize, usize) {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner()).len();
        let unknown = self.unknown.read().unwrap_or_else(|e| e.into_inner()).len();
        (known, unknown)
    }
}
