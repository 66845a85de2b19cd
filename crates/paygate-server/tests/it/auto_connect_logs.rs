//! Issue 17: connecting automatically and repairing the connection log what happened, never the
//! key nor a signing secret. The real binary logs at debug level, against a fake Stripe account
//! (wiremock on loopback); the test searches its whole output.

use std::time::Duration;

use paygate_testkit::stripe_account::FakeStripeAccount;
use paygate_testkit::{Backend, TestDatabase, db_tests, new_secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{admin_token, start};

const KEY: &str = "rk_test_51LogsMustNeverShowThisKey0000";

async fn stripe_keys_and_endpoint_secrets_never_reach_the_logs(backend: Backend) {
    let fake = FakeStripeAccount::start("acct_1LogSecrets000", true, true).await;
    let db = TestDatabase::create(backend).await;
    let password = format!("Adm1n-{}", new_secret());
    let api_base = fake.uri();
    let (child, base) = start(
        &db,
        backend,
        &[
            ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
            ("PAYGATE_ADMIN_PASSWORD", &password),
            ("PAYGATE_STRIPE_API_BASE", &api_base),
            ("PAYGATE_STRIPE_CHECK_SECS", "0"),
        ],
    );
    let token = admin_token(&base, &password).await;
    let client = reqwest::Client::new();
    let post = |path: String, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = post(
        "/admin/v1/companies".into(),
        json!({"company_id": "logs", "name": "Logs"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post(
        "/admin/v1/companies/logs/profiles".into(),
        json!({"secret_key": KEY, "auto_configure": true}),
    )
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let first = fake.endpoints().pop().unwrap();
    // Deleted behind Paygate's back: the check re-creates it, with a new secret.
    fake.remove(&first.id);
    let r = post("/admin/v1/companies/logs/stripe-check".into(), json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let second = fake.endpoints().pop().unwrap();
    // Revoked: Stripe's refusal is logged, the key is not.
    fake.fail_with(Some(401));
    post("/admin/v1/companies/logs/stripe-check".into(), json!({}))
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = child.logs.lock().unwrap().clone();
    assert!(
        logs.contains("Stripe account connected automatically"),
        "the connection was logged:\n{logs}"
    );
    for secret in [KEY, &first.secret, &second.secret] {
        assert!(
            !logs.contains(secret),
            "a secret appears in the logs:\n{}",
            logs.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    drop(child);
}

db_tests!(stripe_keys_and_endpoint_secrets_never_reach_the_logs);
