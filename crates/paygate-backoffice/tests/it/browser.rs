//! The back office in a real browser: Debian's `chromium`, driven through `chromedriver` with
//! WebDriver (fantoccini), against the real app on port 0.
//!
//! One journey: the test operator signs in and creates a company (and one named
//! `<script>alert(1)</script>`, which must show as text and open no alert), then the company's
//! first user; the operator signs out, the language is switched to Italian on the sign-in page,
//! the user signs in and sees Italian texts, adds a test profile, turns the Stripe payment method
//! on, presses **Send test event** and finds the event in the events list.
//!
//! Every page visited is saved as `target/browser-screenshots/NN-<step>.png` (full page, 1280
//! wide). When `/usr/bin/chromium` or `/usr/bin/chromedriver` is missing the test prints a
//! SKIPPING banner and passes, unless `PAYGATE_TEST_REQUIRE_BROWSER=1` (set by `.ci/run`). The
//! driver, the browser helpers and that check are the test kit's `webdriver` module, shared with
//! the first-run browser test of `paygate-server`.

use std::time::{Duration, Instant};

use paygate_backoffice::i18n::Lang;
use paygate_testkit::webdriver::{Driver, WAIT, Web, browser_available, screenshot_dir};
use paygate_testkit::{
    Backend, OPERATOR_EMAIL, OPERATOR_PASSWORD, Options, TestApp, event, new_secret, unique,
};
use serde_json::json;

/// The company's first user (created by the operator with this password).
const USER_PASSWORD: &str = "una password abbastanza lunga";
const XSS_NAME: &str = "<script>alert(1)</script>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_journey_in_a_real_browser() {
    if !browser_available("the browser test") {
        return;
    }
    let shots = screenshot_dir(env!("CARGO_TARGET_TMPDIR"), None);
    let app = TestApp::start(Options::new(Backend::Sqlite)).await;
    let driver = Driver::start(&shots);
    let c = driver.session().await;
    let mut web = Web::new(&driver, c.clone(), &app.base_url, shots);
    journey(&app, &mut web).await;
    driver.close(c).await;
    drop(driver);
}

async fn journey(app: &TestApp, web: &mut Web) {
    // Not signed in: the sign-in page, in English (the browser asks for en-US).
    web.goto("/").await;
    assert_eq!(web.path().await, "/signin");
    assert_eq!(web.lang().await, "en");
    web.assert_text(Lang::En.t("signin.title")).await;
    // The dialog check below can fail: a dialog opened by script is seen.
    web.js("setTimeout(() => alert('probe'), 0); return null")
        .await;
    let deadline = Instant::now() + WAIT;
    let probe = loop {
        match web.c.get_alert_text().await {
            Ok(text) => break text,
            Err(e) if e.is_no_such_alert() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the probe dialog: {e}"),
        }
    };
    assert_eq!(probe, "probe");
    web.c.accept_alert().await.unwrap();
    web.assert_no_dialog().await;
    web.shot("signin").await;

    // The operator signs in and lands on the console.
    web.fill("/signin", "email", OPERATOR_EMAIL).await;
    web.fill("/signin", "password", OPERATOR_PASSWORD).await;
    web.submit("/signin").await;
    assert_eq!(web.path().await, "/console/companies");
    web.assert_text(Lang::En.t("companies.create_title")).await;
    web.shot("console-companies").await;

    // XSS: a company named like a script shows as text, runs nothing.
    web.fill("/console/companies", "name", XSS_NAME).await;
    web.submit("/console/companies").await;
    assert!(
        web.path().await.starts_with("/console/companies/cmp_"),
        "{}",
        web.path().await
    );
    assert_eq!(web.find("h1").await.text().await.unwrap(), XSS_NAME);
    web.assert_no_dialog().await;
    web.shot("console-xss-company").await;
    web.goto("/console/companies").await;
    let link = web
        .find(r#"table.list a[href^="/console/companies/cmp_"]"#)
        .await;
    assert_eq!(link.text().await.unwrap(), XSS_NAME);
    web.assert_text(XSS_NAME).await;
    assert_eq!(
        web.js("return Array.from(document.scripts).filter(s => !s.src).length")
            .await,
        json!(0),
        "no inline script element on the page"
    );
    web.assert_no_dialog().await;
    web.shot("console-xss-company-as-text").await;

    // The merchant's company (its id generated) and its first user, an admin with a password.
    let company_name = "Trattoria Da Mario S.r.l.";
    web.fill("/console/companies", "name", company_name).await;
    web.submit("/console/companies").await;
    let company_path = web.path().await;
    let company_id = company_path
        .strip_prefix("/console/companies/")
        .unwrap_or_else(|| panic!("the new company's page, not {company_path}"))
        .to_owned();
    assert_eq!(web.find("h1").await.text().await.unwrap(), company_name);
    web.assert_text(Lang::En.t("flash.company_created")).await;
    web.assert_text(&format!("/callbacks/v1.0/stripe/{company_id}"))
        .await;
    web.shot("console-company-created").await;

    let email = format!("{}@trattoria.test", unique("mario"));
    let users_action = format!("/console/companies/{company_id}/users");
    web.fill(&users_action, "email", &email).await;
    web.select(&users_action, "role", "admin").await;
    web.fill(&users_action, "password", USER_PASSWORD).await;
    web.submit(&users_action).await;
    assert_eq!(web.path().await, company_path);
    let users = web.find("table.list").await.text().await.unwrap();
    assert!(users.contains(&email), "{users}");
    web.shot("console-user-created").await;

    // Sign out; switch the sign-in page to Italian (remembered), sign in as the user.
    web.click_and_wait(r#"form[action="/signout"] button"#)
        .await;
    assert_eq!(web.path().await, "/signin");
    web.shot("signed-out").await;
    web.click_and_wait(r#"form[action="/language"] button[value="it"]"#)
        .await;
    assert_eq!(web.path().await, "/signin");
    assert_eq!(web.lang().await, "it");
    assert_italian(web, "signin.title").await;
    web.shot("signin-italian").await;
    web.fill("/signin", "email", &email).await;
    web.fill("/signin", "password", USER_PASSWORD).await;
    web.submit("/signin").await;
    assert_eq!(web.path().await, "/app");
    assert_eq!(web.lang().await, "it");
    for key in ["nav.dashboard", "dashboard.callback_url", "common.sign_out"] {
        assert_italian(web, key).await;
    }
    web.assert_text(company_name).await;
    web.assert_text(&app.url(&format!("/callbacks/v1.0/stripe/{company_id}")))
        .await;
    web.shot("app-dashboard-italian").await;

    merchant_pages(app, web, &company_id).await;
}

/// The page shows the Italian text of `key` (which differs from the English one) and not the
/// English one.
async fn assert_italian(web: &Web, key: &str) {
    let (it, en) = (Lang::It.t(key), Lang::En.t(key));
    assert_ne!(it, en, "{key} is translated");
    web.assert_text(it).await;
    let text = web.text().await;
    assert!(
        !text.contains(en),
        "English {en:?} ({key}) on an Italian page:\n{text}"
    );
}

/// The merchant's pages, in Italian: a test profile (a wrong key first: the message shows next
/// to the field), the Stripe payment method on, Send test event, the event in the events list.
async fn merchant_pages(app: &TestApp, web: &mut Web, company_id: &str) {
    // Stripe settings, from the menu.
    web.click_and_wait(r#"nav a[href="/app/stripe"]"#).await;
    assert_eq!(web.path().await, "/app/stripe");
    assert_italian(web, "stripe_settings.add_title").await;
    web.assert_text(Lang::It.t("stripe_settings.payment_method_off"))
        .await;
    web.shot("app-stripe-settings").await;

    let form = "/app/stripe/profiles";
    let secret = new_secret();
    let sk = format!("sk_test_51{}", unique("SecretKeyBrowser"));
    web.fill(form, "name", "Prova").await;
    web.select(form, "mode", "test").await;
    web.fill(form, "account_id", "acct_1BrowserTest000").await;
    web.fill(form, "publishable_key", "pk_live_51WrongModeKey0000000000")
        .await;
    web.fill(form, "secret_key", &sk).await;
    web.fill(form, "webhook_secret", &secret).await;
    web.submit(form).await;
    let error = web
        .find("#publishable_key-error")
        .await
        .text()
        .await
        .unwrap();
    assert!(!error.is_empty(), "a message next to the publishable key");
    assert_eq!(
        web.find("#publishable_key")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    web.shot("app-stripe-profile-invalid").await;

    // Secrets are not kept after an error: type them again, with the right key.
    web.fill(
        form,
        "publishable_key",
        "pk_test_51BrowserPublishable000000",
    )
    .await;
    web.fill(form, "secret_key", &sk).await;
    web.fill(form, "webhook_secret", &secret).await;
    let active = web
        .find(r#"form[method="post"][action="/app/stripe/profiles"] input[name="active"]"#)
        .await;
    if !active.is_selected().await.unwrap() {
        active.click().await.unwrap();
    }
    web.submit(form).await;
    let path = web.path().await;
    assert!(path.starts_with("/app/stripe/profiles/prf_"), "{path}");
    web.assert_text(Lang::It.t("stripe_settings.flash_profile_added"))
        .await;
    let text = web.text().await;
    assert!(
        text.contains("pk_test_51BrowserPublishable000000"),
        "{text}"
    );
    assert!(!text.contains(&sk), "the secret key is masked: {text}");
    assert!(
        !text.contains(&secret),
        "the signing secret is masked: {text}"
    );
    web.shot("app-stripe-profile-added").await;
    web.click_and_wait(r#"nav a[href="/app/stripe"]"#).await;
    let profiles = web.find("#profiles table.list").await.text().await.unwrap();
    assert!(profiles.contains("Prova"), "{profiles}");
    // (the badge is shown in capitals)
    assert!(
        profiles
            .to_lowercase()
            .contains(&Lang::It.t("stripe_settings.active").to_lowercase()),
        "{profiles}"
    );

    // The Stripe payment method on.
    web.submit("/app/stripe/payment-method").await;
    assert_eq!(web.path().await, "/app/stripe");
    assert_eq!(
        web.find("#stripe-enabled-state")
            .await
            .text()
            .await
            .unwrap(),
        Lang::It.t("stripe_settings.payment_method_on")
    );
    let company = app.app.tenants.company(company_id).await.unwrap();
    assert!(company.stripe_enabled, "the switch is stored");
    web.shot("app-stripe-enabled").await;

    // Connect Stripe: the callback URL, then Send test event through the real intake.
    web.click_and_wait(r#"nav a[href="/app/connect"]"#).await;
    assert_eq!(web.path().await, "/app/connect");
    assert_eq!(
        web.find("#callback-url").await.text().await.unwrap(),
        app.url(&format!("/callbacks/v1.0/stripe/{company_id}"))
    );
    assert_italian(web, "connect.send_test").await;
    web.shot("app-connect").await;
    let before = app.inbox_count(company_id).await;
    web.click_and_wait("#send-test-event").await;
    let result = web.find("#test-result").await.text().await.unwrap();
    assert!(
        result.contains(Lang::It.t("connect.test_arrived_title")),
        "{result}"
    );
    assert_eq!(web.find("#test-status").await.text().await.unwrap(), "200");
    assert_eq!(
        web.find("#test-arrived").await.text().await.unwrap(),
        Lang::It.t("common.yes")
    );
    assert_eq!(app.inbox_count(company_id).await, before + 1);
    // The result is test data (whatever the environment), with a link to the event in test mode.
    // (badges are shown in capitals)
    assert_eq!(
        web.find("#test-result-mode")
            .await
            .text()
            .await
            .unwrap()
            .to_lowercase(),
        Lang::It.t("mode.test_banner").to_lowercase()
    );
    let event_id = result
        .split_whitespace()
        .find(|w| w.starts_with("evt_"))
        .unwrap_or_else(|| panic!("the test event's id in {result}"))
        .to_owned();
    web.shot("app-connect-test-event-sent").await;

    events_pages(app, web, company_id, &secret, &event_id).await;
}

/// Events: the test event in the list and its detail; an event whose payload holds markup shows
/// it as text. Orders and Disputes are visited too.
async fn events_pages(
    app: &TestApp,
    web: &mut Web,
    company_id: &str,
    secret: &str,
    event_id: &str,
) {
    web.click_and_wait(r#"nav a[href="/app/events"]"#).await;
    assert_eq!(web.path().await, "/app/events");
    assert_italian(web, "events.filter").await;
    let list = web.find("table.list").await.text().await.unwrap();
    assert!(list.contains(event_id), "{list}");
    assert!(list.contains("payment_intent.succeeded"), "{list}");
    web.shot("app-events").await;

    // The company works in test mode: the list shows test data, under the banner, and its links
    // keep the mode.
    assert_eq!(
        web.find("#test-data-banner")
            .await
            .text()
            .await
            .unwrap()
            .to_lowercase(),
        Lang::It.t("mode.test_banner").to_lowercase()
    );
    let event_href = format!("/app/events/{event_id}?mode=test");
    web.click_and_wait(&format!(r#"table.list a[href="{event_href}"]"#))
        .await;
    assert_eq!(web.path().await, event_href);
    let payload = web.find("#payload").await.text().await.unwrap();
    assert!(payload.contains(event_id), "{payload}");
    assert!(
        payload.contains("\"paygate_test_event\": \"true\""),
        "{payload}"
    );
    web.shot("app-event-test").await;

    // XSS: markup in a payload is shown as text, runs nothing.
    let markup = "<img src=x onerror=alert(2)>";
    let evil = event(
        "payment_intent.created",
        json!({
            "id": unique("pi_browser"),
            "object": "payment_intent",
            "amount": 1999,
            "currency": "eur",
            "description": markup,
            "metadata": {"note": markup},
            "status": "requires_payment_method",
        }),
    );
    let evil_id = evil["id"].as_str().unwrap().to_owned();
    let (status, body) = app.deliver(company_id, secret, &evil).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    web.goto(&format!("/app/events/{evil_id}")).await;
    let payload = web.find("#payload").await.text().await.unwrap();
    assert!(payload.contains(markup), "{payload}");
    assert_eq!(
        web.js("return document.querySelectorAll('main img').length")
            .await,
        json!(0),
        "no img element made from the payload"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    web.assert_no_dialog().await;
    web.shot("app-event-markup-as-text").await;

    for (href, name) in [
        ("/app/orders", "app-orders"),
        ("/app/disputes", "app-disputes"),
    ] {
        web.click_and_wait(&format!(r#"nav a[href="{href}"]"#))
            .await;
        assert_eq!(web.path().await, href);
        assert_eq!(web.lang().await, "it");
        web.shot(name).await;
    }
}
