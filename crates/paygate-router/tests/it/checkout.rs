//! Checkout end to end: every `checkout.session.*` event through the real intake, read back
//! through the merchant and operator APIs; order-tolerance and repeats; fulfillment exactly
//! once across crashes (an expired claim, a half-created session); the shopper's landing page
//! for sessions created through the merchant API and for unknown ones; operators' lists.

use paygate_db::entities::{checkout_session, fulfillment, order};
use paygate_testkit::checkout_objects::FakeCheckout;
use paygate_testkit::objects::{checkout_session as session_object, event_at};
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret, now_secs};
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An app whose Stripe is a fake Checkout answering every session as `payment_status`, with
/// seven line items over pages of three; a company with a test profile.
async fn start(backend: Backend, payment_status: &str) -> (TestApp, MockServer, String, String) {
    start_with(backend, FakeCheckout::new(payment_status, 7, 3)).await
}

async fn start_with(backend: Backend, fake: FakeCheckout) -> (TestApp, MockServer, String, String) {
    let stripe = MockServer::start().await;
    fake.mount(&stripe).await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    (app, stripe, company, secret)
}

async fn deliver(app: &TestApp, company: &str, secret: &str, event: &Value) {
    let (s, b) = app.deliver(company, secret, event).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn api_key(app: &TestApp, company: &str) -> String {
    let (s, k) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/api-keys"),
            json!({"name": "shop backend"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    k["key"].as_str().unwrap().to_owned()
}

async fn merchant_get(app: &TestApp, key: &str, p: &str) -> (StatusCode, Value) {
    app.send(app.client.get(app.url(p)).bearer_auth(key)).await
}

async fn merchant_post(app: &TestApp, key: &str, p: &str, body: Value) -> (StatusCode, Value) {
    app.send(app.client.post(app.url(p)).bearer_auth(key).json(&body))
        .await
}

/// The order of a session as the merchant's servers see it.
async fn order_of(app: &TestApp, key: &str, session: &str) -> Value {
    let (s, found) = merchant_get(
        app,
        key,
        &format!("/api/v1/orders?checkout_session={session}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{found}");
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
    found["data"][0].clone()
}

/// The session as operators see it.
async fn session_of(app: &TestApp, company: &str, session: &str) -> Value {
    let (s, cs) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/checkout-sessions/{session}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{cs}");
    cs
}

async fn fulfillments(app: &TestApp, session: &str) -> u64 {
    fulfillment::Entity::find()
        .filter(fulfillment::Column::SessionId.eq(session))
        .count(&app.app.db)
        .await
        .unwrap()
}

fn stripe_session_fetches(reqs: &[wiremock::Request], session: &str) -> usize {
    reqs.iter()
        .filter(|r| r.method == wiremock::http::Method::GET)
        .filter(|r| r.url.path() == format!("/v1/checkout/sessions/{session}"))
        .count()
}

async fn landing(app: &TestApp, company: &str, session: &str, lang: &str) -> (StatusCode, String) {
    let r = app
        .client
        .get(app.url(&format!("/checkout/{company}/return?session_id={session}")))
        .header("Accept-Language", lang)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

/// Every row of the Checkout handler table, through the intake, read back through both APIs.
async fn every_checkout_event_is_recorded_and_read_back(backend: Backend) {
    let mut free = session_object("cs_test_free", "no_payment_required", 0);
    free["customer_details"] = json!(null);
    free["customer_email"] = json!("free@example.com");
    free["payment_intent"] = json!(null);
    let (app, stripe, company, secret) = start_with(
        backend,
        FakeCheckout::new("paid", 7, 3).with_session(free.clone()),
    )
    .await;
    let key = api_key(&app, &company).await;
    let t = now_secs() - 60;
    let mut paid = session_object("cs_test_paid", "paid", 7000);
    paid["metadata"] = json!({"cart": "42", "paygate_order_id": "ord_elsewhere"});
    for e in [
        event_at("checkout.session.completed", paid, t),
        event_at("checkout.session.completed", free, t),
        event_at(
            "checkout.session.completed",
            session_object("cs_test_sepa", "unpaid", 7000),
            t,
        ),
        event_at(
            "checkout.session.completed",
            session_object("cs_test_sepa_fail", "unpaid", 7000),
            t,
        ),
        event_at(
            "checkout.session.expired",
            json!({"id": "cs_test_expired", "object": "checkout.session", "status": "expired",
                   "payment_status": "unpaid", "amount_total": 1500, "currency": "eur",
                   "client_reference_id": null, "metadata": {}, "payment_intent": null}),
            t,
        ),
    ] {
        deliver(&app, &company, &secret, &e).await;
    }
    app.drain().await;

    // Paid: fulfilled by the worker, with all seven line items (three pages at Stripe).
    let o = order_of(&app, &key, "cs_test_paid").await;
    assert_eq!(o["status"], "fulfilled", "{o}");
    assert_eq!(o["kind"], "checkout");
    assert!(o["id"].as_str().unwrap().starts_with("ord_"));
    assert_eq!(o["amount"], 7000);
    assert_eq!(o["currency"], "eur");
    assert_eq!(o["customer_email"], "shopper@example.com");
    assert_eq!(o["client_reference_id"], "cart_42");
    assert_eq!(o["payment_intent"], "pi_for_cs_test_paid");
    assert_eq!(
        o["metadata"],
        json!({"cart": "42"}),
        "Paygate's own key is not the merchant's"
    );
    assert!(o["fulfilled_at"].is_string());
    assert_eq!(o["fulfillment"]["fulfilled_by"], "worker");
    assert_eq!(o["fulfillment"]["payment_status"], "paid");
    let items: Vec<&str> = o["line_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        items,
        ["li_1", "li_2", "li_3", "li_4", "li_5", "li_6", "li_7"]
    );
    let reqs = stripe.received_requests().await.unwrap();
    let pages: Vec<String> = reqs
        .iter()
        .filter(|r| r.url.path() == "/v1/checkout/sessions/cs_test_paid/line_items")
        .map(|r| r.url.query().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        pages.len(),
        2,
        "two more pages after the embedded one: {pages:?}"
    );
    assert!(pages[0].contains("starting_after=li_3") && pages[1].contains("starting_after=li_6"));
    let cs = session_of(&app, &company, "cs_test_paid").await;
    assert_eq!(cs["fulfillment_status"], "fulfilled");
    assert_eq!(cs["payment_status"], "paid");
    assert_eq!(cs["payment_intent"], "pi_for_cs_test_paid");
    assert_eq!(cs["order"]["id"], o["id"]);

    // No payment required: fulfilled too; the e-mail falls back to customer_email.
    let o = order_of(&app, &key, "cs_test_free").await;
    assert_eq!(o["status"], "fulfilled", "{o}");
    assert_eq!(o["customer_email"], "free@example.com");
    assert_eq!(o["fulfillment"]["payment_status"], "no_payment_required");

    // Unpaid (delayed method): awaits payment, nothing fetched from Stripe.
    let o = order_of(&app, &key, "cs_test_sepa").await;
    assert_eq!(o["status"], "awaiting_payment", "{o}");
    assert!(o["fulfillment"].is_null());
    assert_eq!(o["payment_intent"], "pi_for_cs_test_sepa");
    assert_eq!(stripe_session_fetches(&reqs, "cs_test_sepa"), 0);

    // Expired.
    assert_eq!(
        order_of(&app, &key, "cs_test_expired").await["status"],
        "expired"
    );

    // The delayed payments end: one succeeds (fulfilled), one fails.
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "checkout.session.async_payment_succeeded",
            session_object("cs_test_sepa", "paid", 7000),
            t + 100,
        ),
    )
    .await;
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "checkout.session.async_payment_failed",
            session_object("cs_test_sepa_fail", "unpaid", 7000),
            t + 100,
        ),
    )
    .await;
    app.drain().await;
    let o = order_of(&app, &key, "cs_test_sepa").await;
    assert_eq!(o["status"], "fulfilled", "{o}");
    assert_eq!(o["line_items"].as_array().unwrap().len(), 7);
    let o = order_of(&app, &key, "cs_test_sepa_fail").await;
    assert_eq!(o["status"], "payment_failed", "{o}");
    assert!(o["fulfillment"].is_null());
    for (s, n) in [
        ("cs_test_paid", 1),
        ("cs_test_free", 1),
        ("cs_test_sepa", 1),
        ("cs_test_sepa_fail", 0),
        ("cs_test_expired", 0),
    ] {
        assert_eq!(fulfillments(&app, s).await, n, "{s}");
    }
}

/// Distinct orderings of `items` (a multiset).
fn orderings(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let head = rest.remove(i);
        for mut tail in orderings(&rest) {
            tail.insert(0, head);
            if !out.contains(&tail) {
                out.push(tail);
            }
        }
    }
    out
}

/// Delayed payments whose events arrive in every order, each twice (distinct deliveries of the
/// same change), end in the same state: succeeded → fulfilled once; failed → payment failed,
/// never fulfilled.
async fn checkout_flows_converge_in_every_order_and_on_repeats(backend: Backend) {
    let (app, stripe, company, secret) = start(backend, "paid").await;
    let key = api_key(&app, &company).await;
    let t = now_secs() - 600;
    // (event type, payment_status in the event, created offset)
    let succeeded = [
        ("checkout.session.completed", "unpaid", 0),
        ("checkout.session.async_payment_succeeded", "paid", 10),
    ];
    let failed = [
        ("checkout.session.completed", "unpaid", 0),
        ("checkout.session.async_payment_failed", "unpaid", 10),
    ];
    for (flow, steps, expected) in [
        ("ok", &succeeded[..], "fulfilled"),
        ("ko", &failed[..], "payment_failed"),
    ] {
        let multiset: Vec<usize> = (0..steps.len()).flat_map(|i| [i, i]).collect();
        let all = orderings(&multiset);
        assert_eq!(all.len(), 6);
        for (n, order) in all.iter().enumerate() {
            let session = format!("cs_test_{flow}_{n}");
            for &i in order.iter() {
                let (ty, ps, dt) = steps[i];
                let e = event_at(ty, session_object(&session, ps, 7000), t + dt);
                deliver(&app, &company, &secret, &e).await;
                app.drain().await;
            }
            let o = order_of(&app, &key, &session).await;
            assert_eq!(o["status"], expected, "{session} {order:?}: {o}");
            let cs = session_of(&app, &company, &session).await;
            if expected == "fulfilled" {
                assert_eq!(fulfillments(&app, &session).await, 1, "{session}");
                assert_eq!(o["line_items"].as_array().unwrap().len(), 7);
                assert_eq!(cs["fulfillment_status"], "fulfilled");
                assert_eq!(
                    cs["payment_status"], "paid",
                    "the newest event's state: {cs}"
                );
            } else {
                assert_eq!(fulfillments(&app, &session).await, 0, "{session}");
                assert_eq!(cs["fulfillment_status"], "none");
                assert_eq!(
                    stripe_session_fetches(&stripe.received_requests().await.unwrap(), &session),
                    0
                );
            }
        }
    }
}

/// A landing page called with a session id Stripe does not know answers 404 and records
/// nothing; a malformed id is 400; an unknown company is 404.
async fn landing_page_for_an_unknown_session_records_nothing(backend: Backend) {
    let (app, _stripe, company, _secret) = start(backend, "paid").await;
    let (s, page) = landing(&app, &company, "cs_test_missing_1", "de-CH,de;q=0.9").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        page.contains("Diese Zahlung wurde nicht gefunden."),
        "{page}"
    );
    assert!(page.contains("lang=\"de\""));
    let (s, _) = landing(&app, &company, "cs_test_%3Cscript%3E", "en").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = landing(&app, "no_such_company", "cs_test_1", "en").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        checkout_session::Entity::find()
            .count(&app.app.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(order::Entity::find().count(&app.app.db).await.unwrap(), 0);
    let (s, e) = app
        .send(app.client.get(app.url(&format!(
            "/checkout/{company}/sessions/cs_test_missing_1/status"
        ))))
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("checkout_session_not_found"))
    );
    // A paid session Paygate has not heard of yet (the webhook is late) is recorded and
    // fulfilled from the landing page.
    let (s, page) = landing(&app, &company, "cs_test_early", "it").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Pagamento confermato, ordine completato."),
        "{page}"
    );
    assert_eq!(fulfillments(&app, "cs_test_early").await, 1);
}

/// The landing page speaks the shopper's preferred language by quality value: a language
/// refused with `q=0` is not chosen, a regional variant counts as its language.
async fn landing_page_follows_accept_language_quality(backend: Backend) {
    let (app, _stripe, company, _secret) = start(backend, "paid").await;
    let (s, page) = landing(&app, &company, "cs_test_lang_1", "it;q=0, en").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("lang=\"en\""), "{page}");
    assert!(
        page.contains("Payment confirmed, order complete."),
        "{page}"
    );
    assert!(page.contains("<title>Your order · "), "{page}");
    let (s, page) = landing(&app, &company, "cs_test_lang_1", "de-CH, en;q=0.5").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("lang=\"de\""), "{page}");
    assert!(
        page.contains("Zahlung bestätigt, Bestellung abgeschlossen."),
        "{page}"
    );
    assert!(page.contains("<title>Ihre Bestellung · "), "{page}");
}

/// A crash between creating a session's order and its row, or in the middle of a fulfillment,
/// never blocks it: the order is adopted, an expired claim is taken over, a live one respected.
async fn a_crash_mid_fulfillment_leaves_the_session_claimable(backend: Backend) {
    let (app, _stripe, company, secret) = start(backend, "paid").await;
    let key = api_key(&app, &company).await;
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    let db = &app.app.db;
    let now = paygate_db::now_ms();
    // The order was written, the session row never was.
    order::ActiveModel {
        id: Set("ord_orphan_0000000000000".into()),
        company_pk: Set(pk),
        livemode: Set(false),
        kind: Set("checkout".into()),
        status: Set("open".into()),
        checkout_session_id: Set(Some("cs_test_orphan".into())),
        metadata: Set("{}".into()),
        disputed: Set(false),
        status_created: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "checkout.session.completed",
            session_object("cs_test_orphan", "paid", 7000),
            now_secs(),
        ),
    )
    .await;
    app.drain().await;
    let o = order_of(&app, &key, "cs_test_orphan").await;
    assert_eq!(o["id"], "ord_orphan_0000000000000");
    assert_eq!(o["status"], "fulfilled", "{o}");
    assert_eq!(fulfillments(&app, "cs_test_orphan").await, 1);

    // A fulfillment in progress elsewhere (a live claim): the landing page shows the order as
    // pending and does not fulfill.
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "checkout.session.completed",
            session_object("cs_test_held", "unpaid", 7000),
            now_secs(),
        ),
    )
    .await;
    app.drain().await;
    let hold = |until: i64| {
        checkout_session::Entity::update_many()
            .col_expr(
                checkout_session::Column::FulfillmentStatus,
                Expr::value("claimed"),
            )
            .col_expr(checkout_session::Column::ClaimUntil, Expr::value(until))
            .filter(checkout_session::Column::SessionId.eq("cs_test_held"))
            .exec(db)
    };
    hold(paygate_db::now_ms() + 60_000).await.unwrap();
    let (s, page) = landing(&app, &company, "cs_test_held", "en").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Order received, awaiting payment confirmation."),
        "{page}"
    );
    assert_eq!(fulfillments(&app, "cs_test_held").await, 0);
    // The holder died: its claim expires and the next caller fulfills.
    hold(paygate_db::now_ms() - 1).await.unwrap();
    let (s, page) = landing(&app, &company, "cs_test_held", "en").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Payment confirmed, order complete."),
        "{page}"
    );
    assert_eq!(fulfillments(&app, "cs_test_held").await, 1);
    let o = order_of(&app, &key, "cs_test_held").await;
    assert_eq!(o["fulfillment"]["fulfilled_by"], "landing");
    // Later calls change nothing.
    let (_, again) = landing(&app, &company, "cs_test_held", "en").await;
    assert!(again.contains("Payment confirmed, order complete."));
    assert_eq!(fulfillments(&app, "cs_test_held").await, 1);
}

/// A session created through the merchant API: the shopper lands (fulfilled there, the
/// merchant's return link escaped), the webhook arrives after and changes nothing; the merchant
/// reads the order back. Suspended companies and companies without an active profile are refused.
async fn merchant_session_from_creation_to_fulfillment(backend: Backend) {
    let (app, stripe, company, secret) = start(backend, "paid").await;
    let key = api_key(&app, &company).await;
    app.admin_patch(
        &format!("/admin/v1/companies/{company}"),
        json!({"stripe_enabled": true}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_merchant", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_merchant",
            "payment_status": "unpaid", "status": "open", "amount_total": 7000, "currency": "eur", "livemode": false,
            "mode": "payment", "metadata": {}
        })))
        .mount(&stripe)
        .await;
    let return_url = "https://shop.example/thanks?x=\"><script>alert(1)</script>";
    let (s, created) = merchant_post(
        &app,
        &key,
        "/api/v1/checkout-sessions",
        json!({"line_items": [{"price": "price_123", "quantity": 7}], "client_reference_id": "cart_42",
               "metadata": {"cart": "42"}, "return_url": return_url}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let order_id = created["order_id"].as_str().unwrap().to_owned();
    let (s, o) = merchant_get(&app, &key, &format!("/api/v1/orders/{order_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (o["status"].as_str(), o["kind"].as_str()),
        (Some("open"), Some("checkout"))
    );

    let (s, page) = landing(&app, &company, "cs_test_merchant", "it-IT").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Pagamento confermato, ordine completato."),
        "{page}"
    );
    assert!(page.contains(&order_id));
    assert!(
        !page.contains("<script>alert"),
        "the return URL is escaped: {page}"
    );
    assert!(
        page.contains("&#34;&#62;&#60;script&#62;") || page.contains("&quot;&gt;&lt;script&gt;"),
        "{page}"
    );
    assert!(page.contains("Torna al negozio"));
    assert!(!page.contains("<script>"), "no inline script");
    let (s, st) = app
        .send(
            app.client
                .get(app.url(&format!(
                    "/checkout/{company}/sessions/cs_test_merchant/status"
                )))
                .header("Accept-Language", "de"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        st,
        json!({"order_id": order_id, "status": "fulfilled", "state": "confirmed",
               "message": "Zahlung bestätigt, Bestellung abgeschlossen."})
    );
    // The webhook, late, twice.
    let completed = event_at(
        "checkout.session.completed",
        session_object("cs_test_merchant", "paid", 7000),
        now_secs(),
    );
    deliver(&app, &company, &secret, &completed).await;
    deliver(&app, &company, &secret, &completed).await;
    app.drain().await;
    assert_eq!(fulfillments(&app, "cs_test_merchant").await, 1);
    let (_, o) = merchant_get(&app, &key, &format!("/api/v1/orders/{order_id}")).await;
    assert_eq!(o["status"], "fulfilled");
    assert_eq!(o["fulfillment"]["fulfilled_by"], "landing");
    assert_eq!(o["payment_intent"], "pi_for_cs_test_merchant");
    assert_eq!(o["metadata"], json!({"cart": "42"}));
    assert_eq!(o["return_url"], return_url);
    assert_eq!(o["line_items"].as_array().unwrap().len(), 7);

    // No active profile for the company's environment: operators cannot turn Stripe on, and
    // should the row say so anyway (a profile removed behind its back), the API refuses.
    let bare = paygate_testkit::unique("co");
    app.create_company(&bare).await;
    let (s, e) = app
        .admin_patch(
            &format!("/admin/v1/companies/{bare}"),
            json!({"stripe_enabled": true}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("active_profile_missing")
        )
    );
    paygate_db::entities::company::Entity::update_many()
        .col_expr(
            paygate_db::entities::company::Column::StripeEnabled,
            Expr::value(true),
        )
        .filter(paygate_db::entities::company::Column::CompanyId.eq(bare.as_str()))
        .exec(&app.app.db)
        .await
        .unwrap();
    let bare_key = api_key(&app, &bare).await;
    let body = json!({"line_items": [{"price": "price_123"}]});
    let (s, e) = merchant_post(&app, &bare_key, "/api/v1/checkout-sessions", body.clone()).await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("active_profile_missing")
        )
    );
    // Bad input: 422 naming the field, nothing sent to Stripe.
    let before = stripe.received_requests().await.unwrap().len();
    for bad in [
        json!({"line_items": []}),
        json!({"line_items": [{"quantity": 1}]}),
        json!({"line_items": [{"price": "price_1"}], "mode": "rent"}),
        json!({"line_items": [{"price": "price_1"}], "return_url": "javascript:alert(1)"}),
        json!({"line_items": [{"price_data": {"currency": "EUR", "unit_amount": 1, "product_data": {"name": "x"}}}]}),
    ] {
        let (s, e) = merchant_post(&app, &key, "/api/v1/checkout-sessions", bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad} → {e}");
        assert!(e["error"]["code"].is_string(), "{e}");
    }
    assert_eq!(stripe.received_requests().await.unwrap().len(), before);
    // A suspended company's key is refused.
    app.admin_patch(
        &format!("/admin/v1/companies/{company}"),
        json!({"status": "suspended"}),
    )
    .await;
    let (s, e) = merchant_post(&app, &key, "/api/v1/checkout-sessions", body).await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("company_suspended"))
    );
}

/// Operators page through a company's orders and Checkout Sessions, newest first, with filters.
async fn operator_lists_orders_and_checkout_sessions_page_by_page(backend: Backend) {
    let (app, _stripe, company, secret) = start(backend, "paid").await;
    let key = api_key(&app, &company).await;
    // Orders of any kind need the company's Stripe payment method on.
    app.admin_patch(
        &format!("/admin/v1/companies/{company}"),
        json!({"stripe_enabled": true}),
    )
    .await;
    for i in 0..5 {
        let (s, o) = merchant_post(
            &app,
            &key,
            "/api/v1/orders",
            json!({"source": format!("src_list_{i}"), "amount": 100 + i, "currency": "eur"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
    }
    let t = now_secs();
    for (id, ps) in [
        ("cs_test_l1", "paid"),
        ("cs_test_l2", "unpaid"),
        ("cs_test_l3", "paid"),
    ] {
        deliver(
            &app,
            &company,
            &secret,
            &event_at(
                "checkout.session.completed",
                session_object(id, ps, 7000),
                t,
            ),
        )
        .await;
    }
    app.drain().await;
    let base = format!("/admin/v1/companies/{company}");
    let page_all = |what: &'static str, query: &'static str, limit: usize| {
        let base = base.clone();
        let app = &app;
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut url = format!("{base}/{what}?limit={limit}{query}");
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let (s, page) = app.admin_get(&url).await;
                assert_eq!(s, StatusCode::OK, "{page}");
                let data = page["data"].as_array().unwrap();
                assert!(data.len() <= limit);
                seen.extend(data.iter().cloned());
                if page["has_more"] == json!(true) {
                    cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
                } else {
                    assert!(page["next_cursor"].is_null());
                    break;
                }
            }
            seen
        }
    };
    let orders = page_all("orders", "", 2).await;
    assert_eq!(orders.len(), 8, "{orders:?}");
    let mut ids: Vec<&str> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "no order twice across pages");
    let created: Vec<&str> = orders
        .iter()
        .map(|o| o["created_at"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
    assert_eq!(page_all("orders", "&kind=source", 3).await.len(), 5);
    assert_eq!(
        page_all("orders", "&status=awaiting_payment", 2)
            .await
            .len(),
        6
    );
    assert_eq!(page_all("orders", "&status=fulfilled", 1).await.len(), 2);
    let sessions = page_all("checkout-sessions", "", 1).await;
    let mut ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["cs_test_l1", "cs_test_l2", "cs_test_l3"]);
    assert!(
        sessions[0]["order_id"]
            .as_str()
            .unwrap()
            .starts_with("ord_")
    );
    let fulfilled = page_all("checkout-sessions", "&fulfillment_status=fulfilled", 5).await;
    assert_eq!(fulfilled.len(), 2);
    assert_eq!(
        page_all("checkout-sessions", "&payment_status=unpaid", 5).await[0]["id"],
        "cs_test_l2"
    );
    for (url, code) in [
        (format!("{base}/orders?status=shipped"), "invalid_query"),
        (format!("{base}/orders?cursor=bm9wZQ"), "invalid_cursor"),
        (
            format!("{base}/checkout-sessions?fulfillment_status=done"),
            "invalid_query",
        ),
        (
            format!("{base}/checkout-sessions?cursor=!!!"),
            "invalid_cursor",
        ),
    ] {
        let (s, e) = app.admin_get(&url).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{url}"
        );
    }
    let (s, _) = app
        .admin_get("/admin/v1/companies/no_such_company/checkout-sessions")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A dispute handled before the Checkout event that links its payment to the order (events of
/// different objects are handled concurrently) still flags the order.
async fn a_dispute_handled_first_still_flags_the_order(backend: Backend) {
    let (app, _stripe, company, secret) = start(backend, "paid").await;
    let dp = paygate_testkit::objects::dispute(
        "dp_early",
        "needs_response",
        "ch_early",
        "pi_for_cs_test_dfirst",
        1000,
        false,
        false,
    );
    deliver(
        &app,
        &company,
        &secret,
        &paygate_testkit::event("charge.dispute.created", dp),
    )
    .await;
    app.drain().await;
    let completed = paygate_testkit::event(
        "checkout.session.completed",
        session_object("cs_test_dfirst", "paid", 7000),
    );
    deliver(&app, &company, &secret, &completed).await;
    app.drain().await;
    let cs = session_of(&app, &company, "cs_test_dfirst").await;
    assert_eq!(cs["order"]["status"], "fulfilled", "{cs}");
    assert_eq!(cs["order"]["disputed"], true, "{cs}");
}

db_tests!(
    a_dispute_handled_first_still_flags_the_order,
    every_checkout_event_is_recorded_and_read_back,
    checkout_flows_converge_in_every_order_and_on_repeats,
    landing_page_for_an_unknown_session_records_nothing,
    landing_page_follows_accept_language_quality,
    a_crash_mid_fulfillment_leaves_the_session_claimable,
    merchant_session_from_creation_to_fulfillment,
    operator_lists_orders_and_checkout_sessions_page_by_page,
);
