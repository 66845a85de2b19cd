//! `/metrics` after traffic.

use paygate_testkit::{Backend, TestApp, db_tests, event, new_secret, now_secs, sign};
use reqwest::StatusCode;
use serde_json::json;

fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("series {name} missing in:\n{text}"))
}

async fn metrics_count_intake_outcomes_and_the_backlog(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let ev = event(
        "payment_intent.succeeded",
        json!({"id": "pi_m", "object": "payment_intent"}),
    );
    assert_eq!(app.deliver(&company, &secret, &ev).await.0, StatusCode::OK);
    assert_eq!(app.deliver(&company, &secret, &ev).await.0, StatusCode::OK);
    let body = serde_json::to_vec(&ev).unwrap();
    let (s, _) = app
        .post_callback(&company, body, Some(&sign("whsec_wrong", now_secs(), b"x")))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    assert_eq!(
        series(&text, "paygate_intake_requests_total{outcome=\"accepted\"}"),
        1.0
    );
    assert_eq!(
        series(
            &text,
            "paygate_intake_requests_total{outcome=\"duplicate\"}"
        ),
        1.0
    );
    assert_eq!(
        series(
            &text,
            "paygate_intake_requests_total{outcome=\"signature_invalid\"}"
        ),
        1.0
    );
    assert_eq!(series(&text, "paygate_intake_duration_seconds_count"), 3.0);
    assert!(series(&text, "paygate_intake_duration_seconds_bucket{le=\"+Inf\"}") >= 3.0);
    // On SQLite the accepted delivery's answer waited for the WAL's sync; PostgreSQL syncs
    // within its own commit (the series stays, at zero).
    let syncs = series(&text, "paygate_inbox_sync_duration_seconds_count");
    match backend {
        Backend::Sqlite => assert!(syncs >= 1.0, "{syncs} syncs"),
        Backend::Postgres => assert_eq!(syncs, 0.0),
    }
    assert!(series(&text, "paygate_inbox_backlog") <= 1.0);
    assert!(series(&text, "paygate_inbox_oldest_age_seconds") >= 0.0);
    for family in [
        "paygate_handler_events_total",
        "paygate_notification_deliveries_total",
        "paygate_reconcile_total",
        "paygate_inbox_failed",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
}

/// After the router, a notification and a reconciliation run, their series carry values: handler
/// outcomes by type, the outbox backlog and delivery outcomes, reconciliation runs.
async fn metrics_follow_handlers_deliveries_and_reconciliation(backend: Backend) {
    let stripe = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/v1/events"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [], "has_more": false, "url": "/v1/events"}),
        ))
        .mount(&stripe)
        .await;
    let mut opts = paygate_testkit::Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    opts.adjust = |s| s.outbound_allow_private = true;
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = paygate_testkit::receivers::Receiver::start(&[]).await;
    let (s, _) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": rx.url()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let ev = event(
        "payment_intent.succeeded",
        json!({"id": "pi_obs", "object": "payment_intent", "status": "succeeded", "amount": 100, "currency": "eur"}),
    );
    assert_eq!(app.deliver(&company, &secret, &ev).await.0, StatusCode::OK);
    app.drain().await;
    let scrape = || async {
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let text = scrape().await;
    assert_eq!(
        series(
            &text,
            "paygate_handler_events_total{type=\"payment_intent.succeeded\",outcome=\"processed\"}"
        ),
        1.0
    );
    assert_eq!(series(&text, "paygate_outbox_backlog"), 1.0);
    assert!(series(&text, "paygate_outbox_oldest_age_seconds") >= 0.0);
    app.drain_notifications().await;
    assert_eq!(app.app.reconcile_all().await.unwrap(), 0);
    let text = scrape().await;
    assert_eq!(series(&text, "paygate_outbox_backlog"), 0.0);
    assert_eq!(
        series(
            &text,
            "paygate_notification_deliveries_total{outcome=\"succeeded\"}"
        ),
        1.0
    );
    assert_eq!(
        series(&text, "paygate_reconcile_total{result=\"runs\"}"),
        1.0
    );
}

db_tests!(
    metrics_count_intake_outcomes_and_the_backlog,
    metrics_follow_handlers_deliveries_and_reconciliation,
);
