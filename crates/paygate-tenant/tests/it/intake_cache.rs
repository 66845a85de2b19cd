//! The intake's cache of companies under a flood of made-up company ids: the unknown ones are
//! held up to a hard cap, and the known companies stay cached whatever the flood.

use std::sync::Arc;
use std::time::Duration;

use paygate_tenant::IntakeCompany;
use paygate_tenant::cache::{IntakeCache, MAX_UNKNOWN_COMPANIES};

fn company(id: &str) -> Arc<IntakeCompany> {
    Arc::new(IntakeCompany {
        pk: 7,
        company_id: id.to_owned(),
        active: true,
        secrets: Vec::new(),
        connect: None,
    })
}

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
        matches!(cache.get("acme"), Some(Some(c)) if c.company_id == "acme"),
        "a flood of unknown ids does not push a known company out"
    );
    let last = format!("made_up_{}", 3 * MAX_UNKNOWN_COMPANIES - 1);
    assert!(matches!(cache.get(&last), Some(None)));
    // A company that appears is known at once, and forgets its "unknown" entry.
    cache.put(&last, Some(company(&last)));
    assert!(matches!(cache.get(&last), Some(Some(_))));
}
