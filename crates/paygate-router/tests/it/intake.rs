//! The intake: `POST /callbacks/v1.0/stripe/{companyID}`.

use futures_util::future::join_all;
use paygate_testkit::{Backend, TestApp, db_tests, event, new_secret, now_secs, sign};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{Value, json};

fn pi_event() -> Value {
    event(
        "payment_intent.succeeded",
        json!({"id": "pi_1", "object": "payment_intent", "status": "succeeded", "amount": 2000, "currency": "eur"}),
    )
}

async fn assert_refused(
    app: &TestApp,
    company: &str,
    body: Vec<u8>,
    sig: Option<&str>,
    status: StatusCode,
    code: &str,
) {
    let (s, b) = app.post_callback(company, body, sig).await;
    assert_eq!(s, status, "{b}");
    assert_eq!(b["error"]["code"], code, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

async fn valid_delivery_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let ev = pi_event();
    let (status, body) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["duplicate"], false);
    let (status, body) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["duplicate"], true);
    assert_eq!(app.inbox_count(&company).await, 1);
    // The stored payload is byte-for-byte what Stripe sent.
    let (s, detail) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/events/{}",
            ev["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(detail["payload"], ev);
    assert_eq!(detail["type"], "payment_intent.succeeded");
    assert_eq!(detail["livemode"], false);
}

async fn same_delivery_five_times_concurrently_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let ev = pi_event();
    let results = join_all((0..5).map(|_| app.deliver(&company, &secret, &ev))).await;
    for (s, b) in &results {
        assert_eq!(*s, StatusCode::OK, "{b}");
    }
    assert_eq!(
        results
            .iter()
            .filter(|(_, b)| b["duplicate"] == false)
            .count(),
        1
    );
    assert_eq!(app.inbox_count(&company).await, 1);
}

async fn any_of_two_v1_signatures_may_match(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let body = serde_json::to_vec(&pi_event()).unwrap();
    let t = now_secs();
    let good = sign(&secret, t, &body);
    let good_sig = good.split("v1=").nth(1).unwrap();
    let wrong = sign(&new_secret(), t, &body);
    let wrong_sig = wrong.split("v1=").nth(1).unwrap();
    let header = format!("t={t},v1={wrong_sig},v1={good_sig}");
    let (s, b) = app.post_callback(&company, body, Some(&header)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(app.inbox_count(&company).await, 1);
}

async fn bad_signatures_are_refused_and_nothing_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let body = serde_json::to_vec(&pi_event()).unwrap();
    let t = now_secs();
    let good = sign(&secret, t, &body);
    let good_sig = good.split("v1=").nth(1).unwrap().to_owned();
    // v0 only.
    assert_refused(
        &app,
        &company,
        body.clone(),
        Some(&format!("t={t},v0={good_sig}")),
        StatusCode::BAD_REQUEST,
        "signature_invalid",
    )
    .await;
    // One byte of the body changed.
    let mut changed = body.clone();
    let pos = changed.iter().position(|&b| b == b'2').unwrap();
    changed[pos] = b'3';
    assert_refused(
        &app,
        &company,
        changed,
        Some(&good),
        StatusCode::BAD_REQUEST,
        "signature_invalid",
    )
    .await;
    // Old timestamp (signed correctly, but ten minutes ago).
    let old = sign(&secret, t - 600, &body);
    assert_refused(
        &app,
        &company,
        body.clone(),
        Some(&old),
        StatusCode::BAD_REQUEST,
        "timestamp_outside_tolerance",
    )
    .await;
    // Malformed and missing headers.
    assert_refused(
        &app,
        &company,
        body.clone(),
        Some("v1=abc"),
        StatusCode::BAD_REQUEST,
        "signature_malformed",
    )
    .await;
    assert_refused(
        &app,
        &company,
        body.clone(),
        Some("t=notanumber,v1=00"),
        StatusCode::BAD_REQUEST,
        "signature_malformed",
    )
    .await;
    assert_refused(
        &app,
        &company,
        body.clone(),
        None,
        StatusCode::BAD_REQUEST,
        "signature_missing",
    )
    .await;
    // The secret of another company.
    let other_secret = new_secret();
    let _other = app.company_with_secret(&other_secret).await;
    let foreign = sign(&other_secret, t, &body);
    assert_refused(
        &app,
        &company,
        body.clone(),
        Some(&foreign),
        StatusCode::BAD_REQUEST,
        "signature_invalid",
    )
    .await;
    assert_eq!(app.inbox_count(&company).await, 0);
    // Every rejection was counted, with its reason, never the body.
    let (s, f) = app
        .admin_get(&format!("/admin/v1/companies/{company}/delivery-failures"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["total"], 7, "{f}");
    let invalid = f["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "signature_invalid")
        .unwrap();
    assert_eq!(invalid["count"], 3);
    assert!(
        invalid["explanation"]
            .as_str()
            .unwrap()
            .contains("signing secret")
    );
    assert!(!f.to_string().contains("pi_1"));
}

async fn rotated_secret_is_accepted_in_grace_and_refused_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let old = new_secret();
    let company = app.company_with_secret(&old).await;
    let (_, profiles) = app
        .admin_get(&format!("/admin/v1/companies/{company}/profiles"))
        .await;
    let profile_id = profiles["data"][0]["id"].as_str().unwrap().to_owned();
    let new = new_secret();
    let (s, p) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/profiles/{profile_id}/signing-secrets"),
            json!({"webhook_secret": new, "grace_period_secs": 3600}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["signing_secrets"].as_array().unwrap().len(), 2);
    // Both verify while the old one is in grace.
    assert_eq!(
        app.deliver(&company, &old, &pi_event()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.deliver(&company, &new, &pi_event()).await.0,
        StatusCode::OK
    );
    // Rotating again with no grace expires every earlier secret at once.
    let newest = new_secret();
    let (s, _) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/profiles/{profile_id}/signing-secrets"),
            json!({"webhook_secret": newest, "grace_period_secs": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = app.deliver(&company, &old, &pi_event()).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("signature_invalid"))
    );
    assert_eq!(
        app.deliver(&company, &new, &pi_event()).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.deliver(&company, &newest, &pi_event()).await.0,
        StatusCode::OK
    );
    assert_eq!(app.inbox_count(&company).await, 3);
}

async fn livemode_must_match_the_profile_of_the_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let test_secret = new_secret();
    let live_secret = new_secret();
    let company = app.company_with_secret(&test_secret).await;
    app.create_profile(&company, "live", &live_secret).await;
    let mut live_event = pi_event();
    live_event["livemode"] = json!(true);
    let (s, b) = app.deliver(&company, &test_secret, &live_event).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("livemode_mismatch"))
    );
    let (s, b) = app.deliver(&company, &live_secret, &pi_event()).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("livemode_mismatch"))
    );
    assert_eq!(app.inbox_count(&company).await, 0);
    assert_eq!(
        app.deliver(&company, &live_secret, &live_event).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.deliver(&company, &test_secret, &pi_event()).await.0,
        StatusCode::OK
    );
    assert_eq!(app.inbox_count(&company).await, 2);
}

async fn payloads_that_are_not_snapshot_events_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (br#"{"hello":"world"}"#.to_vec(), "payload_invalid"),
        (br#"{"id":"pi_1","object":"payment_intent","amount":100}"#.to_vec(), "payload_invalid"),
        (b"not json at all".to_vec(), "payload_invalid"),
        // A thin event is accepted (see `thin_events`), but not without its `livemode`.
        (
            br#"{"id":"evt_thin_1","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered","created":"2024-09-17T06:20:52.246Z","related_object":{"id":"mtr_1","type":"billing.meter","url":"/v1/billing/meters/mtr_1"}}"#.to_vec(),
            "payload_invalid",
        ),
    ];
    for (body, code) in cases {
        let sig = sign(&secret, t, &body);
        assert_refused(
            &app,
            &company,
            body,
            Some(&sig),
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
    }
    // Over 1 MiB.
    let big = vec![b' '; 1024 * 1024 + 10];
    let sig = sign(&secret, t, &big);
    assert_refused(
        &app,
        &company,
        big,
        Some(&sig),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_eq!(app.inbox_count(&company).await, 0);
}

async fn unknown_and_suspended_companies_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let body = serde_json::to_vec(&pi_event()).unwrap();
    let sig = sign(&secret, now_secs(), &body);
    assert_refused(
        &app,
        "no_such_company",
        body.clone(),
        Some(&sig),
        StatusCode::NOT_FOUND,
        "company_not_found",
    )
    .await;
    let company = app.company_with_secret(&secret).await;
    let (s, _) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_refused(
        &app,
        &company,
        body.clone(),
        Some(&sig),
        StatusCode::FORBIDDEN,
        "company_suspended",
    )
    .await;
    assert_eq!(app.inbox_count(&company).await, 0);
    // Reactivated, Stripe's retry is accepted.
    app.admin_patch(
        &format!("/admin/v1/companies/{company}"),
        json!({"status": "active"}),
    )
    .await;
    let (s, b) = app.post_callback(&company, body, Some(&sig)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(app.inbox_count(&company).await, 1);
}

db_tests!(
    valid_delivery_is_stored_once,
    same_delivery_five_times_concurrently_is_stored_once,
    any_of_two_v1_signatures_may_match,
    bad_signatures_are_refused_and_nothing_stored,
    rotated_secret_is_accepted_in_grace_and_refused_after,
    livemode_must_match_the_profile_of_the_secret,
    payloads_that_are_not_snapshot_events_are_refused,
    unknown_and_suspended_companies_are_refused,
);

async fn a_flood_of_bad_deliveries_from_one_address_is_cut_off_cheaply(backend: Backend) {
    let mut opts = paygate_testkit::Options::new(backend);
    opts.adjust = |s| s.intake_reject_limit_per_minute = 10;
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let body = serde_json::to_vec(&pi_event()).unwrap();
    let bad = sign("whsec_attacker_guess", now_secs(), &body);
    for _ in 0..10 {
        assert_eq!(
            app.post_callback(&company, body.clone(), Some(&bad))
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
    }
    for _ in 0..20 {
        let (s, b) = app.post_callback(&company, body.clone(), Some(&bad)).await;
        assert_eq!(
            (s, b["error"]["code"].clone()),
            (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited"))
        );
    }
    // The database holds the counted rejections, not the flood.
    let (_, f) = app
        .admin_get(&format!("/admin/v1/companies/{company}/delivery-failures"))
        .await;
    assert_eq!(f["total"], 10, "{f}");
    assert_eq!(app.inbox_count(&company).await, 0);
}

db_tests!(a_flood_of_bad_deliveries_from_one_address_is_cut_off_cheaply);

/// On SQLite, acknowledged events reach the database file itself soon after, not only its
/// write-ahead log: the committing connection never checkpoints (so it never stalls the
/// deliveries waiting on it), a background checkpointer does, at least every second. Twenty
/// events are far below SQLite's own automatic checkpoint (1 000 pages), so without the
/// checkpointer they would stay in the WAL until the process ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_events_reach_the_database_file_through_background_checkpoints() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let events: Vec<Value> = (0..20).map(|_| pi_event()).collect();
    for (s, b) in join_all(events.iter().map(|ev| app.deliver(&company, &secret, ev))).await {
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let main_file = app.db.data_dir.join("paygate.db");
    let copy = app.db.data_dir.join("main-file-only.db");
    let in_main_file = || -> Option<i64> {
        // The main file alone, without its `-wal`: what a checkpoint has copied back.
        std::fs::copy(&main_file, &copy).ok()?;
        let c = rusqlite::Connection::open(&copy).ok()?;
        c.query_row(
            "SELECT count(*) FROM inbox_events WHERE origin = 'webhook'",
            [],
            |r| r.get(0),
        )
        .ok()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let n = in_main_file();
        if n == Some(20) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file holds {n:?} of the 20 acknowledged events after 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A new SQLite database is durable as promised and laid out for the intake: WAL, every commit
/// flushed (`synchronous = FULL` on the app's connection), 2 KiB pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sqlite_database_is_durable_with_small_pages() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let pragma = |name: &'static str| {
        let db = app.app.db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    DatabaseBackend::Sqlite,
                    format!("PRAGMA {name}"),
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<i64>(0)
                .map(|n| n.to_string())
                .or_else(|_| row.try_get_by_index::<String>(0))
                .unwrap()
        }
    };
    assert_eq!(pragma("journal_mode").await, "wal");
    assert_eq!(pragma("synchronous").await, "2", "FULL");
    assert_eq!(pragma("page_size").await, "2048");
    // Persisted in the file: a connection of its own sees the same.
    let c = rusqlite::Connection::open(app.db.data_dir.join("paygate.db")).unwrap();
    let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert_eq!(page_size, 2048);
}
