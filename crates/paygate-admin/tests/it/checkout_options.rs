//! Checkout Sessions' `locale` and `ui_mode: embedded`, and Source orders' shopper e-mail and
//! the company's Stripe switch (issue 18). Through real HTTP, with a fake Stripe on loopback.

use std::collections::BTreeMap;

use paygate_testkit::objects::{checkout_session, line_items_page};
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn start(backend: Backend) -> (TestApp, MockServer, String, String) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&new_secret()).await;
    let (s, k) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/api-keys"),
            json!({"name": "shop backend"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let key = k["key"].as_str().unwrap().to_owned();
    (app, stripe, company, key)
}

async fn switch_stripe(app: &TestApp, company: &str, on: bool) {
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"stripe_enabled": on}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn post(app: &TestApp, key: &str, p: &str, body: Value) -> (StatusCode, Value) {
    app.send(app.client.post(app.url(p)).bearer_auth(key).json(&body))
        .await
}

async fn get(app: &TestApp, key: &str, p: &str) -> (StatusCode, Value) {
    app.send(app.client.get(app.url(p)).bearer_auth(key)).await
}

/// A form body as Stripe receives it, decoded.
fn form(body: &[u8]) -> BTreeMap<String, String> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn session_forms(stripe: &MockServer) -> Vec<BTreeMap<String, String>> {
    stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/checkout/sessions")
        .map(|r| form(&r.body))
        .collect()
}

fn line_items() -> Value {
    json!([{"price_data": {"currency": "eur", "unit_amount": 2500, "product_data": {"name": "Caffè"}}}])
}

async fn locale_reaches_stripe_and_the_shopper_page_speaks_it(backend: Backend) {
    let (app, stripe, company, key) = start(backend).await;
    switch_stripe(&app, &company, true).await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_it", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_it",
            "payment_status": "unpaid", "status": "open", "amount_total": 2500, "currency": "eur",
            "livemode": false, "locale": "it"
        })))
        .mount(&stripe)
        .await;
    let mut paid = checkout_session("cs_test_it", "paid", 2500);
    paid["line_items"] = line_items_page("cs_test_it", &["li_it"], false);
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_it"))
        .respond_with(ResponseTemplate::new(200).set_body_json(paid))
        .mount(&stripe)
        .await;
    let (s, created) = post(
        &app,
        &key,
        "/api/v1/checkout-sessions",
        json!({"line_items": line_items(), "locale": "it", "customer_email": "mario@example.it"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let sent = session_forms(&stripe).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].get("locale").map(String::as_str), Some("it"));
    let order_id = created["order_id"].as_str().unwrap();
    let (_, order) = get(&app, &key, &format!("/api/v1/orders/{order_id}")).await;
    assert_eq!(order["locale"], "it", "{order}");

    // The shopper's browser asks for English; the order is Italian.
    let res = app
        .client
        .get(app.url(&format!("/checkout/{company}/return?session_id=cs_test_it")))
        .header("Accept-Language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-language"], "it");
    let page = res.text().await.unwrap();
    assert!(page.contains("lang=\"it\""), "{page}");
    assert!(
        page.contains("Pagamento confermato, ordine completato."),
        "{page}"
    );
}

async fn embedded_checkout_answers_the_client_secret(backend: Backend) {
    let (app, stripe, company, key) = start(backend).await;
    switch_stripe(&app, &company, true).await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_emb", "object": "checkout.session", "url": null, "ui_mode": "embedded",
            "client_secret": "cs_test_emb_secret_abc123", "return_url": "https://shop.example/done?s={CHECKOUT_SESSION_ID}",
            "payment_status": "unpaid", "status": "open", "amount_total": 2500, "currency": "eur", "livemode": false
        })))
        .mount(&stripe)
        .await;
    let (s, created) = post(
        &app,
        &key,
        "/api/v1/checkout-sessions",
        json!({
            "line_items": line_items(), "ui_mode": "embedded", "locale": "de",
            "return_url": "https://shop.example/done?s={CHECKOUT_SESSION_ID}"
        }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["client_secret"], "cs_test_emb_secret_abc123");
    assert_eq!(created["id"], "cs_test_emb");
    let sent = session_forms(&stripe).await;
    assert_eq!(sent.len(), 1);
    let f = &sent[0];
    assert_eq!(f.get("ui_mode").map(String::as_str), Some("embedded"));
    assert_eq!(
        f.get("return_url").map(String::as_str),
        Some("https://shop.example/done?s={CHECKOUT_SESSION_ID}")
    );
    assert!(
        !f.contains_key("success_url") && !f.contains_key("cancel_url"),
        "{f:?}"
    );
    assert_eq!(f.get("locale").map(String::as_str), Some("de"));
    let (_, order) = get(
        &app,
        &key,
        &format!("/api/v1/orders/{}", created["order_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        order["return_url"],
        "https://shop.example/done?s=cs_test_emb"
    );
    assert_eq!(order["locale"], "de");
    // Hosted answers no client secret and sends Paygate's landing page.
    let hosted = created_hosted(&app, &stripe, &key).await;
    assert!(hosted["client_secret"].is_null(), "{hosted}");
    let f = &session_forms(&stripe).await[0];
    assert!(f["success_url"].contains(&format!("/checkout/{company}/return")));
    assert!(!f.contains_key("ui_mode"));
}

/// A hosted session (the fake Stripe is reset first: its log holds this request alone).
async fn created_hosted(app: &TestApp, stripe: &MockServer, key: &str) -> Value {
    stripe.reset().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_hosted", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_hosted",
            "payment_status": "unpaid", "status": "open", "amount_total": 2500, "currency": "eur", "livemode": false
        })))
        .mount(stripe)
        .await;
    let (s, b) = post(
        app,
        key,
        "/api/v1/checkout-sessions",
        json!({"line_items": line_items(), "ui_mode": "hosted"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

async fn invalid_combinations_name_every_problem(backend: Backend) {
    let (app, stripe, company, key) = start(backend).await;
    switch_stripe(&app, &company, true).await;
    let cases = [
        (
            json!({"line_items": line_items(), "ui_mode": "embedded", "locale": "xx",
                   "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}),
            vec!["locale", "success_url", "cancel_url", "return_url"],
        ),
        (
            json!({"line_items": line_items(), "ui_mode": "embedded", "return_url": "https://shop.example/done"}),
            vec!["return_url"],
        ),
        (
            json!({"line_items": line_items(), "ui_mode": "embedded", "return_url": "ftp://shop.example/{CHECKOUT_SESSION_ID}"}),
            vec!["return_url"],
        ),
        (
            json!({"line_items": line_items(), "ui_mode": "popup", "success_url": "https://shop.example/ok"}),
            vec!["ui_mode", "success_url"],
        ),
        (
            json!({"line_items": line_items(), "locale": "IT"}),
            vec!["locale"],
        ),
    ];
    for (body, fields) in cases {
        let (s, e) = post(&app, &key, "/api/v1/checkout-sessions", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {e}");
        assert_eq!(e["error"]["code"], "validation_failed", "{e}");
        assert_eq!(e["error"]["field"], fields[0], "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        for f in &fields {
            assert!(message.contains(&format!("{f}:")), "{f} in {message}");
        }
        assert_eq!(
            message.matches("; ").count() + 1,
            fields.len(),
            "only the problems there are: {message}"
        );
    }
    assert!(
        session_forms(&stripe).await.is_empty(),
        "nothing reached Stripe"
    );
}

async fn source_orders_take_the_shoppers_email_and_honour_the_stripe_switch(backend: Backend) {
    let (app, stripe, company, key) = start(backend).await;
    let order = json!({"source": "src_shop_1", "amount": 1999, "currency": "eur",
                       "customer_email": "Anna@Example.de", "locale": "de"});
    // Off: refused as Checkout is, with the same status and code; nothing stored.
    let (s_src, e_src) = post(&app, &key, "/api/v1/orders", order.clone()).await;
    let (s_cs, e_cs) = post(
        &app,
        &key,
        "/api/v1/checkout-sessions",
        json!({"line_items": line_items()}),
    )
    .await;
    assert_eq!(
        (s_src, e_src["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("stripe_disabled"))
    );
    assert_eq!(
        (s_src, &e_src["error"]["code"]),
        (s_cs, &e_cs["error"]["code"])
    );
    assert!(stripe.received_requests().await.unwrap().is_empty());
    switch_stripe(&app, &company, true).await;
    let (s, o) = post(&app, &key, "/api/v1/orders", order).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["customer_email"], "anna@example.de");
    assert_eq!(o["locale"], "de");
    assert_eq!(o["kind"], "source");
    let (_, again) = get(
        &app,
        &key,
        &format!("/api/v1/orders/{}", o["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(again["customer_email"], "anna@example.de", "stored");
    // A bad e-mail or locale: 422 naming the field, nothing stored.
    for (body, field) in [
        (
            json!({"source": "src_shop_2", "amount": 1, "currency": "eur", "customer_email": "not an e-mail"}),
            "customer_email",
        ),
        (
            json!({"source": "src_shop_2", "amount": 1, "currency": "eur", "locale": "klingon"}),
            "locale",
        ),
    ] {
        let (s, e) = post(&app, &key, "/api/v1/orders", body).await;
        assert_eq!(
            (s, e["error"]["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(field)),
            "{e}"
        );
    }
    let (s, _) = post(
        &app,
        &key,
        "/api/v1/orders",
        json!({"source": "src_shop_2", "amount": 1, "currency": "eur"}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "src_shop_2 was not taken by the refused requests"
    );
}

db_tests!(
    locale_reaches_stripe_and_the_shopper_page_speaks_it,
    embedded_checkout_answers_the_client_secret,
    invalid_combinations_name_every_problem,
    source_orders_take_the_shoppers_email_and_honour_the_stripe_switch
);
