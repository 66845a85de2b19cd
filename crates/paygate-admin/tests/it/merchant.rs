//! The merchant API (company API keys) and the shopper's landing page.

use paygate_testkit::objects::{checkout_session, line_items_page};
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

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

async fn merchant(
    app: &TestApp,
    key: &str,
    m: reqwest::Method,
    p: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app.client.request(m, app.url(p)).bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    app.send(r).await
}

async fn start_with_stripe(backend: Backend) -> (TestApp, MockServer) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    (TestApp::start(opts).await, stripe)
}

/// A company whose Stripe payment method is on (orders of any kind need it).
async fn company_taking_orders(app: &TestApp, secret: &str) -> String {
    let c = app.company_with_secret(secret).await;
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{c}"),
            json!({"stripe_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    c
}

async fn api_keys_reach_only_their_company(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = company_taking_orders(&app, &new_secret()).await;
    let b = company_taking_orders(&app, &new_secret()).await;
    let key_a = api_key(&app, &a).await;
    let key_b = api_key(&app, &b).await;
    assert!(key_a.starts_with("pgk_"));
    let (_, list) = app
        .admin_get(&format!("/admin/v1/companies/{a}/api-keys"))
        .await;
    assert!(list["data"][0]["key"].is_null(), "a key is shown only once");
    assert!(!list.to_string().contains(&key_a));
    let (s, o) = merchant(&app, &key_a, reqwest::Method::POST, "/api/v1/orders", Some(json!({"source": "src_abc123", "amount": 1999, "currency": "eur", "description": "Order 1"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(
        (o["status"].clone(), o["kind"].clone()),
        (json!("awaiting_payment"), json!("source"))
    );
    let order_id = o["id"].as_str().unwrap();
    assert_eq!(
        merchant(
            &app,
            &key_a,
            reqwest::Method::GET,
            &format!("/api/v1/orders/{order_id}"),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let (s, e) = merchant(
        &app,
        &key_b,
        reqwest::Method::GET,
        &format!("/api/v1/orders/{order_id}"),
        None,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("order_not_found"))
    );
    let (s, e) = merchant(
        &app,
        &key_a,
        reqwest::Method::POST,
        "/api/v1/orders",
        Some(json!({"source": "card_123", "amount": 1, "currency": "eur"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("source"))
    );
    assert_eq!(
        app.send(
            app.client
                .get(app.url(&format!("/api/v1/orders/{order_id}")))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // Revoked keys stop working.
    let (_, list) = app
        .admin_get(&format!("/admin/v1/companies/{a}/api-keys"))
        .await;
    let key_id = list["data"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.admin_delete(&format!("/admin/v1/companies/{a}/api-keys/{key_id}"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        merchant(
            &app,
            &key_a,
            reqwest::Method::GET,
            &format!("/api/v1/orders/{order_id}"),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
}

async fn checkout_sessions_need_the_payment_method_on(backend: Backend) {
    let (app, stripe) = start_with_stripe(backend).await;
    let company = app.company_with_secret(&new_secret()).await;
    let key = api_key(&app, &company).await;
    let body = json!({
        "line_items": [{"price_data": {"currency": "eur", "unit_amount": 1999, "product_data": {"name": "Espresso 1 kg"}}, "quantity": 2}],
        "customer_email": "shopper@example.com", "client_reference_id": "cart_9", "metadata": {"cart": "9"},
        "return_url": "https://shop.example/thanks"
    });
    let (s, e) = merchant(
        &app,
        &key,
        reqwest::Method::POST,
        "/api/v1/checkout-sessions",
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("stripe_disabled"))
    );
    assert!(
        stripe.received_requests().await.unwrap().is_empty(),
        "nothing was sent to Stripe"
    );
    app.admin_patch(
        &format!("/admin/v1/companies/{company}"),
        json!({"stripe_enabled": true}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_new", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_new",
            "payment_status": "unpaid", "status": "open", "amount_total": 3998, "currency": "eur", "livemode": false
        })))
        .mount(&stripe)
        .await;
    let (s, created) = merchant(
        &app,
        &key,
        reqwest::Method::POST,
        "/api/v1/checkout-sessions",
        Some(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "cs_test_new");
    assert_eq!(
        created["url"],
        "https://checkout.stripe.com/c/pay/cs_test_new"
    );
    let order_id = created["order_id"].as_str().unwrap();
    let reqs = stripe.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0]
            .headers
            .get("idempotency-key")
            .unwrap()
            .to_str()
            .unwrap(),
        order_id
    );
    let form = String::from_utf8_lossy(&reqs[0].body).to_string();
    let decoded = form
        .replace("%7B", "{")
        .replace("%7D", "}")
        .replace("%2F", "/")
        .replace("%3A", ":")
        .replace("%3F", "?")
        .replace("%3D", "=");
    assert!(
        decoded.contains(&format!(
            "/checkout/{company}/return?session_id={{CHECKOUT_SESSION_ID}}"
        )),
        "{form}"
    );
    assert!(
        form.contains("unit_amount%5D=1999") || form.contains("unit_amount]=1999"),
        "{form}"
    );
    let (s, found) = merchant(
        &app,
        &key,
        reqwest::Method::GET,
        "/api/v1/orders?checkout_session=cs_test_new",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(found["data"][0]["id"], order_id);
    assert_eq!(found["data"][0]["status"], "open");
    assert_eq!(
        found["data"][0]["return_url"],
        "https://shop.example/thanks"
    );
}

async fn landing_page_fulfills_and_speaks_the_shoppers_language(backend: Backend) {
    let (app, stripe) = start_with_stripe(backend).await;
    let company = app.company_with_secret(&new_secret()).await;
    let mut s = checkout_session("cs_test_land", "paid", 2500);
    s["line_items"] = line_items_page("cs_test_land", &["li_a"], false);
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_land"))
        .respond_with(ResponseTemplate::new(200).set_body_json(s))
        .mount(&stripe)
        .await;
    let mut u = checkout_session("cs_test_wait", "unpaid", 2500);
    u["line_items"] = line_items_page("cs_test_wait", &["li_b"], false);
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_wait"))
        .respond_with(ResponseTemplate::new(200).set_body_json(u))
        .mount(&stripe)
        .await;
    let page = |sid: &'static str, lang: &'static str| {
        let req = app
            .client
            .get(app.url(&format!("/checkout/{company}/return?session_id={sid}")))
            .header("Accept-Language", lang);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert!(
                r.headers()["content-security-policy"]
                    .to_str()
                    .unwrap()
                    .contains("script-src 'self'")
            );
            r.text().await.unwrap()
        }
    };
    let it = page("cs_test_land", "it-IT,it;q=0.9,en;q=0.8").await;
    assert!(
        it.contains("Pagamento confermato, ordine completato."),
        "{it}"
    );
    assert!(it.contains("lang=\"it\""));
    assert!(!it.contains("<script>"), "no inline script");
    let (_, cs) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/checkout-sessions/cs_test_land"
        ))
        .await;
    assert_eq!(cs["order"]["status"], "fulfilled");
    assert_eq!(cs["order"]["fulfillment"]["fulfilled_by"], "landing");
    let de = page("cs_test_wait", "de-DE").await;
    assert!(
        de.contains("Bestellung erhalten, die Zahlungsbestätigung steht noch aus."),
        "{de}"
    );
    assert!(de.contains("data-state=\"pending\""));
    let en = page("cs_test_wait", "fr-FR").await;
    assert!(en.contains("Order received, awaiting payment confirmation."));
    let (s, st) = app
        .send(
            app.client
                .get(app.url(&format!("/checkout/{company}/sessions/cs_test_land/status"))),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (st["state"].clone(), st["message"].clone()),
        (
            json!("confirmed"),
            json!("Payment confirmed, order complete.")
        )
    );
    let (s, _) = app
        .send(
            app.client
                .get(app.url(&format!("/checkout/{company}/sessions/cs_unknown/status"))),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let js = app
        .client
        .get(app.url("/static/checkout-status.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        js.contains("tries >= 10"),
        "the page polls at most 10 times"
    );
}

db_tests!(
    api_keys_reach_only_their_company,
    checkout_sessions_need_the_payment_method_on,
    landing_page_fulfills_and_speaks_the_shoppers_language
);

/// Company A's credentials never read or change company B's data, on every tenant-facing route.
async fn tenant_isolation_matrix(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (secret_a, secret_b) = (new_secret(), new_secret());
    let a = company_taking_orders(&app, &secret_a).await;
    let b = company_taking_orders(&app, &secret_b).await;
    let (key_a, key_b) = (api_key(&app, &a).await, api_key(&app, &b).await);
    let (_, order_b) = merchant(
        &app,
        &key_b,
        reqwest::Method::POST,
        "/api/v1/orders",
        Some(json!({"source": "src_b_only", "amount": 500, "currency": "eur"})),
    )
    .await;
    let order_b = order_b["id"].as_str().unwrap().to_owned();
    // Merchant API with A's key, aimed at B's objects.
    let (s, _) = merchant(
        &app,
        &key_a,
        reqwest::Method::GET,
        &format!("/api/v1/orders/{order_b}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // B's source cannot be reused through A either (separate namespaces), and A sees none of B's orders.
    let (s, _) = merchant(
        &app,
        &key_a,
        reqwest::Method::POST,
        "/api/v1/orders",
        Some(json!({"source": "src_b_only", "amount": 500, "currency": "eur"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, b_again) = merchant(
        &app,
        &key_b,
        reqwest::Method::GET,
        &format!("/api/v1/orders/{order_b}"),
        None,
    )
    .await;
    assert_eq!(b_again["amount"], 500, "B's order unchanged");
    // Intake: A's signing secret on B's callback URL is refused, and nothing is stored for B.
    let ev = paygate_testkit::event(
        "payment_intent.succeeded",
        json!({"id": "pi_iso", "object": "payment_intent", "status": "succeeded"}),
    );
    let (s, body) = app.deliver(&b, &secret_a, &ev).await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("signature_invalid"))
    );
    assert_eq!(app.inbox_count(&b).await, 0);
    // Admin routes scoped by company never serve another company's object.
    assert_eq!(app.deliver(&a, &secret_a, &ev).await.0, StatusCode::OK);
    let (s, _) = app
        .admin_get(&format!(
            "/admin/v1/companies/{b}/events/{}",
            ev["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .admin_get(&format!("/admin/v1/companies/{a}/orders/{order_b}"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, pa) = app
        .admin_get(&format!("/admin/v1/companies/{a}/profiles"))
        .await;
    let pid_a = pa["data"][0]["id"].as_str().unwrap();
    for (m, p) in [
        (
            reqwest::Method::GET,
            format!("/admin/v1/companies/{b}/profiles/{pid_a}"),
        ),
        (
            reqwest::Method::PATCH,
            format!("/admin/v1/companies/{b}/profiles/{pid_a}"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/admin/v1/companies/{b}/profiles/{pid_a}"),
        ),
    ] {
        let body = if m == reqwest::Method::PATCH {
            Some(json!({"name": "hijack"}))
        } else {
            None
        };
        let (s, e) = app.admin(m.clone(), &p, body).await;
        assert_eq!(
            (s, e["error"]["code"].clone()),
            (StatusCode::NOT_FOUND, json!("profile_not_found")),
            "{m} {p}"
        );
    }
    let (_, still) = app
        .admin_get(&format!("/admin/v1/companies/{a}/profiles/{pid_a}"))
        .await;
    assert_ne!(still["name"], "hijack");
}

db_tests!(tenant_isolation_matrix);
