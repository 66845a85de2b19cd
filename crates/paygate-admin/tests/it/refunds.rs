//! `POST /api/v1/orders/{id}/refunds` through the real API, with a fake Stripe (wiremock) that
//! answers the same refund for the same idempotency key, as Stripe does: a partial refund and
//! then the rest; the same `Idempotency-Key` answers the same refund without asking Stripe
//! again, and concurrent duplicates carry one key to Stripe and make one refund; bad input is a
//! clear 4xx that asks Stripe nothing; another company's order, and an order of the other mode,
//! are not found. The operators' view of a refund, and the company's auto-refund setting.

use paygate_db::entities::order;
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret, now_secs, unique};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

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

/// A fake Stripe whose refund's id follows the idempotency key (the same key, the same refund)
/// and whose amount is the one asked, or 1500 (what the tests leave) when none is.
async fn fake_stripe() -> MockServer {
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(|req: &Request| {
            let body = String::from_utf8_lossy(&req.body).to_string();
            let get = |k: &str| {
                body.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(f, _)| *f == k)
                    .map(|(_, v)| v.to_owned())
            };
            let key = req
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            let id = format!(
                "re_{:x}",
                key.bytes()
                    .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            );
            ResponseTemplate::new(200).set_body_json(json!({
                "id": id, "object": "refund", "status": "succeeded",
                "amount": get("amount").and_then(|a| a.parse::<i64>().ok()).unwrap_or(1500),
                "currency": "eur", "created": now_secs(),
                "charge": "ch_of_order", "payment_intent": get("payment_intent"),
                "reason": get("reason"), "failure_reason": null, "metadata": {},
            }))
        })
        .mount(&stripe)
        .await;
    stripe
}

/// A paid order (2500 EUR cents) of `company` in `livemode`.
async fn paid_order(app: &TestApp, company: &str, livemode: bool, status: &str) -> String {
    let pk = app.app.tenants.company(company).await.unwrap().id;
    let id = unique("ord_");
    let now = paygate_db::now_ms();
    order::ActiveModel {
        id: Set(id.clone()),
        company_pk: Set(pk),
        livemode: Set(livemode),
        kind: Set("checkout".into()),
        status: Set(status.into()),
        payment_intent_id: Set(Some(unique("pi_"))),
        amount: Set(Some(2500)),
        currency: Set(Some("eur".into())),
        metadata: Set("{}".into()),
        disputed: Set(false),
        status_created: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.app.db)
    .await
    .unwrap();
    id
}

async fn refund(
    app: &TestApp,
    key: &str,
    order: &str,
    idem: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut r = app
        .client
        .post(app.url(&format!("/api/v1/orders/{order}/refunds")))
        .bearer_auth(key)
        .json(&body);
    if let Some(k) = idem {
        r = r.header("Idempotency-Key", k);
    }
    app.send(r).await
}

async fn get_order(app: &TestApp, key: &str, order: &str) -> Value {
    let (s, b) = app
        .send(
            app.client
                .get(app.url(&format!("/api/v1/orders/{order}")))
                .bearer_auth(key),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// The refund requests Stripe received, with their idempotency keys.
async fn stripe_keys(stripe: &MockServer) -> Vec<String> {
    stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/refunds")
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn start(backend: Backend) -> (TestApp, MockServer, String) {
    let stripe = fake_stripe().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&new_secret()).await;
    (app, stripe, company)
}

async fn a_partial_refund_then_the_rest_and_the_same_key_answers_the_same_refund(backend: Backend) {
    let (app, stripe, company) = start(backend).await;
    let key = api_key(&app, &company, "test").await;
    let order = paid_order(&app, &company, false, "fulfilled").await;

    let (s, first) = refund(
        &app,
        &key,
        &order,
        Some("refund-1"),
        json!({"amount": 1000, "reason": "requested_by_customer"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["amount"], json!(1000));
    assert_eq!(first["status"], json!("succeeded"));
    assert_eq!(first["order_id"], json!(order));
    assert_eq!(first["reason"], json!("requested_by_customer"));

    // The same key: the same refund, Stripe not asked again (answered by the refund's own
    // key, 200, or by the generic idempotency layer's replay of the first answer).
    let (s, again) = refund(
        &app,
        &key,
        &order,
        Some("refund-1"),
        json!({"amount": 1000, "reason": "requested_by_customer"}),
    )
    .await;
    assert!(s == StatusCode::OK || s == StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(stripe_keys(&stripe).await.len(), 1);
    // The same key for another amount is refused.
    let (s, b) = refund(&app, &key, &order, Some("refund-1"), json!({"amount": 5})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], json!("idempotency_key_reused"));

    let o = get_order(&app, &key, &order).await;
    assert_eq!(o["status"], json!("partially_refunded"), "{o}");
    assert_eq!(o["amount_refunded"], json!(1000), "{o}");
    assert_eq!(o["refunds"].as_array().unwrap().len(), 1, "{o}");

    // Bad input: a clear 4xx, Stripe not asked.
    for (body, status, code) in [
        (
            json!({"amount": 5000}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"amount": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"amount": -10}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"reason": "changed_my_mind"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"amount": "ten"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            json!({"amount": 10, "extra": true}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ] {
        let (s, b) = refund(&app, &key, &order, None, body.clone()).await;
        assert_eq!(s, status, "{body}: {b}");
        assert_eq!(b["error"]["code"], json!(code), "{body}: {b}");
    }
    assert_eq!(
        stripe_keys(&stripe).await.len(),
        1,
        "bad input asks Stripe nothing"
    );

    // The rest (no amount), then nothing is left.
    let (s, rest) = refund(&app, &key, &order, Some("refund-2"), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{rest}");
    assert_eq!(rest["amount"], json!(1500));
    assert_ne!(rest["id"], first["id"]);
    let o = get_order(&app, &key, &order).await;
    assert_eq!(o["status"], json!("refunded"), "{o}");
    assert_eq!(o["amount_refunded"], json!(2500), "{o}");
    let (s, b) = refund(&app, &key, &order, Some("refund-3"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], json!("order_not_refundable"));
    // The operators see the refund too.
    let (s, r) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/refunds/{}",
            rest["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["amount"], json!(1500));

    // Concurrent duplicates: one key reaches Stripe, one refund is recorded.
    let other = paid_order(&app, &company, false, "paid").await;
    let before = stripe_keys(&stripe).await.len();
    let body = json!({"amount": 700});
    let (a, b, c) = tokio::join!(
        refund(&app, &key, &other, Some("dup"), body.clone()),
        refund(&app, &key, &other, Some("dup"), body.clone()),
        refund(&app, &key, &other, Some("dup"), body.clone()),
    );
    // Each is the refund, or (the generic layer) told the key is in use.
    let made: Vec<&Value> = [&a, &b, &c]
        .into_iter()
        .filter(|(s, r)| {
            assert!(
                *s == StatusCode::CREATED
                    || *s == StatusCode::OK
                    || (*s == StatusCode::CONFLICT
                        && r["error"]["code"] == json!("idempotency_key_in_use")),
                "{s}: {r}"
            );
            s.is_success()
        })
        .map(|(_, r)| r)
        .collect();
    assert!(!made.is_empty());
    assert!(made.iter().all(|r| r["id"] == made[0]["id"]), "{made:?}");
    let keys = stripe_keys(&stripe).await;
    let sent: std::collections::HashSet<&String> = keys[before..].iter().collect();
    assert_eq!(
        sent.len(),
        1,
        "one idempotency key for the duplicates: {sent:?}"
    );
    let o = get_order(&app, &key, &other).await;
    assert_eq!(o["refunds"].as_array().unwrap().len(), 1, "{o}");
    assert_eq!(o["amount_refunded"], json!(700), "{o}");
}

async fn only_the_keys_company_and_mode_can_refund(backend: Backend) {
    let (app, stripe, a) = start(backend).await;
    let b = app.company_with_secret(&new_secret()).await;
    let key_a = api_key(&app, &a, "test").await;
    let order_b = paid_order(&app, &b, false, "paid").await;
    let live_a = paid_order(&app, &a, true, "paid").await;
    let unpaid_a = paid_order(&app, &a, false, "open").await;

    let (s, r) = refund(&app, &key_a, &order_b, None, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{r}");
    assert_eq!(r["error"]["code"], json!("order_not_found"));
    // A test key never refunds a live order.
    let (s, r) = refund(&app, &key_a, &live_a, None, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{r}");
    // Nothing paid, nothing to refund.
    let (s, r) = refund(&app, &key_a, &unpaid_a, None, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{r}");
    assert_eq!(r["error"]["code"], json!("order_not_refundable"));
    // No key.
    let (s, _) = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/orders/{order_b}/refunds")))
                .json(&json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        stripe_keys(&stripe).await.is_empty(),
        "Stripe was never asked"
    );
    // The live order is untouched.
    let (s, o) = app
        .admin_get(&format!(
            "/admin/v1/companies/{a}/orders/{live_a}?mode=live"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["amount_refunded"], json!(0));
    assert_eq!(o["status"], json!("paid"));
}

async fn the_auto_refund_setting_is_off_by_default_and_changed_by_operators(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = app.company_with_secret(&new_secret()).await;
    let (s, b) = app.admin_get(&format!("/admin/v1/companies/{c}")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["auto_refund_fraud_warnings"], json!(false));
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{c}"),
            json!({"auto_refund_fraud_warnings": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["auto_refund_fraud_warnings"], json!(true));
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{c}"),
            json!({"auto_refund_fraud_warnings": "yes"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (_, b) = app.admin_get(&format!("/admin/v1/companies/{c}")).await;
    assert_eq!(b["auto_refund_fraud_warnings"], json!(true));
}

db_tests!(
    a_partial_refund_then_the_rest_and_the_same_key_answers_the_same_refund,
    only_the_keys_company_and_mode_can_refund,
    the_auto_refund_setting_is_off_by_default_and_changed_by_operators,
);
