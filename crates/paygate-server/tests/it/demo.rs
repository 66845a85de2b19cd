//! `paygate demo` with the real binaries: a fresh server, the demo run beside it, and what the
//! operators' API, the merchant's sign-in and a notification receiver then see.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use paygate_testkit::receivers::Receiver;
use paygate_testkit::{Backend, TestDatabase, db_tests, new_secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{admin_token, start};

/// Runs `paygate demo <args>` beside the server of `db` (same data directory and database);
/// asserts it succeeded and returns what it printed.
pub(crate) async fn demo(db: &TestDatabase, backend: Backend, base: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = try_demo(db, backend, base, args).await;
    assert!(ok, "paygate demo {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs `paygate demo <args>`: whether it succeeded, its standard output and error.
async fn try_demo(
    db: &TestDatabase,
    backend: Backend,
    base: &str,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paygate"));
    cmd.arg("demo")
        .arg("--base-url")
        .arg(base)
        .args(args)
        .current_dir(&db.data_dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("PAYGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PAYGATE_OUTBOUND_ALLOW_PRIVATE", "true")
        .env("NO_COLOR", "1");
    if backend == Backend::Postgres {
        cmd.env("PAYGATE_DATABASE_URL", &db.url);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value printed after `label` on a line of `out`.
pub(crate) fn printed<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
        .trim()
}

async fn get(client: &reqwest::Client, token: &str, url: String) -> (StatusCode, Value) {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The `data` of a page of the operators' API (200 asserted).
async fn page(client: &reqwest::Client, token: &str, url: String) -> Vec<Value> {
    let (status, body) = get(client, token, url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// Signs in through the back office's form; the answer's status and `Location`.
async fn sign_in(base: &str, email: &str, password: &str) -> (StatusCode, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client.get(format!("{base}/signin")).send().await.unwrap();
    let cookies: Vec<String> = form
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next().map(str::to_owned))
        .collect();
    let html = form.text().await.unwrap();
    let csrf = paygate_testkit::backoffice::csrf_of(&html).expect("a CSRF token on /signin");
    let r = client
        .post(format!("{base}/signin"))
        .header(reqwest::header::COOKIE, cookies.join("; "))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let location = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (r.status(), location)
}

/// The types of the notifications `receiver` got, once they include every one of `want`
/// (waits up to 30 s); each message is asserted to be test data.
async fn received_types(receiver: &Receiver, want: &[&str]) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut types = BTreeSet::new();
        for r in receiver.requests().await {
            let m: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(m["livemode"], false, "a live notification: {m}");
            assert_eq!(m["company_id"], "demo", "{m}");
            types.insert(m["type"].as_str().unwrap().to_owned());
        }
        if want.iter().all(|w| types.contains(*w)) {
            return types;
        }
        assert!(
            Instant::now() < deadline,
            "the receiver got {types:?}, not all of {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// On a fresh data directory, `paygate demo` makes the demo company and its merchant user and
/// fills it through the intake: fulfilled orders, failed payments, a dispute through its life
/// and their notifications, all test data; a second run reuses the company and the user and
/// adds a batch; `--reset` removes it; a demo key is refused to any other company.
async fn demo_fills_a_fresh_server_through_the_intake(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let receiver = Receiver::start(&[]).await;
    let admin_password = format!("Adm1n-{}", new_secret());
    let (_child, base) = start(
        &db,
        backend,
        &[
            ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
            ("PAYGATE_ADMIN_PASSWORD", &admin_password),
            ("PAYGATE_OUTBOUND_ALLOW_PRIVATE", "true"),
            ("PAYGATE_NOTIFY_RETRY_SCHEDULE", "1s,1s,1s"),
        ],
    );
    let out = demo(&db, backend, &base, &["--notify-url", &receiver.url()]).await;
    let email = printed(&out, "e-mail:").to_owned();
    let password = printed(&out, "password:").to_owned();
    assert!(out.contains("Demo shop (demo data)"), "{out}");

    let client = reqwest::Client::new();
    let token = admin_token(&base, &admin_password).await;
    let api = |path: &str| format!("{base}/admin/v1/companies/demo{path}");

    // The company: labelled, test mode, Stripe on.
    let (status, company) = get(&client, &token, api("")).await;
    assert_eq!(status, StatusCode::OK, "{company}");
    assert_eq!(company["name"], "Demo shop (demo data)");
    assert_eq!(company["environment"], "test");
    assert_eq!(company["stripe_enabled"], true);

    // What the events made, all in test mode.
    let orders = page(&client, &token, api("/orders?limit=200")).await;
    let statuses: Vec<&str> = orders
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.iter().filter(|s| **s == "fulfilled").count() >= 4,
        "{statuses:?}"
    );
    assert!(statuses.contains(&"payment_failed"), "{statuses:?}");
    assert!(statuses.contains(&"expired"), "{statuses:?}");
    assert!(
        orders.iter().any(|o| o["disputed"] == true),
        "no disputed order: {orders:?}"
    );
    let intents = page(&client, &token, api("/payment-intents?limit=200")).await;
    assert!(
        intents
            .iter()
            .any(|p| p["status"] == "requires_payment_method" && !p["last_payment_error"].is_null()),
        "no failed payment: {intents:?}"
    );
    assert!(intents.iter().any(|p| p["status"] == "succeeded"));
    let disputes = page(&client, &token, api("/disputes?limit=200")).await;
    assert_eq!(disputes.len(), 1, "{disputes:?}");
    assert_eq!(disputes[0]["status"], "won");
    for o in orders.iter().chain(&intents).chain(&disputes) {
        assert_eq!(o["livemode"], false, "{o}");
    }
    for path in ["/orders", "/payment-intents", "/disputes", "/events"] {
        let live = page(&client, &token, api(&format!("{path}?mode=live"))).await;
        assert!(live.is_empty(), "live {path}: {live:?}");
    }
    let events = page(&client, &token, api("/events?limit=200")).await;
    assert!(events.len() >= 20, "{events:?}");

    // The notifications they cause reached the merchant's receiver.
    received_types(
        &receiver,
        &[
            "order.fulfilled",
            "order.payment_failed",
            "order.expired",
            "payment.succeeded",
            "payment.failed",
            "dispute.opened",
            "dispute.updated",
            "dispute.closed",
        ],
    )
    .await;

    // The printed merchant user signs in to the back office.
    let (status, location) = sign_in(&base, &email, &password).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    assert!(location.starts_with("/app"), "{location}");

    // A second run: the same company and user, one more batch.
    let again = demo(&db, backend, &base, &["--notify-url", &receiver.url()]).await;
    assert!(
        printed(&again, "password:").starts_with("unchanged"),
        "{again}"
    );
    let companies = page(
        &client,
        &token,
        format!("{base}/admin/v1/companies?search=demo"),
    )
    .await;
    assert_eq!(
        companies
            .iter()
            .filter(|c| c["company_id"] == "demo")
            .count(),
        1
    );
    let users = page(&client, &token, api("/users")).await;
    assert_eq!(users.len(), 1, "{users:?}");
    let endpoints = page(&client, &token, api("/notification-endpoints")).await;
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    let orders2 = page(&client, &token, api("/orders?limit=200")).await;
    assert_eq!(orders2.len(), 2 * orders.len());
    assert_eq!(page(&client, &token, api("/disputes")).await.len(), 2);
    let (status, _) = sign_in(&base, &email, &password).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // A demo key belongs to the demo company only.
    let r = client
        .post(format!("{base}/admin/v1/companies"))
        .bearer_auth(&token)
        .json(&json!({"company_id": "acme", "name": "ACME"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client
        .post(format!("{base}/admin/v1/companies/acme/profiles"))
        .bearer_auth(&token)
        .json(&json!({"name": "t", "mode": "test", "publishable_key": "pk_test_1", "secret_key": "sk_test_paygate_demo_stolen", "webhook_secret": new_secret()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // `--reset` removes the demo company, and only it.
    let reset = demo(&db, backend, &base, &["--reset"]).await;
    assert!(reset.contains("Removed the demo company"), "{reset}");
    let (status, _) = get(&client, &token, api("")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&client, &token, format!("{base}/admin/v1/companies/acme")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = sign_in(&base, &email, &password).await;
    assert_ne!(status, StatusCode::SEE_OTHER);
}

/// Without a server at the base URL the demo says so, and writes nothing.
async fn demo_says_when_no_server_answers(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let (ok, stdout, stderr) = try_demo(&db, backend, &base, &[]).await;
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("not reachable"), "{stderr}");
    assert!(stderr.contains("paygate serve"), "{stderr}");
    assert!(!db.data_dir.join("paygate-data").exists());
}

db_tests!(
    demo_fills_a_fresh_server_through_the_intake,
    demo_says_when_no_server_answers
);
