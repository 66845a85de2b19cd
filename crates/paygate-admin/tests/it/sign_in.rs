//! Operators' sign-in at `POST /admin/v1/auth/token` (issue 16): the client address behind a
//! trusted proxy, the lockout per account and address, the per-account slowdown that spares fresh
//! addresses, e-mails refused before any throttle entry; and the operators' lifecycle: disable,
//! enable, remove (never the last active one), change one's own password, and tokens issued
//! before a disable or a password change stop working at once.

use paygate_testkit::{Backend, OPERATOR_EMAIL, OPERATOR_PASSWORD, Options, TestApp, db_tests};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

/// A Paygate that believes the forwarding headers of 127.0.0.1 (the tests' own address).
async fn behind_proxy(backend: Backend) -> TestApp {
    TestApp::start(Options {
        adjust: |s| s.trusted_proxies = "127.0.0.1/32".into(),
        ..Options::new(backend)
    })
    .await
}

/// `POST /admin/v1/auth/token`, with `X-Forwarded-For: from` when given.
async fn sign_in(
    app: &TestApp,
    email: &str,
    password: &str,
    from: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url("/admin/v1/auth/token"))
        .json(&json!({"email": email, "password": password}));
    if let Some(ip) = from {
        req = req.header("x-forwarded-for", ip);
    }
    app.send(req).await
}

async fn sign_in_failure_rows(app: &TestApp) -> i64 {
    let row = app
        .app
        .db
        .query_one_raw(Statement::from_string(
            app.app.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM sign_in_failures",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A status of `GET /admin/v1/operators` with `token`.
async fn with_token(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(app.url("/admin/v1/operators"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn token_of(app: &TestApp, email: &str, password: &str) -> String {
    let (s, b) = sign_in(app, email, password, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["access_token"].as_str().unwrap().to_owned()
}

async fn lockout_is_per_client_address_behind_a_trusted_proxy(backend: Backend) {
    let app = behind_proxy(backend).await;
    // Five wrong passwords from A, through the proxy.
    for _ in 0..5 {
        let (s, _) = sign_in(
            &app,
            OPERATOR_EMAIL,
            "not the password",
            Some("203.0.113.7"),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // A is locked out, even with the right password, and is told when to come back.
    let (s, b) = sign_in(&app, OPERATOR_EMAIL, OPERATOR_PASSWORD, Some("203.0.113.7")).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("too_many_attempts"))
    );
    // The owner, from B (a client-supplied hop to the left of it is not believed), gets in.
    let (s, b) = sign_in(
        &app,
        OPERATOR_EMAIL,
        OPERATOR_PASSWORD,
        Some("203.0.113.7, 198.51.100.20"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let raw = app
        .client
        .post(app.url("/admin/v1/auth/token"))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}))
        .send()
        .await
        .unwrap();
    let wait: u64 = raw.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    // `Forwarded: for=` is read too when there is no X-Forwarded-For.
    let (s, b) = app
        .send(
            app.client
                .post(app.url("/admin/v1/auth/token"))
                .header("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")
                .json(&json!({"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn forwarded_headers_are_ignored_without_trusted_proxies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for n in 0..5 {
        // Every attempt claims another address: none is believed.
        let (s, _) = sign_in(
            &app,
            OPERATOR_EMAIL,
            "not the password",
            Some(&format!("203.0.113.{n}")),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, b) = sign_in(
        &app,
        OPERATOR_EMAIL,
        OPERATOR_PASSWORD,
        Some("198.51.100.20"),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("too_many_attempts"))
    );
}

async fn failures_from_many_addresses_slow_the_account_down_but_spare_a_fresh_address(
    backend: Backend,
) {
    let app = behind_proxy(backend).await;
    // Ten addresses fail once each: none is locked out on its own.
    for n in 1..=10 {
        let (s, _) = sign_in(
            &app,
            OPERATOR_EMAIL,
            "not the password",
            Some(&format!("203.0.113.{n}")),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // An address that has failed for this account now waits, whatever it sends.
    let (s, b) = sign_in(&app, OPERATOR_EMAIL, OPERATOR_PASSWORD, Some("203.0.113.1")).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("too_many_attempts"))
    );
    // The owner, from an address that has not failed, is never locked out.
    let (s, b) = sign_in(
        &app,
        OPERATOR_EMAIL,
        OPERATOR_PASSWORD,
        Some("198.51.100.20"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Other accounts are not slowed down.
    let (s, _) = sign_in(
        &app,
        "someone@example.com",
        "not the password",
        Some("203.0.113.1"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn malformed_emails_are_refused_before_any_throttle_entry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = format!("{}@example.com", "a".repeat(300));
    for bad in [
        long.as_str(),
        "two@at@example.com",
        "ops\u{7}@example.com",
        "no-at-sign",
    ] {
        for _ in 0..6 {
            let (s, b) = sign_in(&app, bad, "not the password", None).await;
            assert_eq!(
                (s, b["error"]["code"].clone(), b["error"]["field"].clone()),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!("invalid_email"),
                    json!("email")
                ),
                "{bad:?}"
            );
        }
    }
    assert_eq!(sign_in_failure_rows(&app).await, 0);
    // A well-formed unknown e-mail is an ordinary failure, and is counted.
    let (s, _) = sign_in(&app, "nobody@example.com", "not the password", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_failure_rows(&app).await, 1);
}

async fn operators_are_disabled_enabled_and_removed_but_never_the_last_active_one(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, ops) = app.admin_get("/admin/v1/operators").await;
    let me = ops["data"][0]["id"].as_str().unwrap().to_owned();
    // Alone: neither disabled nor removed.
    let (s, b) = app
        .admin_post(&format!("/admin/v1/operators/{me}/disable"), json!({}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("last_active_operator"))
    );
    let (s, b) = app.admin_delete(&format!("/admin/v1/operators/{me}")).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("last_active_operator"))
    );
    // A second operator, signed in.
    let (s, second) = app
        .admin_post(
            "/admin/v1/operators",
            json!({"email": "second@paygate.test", "password": "second long password"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let second_id = second["id"].as_str().unwrap().to_owned();
    let t2 = token_of(&app, "second@paygate.test", "second long password").await;
    assert_eq!(with_token(&app, &t2).await, StatusCode::OK);
    // Disabled: their token stops working at once, and they cannot sign in.
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/operators/{second_id}/disable"),
            json!({}),
        )
        .await;
    assert_eq!((s, b["disabled"].clone()), (StatusCode::OK, json!(true)));
    assert_eq!(with_token(&app, &t2).await, StatusCode::UNAUTHORIZED);
    let (s, _) = sign_in(&app, "second@paygate.test", "second long password", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Now I am the last active one again.
    let (s, _) = app
        .admin_post(&format!("/admin/v1/operators/{me}/disable"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Enabled again: the old token stays dead, a new sign-in works.
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/operators/{second_id}/enable"),
            json!({}),
        )
        .await;
    assert_eq!((s, b["disabled"].clone()), (StatusCode::OK, json!(false)));
    assert_eq!(with_token(&app, &t2).await, StatusCode::UNAUTHORIZED);
    let t2 = token_of(&app, "second@paygate.test", "second long password").await;
    assert_eq!(with_token(&app, &t2).await, StatusCode::OK);
    // Removed: gone from the list, the token dead.
    let (s, _) = app
        .admin_delete(&format!("/admin/v1/operators/{second_id}"))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(with_token(&app, &t2).await, StatusCode::UNAUTHORIZED);
    let (_, ops) = app.admin_get("/admin/v1/operators").await;
    assert_eq!(ops["data"].as_array().unwrap().len(), 1);
    let (s, b) = app
        .admin_delete(&format!("/admin/v1/operators/{second_id}"))
        .await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("operator_not_found"))
    );
    // Every change is in the audit log.
    let (_, log) = app.admin_get("/admin/v1/audit-log").await;
    let actions: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["operator.disabled", "operator.enabled", "operator.removed"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

async fn two_operators_disabling_each_other_at_once_leave_one_active(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, ops) = app.admin_get("/admin/v1/operators").await;
    let first = ops["data"][0]["id"].as_str().unwrap().to_owned();
    let (_, second) = app
        .admin_post(
            "/admin/v1/operators",
            json!({"email": "second@paygate.test", "password": "second long password"}),
        )
        .await;
    let second = second["id"].as_str().unwrap().to_owned();
    let t1 = app.admin_token().await;
    let t2 = token_of(&app, "second@paygate.test", "second long password").await;
    let disable = |token: String, target: String| {
        let req = app
            .client
            .post(app.url(&format!("/admin/v1/operators/{target}/disable")))
            .bearer_auth(token)
            .json(&json!({}));
        async move { req.send().await.unwrap().status() }
    };
    let (a, b) = tokio::join!(disable(t1, second), disable(t2, first));
    let mut statuses = [a, b];
    statuses.sort();
    // One wins; the other is refused (409), or finds its own token dead (401) when the winner
    // disabled it first.
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert!(
        [StatusCode::UNAUTHORIZED, StatusCode::CONFLICT].contains(&statuses[1]),
        "{statuses:?}"
    );
    let active = paygate_tenant::operators::list(&app.app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| !o.disabled)
        .count();
    assert_eq!(active, 1);
}

async fn a_password_change_needs_the_current_one_and_ends_older_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let old_token = app.admin_token().await;
    let other_token = token_of(&app, OPERATOR_EMAIL, OPERATOR_PASSWORD).await;
    let change = |current: &str, new: &str| {
        app.send(
            app.client
                .post(app.url("/admin/v1/auth/password"))
                .bearer_auth(&old_token)
                .json(&json!({"current_password": current, "new_password": new})),
        )
    };
    let (s, b) = change("not the password", "a brand new password").await;
    assert_eq!(
        (s, b["error"]["code"].clone(), b["error"]["field"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("wrong_password"),
            json!("current_password")
        )
    );
    let (s, b) = change(OPERATOR_PASSWORD, "short").await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("weak_password"))
    );
    // Nothing changed so far.
    assert_eq!(with_token(&app, &other_token).await, StatusCode::OK);
    let (s, b) = change(OPERATOR_PASSWORD, "a brand new password").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let fresh = b["access_token"].as_str().unwrap().to_owned();
    // Every token issued before is dead at once; the one just given works.
    assert_eq!(with_token(&app, &old_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        with_token(&app, &other_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(with_token(&app, &fresh).await, StatusCode::OK);
    let (s, _) = sign_in(&app, OPERATOR_EMAIL, OPERATOR_PASSWORD, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    token_of(&app, OPERATOR_EMAIL, "a brand new password").await;
}

db_tests!(
    lockout_is_per_client_address_behind_a_trusted_proxy,
    forwarded_headers_are_ignored_without_trusted_proxies,
    failures_from_many_addresses_slow_the_account_down_but_spare_a_fresh_address,
    malformed_emails_are_refused_before_any_throttle_entry,
    operators_are_disabled_enabled_and_removed_but_never_the_last_active_one,
    two_operators_disabling_each_other_at_once_leave_one_active,
    a_password_change_needs_the_current_one_and_ends_older_tokens,
);
