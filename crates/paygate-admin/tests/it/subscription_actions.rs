//! The merchant's actions on subscriptions (issue 19): cancel now / at period end, resume, the
//! customer portal, and `subscription`-mode Checkout Sessions, through the real app with a fake
//! Stripe (wiremock on loopback) on both databases.
//!
//! The local rows (the read model the actions start from) are seeded by delivering
//! `customer.created` / `customer.subscription.created` events through the real intake.

use paygate_db::entities::{customer, subscription};
use paygate_db::{Mode, Scope};
use paygate_testkit::billing_objects::{self, Shape};
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret, now_secs};
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn start_with_stripe(backend: Backend) -> (TestApp, MockServer) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    (TestApp::start(opts).await, stripe)
}

async fn company_pk(app: &TestApp, company: &str) -> i64 {
    app.app.tenants.company(company).await.unwrap().id
}

/// A merchant API key of `company` in `mode`.
async fn key(app: &TestApp, company: &str, mode: Mode) -> String {
    let scope = Scope::new(company_pk(app, company).await, mode);
    paygate_tenant::api_keys::create_key(&app.app.db, "test", scope, "backend")
        .await
        .unwrap()
        .1
}

async fn call(
    app: &TestApp,
    key: &str,
    m: Method,
    p: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app.client.request(m, app.url(p)).bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    app.send(r).await
}

async fn post(app: &TestApp, key: &str, p: &str, body: Option<Value>) -> (StatusCode, Value) {
    call(app, key, Method::POST, p, body).await
}

/// A company with a test profile signing with `secret`.
struct Co {
    id: String,
    secret: String,
}

async fn company(app: &TestApp) -> Co {
    let secret = new_secret();
    let id = app.company_with_secret(&secret).await;
    Co { id, secret }
}

/// Delivers `ev` (in the mode of `livemode`) through the real intake and runs the workers.
async fn deliver(app: &TestApp, co: &Co, secret: &str, mut ev: Value, livemode: bool) {
    ev["livemode"] = json!(livemode);
    ev["data"]["object"]["livemode"] = json!(livemode);
    let (s, b) = app.deliver(&co.id, secret, &ev).await;
    assert!(s.is_success(), "{s}: {b}");
    app.drain().await;
}

/// Seeds the subscription `id` of `co` (mode of `livemode`) through a
/// `customer.subscription.created` event created at `created`.
#[expect(clippy::too_many_arguments, reason = "a test seed names every part")]
async fn seed_subscription(
    app: &TestApp,
    co: &Co,
    secret: &str,
    livemode: bool,
    id: &str,
    status: &str,
    cancel_at_period_end: bool,
    created: i64,
) {
    let mut obj =
        billing_objects::subscription(id, "cus_1", status, 1, 1_699_400_000, Shape::Basil);
    obj["cancel_at_period_end"] = json!(cancel_at_period_end);
    let mut ev = event("customer.subscription.created", obj);
    ev["created"] = json!(created);
    deliver(app, co, secret, ev, livemode).await;
    let r = row(app, &co.id, livemode, id).await;
    assert_eq!((r.status.as_str(), r.last_event_created), (status, created));
}

/// Seeds the customer `id` of `co` through `customer.created` (and `customer.deleted`).
async fn seed_customer(
    app: &TestApp,
    co: &Co,
    secret: &str,
    livemode: bool,
    id: &str,
    deleted: bool,
) {
    let obj = billing_objects::customer(id, "ada@example.com", &["it"]);
    deliver(
        app,
        co,
        secret,
        event("customer.created", obj.clone()),
        livemode,
    )
    .await;
    if deleted {
        let mut ev = event(
            "customer.deleted",
            json!({"id": id, "object": "customer", "deleted": true}),
        );
        ev["created"] = json!(now_secs() + 1);
        deliver(app, co, secret, ev, livemode).await;
    }
    let scope = Scope::of_livemode(company_pk(app, &co.id).await, livemode);
    let c = scope
        .customers()
        .filter(customer::Column::StripeCustomerId.eq(id))
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.deleted, deleted);
}

async fn row(app: &TestApp, company: &str, livemode: bool, id: &str) -> subscription::Model {
    let scope = Scope::of_livemode(company_pk(app, company).await, livemode);
    scope
        .subscriptions()
        .filter(subscription::Column::StripeSubscriptionId.eq(id))
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap()
}

/// Stripe's answer: the subscription `id` in `status`.
fn stripe_subscription(
    id: &str,
    status: &str,
    cancel_at_period_end: bool,
    livemode: bool,
) -> Value {
    json!({
        "id": id, "object": "subscription", "status": status, "customer": "cus_1",
        "cancel_at_period_end": cancel_at_period_end,
        "cancel_at": if cancel_at_period_end { json!(1_702_000_000) } else { Value::Null },
        "canceled_at": if status == "canceled" { json!(now_secs()) } else { Value::Null },
        "ended_at": if status == "canceled" { json!(now_secs()) } else { Value::Null },
        "pause_collection": null, "latest_invoice": "in_2", "livemode": livemode,
        "created": 1_699_000_000,
        "items": {"object": "list", "has_more": false, "data": [{
            "id": "si_1", "object": "subscription_item", "quantity": 1,
            "current_period_start": 1_699_400_000, "current_period_end": 1_702_000_000,
            "price": {"id": "price_m", "object": "price", "product": "prod_1"}
        }]}
    })
}

/// Answers `m p` with `body`, once per call of this function (wiremock picks the newest).
async fn answer(stripe: &MockServer, m: &str, p: &str, body: Value) {
    Mock::given(method(m))
        .and(path(p))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .up_to_n_times(1)
        .mount(stripe)
        .await;
}

async fn requests(stripe: &MockServer) -> Vec<Request> {
    stripe.received_requests().await.unwrap()
}

fn form(r: &Request) -> Vec<(String, String)> {
    let body = std::str::from_utf8(&r.body).unwrap();
    reqwest::Url::parse(&format!("http://form.invalid/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn header(r: &Request, name: &str) -> String {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn cancel_and_resume_reach_stripe_and_update_the_row(backend: Backend) {
    let (app, stripe) = start_with_stripe(backend).await;
    let co = company(&app).await;
    let company = co.id.clone();
    let k = key(&app, &company, Mode::Test).await;
    seed_subscription(
        &app,
        &co,
        &co.secret,
        false,
        "sub_1",
        "active",
        false,
        1_699_000_000,
    )
    .await;
    let base = "/api/v1/subscriptions/sub_1";

    // Cancel at period end: POST with cancel_at_period_end=true.
    answer(
        &stripe,
        "POST",
        "/v1/subscriptions/sub_1",
        stripe_subscription("sub_1", "active", true, false),
    )
    .await;
    let (s, out) = post(
        &app,
        &k,
        &format!("{base}/cancel"),
        Some(json!({"at_period_end": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["id"], "sub_1");
    assert_eq!(out["cancel_at_period_end"], true);
    assert_eq!(out["cancel_at"], paygate_web::rfc3339_s(1_702_000_000));
    let r = row(&app, &company, false, "sub_1").await;
    assert!(r.cancel_at_period_end);
    assert_eq!(r.latest_invoice_id.as_deref(), Some("in_2"));
    assert!(r.last_event_created >= now_secs() - 5, "stored as of now");

    // Resume a cancellation at period end: POST with cancel_at_period_end=false.
    answer(
        &stripe,
        "POST",
        "/v1/subscriptions/sub_1",
        stripe_subscription("sub_1", "active", false, false),
    )
    .await;
    let (s, out) = post(&app, &k, &format!("{base}/resume"), None).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["cancel_at_period_end"], false);
    assert!(
        !row(&app, &company, false, "sub_1")
            .await
            .cancel_at_period_end
    );

    // Cancel now (no body): DELETE.
    answer(
        &stripe,
        "DELETE",
        "/v1/subscriptions/sub_1",
        stripe_subscription("sub_1", "canceled", false, false),
    )
    .await;
    let (s, out) = post(&app, &k, &format!("{base}/cancel"), None).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "canceled");
    let r = row(&app, &company, false, "sub_1").await;
    assert_eq!(r.status, "canceled");
    assert!(r.ended_at.is_some());

    let reqs = requests(&stripe).await;
    let seen: Vec<(String, String)> = reqs
        .iter()
        .map(|r| (r.method.to_string(), r.url.path().to_owned()))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST".to_owned(), "/v1/subscriptions/sub_1".to_owned()),
            ("POST".to_owned(), "/v1/subscriptions/sub_1".to_owned()),
            ("DELETE".to_owned(), "/v1/subscriptions/sub_1".to_owned()),
        ]
    );
    assert_eq!(form(&reqs[0]), pairs(&[("cancel_at_period_end", "true")]));
    assert_eq!(form(&reqs[1]), pairs(&[("cancel_at_period_end", "false")]));
    assert!(reqs[2].body.is_empty());
    let keys: Vec<String> = reqs.iter().map(|r| header(r, "idempotency-key")).collect();
    assert!(
        keys.iter().all(|k| k.starts_with("paygate_sub_")),
        "{keys:?}"
    );
    assert!(
        keys[0] != keys[1] && keys[1] != keys[2],
        "one key per action: {keys:?}"
    );
    assert!(header(&reqs[0], "authorization").starts_with("Bearer sk_test_"));

    // An ended subscription takes no action, and Stripe hears nothing more.
    for (p, body) in [
        ("resume", None),
        ("cancel", Some(json!({"at_period_end": true}))),
    ] {
        let (s, e) = post(&app, &k, &format!("{base}/{p}"), body).await;
        assert_eq!(
            (s, e["error"]["code"].clone()),
            (StatusCode::CONFLICT, json!("subscription_ended")),
            "{p}"
        );
    }
    assert_eq!(requests(&stripe).await.len(), 3);

    // Bad bodies: 400 naming the problem, nothing sent.
    seed_subscription(
        &app,
        &co,
        &co.secret,
        false,
        "sub_2",
        "active",
        false,
        1_699_000_000,
    )
    .await;
    let (s, e) = post(
        &app,
        &k,
        "/api/v1/subscriptions/sub_2/cancel",
        Some(json!({"at_period_end": "yes"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_json"))
    );
    let (s, e) = post(
        &app,
        &k,
        "/api/v1/subscriptions/sub_2/cancel",
        Some(json!({"when": "now"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("when"),
        "{e}"
    );
    assert_eq!(requests(&stripe).await.len(), 3);
    assert_eq!(row(&app, &company, false, "sub_2").await.status, "active");
}

async fn a_paused_subscription_resumes_and_an_active_one_cannot(backend: Backend) {
    let (app, stripe) = start_with_stripe(backend).await;
    let co = company(&app).await;
    let company = co.id.clone();
    let k = key(&app, &company, Mode::Test).await;
    seed_subscription(
        &app,
        &co,
        &co.secret,
        false,
        "sub_p",
        "paused",
        false,
        1_699_000_000,
    )
    .await;
    seed_subscription(
        &app,
        &co,
        &co.secret,
        false,
        "sub_a",
        "active",
        false,
        1_699_000_000,
    )
    .await;

    let (s, e) = post(&app, &k, "/api/v1/subscriptions/sub_a/resume", None).await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("subscription_not_resumable"))
    );
    assert!(requests(&stripe).await.is_empty());

    answer(
        &stripe,
        "POST",
        "/v1/subscriptions/sub_p/resume",
        stripe_subscription("sub_p", "active", false, false),
    )
    .await;
    let (s, out) = post(
        &app,
        &k,
        "/api/v1/subscriptions/sub_p/resume",
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "active");
    let reqs = requests(&stripe).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method.as_str(), "POST");
    assert_eq!(reqs[0].url.path(), "/v1/subscriptions/sub_p/resume");
    assert!(!header(&reqs[0], "idempotency-key").is_empty());
    assert_eq!(row(&app, &company, false, "sub_p").await.status, "active");

    // Stripe refusing is a 502 with Stripe's reason, and the row stays as it was.
    Mock::given(method("DELETE"))
        .and(path("/v1/subscriptions/sub_a"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error", "message": "No such subscription: 'sub_a'"
        }})))
        .mount(&stripe)
        .await;
    let (s, e) = post(&app, &k, "/api/v1/subscriptions/sub_a/cancel", None).await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::BAD_GATEWAY, json!("stripe_error"))
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No such subscription"),
        "{e}"
    );
    assert!(!e.to_string().contains("sk_test_"), "no key in the answer");
    assert_eq!(row(&app, &company, false, "sub_a").await.status, "active");
}

async fn an_answer_never_rolls_back_a_newer_event(backend: Backend) {
    let (app, stripe) = start_with_stripe(backend).await;
    let co = company(&app).await;
    let company = co.id.clone();
    let k = key(&app, &company, Mode::Test).await;
    // A newer event (created in the future, as far as this answer knows) already moved it on.
    let newer = now_secs() + 3600;
    seed_subscription(
        &app, &co, &co.secret, false, "sub_n", "past_due", false, newer,
    )
    .await;
    answer(
        &stripe,
        "POST",
        "/v1/subscriptions/sub_n",
        stripe_subscription("sub_n", "active", true, false),
    )
    .await;
    let (s, out) = post(
        &app,
        &k,
        "/api/v1/subscriptions/sub_n/cancel",
        Some(json!({"at_period_end": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let r = row(&app, &company, false, "sub_n").await;
    assert_eq!(
        (
            r.status.as_str(),
            r.cancel_at_period_end,
            r.last_event_created
        ),
        ("past_due", false, newer)
    );
    assert_eq!(out["status"], "past_due", "the answer is the local state");
}

async fn other_companies_and_the_other_mode_are_not_found(backend: Backend) {
    let (app, stripe) = start_with_stripe(backend).await;
    let (co_a, co_b) = (company(&app).await, company(&app).await);
    let (a, b) = (co_a.id.clone(), co_b.id.clone());
    let live_secret = new_secret();
    app.create_profile(&a, "live", &live_secret).await;
    let (test_a, live_a) = (
        key(&app, &a, Mode::Test).await,
        key(&app, &a, Mode::Live).await,
    );
    seed_subscription(
        &app,
        &co_b,
        &co_b.secret,
        false,
        "sub_b",
        "active",
        false,
        1_699_000_000,
    )
    .await;
    seed_customer(&app, &co_b, &co_b.secret, false, "cus_b", false).await;
    seed_subscription(
        &app,
        &co_a,
        &live_secret,
        true,
        "sub_live",
        "active",
        false,
        1_699_000_000,
    )
    .await;
    seed_customer(&app, &co_a, &live_secret, true, "cus_live", false).await;

    for (k, p, body) in [
        (&test_a, "/api/v1/subscriptions/sub_b/cancel", None),
        (
            &test_a,
            "/api/v1/subscriptions/sub_b/cancel",
            Some(json!({"at_period_end": true})),
        ),
        (&test_a, "/api/v1/subscriptions/sub_b/resume", None),
        (&test_a, "/api/v1/subscriptions/sub_live/cancel", None),
        (&test_a, "/api/v1/subscriptions/sub_live/resume", None),
        (&live_a, "/api/v1/subscriptions/sub_b/cancel", None),
    ] {
        let (s, e) = post(&app, k, p, body).await;
        assert_eq!(
            (s, e["error"]["code"].clone()),
            (StatusCode::NOT_FOUND, json!("subscription_not_found")),
            "{p}"
        );
    }
    for (k, p) in [
        (&test_a, "/api/v1/customers/cus_b/portal-sessions"),
        (&test_a, "/api/v1/customers/cus_live/portal-sessions"),
    ] {
        let (s, e) = post(
            &app,
            k,
            p,
            Some(json!({"return_url": "https://shop.example/"})),
        )
        .await;
        assert_eq!(
            (s, e["error"]["code"].clone()),
            (StatusCode::NOT_FOUND, json!("customer_not_found")),
            "{p}"
        );
    }
    assert!(requests(&stripe).await.is_empty(), "Stripe heard nothing");
    assert_eq!(row(&app, &b, false, "sub_b").await.status, "active");

    // The live key reaches the live subscription, with the live profile's secret key.
    answer(
        &stripe,
        "DELETE",
        "/v1/subscriptions/sub_live",
        stripe_subscription("sub_live", "canceled", false, true),
    )
    .await;
    let (s, out) = post(&app, &live_a, "/api/v1/subscriptions/sub_live/cancel", None).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["livemode"], true);
    let reqs = requests(&stripe).await;
    assert!(header(&reqs[0], "authorization").starts_with("Bearer sk_live_"));
    assert_eq!(row(&app, &a, true, "sub_live").await.status, "canceled");

    // No key, no action.
    let (s, _) = app
        .send(
            app.client
                .post(app.url("/api/v1/subscriptions/sub_b/cancel")),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn portal_sessions_return_stripes_url(backend: Backend) {
    let (app, stripe) = start_with_stripe(backend).await;
    let co = company(&app).await;
    let company = co.id.clone();
    let k = key(&app, &company, Mode::Test).await;
    seed_customer(&app, &co, &co.secret, false, "cus_1", false).await;
    seed_customer(&app, &co, &co.secret, false, "cus_gone", true).await;
    answer(&stripe, "POST", "/v1/billing_portal/sessions", json!({
        "id": "bps_1", "object": "billing_portal.session", "customer": "cus_1", "livemode": false,
        "return_url": "https://shop.example/account", "url": "https://billing.stripe.com/p/session/test_xyz"
    }))
    .await;
    let p = "/api/v1/customers/cus_1/portal-sessions";
    let (s, out) = post(
        &app,
        &k,
        p,
        Some(json!({"return_url": "https://shop.example/account"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{out}");
    assert_eq!(
        out,
        json!({"url": "https://billing.stripe.com/p/session/test_xyz"})
    );
    let reqs = requests(&stripe).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].url.path(), "/v1/billing_portal/sessions");
    assert_eq!(
        form(&reqs[0]),
        pairs(&[
            ("customer", "cus_1"),
            ("return_url", "https://shop.example/account")
        ])
    );
    assert!(header(&reqs[0], "idempotency-key").starts_with("paygate_portal_"));

    for (body, why) in [
        (json!({}), "is required"),
        (json!({"return_url": "javascript:alert(1)"}), "http(s) URL"),
    ] {
        let (s, e) = post(&app, &k, p, Some(body)).await;
        assert_eq!(
            (s, e["error"]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("return_url"))
        );
        assert!(e["error"]["message"].as_str().unwrap().contains(why), "{e}");
    }
    let (s, e) = post(
        &app,
        &k,
        "/api/v1/customers/cus_gone/portal-sessions",
        Some(json!({"return_url": "https://shop.example/"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("customer_deleted"))
    );
    assert_eq!(requests(&stripe).await.len(), 1, "nothing more was sent");
}

async fn subscription_mode_checkout_sends_recurring_prices(backend: Backend) {
    let (app, stripe) = start_with_stripe(backend).await;
    let co = company(&app).await;
    let company = co.id.clone();
    app.admin_patch(
        &format!("/admin/v1/companies/{company}"),
        json!({"stripe_enabled": true}),
    )
    .await;
    let k = key(&app, &company, Mode::Test).await;
    let p = "/api/v1/checkout-sessions";

    // Every problem is named at once, and Stripe hears nothing.
    let (s, e) = post(&app, &k, p, Some(json!({
        "mode": "subscription",
        "line_items": [
            {"price_data": {"currency": "eur", "unit_amount": 900, "product_data": {"name": "Ad hoc"}}},
            {"quantity": 0},
            {"price": "price_ok", "quantity": 2}
        ],
        "return_url": "shop.example/back"
    })))
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("validation_failed")),
        "{e}"
    );
    let message = e["error"]["message"].as_str().unwrap();
    for problem in [
        "line_items[0].price_data",
        "line_items[1].price: is required",
        "line_items[1].quantity",
        "return_url",
    ] {
        assert!(message.contains(problem), "{problem} in {message}");
    }
    assert_eq!(e["error"]["field"], "line_items[0].price_data");
    let (s, e) = post(
        &app,
        &k,
        p,
        Some(json!({"mode": "subscription", "line_items": []})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("line_items"))
    );
    // An `amount`-style item is not a line item at all.
    let (s, e) = post(
        &app,
        &k,
        p,
        Some(json!({"mode": "subscription", "line_items": [{"amount": 900, "quantity": 1}]})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_json"))
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("amount"),
        "{e}"
    );
    assert!(requests(&stripe).await.is_empty());

    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_sub", "object": "checkout.session", "mode": "subscription",
            "url": "https://checkout.stripe.com/c/pay/cs_test_sub", "payment_status": "unpaid",
            "status": "open", "amount_total": 2700, "currency": "eur", "livemode": false
        })))
        .mount(&stripe)
        .await;
    let (s, out) = post(
        &app,
        &k,
        p,
        Some(json!({
            "mode": "subscription",
            "line_items": [{"price": "price_monthly", "quantity": 2}, {"price": "price_seat"}],
            "customer_email": "ada@example.com",
            "return_url": "https://shop.example/thanks"
        })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{out}");
    assert_eq!(out["url"], "https://checkout.stripe.com/c/pay/cs_test_sub");
    let order_id = out["order_id"].as_str().unwrap();
    let reqs = requests(&stripe).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(header(&reqs[0], "idempotency-key"), order_id);
    let sent = form(&reqs[0]);
    let get = |k: &str| sent.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("mode"), Some("subscription"));
    assert_eq!(get("line_items[0][price]"), Some("price_monthly"));
    assert_eq!(get("line_items[0][quantity]"), Some("2"));
    assert_eq!(get("line_items[1][price]"), Some("price_seat"));
    assert_eq!(get("line_items[1][quantity]"), Some("1"));
    assert_eq!(
        get("subscription_data[metadata][paygate_order_id]"),
        Some(order_id)
    );
    assert!(
        !sent.iter().any(|(n, _)| n.contains("price_data")),
        "{sent:?}"
    );
}

db_tests!(
    cancel_and_resume_reach_stripe_and_update_the_row,
    a_paused_subscription_resumes_and_an_active_one_cannot,
    an_answer_never_rolls_back_a_newer_event,
    other_companies_and_the_other_mode_are_not_found,
    portal_sessions_return_stripes_url,
    subscription_mode_checkout_sends_recurring_prices,
);
