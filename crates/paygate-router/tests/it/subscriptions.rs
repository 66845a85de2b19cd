//! Issue 19: subscriptions, invoices and customers through the real intake and workers, on
//! both databases. A subscription's lifecycle delivered in every order (and twice) ends in the
//! same state, in the payloads of an old and of a new API version; `invoice.paid` and the older
//! `invoice.payment_succeeded` both mark an invoice paid; dunning e-mails reach the SMTP sink
//! once per chosen failed attempt, in the customer's language, with the link to pay; the
//! merchant's receiver gets each message once; test-mode events never reach live rows.

use paygate_testkit::billing_objects::{Shape, customer, invoice, subscription};
use paygate_testkit::objects::event_at;
use paygate_testkit::receivers::{Receiver, SmtpSink};
use paygate_testkit::{
    Backend, Options, TestApp, db_tests, new_secret, now_secs, permutations, unique,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn start(backend: Backend, smtp: Option<String>) -> TestApp {
    let mut opts = Options::new(backend);
    opts.smtp_url = smtp;
    opts.adjust = |s| {
        s.outbound_allow_private = true;
        s.notify_retry_schedule = "20ms,40ms".into();
        s.smtp_from = "billing@paygate.test".into();
    };
    TestApp::start(opts).await
}

/// `ev` in the envelope of `shape`'s API version.
fn versioned(mut ev: Value, shape: Shape) -> Value {
    ev["api_version"] = json!(shape.api_version());
    ev
}

async fn deliver(app: &TestApp, company: &str, secret: &str, ev: &Value) {
    let (s, b) = app.deliver(company, secret, ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn read(app: &TestApp, company: &str, path: &str) -> (StatusCode, Value) {
    let (s, mut b) = app
        .admin_get(&format!("/admin/v1/companies/{company}/{path}"))
        .await;
    if let Some(o) = b.as_object_mut() {
        o.remove("updated_at");
    }
    (s, b)
}

/// The lifecycle created → trialing → active → past_due → active → canceled of `sub`, one
/// second apart from `t0`.
fn lifecycle(sub: &str, t0: i64, shape: Shape) -> Vec<Value> {
    let steps = [
        ("customer.subscription.created", "incomplete"),
        ("customer.subscription.updated", "trialing"),
        ("customer.subscription.updated", "active"),
        ("customer.subscription.updated", "past_due"),
        ("customer.subscription.updated", "active"),
        ("customer.subscription.deleted", "canceled"),
    ];
    steps
        .iter()
        .enumerate()
        .map(|(i, (t, status))| {
            // The period moves on when it becomes active again; the quantity grows on the way.
            let period = if i >= 4 { t0 + 1000 } else { t0 };
            let mut s = subscription(sub, "cus_life", status, 1 + i as i64 / 3, period, shape);
            if *status == "trialing" {
                s["trial_end"] = json!(t0 + 500);
            }
            if *status == "canceled" {
                s["canceled_at"] = json!(t0 + 5);
                s["ended_at"] = json!(t0 + 5);
            }
            s["latest_invoice"] = if i % 2 == 0 {
                json!(format!("in_{i}"))
            } else {
                json!({"id": format!("in_{i}"), "object": "invoice"})
            };
            versioned(event_at(t, s, t0 + i as i64), shape)
        })
        .collect()
}

/// Delivers `events` concurrently, a few at a time, each answered 200.
async fn deliver_all(app: &TestApp, company: &str, secret: &str, events: &[&Value]) {
    use futures_util::StreamExt;
    futures_util::stream::iter(events)
        .for_each_concurrent(16, |ev| deliver(app, company, secret, ev))
        .await;
}

async fn a_subscription_reaches_the_same_state_in_every_order(backend: Backend) {
    let app = start(backend, None).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t0 = now_secs() - 10_000;
    let mut finals: Vec<(Shape, Value)> = Vec::new();
    // Every order of the six events, one subscription per order. Round r delivers each
    // subscription's r-th event of its order, and the workers apply a round before the next
    // one arrives: each subscription sees its events in exactly its order.
    let orders = permutations(&(0..6).collect::<Vec<usize>>());
    assert_eq!(orders.len(), 720);
    for shape in [Shape::Old, Shape::Basil] {
        let subs: Vec<(String, Vec<Value>)> = (0..orders.len())
            .map(|_| {
                let sub = unique("sub_life_");
                let evs = lifecycle(&sub, t0, shape);
                (sub, evs)
            })
            .collect();
        for round in 0..6 {
            let batch: Vec<&Value> = subs
                .iter()
                .zip(&orders)
                .map(|((_, evs), order)| &evs[order[round]])
                .collect();
            deliver_all(&app, &company, &secret, &batch).await;
            app.drain().await;
        }
        // Everything again for a third of them (Stripe delivers twice), in their order.
        for round in 0..6 {
            let batch: Vec<&Value> = subs
                .iter()
                .zip(&orders)
                .step_by(3)
                .map(|((_, evs), order)| &evs[order[round]])
                .collect();
            deliver_all(&app, &company, &secret, &batch).await;
        }
        app.drain().await;
        for ((sub, _), order) in subs.iter().zip(&orders) {
            let (s, mut got) =
                read(&app, &company, &format!("subscriptions/{sub}?mode=test")).await;
            assert_eq!(s, StatusCode::OK, "{got}");
            assert_eq!(got["id"], json!(sub));
            got["id"] = json!("sub");
            assert_eq!(got["items"][0]["id"], json!(format!("si_{sub}")), "{got}");
            got["items"][0]["id"] = json!("si");
            assert_eq!(got["status"], "canceled", "{shape:?} {order:?}: {got}");
            finals.push((shape, got));
        }
    }
    let first = &finals[0].1;
    for (shape, f) in &finals {
        assert_eq!(f, first, "{shape:?}: the final state differs");
    }
    // The final state is the last event's, read from either shape.
    assert_eq!(first["items"][0]["quantity"], json!(2), "{first}");
    assert_eq!(
        first["items"][0]["price"],
        json!("price_monthly"),
        "{first}"
    );
    assert_eq!(first["items"][0]["unit_amount"], json!(2000), "{first}");
    assert_eq!(first["items"][0]["interval"], json!("month"), "{first}");
    assert_eq!(first["latest_invoice"], json!("in_5"), "{first}");
    assert_eq!(first["customer"], json!("cus_life"), "{first}");
    assert!(first["current_period_start"].is_string(), "{first}");
    assert!(first["ended_at"].is_string(), "{first}");
    // The subscription list filters by status.
    let (_, page) = read(
        &app,
        &company,
        "subscriptions?mode=test&status=canceled&limit=200",
    )
    .await;
    let listed = page["data"].as_array().unwrap();
    assert_eq!(listed.len(), 200.min(finals.len()), "{page}");
    assert!(listed.iter().all(|s| s["status"] == "canceled"), "{page}");
    let (_, page) = read(&app, &company, "subscriptions?mode=test&status=active").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 0, "{page}");
}

async fn invoices_are_paid_by_either_event_in_either_shape(backend: Backend) {
    let app = start(backend, None).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t0 = now_secs() - 1000;
    for (n, (shape, paid_type)) in [
        (Shape::Old, "invoice.payment_succeeded"),
        (Shape::Old, "invoice.paid"),
        (Shape::Basil, "invoice.paid"),
        (Shape::Basil, "invoice.payment_succeeded"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("in_paid_{n}");
        let evs = [
            event_at(
                "invoice.created",
                invoice(&id, "cus_1", "sub_1", "draft", 0, shape),
                t0,
            ),
            event_at(
                "invoice.finalized",
                invoice(&id, "cus_1", "sub_1", "open", 0, shape),
                t0 + 1,
            ),
            // The payment event's object as the older versions send it: already `paid`
            // (or, for the sake of the rule, still `open`: the event type decides).
            event_at(
                paid_type,
                invoice(
                    &id,
                    "cus_1",
                    "sub_1",
                    if n % 2 == 0 { "paid" } else { "open" },
                    1,
                    shape,
                ),
                t0 + 2,
            ),
        ];
        // Paid first, then the older ones: paid stays.
        for i in [2, 0, 1, 2] {
            deliver(&app, &company, &secret, &versioned(evs[i].clone(), shape)).await;
            app.drain().await;
        }
        let (s, inv) = read(&app, &company, &format!("invoices/{id}?mode=test")).await;
        assert_eq!(s, StatusCode::OK, "{inv}");
        assert_eq!(inv["status"], "paid", "{paid_type} {shape:?}: {inv}");
        assert_eq!(inv["subscription"], "sub_1", "{shape:?}: {inv}");
        assert_eq!(inv["attempt_count"], 1, "{inv}");
        assert_eq!(inv["number"], json!(format!("NR-{id}")), "{inv}");
        assert!(
            inv["hosted_invoice_url"].as_str().unwrap().contains(&id),
            "{inv}"
        );
    }
    let (_, page) = read(
        &app,
        &company,
        "invoices?mode=test&subscription=sub_1&status=paid",
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 4, "{page}");
    // `invoice.upcoming` has no id: nothing is recorded, nothing fails.
    let mut up = invoice("x", "cus_1", "sub_1", "draft", 0, Shape::Basil);
    up.as_object_mut().unwrap().remove("id");
    let ev = event_at("invoice.upcoming", up, t0);
    deliver(&app, &company, &secret, &ev).await;
    app.drain().await;
    let (_, e) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/events/{}",
            ev["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(e["status"], "ignored", "{e}");
    let (_, page) = read(&app, &company, "invoices?mode=test").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 4, "{page}");
}

/// The messages of `t` the receiver got (each once is asserted by the callers).
async fn received(rx: &Receiver, t: &str) -> Vec<Value> {
    rx.requests()
        .await
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter(|m| m["type"] == t)
        .collect()
}

async fn dunning_mails_each_chosen_attempt_once_in_the_customers_language(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = start(backend, Some(sink.url())).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let rx = Receiver::start(&[]).await;
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": rx.url(), "event_types": []}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Attempts 1 and 3 only; an attempt out of range is refused, and nothing changes.
    let path = format!("/admin/v1/companies/{company}/billing-settings");
    let (s, b) = app
        .admin(
            reqwest::Method::PUT,
            &path,
            Some(json!({"dunning_emails": true, "dunning_attempts": [3, 1]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["dunning_attempts"], json!([1, 3]));
    let (s, b) = app
        .admin(
            reqwest::Method::PUT,
            &path,
            Some(json!({"dunning_emails": false, "dunning_attempts": [0]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "invalid_parameter", "{b}");
    let (_, b) = app.admin_get(&path).await;
    assert_eq!(
        b,
        json!({"dunning_emails": true, "dunning_attempts": [1, 3]})
    );
    // Shopper e-mails on too (the trial notice).
    let (s, b) = app
        .admin(
            reqwest::Method::PUT,
            &format!("/admin/v1/companies/{company}/notification-settings"),
            Some(json!({"shopper_emails": true, "sender_name": "Negozio"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let t0 = now_secs() - 1000;
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "customer.created",
            customer("cus_it", "mario@example.it", &["it-IT"]),
            t0,
        ),
    )
    .await;
    let sub = "sub_dunning";
    let mut trial = subscription(sub, "cus_it", "trialing", 1, t0, Shape::Basil);
    trial["trial_end"] = json!(t0 + 3 * 86_400);
    let trial_ev = event_at("customer.subscription.trial_will_end", trial, t0 + 1);
    deliver(&app, &company, &secret, &trial_ev).await;
    let failed: Vec<Value> = (1..=3)
        .map(|a| {
            event_at(
                "invoice.payment_failed",
                invoice("in_dun", "cus_it", sub, "open", a, Shape::Basil),
                t0 + 10 * a,
            )
        })
        .collect();
    for ev in &failed {
        deliver(&app, &company, &secret, ev).await;
    }
    app.drain().await;
    // Stripe delivers again; and a fresh event of the same attempt (same invoice state).
    for ev in &failed {
        deliver(&app, &company, &secret, ev).await;
    }
    let mut again = failed[0].clone();
    again["id"] = json!(unique("evt_again_"));
    deliver(&app, &company, &secret, &again).await;
    deliver(&app, &company, &secret, &trial_ev).await;
    // The subscription stops being paid: it has ended.
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "customer.subscription.updated",
            subscription(sub, "cus_it", "unpaid", 1, t0, Shape::Basil),
            t0 + 50,
        ),
    )
    .await;
    // Its creation arrives last, twice: announced once, the newer state kept.
    let created = event_at(
        "customer.subscription.created",
        subscription(sub, "cus_it", "incomplete", 1, t0, Shape::Basil),
        t0,
    );
    deliver(&app, &company, &secret, &created).await;
    deliver(&app, &company, &secret, &created).await;
    app.drain().await;
    app.drain_notifications().await;

    let mails = sink.mails();
    let dunning: Vec<_> = mails
        .iter()
        .filter(|m| m.data.contains("Pagamento non riuscito"))
        .collect();
    assert_eq!(dunning.len(), 2, "attempts 1 and 3, once each: {mails:#?}");
    for m in &dunning {
        assert_eq!(m.to, vec!["mario@example.it".to_owned()], "{m:?}");
        assert!(
            m.data
                .contains("https://invoice.stripe.com/i/acct_1/in_dun"),
            "the link to pay: {}",
            m.data
        );
        assert!(m.data.contains("20,00 EUR"), "{}", m.data);
    }
    let trial_mails = mails
        .iter()
        .filter(|m| m.data.contains("periodo di prova"))
        .count();
    assert_eq!(trial_mails, 1, "{mails:#?}");

    let fails = received(&rx, "invoice.payment_failed").await;
    let mut attempts: Vec<i64> = fails
        .iter()
        .map(|m| m["data"]["object"]["attempt_count"].as_i64().unwrap())
        .collect();
    attempts.sort_unstable();
    assert_eq!(attempts, vec![1, 2, 3], "each attempt once: {fails:#?}");
    for m in &fails {
        let a = m["data"]["object"]["attempt_count"].as_i64().unwrap();
        assert!(
            m["data"]["object"]["next_payment_attempt"].is_string(),
            "{m}"
        );
        assert_eq!(m["data"]["object"]["id"], "in_dun");
        assert_eq!(m["livemode"], false);
        assert!(a >= 1);
    }
    assert_eq!(received(&rx, "subscription.trial_will_end").await.len(), 1);
    let ended = received(&rx, "subscription.ended").await;
    assert_eq!(ended.len(), 1, "{ended:#?}");
    assert_eq!(ended[0]["data"]["object"]["status"], "unpaid");
    let created = received(&rx, "subscription.created").await;
    assert_eq!(created.len(), 1, "{created:#?}");
    assert_eq!(
        created[0]["data"]["object"]["status"], "unpaid",
        "the state Paygate holds"
    );
    assert_eq!(received(&rx, "subscription.updated").await.len(), 1);

    // Paid at last: one `invoice.paid`, and no more dunning.
    let paid = event_at(
        "invoice.paid",
        invoice("in_dun", "cus_it", sub, "paid", 3, Shape::Basil),
        t0 + 60,
    );
    deliver(&app, &company, &secret, &paid).await;
    deliver(&app, &company, &secret, &paid).await;
    // A late failure of attempt 4 after the payment: a message, but no e-mail.
    let late = event_at(
        "invoice.payment_failed",
        invoice("in_dun", "cus_it", sub, "open", 4, Shape::Basil),
        t0 + 40,
    );
    deliver(&app, &company, &secret, &late).await;
    app.drain().await;
    app.drain_notifications().await;
    assert_eq!(received(&rx, "invoice.paid").await.len(), 1);
    let (_, inv) = read(&app, &company, "invoices/in_dun?mode=test").await;
    assert_eq!(inv["status"], "paid", "{inv}");
    assert_eq!(inv["attempt_count"], 4, "{inv}");
    assert_eq!(
        sink.mails()
            .iter()
            .filter(|m| m.data.contains("Pagamento non riuscito"))
            .count(),
        2
    );
}

/// Test-mode billing events never change, read or notify anything live.
async fn test_mode_billing_events_never_touch_live(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = start(backend, Some(sink.url())).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (live, test) = (new_secret(), new_secret());
    app.create_profile(&company, "live", &live).await;
    app.create_profile(&company, "test", &test).await;
    let rx = Receiver::start(&[]).await;
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": rx.url(), "event_types": []}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) = app
        .admin(
            reqwest::Method::PUT,
            &format!("/admin/v1/companies/{company}/billing-settings"),
            Some(json!({"dunning_emails": true, "dunning_attempts": [1, 2]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let t0 = now_secs() - 1000;
    let live_ev = |mut ev: Value| {
        ev["livemode"] = json!(true);
        ev["data"]["object"]["livemode"] = json!(true);
        ev
    };
    let mut c = customer("cus_both", "live@example.com", &["de"]);
    c["livemode"] = json!(true);
    deliver(
        &app,
        &company,
        &live,
        &live_ev(event_at("customer.created", c, t0)),
    )
    .await;
    deliver(
        &app,
        &company,
        &live,
        &live_ev(event_at(
            "customer.subscription.created",
            subscription("sub_both", "cus_both", "active", 1, t0, Shape::Old),
            t0,
        )),
    )
    .await;
    deliver(
        &app,
        &company,
        &live,
        &live_ev(event_at(
            "invoice.finalized",
            invoice("in_both", "cus_both", "sub_both", "open", 0, Shape::Old),
            t0,
        )),
    )
    .await;
    app.drain().await;
    app.drain_notifications().await;
    let mut before: Vec<Value> = Vec::new();
    for p in [
        "customers/cus_both",
        "subscriptions/sub_both",
        "invoices/in_both",
    ] {
        let (s, b) = read(&app, &company, &format!("{p}?mode=live")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        before.push(b);
    }
    let live_messages = rx.requests().await.len();

    // The same ids in test mode, later, with a different state.
    let mut tc = customer("cus_both", "attacker@example.com", &["it"]);
    tc["email"] = json!("attacker@example.com");
    for ev in [
        event_at("customer.deleted", tc, t0 + 10),
        event_at(
            "customer.subscription.deleted",
            subscription("sub_both", "cus_both", "canceled", 9, t0, Shape::Basil),
            t0 + 10,
        ),
        event_at(
            "invoice.payment_failed",
            invoice("in_both", "cus_both", "sub_both", "open", 1, Shape::Basil),
            t0 + 10,
        ),
    ] {
        deliver(&app, &company, &test, &ev).await;
    }
    app.drain().await;
    app.drain_notifications().await;
    for (p, b) in [
        "customers/cus_both",
        "subscriptions/sub_both",
        "invoices/in_both",
    ]
    .iter()
    .zip(&before)
    {
        let (s, now) = read(&app, &company, &format!("{p}?mode=live")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(&now, b, "{p}: the live row changed");
        let (s, t) = read(&app, &company, &format!("{p}?mode=test")).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["livemode"], false);
    }
    // The test messages are test messages; the live customer got no mail.
    let msgs: Vec<Value> = rx
        .requests()
        .await
        .iter()
        .skip(live_messages)
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .collect();
    assert!(!msgs.is_empty());
    assert!(msgs.iter().all(|m| m["livemode"] == false), "{msgs:#?}");
    assert!(
        sink.mails()
            .iter()
            .all(|m| !m.to.contains(&"live@example.com".to_owned())),
        "{:#?}",
        sink.mails()
    );
}

/// Customers and invoices too: every order of their events, each delivered twice, ends in the
/// same state (a deleted customer stays deleted; a paid invoice stays paid and keeps the
/// highest attempt count).
async fn customers_and_invoices_reach_the_same_state_in_every_order(backend: Backend) {
    let app = start(backend, None).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t0 = now_secs() - 1000;
    for (k, order) in permutations(&[0usize, 1, 2]).into_iter().enumerate() {
        let id = format!("cus_perm_{k}");
        let mut updated = customer(&id, "new@example.com", &["de-CH"]);
        updated["name"] = json!("Erika Muster");
        let evs = [
            event_at(
                "customer.created",
                customer(&id, "old@example.com", &[]),
                t0,
            ),
            event_at("customer.updated", updated, t0 + 1),
            // The deletion's object is the stub Stripe sends for deleted objects.
            event_at(
                "customer.deleted",
                json!({"id": id, "object": "customer", "deleted": true}),
                t0 + 2,
            ),
        ];
        for &i in order.iter().chain(order.iter()) {
            deliver(&app, &company, &secret, &evs[i]).await;
            app.drain().await;
        }
        let (s, c) = read(&app, &company, &format!("customers/{id}?mode=test")).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(c["deleted"], true, "{order:?}: {c}");
        assert_eq!(c["email"], "new@example.com", "{order:?}: {c}");
        assert_eq!(c["locale"], "de-CH", "{order:?}: {c}");
    }
    for (k, order) in permutations(&[0usize, 1, 2, 3]).into_iter().enumerate() {
        let id = format!("in_perm_{k}");
        let shape = if k % 2 == 0 { Shape::Old } else { Shape::Basil };
        let evs = [
            event_at(
                "invoice.created",
                invoice(&id, "cus_1", "sub_1", "draft", 0, shape),
                t0,
            ),
            event_at(
                "invoice.finalized",
                invoice(&id, "cus_1", "sub_1", "open", 0, shape),
                t0 + 1,
            ),
            event_at(
                "invoice.payment_failed",
                invoice(&id, "cus_1", "sub_1", "open", 1, shape),
                t0 + 2,
            ),
            event_at(
                "invoice.payment_succeeded",
                invoice(&id, "cus_1", "sub_1", "paid", 2, shape),
                t0 + 3,
            ),
        ];
        for &i in &order {
            deliver(&app, &company, &secret, &versioned(evs[i].clone(), shape)).await;
            app.drain().await;
        }
        let (s, inv) = read(&app, &company, &format!("invoices/{id}?mode=test")).await;
        assert_eq!(s, StatusCode::OK, "{inv}");
        assert_eq!(inv["status"], "paid", "{order:?}: {inv}");
        assert_eq!(inv["attempt_count"], 2, "{order:?}: {inv}");
        assert_eq!(inv["amount_paid"], 2000, "{order:?}: {inv}");
        assert_eq!(inv["next_payment_attempt"], Value::Null, "{order:?}: {inv}");
        assert_eq!(inv["subscription"], "sub_1", "{order:?}: {inv}");
    }
}

db_tests!(
    a_subscription_reaches_the_same_state_in_every_order,
    customers_and_invoices_reach_the_same_state_in_every_order,
    invoices_are_paid_by_either_event_in_either_shape,
    dunning_mails_each_chosen_attempt_once_in_the_customers_language,
    test_mode_billing_events_never_touch_live,
);
