//! `Idempotency-Key` on the merchant API's `POST`s (issue 18): replays, conflicts, requests in
//! flight, tenancy and mode, what is stored and for how long. Through real HTTP, with a fake
//! Stripe on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use paygate_db::entities::idempotency_key;
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret, openapi, unique};
use reqwest::StatusCode;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A fake `POST /v1/checkout/sessions`: a new session id each time, after `delay`.
struct NewSessions {
    n: AtomicUsize,
    delay: Duration,
}

impl Respond for NewSessions {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.n.fetch_add(1, Ordering::SeqCst);
        let id = format!("cs_test_idem_{n}");
        ResponseTemplate::new(200)
            .set_delay(self.delay)
            .set_body_json(json!({
                "id": id, "object": "checkout.session", "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                "payment_status": "unpaid", "status": "open", "amount_total": 1999, "currency": "eur", "livemode": false
            }))
    }
}

async fn mount_sessions(stripe: &MockServer, delay: Duration) {
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(NewSessions {
            n: AtomicUsize::new(0),
            delay,
        })
        .mount(stripe)
        .await;
}

async fn stripe_calls(stripe: &MockServer) -> usize {
    stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/checkout/sessions")
        .count()
}

async fn start(backend: Backend) -> (TestApp, MockServer) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    // Notification endpoints on loopback.
    opts.adjust = |s| s.outbound_allow_private = true;
    (TestApp::start(opts).await, stripe)
}

/// A company with a test profile and Stripe switched on.
async fn company(app: &TestApp) -> String {
    let c = app.company_with_secret(&new_secret()).await;
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{c}"),
            json!({"stripe_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    c
}

async fn api_key(app: &TestApp, company: &str, mode: &str) -> String {
    let (s, k) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/api-keys"),
            json!({"name": "shop backend", "mode": mode}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    k["key"].as_str().unwrap().to_owned()
}

/// An answer: status, whether it says it is replayed, body.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

/// `POST path` with the API key and, when given, an `Idempotency-Key`; the answer is checked
/// against the OpenAPI document as every API answer of the tests is.
async fn post(app: &TestApp, key: &str, idem: Option<&str>, p: &str, body: &Value) -> Answer {
    let mut r = app.client.post(app.url(p)).bearer_auth(key).json(body);
    if let Some(k) = idem {
        r = r.header("Idempotency-Key", k);
    }
    let res = r.send().await.unwrap();
    let status = res.status();
    let replayed = match res.headers().get("idempotent-replayed") {
        None => false,
        Some(v) => {
            assert_eq!(v, "true");
            true
        }
    };
    let body: Value = res.json().await.unwrap();
    if let Err(e) =
        openapi::check_answer(openapi::document(), "POST", p, status.as_u16(), Some(&body))
    {
        panic!("POST {p} answered {status} not as the OpenAPI document says: {e}\n{body}");
    }
    Answer {
        status,
        replayed,
        body,
    }
}

fn checkout_body(name: &str) -> Value {
    json!({"line_items": [{"price_data": {"currency": "eur", "unit_amount": 1999, "product_data": {"name": name}}}]})
}

async fn same_key_and_body_replay_the_answer_and_reach_stripe_once(backend: Backend) {
    let (app, stripe) = start(backend).await;
    mount_sessions(&stripe, Duration::ZERO).await;
    let c = company(&app).await;
    let key = api_key(&app, &c, "test").await;
    let body = checkout_body("Espresso");
    let first = post(
        &app,
        &key,
        Some("order-1"),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert!(!first.replayed, "the first answer is not a replay");
    let again = post(
        &app,
        &key,
        Some("order-1"),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert_eq!(
        again,
        Answer {
            replayed: true,
            ..first.clone()
        },
        "the same answer, status and body, marked replayed"
    );
    assert_eq!(stripe_calls(&stripe).await, 1, "one call reached Stripe");

    // The same key with another body, or on another path: 409, nothing runs.
    let other = post(
        &app,
        &key,
        Some("order-1"),
        "/api/v1/checkout-sessions",
        &checkout_body("Ristretto"),
    )
    .await;
    assert_eq!(
        (other.status, other.body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("idempotency_key_reused")),
        "{other:?}"
    );
    let elsewhere = post(
        &app,
        &key,
        Some("order-1"),
        "/api/v1/orders",
        &json!({"source": "src_idem", "amount": 1999, "currency": "eur"}),
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::CONFLICT, "{elsewhere:?}");
    assert_eq!(stripe_calls(&stripe).await, 1);

    // Without the header each request runs.
    for _ in 0..2 {
        let a = post(&app, &key, None, "/api/v1/checkout-sessions", &body).await;
        assert_eq!((a.status, a.replayed), (StatusCode::CREATED, false));
    }
    assert_eq!(stripe_calls(&stripe).await, 3);

    // Keys: 1 to 255 characters (longer → 400, nothing runs).
    let long = "k".repeat(256);
    let a = post(&app, &key, Some(&long), "/api/v1/checkout-sessions", &body).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_idempotency_key"))
    );
    let a = post(&app, &key, Some(""), "/api/v1/checkout-sessions", &body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(stripe_calls(&stripe).await, 3);
    let longest = "k".repeat(255);
    let a = post(
        &app,
        &key,
        Some(&longest),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let b = post(
        &app,
        &key,
        Some(&longest),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert!(b.replayed && b.body == a.body);
    assert_eq!(stripe_calls(&stripe).await, 4);

    // No valid API key: refused as without the header, nothing stored.
    let a = post(
        &app,
        "pgk_test_nope",
        Some("order-9"),
        "/api/v1/orders",
        &json!({}),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Every POST of the scope is covered, whatever its handler (notification endpoints here).
    let ep = json!({"url": "http://127.0.0.1:9/hooks/paygate"});
    let a = post(
        &app,
        &key,
        Some("ep-1"),
        "/api/v1/notification-endpoints",
        &ep,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let b = post(
        &app,
        &key,
        Some("ep-1"),
        "/api/v1/notification-endpoints",
        &ep,
    )
    .await;
    assert!(b.replayed && b.body == a.body, "{b:?}");
}

async fn concurrent_requests_with_one_key_reach_stripe_once(backend: Backend) {
    let (app, stripe) = start(backend).await;
    // Stripe is slow: the first request is still in flight when the second arrives.
    mount_sessions(&stripe, Duration::from_millis(400)).await;
    let c = company(&app).await;
    let key = api_key(&app, &c, "test").await;
    let body = checkout_body("Espresso");
    let (a, b) = tokio::join!(
        post(
            &app,
            &key,
            Some("cart-7"),
            "/api/v1/checkout-sessions",
            &body
        ),
        post(
            &app,
            &key,
            Some("cart-7"),
            "/api/v1/checkout-sessions",
            &body
        ),
    );
    assert_eq!(stripe_calls(&stripe).await, 1, "one reached Stripe");
    let (won, other) = if a.replayed || a.status != StatusCode::CREATED {
        (b, a)
    } else {
        (a, b)
    };
    assert_eq!((won.status, won.replayed), (StatusCode::CREATED, false));
    let in_use = other.status == StatusCode::CONFLICT
        && other.body["error"]["code"] == "idempotency_key_in_use";
    let replay = other.replayed && other.status == won.status && other.body == won.body;
    assert!(in_use || replay, "{other:?}");
    let later = post(
        &app,
        &key,
        Some("cart-7"),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert!(later.replayed && later.body == won.body, "{later:?}");
    assert_eq!(stripe_calls(&stripe).await, 1);
}

async fn keys_belong_to_one_company_and_one_mode(backend: Backend) {
    let (app, _stripe) = start(backend).await;
    let (a, b) = (company(&app).await, company(&app).await);
    let (key_a, key_b) = (
        api_key(&app, &a, "test").await,
        api_key(&app, &b, "test").await,
    );
    let order = json!({"source": "src_shared", "amount": 500, "currency": "eur"});
    let from_a = post(&app, &key_a, Some("same-key"), "/api/v1/orders", &order).await;
    let from_b = post(&app, &key_b, Some("same-key"), "/api/v1/orders", &order).await;
    assert_eq!(
        (from_a.status, from_b.status, from_b.replayed),
        (StatusCode::CREATED, StatusCode::CREATED, false),
        "{from_b:?}"
    );
    assert_ne!(
        from_a.body["id"], from_b.body["id"],
        "B never sees A's answer"
    );

    // A's live key: the same key and body run anew (a live order cannot be made while A
    // works in test, so its refusal is the live key's own answer, not the test order).
    let live_key = api_key(&app, &a, "live").await;
    let live = post(&app, &live_key, Some("same-key"), "/api/v1/orders", &order).await;
    assert_eq!(
        (
            live.status,
            live.replayed,
            live.body["error"]["code"].clone()
        ),
        (StatusCode::CONFLICT, false, json!("environment_mismatch")),
        "{live:?}"
    );
    // A route open to both modes: each mode's key gets its own answer.
    let ep = json!({"url": "http://127.0.0.1:9/hooks/modes"});
    let test_ep = post(
        &app,
        &key_a,
        Some("ep"),
        "/api/v1/notification-endpoints",
        &ep,
    )
    .await;
    let live_ep = post(
        &app,
        &live_key,
        Some("ep"),
        "/api/v1/notification-endpoints",
        &ep,
    )
    .await;
    assert_eq!(
        (test_ep.status, live_ep.status, live_ep.replayed),
        (StatusCode::CREATED, StatusCode::CREATED, false),
        "{live_ep:?}"
    );
    assert_ne!(test_ep.body["id"], live_ep.body["id"]);
    let live_again = post(
        &app,
        &live_key,
        Some("ep"),
        "/api/v1/notification-endpoints",
        &ep,
    )
    .await;
    assert_eq!(
        live_again,
        Answer {
            replayed: true,
            ..live_ep
        }
    );
    // The test key still finds its own answers, and only those.
    let test_again = post(&app, &key_a, Some("same-key"), "/api/v1/orders", &order).await;
    assert_eq!(
        test_again,
        Answer {
            replayed: true,
            ..from_a
        }
    );
    // Nothing of either is stored in plain text (a new endpoint's answer holds its secret).
    let secret = test_ep.body["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{}", test_ep.body);
    let stored = idempotency_key::Entity::find()
        .all(&app.app.db)
        .await
        .unwrap();
    assert!(stored.len() >= 4);
    for row in stored {
        let body = row.response_body.unwrap_or_default();
        assert!(!body.contains(secret) && !body.contains("ord_"), "{body}");
    }
}

async fn only_success_and_validation_answers_are_stored(backend: Backend) {
    let (app, stripe) = start(backend).await;
    // Stripe refuses the first session (Paygate answers 502), then works.
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"type": "invalid_request_error", "message": "try again"}
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&stripe)
        .await;
    mount_sessions(&stripe, Duration::ZERO).await;
    let c = company(&app).await;
    let key = api_key(&app, &c, "test").await;
    let body = checkout_body("Espresso");
    let failed = post(
        &app,
        &key,
        Some("retry-me"),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert_eq!(
        (failed.status, failed.body["error"]["code"].clone()),
        (StatusCode::BAD_GATEWAY, json!("stripe_error"))
    );
    let retried = post(
        &app,
        &key,
        Some("retry-me"),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert_eq!(
        (retried.status, retried.replayed),
        (StatusCode::CREATED, false),
        "a 5xx is not stored: the retry runs"
    );
    assert_eq!(stripe_calls(&stripe).await, 2);
    let third = post(
        &app,
        &key,
        Some("retry-me"),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert!(third.replayed && third.body == retried.body);

    // A validation answer is stored.
    let bad = json!({"line_items": []});
    let first = post(
        &app,
        &key,
        Some("bad-body"),
        "/api/v1/checkout-sessions",
        &bad,
    )
    .await;
    assert_eq!(first.status, StatusCode::UNPROCESSABLE_ENTITY, "{first:?}");
    let again = post(
        &app,
        &key,
        Some("bad-body"),
        "/api/v1/checkout-sessions",
        &bad,
    )
    .await;
    assert_eq!(
        again,
        Answer {
            replayed: true,
            ..first
        }
    );

    // A refusal that depends on the company's state (Stripe switched off) is not.
    app.admin_patch(
        &format!("/admin/v1/companies/{c}"),
        json!({"stripe_enabled": false}),
    )
    .await;
    let off = post(
        &app,
        &key,
        Some("switch"),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert_eq!(
        (off.status, off.body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("stripe_disabled"))
    );
    app.admin_patch(
        &format!("/admin/v1/companies/{c}"),
        json!({"stripe_enabled": true}),
    )
    .await;
    let on = post(
        &app,
        &key,
        Some("switch"),
        "/api/v1/checkout-sessions",
        &body,
    )
    .await;
    assert_eq!((on.status, on.replayed), (StatusCode::CREATED, false));
    assert_eq!(stripe_calls(&stripe).await, 3);
}

async fn keys_expire_after_24_hours(backend: Backend) {
    let (app, _stripe) = start(backend).await;
    let c = company(&app).await;
    let key = api_key(&app, &c, "test").await;
    let one = json!({"source": "src_day_1", "amount": 100, "currency": "eur"});
    let two = json!({"source": "src_day_2", "amount": 100, "currency": "eur"});
    assert_eq!(
        post(&app, &key, Some("daily"), "/api/v1/orders", &one)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&app, &key, Some("other"), "/api/v1/orders", &one)
            .await
            .status,
        StatusCode::CONFLICT,
        "source_in_use: not stored"
    );
    assert_eq!(
        post(&app, &key, Some("daily"), "/api/v1/orders", &two)
            .await
            .status,
        StatusCode::CONFLICT,
        "idempotency_key_reused within the day"
    );
    // A day and a second later (the test moves the keys' time back).
    let day = 24 * 3600 * 1000 + 1000;
    idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::CreatedAt,
            Expr::col(idempotency_key::Column::CreatedAt).sub(day),
        )
        .exec(&app.app.db)
        .await
        .unwrap();
    let rows = || async {
        idempotency_key::Entity::find()
            .filter(idempotency_key::Column::Key.is_in(["daily", "fresh"]))
            .count(&app.app.db)
            .await
            .unwrap()
    };
    assert_eq!(rows().await, 1);
    let fresh = json!({"source": unique("src_"), "amount": 100, "currency": "eur"});
    assert_eq!(
        post(&app, &key, Some("fresh"), "/api/v1/orders", &fresh)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(rows().await, 1, "the expired key was purged by the new one");
    let reused = post(&app, &key, Some("daily"), "/api/v1/orders", &two).await;
    assert_eq!(
        (reused.status, reused.replayed),
        (StatusCode::CREATED, false),
        "an expired key is free again"
    );
}

db_tests!(
    same_key_and_body_replay_the_answer_and_reach_stripe_once,
    concurrent_requests_with_one_key_reach_stripe_once,
    keys_belong_to_one_company_and_one_mode,
    only_success_and_validation_answers_are_stored,
    keys_expire_after_24_hours
);
