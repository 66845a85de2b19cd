//! The merchant's settings pages over real HTTP: Stripe settings (switches, profiles, signing
//! secrets), Connect Stripe (callback URL, test event through the real intake, account status,
//! rejected deliveries), API keys and notification endpoints — what a merchant sees, who may
//! change what, and that one company never reaches another's objects.

use std::time::Duration;

use paygate_backoffice::i18n::Lang;
use paygate_db::entities::{inbox_event, inbox_payload};
use paygate_db::{Mode, Scope};
use paygate_router::handlers::TEST_EVENT_ID_PREFIX;
use paygate_testkit::backoffice::Browser;
use paygate_testkit::receivers::Receiver;
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret, unique};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

/// Keys of `mode` that the foundation accepts, unique per call.
fn keys(mode: &str) -> (String, String) {
    (
        format!("pk_{mode}_51Publishable{}", unique("k")),
        format!("sk_{mode}_51SecretValue{}", unique("k")),
    )
}

/// The app, allowed to notify endpoints on loopback (the receivers of these tests).
async fn start(backend: Backend) -> TestApp {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.outbound_allow_private = true;
        s.notify_retry_schedule = "10ms,10ms".into();
    };
    TestApp::start(opts).await
}

/// Adds a profile through the page; returns its id (from the redirect).
async fn add_profile(b: &Browser, mode: &str, webhook_secret: &str) -> String {
    let (pk, sk) = keys(mode);
    let name = unique(&format!("{mode} shop "));
    let p = b
        .post_form(
            "/app/stripe/profiles",
            &[
                ("name", &name),
                ("mode", mode),
                ("account_id", "acct_1PageTest0000"),
                ("publishable_key", &pk),
                ("secret_key", &sk),
                ("webhook_secret", webhook_secret),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let to = p.location().unwrap().to_owned();
    let id = to.strip_prefix("/app/stripe/profiles/").unwrap().to_owned();
    assert!(id.starts_with("prf_"), "{to}");
    id
}

/// Everything a company's settings pages could change, read through the admin API.
async fn snapshot(app: &TestApp, company: &str) -> Value {
    let (_, c) = app
        .admin_get(&format!("/admin/v1/companies/{company}"))
        .await;
    let (_, p) = app
        .admin_get(&format!("/admin/v1/companies/{company}/profiles"))
        .await;
    let (_, k) = app
        .admin_get(&format!("/admin/v1/companies/{company}/api-keys"))
        .await;
    let (_, n) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints"
        ))
        .await;
    let (_, m) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-messages"
        ))
        .await;
    let (_, st) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-settings"
        ))
        .await;
    json!({
        "company": c,
        "profiles": p,
        "keys": k,
        "endpoints": n,
        "messages": m,
        "settings": st,
        "inbox": app.inbox_count(company).await,
    })
}

/// A company with an admin and a viewer, an active test profile with a signing secret, an API
/// key, a notification endpoint (to `receiver`) and a message to it.
struct Fixture {
    company: String,
    admin: Browser,
    viewer: Browser,
    profile: String,
    key: String,
    endpoint: String,
    message: String,
    receiver: Receiver,
}

async fn company_with_objects(app: &TestApp) -> Fixture {
    let (company, admin, viewer) = app.company_with_users().await;
    admin.get("/app/stripe").await;
    let profile = add_profile(&admin, "test", &new_secret()).await;
    let (s, k) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/api-keys"),
            json!({"name": "shop"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let key = k["id"].as_str().unwrap().to_owned();
    let receiver = Receiver::start(&[]).await;
    let (s, e) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": receiver.url()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let endpoint = e["id"].as_str().unwrap().to_owned();
    let (s, m) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints/{endpoint}/test"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{m}");
    let message = m["message_id"].as_str().unwrap().to_owned();
    Fixture {
        company,
        admin,
        viewer,
        profile,
        key,
        endpoint,
        message,
        receiver,
    }
}

/// Every change the settings pages offer, with valid input, against `profile` and `key`.
fn changes(f: &Fixture) -> Vec<(String, Vec<(&'static str, String)>)> {
    let (profile, key, ep, msg) = (&f.profile, &f.key, &f.endpoint, &f.message);
    let (pk, sk) = keys("test");
    vec![
        (
            "/app/stripe/payment-method".into(),
            vec![("stripe_enabled", "on".into())],
        ),
        (
            "/app/stripe/environment".into(),
            vec![("environment", "live".into())],
        ),
        (
            "/app/stripe/profiles".into(),
            vec![
                ("name", "Another".into()),
                ("mode", "test".into()),
                ("publishable_key", pk.clone()),
                ("secret_key", sk.clone()),
            ],
        ),
        (
            format!("/app/stripe/profiles/{profile}"),
            vec![
                ("name", "Renamed".into()),
                ("account_id", "acct_1Renamed000".into()),
                ("publishable_key", pk),
                ("secret_key", sk),
            ],
        ),
        (format!("/app/stripe/profiles/{profile}/activate"), vec![]),
        (
            format!("/app/stripe/profiles/{profile}/signing-secrets"),
            vec![
                ("webhook_secret", new_secret()),
                ("grace_period_secs", "0".into()),
            ],
        ),
        (format!("/app/stripe/profiles/{profile}/remove"), vec![]),
        ("/app/connect/test-event".into(), vec![]),
        ("/app/api-keys".into(), vec![("name", "new key".into())]),
        (format!("/app/api-keys/{key}/revoke"), vec![]),
        (
            "/app/notifications".into(),
            vec![
                ("url", f.receiver.url()),
                ("event_types", "order.paid".into()),
            ],
        ),
        (format!("/app/notifications/{ep}/disable"), vec![]),
        (format!("/app/notifications/{ep}/enable"), vec![]),
        (
            format!("/app/notifications/{ep}/rotate"),
            vec![("grace_secs", "0".into())],
        ),
        (format!("/app/notifications/{ep}/test"), vec![]),
        (
            format!("/app/notifications/{ep}/replay-failed"),
            vec![("since_hours", "24".into())],
        ),
        (format!("/app/notifications/messages/{msg}/replay"), vec![]),
        (format!("/app/notifications/{ep}/delete"), vec![]),
        (
            "/app/notifications/settings".into(),
            vec![("sender_name", "Shop".into())],
        ),
    ]
}

fn fields<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Whether a page has a form that changes something (the layout's language switch and
/// sign-out are not).
fn has_change_form(body: &str) -> bool {
    body.contains("action=\"/app/")
}

async fn every_settings_page_renders_for_admin_and_viewer(backend: Backend) {
    let app = start(backend).await;
    let f = company_with_objects(&app).await;
    let (company, admin, viewer, profile) = (&f.company, &f.admin, &f.viewer, &f.profile);
    let pages = [
        "/app/stripe".to_owned(),
        format!("/app/stripe/profiles/{profile}"),
        "/app/connect".to_owned(),
        "/app/api-keys".to_owned(),
        "/app/notifications".to_owned(),
    ];
    for path in &pages {
        let a = admin.get(path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert!(has_change_form(&a.body), "{path} has forms for admins");
        assert!(a.contains("aria-current=\"page\""), "{path}");
        let v = viewer.get(path).await;
        assert_eq!(v.status, StatusCode::OK, "{path}: {}", v.body);
        assert!(!has_change_form(&v.body), "{path} shows a viewer a form");
    }
    // The menu leads to them.
    let home = admin.get("/app").await;
    for href in [
        "/app/connect",
        "/app/stripe",
        "/app/api-keys",
        "/app/notifications",
    ] {
        assert!(home.contains(&format!("href=\"{href}\"")), "{href}");
    }
    // Connect: the callback URL in an element with an id, the copy button, the events.
    let c = viewer.get("/app/connect").await;
    assert!(c.contains(&format!(
        "id=\"callback-url\">{}/callbacks/v1.0/stripe/{company}<",
        app.base_url
    )));
    assert!(c.contains("data-copy=\"callback-url\""));
    assert!(c.contains("<script src=\"/static/backoffice.js\" defer></script>"));
    for e in paygate_tenant::STRIPE_EVENTS_TO_SELECT {
        assert!(c.contains(&format!("<code>{e}</code>")), "{e}");
    }
    // In Italian and German too.
    admin
        .post_form("/language", &[("lang", "it"), ("next", "/app/stripe")])
        .await;
    let it = admin.get("/app/stripe").await;
    assert!(it.contains("Metodo di pagamento Stripe"), "{}", it.body);
    assert!(
        admin
            .get("/app/connect")
            .await
            .contains("Invia evento di prova")
    );
    admin
        .post_form("/language", &[("lang", "de"), ("next", "/app/api-keys")])
        .await;
    assert!(
        admin
            .get("/app/api-keys")
            .await
            .contains("Schlüssel erstellen")
    );
}

async fn forms_show_validation_errors_next_to_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _viewer) = app.company_with_users().await;
    admin.get("/app/stripe").await;
    let before = snapshot(&app, &company).await;
    // A live profile with a test secret key: named on `secret_key`.
    let (pk_live, _) = keys("live");
    let (_, sk_test) = keys("test");
    let p = admin
        .post_form(
            "/app/stripe/profiles",
            &[
                ("name", "Live shop"),
                ("mode", "live"),
                ("publishable_key", &pk_live),
                ("secret_key", &sk_test),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.field_error("secret_key")
            .is_some_and(|e| e.contains("other mode")),
        "{}",
        p.body
    );
    assert!(p.contains("aria-describedby=\"secret_key-error\""));
    // What was typed comes back, except the secret.
    assert!(p.contains("value=\"Live shop\""));
    assert!(p.contains(&format!("value=\"{pk_live}\"")));
    assert!(!p.contains(&sk_test));
    // Every other field of the add form.
    let (pk, sk) = keys("test");
    for (field, fields) in [
        (
            "name",
            vec![
                ("name", ""),
                ("mode", "test"),
                ("publishable_key", &pk),
                ("secret_key", &sk),
            ],
        ),
        (
            "mode",
            vec![
                ("name", "x"),
                ("mode", "prod"),
                ("publishable_key", &pk),
                ("secret_key", &sk),
            ],
        ),
        (
            "publishable_key",
            vec![
                ("name", "x"),
                ("mode", "test"),
                ("publishable_key", &sk),
                ("secret_key", &sk),
            ],
        ),
        (
            "account_id",
            vec![
                ("name", "x"),
                ("mode", "test"),
                ("account_id", "acc_nope"),
                ("publishable_key", &pk),
                ("secret_key", &sk),
            ],
        ),
        (
            "webhook_secret",
            vec![
                ("name", "x"),
                ("mode", "test"),
                ("publishable_key", &pk),
                ("secret_key", &sk),
                ("webhook_secret", "sk_test_notasecret"),
            ],
        ),
    ] {
        let p = admin.post_form("/app/stripe/profiles", &fields).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(p.field_error(field).is_some(), "{field}: {}", p.body);
    }
    // The switches: Stripe needs an active profile of the environment first.
    let p = admin
        .post_form("/app/stripe/payment-method", &[("stripe_enabled", "on")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("stripe_enabled").as_deref(),
        Some("Add an active Stripe profile for this environment first.")
    );
    let p = admin
        .post_form("/app/stripe/environment", &[("environment", "staging")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("environment").as_deref(),
        Some("Choose Test or Live.")
    );
    // API key without a name.
    let p = admin.post_form("/app/api-keys", &[("name", "  ")]).await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("name").as_deref(),
        Some("Enter a name of 1 to 100 characters.")
    );
    assert_eq!(snapshot(&app, &company).await, before, "nothing changed");

    // The profile page's forms.
    let secret = new_secret();
    let profile = add_profile(&admin, "test", &secret).await;
    let path = format!("/app/stripe/profiles/{profile}");
    let before = snapshot(&app, &company).await;
    let p = admin
        .post_form(
            &path,
            &[
                ("name", "Shop"),
                ("account_id", "nope"),
                ("publishable_key", &pk),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("account_id").as_deref(),
        Some("A Stripe account ID starts with acct_.")
    );
    assert!(p.contains("value=\"nope\""));
    let p = admin
        .post_form(
            &path,
            &[
                ("name", "Shop"),
                ("publishable_key", &pk),
                ("secret_key", "sk_live_51WrongModeKey000"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("secret_key").is_some());
    let p = admin
        .post_form(
            &format!("{path}/signing-secrets"),
            &[("webhook_secret", "whsec_"), ("grace_period_secs", "3600")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.field_error("webhook_secret")
            .is_some_and(|e| e.contains("whsec_"))
    );
    assert!(p.contains("<option value=\"3600\" selected>"));
    let p = admin
        .post_form(
            &format!("{path}/signing-secrets"),
            &[
                ("webhook_secret", &new_secret()),
                ("grace_period_secs", "999999999"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("grace_period_secs").is_some(), "{}", p.body);
    assert_eq!(snapshot(&app, &company).await, before, "nothing changed");
    // The profile Stripe charges with cannot be removed: said on the page, in Italian too.
    let p = admin
        .post_form("/app/stripe/payment-method", &[("stripe_enabled", "on")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = admin
        .post_form(&format!("{path}/remove"), &[("confirm", "yes")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.field_error("form")
            .is_some_and(|e| e.contains("turn Stripe off")),
        "{}",
        p.body
    );
    admin
        .post_form("/language", &[("lang", "it"), ("next", "/app")])
        .await;
    let p = admin
        .post_form(&format!("{path}/remove"), &[("confirm", "yes")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.field_error("form")
            .is_some_and(|e| e.contains("disattiva Stripe")),
        "{}",
        p.body
    );
    let (_, profiles) = app
        .admin_get(&format!("/admin/v1/companies/{company}/profiles"))
        .await;
    assert_eq!(profiles["data"].as_array().unwrap().len(), 1);
}

async fn profiles_are_added_edited_rotated_activated_and_removed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _viewer) = app.company_with_users().await;
    // What the intake answers to a charge event signed with `secret`.
    let answer = async |secret: &str, charge: &str| {
        let body = event("charge.succeeded", json!({ "id": charge }));
        app.deliver(&company, secret, &body).await.0
    };
    let page = admin.get("/app/stripe").await;
    assert!(page.contains("No profiles yet."));
    let first_secret = new_secret();
    let first = add_profile(&admin, "test", &first_secret).await;
    let page = admin.get(&format!("/app/stripe/profiles/{first}")).await;
    assert!(page.contains("The profile was added."));
    let second = add_profile(&admin, "test", "").await;
    let (_, body) = app
        .admin_get(&format!("/admin/v1/companies/{company}/profiles"))
        .await;
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], first.as_str());
    assert_eq!(data[0]["active"], true, "the first of a mode is active");
    assert_eq!(data[1]["active"], false);
    assert!(data[1]["signing_secrets"].as_array().unwrap().is_empty());
    let list = admin.get("/app/stripe").await;
    assert!(
        list.contains("None yet"),
        "the profile without a secret says so"
    );
    // Edit: keeps the secret key when left empty.
    let (pk, _) = keys("test");
    let p = admin
        .post_form(
            &format!("/app/stripe/profiles/{second}"),
            &[
                ("name", "Second shop"),
                ("account_id", "acct_1Second0000"),
                ("publishable_key", &pk),
                ("secret_key", ""),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let (_, got) = app
        .admin_get(&format!("/admin/v1/companies/{company}/profiles/{second}"))
        .await;
    assert_eq!(got["name"], "Second shop");
    assert_eq!(got["account_id"], "acct_1Second0000");
    assert_eq!(got["publishable_key"], pk.as_str());
    assert_eq!(got["secret_key"], data[1]["secret_key"]);
    // Activate the second; the first is no longer active.
    let p = admin
        .post_form(&format!("/app/stripe/profiles/{second}/activate"), &[])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let (_, body) = app
        .admin_get(&format!("/admin/v1/companies/{company}/profiles"))
        .await;
    assert_eq!(body["data"][0]["active"], false);
    assert_eq!(body["data"][1]["active"], true);
    // Rotation on the first: the old secret stays valid for the grace period, and both sign.
    let new = new_secret();
    let p = admin
        .post_form(
            &format!("/app/stripe/profiles/{first}/signing-secrets"),
            &[("webhook_secret", &new), ("grace_period_secs", "3600")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let page = admin.get(&format!("/app/stripe/profiles/{first}")).await;
    assert!(page.contains("The new signing secret was added."));
    assert!(page.contains("Valid until"), "{}", page.body);
    assert!(page.contains(">Current<"));
    for s in [&first_secret, &new] {
        assert_eq!(answer(s, "ch_r").await, StatusCode::OK);
    }
    // The same secret again is refused next to the field, in the page's language, and the
    // secrets stay as they were.
    let before = snapshot(&app, &company).await;
    let p = admin
        .post_form(
            &format!("/app/stripe/profiles/{first}/signing-secrets"),
            &[("webhook_secret", &new), ("grace_period_secs", "3600")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert_eq!(
        p.field_error("webhook_secret").as_deref(),
        Some(
            "This signing secret is already saved. After rolling the secret in Stripe, paste the new one Stripe shows."
        ),
        "{}",
        p.body
    );
    assert!(!p.contains(&new), "the secret is not echoed");
    assert_eq!(snapshot(&app, &company).await, before, "nothing changed");
    // Rotation with no grace: the confirmation first, naming the profile and what stops, without
    // the secret in the page; nothing changed and the old secret still signs.
    let newest = new_secret();
    let rotate = format!("/app/stripe/profiles/{first}/signing-secrets");
    let p = admin
        .post_form(
            &rotate,
            &[("webhook_secret", &newest), ("grace_period_secs", "0")],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(
        p.contains("and expire its previous secrets now?"),
        "{}",
        p.body
    );
    assert!(p.contains("name=\"confirm\" value=\"yes\""), "{}", p.body);
    assert!(!p.contains(&newest), "the secret is not in the page");
    assert_eq!(
        snapshot(&app, &company).await,
        before,
        "nothing changed yet"
    );
    assert_eq!(answer(&new, "ch_s0").await, StatusCode::OK);
    // Confirmed: the secret entered before is added, and the old one is refused at once.
    let p = admin
        .post_form(&rotate, &[("grace_period_secs", "0"), ("confirm", "yes")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(answer(&newest, "ch_s1").await, StatusCode::OK);
    // A second confirmation finds nothing waiting: said next to the field, nothing changes.
    let before = snapshot(&app, &company).await;
    let p = admin
        .post_form(&rotate, &[("grace_period_secs", "0"), ("confirm", "yes")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(
        p.field_error("webhook_secret")
            .is_some_and(|e| e.contains("confirmation expired")),
        "{}",
        p.body
    );
    assert_eq!(snapshot(&app, &company).await, before, "nothing changed");
    assert_eq!(answer(&new, "ch_s").await, StatusCode::BAD_REQUEST);
    // Remove the first (not active, Stripe off).
    let p = admin
        .post_form(
            &format!("/app/stripe/profiles/{first}/remove"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), Some("/app/stripe"));
    assert!(
        admin
            .get("/app/stripe")
            .await
            .contains("The profile was removed.")
    );
    let (_, body) = app
        .admin_get(&format!("/admin/v1/companies/{company}/profiles"))
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        admin
            .get(&format!("/app/stripe/profiles/{first}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn switches_change_the_company(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _viewer) = app.company_with_users().await;
    let company_json = || async {
        app.admin_get(&format!("/admin/v1/companies/{company}"))
            .await
            .1
    };
    let c = company_json().await;
    assert_eq!(c["stripe_enabled"], false, "off by default");
    assert_eq!(c["environment"], "test");
    let page = admin.get("/app/stripe").await;
    assert!(page.contains("Stripe is off."));
    assert!(page.contains("There is no active Test profile yet"));
    add_profile(&admin, "test", &new_secret()).await;
    let p = admin
        .post_form("/app/stripe/payment-method", &[("stripe_enabled", "on")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(company_json().await["stripe_enabled"], true);
    let page = admin.get("/app/stripe").await;
    assert!(page.contains("The Stripe payment method is on."));
    assert!(page.contains("Stripe is on"));
    // Live needs a live profile (Stripe being on).
    let p = admin
        .post_form(
            "/app/stripe/environment",
            &[("environment", "live"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("environment").is_some());
    assert_eq!(company_json().await["environment"], "test");
    add_profile(&admin, "live", &new_secret()).await;
    paygate_testkit::stripe_account::live_account_ready(&app, &company, "acct_1PageTest0000").await;
    let p = admin
        .post_form(
            "/app/stripe/environment",
            &[("environment", "live"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let c = company_json().await;
    assert_eq!(c["environment"], "live");
    assert_eq!(c["stripe_enabled"], true);
    assert!(
        admin
            .get("/app/stripe")
            .await
            .contains("Current environment: Live")
    );
    // Turning it off asks first, naming the environment; nothing changes until confirmed.
    let p = admin
        .post_form("/app/stripe/payment-method", &[("stripe_enabled", "off")])
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("id=\"confirm-submit\""), "{}", p.body);
    assert!(p.body.contains("(environment: Live)"), "{}", p.body);
    assert_eq!(company_json().await["stripe_enabled"], true);
    let p = admin
        .post_form(
            "/app/stripe/payment-method",
            &[("stripe_enabled", "off"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(company_json().await["stripe_enabled"], false);
    let p = admin
        .post_form("/app/stripe/environment", &[("environment", "test")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(company_json().await["environment"], "test");
}

async fn posts_without_csrf_are_refused_and_change_nothing(backend: Backend) {
    let app = start(backend).await;
    let fx = company_with_objects(&app).await;
    let (company, admin) = (&fx.company, &fx.admin);
    let before = snapshot(&app, company).await;
    for (path, f) in changes(&fx) {
        let p = admin.post_form_raw(&path, &fields(&f)).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}");
        let mut with_wrong = fields(&f);
        with_wrong.push(("csrf", "not-the-token"));
        let p = admin.post_form_raw(&path, &with_wrong).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(snapshot(&app, company).await, before);
}

async fn viewers_cannot_change_anything(backend: Backend) {
    let app = start(backend).await;
    let fx = company_with_objects(&app).await;
    let before = snapshot(&app, &fx.company).await;
    for (path, f) in changes(&fx) {
        let p = fx.viewer.post_form(&path, &fields(&f)).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}: {}", p.body);
        assert!(p.contains("Your role is viewer"), "{path}");
    }
    assert_eq!(snapshot(&app, &fx.company).await, before);
    assert!(fx.receiver.requests().await.is_empty());
}

async fn another_companys_objects_are_not_found(backend: Backend) {
    let app = start(backend).await;
    let fx = company_with_objects(&app).await;
    let (_other, intruder, _) = app.company_with_users().await;
    let before = snapshot(&app, &fx.company).await;
    let p = intruder
        .get(&format!("/app/stripe/profiles/{}", fx.profile))
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let mut tried = 0;
    for (path, f) in changes(&fx) {
        let names_an_object = [&fx.profile, &fx.key, &fx.endpoint, &fx.message]
            .iter()
            .any(|id| path.contains(id.as_str()));
        if !names_an_object {
            continue;
        }
        tried += 1;
        let p = intruder.post_form(&path, &fields(&f)).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}: {}", p.body);
    }
    assert_eq!(tried, 12);
    // Its own pages do not show the other company's objects.
    for path in [
        "/app/stripe",
        "/app/api-keys",
        "/app/connect",
        "/app/notifications",
    ] {
        let p = intruder.get(path).await;
        for id in [&fx.profile, &fx.key, &fx.endpoint, &fx.message] {
            assert!(!p.contains(id), "{path} shows {id}");
        }
    }
    assert_eq!(snapshot(&app, &fx.company).await, before);
}

async fn send_test_event_arrives_through_the_real_intake(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _viewer) = app.company_with_users().await;
    // No profile yet: said, nothing sent.
    admin.get("/app/connect").await;
    let p = admin.post_form("/app/connect/test-event", &[]).await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.contains("There is no active Test profile"), "{}", p.body);
    // A profile without a signing secret: said too.
    let profile = add_profile(&admin, "test", "").await;
    let p = admin.post_form("/app/connect/test-event", &[]).await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.contains("has no valid signing secret"));
    assert_eq!(app.inbox_count(&company).await, 0);
    // With the endpoint's secret it goes through the intake and is stored.
    admin
        .post_form(
            &format!("/app/stripe/profiles/{profile}/signing-secrets"),
            &[
                ("webhook_secret", &new_secret()),
                ("grace_period_secs", "0"),
                ("confirm", "yes"),
            ],
        )
        .await;
    let p = admin.post_form("/app/connect/test-event", &[]).await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.contains("The test event arrived"), "{}", p.body);
    assert!(p.contains("id=\"test-status\">200<"));
    assert!(p.contains("id=\"test-arrived\">Yes<"));
    let rows = inbox_event::Entity::find()
        .filter(inbox_event::Column::StripeEventId.starts_with("evt_"))
        .all(&app.app.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let ev = &rows[0];
    assert!(p.contains(&ev.stripe_event_id), "the page names the event");
    assert!(
        ev.stripe_event_id.starts_with(TEST_EVENT_ID_PREFIX),
        "{}",
        ev.stripe_event_id
    );
    assert_eq!(ev.event_type, "payment_intent.succeeded");
    assert!(!ev.livemode);
    assert_eq!(ev.origin, "webhook", "it came through the intake");
    let body = inbox_payload::Entity::find_by_id(ev.id)
        .one(&app.app.db)
        .await
        .unwrap()
        .expect("the event is stored with its body");
    let payload: Value = serde_json::from_str(&body.payload).unwrap();
    assert_eq!(payload["data"]["object"]["object"], "payment_intent");
    assert_eq!(payload["data"]["object"]["livemode"], false);
    assert!(
        payload["data"]["object"]["id"]
            .as_str()
            .unwrap()
            .starts_with("pi_test_paygate_"),
        "{payload}"
    );
    // Realistic enough for the router to handle it.
    app.drain().await;
    let ev = inbox_event::Entity::find_by_id(ev.id)
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.status, "processed", "{:?}", ev.last_error);
    // A second press is a second event (a fresh id).
    let p = admin.post_form("/app/connect/test-event", &[]).await;
    let p = follow(&admin, p).await;
    assert!(p.contains("The test event arrived"));
    assert_eq!(app.inbox_count(&company).await, 2);
    // In the live environment too the event is a test one, signed with the test profile's
    // secret: nothing live is stored (see
    // `send_test_event_in_the_live_environment_is_test_data_and_touches_nothing_live`).
    add_profile(&admin, "live", &new_secret()).await;
    paygate_testkit::stripe_account::live_account_ready(&app, &company, "acct_1PageTest0000").await;
    let p = admin
        .post_form(
            "/app/stripe/environment",
            &[("environment", "live"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    admin.get("/app/connect").await;
    let p = admin.post_form("/app/connect/test-event", &[]).await;
    let p = follow(&admin, p).await;
    assert!(p.contains("The test event arrived"), "{}", p.body);
    let live = inbox_event::Entity::find()
        .filter(inbox_event::Column::Livemode.eq(true))
        .all(&app.app.db)
        .await
        .unwrap();
    assert!(live.is_empty(), "{live:?}");
    // A suspended company's delivery is refused: the page says so, in plain words.
    let (s, _) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let p = admin.post_form("/app/connect/test-event", &[]).await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.contains("The test event did not arrive"), "{}", p.body);
    assert!(p.contains("id=\"test-status\">403<"));
    assert!(p.contains("id=\"test-arrived\">No<"));
    assert!(p.contains("id=\"test-reason\">The company is suspended.<"));
    assert_eq!(app.inbox_count(&company).await, 3);
}

/// In the live environment, with a test and a live profile: *Send test event* is still a test —
/// a test-mode event (`evt_test_paygate_…`), signed with the test profile's secret, handled in
/// test mode — and nothing live appears, neither in the database nor on the live pages.
async fn send_test_event_in_the_live_environment_is_test_data_and_touches_nothing_live(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _viewer) = app.company_with_users().await;
    admin.get("/app/stripe").await;
    add_profile(&admin, "test", &new_secret()).await;
    add_profile(&admin, "live", &new_secret()).await;
    paygate_testkit::stripe_account::live_account_ready(&app, &company, "acct_1PageTest0000").await;
    let p = admin
        .post_form(
            "/app/stripe/environment",
            &[("environment", "live"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    let (test, live) = (Scope::new(pk, Mode::Test), Scope::new(pk, Mode::Live));
    let db = &app.app.db;

    // The Connect page shows live data (the environment's) and says the test event is a test.
    let page = admin.get("/app/connect").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.contains("id=\"live-data-label\""), "{}", page.body);
    assert!(!page.contains("id=\"test-data-banner\""));
    assert!(page.text().contains(Lang::En.t("connect.step4")));
    let form = page
        .forms()
        .into_iter()
        .find(|f| f.action == "/app/connect/test-event")
        .expect("the Send test event form");
    let p = admin
        .post_form(&form.action, &form.fields_without_csrf())
        .await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.text().contains(Lang::En.t("connect.test_arrived_title")));
    assert!(p.contains("id=\"test-arrived\">Yes<"));
    // Labelled as test data, with a link to the event in test mode.
    assert!(
        p.contains(&format!(
            "id=\"test-result-mode\">{}<",
            Lang::En.t("mode.test_banner")
        )),
        "{}",
        p.body
    );
    assert!(p.text().contains(Lang::En.t("connect.test_is_test_data")));
    let events = test.inbox_events().all(db).await.unwrap();
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    assert!(
        ev.stripe_event_id.starts_with(TEST_EVENT_ID_PREFIX),
        "{}",
        ev.stripe_event_id
    );
    assert!(!ev.livemode);
    let link = format!("/app/events/{}?mode=test", ev.stripe_event_id);
    assert!(p.links().contains(&link), "{:?}", p.links());

    // Handled in test mode: a test payment intent, nothing live at all.
    app.drain().await;
    let ev = inbox_event::Entity::find_by_id(ev.id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.status, "processed", "{:?}", ev.last_error);
    let pis = test.payment_intents().all(db).await.unwrap();
    assert_eq!(pis.len(), 1);
    assert!(pis[0].stripe_id.starts_with("pi_test_paygate_"), "{pis:?}");
    assert_eq!(live.inbox_events().count(db).await.unwrap(), 0);
    assert_eq!(live.payment_intents().count(db).await.unwrap(), 0);
    assert_eq!(live.charges().count(db).await.unwrap(), 0);
    assert_eq!(live.orders().count(db).await.unwrap(), 0);
    assert_eq!(live.notification_messages().count(db).await.unwrap(), 0);

    // What the merchant sees: the events list (live, the environment's) is still empty; the
    // link shows the event under the "Test data" banner.
    let list = admin.get("/app/events").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.contains("id=\"live-data-label\""));
    assert!(!list.contains(&ev.stripe_event_id));
    assert!(list.text().contains(Lang::En.t("events.none")));
    let list = admin.get("/app/events?mode=test").await;
    assert!(list.contains(&ev.stripe_event_id));
    assert!(list.contains("id=\"test-data-banner\""));
    let detail = admin.get(&link).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.contains("id=\"test-data-banner\""));
    assert!(detail.text().contains(&ev.stripe_event_id));
    let in_live = admin
        .get(&format!("/app/events/{}?mode=live", ev.stripe_event_id))
        .await;
    assert_eq!(in_live.status, StatusCode::NOT_FOUND);
}

/// Without an active test profile (only a live one, the live environment), *Send test event*
/// is refused with the reason, and nothing is sent or stored.
async fn send_test_event_without_a_test_profile_is_refused_and_sends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _viewer) = app.company_with_users().await;
    admin.get("/app/stripe").await;
    add_profile(&admin, "live", &new_secret()).await;
    paygate_testkit::stripe_account::live_account_ready(&app, &company, "acct_1PageTest0000").await;
    let p = admin
        .post_form(
            "/app/stripe/environment",
            &[("environment", "live"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let refusal = Lang::En.format("connect.test_no_profile", &[Lang::En.t("environment.test")]);
    assert!(
        refusal.starts_with("There is no active Test profile"),
        "{refusal}"
    );
    // Said before the button is pressed ...
    let page = admin.get("/app/connect").await;
    assert!(page.text().contains(&refusal), "{}", page.body);
    // ... and when it is: 422, the reason next to the button, no result.
    let p = admin
        .post_form("/app/connect/test-event", &[("mode", "live")])
        .await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert_eq!(p.field_error("form").as_deref(), Some(refusal.as_str()));
    assert!(!p.contains("id=\"test-result\""));
    assert_eq!(app.inbox_count(&company).await, 0);
    // Nothing reached the callback URL either: no rejected delivery.
    app.app.admin.failures.flush().await;
    let page = admin.get("/app/connect").await;
    assert!(page.text().contains(Lang::En.t("connect.rejections_none")));
    assert_eq!(app.inbox_count(&company).await, 0);
}

async fn rejected_deliveries_show_their_reason_in_plain_words(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, viewer) = app.company_with_users().await;
    admin.get("/app/stripe").await;
    add_profile(&admin, "test", &new_secret()).await;
    let page = viewer.get("/app/connect").await;
    assert!(page.contains("No rejected deliveries."));
    // Signed with a secret that is not the company's; then one without a signature.
    let (s, _) = app
        .deliver(
            &company,
            &new_secret(),
            &event("charge.succeeded", json!({"id": "ch_1"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.post_callback(&company, "{}", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    app.app.admin.failures.flush().await;
    let page = viewer.get("/app/connect").await;
    assert!(
        page.contains(
            "The signature matched none of the signing secrets: check that you copied the signing secret of this endpoint."
        ),
        "{}",
        page.body
    );
    assert!(page.contains("<code>signature_invalid</code>"));
    assert!(page.contains("The request had no Stripe-Signature header"));
    assert!(page.contains("127.0.0.1"));
    viewer
        .post_form("/language", &[("lang", "de"), ("next", "/app/connect")])
        .await;
    let page = viewer.get("/app/connect").await;
    assert!(page.contains("Die Signatur passte zu keinem der Signaturgeheimnisse"));
    // Another company does not see them.
    let (_, other, _) = app.company_with_users().await;
    assert!(
        other
            .get("/app/connect")
            .await
            .contains("No rejected deliveries.")
    );
}

async fn account_status_comes_from_the_last_account_updated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let (email, pw) = app.company_user(&company, "viewer").await;
    let b = Browser::new(&app);
    b.sign_in(&email, &pw).await;
    assert!(
        b.get("/app/connect")
            .await
            .contains("Stripe has not sent an account.updated event yet.")
    );
    let account = |created: i64, charges: bool, due: Value| {
        let mut e = event(
            "account.updated",
            json!({
                "id": "acct_1StatusTest00",
                "object": "account",
                "charges_enabled": charges,
                "payouts_enabled": false,
                "details_submitted": true,
                "requirements": {"currently_due": due, "disabled_reason": "requirements.past_due"},
            }),
        );
        e["created"] = json!(created);
        e
    };
    let now = paygate_testkit::now_secs();
    for e in [
        account(now - 10, true, json!(["external_account"])),
        account(now - 100, false, json!(["older.requirement"])),
    ] {
        let (s, _) = app.deliver(&company, &secret, &e).await;
        assert_eq!(s, StatusCode::OK);
    }
    app.drain().await;
    let page = b.get("/app/connect").await;
    assert!(
        page.contains("<code>acct_1StatusTest00</code>"),
        "{}",
        page.body
    );
    assert!(page.contains("<code>external_account</code>"));
    assert!(!page.contains("older.requirement"), "the newest state wins");
    assert!(page.contains("<code>requirements.past_due</code>"));
    assert!(page.contains("Charges enabled</dt><dd class=\"status-ok\">Yes"));
    assert!(page.contains("Payouts enabled</dt><dd class=\"status-failed\">No"));
}

async fn an_api_key_made_on_the_page_works_until_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, viewer) = app.company_with_users().await;
    let page = admin.get("/app/api-keys").await;
    assert!(page.contains("No API keys yet."));
    let p = admin
        .post_form("/app/api-keys", &[("name", "web shop")])
        .await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let marker = "id=\"api-key\">";
    let at = p.body.find(marker).unwrap() + marker.len();
    let key = p.body[at..at + p.body[at..].find('<').unwrap()].to_owned();
    assert!(key.starts_with("pgk_") && key.len() > 40, "{key}");
    assert!(p.contains("it is shown only this once"));
    let orders = |k: String| {
        let app = &app;
        async move {
            app.send(
                app.client
                    .get(app.url("/api/v1/orders?checkout_session=cs_test_none"))
                    .bearer_auth(k),
            )
            .await
        }
    };
    let (s, body) = orders(key.clone()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!([]));
    // Listed with its prefix (the key's first characters) and last use, never in full.
    let list = viewer.get("/app/api-keys").await;
    assert!(list.contains("web shop"));
    let prefix = list
        .body
        .split("<code>")
        .filter_map(|c| c.split_once("…</code>").map(|(p, _)| p))
        .find(|p| p.len() >= 12 && key.starts_with(p))
        .unwrap_or_else(|| panic!("no prefix of {key} on the page: {}", list.body));
    assert!(prefix.len() < key.len() / 2, "{prefix}");
    assert!(!list.contains(&key));
    assert!(!list.contains(">Never<"), "the key was used");
    let (_, keys) = app
        .admin_get(&format!("/admin/v1/companies/{company}/api-keys"))
        .await;
    let id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    // Audited.
    let audit = paygate_db::entities::audit_log::Entity::find()
        .filter(paygate_db::entities::audit_log::Column::Target.eq(&id))
        .all(&app.app.db)
        .await
        .unwrap();
    assert!(audit.iter().any(|a| a.action == "api_key.created"));
    // Revoked: refused from then on.
    admin.get("/app/api-keys").await;
    let p = admin
        .post_form(&format!("/app/api-keys/{id}/revoke"), &[("confirm", "yes")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let (s, _) = orders(key.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let list = admin.get("/app/api-keys").await;
    assert!(list.contains("The key was revoked"));
    assert!(list.contains("Revoked "));
    assert!(!list.contains(&format!("/app/api-keys/{id}/revoke")));
    let audit = paygate_db::entities::audit_log::Entity::find()
        .filter(paygate_db::entities::audit_log::Column::Target.eq(&id))
        .all(&app.app.db)
        .await
        .unwrap();
    assert!(audit.iter().any(|a| a.action == "api_key.revoked"));
}

async fn secrets_never_appear_unmasked(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, viewer) = app.company_with_users().await;
    admin.get("/app/stripe").await;
    let (pk, sk) = keys("test");
    let first = new_secret();
    let p = admin
        .post_form(
            "/app/stripe/profiles",
            &[
                ("name", "Shop"),
                ("mode", "test"),
                ("publishable_key", &pk),
                ("secret_key", &sk),
                ("webhook_secret", &first),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let profile = p.location().unwrap().rsplit('/').next().unwrap().to_owned();
    let second = new_secret();
    admin
        .post_form(
            &format!("/app/stripe/profiles/{profile}/signing-secrets"),
            &[("webhook_secret", &second), ("grace_period_secs", "3600")],
        )
        .await;
    // A form sent back with an error does not echo the secrets either.
    let p = admin
        .post_form(
            "/app/stripe/profiles",
            &[
                ("name", ""),
                ("mode", "test"),
                ("publishable_key", &pk),
                ("secret_key", &sk),
                ("webhook_secret", &first),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!p.contains(&sk) && !p.contains(&first));
    let p = admin
        .post_form(
            &format!("/app/stripe/profiles/{profile}"),
            &[("name", ""), ("publishable_key", &pk), ("secret_key", &sk)],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!p.contains(&sk));
    // The API key is shown once, on the answer to its creation only.
    let p = admin.post_form("/app/api-keys", &[("name", "k")]).await;
    let p = follow(&admin, p).await;
    let marker = "id=\"api-key\">";
    let at = p.body.find(marker).unwrap() + marker.len();
    let key = p.body[at..at + p.body[at..].find('<').unwrap()].to_owned();
    admin.post_form("/app/connect/test-event", &[]).await;
    // A notification endpoint's secret: once when made, once when rotated.
    let rx = Receiver::start(&[]).await;
    let p = admin
        .post_form("/app/notifications", &[("url", &rx.url())])
        .await;
    let p = follow(&admin, p).await;
    let ep_secret = shown_secret(&p);
    let (_, eps) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints"
        ))
        .await;
    let ep = eps["data"][0]["id"].as_str().unwrap().to_owned();
    let p = admin
        .post_form(
            &format!("/app/notifications/{ep}/rotate"),
            &[("grace_secs", "3600")],
        )
        .await;
    let p = follow(&admin, p).await;
    let ep_rotated = shown_secret(&p);
    assert_ne!(ep_secret, ep_rotated);
    let secrets = [
        sk.as_str(),
        first.as_str(),
        second.as_str(),
        key.as_str(),
        ep_secret.as_str(),
        ep_rotated.as_str(),
    ];
    let masks = [
        format!("sk_test_…{}", &sk[sk.len() - 4..]),
        format!("whsec_…{}", &second[second.len() - 4..]),
    ];
    for b in [&admin, &viewer] {
        for path in [
            "/app".to_owned(),
            "/app/stripe".to_owned(),
            format!("/app/stripe/profiles/{profile}"),
            "/app/connect".to_owned(),
            "/app/api-keys".to_owned(),
            "/app/notifications".to_owned(),
        ] {
            let page = b.get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            for s in secrets {
                assert!(!page.contains(s), "{path} shows a secret");
            }
            if path.starts_with("/app/stripe") {
                for m in &masks {
                    assert!(page.contains(m), "{path} lacks the mask {m}");
                }
            }
        }
    }
}

/// The page a form leads to: the GET after its redirect (Post/Redirect/Get), or the form's own
/// answer when it did not redirect (a refusal, 422).
async fn follow(
    b: &Browser,
    p: paygate_testkit::backoffice::Page,
) -> paygate_testkit::backoffice::Page {
    match (p.status, p.location()) {
        (StatusCode::SEE_OTHER, Some(to)) => b.get(to).await,
        _ => p,
    }
}

/// The secret a page shows once (`<code … id="endpoint-secret">…<`).
fn shown_secret(p: &paygate_testkit::backoffice::Page) -> String {
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let marker = "id=\"endpoint-secret\">";
    let at = p.body.find(marker).expect("the secret is shown") + marker.len();
    let secret = p.body[at..at + p.body[at..].find('<').unwrap()].to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    secret
}

/// Verifies a received message with the `standardwebhooks` crate; returns its body.
fn verified(secret: &str, req: &wiremock::Request) -> Value {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    let mut headers = http::HeaderMap::new();
    for (k, v) in req.headers.iter() {
        headers.insert(
            http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    wh.verify(&req.body, &headers)
        .unwrap_or_else(|e| panic!("standardwebhooks refused the message: {e:?}"));
    serde_json::from_slice(&req.body).unwrap()
}

async fn notification_endpoints_are_added_tested_switched_rotated_and_deleted(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, viewer) = app.company_with_users().await;
    let page = admin.get("/app/notifications").await;
    assert!(page.contains("No endpoints yet."));
    let rx = Receiver::start(&[]).await;
    let p = admin
        .post_form(
            "/app/notifications",
            &[
                ("url", &rx.url()),
                ("description", "shop backend"),
                ("event_types", "order.paid"),
                ("event_types", "payment.succeeded"),
            ],
        )
        .await;
    let p = follow(&admin, p).await;
    let secret = shown_secret(&p);
    assert!(p.contains("it is shown only this once"));
    let (_, eps) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints"
        ))
        .await;
    let ep = &eps["data"][0];
    let id = ep["id"].as_str().unwrap().to_owned();
    assert_eq!(ep["url"], rx.url());
    assert_eq!(ep["description"], "shop backend");
    assert_eq!(
        ep["event_types"],
        json!(["order.paid", "payment.succeeded"])
    );
    assert_eq!(ep["enabled"], true);
    // Listed, the secret masked.
    let list = viewer.get("/app/notifications").await;
    assert!(list.contains(&format!("<code>{}</code>", rx.url())));
    assert!(list.contains("<code>order.paid</code> <code>payment.succeeded</code>"));
    assert!(list.contains(&format!("whsec_…{}", &secret[secret.len() - 4..])));
    assert!(!list.contains(&secret));
    assert!(list.contains(&format!("id=\"state-{id}\" class=\"status-ok\">Enabled<")));
    // A test message, delivered and verifiable with the secret the page showed.
    admin.get("/app/notifications").await;
    let p = admin
        .post_form(&format!("/app/notifications/{id}/test"), &[])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    // The ping is a test-mode message: back to the test-mode list, where it shows.
    assert_eq!(p.location(), Some("/app/notifications?mode=test"));
    let page = admin.get("/app/notifications").await;
    assert!(page.contains("A test message is on its way"));
    assert!(page.contains("<code>ping</code>"));
    assert!(page.contains("id=\"test-data-banner\""));
    let live = viewer.get("/app/notifications?mode=live").await;
    assert!(!live.contains("<code>ping</code>"), "{}", live.body);
    assert!(page.contains(">Pending<"), "{}", page.body);
    app.drain_notifications().await;
    let got = rx.requests().await;
    assert_eq!(got.len(), 1);
    let body = verified(&secret, &got[0]);
    assert_eq!(body["type"], "ping");
    assert_eq!(body["company_id"], company.as_str());
    let msg = body["id"].as_str().unwrap().to_owned();
    let page = viewer.get("/app/notifications").await;
    assert!(page.contains(&format!("id=\"message-{msg}\"")));
    assert!(page.contains(">Delivered<"), "{}", page.body);
    assert!(page.contains("attempts: 1 · HTTP 200"));
    // Replayed: delivered a second time, same message id. The form names the page's mode: in
    // the other mode the message is not found.
    let replay = format!("/app/notifications/messages/{msg}/replay");
    let p = admin.post_form(&replay, &[("mode", "live")]).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let p = admin
        .post_form(&replay, &[("mode", "live"), ("confirm", "yes")])
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    // The confirmation first, naming the message; nothing is sent until it is confirmed.
    let p = admin.post_form(&replay, &[("mode", "test")]).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.contains("id=\"confirm-submit\""), "{}", p.body);
    assert!(
        p.contains(&format!("Send the ping message {msg} again?")),
        "{}",
        p.body
    );
    app.drain_notifications().await;
    assert_eq!(
        rx.requests().await.len(),
        1,
        "sent again before the confirmation"
    );
    let p = admin
        .post_form(&replay, &[("mode", "test"), ("confirm", "yes")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), Some("/app/notifications?mode=test"));
    app.drain_notifications().await;
    let got = rx.requests().await;
    assert_eq!(got.len(), 2);
    assert_eq!(verified(&secret, &got[1])["id"], msg.as_str());
    // Disabled: nothing goes there; enabled again.
    let p = admin
        .post_form(
            &format!("/app/notifications/{id}/disable"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let ep_json = || async {
        app.admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints/{id}"
        ))
        .await
        .1
    };
    assert_eq!(ep_json().await["enabled"], false);
    let page = admin.get("/app/notifications").await;
    assert!(page.contains(&format!(
        "id=\"state-{id}\" class=\"status-failed\">Disabled<"
    )));
    assert!(
        !page.contains("id=\"disabled-warning\""),
        "disabled by the merchant, not by Paygate"
    );
    admin
        .post_form(&format!("/app/notifications/{id}/enable"), &[])
        .await;
    assert_eq!(ep_json().await["enabled"], true);
    // Rotated: the new secret shown once; both sign while the old one is in its grace period.
    let p = admin
        .post_form(
            &format!("/app/notifications/{id}/rotate"),
            &[("grace_secs", "3600")],
        )
        .await;
    let p = follow(&admin, p).await;
    let rotated = shown_secret(&p);
    assert_ne!(rotated, secret);
    assert!(p.contains("New signing secret of"));
    admin
        .post_form(&format!("/app/notifications/{id}/test"), &[])
        .await;
    app.drain_notifications().await;
    let got = rx.requests().await;
    assert_eq!(got.len(), 3);
    verified(&rotated, &got[2]);
    verified(&secret, &got[2]);
    // Audited like the admin API's changes.
    let audit = paygate_db::entities::audit_log::Entity::find()
        .filter(paygate_db::entities::audit_log::Column::Target.eq(&id))
        .all(&app.app.db)
        .await
        .unwrap();
    for action in [
        "notification_endpoint.created",
        "notification_endpoint.updated",
        "notification_endpoint.secret_rotated",
    ] {
        assert!(audit.iter().any(|a| a.action == action), "{action}");
    }
    // Deleted.
    let p = admin
        .post_form(
            &format!("/app/notifications/{id}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let (s, _) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints/{id}"
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let page = admin.get("/app/notifications").await;
    assert!(page.contains("The endpoint was deleted."));
    assert!(page.contains("No endpoints yet."));
}

async fn notification_forms_show_validation_errors_next_to_the_field(backend: Backend) {
    let app = start(backend).await;
    let (company, admin, _viewer) = app.company_with_users().await;
    admin.get("/app/notifications").await;
    let before = snapshot(&app, &company).await;
    let p = admin
        .post_form(
            "/app/notifications",
            &[("url", "not a url"), ("description", "typed")],
        )
        .await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.field_error("url")
            .is_some_and(|e| e.contains("http(s) URL of your system")),
        "{}",
        p.body
    );
    assert!(p.contains("value=\"not a url\""));
    assert!(p.contains("value=\"typed\""));
    // A host that does not resolve is told so, not that it is private (`.invalid` never
    // resolves), in the page's language.
    for (lang, words) in [
        ("en", "The host name could not be resolved"),
        ("de", "Der Hostname konnte nicht aufgelöst werden"),
    ] {
        admin
            .post_form(
                "/language",
                &[("lang", lang), ("next", "/app/notifications")],
            )
            .await;
        let p = admin
            .post_form(
                "/app/notifications",
                &[("url", "https://no-such-host.invalid/hook")],
            )
            .await;
        let p = follow(&admin, p).await;
        let e = p.field_error("url").unwrap_or_default();
        assert!(e.contains(words), "{lang}: {e}");
        assert!(!e.contains("privat"), "{lang}: {e}");
    }
    admin
        .post_form(
            "/language",
            &[("lang", "en"), ("next", "/app/notifications")],
        )
        .await;
    let rx = Receiver::start(&[]).await;
    let p = admin
        .post_form(
            "/app/notifications",
            &[("url", &rx.url()), ("event_types", "order.exploded")],
        )
        .await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("event_types").as_deref(),
        Some("Choose among the listed event types.")
    );
    let long = "x".repeat(501);
    let p = admin
        .post_form(
            "/app/notifications",
            &[("url", &rx.url()), ("description", &long)],
        )
        .await;
    let p = follow(&admin, p).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("description").is_some());
    // Shopper e-mails need an SMTP server this installation does not have.
    let p = admin
        .post_form(
            "/app/notifications/settings",
            &[("shopper_emails", "on"), ("sender_name", "Acme")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.field_error("shopper_emails")
            .is_some_and(|e| e.contains("e-mail server"))
    );
    assert!(p.contains("value=\"Acme\""));
    let p = admin
        .post_form(
            "/app/notifications/settings",
            &[("sender_name", &"y".repeat(101))],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("sender_name").is_some());
    assert_eq!(snapshot(&app, &company).await, before, "nothing changed");
    // A valid sender name is saved.
    let p = admin
        .post_form(
            "/app/notifications/settings",
            &[("sender_name", "Acme Shop")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let (_, st) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-settings"
        ))
        .await;
    assert_eq!(st["sender_name"], "Acme Shop");
    assert_eq!(st["shopper_emails"], false);
}

async fn an_endpoint_paygate_disabled_is_flagged_on_the_page(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.outbound_allow_private = true;
        s.notify_retry_schedule = "10ms,10ms,10ms".into();
        s.notify_disable_after_secs = 0;
    };
    let app = TestApp::start(opts).await;
    let (company, admin, viewer) = app.company_with_users().await;
    let rx = Receiver::start(&[500; 50]).await;
    admin.get("/app/notifications").await;
    let p = admin
        .post_form("/app/notifications", &[("url", &rx.url())])
        .await;
    shown_secret(&follow(&admin, p).await);
    let (_, eps) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/notification-endpoints"
        ))
        .await;
    let id = eps["data"][0]["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        admin
            .post_form(&format!("/app/notifications/{id}/test"), &[])
            .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        app.drain_notifications().await;
        let (_, got) = app
            .admin_get(&format!(
                "/admin/v1/companies/{company}/notification-endpoints/{id}"
            ))
            .await;
        if got["enabled"] == false {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never disabled: {got}"
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let page = viewer.get("/app/notifications").await;
    assert!(page.contains("id=\"disabled-warning\""), "{}", page.body);
    assert!(page.contains("Paygate disabled 1 of your endpoints"));
    assert!(page.contains(&format!("id=\"disabled-{id}\"")));
    assert!(page.contains("Disabled by Paygate: every delivery has failed since"));
    assert!(page.contains(">Failed<") || page.contains(">Pending<"));
    // The failure in words, the technical text behind a disclosure (the last attempt was
    // answered 500, or found the endpoint disabled, depending on timing).
    assert!(
        page.contains("Your system answered with HTTP status 500.")
            || page.contains("The delivery failed."),
        "{}",
        page.body
    );
    assert!(
        page.contains("<summary>Technical details</summary><code>the endpoint answered 500</code>")
            || page.contains(
                "<summary>Technical details</summary><code>the endpoint is disabled</code>"
            ),
        "{}",
        page.body
    );
    viewer
        .post_form("/language", &[("lang", "it"), ("next", "/app")])
        .await;
    let page = viewer.get("/app/notifications").await;
    assert!(page.contains("Disattivato da Paygate"));
    assert!(
        page.contains("Il tuo sistema ha risposto con lo stato HTTP 500.")
            || page.contains("La consegna non è riuscita.")
    );
    assert!(page.contains("<summary>Dettagli tecnici</summary>"));
    // Fixed and enabled again: the warning is gone; the failed messages can be sent again.
    admin.get("/app/notifications").await;
    admin
        .post_form(&format!("/app/notifications/{id}/enable"), &[])
        .await;
    let page = admin.get("/app/notifications").await;
    assert!(!page.contains("id=\"disabled-warning\""));
    assert!(!page.contains(&format!("id=\"disabled-{id}\"")));
    let p = admin
        .post_form(
            &format!("/app/notifications/{id}/replay-failed"),
            &[("since_hours", "24"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let page = admin.get("/app/notifications").await;
    assert!(
        page.contains("The messages are sent again.")
            || page.contains("There were no failed messages to send again."),
        "{}",
        page.body
    );
}

db_tests!(
    every_settings_page_renders_for_admin_and_viewer,
    forms_show_validation_errors_next_to_the_field,
    profiles_are_added_edited_rotated_activated_and_removed,
    switches_change_the_company,
    posts_without_csrf_are_refused_and_change_nothing,
    viewers_cannot_change_anything,
    another_companys_objects_are_not_found,
    send_test_event_arrives_through_the_real_intake,
    send_test_event_in_the_live_environment_is_test_data_and_touches_nothing_live,
    send_test_event_without_a_test_profile_is_refused_and_sends_nothing,
    rejected_deliveries_show_their_reason_in_plain_words,
    account_status_comes_from_the_last_account_updated,
    an_api_key_made_on_the_page_works_until_revoked,
    secrets_never_appear_unmasked,
    notification_endpoints_are_added_tested_switched_rotated_and_deleted,
    notification_forms_show_validation_errors_next_to_the_field,
    an_endpoint_paygate_disabled_is_flagged_on_the_page,
);
