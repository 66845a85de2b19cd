//! Secrets in paths stay out of the logs: a one-time invitation link (`/invitations/<token>`)
//! is a password until it is used, so no log line names it. That covers the request span, the
//! CSRF guard's refusal, error pages, and mistyped variants of the path. The real binary logs at
//! debug level, in text and in JSON, and the test searches its whole output for the token.

use std::time::Duration;

use paygate_testkit::{Backend, TestDatabase, db_tests, new_secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{admin_token, start};

/// An invitation link for a new user of a new company `acme`; returns its token.
async fn invitation_token(client: &reqwest::Client, base: &str, token: &str) -> String {
    let r = client
        .post(format!("{base}/admin/v1/companies"))
        .bearer_auth(token)
        .json(&json!({"company_id": "acme", "name": "ACME"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let user: Value = client
        .post(format!("{base}/admin/v1/companies/acme/users"))
        .bearer_auth(token)
        .json(&json!({"email": "new.user@example.com", "role": "admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = user["invitation_url"].as_str().unwrap();
    let secret = url.rsplit('/').next().unwrap().to_owned();
    assert!(secret.len() >= 20, "{url}");
    secret
}

async fn invitation_tokens_never_reach_the_logs(backend: Backend) {
    for format in ["text", "json"] {
        let db = TestDatabase::create(backend).await;
        let password = format!("Adm1n-{}", new_secret());
        let (child, base) = start(
            &db,
            backend,
            &[
                ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
                ("PAYGATE_ADMIN_PASSWORD", &password),
                ("PAYGATE_LOG_FORMAT", format),
            ],
        );
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let admin = admin_token(&base, &password).await;
        let token = invitation_token(&client, &base, &admin).await;

        let page = client
            .get(format!("{base}/invitations/{token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        // The form posted without its CSRF token, and with a wrong one: refused and logged.
        for body in [
            "password=a+long+password+1&password_confirm=a+long+password+1".to_owned(),
            "csrf=wrong&password=a+long+password+1&password_confirm=a+long+password+1".to_owned(),
        ] {
            let r = client
                .post(format!("{base}/invitations/{token}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
        }
        // Mistyped and decorated variants of the link.
        for path in [
            format!("/invitations/{token}?utm_source=mail"),
            format!("/invitations/{token}/"),
            format!("/Invitations/{token}"),
            format!("//invitations/{token}"),
            format!("/invitations//{token}"),
            format!("/invitations/{token}/extra"),
        ] {
            client.get(format!("{base}{path}")).send().await.unwrap();
            client
                .post(format!("{base}{path}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("csrf=x")
                .send()
                .await
                .unwrap();
        }
        // The log lines reach the reader threads.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let logs = child.logs.lock().unwrap().clone();
        assert!(
            logs.contains("CSRF token missing or wrong"),
            "the refusals were logged ({format}):\n{logs}"
        );
        assert!(
            logs.contains("/invitations/…"),
            "the path is logged, masked ({format})"
        );
        assert!(
            !logs.contains(&token),
            "the invitation token appears in the {format} logs:\n{}",
            logs.lines()
                .filter(|l| l.contains(&token))
                .collect::<Vec<_>>()
                .join("\n")
        );
        drop(child);
    }
}

db_tests!(invitation_tokens_never_reach_the_logs);
