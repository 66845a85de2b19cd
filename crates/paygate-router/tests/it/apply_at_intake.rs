//! Database-only events applied in the transaction that stores them (SQLite,
//! `PAYGATE_APPLY_AT_INTAKE=true`): what Stripe's acknowledgement then means, for good events,
//! for a broken one among them, for duplicates, and with the setting off (the default). On
//! PostgreSQL the workers apply every event, and the same deliveries end in the same state
//! after they ran.

use paygate_testkit::objects::{charge, payment_intent};
use paygate_testkit::{
    Backend, Options, TestApp, db_tests, event, new_secret, unique, without_object_field,
};
use reqwest::StatusCode;
use serde_json::Value;

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

/// Delivers all of `events` at once (so that the intake takes several in one batch); every
/// answer is a 200.
async fn deliver_together(app: &TestApp, company: &str, secret: &str, events: &[Value]) {
    let answers =
        futures_util::future::join_all(events.iter().map(|e| app.deliver(company, secret, e)))
            .await;
    for (s, b) in answers {
        assert_eq!(s, StatusCode::OK, "{b}");
    }
}

/// On SQLite a payment intent's event is processed by the time Stripe has its 200: the payment
/// is readable at once, the event marked processed after one attempt, and the workers find
/// nothing to do. A repeat of the delivery changes nothing. On PostgreSQL the workers do it.
/// An app that applies at intake.
fn applying(backend: Backend) -> Options {
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.apply_at_intake = true;
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

/// By default (`PAYGATE_APPLY_AT_INTAKE=false`) every event waits for the workers, on SQLite
/// too.
async fn with_the_setting_off_the_workers_apply_everything(backend: Backend) {
    let app = TestApp::spawn(backend).await;
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

db_tests!(
    a_payment_is_applied_by_the_time_it_is_acknowledged,
    a_broken_event_among_good_ones_fails_alone,
    with_the_setting_off_the_workers_apply_everything,
);
