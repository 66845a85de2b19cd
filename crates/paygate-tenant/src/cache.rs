//! The intake's view of a company, cached in memory.
//!
//! The intake looks a company up on every delivery; a database round trip there would cost more
//! than the whole verification. Entries live for a short TTL (changes made on another replica
//! show up within it) and are dropped at once when this process changes the company. Unknown
//! companies are cached too, so a flood aimed at a made-up company id costs no query.
//!
//! When an entry expires, the next delivery for the company refreshes it and every other one
//! goes on with the entry it has (for up to another TTL) instead of querying too: at thousands
//! of deliveries a second, an entry that expired for everyone at once sent each delivery in
//! flight to the database for the same rows, one after the other on SQLite's one connection,
//! and the inbox writer waited behind them (every TTL, a stall of tens of milliseconds in the
//! acknowledgements: docs/benchmarks.md, seventh pass). An entry dropped by a change in this
//! process is not served stale: it is gone, and the next delivery loads it.
//!
//! Policy: only ids shaped like a company's (`validate::is_company_id`, 64 bytes at most) are
//! looked up and cached, and the unknown ones are held up to a hard cap
//! ([`MAX_UNKNOWN_COMPANIES`]), apart from the known companies so a flood of made-up ids never
//! pushes a real company out.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
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
    /// Ids whose stale entry one caller is refreshing (see [`Lookup::Refresh`]).
    refreshing: Mutex<HashSet<String>>,
}

/// What the cache holds for a company id, and what the caller should do.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// Use this: fresh, or stale while another caller refreshes it (`None`: no such company).
    Use(Option<Arc<IntakeCompany>>),
    /// Stale: this caller loads the company and [`IntakeCache::put`]s it; the others use the
    /// stale entry meanwhile. Dropping the guard without a `put` (the load failed, or the
    /// caller went away) lets the next caller try.
    Refresh(RefreshGuard<'a>),
    /// Nothing usable: load it (and `put` it).
    Miss,
}

/// One caller's turn to refresh a stale entry; ends when dropped.
#[derive(Debug)]
pub struct RefreshGuard<'a> {
    cache: &'a IntakeCache,
    company_id: String,
}

impl Drop for RefreshGuard<'_> {
    fn drop(&mut self) {
        self.cache
            .refreshing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.company_id);
    }
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
            refreshing: Mutex::new(HashSet::new()),
        }
    }

    /// What the cache holds for `company_id` (see [`Lookup`]). A stale entry is served for
    /// one more TTL at most while a caller refreshes it; older, it is a miss for everyone.
    pub fn lookup(&self, company_id: &str) -> Lookup<'_> {
        let entry = {
            let known = self.known.read().unwrap_or_else(|e| e.into_inner());
            known.get(company_id).map(|(at, c)| (*at, Some(c.clone())))
        };
        let entry = entry.or_else(|| {
            let unknown = self.unknown.read().unwrap_or_else(|e| e.into_inner());
            unknown.get(company_id).map(|at| (*at, None))
        });
        let Some((at, value)) = entry else {
            return Lookup::Miss;
        };
        let age = at.elapsed();
        if age < self.ttl {
            return Lookup::Use(value);
        }
        if age >= self.ttl.saturating_mul(2) {
            return Lookup::Miss;
        }
        let mut refreshing = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        if refreshing.contains(company_id) {
            return Lookup::Use(value);
        }
        refreshing.insert(company_id.to_owned());
        Lookup::Refresh(RefreshGuard {
            cache: self,
            company_id: company_id.to_owned(),
        })
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

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    fn company(id: &str) -> Arc<IntakeCompany> {
        Arc::new(IntakeCompany {
            pk: 7,
            company_id: id.to_owned(),
            active: true,
            secrets: Vec::new(),
            connect: None,
        })
    }

    /// A cache holding `acme`, put `age` ago (known), and `ghost`, learnt unknown as long ago.
    fn aged(age: Duration) -> IntakeCache {
        let cache = IntakeCache::new(TTL);
        let at = Instant::now().checked_sub(age).unwrap();
        cache
            .known
            .write()
            .unwrap()
            .insert("acme".into(), (at, company("acme")));
        cache.unknown.write().unwrap().insert("ghost".into(), at);
        cache
    }

    fn used(l: &Lookup<'_>) -> Option<Option<String>> {
        match l {
            Lookup::Use(v) => Some(v.as_ref().map(|c| c.company_id.clone())),
            _ => None,
        }
    }

    #[test]
    fn a_fresh_entry_is_used_by_everyone() {
        let cache = aged(Duration::from_secs(1));
        for _ in 0..3 {
            assert_eq!(used(&cache.lookup("acme")), Some(Some("acme".into())));
            assert_eq!(used(&cache.lookup("ghost")), Some(None));
        }
        assert!(matches!(cache.lookup("nobody"), Lookup::Miss));
    }

    /// Expired: one caller refreshes, everyone else goes on with the entry they had (a known
    /// company and a known-unknown id alike), until the refresh puts the new one.
    #[test]
    fn a_stale_entry_is_refreshed_by_one_caller_while_the_others_use_it() {
        let cache = aged(TTL + Duration::from_secs(1));
        for id in ["acme", "ghost"] {
            let Lookup::Refresh(guard) = cache.lookup(id) else {
                panic!("the first caller after expiry refreshes {id}");
            };
            for _ in 0..3 {
                let expected = (id == "acme").then(|| "acme".to_owned());
                assert_eq!(used(&cache.lookup(id)), Some(expected));
            }
            cache.put(id, Some(company(id)));
            drop(guard);
            assert_eq!(used(&cache.lookup(id)), Some(Some(id.to_owned())));
        }
    }

    /// A refresh that fails (or whose caller went away) does not leave the entry stuck stale:
    /// the next caller refreshes.
    #[test]
    fn a_refresh_dropped_without_a_put_lets_the_next_caller_refresh() {
        let cache = aged(TTL + Duration::from_secs(1));
        let Lookup::Refresh(guard) = cache.lookup("acme") else {
            panic!("the first caller refreshes");
        };
        assert!(matches!(cache.lookup("acme"), Lookup::Use(Some(_))));
        drop(guard);
        assert!(matches!(cache.lookup("acme"), Lookup::Refresh(_)));
    }

    /// Under a flood of made-up company ids the unknown ones are held up to a hard cap, and
    /// the known companies stay cached whatever the flood.
    #[test]
    fn unknown_company_ids_are_held_up_to_a_hard_cap() {
        let cache = IntakeCache::new(Duration::from_secs(3600));
        cache.put("acme", Some(company("acme")));
        for i in 0..(3 * MAX_UNKNOWN_COMPANIES) {
            cache.put(&format!("made_up_{i}"), None);
            let (_, unknown) = cache.sizes();
            assert!(
                unknown <= MAX_UNKNOWN_COMPANIES,
                "{unknown} unknown ids held after {i} put"
            );
        }
        assert!(
            used(&cache.lookup("acme")) == Some(Some("acme".into())),
            "a flood of unknown ids does not push a known company out"
        );
        let last = format!("made_up_{}", 3 * MAX_UNKNOWN_COMPANIES - 1);
        assert_eq!(used(&cache.lookup(&last)), Some(None));
        // A company that appears is known at once, and forgets its "unknown" entry.
        cache.put(&last, Some(company(&last)));
        assert_eq!(used(&cache.lookup(&last)), Some(Some(last.clone())));
    }

    /// Stale beyond a second TTL, or dropped by a change in this process: nobody uses it.
    #[test]
    fn an_entry_too_old_or_invalidated_is_a_miss() {
        let cache = aged(TTL * 2 + Duration::from_secs(1));
        assert!(matches!(cache.lookup("acme"), Lookup::Miss));
        assert!(matches!(cache.lookup("ghost"), Lookup::Miss));
        let cache = aged(TTL + Duration::from_secs(1));
        cache.invalidate("acme");
        assert!(matches!(cache.lookup("acme"), Lookup::Miss));
        let cache = aged(Duration::from_secs(1));
        cache.invalidate("acme");
        assert!(matches!(cache.lookup("acme"), Lookup::Miss));
    }
}
