//! The HTTP edge: `/metrics` behind a bearer token or on an address of its own, a deadline for
//! request bodies (slow-loris), and HSTS when the public URL is https.

use std::time::{Duration, Instant};

use paygate_testkit::{Backend, Options, TestApp, TestDatabase, db_tests, new_secret};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

async fn metrics_need_the_bearer_token_when_one_is_set(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.metrics_token = Some(METRICS_TOKEN.to_owned().into());
    let app = TestApp::start(opts).await;
    for auth in [
        None,
        Some("Bearer wrong-token-0123456789abcd"),
        Some("Basic abc"),
    ] {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"metrics\"")
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        assert!(!body.to_string().contains("paygate_"), "no metric leaks");
    }
    let r = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("paygate_inbox_backlog"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn metrics_bind_serves_metrics_apart_from_the_main_listener(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let (_child, base) = crate::binary::start(
        &db,
        backend,
        &[
            ("PAYGATE_METRICS_BIND", metrics_addr.as_str()),
            ("PAYGATE_METRICS_TOKEN", METRICS_TOKEN),
        ],
    );
    let client = reqwest::Client::new();
    let get = |url: String, token: bool| {
        let mut r = client.get(url);
        if token {
            r = r.bearer_auth(METRICS_TOKEN);
        }
        r.send()
    };
    let main = get(format!("{base}/metrics"), true).await.unwrap();
    assert_eq!(
        main.status(),
        StatusCode::NOT_FOUND,
        "not on the main listener"
    );
    let apart = get(format!("http://{metrics_addr}/metrics"), true)
        .await
        .unwrap();
    assert_eq!(apart.status(), StatusCode::OK);
    assert!(
        apart
            .text()
            .await
            .unwrap()
            .contains("paygate_inbox_backlog")
    );
    assert_eq!(
        get(format!("http://{metrics_addr}/metrics"), false)
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED,
        "the token holds there too"
    );
    assert_eq!(
        get(format!("http://{metrics_addr}/healthz"), true)
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND,
        "nothing else is served there"
    );
    assert_eq!(
        get(format!("{base}/healthz"), false)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// Sends a request head announcing 1000 bytes of body and only the first few, then waits for
/// the answer; `(status line, seconds until it came, whether the server closed)`.
async fn stall(addr: std::net::SocketAddr, head: &str, limit: Duration) -> (String, f64, bool) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{head}\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"id\": \"evt_"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(limit, s.read(&mut buf)).await {
            Ok(Ok(0)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&got).to_string();
    (
        text.lines().next().unwrap_or("").to_owned(),
        started.elapsed().as_secs_f64(),
        closed,
    )
}

async fn a_stalled_body_gets_408_and_is_cut_off_while_others_are_served(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.body_read_timeout_secs = 2;
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let token = app.admin_token().await;
    let stalls = [
        format!("POST /callbacks/v1.0/stripe/{company} HTTP/1.1"),
        format!("POST /admin/v1/companies HTTP/1.1\r\nAuthorization: Bearer {token}"),
    ];
    let addr = app.addr;
    let stalled: Vec<_> = stalls
        .iter()
        .map(|head| {
            let head = head.clone();
            tokio::spawn(async move { stall(addr, &head, Duration::from_secs(8)).await })
        })
        .collect();
    // Meanwhile the server goes on serving everyone else.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ev = paygate_testkit::event(
        "payment_intent.succeeded",
        serde_json::json!({"id": "pi_beside_a_stall", "object": "payment_intent", "status": "succeeded"}),
    );
    let t = Instant::now();
    assert_eq!(app.deliver(&company, &secret, &ev).await.0, StatusCode::OK);
    assert_eq!(app.admin_get("/admin/v1/companies").await.0, StatusCode::OK);
    assert!(t.elapsed() < Duration::from_secs(2), "served at once");
    for (head, task) in stalls.iter().zip(stalled) {
        let (status, secs, closed) = task.await.unwrap();
        assert!(
            status.starts_with("HTTP/1.1 408"),
            "{head}: {status:?} after {secs:.1}s"
        );
        assert!(
            (1.5..6.0).contains(&secs),
            "{head}: the answer came after {secs:.1}s (limit 2s)"
        );
        assert!(closed, "{head}: the connection is closed");
    }
    assert_eq!(app.inbox_count(&company).await, 1);
}

async fn hsts_is_on_every_answer_when_the_public_url_is_https(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.public_base_url = Some("https://pay.example.com".into());
    let https = TestApp::start(opts).await;
    let plain = TestApp::spawn(backend).await;
    for path in [
        "/healthz",
        "/signin",
        "/no/such/page",
        "/admin/v1/companies",
    ] {
        let get = |app: &TestApp| app.client.get(app.url(path)).send();
        let r = get(&https).await.unwrap();
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000; includeSubDomains"),
            "{path} answered {}",
            r.status()
        );
        let r = get(&plain).await.unwrap();
        assert!(
            r.headers().get("strict-transport-security").is_none(),
            "{path}: no HSTS over plain http"
        );
    }
}

db_tests!(
    metrics_need_the_bearer_token_when_one_is_set,
    metrics_bind_serves_metrics_apart_from_the_main_listener,
    a_stalled_body_gets_408_and_is_cut_off_while_others_are_served,
    hsts_is_on_every_answer_when_the_public_url_is_https,
);
