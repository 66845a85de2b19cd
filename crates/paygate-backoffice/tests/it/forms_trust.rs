//! Forms a merchant can trust with money, over real HTTP (issue 20): Post/Redirect/Get (a
//! reload after a successful form does nothing twice; a one-time value such as a new API key
//! is shown once, by the GET after the redirect), confirmation before anything destructive or
//! money-moving (one click never revokes, removes, deletes, suspends or goes live; going live
//! names the live account), and every error of a form at once in a summary at the top.

use paygate_testkit::backoffice::Browser;
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn start(backend: Backend) -> TestApp {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.outbound_allow_private = true;
    };
    TestApp::start(opts).await
}

/// Adds a profile of `mode` for `account` through the page; returns (id, name).
async fn add_profile(b: &Browser, mode: &str, account: &str) -> (String, String) {
    let name = unique(&format!("{mode} shop "));
    let p = b
        .post_form(
            "/app/stripe/profiles",
            &[
                ("name", &name),
                ("mode", mode),
                ("account_id", account),
                (
                    "publishable_key",
                    &format!("pk_{mode}_51Pub{}", unique("k")),
                ),
                ("secret_key", &format!("sk_{mode}_51Sec{}", unique("k"))),
                ("webhook_secret", &new_secret()),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let id = p
        .location()
        .unwrap()
        .strip_prefix("/app/stripe/profiles/")
        .unwrap()
        .to_owned();
    (id, name)
}

async fn api_keys(app: &TestApp, company: &str) -> Vec<Value> {
    let (s, k) = app
        .admin_get(&format!("/admin/v1/companies/{company}/api-keys"))
        .await;
    assert_eq!(s, StatusCode::OK, "{k}");
    k["data"]
        .as_array()
        .or_else(|| k.as_array())
        .cloned()
        .unwrap_or_default()
}

async fn a_new_api_key_is_shown_once_and_a_reload_creates_no_second_key(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    admin.get("/app/api-keys").await;
    let p = admin
        .post_form("/app/api-keys", &[("name", "shop backend")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let to = p.location().unwrap().to_owned();
    assert!(to.starts_with("/app/api-keys"), "{to}");
    assert!(!p.contains("pgk_"), "the POST shows no key");
    // The GET after the redirect shows the key, once.
    let shown = admin.get(&to).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.contains("id=\"api-key\""), "{}", shown.body);
    assert!(shown.contains("pgk_test_"), "{}", shown.body);
    // A reload (a GET of the redirect's target) shows the list, and creates nothing.
    for _ in 0..2 {
        let again = admin.get(&to).await;
        assert_eq!(again.status, StatusCode::OK);
        assert!(!again.contains("id=\"api-key\""), "shown once only");
        assert!(again.contains("shop backend"));
    }
    assert_eq!(api_keys(&app, &company).await.len(), 1);
    // Another session of the same user never sees it.
    let other = Browser::new(&app);
    let (email, pw) = app.company_user(&company, "admin").await;
    other.sign_in(&email, &pw).await;
    assert!(!other.get("/app/api-keys").await.contains("id=\"api-key\""));
}

async fn revoking_a_key_needs_the_confirmation_naming_it(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    let (s, k) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/api-keys"),
            json!({"name": "till 7"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let id = k["id"].as_str().unwrap().to_owned();
    let list = admin.get("/app/api-keys").await;
    let revoke = format!("/app/api-keys/{id}/revoke");
    assert!(
        list.links().contains(&revoke),
        "the list links to the confirmation"
    );
    // One click (the old button: a POST without the confirmation) revokes nothing.
    let p = admin.post_form(&revoke, &[]).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.contains("id=\"confirm-submit\""), "{}", p.body);
    let revoked = |keys: Vec<Value>| keys.iter().any(|k| !k["revoked_at"].is_null());
    assert!(!revoked(api_keys(&app, &company).await));
    // The confirmation page names the key and posts confirm=yes.
    let c = admin.get(&revoke).await;
    assert_eq!(c.status, StatusCode::OK);
    assert!(c.contains("till 7"), "{}", c.body);
    let form = c
        .forms()
        .into_iter()
        .find(|f| f.action == revoke)
        .expect("the confirmation form");
    let p = admin.post_form(&revoke, &form.fields_without_csrf()).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert!(revoked(api_keys(&app, &company).await));
    // Another company's key: not found, confirmation or not.
    let (_, other, _) = app.company_with_users().await;
    other.get("/app/api-keys").await;
    assert_eq!(other.get(&revoke).await.status, StatusCode::NOT_FOUND);
}

async fn removing_a_user_and_suspending_a_company_need_a_confirmation(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    let (email, _) = app.company_user(&company, "viewer").await;
    let (_, users) = app
        .admin_get(&format!("/admin/v1/companies/{company}/users"))
        .await;
    let list = users["data"]
        .as_array()
        .or_else(|| users.as_array())
        .unwrap();
    let id = list.iter().find(|u| u["email"] == email.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.get("/app/users").await;
    let path = format!("/app/users/{id}/remove");
    let p = admin.post_form(&path, &[]).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.contains(&email), "the confirmation names the user");
    assert!(
        admin.get("/app/users").await.contains(&email),
        "not removed"
    );
    let p = admin.post_form(&path, &[("confirm", "yes")]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(!admin.get("/app/users").await.contains(&email), "removed");

    let op = app.operator_browser().await;
    op.get(&format!("/console/companies/{company}")).await;
    let suspend = format!("/console/companies/{company}/suspend");
    let p = op.post_form(&suspend, &[]).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.contains(&company), "the confirmation names the company");
    let (_, c) = app
        .admin_get(&format!("/admin/v1/companies/{company}"))
        .await;
    assert_eq!(c["status"], "active");
    let p = op.post_form(&suspend, &[("confirm", "yes")]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let (_, c) = app
        .admin_get(&format!("/admin/v1/companies/{company}"))
        .await;
    assert_eq!(c["status"], "suspended");
}

async fn going_live_needs_the_confirmation_naming_the_live_account(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    admin.get("/app/stripe").await;
    add_profile(&admin, "test", "acct_1FormsTest000").await;
    let p = admin
        .post_form("/app/stripe/payment-method", &[("stripe_enabled", "on")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let account = "acct_1FormsLive000";
    let (live_id, name) = add_profile(&admin, "live", account).await;
    paygate_testkit::stripe_account::live_account_ready(&app, &company, account).await;
    let environment = || async {
        app.admin_get(&format!("/admin/v1/companies/{company}"))
            .await
            .1["environment"]
            .clone()
    };
    // The switch alone answers with the confirmation, naming profile and account.
    let p = admin
        .post_form("/app/stripe/environment", &[("environment", "live")])
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.contains(account), "{}", p.body);
    assert!(p.text().contains(&name), "{}", p.body);
    assert_eq!(environment().await, "test", "one click does not go live");
    let form = p
        .forms()
        .into_iter()
        .find(|f| f.action == "/app/stripe/environment")
        .expect("the confirmation form");
    let p = admin
        .post_form("/app/stripe/environment", &form.fields_without_csrf())
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(environment().await, "live");
    // Back to test needs no confirmation (it moves no money).
    let p = admin
        .post_form("/app/stripe/environment", &[("environment", "test")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(environment().await, "test");
    // Removing a profile: the confirmation naming it and its account first.
    let remove = format!("/app/stripe/profiles/{live_id}/remove");
    let p = admin.post_form(&remove, &[]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(
        p.contains(account) && p.text().contains(&name),
        "{}",
        p.body
    );
    let profile = format!("/app/stripe/profiles/{live_id}");
    assert_eq!(
        admin.get(&profile).await.status,
        StatusCode::OK,
        "not removed"
    );
    let p = admin.post_form(&remove, &[("confirm", "yes")]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(admin.get(&profile).await.status, StatusCode::NOT_FOUND);
}

async fn the_empty_profile_form_lists_every_error_in_the_summary(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    admin.get("/app/stripe").await;
    let p = admin
        .post_form(
            "/app/stripe/profiles",
            &[
                ("name", ""),
                ("mode", ""),
                ("publishable_key", ""),
                ("secret_key", ""),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    let summary_start = p.body.find("id=\"error-summary\"").expect("a summary");
    let summary = &p.body[summary_start..];
    let summary = &summary[..summary.find("</div>").unwrap()];
    assert!(p.body[..summary_start].contains("role=\"alert\""));
    assert!(summary.contains("autofocus") || p.body.contains("autofocus"));
    for field in ["name", "mode", "publishable_key", "secret_key"] {
        assert!(
            summary.contains(&format!("href=\"#{field}\"")),
            "{field} in the summary: {summary}"
        );
        assert!(p.field_error(field).is_some(), "{field} next to the field");
        assert!(
            p.contains(&format!("aria-describedby=\"{field}-error\"")),
            "{field} described by its error"
        );
    }
    // Accurate per field: pk_foo is not a publishable key (not "of the other mode").
    let p = admin
        .post_form(
            "/app/stripe/profiles",
            &[
                ("name", "shop"),
                ("mode", "test"),
                ("publishable_key", "pk_foo"),
                ("secret_key", "sk_live_51Abc"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    let pk = p.field_error("publishable_key").unwrap();
    assert!(pk.contains("not a publishable key"), "{pk}");
    assert!(pk.contains("pk_test_") && pk.contains("pk_live_"), "{pk}");
    let sk = p.field_error("secret_key").unwrap();
    assert!(sk.contains("other mode"), "{sk}");
    assert!(p.field_error("name").is_none());
    // The invitation form too: both errors at once.
    admin.get("/app/users").await;
    let p = admin
        .post_form("/app/users", &[("email", "nope"), ("role", "owner")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("email").is_some(), "{}", p.body);
    assert!(p.field_error("role").is_some(), "{}", p.body);
    assert!(p.contains("href=\"#email\"") && p.contains("href=\"#role\""));
    // Nothing was added.
    let (_, profiles) = app
        .admin_get(&format!("/admin/v1/companies/{company}/profiles"))
        .await;
    let n = profiles["data"]
        .as_array()
        .or_else(|| profiles.as_array())
        .map_or(0, Vec::len);
    assert_eq!(n, 0, "{profiles}");
}

async fn a_reload_after_send_test_event_sends_nothing_again(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    // Without a test profile the button is disabled and says why, beside it.
    let page = admin.get("/app/connect").await;
    assert!(
        page.contains("id=\"send-test-event\" disabled aria-describedby=\"send-test-why\""),
        "{}",
        page.body
    );
    assert!(page.contains("id=\"send-test-why\""));
    add_profile(&admin, "test", "acct_1FormsTest000").await;
    let page = admin.get("/app/connect").await;
    assert!(
        page.contains("id=\"send-test-event\">"),
        "enabled: {}",
        page.body
    );
    let p = admin.post_form("/app/connect/test-event", &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let to = p.location().unwrap().to_owned();
    let shown = admin.get(&to).await;
    assert!(shown.contains("id=\"test-result\""), "{}", shown.body);
    assert!(shown.contains("id=\"test-arrived\">Yes<"), "{}", shown.body);
    let reload = admin.get(&to).await;
    assert_eq!(reload.status, StatusCode::OK);
    assert!(!reload.contains("id=\"test-result\""), "shown once");
    assert_eq!(app.inbox_count(&company).await, 1, "one event, not two");
}

db_tests!(
    a_new_api_key_is_shown_once_and_a_reload_creates_no_second_key,
    revoking_a_key_needs_the_confirmation_naming_it,
    removing_a_user_and_suspending_a_company_need_a_confirmation,
    going_live_needs_the_confirmation_naming_the_live_account,
    the_empty_profile_form_lists_every_error_in_the_summary,
    a_reload_after_send_test_event_sends_nothing_again,
);
