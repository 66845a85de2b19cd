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

/// The callback URL is one segment under `/callbacks/v1.0/stripe`, POSTed: another method on it
/// answers 405 with `Allow: POST`, a path with no company id or more than one segment 404, all
/// with a JSON error; none of them stores anything. A delivery to the company's URL is stored.
async fn the_callback_url_takes_one_company_id_and_only_post(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let url = app.url(&format!("/callbacks/v1.0/stripe/{company}"));
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let res = app
            .client
            .request(method.clone(), &url)
            .body(body())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(res.headers()["allow"], "POST", "{method}");
        let b: serde_json::Value = res.json().await.unwrap();
        assert_eq!(b["error"]["code"], "method_not_allowed", "{method}");
    }
    for path in [
        format!("/callbacks/v1.0/stripe/{company}/"),
        format!("/callbacks/v1.0/stripe/{company}/extra"),
        "/callbacks/v1.0/stripe/".to_owned(),
        "/callbacks/v1.0/stripe".to_owned(),
        format!("/callbacks/v1.0/stripex/{company}"),
    ] {
        let res = app
            .client
            .post(app.url(&path))
            .body(body())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let b: serde_json::Value = res.json().await.unwrap();
        assert_eq!(b["error"]["code"], "not_found", "{path}");
    }
    assert_eq!(app.inbox_count(&company).await, 0);
    let (s, b) = app
        .deliver(&company, &secret, &serde_json::from_slice(&body()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(app.inbox_count(&company).await, 1);
}

db_tests!(
    the_callback_url_takes_one_company_id_and_only_post,
    malformed_company_ids_cost_no_lookup_and_no_cache_entry,
    unknown_company_ids_count_toward_the_address_reject_limit,
);
