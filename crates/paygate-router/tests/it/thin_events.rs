//! Thin events (event destinations, API v2) against a fake Stripe API on port 0: verified and
//! stored like snapshot events, then fetched (`GET /v2/core/events/{id}`) with the profile's
//! key and applied; pings recorded; a resolved event generation failure reconciled.

use paygate_testkit::objects::{event_at, payment_intent};
use paygate_testkit::thin_events::{fetched, rfc3339, thin_event};
use paygate_testkit::{
    Backend, Options, TestApp, db_tests, new_secret, now_secs, profile_json, unique,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An app on a fake Stripe, a company with a test profile; (app, fake, company, signing
/// secret, secret key).
async fn setup(backend: Backend) -> (TestApp, MockServer, String, String, String) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = unique("thin");
    app.create_company(&company).await;
    let secret = new_secret();
    let key = format!("sk_test_51ThinKey{}", unique("k"));
    let mut body = profile_json("test", &secret);
    body["secret_key"] = json!(key);
    let (s, b) = app
        .admin_post(&format!("/admin/v1/companies/{company}/profiles"), body)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    (app, stripe, company, secret, key)
}

async fn event_status(app: &TestApp, company: &str, id: &str) -> Value {
    let (s, b) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/events/{id}?mode=test"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["status"].clone()
}

async fn a_thin_event_is_fetched_and_applied(backend: Backend) {
    let (app, stripe, company, secret, key) = setup(backend).await;
    let notice = thin_event(
        "v1.payment_intent.succeeded",
        Some((
            "pi_thin_1",
            "payment_intent",
            "/v1/payment_intents/pi_thin_1",
        )),
    );
    let id = notice["id"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path(format!("/v2/core/events/{id}")))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .and(header("stripe-version", paygate_stripe::V2_API_VERSION))
        .respond_with(ResponseTemplate::new(200).set_body_json(fetched(&notice, json!({}))))
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_thin_1"))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent(
            "pi_thin_1",
            "succeeded",
            4200,
        )))
        .expect(1)
        .mount(&stripe)
        .await;

    let (s, b) = app.deliver(&company, &secret, &notice).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Stored once.
    assert_eq!(
        app.deliver(&company, &secret, &notice).await.1["duplicate"],
        json!(true)
    );
    assert_eq!(app.inbox_count(&company).await, 1);
    app.drain().await;
    assert_eq!(event_status(&app, &company, &id).await, json!("processed"));
    let (s, pi) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/payment-intents/pi_thin_1?mode=test"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{pi}");
    assert_eq!(
        (&pi["status"], &pi["amount"]),
        (&json!("succeeded"), &json!(4200))
    );
    stripe.verify().await;
}

async fn a_ping_is_answered_and_recorded(backend: Backend) {
    let (app, stripe, company, secret, _) = setup(backend).await;
    let notice = thin_event(
        "v2.core.event_destination.ping",
        Some((
            "ed_1",
            "v2.core.event_destination",
            "/v2/core/event_destinations/ed_1",
        )),
    );
    let id = notice["id"].as_str().unwrap().to_owned();
    // Nothing to fetch for a ping.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&stripe)
        .await;
    let (s, b) = app.deliver(&company, &secret, &notice).await;
    assert_eq!((s, &b["received"]), (StatusCode::OK, &json!(true)), "{b}");
    app.drain().await;
    assert_eq!(event_status(&app, &company, &id).await, json!("processed"));
    let (s, list) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/events?mode=test&status=processed"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(
        list["data"][0]["type"],
        json!("v2.core.event_destination.ping")
    );
    stripe.verify().await;
}

async fn a_resolved_generation_failure_reconciles_its_window(backend: Backend) {
    let (app, stripe, company, secret, key) = setup(backend).await;
    let now = now_secs();
    let (started, resolved) = (now - 3600, now - 600);
    let notice = thin_event("v2.core.health.event_generation_failure.resolved", None);
    let id = notice["id"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path(format!("/v2/core/events/{id}")))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fetched(
            &notice,
            json!({
                "alert_id": "alert_1",
                "grouping_key": "gk_1",
                "started_at": rfc3339(started),
                "resolved_at": rfc3339(resolved),
                "summary": "events were not generated",
                "impact": {"event_type": "payment_intent.succeeded"},
            }),
        )))
        .expect(1)
        .mount(&stripe)
        .await;
    // The events Stripe failed to generate, listed within the window (less the safety margin).
    let mut missed = event_at(
        "payment_intent.succeeded",
        payment_intent("pi_missed_1", "succeeded", 900),
        started + 60,
    );
    missed["id"] = json!(unique("evt_missed_"));
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .and(query_param(
            "created[gte]",
            (started - 15 * 60).to_string().as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [missed], "has_more": false, "url": "/v1/events"}),
        ))
        .expect(1)
        .mount(&stripe)
        .await;

    let (s, b) = app.deliver(&company, &secret, &notice).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.drain().await;
    assert_eq!(event_status(&app, &company, &id).await, json!("processed"));
    // The reconciliation asked for the window's end too.
    let asked: Vec<_> = stripe
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/events")
        .collect();
    assert_eq!(asked.len(), 1);
    let lte: Option<i64> = asked[0]
        .url
        .query_pairs()
        .find(|(k, _)| k == "created[lte]")
        .and_then(|(_, v)| v.parse().ok());
    assert!(
        lte.is_some_and(|t| t >= resolved && t <= now_secs()),
        "{lte:?}"
    );
    // What it recovered is in the inbox and processed.
    let missed_id = missed["id"].as_str().unwrap();
    let (s, ev) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/events/{missed_id}?mode=test"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{ev}");
    assert_eq!(
        (&ev["origin"], &ev["status"]),
        (&json!("recovered"), &json!("processed"))
    );
    let (s, pi) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/payment-intents/pi_missed_1?mode=test"
        ))
        .await;
    assert_eq!(
        (s, &pi["status"]),
        (StatusCode::OK, &json!("succeeded")),
        "{pi}"
    );
    stripe.verify().await;
}

async fn a_connect_thin_event_is_fetched_for_the_linked_company(backend: Backend) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let platform = unique("thinplatform");
    let (s, b) = app
        .admin_post(
            "/admin/v1/companies",
            json!({"company_id": platform, "name": "Platform", "is_connect_platform": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let secret = new_secret();
    app.create_profile(&platform, "test", &secret).await;
    let shop = unique("thinshop");
    let (s, b) = app
        .admin_post(
            "/admin/v1/companies",
            json!({"company_id": shop, "name": "Shop", "connect_platform": platform}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let key = format!("sk_test_51ShopKey{}", unique("k"));
    let mut body = profile_json("test", &new_secret());
    body["secret_key"] = json!(key);
    body["account_id"] = json!("acct_1ThinShop0000000");
    let (s, b) = app
        .admin_post(&format!("/admin/v1/companies/{shop}/profiles"), body)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let mut notice = thin_event(
        "v1.payment_intent.succeeded",
        Some((
            "pi_thin_c",
            "payment_intent",
            "/v1/payment_intents/pi_thin_c",
        )),
    );
    notice["context"] = json!("acct_1ThinShop0000000");
    let id = notice["id"].as_str().unwrap().to_owned();
    // Fetched with the linked company's key: it is the linked company's event.
    Mock::given(method("GET"))
        .and(path(format!("/v2/core/events/{id}")))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fetched(&notice, json!({}))))
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_thin_c"))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent(
            "pi_thin_c",
            "succeeded",
            800,
        )))
        .expect(1)
        .mount(&stripe)
        .await;
    let (s, b) = app.deliver(&platform, &secret, &notice).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (
            app.inbox_count(&shop).await,
            app.inbox_count(&platform).await
        ),
        (1, 0)
    );
    app.drain().await;
    assert_eq!(event_status(&app, &shop, &id).await, json!("processed"));
    let (s, pi) = app
        .admin_get(&format!(
            "/admin/v1/companies/{shop}/payment-intents/pi_thin_c?mode=test"
        ))
        .await;
    assert_eq!(
        (s, &pi["status"]),
        (StatusCode::OK, &json!("succeeded")),
        "{pi}"
    );
    stripe.verify().await;
}

db_tests!(
    a_thin_event_is_fetched_and_applied,
    a_connect_thin_event_is_fetched_for_the_linked_company,
    a_ping_is_answered_and_recorded,
    a_resolved_generation_failure_reconciles_its_window,
);
