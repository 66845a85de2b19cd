//! Operators in the console and at the sign-in form (issue 16): disable, enable and remove after
//! a confirmation (never the last active one), change one's own password; the sessions and tokens
//! of before stop working at once; the sign-in lockout keyed by the client address behind a
//! trusted proxy; malformed e-mails refused before any throttle entry.

use paygate_testkit::backoffice::Browser;
use paygate_testkit::{Backend, OPERATOR_EMAIL, OPERATOR_PASSWORD, Options, TestApp, db_tests};
use reqwest::StatusCode;
use serde_json::json;

const SECOND: &str = "second@paygate.test";
const SECOND_PW: &str = "second long password";

/// Adds the second operator through the admin API; returns their id and the test operator's.
async fn two_operators(app: &TestApp) -> (String, String) {
    let (s, b) = app
        .admin_post(
            "/admin/v1/operators",
            json!({"email": SECOND, "password": SECOND_PW}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, ops) = app.admin_get("/admin/v1/operators").await;
    let me = ops["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["email"] == OPERATOR_EMAIL)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (b["id"].as_str().unwrap().to_owned(), me)
}

/// Whether `b`'s session still opens the console.
async fn signed_in(b: &Browser) -> bool {
    b.get("/console/companies").await.status == StatusCode::OK
}

async fn operators_are_disabled_and_removed_after_a_confirmation_and_their_sessions_end(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (second_id, me) = two_operators(&app).await;
    let op = app.operator_browser().await;
    let second = Browser::new(&app);
    second.sign_in(SECOND, SECOND_PW).await;
    assert!(signed_in(&second).await);

    let list = op.get("/console/operators").await;
    assert!(list.contains(&format!("href=\"/console/operators/{second_id}/disable\"")));
    // Disabling asks first; the question names the operator.
    let confirm = op
        .get(&format!("/console/operators/{second_id}/disable"))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.contains(SECOND));
    let forms = confirm.forms();
    assert!(
        forms
            .iter()
            .any(|f| f.method == "post"
                && f.action == format!("/console/operators/{second_id}/disable")),
        "{forms:?}"
    );
    // Without the form's token nothing happens.
    let p = op
        .post_form_raw(&format!("/console/operators/{second_id}/disable"), &[])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(signed_in(&second).await);
    // Confirmed: Post/Redirect/Get, and the second operator's session is over at once.
    let p = op
        .post_form(&format!("/console/operators/{second_id}/disable"), &[])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), Some("/console/operators"));
    let list = op.get("/console/operators").await;
    assert!(list.contains("The operator is disabled."), "{}", list.body);
    assert!(!signed_in(&second).await);
    assert_eq!(
        Browser::new(&app)
            .try_sign_in(SECOND, SECOND_PW)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Now I am the last active operator: the console refuses to disable or remove me.
    for verb in ["disable", "remove"] {
        op.get(&format!("/console/operators/{me}/{verb}")).await;
        let p = op
            .post_form(&format!("/console/operators/{me}/{verb}"), &[])
            .await;
        assert_eq!(p.status, StatusCode::CONFLICT, "{verb}");
        assert!(
            p.text().contains("the last active operator"),
            "{verb}: {}",
            p.body
        );
    }
    assert!(signed_in(&op).await);
    // Enabled again (no confirmation needed): they sign in.
    let p = op
        .post_form(&format!("/console/operators/{second_id}/enable"), &[])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let again = Browser::new(&app);
    again.sign_in(SECOND, SECOND_PW).await;
    // Removal asks first too, then the operator and their session are gone.
    let confirm = op
        .get(&format!("/console/operators/{second_id}/remove"))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.contains(SECOND));
    let p = op
        .post_form(&format!("/console/operators/{second_id}/remove"), &[])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(!signed_in(&again).await);
    assert!(!op.get("/console/operators").await.contains(SECOND));
    assert_eq!(
        op.get(&format!("/console/operators/{second_id}/remove"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The confirmation speaks Italian and German too.
    let (third_id, _) = {
        let (s, b) = app
            .admin_post(
                "/admin/v1/operators",
                json!({"email": "third@paygate.test", "password": SECOND_PW}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        (b["id"].as_str().unwrap().to_owned(), ())
    };
    for (lang, word) in [("it", "Disattiva"), ("de", "Deaktivieren")] {
        let b = Browser::new(&app);
        b.set_accept_language(lang);
        b.sign_in(OPERATOR_EMAIL, OPERATOR_PASSWORD).await;
        let p = b
            .get(&format!("/console/operators/{third_id}/disable"))
            .await;
        assert!(p.contains(&format!("<html lang=\"{lang}\">")));
        assert!(p.text().contains(word), "{lang}: {}", p.body);
    }
}

async fn an_operator_changes_their_password_and_every_older_session_and_token_ends(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let token = app.admin_token().await;
    let here = app.operator_browser().await;
    let elsewhere = app.operator_browser().await;
    let form = here.get("/console/password").await;
    assert_eq!(form.status, StatusCode::OK);
    let p = here
        .post_form(
            "/console/password",
            &[
                ("current_password", "not the password"),
                ("new_password", "a brand new password"),
                ("new_password_confirm", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("current_password").is_some(), "{}", p.body);
    assert!(!p.contains("not the password"));
    let p = here
        .post_form(
            "/console/password",
            &[
                ("current_password", OPERATOR_PASSWORD),
                ("new_password", "a brand new password"),
                ("new_password_confirm", "another new password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("new_password_confirm").is_some());
    assert!(signed_in(&elsewhere).await);
    let p = here
        .post_form(
            "/console/password",
            &[
                ("current_password", OPERATOR_PASSWORD),
                ("new_password", "a brand new password"),
                ("new_password_confirm", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    // This browser goes on (with a fresh session); every other session and token is over.
    assert!(signed_in(&here).await);
    assert!(!signed_in(&elsewhere).await);
    let status = app
        .client
        .get(app.url("/admin/v1/operators"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        Browser::new(&app)
            .try_sign_in(OPERATOR_EMAIL, OPERATOR_PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    Browser::new(&app)
        .sign_in(OPERATOR_EMAIL, "a brand new password")
        .await;
}

async fn sign_in_lockout_follows_the_client_address_behind_a_trusted_proxy(backend: Backend) {
    let app = TestApp::start(Options {
        adjust: |s| s.trusted_proxies = "127.0.0.1/32".into(),
        ..Options::new(backend)
    })
    .await;
    let attacker = Browser::new(&app);
    attacker.set_header("x-forwarded-for", Some("203.0.113.7"));
    for _ in 0..5 {
        let p = attacker
            .try_sign_in(OPERATOR_EMAIL, "not the password")
            .await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    let p = attacker
        .try_sign_in(OPERATOR_EMAIL, OPERATOR_PASSWORD)
        .await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    // The owner, from another address, signs in.
    let owner = Browser::new(&app);
    owner.set_header("x-forwarded-for", Some("198.51.100.20"));
    owner.sign_in(OPERATOR_EMAIL, OPERATOR_PASSWORD).await;
    // The locked-out address is told when to come back.
    assert!(p.header("retry-after").is_some());
}

async fn malformed_emails_at_the_sign_in_form_are_refused_before_any_throttle_entry(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let b = Browser::new(&app);
    let long = format!("{}@example.com", "a".repeat(300));
    for _ in 0..6 {
        let p = b.try_sign_in(&long, "not the password").await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            p.field_error("email").as_deref(),
            Some("Enter an e-mail address like name@example.com.")
        );
    }
    // What was typed is not echoed back whole.
    assert!(!b.try_sign_in(&long, "x").await.contains(&long));
}

db_tests!(
    operators_are_disabled_and_removed_after_a_confirmation_and_their_sessions_end,
    an_operator_changes_their_password_and_every_older_session_and_token_ends,
    sign_in_lockout_follows_the_client_address_behind_a_trusted_proxy,
    malformed_emails_at_the_sign_in_form_are_refused_before_any_throttle_entry,
);
