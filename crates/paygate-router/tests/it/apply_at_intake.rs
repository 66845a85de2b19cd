//! Payment intents' events applied in the transaction that stores them (SQLite,
//! `PAYGATE_APPLY_AT_INTAKE=true`): what Stripe's acknowledgement then means, for good events,
//! for a broken one among them, for duplicates, and with the setting off (the default); and
//! that the intake leaves exactly what the workers leave (rows, messages, deliveries). On
//! PostgreSQL the workers apply every event, and the same deliveries end in the same state
//! after they ran.

use paygate_db::entities::{notification_delivery, notification_message};
use paygate_testkit::objects::{charge, payment_intent};
use paygate_testkit::receivers::Receiver;
use paygate_testkit::{
    Backend, Options, TestApp, db_tests, event, new_secret, unique, without_object_field,
};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{Value, json};

use crate::deliver_together;

async fn get(app: &TestApp, path: &str) -> Value {
    let (s, b) = app.admin_get(path).await;
    assert_eq!(s, StatusCode::OK, "GET {path}: {b}");
    b
}

async fn event_row(app: &TestApp, company: &str, id: &str) -> Value {
    get(app, &format!("/admin/v1/companies/{company}/events/{id}")).await
}

async fn setup(app: &TestApp) -> (String, String) {
    let secret = new_secret();
    let company = unique("co");
    app.create_company(&company).await;
    app.create_profile(&company, "test", &secret).await;
    (company, secret)
}

/// On SQLite a payment intent's event is processed by the time Stripe has its 200: the payment
/// is readable at once, the event marked processed after one attempt, and the workers find
/// nothing to do. A repeat of the delivery changes nothing. On PostgreSQL the workers do it.
/// An app that applies at intake.
fn applying(backend: Backend) -> Options {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.apply_at_intake = true;
        // The receivers of the tests listen on 127.0.0.1.
        s.outbound_allow_private = true;
    };
    opts
}

/// An app whose workers apply every event.
fn workers_only(backend: Backend) -> Options {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.apply_at_intake = false;
        s.outbound_allow_private = true;
    };
    opts
}

async fn a_payment_is_applied_by_the_time_it_is_acknowledged(backend: Backend) {
    let app = TestApp::start(applying(backend)).await;
    let (company, secret) = setup(&app).await;
    let ev = event(
        "payment_intent.succeeded",
        payment_intent("pi_at_ack", "succeeded", 4200),
    );
    let id = ev["id"].as_str().unwrap().to_owned();
    let (s, b) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let path = format!("/admin/v1/companies/{company}/payment-intents/pi_at_ack");
    match backend {
        Backend::Sqlite => {
            let row = event_row(&app, &company, &id).await;
            assert_eq!(row["status"], "processed", "{row}");
            assert_eq!(row["attempts"], 1, "{row}");
            assert_eq!(get(&app, &path).await["status"], "succeeded");
            assert_eq!(app.drain().await, 0, "the workers had something left to do");
        }
        Backend::Postgres => {
            assert_eq!(event_row(&app, &company, &id).await["status"], "pending");
            assert_eq!(app.drain().await, 1);
        }
    }
    let applied = get(&app, &path).await;
    assert_eq!(applied["status"], "succeeded");
    assert_eq!(applied["amount_received"], 4200);

    let (s, b) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(app.drain().await, 0);
    assert_eq!(app.inbox_count(&company).await, 1);
    let row = event_row(&app, &company, &id).await;
    assert_eq!(
        (row["status"].as_str(), row["attempts"].as_i64()),
        (Some("processed"), Some(1))
    );
    assert_eq!(get(&app, &path).await, applied);
}

/// A broken event delivered together with good ones: the good ones are applied (at intake or
/// by the workers), the broken one fails alone with its reason, each event of the batch is
/// stored once, and the order of arrival does not matter.
async fn a_broken_event_among_good_ones_fails_alone(backend: Backend) {
    let app = TestApp::start(applying(backend)).await;
    let (company, secret) = setup(&app).await;
    let mut events: Vec<Value> = (0..12)
        .map(|n| {
            event(
                "payment_intent.succeeded",
                payment_intent(&format!("pi_batch_{n}"), "succeeded", 100 + n),
            )
        })
        .collect();
    // A charge, too: another handler in the same batch.
    events.push(event(
        "charge.succeeded",
        charge("ch_batch", "succeeded", 700, None, None),
    ));
    let broken = without_object_field(
        event(
            "payment_intent.succeeded",
            payment_intent("pi_broken", "succeeded", 1),
        ),
        "status",
    );
    events.insert(5, broken.clone());
    deliver_together(&app, &company, &secret, &events).await;
    app.drain().await;
    // Stripe redelivers the first half with three new events: stored once each.
    let mut again: Vec<Value> = events[..7].to_vec();
    for n in 12..15 {
        let ev = event(
            "payment_intent.succeeded",
            payment_intent(&format!("pi_batch_{n}"), "succeeded", 100 + n),
        );
        again.push(ev.clone());
        events.push(ev);
    }
    deliver_together(&app, &company, &secret, &again).await;
    app.drain().await;
    assert_eq!(app.inbox_count(&company).await, events.len());
    for n in 0..15 {
        let pi = get(
            &app,
            &format!("/admin/v1/companies/{company}/payment-intents/pi_batch_{n}"),
        )
        .await;
        assert_eq!(pi["amount_received"], 100 + n, "{pi}");
    }
    assert_eq!(
        get(
            &app,
            &format!("/admin/v1/companies/{company}/charges/ch_batch")
        )
        .await["status"],
        "succeeded"
    );
    let row = event_row(&app, &company, broken["id"].as_str().unwrap()).await;
    assert_eq!(row["status"], "failed", "{row}");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("status"),
        "{row}"
    );
    for e in events.iter().filter(|e| e["id"] != broken["id"]) {
        let row = event_row(&app, &company, e["id"].as_str().unwrap()).await;
        assert_eq!(row["status"], "processed", "{row}");
        assert_eq!(row["attempts"], 1, "applied twice? {row}");
        // Each row holds its own body.
        assert_eq!(&row["payload"], e, "{row}");
    }
}

/// With `PAYGATE_APPLY_AT_INTAKE=false` (the default is true) every event waits for the workers, on
/// SQLite too.
async fn with_the_setting_off_the_workers_apply_everything(backend: Backend) {
    let app = TestApp::start(workers_only(backend)).await;
    let (company, secret) = setup(&app).await;
    let ev = event(
        "payment_intent.succeeded",
        payment_intent("pi_later", "succeeded", 900),
    );
    let (s, b) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = ev["id"].as_str().unwrap();
    assert_eq!(event_row(&app, &company, id).await["status"], "pending");
    // The backlog, counted alone.
    let base = format!("/admin/v1/companies/{company}/events");
    assert_eq!(
        get(&app, &format!("{base}/backlog")).await,
        serde_json::json!({"pending": 1})
    );
    assert_eq!(app.drain().await, 1);
    assert_eq!(event_row(&app, &company, id).await["status"], "processed");
    assert_eq!(
        get(&app, &format!("{base}/backlog")).await,
        serde_json::json!({"pending": 0})
    );
    let all = get(&app, &format!("{base}/stats")).await;
    assert_eq!(
        (&all["processed"], &all["total"]),
        (&serde_json::json!(1), &serde_json::json!(1)),
        "{all}"
    );
}

/// A payment intent's event sent at `created` (seconds).
fn pi_event(event_type: &str, object: Value, created: i64) -> Value {
    let mut ev = event(event_type, object);
    ev["created"] = json!(created);
    ev
}

/// Everything a company's payment intents left, as a merchant's systems see it: each payment
/// intent (by the admin API, but when it was written), and each message (its payload without what differs between two
/// installations: the message id, its time, the company's id) with how many deliveries it has.
async fn what_was_left(app: &TestApp, company: &str, intents: &[&str]) -> (Vec<Value>, Vec<Value>) {
    let mut rows = Vec::new();
    for pi in intents {
        let mut row = get(
            app,
            &format!("/admin/v1/companies/{company}/payment-intents/{pi}"),
        )
        .await;
        // When it was written differs between two installations.
        row.as_object_mut().unwrap().remove("updated_at");
        rows.push(row);
    }
    let deliveries = notification_delivery::Entity::find()
        .all(&app.app.db)
        .await
        .unwrap();
    let mut messages: Vec<Value> = notification_message::Entity::find()
        .order_by_asc(notification_message::Column::DedupeKey)
        .all(&app.app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            let mut payload: Value = serde_json::from_str(&m.payload).unwrap();
            for field in ["id", "created_at", "company_id"] {
                payload.as_object_mut().unwrap().remove(field);
            }
            let sent_to = deliveries.iter().filter(|d| d.message_id == m.id).count();
            json!({"dedupe_key": m.dedupe_key, "livemode": m.livemode, "payload": payload, "deliveries": sent_to})
        })
        .collect();
    messages.sort_by_key(|m| m["dedupe_key"].as_str().unwrap_or_default().to_owned());
    (rows, messages)
}

/// The same Stripe traffic (captures, successes, failures with their errors, a cancellation,
/// an older state arriving late, a redelivery, the back office's test event, several events of
/// one payment intent in one batch) leaves the same payment intents, messages and deliveries
/// whether the intake applies it or the workers do; with the intake applying, on SQLite, every
/// event but the cancellation (left to the workers) is processed by the time it is answered.
async fn the_intake_leaves_what_the_workers_leave(backend: Backend) {
    let t = paygate_testkit::now_secs();
    let failed = |id: &str, code: &str| {
        let mut o = payment_intent(id, "requires_payment_method", 800);
        o["last_payment_error"] = json!({"code": code, "decline_code": "insufficient_funds", "message": "Your card has insufficient funds.", "type": "card_error", "charge": "ch_x"});
        o
    };
    let one_by_one = vec![
        pi_event(
            "payment_intent.amount_capturable_updated",
            payment_intent("pi_same_a", "requires_capture", 500),
            t - 50,
        ),
        pi_event(
            "payment_intent.succeeded",
            payment_intent("pi_same_a", "succeeded", 500),
            t - 40,
        ),
        // Older than what is stored: changes nothing, says nothing.
        pi_event(
            "payment_intent.processing",
            payment_intent("pi_same_a", "processing", 500),
            t - 45,
        ),
        pi_event(
            "payment_intent.payment_failed",
            failed("pi_same_b", "card_declined"),
            t - 30,
        ),
        pi_event(
            "payment_intent.payment_failed",
            failed("pi_same_b", "expired_card"),
            t - 20,
        ),
        pi_event(
            "payment_intent.canceled",
            payment_intent("pi_same_c", "canceled", 300),
            t - 10,
        ),
        {
            let mut ev = pi_event(
                "payment_intent.succeeded",
                payment_intent("pi_same_t", "succeeded", 100),
                t - 5,
            );
            ev["id"] = json!(unique("evt_test_paygate_"));
            ev
        },
    ];
    // Delivered together: two events of one payment intent (the later one first) among others.
    let together = vec![
        pi_event(
            "payment_intent.succeeded",
            payment_intent("pi_same_d", "succeeded", 900),
            t - 3,
        ),
        pi_event(
            "payment_intent.processing",
            payment_intent("pi_same_d", "processing", 900),
            t - 4,
        ),
        pi_event(
            "payment_intent.succeeded",
            payment_intent("pi_same_e", "succeeded", 910),
            t - 3,
        ),
        pi_event(
            "payment_intent.requires_action",
            payment_intent("pi_same_f", "requires_action", 920),
            t - 3,
        ),
    ];
    let intents = [
        "pi_same_a",
        "pi_same_b",
        "pi_same_c",
        "pi_same_t",
        "pi_same_d",
        "pi_same_e",
        "pi_same_f",
    ];
    let mut left = Vec::new();
    for (opts, at_intake) in [(applying(backend), true), (workers_only(backend), false)] {
        let at_intake = at_intake && backend == Backend::Sqlite;
        let app = TestApp::start(opts).await;
        let (company, secret) = setup(&app).await;
        let receiver = Receiver::start(&[]).await;
        let (s, b) = app
            .admin_post(
                &format!("/admin/v1/companies/{company}/notification-endpoints"),
                json!({"url": format!("{}/hooks", receiver.server.uri()), "event_types": []}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        for ev in &one_by_one {
            let (s, b) = app.deliver(&company, &secret, ev).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            let row = event_row(&app, &company, ev["id"].as_str().unwrap()).await;
            // The cancellation is the workers' (an order may follow it).
            let now = at_intake && ev["type"] != "payment_intent.canceled";
            assert_eq!(
                row["status"],
                if now { "processed" } else { "pending" },
                "{row}"
            );
        }
        deliver_together(&app, &company, &secret, &together).await;
        // Stripe redelivers one: stored once, applied once.
        let (s, b) = app.deliver(&company, &secret, &one_by_one[1]).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        app.drain().await;
        assert_eq!(
            app.inbox_count(&company).await,
            one_by_one.len() + together.len()
        );
        for ev in one_by_one.iter().chain(&together) {
            let row = event_row(&app, &company, ev["id"].as_str().unwrap()).await;
            assert_eq!(
                (row["status"].as_str(), row["attempts"].as_i64()),
                (Some("processed"), Some(1)),
                "{row}"
            );
        }
        left.push(what_was_left(&app, &company, &intents).await);
    }
    let (by_intake, by_workers) = (&left[0], &left[1]);
    assert_eq!(by_intake.0, by_workers.0, "payment intents differ");
    assert_eq!(by_intake.1, by_workers.1, "messages differ");
    let types: Vec<&str> = by_workers
        .1
        .iter()
        .map(|m| m["payload"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "payment.succeeded").count(),
        4,
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|t| **t == "payment.failed").count(), 2);
    assert!(by_workers.1.iter().all(|m| m["deliveries"] == 1));
    let test_event: Vec<&Value> = by_workers
        .1
        .iter()
        .filter(|m| m["payload"]["test_event"] == true)
        .collect();
    assert_eq!(test_event.len(), 1, "{test_event:?}");
}

db_tests!(
    a_payment_is_applied_by_the_time_it_is_acknowledged,
    the_intake_leaves_what_the_workers_leave,
    a_broken_event_among_good_ones_fails_alone,
    with_the_setting_off_the_workers_apply_everything,
);
