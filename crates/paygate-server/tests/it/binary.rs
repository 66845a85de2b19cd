//! The real `paygate` binary: starts with no configuration beyond a data directory and a port,
//! creates its master key privately, and never writes a secret to its logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paygate_testkit::{Backend, TestDatabase, db_tests, event, new_secret, now_secs, sign};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) struct Child {
    pub(crate) proc: std::process::Child,
    pub(crate) logs: Arc<Mutex<String>>,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

pub(crate) fn start(db: &TestDatabase, backend: Backend, envs: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paygate"));
    cmd.arg("serve")
        .current_dir(&db.data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("PAYGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PAYGATE_BIND", "127.0.0.1:0")
        .env("PAYGATE_LOG", "debug")
        .env("NO_COLOR", "1");
    if backend == Backend::Postgres {
        cmd.env("PAYGATE_DATABASE_URL", &db.url);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut proc = cmd.spawn().unwrap();
    let logs = Arc::new(Mutex::new(String::new()));
    for stream in [
        Box::new(proc.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(proc.stdout.take().unwrap()),
    ] {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut l = logs.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
    }
    let child = Child { proc, logs };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = child.logs.lock().unwrap().clone();
        if let Some(line) = text.lines().find(|l| l.contains("paygate serving")) {
            let addr = match serde_json::from_str::<Value>(line) {
                Ok(v) => v["fields"]["addr"].as_str().unwrap().to_owned(),
                Err(_) => line
                    .split("addr=")
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned(),
            };
            return (child, format!("http://{addr}"));
        }
        assert!(Instant::now() < deadline, "paygate did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn binary_serves_with_defaults_and_never_logs_secrets(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let admin_password = format!("Adm1n-{}", new_secret());
    let (child, base) = start(
        &db,
        backend,
        &[
            ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
            ("PAYGATE_ADMIN_PASSWORD", &admin_password),
        ],
    );
    let key_path = db.data_dir.join("paygate-data").join("master.key");
    let master_key = std::fs::read_to_string(&key_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(
        child
            .logs
            .lock()
            .unwrap()
            .contains("generated a new master key")
    );
    if backend == Backend::Sqlite {
        assert!(db.data_dir.join("paygate-data").join("paygate.db").exists());
    }

    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base}/admin/v1/auth/token"))
        .json(&json!({"email": "root@example.com", "password": admin_password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let company: Value = client
        .post(format!("{base}/admin/v1/companies"))
        .bearer_auth(&token)
        .json(&json!({"company_id": "acme", "name": "ACME"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        company["callback_url"],
        format!("{base}/callbacks/v1.0/stripe/acme")
    );
    let whsec = new_secret();
    let secret_key = format!("sk_live_51{}", &new_secret()[6..]);
    let resp = client
        .post(format!("{base}/admin/v1/companies/acme/profiles"))
        .bearer_auth(&token)
        .json(&json!({"name": "main", "mode": "live", "publishable_key": "pk_live_51abc", "secret_key": secret_key, "webhook_secret": whsec}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // A wrong key for the mode is refused (the message names the field, not the value).
    let resp = client
        .post(format!("{base}/admin/v1/companies/acme/profiles"))
        .bearer_auth(&token)
        .json(&json!({"name": "bad", "mode": "live", "publishable_key": "pk_live_51abc", "secret_key": "sk_test_51ShouldNotBeLogged0001", "webhook_secret": whsec}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut ev = event(
        "payment_intent.succeeded",
        json!({"id": "pi_1", "object": "payment_intent"}),
    );
    ev["livemode"] = json!(true);
    let body = serde_json::to_vec(&ev).unwrap();
    for sig in [
        sign(&whsec, now_secs(), &body),
        sign("whsec_wrong", now_secs(), &body),
    ] {
        client
            .post(format!("{base}/callbacks/v1.0/stripe/acme"))
            .header("Stripe-Signature", sig)
            .body(body.clone())
            .send()
            .await
            .unwrap();
    }
    let resp = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let logs = child.logs.lock().unwrap().clone();
    assert!(logs.contains("paygate serving"));
    for (what, secret) in [
        ("admin password", admin_password.as_str()),
        ("secret key", secret_key.as_str()),
        ("refused secret key", "sk_test_51ShouldNotBeLogged0001"),
        ("signing secret", whsec.as_str()),
        ("master key", master_key.trim()),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}

db_tests!(binary_serves_with_defaults_and_never_logs_secrets);

pub(crate) async fn admin_token(base: &str, password: &str) -> String {
    let token: Value = reqwest::Client::new()
        .post(format!("{base}/admin/v1/auth/token"))
        .json(&json!({"email": "root@example.com", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}

/// A company `id` with an active test profile whose signing secret is `whsec`.
pub(crate) async fn company_with_profile(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    whsec: &str,
) {
    for (path, body) in [
        (
            "/admin/v1/companies".to_owned(),
            json!({"company_id": id, "name": id}),
        ),
        (
            format!("/admin/v1/companies/{id}/profiles"),
            json!({"name": "t", "mode": "test", "publishable_key": "pk_test_1", "secret_key": "sk_test_1234567890", "webhook_secret": whsec}),
        ),
    ] {
        let r = client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

/// SIGKILL in the middle of a burst of deliveries loses no event that was answered 200.
async fn sigkill_mid_burst_loses_no_acknowledged_event(backend: Backend) {
    interrupted_mid_burst(backend, false).await;
}

/// SIGTERM in the middle of a burst: Paygate stops accepting, finishes what is in flight and
/// exits cleanly on its own; every event answered 200 is there after a restart.
async fn sigterm_mid_burst_exits_cleanly_and_loses_nothing(backend: Backend) {
    interrupted_mid_burst(backend, true).await;
}

async fn interrupted_mid_burst(backend: Backend, graceful: bool) {
    let db = TestDatabase::create(backend).await;
    let password = format!("Adm1n-{}", new_secret());
    // On SQLite the events are applied in the transaction that stores them: a kill can never
    // leave one acknowledged and not applied, nor applied twice.
    let envs = [
        ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
        ("PAYGATE_ADMIN_PASSWORD", password.as_str()),
        ("PAYGATE_LOG", "warn,paygate=info"),
        ("PAYGATE_APPLY_AT_INTAKE", "true"),
    ];
    let (mut child, base) = start(&db, backend, &envs);
    let token = admin_token(&base, &password).await;
    let client = reqwest::Client::new();
    let whsec = new_secret();
    company_with_profile(&client, &base, &token, "crashy", &whsec).await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    // Answers other than 200 (the test fails on them, with the server's log).
    let unexpected = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (acked, unexpected, base, whsec, client) = (
            acked.clone(),
            unexpected.clone(),
            base.clone(),
            whsec.clone(),
            client.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                // A payment intent per event, so that each event's effect can be found.
                let mut ev = event(
                    "payment_intent.succeeded",
                    json!({"object": "payment_intent", "status": "succeeded", "amount": 1200, "amount_received": 1200, "currency": "eur"}),
                );
                ev["data"]["object"]["id"] =
                    json!(format!("pi_{}", &ev["id"].as_str().unwrap()[4..]));
                let body = serde_json::to_vec(&ev).unwrap();
                let sig = sign(&whsec, now_secs(), &body);
                match client
                    .post(format!("{base}/callbacks/v1.0/stripe/crashy"))
                    .header("Stripe-Signature", sig)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == StatusCode::OK => acked
                        .lock()
                        .unwrap()
                        .push(ev["id"].as_str().unwrap().to_owned()),
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        unexpected.lock().unwrap().push(format!("{status} {body}"));
                        break;
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 400 {
        assert!(Instant::now() < deadline, "deliveries did not go through");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if graceful {
        let pid = child.proc.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(40);
        let status = loop {
            if let Some(st) = child.proc.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "paygate did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "exit status {status}");
        std::thread::sleep(Duration::from_millis(100));
        let logs = child.logs.lock().unwrap().clone();
        assert!(logs.contains("paygate stopped"), "{logs}");
    } else {
        child.proc.kill().unwrap(); // SIGKILL
        child.proc.wait().unwrap();
    }
    for t in tasks {
        t.await.unwrap();
    }
    let unexpected = unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "deliveries answered neither 200 nor a closed connection: {unexpected:?}\n{}",
        child.logs.lock().unwrap()
    );
    let acked = acked.lock().unwrap().clone();
    drop(child);
    let (_child, base) = start(&db, backend, &envs);
    let token = admin_token(&base, &password).await;
    let stats: Value = client
        .get(format!("{base}/admin/v1/companies/crashy/events/stats"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["total"].as_u64().unwrap() >= acked.len() as u64,
        "{stats} < {}",
        acked.len()
    );
    // Every acknowledged event is stored; once the restarted workers are done, each was
    // applied exactly once (at intake, in the transaction that stored it, or by a worker
    // afterwards: one attempt either way) and its payment is there.
    let get = |path: String| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let r = client.get(path).bearer_auth(&token).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, stats) = get(format!("{base}/admin/v1/companies/crashy/events/stats")).await;
        if stats["pending"] == 0 {
            assert_eq!(stats["failed"], 0, "{stats}");
            break;
        }
        assert!(Instant::now() < deadline, "events left pending: {stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &acked {
        let (status, row) = get(format!("{base}/admin/v1/companies/crashy/events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "acknowledged event {id} was lost");
        assert_eq!(
            (row["status"].as_str(), row["attempts"].as_i64()),
            (Some("processed"), Some(1)),
            "acknowledged event {id} was not applied exactly once: {row}"
        );
        let pi = format!("pi_{}", &id[4..]);
        let (status, p) = get(format!(
            "{base}/admin/v1/companies/crashy/payment-intents/{pi}"
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "the payment of {id} is missing");
        assert_eq!(p["status"], "succeeded", "{p}");
    }
}

/// JSON logs name the request (the caller's `X-Request-Id`, echoed back), its company and the
/// event.
async fn json_logs_carry_request_company_and_event_ids(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let password = format!("Adm1n-{}", new_secret());
    let envs = [
        ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
        ("PAYGATE_ADMIN_PASSWORD", password.as_str()),
        ("PAYGATE_LOG_FORMAT", "json"),
    ];
    let (child, base) = start(&db, backend, &envs);
    let token = admin_token(&base, &password).await;
    let client = reqwest::Client::new();
    let whsec = new_secret();
    company_with_profile(&client, &base, &token, "loggy", &whsec).await;
    let ev = event(
        "payment_intent.succeeded",
        json!({"id": "pi_log", "object": "payment_intent", "status": "succeeded"}),
    );
    let body = serde_json::to_vec(&ev).unwrap();
    let r = client
        .post(format!("{base}/callbacks/v1.0/stripe/loggy"))
        .header("Stripe-Signature", sign(&whsec, now_secs(), &body))
        .header("X-Request-Id", "lb-req-4711")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "lb-req-4711");
    // An id is made up when the caller sent none (or a bad one).
    let r = client
        .get(format!("{base}/healthz"))
        .header("X-Request-Id", "no spaces allowed")
        .send()
        .await
        .unwrap();
    let made_up = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!made_up.is_empty() && !made_up.contains(' '));
    let deadline = Instant::now() + Duration::from_secs(20);
    let line = loop {
        let logs = child.logs.lock().unwrap().clone();
        if let Some(l) = logs
            .lines()
            .find(|l| l.contains("event stored") && l.contains("lb-req-4711"))
        {
            break l.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no log line of the delivery:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["span"]["request_id"], "lb-req-4711", "{line}");
    assert_eq!(v["span"]["company_id"], "loggy", "{line}");
    assert_eq!(v["fields"]["event_id"], ev["id"], "{line}");
    // Every line is JSON.
    for l in child.logs.lock().unwrap().lines() {
        assert!(serde_json::from_str::<Value>(l).is_ok(), "not JSON: {l}");
    }
}

/// Master-key rotation: start with a new key and the old one retired, `paygate rekey`, then run
/// with the new key alone: signing secrets still verify deliveries, profiles and notification
/// endpoints still read.
async fn master_key_rotation_reseals_everything(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let password = format!("Adm1n-{}", new_secret());
    let (old, new) = (
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=",
    );
    let base_envs = [
        ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
        ("PAYGATE_ADMIN_PASSWORD", password.as_str()),
        ("PAYGATE_OUTBOUND_ALLOW_PRIVATE", "true"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = base_envs.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let whsec = new_secret();
    let client = reqwest::Client::new();
    {
        let (_child, base) = start(&db, backend, &with(&[("PAYGATE_MASTER_KEY", old)]));
        let token = admin_token(&base, &password).await;
        for (path, body) in [
            (
                "/admin/v1/companies",
                json!({"company_id": "keyed", "name": "Keyed"}),
            ),
            (
                "/admin/v1/companies/keyed/profiles",
                json!({"name": "t", "mode": "test", "publishable_key": "pk_test_1", "secret_key": "sk_test_1234567890", "webhook_secret": whsec}),
            ),
            (
                "/admin/v1/companies/keyed/notification-endpoints",
                json!({"url": "http://127.0.0.1:9/hook"}),
            ),
        ] {
            let r = client
                .post(format!("{base}{path}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paygate"));
    cmd.arg("rekey").current_dir(&db.data_dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("PAYGATE_") {
            cmd.env_remove(k);
        }
    }
    if backend == Backend::Postgres {
        cmd.env("PAYGATE_DATABASE_URL", &db.url);
    }
    let out = cmd
        .env("PAYGATE_MASTER_KEY", new)
        .env("PAYGATE_MASTER_KEYS_RETIRED", old)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 profile secret key(s), 1 signing secret(s), 1 notification secret(s)"),
        "{stdout}"
    );
    // The new key alone from now on.
    let (_child, base) = start(&db, backend, &with(&[("PAYGATE_MASTER_KEY", new)]));
    let token = admin_token(&base, &password).await;
    let ev = event(
        "payment_intent.succeeded",
        json!({"id": "pi_rekey", "object": "payment_intent", "status": "succeeded"}),
    );
    let body = serde_json::to_vec(&ev).unwrap();
    let r = client
        .post(format!("{base}/callbacks/v1.0/stripe/keyed"))
        .header("Stripe-Signature", sign(&whsec, now_secs(), &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the signing secret still opens");
    for path in [
        "/admin/v1/companies/keyed/profiles",
        "/admin/v1/companies/keyed/notification-endpoints",
    ] {
        let r = client
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{path}: {}",
            r.text().await.unwrap()
        );
    }
}

db_tests!(
    sigkill_mid_burst_loses_no_acknowledged_event,
    master_key_rotation_reseals_everything,
    sigterm_mid_burst_exits_cleanly_and_loses_nothing,
    json_logs_carry_request_company_and_event_ids,
);
