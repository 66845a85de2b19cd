//! Two real `paygate` processes on one PostgreSQL database, one killed with SIGKILL mid-way:
//! every acknowledged event is stored once and processed, every checkout fulfilled once, every
//! notification written once and received.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use paygate_testkit::objects::{checkout_session, line_items_page, payment_intent};
use paygate_testkit::{
    Backend, TestDatabase, event, new_secret, now_secs, postgres_available, sign,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

struct SessionById;

impl Respond for SessionById {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let id = req
            .url
            .path()
            .trim_start_matches("/v1/checkout/sessions/")
            .to_owned();
        let mut s = checkout_session(&id, "paid", 1000);
        s["line_items"] = line_items_page(&id, &["li_1"], false);
        ResponseTemplate::new(200).set_body_json(s)
    }
}

struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(db: &TestDatabase, port: u16, envs: &[(&str, String)]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paygate"));
    cmd.arg("serve")
        .current_dir(&db.data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("PAYGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PAYGATE_BIND", format!("127.0.0.1:{port}"))
        .env("PAYGATE_DATABASE_URL", &db.url)
        .env("PAYGATE_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().unwrap())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(
        reqwest::get(format!("{base}/readyz"))
            .await
            .map(|r| r.status()),
        Ok(StatusCode::OK)
    ) {
        assert!(Instant::now() < deadline, "{base} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_killed_lose_nothing_and_fulfill_once() {
    if !postgres_available().await {
        return;
    }
    let db = TestDatabase::create(Backend::Postgres).await;
    let stripe = MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(SessionById)
        .mount(&stripe)
        .await;
    let password = format!("Adm1n-{}", new_secret());
    let envs = vec![
        (
            "PAYGATE_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        ("PAYGATE_ADMIN_EMAIL", "root@example.com".to_owned()),
        ("PAYGATE_ADMIN_PASSWORD", password.clone()),
        ("PAYGATE_STRIPE_API_BASE", stripe.uri()),
        ("PAYGATE_WORKER_LEASE_SECS", "2".to_owned()),
        ("PAYGATE_NOTIFY_LEASE_SECS", "2".to_owned()),
        ("PAYGATE_OUTBOUND_ALLOW_PRIVATE", "true".to_owned()),
        (
            "PAYGATE_NOTIFY_RETRY_SCHEDULE",
            "50ms,100ms,200ms".to_owned(),
        ),
    ];
    // The merchant's systems, told about every payment and fulfillment.
    let rx = paygate_testkit::receivers::Receiver::start(&[]).await;
    let (pa, pb) = (free_port(), free_port());
    let (a_base, b_base) = (
        format!("http://127.0.0.1:{pa}"),
        format!("http://127.0.0.1:{pb}"),
    );
    let mut a = spawn(&db, pa, &envs);
    wait_ready(&a_base).await;
    let b = spawn(&db, pb, &envs);
    wait_ready(&b_base).await;
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{b_base}/admin/v1/auth/token"))
        .json(&json!({"email": "root@example.com", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let whsec = new_secret();
    for (p, body) in [
        (
            "/admin/v1/companies",
            json!({"company_id": "twin", "name": "Twin"}),
        ),
        (
            "/admin/v1/companies/twin/profiles",
            json!({"name": "t", "mode": "test", "publishable_key": "pk_test_1", "secret_key": "sk_test_1234567890", "webhook_secret": whsec}),
        ),
    ] {
        assert_eq!(
            client
                .post(format!("{b_base}{p}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::CREATED
        );
    }
    let created: Value = client
        .post(format!(
            "{b_base}/admin/v1/companies/twin/notification-endpoints"
        ))
        .bearer_auth(&token)
        .json(&json!({"url": rx.url(), "event_types": ["payment.succeeded", "order.fulfilled"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let whsec_out = created["secret"].as_str().unwrap().to_owned();
    let mut events: Vec<Value> = (0..300)
        .map(|i| {
            event(
                "payment_intent.succeeded",
                payment_intent(&format!("pi_twin_{i}"), "succeeded", 1000),
            )
        })
        .collect();
    events.extend((0..30).map(|i| {
        event(
            "checkout.session.completed",
            checkout_session(&format!("cs_test_twin_{i}"), "paid", 1000),
        )
    }));
    // Deliver every event twice, to both replicas, concurrently; kill A a third of the way in.
    // A delivery that fails is retried against B, as Stripe retries until it gets a 2xx.
    let send = |base: String, ev: Value| {
        let (client, whsec) = (client.clone(), whsec.clone());
        async move {
            let body = serde_json::to_vec(&ev).unwrap();
            client
                .post(format!("{base}/callbacks/v1.0/stripe/twin"))
                .header("Stripe-Signature", sign(&whsec, now_secs(), &body))
                .body(body)
                .send()
                .await
                .map(|r| r.status())
        }
    };
    let mut acked = std::collections::HashSet::new();
    for (n, chunk) in events.chunks(30).enumerate() {
        if n == 4 {
            a.0.kill().unwrap(); // SIGKILL mid-burst
            a.0.wait().unwrap();
        }
        let futs = chunk.iter().flat_map(|ev| {
            [
                send(a_base.clone(), ev.clone()),
                send(b_base.clone(), ev.clone()),
            ]
        });
        let results = futures_util::future::join_all(futs).await;
        for (ev, pair) in chunk.iter().zip(results.chunks(2)) {
            let ok = pair
                .iter()
                .any(|r| matches!(r, Ok(s) if *s == StatusCode::OK));
            if !ok {
                assert_eq!(
                    send(b_base.clone(), ev.clone()).await.unwrap(),
                    StatusCode::OK
                );
            }
            acked.insert(ev["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(acked.len(), events.len());
    // B's workers finish everything, including what A had claimed when it died.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats: Value = client
            .get(format!("{b_base}/admin/v1/companies/twin/events/stats"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stats["processed"].as_u64() == Some(events.len() as u64) {
            assert_eq!(
                stats["total"],
                events.len(),
                "every acknowledged event stored exactly once: {stats}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not all processed: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let admin = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(
        paygate_db::entities::fulfillment::Entity::find()
            .count(&admin)
            .await
            .unwrap(),
        30,
        "each checkout fulfilled exactly once"
    );
    assert_eq!(
        paygate_db::entities::payment_intent::Entity::find()
            .count(&admin)
            .await
            .unwrap(),
        300
    );
    // Every message written once (one per change), and each reached the receiver, signed, at
    // least once (at-least-once delivery: a replica killed mid-delivery may repeat one, with
    // the same webhook-id).
    use sea_orm::{ColumnTrait, QueryFilter};
    let ids: std::collections::HashSet<String> =
        paygate_db::entities::notification_message::Entity::find()
            .all(&admin)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
    assert_eq!(
        ids.len(),
        330,
        "300 payment.succeeded and 30 order.fulfilled"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = paygate_db::entities::notification_delivery::Entity::find()
            .filter(paygate_db::entities::notification_delivery::Column::Status.ne("succeeded"))
            .count(&admin)
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} notifications undelivered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wh = standardwebhooks::Webhook::new(&whsec_out).unwrap();
    let mut received = std::collections::HashSet::new();
    for r in rx.requests().await {
        let mut h = http::HeaderMap::new();
        for (k, v) in r.headers.iter() {
            h.insert(
                http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        wh.verify(&r.body, &h).unwrap();
        received.insert(h["webhook-id"].to_str().unwrap().to_owned());
    }
    assert_eq!(received, ids, "every message received");
    let _ = admin.close().await;
    drop(b);
}
