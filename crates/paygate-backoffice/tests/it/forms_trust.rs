//! Forms a merchant can trust with money, over real HTTP (issue 20): Post/Redirect/Get (a
//! reload after a successful form does nothing twice; a one-time value such as a new API key
//! is shown once, by the GET after the redirect), confirmation before anything destructive or
//! money-moving (one click never revokes, removes, deletes, suspends or goes live; going live
//! names the live account), and every error of a form at once in a summary at the top.

use paygate_testkit::backoffice::Browser;
use paygate_testkit::receivers::Receiver;
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret, unique};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
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

async fn audited(app: &TestApp, target: &str, action: &str) -> u64 {
    use paygate_db::entities::audit_log;
    audit_log::Entity::find()
        .filter(audit_log::Column::Target.eq(target))
        .filter(audit_log::Column::Action.eq(action))
        .count(&app.app.db)
        .await
        .unwrap()
}

async fn disabling_rotating_now_and_replaying_an_endpoint_need_a_confirmation(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    let rx = Receiver::start(&[]).await;
    admin.get("/app/notifications").await;
    let p = admin
        .post_form("/app/notifications", &[("url", &rx.url())])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    // The GET after the redirect shows (and uses up) the new secret.
    assert!(
        admin
            .get(p.location().unwrap())
            .await
            .contains("id=\"endpoint-secret\"")
    );
    let (_, eps) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints"
        ))
        .await;
    let id = eps["data"][0]["id"].as_str().unwrap().to_owned();
    let enabled = || async {
        app.admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints/{id}"
        ))
        .await
        .1["enabled"]
            .clone()
    };
    // Disable: one click shows the confirmation naming the endpoint, and changes nothing.
    let disable = format!("/app/notifications/{id}/disable");
    let p = admin.post_form(&disable, &[("mode", "test")]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.contains("id=\"confirm-submit\""), "{}", p.body);
    assert!(p.contains(&rx.url()), "{}", p.body);
    assert_eq!(enabled().await, true);
    let form = p
        .forms()
        .into_iter()
        .find(|f| f.action == disable)
        .expect("the confirmation form");
    let p = admin.post_form(&disable, &form.fields_without_csrf()).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(enabled().await, false);
    admin
        .post_form(&format!("/app/notifications/{id}/enable"), &[])
        .await;
    assert_eq!(enabled().await, true);
    // Rotating with the old secret stopping at once: the confirmation first.
    let rotate = format!("/app/notifications/{id}/rotate");
    let p = admin.post_form(&rotate, &[("grace_secs", "0")]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.contains("id=\"confirm-submit\""), "{}", p.body);
    assert!(p.contains(&rx.url()));
    assert_eq!(
        audited(&app, &id, "notification_endpoint.secret_rotated").await,
        0
    );
    assert!(
        !admin
            .get("/app/notifications")
            .await
            .contains("id=\"endpoint-secret\"")
    );
    let form = p
        .forms()
        .into_iter()
        .find(|f| f.action == rotate)
        .expect("the confirmation form");
    let p = admin.post_form(&rotate, &form.fields_without_csrf()).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(
        audited(&app, &id, "notification_endpoint.secret_rotated").await,
        1
    );
    assert!(
        admin
            .get(p.location().unwrap())
            .await
            .contains("id=\"endpoint-secret\"")
    );
    // With a grace period the old secret keeps working: no confirmation needed.
    let p = admin.post_form(&rotate, &[("grace_secs", "3600")]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(
        audited(&app, &id, "notification_endpoint.secret_rotated").await,
        2
    );
    // Replaying failed messages in bulk: the confirmation names the endpoint and the window.
    let replay = format!("/app/notifications/{id}/replay-failed");
    let p = admin.post_form(&replay, &[("since_hours", "72")]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.contains("id=\"confirm-submit\""), "{}", p.body);
    assert!(p.contains(&rx.url()) && p.contains("72"), "{}", p.body);
    assert_eq!(
        audited(&app, &id, "notification_endpoint.replayed").await,
        0
    );
    let form = p
        .forms()
        .into_iter()
        .find(|f| f.action == replay)
        .expect("the confirmation form");
    let fields = form.fields_without_csrf();
    assert!(
        fields.iter().any(|&(k, v)| k == "since_hours" && v == "72"),
        "{fields:?}"
    );
    let p = admin.post_form(&replay, &fields).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(
        audited(&app, &id, "notification_endpoint.replayed").await,
        1
    );
    // Another company's endpoint: not found, confirmation or not.
    let (_, other, _) = app.company_with_users().await;
    other.get("/app/notifications").await;
    assert_eq!(
        other.post_form(&disable, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.post_form(&replay, &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn reactivating_a_company_needs_a_confirmation(backend: Backend) {
    let app = start(backend).await;
    let (company, _, _) = app.company_with_users().await;
    let op = app.operator_browser().await;
    op.get(&format!("/console/companies/{company}")).await;
    let p = op
        .post_form(
            &format!("/console/companies/{company}/suspend"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let status = || async {
        app.admin_get(&format!("/admin/v1/companies/{company}"))
            .await
            .1["status"]
            .clone()
    };
    let reactivate = format!("/console/companies/{company}/reactivate");
    let p = op.post_form(&reactivate, &[]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.contains(&company), "the confirmation names the company");
    assert!(p.contains("id=\"confirm-submit\""), "{}", p.body);
    assert_eq!(status().await, "suspended");
    let p = op.post_form(&reactivate, &[("confirm", "yes")]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(status().await, "active");
}

async fn live_cannot_be_chosen_until_the_live_account_is_ready_and_the_page_says_why(
    backend: Backend,
) {
    let app = start(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    let page = admin.get("/app/stripe").await;
    assert!(
        page.contains("disabled id=\"environment-live-disabled\""),
        "{}",
        page.body
    );
    assert!(page.contains("aria-describedby=\"environment-why\""));
    let why = page.body[page.body.find("id=\"environment-why\"").unwrap()..].to_owned();
    let why = &why[..why.find("</p>").unwrap()];
    assert!(why.contains("an active live Stripe profile"), "{why}");
    // A live profile whose account Stripe has not enabled yet: the reason names that instead.
    let account = "acct_1FormsLiveWhy0";
    add_profile(&admin, "live", account).await;
    let page = admin.get("/app/stripe").await;
    let why = page.body[page
        .body
        .find("id=\"environment-why\"")
        .expect("still disabled")..]
        .to_owned();
    let why = &why[..why.find("</p>").unwrap()];
    assert!(!why.contains("an active live Stripe profile"), "{why}");
    assert!(why.contains("charges_enabled"), "{why}");
    // Ready: Live can be chosen.
    paygate_testkit::stripe_account::live_account_ready(&app, &company, account).await;
    let page = admin.get("/app/stripe").await;
    assert!(!page.contains("environment-live-disabled"), "{}", page.body);
    assert!(!page.contains("id=\"environment-why\""));
}

/// A paid test-mode order of 25.00 EUR with `refunded` already refunded; returns its id.
async fn paid_order(app: &TestApp, company: &str, refunded: i64) -> String {
    use paygate_db::entities::order;
    let pk = app.app.tenants.company(company).await.unwrap().id;
    let id = unique("ord_");
    let now = paygate_db::now_ms();
    order::ActiveModel {
        id: Set(id.clone()),
        company_pk: Set(pk),
        livemode: Set(false),
        kind: Set("checkout".into()),
        status: Set("paid".into()),
        payment_intent_id: Set(Some("pi_forms".into())),
        charge_id: Set(Some("ch_forms".into())),
        amount: Set(Some(2500)),
        amount_refunded: Set(refunded),
        currency: Set(Some("eur".into())),
        metadata: Set("{}".into()),
        disputed: Set(false),
        status_created: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.app.db)
    .await
    .unwrap();
    id
}

async fn the_refund_action_is_disabled_and_says_why_when_nothing_is_left(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, viewer) = app.company_with_users().await;
    let part = paid_order(&app, &company, 1000).await;
    let page = admin.get(&format!("/app/orders/{part}?mode=test")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.links().iter().any(|l| l.contains("/refund")),
        "{}",
        page.body
    );
    assert!(!page.contains("id=\"refund-why\""), "{}", page.body);
    let all = paid_order(&app, &company, 2500).await;
    let page = admin.get(&format!("/app/orders/{all}?mode=test")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.contains("id=\"refund-action\" disabled aria-describedby=\"refund-why\""),
        "{}",
        page.body
    );
    assert!(
        page.contains("id=\"refund-why\">Nothing is left to refund"),
        "{}",
        page.body
    );
    assert!(!page.links().iter().any(|l| l.contains("/refund")));
    // A viewer sees no action at all.
    let page = viewer.get(&format!("/app/orders/{all}?mode=test")).await;
    assert!(!page.contains("id=\"refund-action\""));
}

async fn the_refund_form_lists_every_error_in_the_summary(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    let order = paid_order(&app, &company, 0).await;
    let p = admin
        .get(&format!(
            "/app/orders/{order}/refund/confirm?mode=test&amount=abc&reason=bogus"
        ))
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    let summary_start = p.body.find("id=\"error-summary\"").expect("a summary");
    let summary = &p.body[summary_start..];
    let summary = &summary[..summary.find("</div>").unwrap()];
    for field in ["amount", "reason"] {
        assert!(
            summary.contains(&format!("href=\"#{field}\"")),
            "{field} in the summary: {summary}"
        );
        assert!(p.field_error(field).is_some(), "{field} next to the field");
    }
    // Too much: one error, in the summary too.
    let p = admin
        .get(&format!(
            "/app/orders/{order}/refund/confirm?mode=test&amount=99.00&reason=duplicate"
        ))
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(p.contains("href=\"#amount\""), "{}", p.body);
    assert!(!p.contains("href=\"#reason\""), "{}", p.body);
}

db_tests!(
    a_new_api_key_is_shown_once_and_a_reload_creates_no_second_key,
    revoking_a_key_needs_the_confirmation_naming_it,
    removing_a_user_and_suspending_a_company_need_a_confirmation,
    going_live_needs_the_confirmation_naming_the_live_account,
    the_empty_profile_form_lists_every_error_in_the_summary,
    a_reload_after_send_test_event_sends_nothing_again,
    disabling_rotating_now_and_replaying_an_endpoint_need_a_confirmation,
    reactivating_a_company_needs_a_confirmation,
    live_cannot_be_chosen_until_the_live_account_is_ready_and_the_page_says_why,
    the_refund_action_is_disabled_and_says_why_when_nothing_is_left,
    the_refund_form_lists_every_error_in_the_summary,
);
