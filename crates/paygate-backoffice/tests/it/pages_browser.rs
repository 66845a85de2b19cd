//! Every back-office page in a real browser, as a merchant admin and as the operator, the
//! sign-in page, and the shopper's landing page in English, Italian and German (unknown, paid and
//! failed sessions): at 360 px wide and at 1366 px, with a company whose name is 200 characters
//! long, no page scrolls sideways (`scrollWidth <= clientWidth` of the document), axe-core (run
//! in the page) reports no serious or critical accessibility violation, and every merchant page
//! shows the environment banner. Screenshots at 360 px go to
//! `target/browser-screenshots/pages/` and `…/shopper/`.
//!
//! The pages are found, not listed: the navigation's links of each area, then the first detail
//! link of each list (an order, a dispute, an event, a subscription, an invoice, a customer), so
//! a page added later is checked without touching this test. The data behind them (payments, a
//! dispute, a subscription with its customer and invoice) comes through the real intake.
//!
//! axe-core is the npm package's `axe.min.js`, at the path in `PAYGATE_TEST_AXE_JS` (`.ci/run`
//! fetches it with `npm pack`). Without it the test prints a SKIPPING banner and passes, unless
//! `PAYGATE_TEST_REQUIRE_BROWSER=1`, which makes a missing browser or axe-core a failure.
//!
//! What the forms do in the browser (Post/Redirect/Get, a reload doing nothing twice, the
//! confirmations, going live) is `forms_browser.rs`.

use std::collections::BTreeSet;

use paygate_testkit::backoffice::USER_PASSWORD;
use paygate_testkit::billing_objects::{Shape, customer, invoice, subscription};
use paygate_testkit::objects::{charge, dispute, event_at, payment_intent};
use paygate_testkit::webdriver::{Driver, Web, browser_available, screenshot_dir};
use paygate_testkit::{
    Backend, OPERATOR_EMAIL, OPERATOR_PASSWORD, Options, TestApp, new_secret, now_secs, unique,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The path of axe-core's `axe.min.js`, or `None` after a SKIPPING banner.
fn axe_source() -> Option<String> {
    let path = std::env::var("PAYGATE_TEST_AXE_JS").unwrap_or_default();
    match std::fs::read_to_string(&path) {
        Ok(src) if src.contains("axe") => Some(src),
        _ => {
            let msg = format!(
                "the page check needs axe-core: PAYGATE_TEST_AXE_JS={path:?} is not axe.min.js \
                 (`npm pack axe-core` and point it at package/axe.min.js; .ci/run does)"
            );
            if std::env::var("PAYGATE_TEST_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("PAYGATE_TEST_REQUIRE_BROWSER=1 and {msg}");
            }
            use std::io::Write;
            let bar = "!".repeat(100);
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\n!!! SKIPPING the page check: {msg}\n{bar}\n"
            );
            None
        }
    }
}

async fn deliver(app: &TestApp, company: &str, secret: &str, ev: Value) {
    let (s, b) = app.deliver(company, secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// A company named with 200 characters, a test profile, an admin user, and some of everything:
/// (company id, the admin's e-mail, the company's name).
async fn merchant(app: &TestApp) -> (String, String, String) {
    let company = unique("co");
    let long_name = format!("Trattoria {}", "Bellavista-Sul-Lago ".repeat(10));
    let long_name: String = long_name.chars().take(200).collect();
    assert_eq!(long_name.chars().count(), 200);
    let (s, b) = app
        .admin_post(
            "/admin/v1/companies",
            json!({"company_id": company, "name": long_name}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let secret = new_secret();
    app.create_profile(&company, "test", &secret).await;
    let (email, _) = app.company_user(&company, "admin").await;
    let t0 = now_secs() - 3600;
    for n in 0..3 {
        let pi = format!("pi_pages_{n}");
        deliver(
            app,
            &company,
            &secret,
            event_at(
                "payment_intent.succeeded",
                payment_intent(&pi, "succeeded", 1999),
                t0 + n,
            ),
        )
        .await;
        deliver(
            app,
            &company,
            &secret,
            event_at(
                "charge.succeeded",
                charge(&format!("ch_pages_{n}"), "succeeded", 1999, Some(&pi), None),
                t0 + n,
            ),
        )
        .await;
    }
    deliver(
        app,
        &company,
        &secret,
        event_at(
            "charge.dispute.created",
            dispute(
                "dp_pages",
                "needs_response",
                "ch_pages_0",
                "pi_pages_0",
                1999,
                false,
                false,
            ),
            t0 + 10,
        ),
    )
    .await;
    let cus = customer("cus_pages", "mario@example.test", &["it"]);
    deliver(
        app,
        &company,
        &secret,
        event_at("customer.created", cus, t0),
    )
    .await;
    let sub = subscription("sub_pages", "cus_pages", "active", 1, t0, Shape::Basil);
    deliver(
        app,
        &company,
        &secret,
        event_at("customer.subscription.created", sub, t0 + 1),
    )
    .await;
    let inv = invoice(
        "in_pages",
        "cus_pages",
        "sub_pages",
        "paid",
        1,
        Shape::Basil,
    );
    deliver(
        app,
        &company,
        &secret,
        event_at("invoice.paid", inv, t0 + 2),
    )
    .await;
    // An event Paygate does not act on, shown as ignored.
    deliver(
        app,
        &company,
        &secret,
        event_at(
            "product.created",
            json!({"id": "prod_pages", "object": "product"}),
            t0,
        ),
    )
    .await;
    app.drain().await;
    (company, email, long_name)
}

/// The `href` of every element matching `css` on the page, without fragments.
async fn links(web: &Web, css: &str) -> Vec<String> {
    let script = format!(
        "return Array.from(document.querySelectorAll({css:?})).map(a => a.getAttribute('href'))"
    );
    let v = web.js(&script).await;
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|h| h.split('#').next().unwrap_or(h).to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The pages of an area: the navigation's links under `prefix`, and the first detail link of
/// each.
async fn pages(web: &Web, start: &str, prefix: &str) -> Vec<String> {
    web.goto(start).await;
    let mut found: BTreeSet<String> = BTreeSet::new();
    found.insert(start.to_owned());
    for href in links(web, &format!("nav a[href^='{prefix}']")).await {
        found.insert(href);
    }
    let lists: Vec<String> = found.iter().cloned().collect();
    for list in lists {
        web.goto(&list).await;
        if let Some(first) = links(web, &format!("main table a[href^='{prefix}']"))
            .await
            .into_iter()
            .find(|h| h != &list)
        {
            found.insert(first);
        }
    }
    found.into_iter().collect()
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Signs in through the sign-in form.
async fn sign_in(web: &Web, email: &str, password: &str) {
    web.goto("/signin").await;
    web.fill("/signin", "email", email).await;
    web.fill("/signin", "password", password).await;
    web.submit("/signin").await;
}

/// What is wrong with the page shown: sideways scrolling, and axe-core's serious or critical
/// violations.
async fn check_page(web: &Web, axe: &str, width: u32, path: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let size = web
        .js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        .await;
    let (scroll, client) = (size[0].as_i64().unwrap_or(0), size[1].as_i64().unwrap_or(0));
    if scroll > client {
        let wide = web
            .js("const w = document.documentElement.clientWidth; \
                 return Array.from(document.querySelectorAll('body *')) \
                   .filter(e => e.getBoundingClientRect().right > w + 1) \
                   .slice(0, 3).map(e => e.tagName + '.' + e.className)")
            .await;
        problems.push(format!(
            "{path} at {width} px scrolls sideways: scrollWidth {scroll} > clientWidth {client} ({wide})"
        ));
    }
    web.js(&format!("{axe}\n;return null")).await;
    let result = web
        .c
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             axe.run(document, {resultTypes: ['violations']}) \
               .then(r => done(r.violations \
                 .filter(v => v.impact === 'serious' || v.impact === 'critical') \
                 .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' + \
                   v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')))) \
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("axe.run");
    for v in result.as_array().into_iter().flatten() {
        problems.push(format!(
            "{path} at {width} px: {}",
            v.as_str().unwrap_or("?")
        ));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_phone_and_passes_axe() {
    if !browser_available("the page check") {
        return;
    }
    let Some(axe) = axe_source() else { return };
    let shots = screenshot_dir(env!("CARGO_TARGET_TMPDIR"), Some("pages"));
    let app = TestApp::start(Options::new(Backend::Sqlite)).await;
    let (_company, email, long_name) = merchant(&app).await;
    let driver = Driver::start(&shots);
    let c = driver.session().await;
    let mut web = Web::new(&driver, c.clone(), &app.base_url, shots);
    let mut problems = Vec::new();
    // The sign-in page, before anyone signs in.
    for width in [360u32, 1366] {
        web.c.set_window_size(width, 800).await.unwrap();
        web.goto("/signin").await;
        problems.extend(check_page(&web, &axe, width, "/signin").await);
    }
    web.shot("signin").await;
    for (who, password, start, prefix) in [
        (email.as_str(), USER_PASSWORD, "/app", "/app"),
        (
            OPERATOR_EMAIL,
            OPERATOR_PASSWORD,
            "/console/companies",
            "/console",
        ),
    ] {
        web.c.set_window_size(1366, 900).await.unwrap();
        sign_in(&web, who, password).await;
        web.c.set_window_size(1366, 900).await.unwrap();
        let paths = pages(&web, start, prefix).await;
        assert!(paths.len() >= 4, "{who}: pages found: {paths:?}");
        for width in [360u32, 1366] {
            web.c.set_window_size(width, 800).await.unwrap();
            for path in &paths {
                web.goto(path).await;
                problems.extend(check_page(&web, &axe, width, path).await);
                // The company's whole name is on the page, wrapped.
                if prefix == "/app" && !web.text().await.contains(&long_name) {
                    problems.push(format!("{path}: the company's name is not shown"));
                }
                // The merchant always sees which environment the data is from.
                if prefix == "/app" && web.find_all("#env-banner[data-mode]").await.is_empty() {
                    problems.push(format!("{path}: no environment banner"));
                }
                if width == 360 {
                    web.shot(&format!(
                        "{}{}",
                        &prefix[1..],
                        path.replace(['/', '?', '='], "-")
                    ))
                    .await;
                }
            }
        }
        web.c.set_window_size(1366, 900).await.unwrap();
        web.click_and_wait(r#"form[action="/signout"] button"#)
            .await;
    }
    driver.close(c).await;
    drop(driver);
    assert_no_problems(&problems);
}

/// The shopper's page for an unknown, a paid and a failed session, in a browser whose user
/// speaks each language: the page's language and words, and the same layout and axe checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shoppers_page_speaks_three_languages_fits_a_phone_and_passes_axe() {
    use paygate_backoffice::i18n::Lang;
    use paygate_testkit::checkout_objects::FakeCheckout;
    use paygate_testkit::objects::checkout_session;
    use wiremock::MockServer;

    if !browser_available("the shopper page check") {
        return;
    }
    let Some(axe) = axe_source() else { return };
    let stripe = MockServer::start().await;
    FakeCheckout::new("paid", 2, 10)
        .with_session(checkout_session("cs_test_failing", "unpaid", 2000))
        .mount(&stripe)
        .await;
    let mut opts = Options::new(Backend::Sqlite);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    // The delayed payment is seen once (recorded as waiting), then Stripe says it failed.
    let first = app
        .client
        .get(app.url(&format!(
            "/checkout/{company}/return?session_id=cs_test_failing"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let failed = paygate_testkit::event(
        "checkout.session.async_payment_failed",
        checkout_session("cs_test_failing", "unpaid", 2000),
    );
    deliver(&app, &company, &secret, failed).await;
    app.drain().await;

    let shots = screenshot_dir(env!("CARGO_TARGET_TMPDIR"), Some("shopper"));
    let mut problems = Vec::new();
    for (browser_lang, lang) in [
        ("en-US", Lang::En),
        ("it-IT", Lang::It),
        ("de-DE", Lang::De),
    ] {
        // A browser of its own per language (a profile keeps the first language it was given).
        let driver = Driver::start(&shots);
        let c = driver.session_in(browser_lang).await;
        let mut web = Web::new(&driver, c.clone(), &app.base_url, shots.clone());
        for (session, key) in [
            ("cs_test_missing_x", "shopper.unknown_title"),
            ("cs_test_paid_1", "shopper.confirmed"),
            ("cs_test_failing", "shopper.pay_again_hint"),
        ] {
            let path = format!("/checkout/{company}/return?session_id={session}");
            for width in [360u32, 1366] {
                web.c.set_window_size(width, 800).await.unwrap();
                web.goto(&path).await;
                assert_eq!(web.lang().await, lang.code(), "{path} in {browser_lang}");
                web.assert_text(lang.t(key)).await;
                problems.extend(check_page(&web, &axe, width, &path).await);
            }
            web.c.set_window_size(360, 800).await.unwrap();
            web.goto(&path).await;
            web.shot(&format!("{}-{session}", lang.code())).await;
        }
        driver.close(c).await;
    }
    assert_no_problems(&problems);
}
