//! Missed-event recovery against a fake Stripe API on port 0.

use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn pi(n: u32) -> Value {
    let mut e = event(
        "payment_intent.succeeded",
        json!({"id": format!("pi_{n}"), "object": "payment_intent", "status": "succeeded"}),
    );
    e["id"] = json!(format!("evt_recon_{n}_{}", paygate_testkit::unique("")));
    e
}

async fn missed_events_are_recovered_once_across_pages(backend: Backend) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let (e1, e2, e3, e4) = (pi(1), pi(2), pi(3), pi(4));
    let mut other = event(
        "product.created",
        json!({"id": "prod_1", "object": "product"}),
    );
    other["id"] = json!("evt_unsubscribed_type");
    // e2 did arrive by webhook; the others were missed.
    assert_eq!(app.deliver(&company, &secret, &e2).await.0, StatusCode::OK);
    // Three pages, newest first, as Stripe lists them.
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [e4, other], "has_more": true, "url": "/v1/events"}),
        ))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("starting_after", "evt_unsubscribed_type"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [e3, e2], "has_more": true, "url": "/v1/events"}),
        ))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("starting_after", e2["id"].as_str().unwrap()))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [e1], "has_more": false, "url": "/v1/events"}),
        ))
        .mount(&stripe)
        .await;

    let (s, summary) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/reconcile"),
            json!({"since_secs": 86400}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{summary}");
    assert_eq!(summary["pages"], 3);
    assert_eq!(summary["fetched"], 5);
    assert_eq!(summary["recovered"], 3);
    assert_eq!(summary["already_present"], 1);
    assert_eq!(summary["skipped"], 1);
    assert_eq!(app.inbox_count(&company).await, 4);
    let (_, recovered) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/events/{}",
            e1["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(recovered["origin"], "recovered");
    assert_eq!(recovered["payload"]["data"]["object"]["id"], "pi_1");
    let (_, webhook) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/events/{}",
            e2["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(webhook["origin"], "webhook");
    // Every request used the profile's secret key and asked from the given point.
    let requests = stripe.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(auth.starts_with("Bearer sk_test_"), "{auth}");
        assert!(
            r.url.query().unwrap().contains("created%5Bgte%5D=")
                || r.url.query().unwrap().contains("created[gte]=")
        );
    }
    // A second run recovers nothing new.
    let (_, again) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/reconcile"),
            json!({"since_secs": 86400}),
        )
        .await;
    assert_eq!(again["recovered"], 0);
    assert_eq!(again["already_present"], 4);
    assert_eq!(app.inbox_count(&company).await, 4);
}

async fn stripe_errors_surface_as_bad_gateway(backend: Backend) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&new_secret()).await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}})))
        .mount(&stripe)
        .await;
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/reconcile"),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::BAD_GATEWAY, json!("stripe_error"))
    );
    assert_eq!(app.inbox_count(&company).await, 0);
}

/// The periodic job (as `paygate serve` runs it) recovers what a webhook never delivered,
/// without anyone asking.
async fn the_periodic_job_recovers_missed_events(backend: Backend) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let missed = pi(7);
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [missed], "has_more": false, "url": "/v1/events"}),
        ))
        .mount(&stripe)
        .await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let job = app
        .app
        .spawn_reconciler(std::time::Duration::from_millis(50), &cancel);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.inbox_count(&company).await == 0 {
        assert!(std::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    cancel.cancel();
    job.await.unwrap();
    assert_eq!(
        app.inbox_count(&company).await,
        1,
        "recovered once, however many runs"
    );
    let (_, ev) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/events/{}",
            missed["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ev["origin"], "recovered", "{ev}");
}

db_tests!(
    the_periodic_job_recovers_missed_events,
    missed_events_are_recovered_once_across_pages,
    stripe_errors_surface_as_bad_gateway
);
