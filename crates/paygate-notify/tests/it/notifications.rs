//! Notifications to the merchant's systems (issue 5), over real HTTP on both databases: every
//! message verified by an independent Standard Webhooks implementation (the `standardwebhooks`
//! crate); retries on a compressed schedule; a receiver that comes back; failure then replay;
//! exactly one `order.fulfilled` under concurrent deliveries and landing pages; the outbox
//! rolling back with a failed handler; private addresses refused at creation and at delivery;
//! shopper e-mails through a real SMTP sink.

use std::time::Duration;

use futures_util::future::join_all;
use paygate_db::entities::notification_endpoint;
use paygate_testkit::checkout_objects::FakeCheckout;
use paygate_testkit::objects::{checkout_session, dispute, event_at, payment_intent};
use paygate_testkit::receivers::{Receiver, SmtpSink};
use paygate_testkit::{
    Backend, Options, TestApp, db_tests, event, new_secret, now_secs, unique, without_object_field,
};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::{Value, json};
use wiremock::MockServer;

/// An app whose notifications may reach loopback (the receivers): retries after 20 ms and
/// 40 ms (`fast`), or over a few seconds (`slow`).
async fn start(backend: Backend, schedule: &'static str) -> TestApp {
    start_with(backend, schedule, None, None).await
}

async fn start_with(
    backend: Backend,
    schedule: &'static str,
    stripe: Option<String>,
    smtp: Option<String>,
) -> TestApp {
    let mut opts = Options::new(backend);
    opts.stripe_api_base = stripe;
    opts.smtp_url = smtp;
    opts.adjust = if schedule == "slow" {
        |s| {
            s.outbound_allow_private = true;
            s.notify_retry_schedule = "100ms,200ms,300ms,400ms,500ms,600ms,700ms,800ms".into();
        }
    } else {
        |s| {
            s.outbound_allow_private = true;
            s.notify_retry_schedule = "20ms,40ms".into();
            s.smtp_from = "orders@paygate.test".into();
        }
    };
    TestApp::start(opts).await
}

/// As [`start`] with the fast schedule, but the workers apply every event
/// (`PAYGATE_APPLY_AT_INTAKE=false`): for the tests of the workers' own batches, which the
/// intake would otherwise leave with nothing of a payment intent's to apply.
async fn start_workers_only(backend: Backend) -> TestApp {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.outbound_allow_private = true;
        s.notify_retry_schedule = "20ms,40ms".into();
        s.smtp_from = "orders@paygate.test".into();
        s.apply_at_intake = false;
    };
    TestApp::start(opts).await
}

async fn put(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    app.admin(reqwest::Method::PUT, path, Some(body)).await
}

async fn endpoint(app: &TestApp, company: &str, url: &str, types: Value) -> Value {
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": url, "description": "shop backend", "event_types": types}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

/// Verifies a received request with the `standardwebhooks` crate; returns its body as JSON.
fn verified(secret: &str, req: &wiremock::Request) -> Value {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    let mut headers = http::HeaderMap::new();
    for (k, v) in req.headers.iter() {
        headers.insert(
            http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    wh.verify(&req.body, &headers)
        .unwrap_or_else(|e| panic!("standardwebhooks refused the message: {e:?}"));
    serde_json::from_slice(&req.body).unwrap()
}

async fn deliver(app: &TestApp, company: &str, secret: &str, ev: &Value) {
    let (s, b) = app.deliver(company, secret, ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// Payments of 1.00 succeed through the intake, and the workers handle them.
async fn pay(app: &TestApp, company: &str, secret: &str, ids: &[&str]) {
    for pi in ids {
        deliver(
            app,
            company,
            secret,
            &event(
                "payment_intent.succeeded",
                payment_intent(pi, "succeeded", 100),
            ),
        )
        .await;
    }
    app.drain().await;
}

async fn messages(app: &TestApp, company: &str, t: &str) -> Vec<Value> {
    let (s, b) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-messages?type={t}&limit=200"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["data"].as_array().unwrap().clone()
}

async fn message(app: &TestApp, company: &str, id: &str) -> Value {
    let (s, b) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-messages/{id}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// Every message is signed so an independent Standard Webhooks implementation accepts it, with
/// a stable `webhook-id`; the secret is shown once; while it rotates, both secrets verify.
async fn messages_verify_with_standard_webhooks(backend: Backend) {
    let app = start(backend, "fast").await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = Receiver::start(&[]).await;
    let ep = endpoint(&app, &company, &rx.url(), json!([])).await;
    let ep_id = ep["id"].as_str().unwrap();
    let whsec = ep["secret"].as_str().unwrap().to_owned();
    assert!(whsec.starts_with("whsec_"), "{ep}");
    // Shown once: masked afterwards, on every read.
    let (_, again) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints/{ep_id}"
        ))
        .await;
    assert_ne!(again["secret"], ep["secret"]);
    assert!(!again.to_string().contains(&whsec[8..]), "{again}");

    // A test message, and a real one from a Stripe event.
    let (s, t) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints/{ep_id}/test"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{t}");
    deliver(
        &app,
        &company,
        &secret,
        &event(
            "payment_intent.succeeded",
            payment_intent("pi_n1", "succeeded", 1999),
        ),
    )
    .await;
    app.drain().await;
    app.drain_notifications().await;
    let reqs = rx.requests().await;
    assert_eq!(reqs.len(), 2);
    // Delivered concurrently: in no particular order.
    let mut bodies: Vec<(Value, &wiremock::Request)> =
        reqs.iter().map(|r| (verified(&whsec, r), r)).collect();
    bodies.sort_by_key(|(b, _)| b["type"] != "ping");
    assert_eq!(bodies[0].0["type"], "ping");
    assert_eq!(bodies[0].0["id"], t["message_id"]);
    let (paid, paid_req) = (&bodies[1].0, bodies[1].1);
    assert_eq!(paid["type"], "payment.succeeded");
    assert_eq!(paid["company_id"], company.as_str());
    assert_eq!(paid["version"], 1);
    assert_eq!(paid["livemode"], false);
    assert_eq!(paid["data"]["object"]["id"], "pi_n1");
    assert_eq!(paid["data"]["object"]["amount_received"], 1999);
    assert_eq!(
        paid_req
            .headers
            .get("webhook-id")
            .unwrap()
            .to_str()
            .unwrap(),
        paid["id"].as_str().unwrap()
    );
    // A wrong secret does not verify.
    let other = standardwebhooks::Webhook::new(&ep_secret_other()).unwrap();
    let mut h = http::HeaderMap::new();
    for (k, v) in paid_req.headers.iter() {
        h.insert(
            http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    assert!(other.verify(&paid_req.body, &h).is_err());

    // Rotation: the new secret is shown once; old and new both verify during the grace period.
    let (s, rotated) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints/{ep_id}/rotate-secret"),
            json!({"grace_secs": 3600}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new_secret_str = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret_str, whsec);
    app.admin_post(
        &format!("/admin/v1/companies/{company}/notification-endpoints/{ep_id}/test"),
        json!({}),
    )
    .await;
    app.drain_notifications().await;
    let reqs = rx.requests().await;
    let last = reqs.last().unwrap();
    let sig = last
        .headers
        .get("webhook-signature")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    verified(&whsec, last);
    verified(&new_secret_str, last);
}

fn ep_secret_other() -> String {
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()
}

/// 500, 500, then 200: delivered on the third attempt, three attempts recorded with their
/// status codes and the first bytes of each answer.
async fn failed_attempts_are_retried_and_recorded(backend: Backend) {
    let app = start(backend, "fast").await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = Receiver::start(&[500, 500]).await;
    let ep = endpoint(&app, &company, &rx.url(), json!(["payment.succeeded"])).await;
    let whsec = ep["secret"].as_str().unwrap();
    deliver(
        &app,
        &company,
        &secret,
        &event(
            "payment_intent.succeeded",
            payment_intent("pi_r1", "succeeded", 500),
        ),
    )
    .await;
    app.drain().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rx.requests().await.len() < 3 && tokio::time::Instant::now() < deadline {
        app.drain_notifications().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reqs = rx.requests().await;
    assert_eq!(reqs.len(), 3);
    let ids: Vec<&str> = reqs
        .iter()
        .map(|r| r.headers.get("webhook-id").unwrap().to_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one webhook-id across retries"
    );
    for r in &reqs {
        verified(whsec, r);
    }
    let list = messages(&app, &company, "payment.succeeded").await;
    assert_eq!(list.len(), 1);
    let m = message(&app, &company, list[0]["id"].as_str().unwrap()).await;
    let d = &m["deliveries"][0];
    assert_eq!(d["status"], "succeeded", "{m}");
    assert_eq!(d["attempts"], 3);
    let log = d["attempt_log"].as_array().unwrap();
    let codes: Vec<i64> = log
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);
    assert_eq!(log[0]["response_body"], "answer 0: 500");
    assert!(log[0]["error"].as_str().unwrap().contains("500"));
    assert!(log.iter().all(|a| a["duration_ms"].as_i64().unwrap() >= 0));
}

/// A receiver that is down gets the message once it is back, on the same address.
async fn a_receiver_that_comes_back_gets_the_message(backend: Backend) {
    let app = start(backend, "slow").await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    // An address nobody listens on (for now).
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let ep = endpoint(
        &app,
        &company,
        &format!("http://{addr}/hooks/paygate"),
        json!([]),
    )
    .await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let workers = app.app.delivery.spawn(cancel.clone());
    deliver(
        &app,
        &company,
        &secret,
        &event(
            "payment_intent.succeeded",
            payment_intent("pi_down", "succeeded", 700),
        ),
    )
    .await;
    app.drain().await;
    // Let it fail at least once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = messages(&app, &company, "payment.succeeded").await;
        if m.first()
            .is_some_and(|m| m["deliveries"][0]["attempts"].as_i64() >= Some(1))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt was made"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rx = Receiver::start_on(std::net::TcpListener::bind(addr).unwrap(), &[]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while rx.requests().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    workers.await.unwrap();
    let body = verified(ep["secret"].as_str().unwrap(), &rx.requests().await[0]);
    assert_eq!(body["data"]["object"]["id"], "pi_down");
    let m = &messages(&app, &company, "payment.succeeded").await[0];
    assert_eq!(m["deliveries"][0]["status"], "succeeded");
    assert!(m["deliveries"][0]["attempts"].as_i64().unwrap() >= 2);
}

/// Always failing: marked failed once the schedule is used up; fixed, then replayed (one
/// message, and every failed message of the endpoint since a time) it is delivered.
async fn always_failing_is_marked_failed_then_replayed(backend: Backend) {
    let app = start(backend, "fast").await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    // Two messages, three attempts each: six failures, then the receiver is fixed.
    let rx = Receiver::start(&[503; 6]).await;
    let ep = endpoint(&app, &company, &rx.url(), json!([])).await;
    let ep_id = ep["id"].as_str().unwrap();
    pay(&app, &company, &secret, &["pi_f1", "pi_f2"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        app.drain_notifications().await;
        let m = messages(&app, &company, "payment.succeeded").await;
        if m.len() == 2 && m.iter().all(|m| m["deliveries"][0]["status"] == "failed") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not failed: {m:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 2 messages × 3 attempts... the receiver's script is shared, so count attempts instead.
    let m = messages(&app, &company, "payment.succeeded").await;
    let total: i64 = m
        .iter()
        .map(|m| m["deliveries"][0]["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 6, "three attempts each");
    let before = rx.requests().await.len();
    // Replay one message.
    let (s, r) = app
        .admin_post(
            &format!(
                "/admin/v1/companies/{company}/notification-messages/{}/replay",
                m[0]["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["replayed"], 1);
    app.drain_notifications().await;
    assert_eq!(rx.requests().await.len(), before + 1);
    // Replay every failed message of the endpoint since an hour ago: the other one.
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let (s, r) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints/{ep_id}/replay"),
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["replayed"], 1);
    app.drain_notifications().await;
    let m = messages(&app, &company, "payment.succeeded").await;
    assert!(
        m.iter()
            .all(|m| m["deliveries"][0]["status"] == "succeeded"),
        "{m:?}"
    );
    // A bad `since` changes nothing.
    let (s, r) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints/{ep_id}/replay"),
            json!({"since": "yesterday"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r["error"]["field"], "since");
}

/// `checkout.session.completed` five times at once, plus shoppers' landing pages: exactly one
/// `order.fulfilled` reaches the receiver.
async fn concurrent_fulfillment_sends_one_order_fulfilled(backend: Backend) {
    let stripe = MockServer::start().await;
    FakeCheckout::new("paid", 2, 2).mount(&stripe).await;
    let app = start_with(backend, "fast", Some(stripe.uri()), None).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = Receiver::start(&[]).await;
    let ep = endpoint(&app, &company, &rx.url(), json!(["order.fulfilled"])).await;
    let completed = event(
        "checkout.session.completed",
        checkout_session("cs_test_notify", "paid", 2000),
    );
    let landing = (0..20).map(|_| {
        let req = app.client.get(app.url(&format!(
            "/checkout/{company}/return?session_id=cs_test_notify"
        )));
        async move { req.send().await.map(|r| r.status()) }
    });
    let deliveries = (0..5).map(|_| app.deliver(&company, &secret, &completed));
    let (landing, deliveries, _) = tokio::join!(
        join_all(landing),
        join_all(deliveries),
        app.app.worker.drain()
    );
    assert!(deliveries.iter().all(|(s, _)| *s == StatusCode::OK));
    assert!(landing.iter().all(|r| matches!(r, Ok(StatusCode::OK))));
    app.drain().await;
    // And the event once more, replayed by an operator.
    let (s, _) = app
        .admin_post(
            &format!(
                "/admin/v1/companies/{company}/events/{}/replay",
                completed["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    app.drain().await;
    app.drain_notifications().await;
    let reqs = rx.requests().await;
    assert_eq!(reqs.len(), 1, "exactly one order.fulfilled");
    let body = verified(ep["secret"].as_str().unwrap(), &reqs[0]);
    assert_eq!(body["type"], "order.fulfilled");
    assert_eq!(body["data"]["object"]["status"], "fulfilled");
    assert_eq!(
        body["data"]["object"]["checkout_session_id"],
        "cs_test_notify"
    );
    assert_eq!(body["data"]["object"]["amount"], 2000);
}

/// A handler that fails after writing its change leaves neither the change nor a message; once
/// it succeeds, both are there, once.
async fn a_failed_handler_leaves_no_change_and_no_message(backend: Backend) {
    let app = start(backend, "fast").await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = Receiver::start(&[]).await;
    endpoint(&app, &company, &rx.url(), json!([])).await;
    // Make the outbox refuse writes: the dispute handler writes the dispute, then fails writing
    // its message.
    let db = &app.app.db;
    let pg = db.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    if pg {
        db.execute_unprepared(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse_messages BEFORE INSERT ON notification_messages FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .unwrap();
    } else {
        db.execute_unprepared(
            "CREATE TRIGGER refuse_messages BEFORE INSERT ON notification_messages BEGIN SELECT RAISE(ABORT, 'outbox refused'); END;",
        )
        .await
        .unwrap();
    }
    let opened = event(
        "charge.dispute.created",
        dispute(
            "dp_fail",
            "needs_response",
            "ch_1",
            "pi_1",
            1000,
            false,
            false,
        ),
    );
    deliver(&app, &company, &secret, &opened).await;
    app.drain().await;
    let (s, _) = app
        .admin_get(&format!("/admin/v1/companies/{company}/disputes/dp_fail"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the dispute was rolled back");
    assert!(messages(&app, &company, "dispute.opened").await.is_empty());
    let (_, ev) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/events/{}",
            opened["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ev["status"], "pending", "{ev}");
    assert!(ev["last_error"].as_str().is_some(), "{ev}");

    // The outbox works again: the retry writes both, once.
    let drop = if pg {
        "DROP TRIGGER refuse_messages ON notification_messages"
    } else {
        "DROP TRIGGER refuse_messages"
    };
    db.execute_unprepared(drop).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        app.drain().await;
        let (s, _) = app
            .admin_get(&format!("/admin/v1/companies/{company}/disputes/dp_fail"))
            .await;
        if s == StatusCode::OK {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never retried");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    deliver(&app, &company, &secret, &opened).await;
    app.drain().await;
    assert_eq!(messages(&app, &company, "dispute.opened").await.len(), 1);
}

/// One domain change, one message: a dispute's events each delivered twice and then replayed
/// give one message per change.
async fn one_change_one_message_across_repeats_and_replays(backend: Backend) {
    let app = start(backend, "fast").await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = Receiver::start(&[]).await;
    endpoint(&app, &company, &rx.url(), json!([])).await;
    let t = now_secs();
    let evs = [
        event_at(
            "charge.dispute.created",
            dispute(
                "dp_once",
                "needs_response",
                "ch_o",
                "pi_o",
                900,
                false,
                false,
            ),
            t,
        ),
        event_at(
            "charge.dispute.funds_withdrawn",
            dispute(
                "dp_once",
                "needs_response",
                "ch_o",
                "pi_o",
                900,
                true,
                false,
            ),
            t + 1,
        ),
        event_at(
            "charge.dispute.closed",
            dispute("dp_once", "lost", "ch_o", "pi_o", 900, true, false),
            t + 2,
        ),
    ];
    for ev in evs.iter().chain(evs.iter()) {
        deliver(&app, &company, &secret, ev).await;
    }
    app.drain().await;
    for ev in &evs {
        app.admin_post(
            &format!(
                "/admin/v1/companies/{company}/events/{}/replay",
                ev["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    }
    app.drain().await;
    app.drain_notifications().await;
    let all = messages(&app, &company, "").await;
    let _ = all;
    for t in [
        "dispute.opened",
        "dispute.funds_withdrawn",
        "dispute.closed",
    ] {
        assert_eq!(messages(&app, &company, t).await.len(), 1, "{t}");
    }
    let got: Vec<String> = rx
        .requests()
        .await
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    let closed = &messages(&app, &company, "dispute.closed").await[0];
    assert_eq!(closed["payload"]["data"]["object"]["status"], "lost");
    assert_eq!(closed["payload"]["data"]["object"]["funds_withdrawn"], 900);
}

/// A private address is refused when the endpoint is saved, and at delivery time when its name
/// resolves to one later (an endpoint row as a DNS change would leave it).
async fn private_addresses_are_refused_when_saved_and_when_delivering(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.notify_retry_schedule = "20ms".into();
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = Receiver::start(&[]).await;
    for url in [
        rx.url(),
        "http://localhost:9/x".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]/x".to_owned(),
        "http://10.0.0.8/hook".to_owned(),
    ] {
        let (s, b) = app
            .admin_post(
                &format!("/admin/v1/companies/{company}/notification-endpoints"),
                json!({"url": url}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {b}");
        assert_eq!(b["error"]["field"], "url");
    }
    // Each refusal says which rule refused it: a name that does not resolve is not called
    // private (`.invalid` never resolves).
    for (url, code) in [
        ("https://no-such-host.invalid/hook", "host_unresolvable"),
        ("http://10.0.0.8/hook", "private_address"),
        ("ftp://example.com/hook", "invalid_parameter"),
    ] {
        let (s, b) = app
            .admin_post(
                &format!("/admin/v1/companies/{company}/notification-endpoints"),
                json!({"url": url}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {b}");
        assert_eq!(b["error"]["code"], code, "{url}: {b}");
        assert_eq!(b["error"]["field"], "url");
    }
    let (_, list) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints"
        ))
        .await;
    assert_eq!(list["data"], json!([]));
    // Unknown event types are refused too, naming the field.
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": "https://example.com/hook", "event_types": ["order.teleported"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["field"], "event_types");

    // Saved while it resolved to a public address; now it resolves to loopback.
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    let port = rx.server.address().port();
    for (id, url) in [
        (
            "ne_dns_name",
            format!("http://localhost:{port}/hooks/paygate"),
        ),
        (
            "ne_dns_literal",
            format!("http://127.0.0.1:{port}/hooks/paygate"),
        ),
    ] {
        let now = paygate_db::now_ms();
        notification_endpoint::ActiveModel {
            id: Set(id.into()),
            company_pk: Set(pk),
            url: Set(url),
            description: Set(None),
            event_types: Set("[]".into()),
            enabled: Set(true),
            disabled_reason: Set(None),
            failing_since: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&app.app.db)
        .await
        .unwrap();
        // It needs a secret to sign with: rotating makes one.
        let (s, b) = app
            .admin_post(
                &format!("/admin/v1/companies/{company}/notification-endpoints/{id}/rotate-secret"),
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        app.admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints/{id}/test"),
            json!({}),
        )
        .await;
    }
    app.drain_notifications().await;
    assert!(
        rx.requests().await.is_empty(),
        "nothing reached the private address"
    );
    let pings = messages(&app, &company, "ping").await;
    assert_eq!(pings.len(), 2);
    for p in &pings {
        let m = message(&app, &company, p["id"].as_str().unwrap()).await;
        let err = m["deliveries"][0]["attempt_log"][0]["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            err.contains("private") || err.contains("public address"),
            "{err}"
        );
    }
}

/// A shopper whose payment was pending gets an e-mail in their language when it completes,
/// once, when the company asked for e-mails; through a real SMTP sink.
async fn shoppers_are_emailed_in_their_language_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let stripe = MockServer::start().await;
    let mut unpaid = checkout_session("cs_test_mail", "unpaid", 1999);
    unpaid["locale"] = json!("it");
    let mut paid_at_stripe = unpaid.clone();
    paid_at_stripe["payment_status"] = json!("paid");
    FakeCheckout::new("paid", 1, 1)
        .with_session(paid_at_stripe)
        .mount(&stripe)
        .await;
    let app = start_with(backend, "fast", Some(stripe.uri()), Some(sink.url())).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let (s, b) = put(
        &app,
        &format!("/admin/v1/companies/{company}/notification-settings"),
        json!({"shopper_emails": true, "sender_name": "Bottega Rossi"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    deliver(
        &app,
        &company,
        &secret,
        &event("checkout.session.completed", unpaid.clone()),
    )
    .await;
    app.drain().await;
    app.drain_notifications().await;
    assert!(
        sink.mails().is_empty(),
        "nothing to say while the payment is pending"
    );
    let mut paid = unpaid.clone();
    paid["payment_status"] = json!("paid");
    let succeeded = event("checkout.session.async_payment_succeeded", paid);
    deliver(&app, &company, &secret, &succeeded).await;
    deliver(&app, &company, &secret, &succeeded).await;
    app.drain().await;
    app.drain_notifications().await;
    app.drain_notifications().await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, ["shopper@example.com"]);
    assert_eq!(mails[0].from, "orders@paygate.test");
    assert!(mails[0].data.contains("Bottega Rossi"), "{}", mails[0].data);
    assert!(mails[0].data.contains("19,99 EUR"), "{}", mails[0].data);
    assert!(
        mails[0].data.contains("Subject: Pagamento ricevuto"),
        "{}",
        mails[0].data
    );
}

/// Issue 20: a failed payment's e-mail invites the shopper back to pay again. An order Paygate
/// learnt of from Stripe alone has no link back to the shop, so the mail names none (the link
/// to the session's `cancel_url` is asserted in the back office's shopper tests).
async fn a_failed_payments_email_invites_the_shopper_to_pay_again(backend: Backend) {
    let sink = SmtpSink::start().await;
    let stripe = MockServer::start().await;
    let mut unpaid = checkout_session("cs_test_mail_failed", "unpaid", 1999);
    unpaid["locale"] = json!("en");
    FakeCheckout::new("unpaid", 1, 1)
        .with_session(unpaid.clone())
        .mount(&stripe)
        .await;
    let app = start_with(backend, "fast", Some(stripe.uri()), Some(sink.url())).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let (s, b) = put(
        &app,
        &format!("/admin/v1/companies/{company}/notification-settings"),
        json!({"shopper_emails": true, "sender_name": "Corner Shop"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    deliver(
        &app,
        &company,
        &secret,
        &event("checkout.session.completed", unpaid.clone()),
    )
    .await;
    let failed = event("checkout.session.async_payment_failed", unpaid);
    deliver(&app, &company, &secret, &failed).await;
    app.drain().await;
    app.drain_notifications().await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    // The text as sent (quoted-printable soft breaks undone).
    let text = mails[0].data.replace("=\r\n", "").replace("=3D", "=");
    assert!(text.contains("Subject: Payment failed"), "{text}");
    assert!(
        text.contains(
            "No money was taken for this order. You can go back to the shop and pay again."
        ),
        "{text}"
    );
    assert!(
        !text.contains("To pay again:"),
        "no link without one: {text}"
    );
}

/// An e-mail's text as sent: quoted-printable undone (soft breaks, `=XX` bytes), so accented
/// words read as written.
fn mail_text(data: &str) -> String {
    let mut out = Vec::new();
    let b = data.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && b[i + 1..].starts_with(b"\r\n") {
            i += 3;
        } else if b[i] == b'='
            && let Some(v) = data
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Shopper e-mails on, signed with `sender`.
async fn shopper_emails_on(app: &TestApp, company: &str, sender: &str) {
    let (s, b) = put(
        app,
        &format!("/admin/v1/companies/{company}/notification-settings"),
        json!({"shopper_emails": true, "sender_name": sender}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// The order of Checkout Session `session` in the company's `livemode`.
async fn order_of(
    app: &TestApp,
    company: &str,
    livemode: bool,
    session: &str,
) -> paygate_db::entities::order::Model {
    use paygate_db::entities::order;
    use sea_orm::{ColumnTrait, QueryFilter};
    let c = app.app.tenants.company(company).await.unwrap();
    paygate_db::Scope::of_livemode(c.id, livemode)
        .orders()
        .filter(order::Column::CheckoutSessionId.eq(session))
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no order for {session}"))
}

/// A Checkout Session that expired unpaid.
fn expired_session(id: &str, amount: i64) -> Value {
    let mut s = checkout_session(id, "unpaid", amount);
    s["status"] = json!("expired");
    s
}

/// Issue 20: an expired checkout e-mails its shopper once, in the order's language, with the
/// amount, the reference, the shop's name and the way back to pay again (the session's
/// `cancel_url`, kept on the order when the merchant made the session through Paygate), however
/// often Stripe delivers the expiry, and whether or not it also tells of the expired session's
/// cancelled payment intent. The merchant's `order.expired` is written once too.
async fn an_expired_checkout_invites_the_shopper_back_to_pay_once(backend: Backend) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    const CANCEL: &str = "https://shop.example/cart?again=1";
    let sink = SmtpSink::start().await;
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_expiring", "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_expiring",
            "payment_status": "unpaid", "status": "open", "amount_total": 2000,
            "currency": "eur", "livemode": false, "mode": "payment", "metadata": {}
        })))
        .mount(&stripe)
        .await;
    let app = start_with(backend, "fast", Some(stripe.uri()), Some(sink.url())).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    shopper_emails_on(&app, &company, "Bottega Rossi").await;
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"stripe_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, k) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/api-keys"),
            json!({"name": "shop backend"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let (s, created) = app
        .send(
            app.client
                .post(app.url("/api/v1/checkout-sessions"))
                .bearer_auth(k["key"].as_str().unwrap())
                .json(&json!({
                    "line_items": [{"price_data": {"currency": "eur", "unit_amount": 2000,
                                    "product_data": {"name": "Tazza"}}, "quantity": 1}],
                    "customer_email": "shopper@example.com", "locale": "it",
                    "return_url": "https://shop.example/thanks", "cancel_url": CANCEL,
                })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let expired = event(
        "checkout.session.expired",
        expired_session("cs_test_expiring", 2000),
    );
    // Stripe redelivers the event; it also cancels the session's payment intent.
    deliver(&app, &company, &secret, &expired).await;
    deliver(&app, &company, &secret, &expired).await;
    deliver(
        &app,
        &company,
        &secret,
        &event(
            "payment_intent.canceled",
            payment_intent("pi_for_cs_test_expiring", "canceled", 2000),
        ),
    )
    .await;
    app.drain().await;
    app.drain_notifications().await;
    // Once more after the e-mail went.
    deliver(&app, &company, &secret, &expired).await;
    app.drain().await;
    app.drain_notifications().await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, ["shopper@example.com"]);
    let text = mail_text(&mails[0].data);
    assert!(
        text.contains("Subject: Pagamento scaduto: ordine cart_42"),
        "{text}"
    );
    for words in [
        "il pagamento di 20,00 EUR per l'ordine cart_42 è scaduto",
        "Per questo ordine non è stato addebitato nulla. Puoi tornare al negozio e pagare di nuovo.",
        &format!("Per pagare di nuovo: {CANCEL}"),
        "Bottega Rossi",
    ] {
        assert!(text.contains(words), "{words:?} in {text}");
    }
    let o = order_of(&app, &company, false, "cs_test_expiring").await;
    assert_eq!(
        (o.id.as_str(), o.status.as_str()),
        (created["order_id"].as_str().unwrap(), "expired")
    );
    assert_eq!(messages(&app, &company, "order.expired").await.len(), 1);
    assert!(messages(&app, &company, "order.canceled").await.is_empty());
}

/// Issue 20: a payment intent cancelled after its Checkout Session completed (an authorization
/// voided, a delayed payment cancelled) cancels the order awaiting it, and its shopper is
/// e-mailed once, in the order's language, whichever of the two events comes first and however
/// often each is delivered. An order Paygate learnt of from Stripe alone has no link back to the
/// shop: the e-mail invites the shopper back without one.
async fn a_cancelled_payment_invites_the_shopper_back_to_pay_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let stripe = MockServer::start().await;
    let session = |id: &str, reference: &str| {
        let mut s = checkout_session(id, "unpaid", 4550);
        s["locale"] = json!("de");
        s["client_reference_id"] = json!(reference);
        s
    };
    let (first, second) = (
        session("cs_test_cancel_after", "cart_after"),
        session("cs_test_cancel_before", "cart_before"),
    );
    FakeCheckout::new("unpaid", 1, 1)
        .with_session(first.clone())
        .with_session(second.clone())
        .mount(&stripe)
        .await;
    let app = start_with(backend, "fast", Some(stripe.uri()), Some(sink.url())).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    shopper_emails_on(&app, &company, "Eckladen").await;
    let canceled = |pi: &str| {
        let mut p = payment_intent(pi, "canceled", 4550);
        p["cancellation_reason"] = json!("requested_by_customer");
        event("payment_intent.canceled", p)
    };
    // The session completes (a delayed payment), then its payment intent is cancelled, twice.
    deliver(
        &app,
        &company,
        &secret,
        &event("checkout.session.completed", first),
    )
    .await;
    app.drain().await;
    let cancel = canceled("pi_for_cs_test_cancel_after");
    deliver(&app, &company, &secret, &cancel).await;
    deliver(&app, &company, &secret, &cancel).await;
    app.drain().await;
    // The cancellation comes before the completed session.
    deliver(
        &app,
        &company,
        &secret,
        &canceled("pi_for_cs_test_cancel_before"),
    )
    .await;
    app.drain().await;
    let completed = event("checkout.session.completed", second);
    deliver(&app, &company, &secret, &completed).await;
    deliver(&app, &company, &secret, &completed).await;
    app.drain().await;
    app.drain_notifications().await;
    deliver(&app, &company, &secret, &cancel).await;
    app.drain().await;
    app.drain_notifications().await;
    let mut texts: Vec<String> = sink.mails().iter().map(|m| mail_text(&m.data)).collect();
    texts.sort_by_key(|t| t.contains("cart_before"));
    assert_eq!(texts.len(), 2, "{texts:#?}");
    for (text, reference) in texts.iter().zip(["cart_after", "cart_before"]) {
        for words in [
            format!("Subject: Zahlung nicht abgeschlossen: Bestellung {reference}"),
            format!(
                "Ihre Zahlung über 45,50 EUR für die Bestellung {reference} ist nicht zustande gekommen"
            ),
            "Für diese Bestellung wurde nichts abgebucht.".to_owned(),
            "Eckladen".to_owned(),
        ] {
            assert!(text.contains(&words), "{words:?} in {text}");
        }
        assert!(
            !text.contains("Zum erneuten Bezahlen:"),
            "no link without one: {text}"
        );
    }
    for cs in ["cs_test_cancel_after", "cs_test_cancel_before"] {
        assert_eq!(order_of(&app, &company, false, cs).await.status, "canceled");
    }
    assert_eq!(messages(&app, &company, "order.canceled").await.len(), 2);
}

/// Issue 20: an order once paid is never invited to pay again: a later expiry or cancellation
/// (out of order, or made up) moves nothing and e-mails no one.
async fn a_paid_order_is_never_invited_to_pay_again(backend: Backend) {
    let sink = SmtpSink::start().await;
    let stripe = MockServer::start().await;
    let mut paid = checkout_session("cs_test_paid_then", "paid", 1999);
    paid["locale"] = json!("en");
    FakeCheckout::new("paid", 1, 1)
        .with_session(paid.clone())
        .mount(&stripe)
        .await;
    let app = start_with(backend, "fast", Some(stripe.uri()), Some(sink.url())).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    shopper_emails_on(&app, &company, "Corner Shop").await;
    deliver(
        &app,
        &company,
        &secret,
        &event("checkout.session.completed", paid),
    )
    .await;
    app.drain().await;
    let before = order_of(&app, &company, false, "cs_test_paid_then").await;
    assert!(
        ["paid", "fulfilled"].contains(&before.status.as_str()),
        "{before:?}"
    );
    for ev in [
        event(
            "checkout.session.expired",
            expired_session("cs_test_paid_then", 1999),
        ),
        event(
            "payment_intent.canceled",
            payment_intent("pi_for_cs_test_paid_then", "canceled", 1999),
        ),
    ] {
        deliver(&app, &company, &secret, &ev).await;
    }
    app.drain().await;
    app.drain_notifications().await;
    assert!(sink.mails().is_empty(), "{:?}", sink.mails());
    let after = order_of(&app, &company, false, "cs_test_paid_then").await;
    assert_eq!(after.status, before.status);
    for t in ["order.expired", "order.canceled"] {
        assert!(messages(&app, &company, t).await.is_empty(), "{t}");
    }
}

/// Issue 20: test and live never mix. A test-mode cancellation naming the payment intent of a
/// live order (signed with the test secret) cancels nothing and e-mails no one; the live
/// cancellation does, once.
async fn a_test_cancellation_never_e_mails_about_a_live_order(backend: Backend) {
    let sink = SmtpSink::start().await;
    let stripe = MockServer::start().await;
    let mut live_session = checkout_session("cs_live_awaiting", "unpaid", 3000);
    live_session["livemode"] = json!(true);
    FakeCheckout::new("unpaid", 1, 1)
        .with_session(live_session.clone())
        .mount(&stripe)
        .await;
    let app = start_with(backend, "fast", Some(stripe.uri()), Some(sink.url())).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (live_secret, test_secret) = (new_secret(), new_secret());
    app.create_profile(&company, "live", &live_secret).await;
    app.create_profile(&company, "test", &test_secret).await;
    paygate_testkit::stripe_account::live_account_ready(&app, &company, "acct_1TestAccount000")
        .await;
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"environment": "live", "stripe_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    shopper_emails_on(&app, &company, "Live Shop").await;
    let live = |mut ev: Value| {
        ev["livemode"] = json!(true);
        ev["data"]["object"]["livemode"] = json!(true);
        ev["id"] = json!(unique("evt_live_"));
        ev
    };
    deliver(
        &app,
        &company,
        &live_secret,
        &live(event("checkout.session.completed", live_session)),
    )
    .await;
    app.drain().await;
    assert_eq!(
        order_of(&app, &company, true, "cs_live_awaiting")
            .await
            .status,
        "awaiting_payment"
    );
    let canceled = payment_intent("pi_for_cs_live_awaiting", "canceled", 3000);
    deliver(
        &app,
        &company,
        &test_secret,
        &event("payment_intent.canceled", canceled.clone()),
    )
    .await;
    app.drain().await;
    app.drain_notifications().await;
    assert!(sink.mails().is_empty(), "{:?}", sink.mails());
    assert_eq!(
        order_of(&app, &company, true, "cs_live_awaiting")
            .await
            .status,
        "awaiting_payment"
    );
    deliver(
        &app,
        &company,
        &live_secret,
        &live(event("payment_intent.canceled", canceled)),
    )
    .await;
    app.drain().await;
    app.drain_notifications().await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mail_text(&mails[0].data).contains("Subject: Payment not completed: order cart_42"),
        "{}",
        mails[0].data
    );
    assert_eq!(
        order_of(&app, &company, true, "cs_live_awaiting")
            .await
            .status,
        "canceled"
    );
}

/// Shopper e-mails cannot be turned on without SMTP; a merchant's key reaches only its own
/// endpoints.
async fn settings_and_merchant_scope(backend: Backend) {
    let app = start(backend, "fast").await;
    let company = app.company_with_secret(&new_secret()).await;
    let (s, b) = put(
        &app,
        &format!("/admin/v1/companies/{company}/notification-settings"),
        json!({"shopper_emails": true}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["field"], "shopper_emails");
    let rx = Receiver::start(&[]).await;
    let a_ep = endpoint(&app, &company, &rx.url(), json!([])).await;
    let other = app.company_with_secret(&new_secret()).await;
    let (_, key) = app
        .admin_post(
            &format!("/admin/v1/companies/{other}/api-keys"),
            json!({"name": "other"}),
        )
        .await;
    let key = key["key"].as_str().unwrap();
    let (s, _) = app
        .send(
            app.client
                .get(app.url(&format!(
                    "/api/v1/notification-endpoints/{}",
                    a_ep["id"].as_str().unwrap()
                )))
                .bearer_auth(key),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, mine) = app
        .send(
            app.client
                .post(app.url("/api/v1/notification-endpoints"))
                .bearer_auth(key)
                .json(&json!({"url": rx.url(), "event_types": ["order.paid"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    let (_, list) = app
        .send(
            app.client
                .get(app.url("/api/v1/notification-endpoints"))
                .bearer_auth(key),
        )
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], mine["id"]);
}

/// An endpoint failing for longer than `notify_disable_after_secs` is disabled with a reason
/// the back office shows; enabling it again clears it. `/metrics` counts the attempts and shows
/// the outbox backlog.
async fn an_endpoint_failing_too_long_is_disabled(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.outbound_allow_private = true;
        s.notify_retry_schedule = "10ms,10ms,10ms,10ms".into();
        s.notify_disable_after_secs = 0;
    };
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = Receiver::start(&[500; 100]).await;
    let ep = endpoint(&app, &company, &rx.url(), json!([])).await;
    let ep_id = ep["id"].as_str().unwrap();
    pay(&app, &company, &secret, &["pi_d1", "pi_d2"]).await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("paygate_outbox_backlog 2"), "{metrics}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let got = loop {
        app.drain_notifications().await;
        let (_, got) = app
            .admin_get(&format!(
                "/admin/v1/companies/{company}/notification-endpoints/{ep_id}"
            ))
            .await;
        if got["enabled"] == false {
            break got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never disabled: {got}"
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    };
    assert!(
        got["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("every delivery has failed since"),
        "{got}"
    );
    // Its messages fail for good (replayable), nothing more is sent to it.
    app.drain_notifications().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.drain_notifications().await;
    let m = messages(&app, &company, "payment.succeeded").await;
    assert!(
        m.iter().all(|m| m["deliveries"][0]["status"] == "failed"),
        "{m:?}"
    );
    let sent = rx.requests().await.len();
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("paygate_outbox_backlog 0"), "{metrics}");
    assert!(
        metrics.contains("paygate_notification_deliveries_total{outcome=\"failed\"} 2"),
        "{metrics}"
    );
    // Enabled again by the merchant: the reason is gone, and a replay delivers.
    let (s, back) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}/notification-endpoints/{ep_id}"),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{back}");
    assert_eq!(back["disabled_reason"], Value::Null);
    assert_eq!(back["failing_since"], Value::Null);
    assert_eq!(rx.requests().await.len(), sent);
}

/// The worker writes the messages of a whole batch together: a broken event in the middle of a
/// batch fails on its own, every good change still gets exactly one message (repeats and stale
/// events none), and each reaches the endpoint.
async fn a_broken_event_in_a_batch_fails_alone_and_each_change_is_notified_once(backend: Backend) {
    let app = start_workers_only(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = Receiver::start(&[]).await;
    let ep = endpoint(&app, &company, &rx.url(), json!(["payment.succeeded"])).await;
    let broken = without_object_field(
        event(
            "payment_intent.succeeded",
            payment_intent("pi_batch_broken", "succeeded", 100),
        ),
        "status",
    );
    let succeeded = |pi: &str, at: i64| {
        event_at(
            "payment_intent.succeeded",
            payment_intent(pi, "succeeded", 700),
            at,
        )
    };
    let t = now_secs();
    let mut batch = vec![
        succeeded("pi_batch_1", t),
        succeeded("pi_batch_2", t),
        broken.clone(),
        succeeded("pi_batch_3", t),
        // The same change again under another event id: nothing new to say.
        succeeded("pi_batch_2", t),
        // An older state arriving late: no change, no message.
        event_at(
            "payment_intent.processing",
            payment_intent("pi_batch_3", "processing", 700),
            t - 60,
        ),
        succeeded("pi_batch_4", t),
    ];
    // A payment that was processing, then succeeded within the same batch.
    batch.push(event_at(
        "payment_intent.processing",
        payment_intent("pi_batch_5", "processing", 700),
        t - 5,
    ));
    batch.push(succeeded("pi_batch_5", t));
    for ev in &batch {
        deliver(&app, &company, &secret, ev).await;
    }
    assert_eq!(
        app.drain().await,
        batch.len(),
        "one batch, every event handled"
    );

    let base = format!("/admin/v1/companies/{company}");
    let (_, b) = app
        .admin_get(&format!("{base}/events/{}", broken["id"].as_str().unwrap()))
        .await;
    assert_eq!(b["status"], "failed", "{b}");
    assert!(
        b["last_error"]
            .as_str()
            .unwrap()
            .contains("data.object.status is missing"),
        "{b}"
    );
    let (_, processed) = app.admin_get(&format!("{base}/events/stats")).await;
    assert_eq!(processed["processed"], batch.len() - 1, "{processed}");
    assert_eq!(processed["failed"], 1, "{processed}");
    for n in 1..=5 {
        let (s, p) = app
            .admin_get(&format!("{base}/payment-intents/pi_batch_{n}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["amount_received"], 700, "{p}");
    }

    let sent = messages(&app, &company, "payment.succeeded").await;
    let mut paid: Vec<&str> = sent
        .iter()
        .map(|m| m["payload"]["data"]["object"]["id"].as_str().unwrap())
        .collect();
    paid.sort_unstable();
    assert_eq!(
        paid,
        [
            "pi_batch_1",
            "pi_batch_2",
            "pi_batch_3",
            "pi_batch_4",
            "pi_batch_5"
        ],
        "one message per payment: {sent:?}"
    );
    app.drain_notifications().await;
    let mut received: Vec<String> = rx
        .requests()
        .await
        .iter()
        .map(|r| {
            let body = verified(ep["secret"].as_str().unwrap(), r);
            assert_eq!(body["type"], "payment.succeeded");
            body["data"]["object"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    received.sort_unstable();
    assert_eq!(received, paid);
}

db_tests!(
    an_endpoint_failing_too_long_is_disabled,
    messages_verify_with_standard_webhooks,
    failed_attempts_are_retried_and_recorded,
    a_receiver_that_comes_back_gets_the_message,
    always_failing_is_marked_failed_then_replayed,
    concurrent_fulfillment_sends_one_order_fulfilled,
    a_failed_handler_leaves_no_change_and_no_message,
    one_change_one_message_across_repeats_and_replays,
    private_addresses_are_refused_when_saved_and_when_delivering,
    shoppers_are_emailed_in_their_language_once,
    a_failed_payments_email_invites_the_shopper_to_pay_again,
    an_expired_checkout_invites_the_shopper_back_to_pay_once,
    a_cancelled_payment_invites_the_shopper_back_to_pay_once,
    a_paid_order_is_never_invited_to_pay_again,
    a_test_cancellation_never_e_mails_about_a_live_order,
    settings_and_merchant_scope,
    a_broken_event_in_a_batch_fails_alone_and_each_change_is_notified_once,
);
