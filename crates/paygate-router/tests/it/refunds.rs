//! Refunds and early fraud warnings through the real intake and workers, read back through the
//! admin API: `refund.*` and `charge.refunded` in every order (each twice) leave the same refunds
//! and the same order (`amount_refunded`, status); a refund that fails after succeeding gives
//! its amount back and says why; an actionable early fraud warning refunds the payment once when
//! the company asked for it (three deliveries at once, created and updated, a replay), never
//! when it did not, never when the charge is disputed. Fake Stripe: wiremock on loopback.

use paygate_db::entities::{notification_message, order};
use paygate_testkit::objects::{
    charge, dispute, early_fraud_warning, event_at, refund as refund_object,
};
use paygate_testkit::{
    Backend, Options, TestApp, db_tests, new_secret, now_secs, permutations, unique,
};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn deliver(app: &TestApp, company: &str, secret: &str, ev: &Value) {
    let (s, b) = app.deliver(company, secret, ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// A paid order of `company` (test mode) over `pi` / `ch`, 2500 EUR cents.
async fn paid_order(app: &TestApp, company: &str, pi: &str, ch: &str) -> String {
    let pk = app.app.tenants.company(company).await.unwrap().id;
    let id = unique("ord_");
    let now = paygate_db::now_ms();
    order::ActiveModel {
        id: Set(id.clone()),
        company_pk: Set(pk),
        livemode: Set(false),
        kind: Set("checkout".into()),
        status: Set("paid".into()),
        payment_intent_id: Set(Some(pi.to_owned())),
        charge_id: Set(Some(ch.to_owned())),
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

async fn order_json(app: &TestApp, company: &str, id: &str) -> Value {
    let (s, b) = app
        .admin_get(&format!("/admin/v1/companies/{company}/orders/{id}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// The messages of `event_type` about anything of the app (all companies).
async fn messages(app: &TestApp, event_type: &str) -> Vec<Value> {
    notification_message::Entity::find()
        .filter(notification_message::Column::EventType.eq(event_type))
        .all(&app.app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| serde_json::from_str(&m.payload).unwrap())
        .collect()
}

/// The refunds of an order as the API shows them, by id: (status, amount, failure_reason).
fn refunds_of(o: &Value) -> Vec<(String, String, i64, Value)> {
    let mut v: Vec<_> = o["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
                r["amount"].as_i64().unwrap(),
                r["failure_reason"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A refund that succeeds and then fails (the bank returned it), told by `refund.created`,
/// `refund.updated`, a `charge.refunded` of a newer API version (no `refunds` list, only the
/// amount) and `refund.failed`, in every order, each twice: the refund ends failed, the amount
/// is back (0 refunded), the order is paid again; `order.refunded` is told at most once and
/// `refund.failed` exactly once per refund.
async fn a_refund_failing_after_success_gives_the_amount_back_in_every_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t0 = now_secs() - 1000;
    for (n, perm) in permutations(&[0usize, 1, 2, 3]).into_iter().enumerate() {
        let (pi, ch, re) = (format!("pi_f{n}"), format!("ch_f{n}"), format!("re_f{n}"));
        let order = paid_order(&app, &company, &pi, &ch).await;
        let mut refunded_charge = charge(&ch, "succeeded", 2500, Some(&pi), None);
        refunded_charge["amount_refunded"] = json!(1000);
        let events = [
            event_at(
                "refund.created",
                refund_object(&re, "pending", 1000, &ch, Some(&pi)),
                t0,
            ),
            event_at(
                "refund.updated",
                refund_object(&re, "succeeded", 1000, &ch, Some(&pi)),
                t0 + 1,
            ),
            event_at("charge.refunded", refunded_charge, t0 + 1),
            event_at(
                "refund.failed",
                refund_object(&re, "failed", 1000, &ch, Some(&pi)),
                t0 + 2,
            ),
        ];
        for &i in &perm {
            deliver(&app, &company, &secret, &events[i]).await;
            app.drain().await;
            deliver(&app, &company, &secret, &events[i]).await;
        }
        app.drain().await;
        let o = order_json(&app, &company, &order).await;
        assert_eq!(o["amount_refunded"], json!(0), "{perm:?}: {o}");
        assert_eq!(o["status"], json!("paid"), "{perm:?}: {o}");
        assert_eq!(
            refunds_of(&o),
            vec![(
                re.clone(),
                "failed".to_owned(),
                1000,
                json!("expired_or_canceled_card")
            )],
            "{perm:?}: {o}"
        );
    }
    // Halfway through, the order did show the refund (the first ordering applies it before
    // the failure): the amount went down again, and the merchant heard of both.
    let failed = messages(&app, "refund.failed").await;
    assert_eq!(failed.len(), 24, "one refund.failed per refund");
    assert!(failed.iter().all(|m| m["data"]["object"]["failure_reason"]
        == json!("expired_or_canceled_card")
        && m["data"]["object"]["order_id"].is_string()));
    let refunded = messages(&app, "order.refunded").await;
    assert!(
        refunded.len() < 24 && !refunded.is_empty(),
        "order.refunded only where the refund was seen before it failed: {}",
        refunded.len()
    );
}

/// A partial refund, then the rest: `refund.created` of each, and a `charge.refunded` of an
/// older API version listing both, in every order, each twice: both refunds succeeded, 2500
/// refunded, the order `refunded`; the first alone leaves it `partially_refunded`.
async fn partial_then_full_refund_events_converge_in_every_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t0 = now_secs() - 1000;
    for (n, perm) in permutations(&[0usize, 1, 2]).into_iter().enumerate() {
        let (pi, ch) = (format!("pi_p{n}"), format!("ch_p{n}"));
        let (ra, rb) = (format!("re_a{n}"), format!("re_b{n}"));
        let order = paid_order(&app, &company, &pi, &ch).await;
        // Newer API versions send the refund's ids expanded or not: one of each here.
        let mut a = refund_object(&ra, "succeeded", 1000, &ch, Some(&pi));
        a["charge"] = json!({"id": ch, "object": "charge"});
        let b = refund_object(&rb, "succeeded", 1500, &ch, Some(&pi));
        let mut listed = charge(&ch, "succeeded", 2500, Some(&pi), None);
        listed["amount_refunded"] = json!(2500);
        listed["refunded"] = json!(true);
        listed["refunds"] =
            json!({"object": "list", "data": [a.clone(), b.clone()], "has_more": false});
        let events = [
            event_at("refund.created", a, t0),
            event_at("refund.created", b, t0 + 5),
            event_at("charge.refunded", listed, t0 + 5),
        ];
        for (k, &i) in perm.iter().enumerate() {
            deliver(&app, &company, &secret, &events[i]).await;
            deliver(&app, &company, &secret, &events[i]).await;
            app.drain().await;
            if k == 0 && i == 0 {
                let o = order_json(&app, &company, &order).await;
                assert_eq!(o["status"], json!("partially_refunded"), "{o}");
                assert_eq!(o["amount_refunded"], json!(1000), "{o}");
            }
        }
        let o = order_json(&app, &company, &order).await;
        assert_eq!(o["amount_refunded"], json!(2500), "{perm:?}: {o}");
        assert_eq!(o["status"], json!("refunded"), "{perm:?}: {o}");
        assert_eq!(
            refunds_of(&o),
            vec![
                (ra.clone(), "succeeded".into(), 1000, Value::Null),
                (rb.clone(), "succeeded".into(), 1500, Value::Null),
            ],
            "{perm:?}: {o}"
        );
    }
    // One order.refunded per refund, whatever the repeats.
    assert_eq!(messages(&app, "order.refunded").await.len(), 12);
}

/// A fake Stripe that makes a refund of whatever charge it is asked to refund.
async fn refunding_stripe() -> MockServer {
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
            let ch = get("charge").unwrap_or_else(|| "ch_unknown".into());
            let amount = get("amount")
                .and_then(|a| a.parse::<i64>().ok())
                .unwrap_or(2500);
            let mut r = refund_object(&format!("re_auto_{ch}"), "succeeded", amount, &ch, None);
            r["reason"] = json!(get("reason"));
            r["created"] = json!(now_secs());
            ResponseTemplate::new(200).set_body_json(r)
        })
        .mount(&stripe)
        .await;
    stripe
}

/// The refund requests Stripe received for charge `ch`.
async fn refund_requests(stripe: &MockServer, ch: &str) -> Vec<Request> {
    stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.url.path() == "/v1/refunds"
                && String::from_utf8_lossy(&r.body).contains(&format!("charge={ch}"))
        })
        .collect()
}

async fn set_auto_refund(app: &TestApp, company: &str, on: bool) {
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"auto_refund_fraud_warnings": on}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["auto_refund_fraud_warnings"], json!(on), "{b}");
}

/// An actionable warning, the setting on: one refund request reaches Stripe (reason
/// `fraudulent`, our own idempotency key) although the warning comes three times at once, its
/// update too, and a replay; the order shows the warning and the refund; the merchant is told
/// once. The setting off: none. A dispute on the charge: none.
async fn an_actionable_fraud_warning_refunds_once_only_when_asked_and_undisputed(backend: Backend) {
    let stripe = refunding_stripe().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    // Off by default.
    let (_, c) = app
        .admin_get(&format!("/admin/v1/companies/{company}"))
        .await;
    assert_eq!(c["auto_refund_fraud_warnings"], json!(false), "{c}");
    let t0 = now_secs() - 100;

    // Off: recorded and told, nothing refunded.
    let off = paid_order(&app, &company, "pi_off", "ch_off").await;
    let w = early_fraud_warning(
        "issfr_off",
        "ch_off",
        Some("pi_off"),
        "made_with_stolen_card",
        true,
    );
    deliver(
        &app,
        &company,
        &secret,
        &event_at("radar.early_fraud_warning.created", w, t0),
    )
    .await;
    app.drain().await;
    let o = order_json(&app, &company, &off).await;
    assert_eq!(
        o["fraud_warning"]["fraud_type"],
        json!("made_with_stolen_card"),
        "{o}"
    );
    assert_eq!(o["fraud_warning"]["actionable"], json!(true), "{o}");
    assert_eq!(o["status"], json!("paid"), "{o}");
    assert!(refund_requests(&stripe, "ch_off").await.is_empty());

    set_auto_refund(&app, &company, true).await;

    // On, a dispute on the charge: nothing refunded.
    let disputed = paid_order(&app, &company, "pi_dsp", "ch_dsp").await;
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "charge.dispute.created",
            dispute(
                "dp_1",
                "needs_response",
                "ch_dsp",
                "pi_dsp",
                2500,
                false,
                false,
            ),
            t0,
        ),
    )
    .await;
    app.drain().await;
    let w = early_fraud_warning("issfr_dsp", "ch_dsp", Some("pi_dsp"), "misc", true);
    deliver(
        &app,
        &company,
        &secret,
        &event_at("radar.early_fraud_warning.created", w, t0 + 1),
    )
    .await;
    app.drain().await;
    assert!(refund_requests(&stripe, "ch_dsp").await.is_empty());
    assert_eq!(
        order_json(&app, &company, &disputed).await["status"],
        json!("paid")
    );

    // On, not actionable: nothing refunded.
    paid_order(&app, &company, "pi_na", "ch_na").await;
    let w = early_fraud_warning("issfr_na", "ch_na", Some("pi_na"), "misc", false);
    deliver(
        &app,
        &company,
        &secret,
        &event_at("radar.early_fraud_warning.created", w, t0 + 1),
    )
    .await;
    app.drain().await;
    assert!(refund_requests(&stripe, "ch_na").await.is_empty());

    // On, actionable: three deliveries at once, then the update, then a replay of the first.
    let warned = paid_order(&app, &company, "pi_w", "ch_w").await;
    let created = event_at(
        "radar.early_fraud_warning.created",
        early_fraud_warning(
            "issfr_w",
            "ch_w",
            Some("pi_w"),
            "unauthorized_use_of_card",
            true,
        ),
        t0 + 2,
    );
    let updated = event_at(
        "radar.early_fraud_warning.updated",
        early_fraud_warning(
            "issfr_w",
            "ch_w",
            Some("pi_w"),
            "unauthorized_use_of_card",
            true,
        ),
        t0 + 3,
    );
    let (a, b, c) = tokio::join!(
        app.deliver(&company, &secret, &created),
        app.deliver(&company, &secret, &created),
        app.deliver(&company, &secret, &created),
    );
    assert!([a.0, b.0, c.0].iter().all(|s| *s == StatusCode::OK));
    deliver(&app, &company, &secret, &updated).await;
    app.drain().await;
    let (s, body) = app
        .admin_post(
            &format!(
                "/admin/v1/companies/{company}/events/{}/replay",
                created["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    app.drain().await;
    let reqs = refund_requests(&stripe, "ch_w").await;
    assert_eq!(reqs.len(), 1, "exactly one refund request");
    let form = String::from_utf8_lossy(&reqs[0].body).to_string();
    assert!(form.contains("reason=fraudulent"), "{form}");
    assert!(reqs[0].headers.get("idempotency-key").is_some());
    let o = order_json(&app, &company, &warned).await;
    assert_eq!(o["status"], json!("refunded"), "{o}");
    assert_eq!(o["amount_refunded"], json!(2500), "{o}");
    assert_eq!(o["refunds"][0]["reason"], json!("fraudulent"), "{o}");
    assert_eq!(
        o["fraud_warning"],
        json!({"id": "issfr_w", "fraud_type": "unauthorized_use_of_card", "actionable": true, "charge": "ch_w", "payment_intent": "pi_w", "livemode": false}),
        "{o}"
    );
    // Told once per warning (four warnings in all), and of the refund once.
    let told = messages(&app, "order.fraud_warning").await;
    assert_eq!(told.len(), 4, "{told:?}");
    assert!(
        told.iter()
            .any(|m| m["data"]["object"]["order_id"] == json!(warned))
    );
    let refunded: Vec<Value> = messages(&app, "order.refunded")
        .await
        .into_iter()
        .filter(|m| m["data"]["object"]["id"] == json!(warned))
        .collect();
    assert_eq!(refunded.len(), 1);
}

/// The refund's own idempotency (no HTTP layer in front): the same merchant key three times at
/// once sends Stripe one key and records one refund; once recorded, the same key answers it
/// without asking Stripe; another key is another refund.
async fn the_same_merchant_key_makes_one_refund_without_any_layer_in_front(backend: Backend) {
    use paygate_router::refunds::{RefundRequest, create_refund};
    let stripe = refunding_stripe().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&new_secret()).await;
    let order = paid_order(&app, &company, "pi_k", "ch_k").await;
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    let scope = paygate_db::Scope::of_livemode(pk, false);
    let ask = |key: &'static str| {
        let app = &app;
        let order = order.clone();
        async move {
            create_refund(
                &app.app.db,
                &app.app.tenants,
                &app.app.stripe,
                scope,
                RefundRequest {
                    order_id: &order,
                    amount: Some(500),
                    reason: None,
                    idempotency_key: Some(key),
                },
            )
            .await
            .unwrap()
        }
    };
    let (a, b, c) = tokio::join!(ask("k1"), ask("k1"), ask("k1"));
    assert!(
        a.0.stripe_refund_id == b.0.stripe_refund_id
            && b.0.stripe_refund_id == c.0.stripe_refund_id
    );
    let keys: std::collections::HashSet<String> = refund_requests(&stripe, "ch_k")
        .await
        .iter()
        .chain(
            stripe
                .received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.url.path() == "/v1/refunds"),
        )
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let sent = stripe.received_requests().await.unwrap().len();
    let (again, made) = ask("k1").await;
    assert!(!made);
    assert_eq!(again.stripe_refund_id, a.0.stripe_refund_id);
    assert_eq!(
        stripe.received_requests().await.unwrap().len(),
        sent,
        "Stripe not asked again"
    );
    let o = order_json(&app, &company, &order).await;
    assert_eq!(o["refunds"].as_array().unwrap().len(), 1, "{o}");
    assert_eq!(o["amount_refunded"], json!(500), "{o}");
    assert_eq!(o["status"], json!("partially_refunded"), "{o}");
}

/// A refund handled before the Checkout order knew its payment: the order takes it when the
/// session links them (and is announced then), the fulfillment still happens behind the refund
/// status, and when the refund fails the order is back to `fulfilled`.
async fn a_refund_seen_before_the_order_knew_its_payment_still_counts(backend: Backend) {
    let stripe = MockServer::start().await;
    paygate_testkit::checkout_objects::FakeCheckout::new("paid", 1, 10)
        .mount(&stripe)
        .await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let pi = "pi_for_cs_test_rfirst";
    let t0 = now_secs() - 100;
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "refund.created",
            refund_object("re_early", "succeeded", 400, "ch_rfirst", Some(pi)),
            t0,
        ),
    )
    .await;
    app.drain().await;
    assert!(messages(&app, "order.refunded").await.is_empty());
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "checkout.session.completed",
            paygate_testkit::objects::checkout_session("cs_test_rfirst", "paid", 7000),
            t0 + 1,
        ),
    )
    .await;
    app.drain().await;
    let (s, cs) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/checkout-sessions/cs_test_rfirst"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{cs}");
    let order = cs["order"]["id"].as_str().unwrap().to_owned();
    let o = order_json(&app, &company, &order).await;
    assert_eq!(o["status"], json!("partially_refunded"), "{o}");
    assert_eq!(o["amount_refunded"], json!(400), "{o}");
    assert!(
        o["fulfilled_at"].is_string(),
        "fulfilled behind the refund: {o}"
    );
    let told = messages(&app, "order.refunded").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["data"]["object"]["id"], json!(order));
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "refund.failed",
            refund_object("re_early", "failed", 400, "ch_rfirst", Some(pi)),
            t0 + 2,
        ),
    )
    .await;
    app.drain().await;
    let o = order_json(&app, &company, &order).await;
    assert_eq!(o["status"], json!("fulfilled"), "{o}");
    assert_eq!(o["amount_refunded"], json!(0), "{o}");
    assert_eq!(messages(&app, "refund.failed").await.len(), 1);
}

db_tests!(
    a_refund_seen_before_the_order_knew_its_payment_still_counts,
    the_same_merchant_key_makes_one_refund_without_any_layer_in_front,
    a_refund_failing_after_success_gives_the_amount_back_in_every_order,
    partial_then_full_refund_events_converge_in_every_order,
    an_actionable_fraud_warning_refunds_once_only_when_asked_and_undisputed,
);
