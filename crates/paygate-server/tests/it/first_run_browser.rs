//! The first run in a real browser (issue 21), with the real `paygate` binary: Debian's
//! `chromium` through `chromedriver` (the test kit's `webdriver` module), on SQLite.
//!
//! `paygate serve` starts with zero configuration (no `PAYGATE_ADMIN_*`, no operator); the
//! sign-in page says where the setup link is; the browser opens the link the log announced,
//! creates the first operator and lands in the console. `paygate demo` then runs beside the
//! server (same data directory) and prints the merchant user's e-mail and password; the operator
//! sees the demo company in the console, signs out (the sign-in page no longer mentions a setup
//! link), and the merchant signs in with the printed credentials, opens *Orders* and finds exactly
//! the orders the demo said it made (shopper, amount, status, the disputed one), under the
//! test-data banner, and a fulfilled order's line items as the built-in Stripe stand-in gave them.
//!
//! Every page is saved as `target/browser-screenshots/first-run/NN-<step>.png`. Without
//! `/usr/bin/chromium` or `/usr/bin/chromedriver` the test prints SKIPPING and passes, unless
//! `PAYGATE_TEST_REQUIRE_BROWSER=1`. Run it alone with
//! `cargo test -p paygate-server --test it first_run -- --nocapture`.

use paygate_backoffice::i18n::Lang;
use paygate_stripe::demo::{DemoCart, SHOPPERS};
use paygate_testkit::webdriver::{Driver, Web, browser_available, screenshot_dir};
use paygate_testkit::{Backend, TestDatabase};

use crate::binary::start;
use crate::demo::{demo, printed};
use crate::setup::announced_url;

const OPERATOR_EMAIL: &str = "first.operator@example.com";
const OPERATOR_PASSWORD: &str = "the first operator's password";
const DEMO_COMPANY_NAME: &str = "Demo shop (demo data)";

/// An order as the demo printed it, or as a row of the orders page: the shopper's e-mail, the
/// amount (`12.50`), the status (`fulfilled`).
type OrderLine = (String, String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_setup_link_then_demo_orders_in_a_real_browser() {
    if !browser_available("the first-run browser test") {
        return;
    }
    let shots = screenshot_dir(env!("CARGO_TARGET_TMPDIR"), Some("first-run"));
    let backend = Backend::Sqlite;
    let db = TestDatabase::create(backend).await;
    // Zero configuration: `start` passes no PAYGATE_* variable but the port and the log level.
    let (server, base) = start(&db, backend, &[]);
    let setup_url = announced_url(&server);
    let setup_path = setup_url
        .strip_prefix(&base)
        .unwrap_or_else(|| panic!("the setup link {setup_url} is on {base}"))
        .to_owned();
    assert!(setup_path.starts_with("/setup/"), "{setup_path}");

    let driver = Driver::start(&shots);
    let c = driver.session().await;
    let mut web = Web::new(&driver, c.clone(), &base, shots);

    first_operator(&mut web, &setup_path).await;

    // The demo, beside the server: same data directory and database.
    let out = demo(&db, backend, &base, &[]).await;
    let email = printed(&out, "e-mail:").to_owned();
    let password = printed(&out, "password:").to_owned();
    assert!(
        !password.starts_with("unchanged"),
        "a fresh password: {out}"
    );
    let (orders, disputed) = printed_orders(&out);

    // The operator sees the demo company, then signs out.
    web.goto("/console/companies").await;
    web.assert_text(DEMO_COMPANY_NAME).await;
    web.shot("console-demo-company").await;
    web.click_and_wait(r#"form[action="/signout"] button"#)
        .await;
    assert_eq!(web.path().await, "/signin");
    assert!(
        web.find_all("#no-operator").await.is_empty(),
        "the sign-in page still points at a setup link"
    );
    web.shot("signed-out").await;

    merchant_orders(&mut web, &email, &password, &orders, &disputed).await;

    driver.close(c).await;
    drop(driver);
    drop(server);
}

/// From the sign-in page of a server without operators, through the announced setup link, to
/// the console as the new operator; the link is spent after.
async fn first_operator(web: &mut Web, setup_path: &str) {
    web.goto("/").await;
    assert_eq!(web.path().await, "/signin");
    let notice = web.find("#no-operator").await.text().await.unwrap();
    assert_eq!(notice, Lang::En.t("signin.no_operator"));
    web.shot("signin-no-operator").await;

    web.goto(setup_path).await;
    assert_eq!(web.path().await, setup_path);
    web.assert_text(Lang::En.t("setup.title")).await;
    web.shot("setup").await;
    web.fill(setup_path, "email", OPERATOR_EMAIL).await;
    web.fill(setup_path, "password", OPERATOR_PASSWORD).await;
    web.fill(setup_path, "password_confirm", OPERATOR_PASSWORD)
        .await;
    web.submit(setup_path).await;
    let path = web.path().await;
    assert!(path.starts_with("/console"), "the console, not {path}");
    web.assert_text(Lang::En.t("flash.setup_done")).await;
    let who = web.find(".who").await.text().await.unwrap();
    assert!(who.contains(OPERATOR_EMAIL), "{who}");
    web.shot("console-first-operator").await;

    // The link is spent.
    web.goto(setup_path).await;
    assert!(
        web.find_all(&format!(r#"form[action="{setup_path}"]"#))
            .await
            .is_empty(),
        "the setup form is still offered"
    );
    web.find(r#".error-message[data-status="404"]"#).await;
}

/// The orders listed under "Orders of this run:" of the demo's output, and the shopper's
/// e-mail of the disputed one.
fn printed_orders(out: &str) -> (Vec<OrderLine>, String) {
    let email_of = |name: &str| {
        SHOPPERS
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name:?} is not a demo shopper"))
            .1
            .to_owned()
    };
    let mut orders = Vec::new();
    let mut disputed = None;
    let lines = out
        .lines()
        .skip_while(|l| !l.starts_with("Orders of this run:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "));
    for line in lines {
        if let Some(rest) = line.trim().strip_prefix("and a dispute") {
            let name = rest
                .split(" on ")
                .nth(1)
                .and_then(|r| r.split("'s order").next())
                .unwrap_or_else(|| panic!("the disputed shopper in {line:?}"));
            disputed = Some(email_of(name));
            continue;
        }
        // `  <name>  <amount> EUR  <status>  <what>`
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words
            .windows(2)
            .position(|w| w[0].parse::<f64>().is_ok() && w[1] == "EUR")
            .unwrap_or_else(|| panic!("no amount in {line:?}"));
        orders.push((
            email_of(&words[..at].join(" ")),
            words[at].to_owned(),
            words[at + 2].to_owned(),
        ));
    }
    assert!(orders.len() >= 4, "the demo printed its orders:\n{out}");
    let statuses: Vec<&str> = orders.iter().map(|o| o.2.as_str()).collect();
    for s in ["fulfilled", "payment_failed"] {
        assert!(statuses.contains(&s), "no {s} order printed:\n{out}");
    }
    let disputed = disputed.unwrap_or_else(|| panic!("no dispute printed:\n{out}"));
    (orders, disputed)
}

/// The merchant signs in with the printed credentials and finds the demo's orders, labelled as
/// test data; a fulfilled order shows the demo cart's line items.
async fn merchant_orders(
    web: &mut Web,
    email: &str,
    password: &str,
    printed: &[OrderLine],
    disputed: &str,
) {
    web.fill("/signin", "email", email).await;
    web.fill("/signin", "password", password).await;
    web.submit("/signin").await;
    let path = web.path().await;
    assert!(path.starts_with("/app"), "the back office, not {path}");
    let who = web.find(".who").await.text().await.unwrap();
    assert!(who.contains(email), "{who}");
    assert!(who.contains(DEMO_COMPANY_NAME), "{who}");
    web.shot("app-dashboard").await;

    web.click_and_wait(r#"nav a[href="/app/orders"]"#).await;
    assert_eq!(web.path().await, "/app/orders");
    // (badges are shown in capitals)
    assert_eq!(
        web.find("#test-data-banner")
            .await
            .text()
            .await
            .unwrap()
            .to_lowercase(),
        Lang::En.t("mode.test_banner").to_lowercase()
    );
    web.shot("app-orders").await;

    // Each row: e-mail, amount, status (from its class), disputed.
    let rows = web
        .js(
            r"return Array.from(document.querySelectorAll('tr.order-row')).map(r => {
                const td = r.querySelectorAll('td');
                const status = td[1].querySelector('span[class^=status-]').className.slice(7);
                return [td[3].innerText.trim(), td[2].innerText.trim(), status,
                        td[5].innerText.trim(), td[0].querySelector('a').getAttribute('href')];
            })",
        )
        .await;
    let rows: Vec<Vec<String>> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect();
    let mut listed: Vec<OrderLine> = rows
        .iter()
        .map(|r| (r[0].clone(), r[1].replace(['€', ','], ""), r[2].clone()))
        .collect();
    let mut expected = printed.to_vec();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "the orders page lists the demo's orders");
    let disputed_rows: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r[3] == Lang::En.t("orders.disputed_yes"))
        .collect();
    assert_eq!(disputed_rows.len(), 1, "{rows:?}");
    assert_eq!(disputed_rows[0][0], disputed);

    // A fulfilled order: its detail, in test mode, with the cart's line items.
    let href = rows
        .iter()
        .find(|r| r[2] == "fulfilled")
        .map(|r| r[4].clone())
        .unwrap_or_else(|| panic!("no fulfilled order listed: {rows:?}"));
    web.click_and_wait(&format!(r#"tr.order-row a[href="{href}"]"#))
        .await;
    assert_eq!(web.path().await, href);
    let status = web.find("#order-status").await;
    assert_eq!(
        status.attr("class").await.unwrap().as_deref(),
        Some("status-fulfilled")
    );
    web.find("#test-data-banner").await;
    let session = web
        .js(
            r"const c = Array.from(document.querySelectorAll('main code'))
                .find(c => c.textContent.startsWith('cs_test_paygatedemo_'));
            return c ? c.textContent : null",
        )
        .await;
    let session = session
        .as_str()
        .unwrap_or_else(|| panic!("no demo Checkout Session on the order: {session}"));
    let cart = DemoCart::parse(session).unwrap_or_else(|| panic!("not a demo cart: {session}"));
    let items = web.find("#line-items").await.text().await.unwrap();
    for li in cart.line_items() {
        let name = li["description"].as_str().unwrap();
        assert!(
            items.contains(name),
            "{name:?} not in the line items:\n{items}"
        );
    }
    assert_eq!(
        web.find_all("#line-items tbody tr").await.len(),
        cart.line_items().len()
    );
    web.shot("app-order-fulfilled").await;
}
