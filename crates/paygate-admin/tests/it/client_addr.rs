//! The intake's per-address limit of rejected deliveries counts the client's address: behind a
//! trusted proxy the forwarded one (so one client's flood does not cut everyone off), and the
//! peer's own when the proxy is not trusted (so a client cannot dodge the limit by writing
//! `X-Forwarded-For` itself).

use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret, now_secs, sign};
use reqwest::StatusCode;
use serde_json::json;

/// Posts a delivery signed with a wrong secret, from `from` (through `X-Forwarded-For`).
async fn bad_delivery(app: &TestApp, company: &str, from: &str) -> StatusCode {
    let body = serde_json::to_vec(&event(
        "payment_intent.succeeded",
        json!({"id": "pi_1", "object": "payment_intent", "status": "succeeded"}),
    ))
    .unwrap();
    let req = app
        .client
        .post(app.url(&format!("/callbacks/v1.0/stripe/{company}")))
        .header("content-type", "application/json")
        .header("x-forwarded-for", from)
        .header(
            "stripe-signature",
            sign("whsec_attacker_guess", now_secs(), &body),
        )
        .body(body);
    app.send(req).await.0
}

async fn the_intake_limit_counts_the_forwarded_client_behind_a_trusted_proxy(backend: Backend) {
    let app = TestApp::start(Options {
        adjust: |s| {
            s.intake_reject_limit_per_minute = 3;
            s.trusted_proxies = "127.0.0.0/8".into();
        },
        ..Options::new(backend)
    })
    .await;
    let company = app.company_with_secret(&new_secret()).await;
    for _ in 0..3 {
        assert_eq!(
            bad_delivery(&app, &company, "203.0.113.7").await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        bad_delivery(&app, &company, "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is still heard.
    assert_eq!(
        bad_delivery(&app, &company, "198.51.100.20").await,
        StatusCode::BAD_REQUEST
    );
    // The rejections record the client's address, not the proxy's (written in the background).
    let mut tries = 0;
    let f = loop {
        let (_, f) = app
            .admin_get(&format!("/admin/v1/companies/{company}/delivery-failures"))
            .await;
        if f["total"] == 4 || tries == 100 {
            break f;
        }
        tries += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let text = f.to_string();
    assert!(
        text.contains("203.0.113.7")
            && text.contains("198.51.100.20")
            && !text.contains("127.0.0.1"),
        "{f}"
    );
}

async fn the_intake_limit_ignores_forwarded_headers_from_an_untrusted_peer(backend: Backend) {
    let app = TestApp::start(Options {
        adjust: |s| s.intake_reject_limit_per_minute = 3,
        ..Options::new(backend)
    })
    .await;
    let company = app.company_with_secret(&new_secret()).await;
    for n in 0..3 {
        assert_eq!(
            bad_delivery(&app, &company, &format!("203.0.113.{n}")).await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        bad_delivery(&app, &company, "198.51.100.20").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

db_tests!(
    the_intake_limit_counts_the_forwarded_client_behind_a_trusted_proxy,
    the_intake_limit_ignores_forwarded_headers_from_an_untrusted_peer,
);
