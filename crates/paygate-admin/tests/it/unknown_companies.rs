//! The intake under deliveries for companies that do not exist: an id no company can have is
//! refused without a lookup or a cache entry, and unknown ids count toward the address's limit
//! of rejected deliveries like any other rejection.

use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret};
use reqwest::StatusCode;
use serde_json::json;

fn body() -> Vec<u8> {
    serde_json::to_vec(&event(
        "payment_intent.succeeded",
        json!({"id": "pi_unknown_co", "object": "payment_intent"}),
    ))
    .unwrap()
}

/// Too long, or with characters company creation refuses: 404 `company_not_found`, and the
/// intake's cache holds nothing for it. A well-shaped unknown id is cached once, as before.
async fn malformed_company_ids_cost_no_lookup_and_no_cache_entry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "x".repeat(8 * 1024);
    for id in [
        long.as_str(),
        &"y".repeat(65),
        "a.b",
        "caf%C3%A9",
        "a%20b",
        "%00",
    ] {
        let (s, b) = app.post_callback(id, body(), Some("t=1,v1=00")).await;
        assert_eq!(
            (s, b["error"]["code"].clone()),
            (StatusCode::NOT_FOUND, json!("company_not_found")),
            "{id:.40}"
        );
    }
    assert_eq!(app.app.tenants.intake_cache_len(), (0, 0));
    let (s, _) = app
        .post_callback("no_such_company", body(), Some("t=1,v1=00"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.app.tenants.intake_cache_len(), (0, 1));
}

/// A flood of unknown company ids from one address is cut off (429) like any other flood of
/// rejected deliveries; the address's deliveries to a real company are refused too, until the
/// lockout ends.
async fn unknown_company_ids_count_toward_the_address_reject_limit(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.intake_reject_limit_per_minute = 10;
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    for i in 0..10 {
        let id = if i % 2 == 0 {
            format!("made_up_{i}")
        } else {
            format!("bad.id.{i}")
        };
        let (s, b) = app.post_callback(&id, body(), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{i}: {b}");
    }
    for i in 0..5 {
        let (s, b) = app
            .post_callback(&format!("made_up_more_{i}"), body(), None)
            .await;
        assert_eq!(
            (s, b["error"]["code"].clone()),
            (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited"))
        );
    }
    let ev = event(
        "payment_intent.succeeded",
        json!({"id": "pi_real", "object": "payment_intent"}),
    );
    let (s, _) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.inbox_count(&company).await, 0);
}

db_tests!(
    malformed_company_ids_cost_no_lookup_and_no_cache_entry,
    unknown_company_ids_count_toward_the_address_reject_limit,
);
