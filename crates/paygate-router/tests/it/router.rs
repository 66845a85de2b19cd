//! The event router: every handler through the real intake, read back through the admin API;
//! out-of-order and duplicate deliveries; fulfillment exactly once.

use futures_util::future::join_all;
use paygate_testkit::objects::{
    account, charge, checkout_session, dispute, event_at, line_items_page, payment_intent, source,
};
use paygate_testkit::{
    Backend, Options, TestApp, db_tests, event, new_secret, now_secs, permutations, unique,
};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::deliver_together;

/// Delivers `events` all at once; every answer is a 200.
async fn deliver_all(app: &TestApp, company: &str, secret: &str, events: &[Value]) {
    for e in events {
        let (s, b) = app.deliver(company, secret, e).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
}

async fn event_status(app: &TestApp, company: &str, id: &str) -> Value {
    app.admin_get(&format!("/admin/v1/companies/{company}/events/{id}"))
        .await
        .1
}

async fn payment_intent_reaches_the_same_state_in_every_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs() - 100;
    for (n, perm) in permutations(&[0usize, 1, 2]).into_iter().enumerate() {
        let id = format!("pi_perm_{n}");
        let evs = [
            event_at(
                "payment_intent.created",
                payment_intent(&id, "requires_payment_method", 2000),
                t,
            ),
            event_at(
                "payment_intent.processing",
                payment_intent(&id, "processing", 2000),
                t + 1,
            ),
            event_at(
                "payment_intent.succeeded",
                payment_intent(&id, "succeeded", 2000),
                t + 2,
            ),
        ];
        // Each event twice, in this permutation's order.
        let order: Vec<Value> = perm
            .iter()
            .flat_map(|i| [evs[*i].clone(), evs[*i].clone()])
            .collect();
        for e in &order {
            deliver_all(&app, &company, &secret, std::slice::from_ref(e)).await;
            app.drain().await; // processed one by one, as they arrive
        }
        let (s, pi) = app
            .admin_get(&format!(
                "/admin/v1/companies/{company}/payment-intents/{id}"
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{pi}");
        assert_eq!(pi["status"], "succeeded", "permutation {perm:?}");
        assert_eq!(pi["amount_received"], 2000, "permutation {perm:?}");
    }
    let (_, stats) = app
        .admin_get(&format!("/admin/v1/companies/{company}/events/stats"))
        .await;
    assert_eq!(stats["processed"], 18, "{stats}");
}

async fn dispute_reaches_the_same_state_in_every_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs() - 100;
    deliver_all(
        &app,
        &company,
        &secret,
        &[event_at(
            "payment_intent.succeeded",
            payment_intent("pi_disp", "succeeded", 5000),
            t - 10,
        )],
    )
    .await;
    deliver_all(
        &app,
        &company,
        &secret,
        &[event_at(
            "charge.succeeded",
            charge("ch_disp", "succeeded", 5000, Some("pi_disp"), None),
            t - 10,
        )],
    )
    .await;
    app.drain().await;
    let mut finals = Vec::new();
    for (n, perm) in permutations(&[0usize, 1, 2, 3]).into_iter().enumerate() {
        let id = format!("dp_perm_{n}");
        let evs = [
            event_at(
                "charge.dispute.created",
                dispute(
                    &id,
                    "needs_response",
                    "ch_disp",
                    "pi_disp",
                    5000,
                    false,
                    false,
                ),
                t,
            ),
            event_at(
                "charge.dispute.updated",
                dispute(&id, "under_review", "ch_disp", "pi_disp", 5000, true, false),
                t + 1,
            ),
            event_at(
                "charge.dispute.funds_withdrawn",
                dispute(
                    &id,
                    "needs_response",
                    "ch_disp",
                    "pi_disp",
                    5000,
                    true,
                    false,
                ),
                t + 2,
            ),
            event_at(
                "charge.dispute.closed",
                dispute(&id, "lost", "ch_disp", "pi_disp", 5000, true, false),
                t + 3,
            ),
        ];
        let order: Vec<Value> = perm
            .iter()
            .flat_map(|i| [evs[*i].clone(), evs[*i].clone()])
            .collect();
        deliver_all(&app, &company, &secret, &order).await;
        app.drain().await;
        let (s, d) = app
            .admin_get(&format!("/admin/v1/companies/{company}/disputes/{id}"))
            .await;
        assert_eq!(s, StatusCode::OK);
        finals.push((
            d["status"].clone(),
            d["funds_withdrawn"].clone(),
            d["funds_reinstated"].clone(),
            d["reason"].clone(),
        ));
    }
    assert_eq!(finals.len(), 24);
    for f in &finals {
        assert_eq!(
            f,
            &(json!("lost"), json!(5000), json!(0), json!("fraudulent"))
        );
    }
    let (_, pi) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/payment-intents/pi_disp"
        ))
        .await;
    assert_eq!(pi["disputed"], true);
    let (_, ch) = app
        .admin_get(&format!("/admin/v1/companies/{company}/charges/ch_disp"))
        .await;
    assert_eq!(ch["disputed"], true);
    // A closed dispute is never reopened by a late update, and reinstated funds are recorded.
    let late = event_at(
        "charge.dispute.updated",
        dispute(
            "dp_perm_0",
            "under_review",
            "ch_disp",
            "pi_disp",
            5000,
            true,
            true,
        ),
        t + 50,
    );
    let reinstated = event_at(
        "charge.dispute.funds_reinstated",
        dispute("dp_perm_0", "won", "ch_disp", "pi_disp", 5000, true, true),
        t + 60,
    );
    deliver_all(&app, &company, &secret, &[late, reinstated]).await;
    app.drain().await;
    let (_, d) = app
        .admin_get(&format!("/admin/v1/companies/{company}/disputes/dp_perm_0"))
        .await;
    assert_eq!(
        (d["status"].clone(), d["funds_reinstated"].clone()),
        (json!("won"), json!(5000))
    );
    assert_eq!(d["evidence_due_by"], "2030-03-17T17:46:40Z");
}

async fn payment_intent_fields_charges_and_refunds_are_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs() - 50;
    let mut failed = payment_intent("pi_f", "requires_payment_method", 900);
    failed["last_payment_error"] = json!({"code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds.", "type": "card_error"});
    let mut canceled = payment_intent("pi_c", "canceled", 700);
    canceled["cancellation_reason"] = json!("abandoned");
    let capturable = payment_intent("pi_a", "requires_capture", 1500);
    let mut refunded = charge("ch_r", "succeeded", 1200, Some("pi_r"), None);
    refunded["refunded"] = json!(true);
    refunded["amount_refunded"] = json!(1200);
    deliver_all(
        &app,
        &company,
        &secret,
        &[
            event_at("payment_intent.payment_failed", failed, t),
            event_at("payment_intent.canceled", canceled, t),
            event_at("payment_intent.amount_capturable_updated", capturable, t),
            event_at(
                "payment_intent.requires_action",
                payment_intent("pi_x", "requires_action", 300),
                t,
            ),
            event_at(
                "charge.pending",
                charge("ch_r", "pending", 1200, Some("pi_r"), None),
                t,
            ),
            event_at(
                "charge.succeeded",
                charge("ch_r", "succeeded", 1200, Some("pi_r"), None),
                t + 1,
            ),
            event_at("charge.refunded", refunded, t + 2),
            event_at(
                "charge.failed",
                charge("ch_f", "failed", 100, Some("pi_f"), None),
                t,
            ),
        ],
    )
    .await;
    app.drain().await;
    let app = &app;
    let get = |p: String| async move { app.admin_get(&p).await.1 };
    let f = get(format!(
        "/admin/v1/companies/{company}/payment-intents/pi_f"
    ))
    .await;
    assert_eq!(f["last_payment_error"]["code"], "card_declined");
    let c = get(format!(
        "/admin/v1/companies/{company}/payment-intents/pi_c"
    ))
    .await;
    assert_eq!(
        (c["status"].clone(), c["cancellation_reason"].clone()),
        (json!("canceled"), json!("abandoned"))
    );
    let a = get(format!(
        "/admin/v1/companies/{company}/payment-intents/pi_a"
    ))
    .await;
    assert_eq!(a["amount_capturable"], 1500);
    assert_eq!(
        get(format!(
            "/admin/v1/companies/{company}/payment-intents/pi_x"
        ))
        .await["status"],
        "requires_action"
    );
    let r = get(format!("/admin/v1/companies/{company}/charges/ch_r")).await;
    assert_eq!(
        (
            r["status"].clone(),
            r["refunded"].clone(),
            r["amount_refunded"].clone()
        ),
        (json!("succeeded"), json!(true), json!(1200))
    );
    let cf = get(format!("/admin/v1/companies/{company}/charges/ch_f")).await;
    assert_eq!(
        (cf["status"].clone(), cf["failure_code"].clone()),
        (json!("failed"), json!("card_declined"))
    );
}

async fn account_payment_method_issuing_and_unknown_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs() - 50;
    let pm = json!({"id": "pm_up", "object": "payment_method", "customer": "cus_9", "type": "card", "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2031}});
    let unknown = event(
        "product.created",
        json!({"id": "prod_1", "object": "product"}),
    );
    deliver_all(
        &app,
        &company,
        &secret,
        &[
            event_at(
                "account.updated",
                account("acct_1", false, &["external_account"]),
                t,
            ),
            event_at("account.updated", account("acct_1", true, &[]), t + 5),
            event_at(
                "account.updated",
                account("acct_1", false, &["stale"]),
                t + 1,
            ), // older: ignored
            event_at("payment_method.automatically_updated", pm, t),
            event_at(
                "issuing_card.updated",
                json!({"id": "ic_1", "object": "issuing.card", "status": "inactive"}),
                t,
            ),
            event_at(
                "issuing_cardholder.updated",
                json!({"id": "ich_1", "object": "issuing.cardholder", "status": "active"}),
                t,
            ),
            unknown.clone(),
        ],
    )
    .await;
    app.drain().await;
    let (_, accts) = app
        .admin_get(&format!("/admin/v1/companies/{company}/accounts"))
        .await;
    assert_eq!(accts["data"][0]["charges_enabled"], true);
    assert_eq!(accts["data"][0]["requirements"]["currently_due"], json!([]));
    let (_, pm) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/payment-methods/pm_up"
        ))
        .await;
    assert_eq!(
        pm["card"],
        json!({"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2031})
    );
    assert_eq!(
        app.admin_get(&format!("/admin/v1/companies/{company}/issuing/ic_1"))
            .await
            .1["status"],
        "inactive"
    );
    assert_eq!(
        app.admin_get(&format!("/admin/v1/companies/{company}/issuing/ich_1"))
            .await
            .1["kind"],
        "cardholder"
    );
    let ev = event_status(&app, &company, unknown["id"].as_str().unwrap()).await;
    assert_eq!(ev["status"], "ignored");
    assert_eq!(ev["attempts"], 1);
}

async fn stripe_with_session(
    backend: Backend,
    session: &str,
    payment_status: &str,
) -> (TestApp, MockServer, String, String) {
    let stripe = MockServer::start().await;
    let mut first = checkout_session(session, payment_status, 5000);
    first["line_items"] = line_items_page(session, &["li_1", "li_2"], true);
    Mock::given(method("GET"))
        .and(path(format!("/v1/checkout/sessions/{session}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(first))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/checkout/sessions/{session}/line_items")))
        .and(query_param("starting_after", "li_2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(line_items_page(
            session,
            &["li_3", "li_4"],
            true,
        )))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/checkout/sessions/{session}/line_items")))
        .and(query_param("starting_after", "li_4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(line_items_page(
            session,
            &["li_5"],
            false,
        )))
        .mount(&stripe)
        .await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    (app, stripe, company, secret)
}

async fn fulfillment_count(app: &TestApp) -> u64 {
    paygate_db::entities::fulfillment::Entity::find()
        .count(&app.app.db)
        .await
        .unwrap()
}

async fn paid_checkout_is_fulfilled_with_every_line_item(backend: Backend) {
    let (app, _stripe, company, secret) =
        stripe_with_session(backend, "cs_test_paid", "paid").await;
    deliver_all(
        &app,
        &company,
        &secret,
        &[event(
            "checkout.session.completed",
            checkout_session("cs_test_paid", "paid", 5000),
        )],
    )
    .await;
    app.drain().await;
    let (s, cs) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/checkout-sessions/cs_test_paid"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{cs}");
    assert_eq!(cs["fulfillment_status"], "fulfilled");
    let order = &cs["order"];
    assert_eq!(order["status"], "fulfilled");
    assert_eq!(order["customer_email"], "shopper@example.com");
    assert_eq!(order["payment_intent"], "pi_for_cs_test_paid");
    let items: Vec<&str> = order["line_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(items, vec!["li_1", "li_2", "li_3", "li_4", "li_5"]);
    assert_eq!(order["fulfillment"]["fulfilled_by"], "worker");
    assert_eq!(fulfillment_count(&app).await, 1);
}

async fn delayed_payment_awaits_then_fulfills_or_fails(backend: Backend) {
    let (app, stripe, company, secret) = stripe_with_session(backend, "cs_test_sepa", "paid").await;
    let t = now_secs() - 30;
    deliver_all(
        &app,
        &company,
        &secret,
        &[event_at(
            "checkout.session.completed",
            checkout_session("cs_test_sepa", "unpaid", 5000),
            t,
        )],
    )
    .await;
    app.drain().await;
    let (_, cs) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/checkout-sessions/cs_test_sepa"
        ))
        .await;
    assert_eq!(cs["order"]["status"], "awaiting_payment");
    assert_eq!(
        stripe.received_requests().await.unwrap().len(),
        0,
        "an unpaid session is not fetched for fulfillment"
    );
    deliver_all(
        &app,
        &company,
        &secret,
        &[event_at(
            "checkout.session.async_payment_succeeded",
            checkout_session("cs_test_sepa", "paid", 5000),
            t + 10,
        )],
    )
    .await;
    app.drain().await;
    let (_, cs) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/checkout-sessions/cs_test_sepa"
        ))
        .await;
    assert_eq!(cs["order"]["status"], "fulfilled");
    // Failed and expired sessions.
    deliver_all(&app, &company, &secret, &[
        event_at("checkout.session.completed", checkout_session("cs_test_fail", "unpaid", 100), t),
        event_at("checkout.session.async_payment_failed", checkout_session("cs_test_fail", "unpaid", 100), t + 5),
        event_at("checkout.session.expired", json!({"id": "cs_test_exp", "object": "checkout.session", "status": "expired", "payment_status": "unpaid"}), t),
    ]).await;
    app.drain().await;
    assert_eq!(
        app.admin_get(&format!(
            "/admin/v1/companies/{company}/checkout-sessions/cs_test_fail"
        ))
        .await
        .1["order"]["status"],
        "payment_failed"
    );
    assert_eq!(
        app.admin_get(&format!(
            "/admin/v1/companies/{company}/checkout-sessions/cs_test_exp"
        ))
        .await
        .1["order"]["status"],
        "expired"
    );
    assert_eq!(fulfillment_count(&app).await, 1);
}

async fn concurrent_fulfillment_happens_exactly_once(backend: Backend) {
    let (app, _stripe, company, secret) =
        stripe_with_session(backend, "cs_test_race", "paid").await;
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    let completed = event(
        "checkout.session.completed",
        checkout_session("cs_test_race", "paid", 5000),
    );
    // A second worker pool, as on another replica.
    let other = paygate_router::worker::WorkerPool::new(
        app.app.db.clone(),
        app.app.tenants.clone(),
        app.app.stripe.clone(),
        Default::default(),
        std::sync::Arc::new(tokio::sync::Notify::new()),
        app.app.metrics.clone(),
    );
    let _ = pk;
    // 50 shoppers' browsers landing on the real page at once.
    let landing = (0..50).map(|_| {
        let req = app.client.get(app.url(&format!(
            "/checkout/{company}/return?session_id=cs_test_race"
        )));
        async move { req.send().await.map(|r| r.status()) }
    });
    let deliveries = (0..5).map(|_| app.deliver(&company, &secret, &completed));
    let (landing, deliveries, _, _) = tokio::join!(
        join_all(landing),
        join_all(deliveries),
        app.app.worker.drain(),
        other.drain()
    );
    assert!(deliveries.iter().all(|(s, _)| *s == StatusCode::OK));
    assert!(
        landing.iter().all(|r| matches!(r, Ok(StatusCode::OK))),
        "{landing:?}"
    );
    app.drain().await;
    other.drain().await.unwrap();
    assert_eq!(fulfillment_count(&app).await, 1);
    let (_, cs) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/checkout-sessions/cs_test_race"
        ))
        .await;
    assert_eq!(cs["order"]["status"], "fulfilled");
    assert_eq!(cs["order"]["line_items"].as_array().unwrap().len(), 5);
}

async fn source_chargeable_creates_exactly_one_charge_and_the_charge_confirms(backend: Backend) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    let order_id = unique("ord_src_");
    let now = paygate_db::now_ms();
    paygate_db::entities::order::ActiveModel {
        id: Set(order_id.clone()),
        company_pk: Set(pk),
        livemode: Set(false),
        kind: Set("source".into()),
        status: Set("awaiting_payment".into()),
        source_id: Set(Some("src_sofort_1".into())),
        amount: Set(Some(2500)),
        currency: Set(Some("eur".into())),
        description: Set(Some("Order 7".into())),
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
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .and(header("Idempotency-Key", order_id.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(charge(
            "ch_src",
            "pending",
            2500,
            None,
            Some("src_sofort_1"),
        )))
        .mount(&stripe)
        .await;
    let chargeable = event(
        "source.chargeable",
        source("src_sofort_1", "chargeable", 2500),
    );
    for _ in 0..3 {
        deliver_all(&app, &company, &secret, std::slice::from_ref(&chargeable)).await;
    }
    // Replays of the same event must not charge again either.
    app.drain().await;
    let (s, _) = app
        .admin_post(
            &format!(
                "/admin/v1/companies/{company}/events/{}/replay",
                chargeable["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    app.drain().await;
    let posts: Vec<_> = stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "exactly one charge created");
    let body = String::from_utf8_lossy(&posts[0].body).to_string();
    assert!(
        body.contains("source=src_sofort_1") && body.contains("amount=2500"),
        "{body}"
    );
    let (_, o) = app
        .admin_get(&format!("/admin/v1/companies/{company}/orders/{order_id}"))
        .await;
    assert_eq!(
        (o["status"].clone(), o["charge"].clone()),
        (json!("charging"), json!("ch_src"))
    );
    deliver_all(
        &app,
        &company,
        &secret,
        &[event(
            "charge.succeeded",
            charge("ch_src", "succeeded", 2500, None, Some("src_sofort_1")),
        )],
    )
    .await;
    app.drain().await;
    let (_, o) = app
        .admin_get(&format!("/admin/v1/companies/{company}/orders/{order_id}"))
        .await;
    assert_eq!(o["status"], "paid");
    // A late source.canceled does not cancel a paid order.
    deliver_all(
        &app,
        &company,
        &secret,
        &[event(
            "source.canceled",
            source("src_sofort_1", "canceled", 2500),
        )],
    )
    .await;
    app.drain().await;
    assert_eq!(
        app.admin_get(&format!("/admin/v1/companies/{company}/orders/{order_id}"))
            .await
            .1["status"],
        "paid"
    );
}

async fn failed_source_and_failed_charge_cancel_the_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    let now = paygate_db::now_ms();
    for (id, src) in [("ord_a", "src_a"), ("ord_b", "src_b")] {
        paygate_db::entities::order::ActiveModel {
            id: Set(format!("{id}_{pk}")),
            company_pk: Set(pk),
            livemode: Set(false),
            kind: Set("source".into()),
            status: Set("awaiting_payment".into()),
            source_id: Set(Some(src.into())),
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
    }
    deliver_all(
        &app,
        &company,
        &secret,
        &[
            event("source.failed", source("src_a", "failed", 100)),
            event(
                "charge.failed",
                charge("ch_b", "failed", 100, None, Some("src_b")),
            ),
        ],
    )
    .await;
    app.drain().await;
    let (app, company) = (&app, &company);
    let (app, company) = (&app, &company);
    let status = |id: String| async move {
        app.admin_get(&format!("/admin/v1/companies/{company}/orders/{id}"))
            .await
            .1["status"]
            .clone()
    };
    assert_eq!(status(format!("ord_a_{pk}")).await, "canceled");
    assert_eq!(status(format!("ord_b_{pk}")).await, "payment_failed");
}

async fn failing_handler_retries_with_its_error_visible_then_replays(backend: Backend) {
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_down"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"type": "invalid_request_error", "message": "No such checkout.session"}})))
        .mount(&stripe)
        .await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let ev = event(
        "checkout.session.completed",
        checkout_session("cs_test_down", "paid", 100),
    );
    deliver_all(&app, &company, &secret, std::slice::from_ref(&ev)).await;
    app.drain().await;
    let e = event_status(&app, &company, ev["id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "pending", "{e}");
    assert_eq!(e["attempts"], 1);
    assert!(
        e["last_error"]
            .as_str()
            .unwrap()
            .contains("No such checkout.session"),
        "{e}"
    );
    let row = paygate_db::entities::inbox_event::Entity::find()
        .filter(
            paygate_db::entities::inbox_event::Column::StripeEventId.eq(ev["id"].as_str().unwrap()),
        )
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.next_attempt_at > paygate_db::now_ms(),
        "the retry is scheduled later"
    );
    // Stripe is back: the operator replays at once.
    stripe.reset().await;
    let mut s = checkout_session("cs_test_down", "paid", 100);
    s["line_items"] = line_items_page("cs_test_down", &["li_x"], false);
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_down"))
        .respond_with(ResponseTemplate::new(200).set_body_json(s))
        .mount(&stripe)
        .await;
    let (st, _) = app
        .admin_post(
            &format!(
                "/admin/v1/companies/{company}/events/{}/replay",
                ev["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    app.drain().await;
    let e = event_status(&app, &company, ev["id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "processed", "{e}");
    assert_eq!(fulfillment_count(&app).await, 1);
    let (st, _) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/events/evt_nope/replay"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Two worker tasks drain a burst while more of it arrives (on SQLite each reads its due events
/// on the read-only connection before leasing them in its write transaction, so the other may
/// have taken some meanwhile): every event is applied once, by one of them, none twice, none
/// left behind.
async fn two_workers_share_a_burst_and_apply_each_event_once(backend: Backend) {
    use paygate_db::entities::{inbox_event, payment_intent as pi};
    // The workers apply every event (the intake would otherwise leave them nothing to share).
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.apply_at_intake = false;
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let events: Vec<Value> = (0..120)
        .map(|i| {
            event(
                "payment_intent.succeeded",
                payment_intent(&format!("pi_share_{i}"), "succeeded", 1000 + i),
            )
        })
        .collect();
    let (first, rest) = events.split_at(40);
    deliver_together(&app, &company, &secret, first).await;
    let run = |w: paygate_router::worker::WorkerPool| async move {
        let mut n = 0;
        for _ in 0..100 {
            match w.run_once().await.unwrap() {
                0 => break,
                k => n += k,
            }
        }
        n
    };
    let a = app.app.worker.clone();
    let b = a.sibling();
    let arriving = async {
        for chunk in rest.chunks(20) {
            deliver_together(&app, &company, &secret, chunk).await;
        }
    };
    let ((), by_a, by_b) = tokio::join!(arriving, run(a), run(b));
    let after = app.drain().await;
    assert_eq!(by_a + by_b + after, 120, "{by_a} + {by_b} + {after}");
    let (_, stats) = app
        .admin_get(&format!("/admin/v1/companies/{company}/events/stats"))
        .await;
    assert_eq!(stats["processed"], 120, "{stats}");
    let twice = inbox_event::Entity::find()
        .filter(inbox_event::Column::Attempts.ne(1))
        .count(&app.app.db)
        .await
        .unwrap();
    assert_eq!(twice, 0, "events applied more than once");
    let stored = pi::Entity::find()
        .filter(pi::Column::StripeId.starts_with("pi_share_"))
        .filter(pi::Column::Status.eq("succeeded"))
        .count(&app.app.db)
        .await
        .unwrap();
    assert_eq!(stored, 120);
}

db_tests!(
    payment_intent_reaches_the_same_state_in_every_order,
    dispute_reaches_the_same_state_in_every_order,
    payment_intent_fields_charges_and_refunds_are_recorded,
    account_payment_method_issuing_and_unknown_events,
    paid_checkout_is_fulfilled_with_every_line_item,
    delayed_payment_awaits_then_fulfills_or_fails,
    concurrent_fulfillment_happens_exactly_once,
    source_chargeable_creates_exactly_one_charge_and_the_charge_confirms,
    failed_source_and_failed_charge_cancel_the_order,
    failing_handler_retries_with_its_error_visible_then_replays,
    two_workers_share_a_burst_and_apply_each_event_once,
);
