//! Every POST form of the merchant back office (`/app/…`), submitted in a real browser (Debian's
//! `chromium` through `chromedriver`), in a window 360 px wide, for a company whose name is 200
//! characters long (issue 20: "reload after each form does nothing twice; go-live needs the
//! confirmation").
//!
//! For each form: the page after the submit was reached by a redirect (Post/Redirect/Get, read
//! from the Navigation Timing API), the form did what it says once, and the browser's reload
//! (`refresh()`) of that page changes nothing. "Changes nothing" is judged on everything the
//! company has that a form can change, as the admin API shows it (the company, its profiles,
//! keys, users, notification endpoints, messages and settings, billing settings, events, orders,
//! disputes, subscriptions, customers, the audit log), the inbox, and every request the fake
//! Stripe (wiremock on loopback) received.
//!
//! The destructive and money-moving actions are walked through their confirmation: the first
//! step (a link, or the form's first submit) shows a confirmation page and changes nothing —
//! reloading it changes nothing either —, confirming does it once, and a reload after confirming
//! does nothing again: revoke a key, remove a user, delete, disable and rotate-at-once a
//! notification endpoint, replay its failed messages, remove a Stripe profile, go live, refund,
//! submit dispute evidence, accept a dispute, cancel or resume a subscription.
//!
//! Replaying one event or one notification message is a single button without a confirmation,
//! by design: it hands one object over again (an event's handlers are idempotent; a message
//! keeps its id, which the merchant's system sees); it is still Post/Redirect/Get and checked
//! here like every other form.
//!
//! Every merchant page reached shows the environment banner and the company's whole name, and
//! does not scroll sideways at 360 px; screenshots go to `target/browser-screenshots/forms-settings/`, `…/forms-notifications/` and
//! `…/forms-data/`. Skipped with a SKIPPING banner when the browser is missing, unless
//! `PAYGATE_TEST_REQUIRE_BROWSER=1`.
//!
//! The forms, from `src/merchant/*.rs` and `frontend-templates/backoffice/app/`:
//!
//! | test | forms |
//! | --- | --- |
//! | [`settings_forms_redirect_and_a_reload_does_nothing_twice`] | `/signin`, `/app/stripe/connect`, `…/check`, `…/payment-method`, `…/fraud-refunds`, `…/profiles`, `…/profiles/{id}`, `…/signing-secrets`, `…/activate`, `…/remove`, `/app/api-keys`, `…/{id}/revoke`, `/app/users`, `…/{id}/remove`, `/app/billing-settings`, `/app/connect/test-event`, `/language`, `/app/stripe/environment`, `/signout` |
//! | [`notification_forms_redirect_and_a_reload_does_nothing_twice`] | `/app/notifications`, `…/settings`, `…/{id}/test`, `…/disable`, `…/enable`, `…/replay-failed`, `…/messages/{id}/replay`, `…/rotate` (with a grace period, and at once), `…/delete` |
//! | [`data_forms_redirect_and_a_reload_does_nothing_twice`] | `/app/events/{id}/replay`, `/app/orders/{id}/refund`, `/app/disputes/{id}/evidence`, `…/files`, `…/submit`, `…/accept`, `/app/subscriptions/{id}/cancel-at-period-end`, `…/resume`, `…/cancel-now`, `/app/customers/{id}/portal` |

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use paygate_backoffice::i18n::Lang;
use paygate_testkit::backoffice::USER_PASSWORD;
use paygate_testkit::billing_objects::{self, Shape};
use paygate_testkit::objects::dispute;
use paygate_testkit::receivers::{Receiver, SmtpSink};
use paygate_testkit::stripe_account::{FakeStripeAccount, live_account_ready};
use paygate_testkit::webdriver::{Driver, Web, browser_available, screenshot_dir};
use paygate_testkit::{Backend, Options, TestApp, event, new_secret, now_secs, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The window's width: the narrowest phone the back office is made for.
const PHONE: u32 = 360;

/// A company named with 200 characters; returns its id.
async fn long_named_company(app: &TestApp) -> String {
    let company = unique("co");
    let name: String = format!("Trattoria {}", "Bellavista-Sul-Lago ".repeat(10))
        .chars()
        .take(200)
        .collect();
    assert_eq!(name.chars().count(), 200);
    let (s, b) = app
        .admin_post(
            "/admin/v1/companies",
            json!({"company_id": company, "name": name}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    company
}

/// What the company has that a form can change, as the admin API shows it, with the inbox and
/// the fake Stripe's requests.
#[derive(Clone, Debug, PartialEq)]
struct State(BTreeMap<String, Value>);

impl State {
    fn get(&self, key: &str) -> &Value {
        &self.0[key]
    }

    /// The rows of the list `key` (a page's `data`, or the array itself).
    fn rows(&self, key: &str) -> Vec<Value> {
        let v = self.get(key);
        v.get("data")
            .unwrap_or(v)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The actions the audit log gained since `before`, oldest first.
    fn audited_since(&self, before: &State) -> Vec<String> {
        let old: BTreeSet<i64> = before
            .rows("audit")
            .iter()
            .filter_map(|r| r["id"].as_i64())
            .collect();
        let mut new: Vec<(i64, String)> = self
            .rows("audit")
            .iter()
            .filter_map(|r| Some((r["id"].as_i64()?, r["action"].as_str()?.to_owned())))
            .filter(|(id, _)| !old.contains(id))
            .collect();
        new.sort();
        new.into_iter().map(|(_, a)| a).collect()
    }

    /// The requests the fake Stripe received since `before` (`METHOD /path body`).
    fn stripe_since(&self, before: &State) -> Vec<String> {
        let old = before.rows("stripe").len();
        self.rows("stripe")
            .iter()
            .skip(old)
            .map(|r| r.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The parts that differ from `other`, with both values (for a failure's message).
    fn differences(&self, other: &State) -> String {
        self.0
            .iter()
            .filter(|(k, v)| other.0.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}:\n  now    {v}\n  before {}", other.0[k]))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The browser, signed in or not, with what the walk checks on every page.
struct Walk<'a> {
    app: &'a TestApp,
    company: String,
    /// The company's name (every merchant page shows it whole).
    name: String,
    stripe: &'a MockServer,
    web: Web,
    driver: Driver,
    /// Pages that scroll sideways or lack the environment banner.
    problems: Vec<String>,
}

impl<'a> Walk<'a> {
    async fn start(app: &'a TestApp, company: &str, stripe: &'a MockServer, shots: &str) -> Self {
        let shots: PathBuf = screenshot_dir(env!("CARGO_TARGET_TMPDIR"), Some(shots));
        let driver = Driver::start(&shots);
        let c = driver.session().await;
        c.set_window_size(PHONE, 800).await.unwrap();
        let web = Web::new(&driver, c, &app.base_url, shots);
        let (s, b) = app
            .admin_get(&format!("/admin/v1/companies/{company}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        Self {
            app,
            company: company.to_owned(),
            name: b["name"].as_str().unwrap().to_owned(),
            stripe,
            web,
            driver,
            problems: Vec::new(),
        }
    }

    /// Signs in through the sign-in form (itself Post/Redirect/Get).
    async fn sign_in(&mut self, email: &str) {
        self.web.goto("/signin").await;
        self.web.fill("/signin", "email", email).await;
        self.web.fill("/signin", "password", USER_PASSWORD).await;
        let before = self.state().await;
        self.web.submit("/signin").await;
        assert!(self.web.path().await.starts_with("/app"));
        // Signing in notes the time in the user's row: no assertion that nothing else changed.
        self.submitted("signed-in", &before, Change::Any).await;
    }

    async fn state(&self) -> State {
        let c = &self.company;
        let mut m = BTreeMap::new();
        for (key, path) in [
            ("company", format!("/admin/v1/companies/{c}")),
            (
                "audit",
                format!("/admin/v1/audit-log?company={c}&limit=200"),
            ),
            ("api_keys", format!("/admin/v1/companies/{c}/api-keys")),
            ("users", format!("/admin/v1/companies/{c}/users")),
            ("profiles", format!("/admin/v1/companies/{c}/profiles")),
            (
                "endpoints",
                format!("/admin/v1/companies/{c}/notification-endpoints"),
            ),
            (
                "messages_test",
                format!("/admin/v1/companies/{c}/notification-messages?mode=test&limit=200"),
            ),
            (
                "messages_live",
                format!("/admin/v1/companies/{c}/notification-messages?mode=live&limit=200"),
            ),
            (
                "notification_settings",
                format!("/admin/v1/companies/{c}/notification-settings"),
            ),
            (
                "billing_settings",
                format!("/admin/v1/companies/{c}/billing-settings?mode=test"),
            ),
            (
                "events",
                format!("/admin/v1/companies/{c}/events?mode=test&limit=200"),
            ),
            (
                "orders",
                format!("/admin/v1/companies/{c}/orders?mode=test"),
            ),
            (
                "disputes",
                format!("/admin/v1/companies/{c}/disputes?mode=test"),
            ),
            (
                "subscriptions",
                format!("/admin/v1/companies/{c}/subscriptions?mode=test"),
            ),
            (
                "customers",
                format!("/admin/v1/companies/{c}/customers?mode=test"),
            ),
        ] {
            let (s, body) = self.app.admin_get(&path).await;
            assert_eq!(s, StatusCode::OK, "{path}: {body}");
            m.insert(key.to_owned(), body);
        }
        m.insert("inbox".into(), json!(self.app.inbox_count(c).await));
        let stripe: Vec<Value> = self
            .stripe
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| {
                json!(format!(
                    "{} {} {}",
                    r.method,
                    r.url.path(),
                    String::from_utf8_lossy(&r.body)
                ))
            })
            .collect();
        m.insert("stripe".into(), Value::Array(stripe));
        State(m)
    }

    /// Checks the page shown (no sideways scrolling; on a merchant page the environment banner
    /// and the company's whole name) and saves its screenshot as `name`.
    async fn look(&mut self, name: &str) {
        let path = self.web.path().await;
        if path.starts_with("/app") {
            if self.web.find_all("#env-banner[data-mode]").await.is_empty() {
                self.problems
                    .push(format!("{name} ({path}): no environment banner"));
            }
            if !self.web.text().await.contains(&self.name) {
                self.problems
                    .push(format!("{name} ({path}): the company's name is not shown"));
            }
        }
        let size = self
            .web
            .js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            .await;
        let (scroll, client) = (size[0].as_i64().unwrap_or(0), size[1].as_i64().unwrap_or(0));
        if scroll > client {
            self.problems.push(format!(
                "{name} ({path}) at {PHONE} px scrolls sideways: scrollWidth {scroll} > clientWidth {client}"
            ));
        }
        self.web.shot(name).await;
    }

    /// After a form's submit: the page was reached by a redirect, the state changed as `change`
    /// says, the page is checked; then the browser's reload, after which nothing changed.
    /// Returns the state after the submit.
    async fn submitted(&mut self, name: &str, before: &State, change: Change) -> State {
        self.web.assert_redirected(name).await;
        self.web.assert_no_dialog().await;
        let after = self.state().await;
        match change {
            Change::Some => assert!(
                after != *before,
                "{name}: the form changed nothing (on {})",
                self.web.path().await
            ),
            Change::None => assert!(
                after == *before,
                "{name}: the form changed something:\n{}",
                after.differences(before)
            ),
            Change::Any => {}
        }
        self.look(name).await;
        self.web.reload().await;
        assert_eq!(
            self.web.navigation().await,
            ("reload".to_owned(), 0),
            "{name}: the reload"
        );
        let again = self.state().await;
        assert!(
            again == after,
            "{name}: the reload did it again:\n{}",
            again.differences(&after)
        );
        after
    }

    /// A page on the way to a change (a confirmation page): nothing changed since `before`,
    /// not even after the browser's reload of it.
    async fn nothing_yet(&mut self, name: &str, before: &State) {
        self.web.assert_no_dialog().await;
        let now = self.state().await;
        assert!(
            now == *before,
            "{name}: changed before the confirmation:\n{}",
            now.differences(before)
        );
        self.look(name).await;
        self.web.reload().await;
        let again = self.state().await;
        assert!(
            again == *before,
            "{name}: the reload of the confirmation page changed something:\n{}",
            again.differences(before)
        );
    }

    /// Panics unless the page shows exactly one element `css` (with the page's text).
    async fn shows(&self, css: &str) {
        let n = self.web.find_all(css).await.len();
        assert_eq!(
            n,
            1,
            "{css} on {}:\n{}",
            self.web.path().await,
            self.web.text().await
        );
    }

    /// Ends the browser session; panics with every page problem found.
    async fn finish(self) {
        let Walk {
            web,
            driver,
            problems,
            ..
        } = self;
        driver.close(web.c).await;
        drop(driver);
        assert!(
            problems.is_empty(),
            "{} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// What a submit must do to the state.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Something.
    Some,
    /// Nothing (a language switch, signing out).
    None,
    /// Not checked (signing in notes its time).
    Any,
}

const RK_TEST: &str = "rk_test_51FormsBrowserAutoConnect00";
const TEST_ACCOUNT: &str = "acct_1FormsBrowserTest0";
const LIVE_ACCOUNT: &str = "acct_1FormsBrowserLive0";

/// The id of the row of list `key` that `before` did not have.
fn new_row(after: &State, before: &State, key: &str) -> Value {
    let old: Vec<Value> = before.rows(key);
    let mut new: Vec<Value> = after
        .rows(key)
        .into_iter()
        .filter(|r| !old.iter().any(|o| o["id"] == r["id"]))
        .collect();
    assert_eq!(new.len(), 1, "one new row in {key}: {new:?}");
    new.remove(0)
}

/// The Stripe settings, a profile's page, API keys, users, billing settings, the test event,
/// the language switch, going live and signing out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_forms_redirect_and_a_reload_does_nothing_twice() {
    if !browser_available("the settings forms check") {
        return;
    }
    let fake = FakeStripeAccount::start(TEST_ACCOUNT, true, true).await;
    let mut opts = Options::new(Backend::Sqlite);
    opts.stripe_api_base = Some(fake.uri());
    opts.adjust = |s| {
        s.stripe_check_secs = 0;
        s.reconcile_interval_secs = 0;
    };
    let app = TestApp::start(opts).await;
    let company = long_named_company(&app).await;
    let (email, _) = app.company_user(&company, "admin").await;
    let (other_user, _) = app.company_user(&company, "viewer").await;
    live_account_ready(&app, &company, LIVE_ACCOUNT).await;
    let mut w = Walk::start(&app, &company, &fake.server, "forms-settings").await;
    w.sign_in(&email).await;

    // Connect automatically: one profile, one webhook endpoint in Stripe.
    w.web.goto("/app/stripe").await;
    w.web
        .fill("/app/stripe/connect", "auto_secret_key", RK_TEST)
        .await;
    let before = w.state().await;
    w.web.submit("/app/stripe/connect").await;
    let after = w.submitted("connected", &before, Change::Some).await;
    let auto = new_row(&after, &before, "profiles");
    assert_eq!(after.audited_since(&before), ["profile.created"]);
    assert_eq!(fake.endpoints().len(), 1);
    let auto_id = auto["id"].as_str().unwrap().to_owned();

    // Check the connection now: Stripe asked once.
    w.web.goto("/app/stripe").await;
    let before = w.state().await;
    w.web.submit("/app/stripe/check").await;
    let after = w.submitted("checked", &before, Change::Some).await;
    assert!(!after.stripe_since(&before).is_empty());

    // The Stripe payment method switched, then switched back.
    for name in ["payment-method-switched", "payment-method-switched-back"] {
        w.web.goto("/app/stripe").await;
        let before = w.state().await;
        let was = before.get("company")["stripe_enabled"].as_bool().unwrap();
        w.web.submit("/app/stripe/payment-method").await;
        if was {
            // Off: the confirmation first, and nothing changed yet.
            w.shows("#confirm-submit").await;
            w.nothing_yet(&format!("{name}-confirm"), &before).await;
            w.web.click_and_wait("#confirm-submit").await;
        }
        let after = w.submitted(name, &before, Change::Some).await;
        assert_eq!(
            after.get("company")["stripe_enabled"],
            json!(!was),
            "{name}"
        );
        assert_eq!(after.audited_since(&before), ["company.updated"], "{name}");
    }

    // Automatic refunds of payments warned of fraud.
    w.web.goto("/app/stripe").await;
    let before = w.state().await;
    w.web.submit("/app/stripe/fraud-refunds").await;
    let after = w.submitted("fraud-refunds", &before, Change::Some).await;
    assert_eq!(after.audited_since(&before), ["company.updated"]);

    // Two profiles added by hand: the live one (active) and a second test one.
    let mut added = Vec::new();
    for (name, mode, account) in [
        ("Live shop", "live", LIVE_ACCOUNT),
        ("Test shop by hand", "test", TEST_ACCOUNT),
    ] {
        w.web.goto("/app/stripe").await;
        let form = "/app/stripe/profiles";
        w.web.fill(form, "name", name).await;
        w.web.select(form, "mode", mode).await;
        w.web.fill(form, "account_id", account).await;
        w.web
            .fill(
                form,
                "publishable_key",
                &format!("pk_{mode}_51FormsBrowserPublishable000"),
            )
            .await;
        w.web
            .fill(
                form,
                "secret_key",
                &format!("sk_{mode}_51FormsBrowserSecret{}", unique("k")),
            )
            .await;
        w.web.fill(form, "webhook_secret", &new_secret()).await;
        let active = w
            .web
            .find(&format!(r#"form[action="{form}"] [name="active"]"#))
            .await;
        let want_active = mode == "live";
        if active.is_selected().await.unwrap() != want_active {
            active.click().await.unwrap();
        }
        let before = w.state().await;
        w.web.submit(form).await;
        let after = w
            .submitted(&format!("profile-added-{mode}"), &before, Change::Some)
            .await;
        assert_eq!(after.audited_since(&before), ["profile.created"]);
        let p = new_row(&after, &before, "profiles");
        assert_eq!(p["name"], json!(name));
        added.push(p["id"].as_str().unwrap().to_owned());
    }
    let manual = added[1].clone();
    let page = format!("/app/stripe/profiles/{manual}");

    // Its page: rename it.
    w.web.goto(&page).await;
    w.web.fill(&page, "name", "Test shop, renamed").await;
    let before = w.state().await;
    w.web.submit(&page).await;
    let after = w.submitted("profile-saved", &before, Change::Some).await;
    assert_eq!(after.audited_since(&before), ["profile.updated"]);

    // A new signing secret, the old one valid for an hour more.
    w.web.goto(&page).await;
    let rotate = format!("{page}/signing-secrets");
    w.web.fill(&rotate, "webhook_secret", &new_secret()).await;
    w.web.select(&rotate, "grace_period_secs", "3600").await;
    let before = w.state().await;
    w.web.submit(&rotate).await;
    let after = w
        .submitted("signing-secret-rotated", &before, Change::Some)
        .await;
    assert_eq!(
        after.audited_since(&before),
        ["profile.signing_secret_rotated"]
    );

    // Make it the active test profile.
    w.web.goto(&page).await;
    let before = w.state().await;
    w.web.submit(&format!("{page}/activate")).await;
    let after = w
        .submitted("profile-activated", &before, Change::Some)
        .await;
    assert_eq!(after.audited_since(&before), ["profile.updated"]);

    // Remove the automatic one (now inactive): the confirmation first, naming it; then once,
    // its webhook endpoint deleted in Stripe once.
    let auto_page = format!("/app/stripe/profiles/{auto_id}");
    w.web.goto(&auto_page).await;
    let before = w.state().await;
    w.web.submit(&format!("{auto_page}/remove")).await;
    w.web.assert_text(TEST_ACCOUNT).await;
    w.shows("#confirm-submit").await;
    w.nothing_yet("remove-profile-confirm", &before).await;
    w.web.click_and_wait("#confirm-submit").await;
    let after = w.submitted("profile-removed", &before, Change::Some).await;
    assert_eq!(after.audited_since(&before), ["profile.deleted"]);
    assert!(
        !after
            .rows("profiles")
            .iter()
            .any(|p| p["id"] == json!(auto_id))
    );
    let deletes: Vec<String> = after
        .stripe_since(&before)
        .into_iter()
        .filter(|r| r.starts_with("DELETE /v1/webhook_endpoints/"))
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(fake.endpoints().is_empty());

    // A new API key: shown once, one key.
    w.web.goto("/app/api-keys").await;
    w.web.fill("/app/api-keys", "name", "Shop server").await;
    let before = w.state().await;
    w.web.submit("/app/api-keys").await;
    w.shows("#new-key").await;
    let after = w.submitted("api-key-created", &before, Change::Some).await;
    assert_eq!(after.audited_since(&before), ["api_key.created"]);
    let key = new_row(&after, &before, "api_keys");
    assert!(
        w.web.find_all("#new-key").await.is_empty(),
        "a reload shows the key again"
    );
    w.shows("table.list tbody tr").await;

    // Revoke it: the link leads to the confirmation, then once.
    let key_id = key["id"].as_str().unwrap();
    let before = after;
    w.web
        .click_and_wait(&format!(r#"a[href="/app/api-keys/{key_id}/revoke"]"#))
        .await;
    w.nothing_yet("api-key-revoke-confirm", &before).await;
    w.web.click_and_wait("#confirm-submit").await;
    let after = w.submitted("api-key-revoked", &before, Change::Some).await;
    assert_eq!(after.audited_since(&before), ["api_key.revoked"]);

    // Invite a user: the link shown once, one user.
    w.web.goto("/app/users").await;
    let invited = format!("{}@example.test", unique("invited"));
    w.web.fill("/app/users", "email", &invited).await;
    w.web.select("/app/users", "role", "viewer").await;
    let before = w.state().await;
    w.web.submit("/app/users").await;
    w.shows("#invitation").await;
    let after = w.submitted("user-invited", &before, Change::Some).await;
    assert_eq!(after.audited_since(&before), ["user.created"]);
    assert_eq!(new_row(&after, &before, "users")["email"], json!(invited));
    assert!(w.web.find_all("#invitation").await.is_empty());

    // Remove the other user: the confirmation naming them, then once.
    let other = after
        .rows("users")
        .into_iter()
        .find(|u| u["email"] == json!(other_user))
        .unwrap();
    let other_id = other["id"].as_str().unwrap();
    let before = after;
    w.web
        .click_and_wait(&format!(r#"a[href="/app/users/{other_id}/remove"]"#))
        .await;
    w.web.assert_text(&other_user).await;
    w.nothing_yet("user-remove-confirm", &before).await;
    w.web.click_and_wait("#confirm-submit").await;
    let after = w.submitted("user-removed", &before, Change::Some).await;
    assert_eq!(after.audited_since(&before), ["user.removed"]);
    assert!(
        !after
            .rows("users")
            .iter()
            .any(|u| u["email"] == json!(other_user))
    );

    // Billing settings: dunning e-mails switched.
    w.web.goto("/app/billing-settings").await;
    w.web.find("#dunning_emails").await.click().await.unwrap();
    let checked = w
        .web
        .js("return document.querySelectorAll('input[name=attempt]:checked').length")
        .await;
    if checked == json!(0) {
        w.web.find("#attempt-1").await.click().await.unwrap();
    }
    let before = w.state().await;
    w.web.submit("/app/billing-settings").await;
    let after = w
        .submitted("billing-settings-saved", &before, Change::Some)
        .await;
    assert_eq!(after.audited_since(&before), ["billing_settings.updated"]);

    // Send test event: one event in the inbox.
    w.web.goto("/app/connect").await;
    let before = w.state().await;
    w.web.submit("/app/connect/test-event").await;
    w.shows("#test-result").await;
    let after = w.submitted("test-event-sent", &before, Change::Some).await;
    assert_eq!(
        after.get("inbox").as_u64(),
        before.get("inbox").as_u64().map(|n| n + 1)
    );

    // The language switch: Italian, then back to English; it changes nothing of the company.
    for lang in [Lang::It, Lang::En] {
        let code = lang.code();
        w.web.goto("/app/stripe").await;
        let before = w.state().await;
        w.web
            .click_and_wait(&format!(
                r#"form[action="/language"] button[value="{code}"]"#
            ))
            .await;
        w.submitted(&format!("language-{code}"), &before, Change::None)
            .await;
        assert_eq!(w.web.lang().await, code);
        assert_eq!(w.web.path().await, "/app/stripe");
    }

    // Going live: the switch shows the confirmation naming the live account and changes
    // nothing; only its button goes live, once.
    w.web.goto("/app/stripe").await;
    w.web
        .select("/app/stripe/environment", "environment", "live")
        .await;
    let before = w.state().await;
    w.web.submit("/app/stripe/environment").await;
    w.web.assert_text(LIVE_ACCOUNT).await;
    assert_eq!(before.get("company")["environment"], json!("test"));
    w.nothing_yet("go-live-confirm", &before).await;
    w.web.click_and_wait("#confirm-submit").await;
    let after = w.submitted("live", &before, Change::Some).await;
    assert_eq!(after.get("company")["environment"], json!("live"));
    assert_eq!(after.audited_since(&before), ["company.updated"]);
    w.shows("#env-banner[data-mode=live]").await;

    // Signing out.
    let before = w.state().await;
    w.web.submit("/signout").await;
    w.submitted("signed-out", &before, Change::None).await;
    assert_eq!(w.web.path().await, "/signin");
    w.finish().await;
}

/// The notification endpoints: add, settings, test message, disable/enable, replay failed,
/// replay one message, rotate the secret (with a grace period, and at once), delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_forms_redirect_and_a_reload_does_nothing_twice() {
    if !browser_available("the notification forms check") {
        return;
    }
    let stripe = MockServer::start().await;
    let mut opts = Options::new(Backend::Sqlite);
    opts.stripe_api_base = Some(stripe.uri());
    // The receiver listens on loopback; shopper e-mails need an e-mail server.
    opts.adjust = |s| s.outbound_allow_private = true;
    let smtp = SmtpSink::start().await;
    opts.smtp_url = Some(smtp.url());
    let app = TestApp::start(opts).await;
    let company = long_named_company(&app).await;
    app.create_profile(&company, "test", &new_secret()).await;
    let (email, _) = app.company_user(&company, "admin").await;
    let receiver = Receiver::start(&[]).await;
    let mut w = Walk::start(&app, &company, &stripe, "forms-notifications").await;
    w.sign_in(&email).await;
    let list = "/app/notifications";

    // Add an endpoint: its secret shown once, one endpoint.
    w.web.goto(list).await;
    w.web.fill(list, "url", &receiver.url()).await;
    w.web.fill(list, "description", "Shop backend").await;
    let before = w.state().await;
    w.web.submit(list).await;
    w.shows("#new-secret").await;
    let after = w.submitted("endpoint-added", &before, Change::Some).await;
    assert_eq!(
        after.audited_since(&before),
        ["notification_endpoint.created"]
    );
    let endpoint = new_row(&after, &before, "endpoints");
    let id = endpoint["id"].as_str().unwrap().to_owned();
    assert!(w.web.find_all("#new-secret").await.is_empty());
    let ep = format!("/app/notifications/{id}");

    // The shopper e-mail settings.
    w.web.goto(list).await;
    w.web
        .fill("/app/notifications/settings", "sender_name", "Trattoria")
        .await;
    w.web.find("#shopper_emails").await.click().await.unwrap();
    let before = w.state().await;
    w.web.submit("/app/notifications/settings").await;
    let after = w.submitted("settings-saved", &before, Change::Some).await;
    assert_eq!(
        after.audited_since(&before),
        ["notification_settings.updated"]
    );

    // Send a test message: one message.
    w.web.goto(list).await;
    let before = w.state().await;
    w.web.submit(&format!("{ep}/test")).await;
    let after = w
        .submitted("test-message-queued", &before, Change::Some)
        .await;
    assert_eq!(
        after.rows("messages_test").len(),
        before.rows("messages_test").len() + 1
    );

    // Disable it: the confirmation naming its URL, then once.
    w.web.goto(list).await;
    let before = w.state().await;
    w.web.submit(&format!("{ep}/disable")).await;
    w.web.assert_text(&receiver.url()).await;
    w.nothing_yet("disable-confirm", &before).await;
    w.web.click_and_wait("#confirm-submit").await;
    let after = w
        .submitted("endpoint-disabled", &before, Change::Some)
        .await;
    assert_eq!(
        after.audited_since(&before),
        ["notification_endpoint.updated"]
    );
    assert_eq!(new_enabled(&after, &id), json!(false));

    // The test message fails for good while the endpoint is disabled.
    app.drain_notifications().await;

    // Enable it again.
    w.web.goto(list).await;
    let before = w.state().await;
    w.web.submit(&format!("{ep}/enable")).await;
    let after = w.submitted("endpoint-enabled", &before, Change::Some).await;
    assert_eq!(new_enabled(&after, &id), json!(true));

    // Replay its failed messages: the confirmation, then once.
    w.web.goto(list).await;
    let before = w.state().await;
    w.web.submit(&format!("{ep}/replay-failed")).await;
    w.nothing_yet("replay-failed-confirm", &before).await;
    w.web.click_and_wait("#confirm-submit").await;
    // The one failed message, not "nothing to replay".
    w.web
        .assert_text(Lang::En.t("notifications.flash_replayed"))
        .await;
    let after = w.submitted("failed-replayed", &before, Change::Some).await;
    assert_eq!(
        after.audited_since(&before),
        ["notification_endpoint.replayed"]
    );
    app.drain_notifications().await;
    assert_eq!(receiver.requests().await.len(), 1);

    // Replay one message.
    let message = after.rows("messages_test")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.web.goto(list).await;
    let before = w.state().await;
    w.web
        .submit(&format!("/app/notifications/messages/{message}/replay"))
        .await;
    w.web.assert_text(&message).await;
    w.shows("#confirm-submit").await;
    w.nothing_yet("message-replay-confirm", &before).await;
    w.web.click_and_wait("#confirm-submit").await;
    let after = w.submitted("message-replayed", &before, Change::Some).await;
    assert_eq!(
        after.audited_since(&before),
        ["notification_message.replayed"]
    );
    app.drain_notifications().await;
    assert_eq!(receiver.requests().await.len(), 2);

    // A new secret, the old one valid for a day more: shown once.
    w.web.goto(list).await;
    let before = w.state().await;
    w.web.submit(&format!("{ep}/rotate")).await;
    w.shows("#new-secret").await;
    let after = w.submitted("secret-rotated", &before, Change::Some).await;
    assert_eq!(
        after.audited_since(&before),
        ["notification_endpoint.secret_rotated"]
    );
    assert!(w.web.find_all("#new-secret").await.is_empty());

    // A new secret at once (the old one stops now): the confirmation first.
    w.web.goto(list).await;
    w.web
        .select(&format!("{ep}/rotate"), "grace_secs", "0")
        .await;
    let before = w.state().await;
    w.web.submit(&format!("{ep}/rotate")).await;
    w.nothing_yet("rotate-now-confirm", &before).await;
    w.web.click_and_wait("#confirm-submit").await;
    let after = w
        .submitted("secret-rotated-now", &before, Change::Some)
        .await;
    assert_eq!(
        after.audited_since(&before),
        ["notification_endpoint.secret_rotated"]
    );

    // Delete it: the link leads to the confirmation, then once.
    w.web.goto(list).await;
    let before = w.state().await;
    w.web
        .click_and_wait(&format!(r#"a[href^="{ep}/delete"]"#))
        .await;
    w.web.assert_text(&receiver.url()).await;
    w.nothing_yet("delete-confirm", &before).await;
    w.web.click_and_wait("#confirm-submit").await;
    let after = w.submitted("endpoint-deleted", &before, Change::Some).await;
    assert_eq!(
        after.audited_since(&before),
        ["notification_endpoint.deleted"]
    );
    assert!(after.rows("endpoints").is_empty());
    w.finish().await;
}

/// Whether endpoint `id` is enabled in `s`.
fn new_enabled(s: &State, id: &str) -> Value {
    s.rows("endpoints")
        .into_iter()
        .find(|e| e["id"] == json!(id))
        .map(|e| e["enabled"].clone())
        .unwrap_or(Value::Null)
}

/// The fake Stripe of the data forms: refunds, dispute updates, closes and files,
/// subscription updates and cancellations, customer portal sessions.
async fn data_stripe() -> MockServer {
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_forms", "object": "refund", "status": "succeeded", "amount": 1000,
            "currency": "eur", "created": now_secs(), "charge": "ch_forms",
            "payment_intent": "pi_forms", "reason": "duplicate", "failure_reason": null,
            "metadata": {},
        })))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/disputes/[^/]+$"))
        .respond_with(|r: &Request| {
            let submitted = String::from_utf8_lossy(&r.body).contains("submit=true");
            let id = r
                .url
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            ResponseTemplate::new(200).set_body_json(json!({
                "id": id, "object": "dispute",
                "status": if submitted { "under_review" } else { "needs_response" },
                "evidence_details": {"due_by": 1_900_000_000, "has_evidence": true,
                                     "past_due": false, "submission_count": i64::from(submitted)}
            }))
        })
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/disputes/[^/]+/close$"))
        .respond_with(|r: &Request| {
            let id = r
                .url
                .path()
                .split('/')
                .nth(3)
                .unwrap_or_default()
                .to_owned();
            ResponseTemplate::new(200).set_body_json(json!({
                "id": id, "object": "dispute", "status": "lost",
                "evidence_details": {"due_by": 1_900_000_000, "has_evidence": false,
                                     "past_due": false, "submission_count": 0}
            }))
        })
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "file_FormsBrowser1", "object": "file", "purpose": "dispute_evidence"
        })))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_forms"))
        .respond_with(|r: &Request| {
            let at_end = String::from_utf8_lossy(&r.body).contains("cancel_at_period_end=true");
            ResponseTemplate::new(200).set_body_json(stripe_subscription("active", at_end))
        })
        .mount(&stripe)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/subscriptions/sub_forms"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(stripe_subscription("canceled", false)),
        )
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "bps_forms", "object": "billing_portal.session", "customer": "cus_forms",
            "livemode": false, "return_url": "https://shop.example/account",
            "url": "https://billing.stripe.com/p/session/test_forms"
        })))
        .mount(&stripe)
        .await;
    stripe
}

fn stripe_subscription(status: &str, cancel_at_period_end: bool) -> Value {
    let ended = (status == "canceled").then(now_secs);
    json!({
        "id": "sub_forms", "object": "subscription", "status": status, "customer": "cus_forms",
        "cancel_at_period_end": cancel_at_period_end, "livemode": false, "created": 1_699_000_000,
        "current_period_start": 1_699_400_000, "current_period_end": 1_702_000_000,
        "canceled_at": ended, "ended_at": ended,
    })
}

/// The Stripe requests to `prefix` (`METHOD /path`) since `before`.
fn stripe_calls(after: &State, before: &State, prefix: &str) -> Vec<String> {
    after
        .stripe_since(before)
        .into_iter()
        .filter(|r| r.starts_with(prefix))
        .collect()
}

/// Replaying an event, a refund, dispute evidence (draft, file, submission) and accepting a
/// dispute, the subscription actions and the customer portal link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_forms_redirect_and_a_reload_does_nothing_twice() {
    if !browser_available("the data forms check") {
        return;
    }
    let stripe = data_stripe().await;
    let mut opts = Options::new(Backend::Sqlite);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = long_named_company(&app).await;
    let secret = new_secret();
    app.create_profile(&company, "test", &secret).await;
    let (email, _) = app.company_user(&company, "admin").await;
    let order = app.paid_order(&company, "pi_forms", "ch_forms").await;
    let ignored = event(
        "product.created",
        json!({"id": "prod_forms", "object": "product"}),
    );
    let ignored_id = ignored["id"].as_str().unwrap().to_owned();
    let mut events = vec![ignored];
    for (id, charge) in [("dp_forms_submit", "ch_d1"), ("dp_forms_accept", "ch_d2")] {
        let mut d = dispute(id, "needs_response", charge, "pi_d", 4200, false, false);
        d["evidence_details"]["due_by"] = json!(now_secs() + 5 * 86_400);
        events.push(event("charge.dispute.created", d));
    }
    events.push(event(
        "customer.created",
        billing_objects::customer("cus_forms", "ada@example.test", &["it"]),
    ));
    events.push(event(
        "customer.subscription.created",
        billing_objects::subscription(
            "sub_forms",
            "cus_forms",
            "active",
            1,
            1_699_400_000,
            Shape::Old,
        ),
    ));
    for ev in &events {
        let (s, b) = app.deliver(&company, &secret, ev).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    app.drain().await;
    let mut w = Walk::start(&app, &company, &stripe, "forms-data").await;
    w.sign_in(&email).await;

    // Replay an event.
    w.web
        .goto(&format!("/app/events/{ignored_id}?mode=test"))
        .await;
    let before = w.state().await;
    w.web
        .submit(&format!("/app/events/{ignored_id}/replay"))
        .await;
    let after = w.submitted("event-replayed", &before, Change::Some).await;
    assert_eq!(after.audited_since(&before), ["event.replayed"]);
    assert_eq!(
        w.web.path().await,
        format!("/app/events/{ignored_id}?mode=test")
    );

    // Refund 10.00 of the order: the form, the confirmation (nothing refunded, not even on a
    // reload), then one refund request to Stripe.
    w.web.goto(&format!("/app/orders/{order}?mode=test")).await;
    w.web.click_and_wait("#refund-action").await;
    let amount = w.web.find("#refund-form [name=\"amount\"]").await;
    amount.clear().await.unwrap();
    amount.send_keys("10").await.unwrap();
    w.web
        .find("#refund-form select[name=\"reason\"]")
        .await
        .select_by_value("duplicate")
        .await
        .unwrap();
    let before = w.state().await;
    w.web.click_and_wait("#refund-continue").await;
    w.web.assert_text(Lang::En.t("refunds.confirm_title")).await;
    w.nothing_yet("refund-confirm", &before).await;
    w.web.click_and_wait("#refund-submit").await;
    let after = w.submitted("refunded", &before, Change::Some).await;
    assert_eq!(stripe_calls(&after, &before, "POST /v1/refunds").len(), 1);
    assert_eq!(w.web.path().await, format!("/app/orders/{order}?mode=test"));

    // Dispute evidence: a draft saved once.
    let dp = "/app/disputes/dp_forms_submit";
    w.web.goto(&format!("{dp}?mode=test")).await;
    w.web
        .fill(&format!("{dp}/evidence"), "customer_name", "Grace Hopper")
        .await;
    let before = w.state().await;
    w.web.click_and_wait("#save-draft").await;
    let after = w
        .submitted("evidence-draft-saved", &before, Change::Some)
        .await;
    let drafts = stripe_calls(&after, &before, "POST /v1/disputes/dp_forms_submit ");
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    assert!(!drafts[0].contains("submit=true"));

    // A file uploaded once.
    let shots = w.web.shots.clone();
    let pdf = shots.join("receipt.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n% Paygate forms browser test\n").unwrap();
    w.web
        .select(&format!("{dp}/files"), "field", "receipt")
        .await;
    w.web
        .find("#upload-file")
        .await
        .send_keys(pdf.to_str().unwrap())
        .await
        .unwrap();
    let before = w.state().await;
    w.web.click_and_wait("#upload-button").await;
    let after = w
        .submitted("evidence-file-uploaded", &before, Change::Some)
        .await;
    assert_eq!(stripe_calls(&after, &before, "POST /v1/files").len(), 1);
    assert_eq!(after.audited_since(&before), ["dispute.file_uploaded"]);

    // Submit: the form saves the draft and leads to the confirmation (nothing submitted, not
    // even on a reload); confirming submits once.
    w.web.goto(&format!("{dp}?mode=test")).await;
    let before = w.state().await;
    w.web.click_and_wait("#submit-evidence").await;
    w.web.assert_redirected("evidence to submit").await;
    assert!(w.web.path().await.starts_with(&format!("{dp}/submit?")));
    let at_confirm = w.state().await;
    assert!(
        !at_confirm
            .stripe_since(&before)
            .iter()
            .any(|r| r.contains("submit=true")),
        "submitted before the confirmation"
    );
    w.nothing_yet("evidence-submit-confirm", &at_confirm).await;
    w.web.click_and_wait("#confirm-button").await;
    let after = w
        .submitted("evidence-submitted", &at_confirm, Change::Some)
        .await;
    let submits: Vec<String> =
        stripe_calls(&after, &at_confirm, "POST /v1/disputes/dp_forms_submit ")
            .into_iter()
            .filter(|r| r.contains("submit=true"))
            .collect();
    assert_eq!(submits.len(), 1, "{submits:?}");
    w.shows("#evidence-readonly").await;

    // Accept the other dispute: the link leads to the confirmation, then once.
    let dp = "/app/disputes/dp_forms_accept";
    w.web.goto(&format!("{dp}?mode=test")).await;
    let before = w.state().await;
    w.web.click_and_wait("#accept-link").await;
    w.nothing_yet("dispute-accept-confirm", &before).await;
    w.web.click_and_wait("#confirm-button").await;
    let after = w.submitted("dispute-accepted", &before, Change::Some).await;
    assert_eq!(
        stripe_calls(&after, &before, "POST /v1/disputes/dp_forms_accept/close").len(),
        1
    );
    assert_eq!(after.audited_since(&before), ["dispute.accepted"]);

    // The subscription: cancel at period end, resume, cancel now — each its confirmation,
    // then one request to Stripe.
    for (action, call) in [
        ("cancel-at-period-end", "POST /v1/subscriptions/sub_forms"),
        ("resume", "POST /v1/subscriptions/sub_forms"),
        ("cancel-now", "DELETE /v1/subscriptions/sub_forms"),
    ] {
        w.web.goto("/app/subscriptions/sub_forms?mode=test").await;
        let link = format!("/app/subscriptions/sub_forms/{action}");
        let before = w.state().await;
        w.web
            .click_and_wait(&format!(r#"a[href^="{link}?"]"#))
            .await;
        w.nothing_yet(&format!("subscription-{action}-confirm"), &before)
            .await;
        w.web.submit(&link).await;
        let after = w
            .submitted(&format!("subscription-{action}"), &before, Change::Some)
            .await;
        assert_eq!(stripe_calls(&after, &before, call).len(), 1, "{action}");
        assert_eq!(after.audited_since(&before).len(), 1, "{action}");
    }

    // The customer portal link: shown once, one session.
    w.web.goto("/app/customers/cus_forms?mode=test").await;
    w.web
        .click_and_wait(r#"a[href^="/app/customers/cus_forms/portal"]"#)
        .await;
    let portal = "/app/customers/cus_forms/portal";
    w.web
        .fill(portal, "return_url", "https://shop.example/account")
        .await;
    let before = w.state().await;
    w.web.submit(portal).await;
    w.shows("#portal-link").await;
    let after = w.submitted("portal-link", &before, Change::Some).await;
    assert_eq!(
        stripe_calls(&after, &before, "POST /v1/billing_portal/sessions").len(),
        1
    );
    assert_eq!(
        after.audited_since(&before),
        ["customer_portal.link_created"]
    );
    assert!(w.web.find_all("#portal-link").await.is_empty());
    w.finish().await;
}
