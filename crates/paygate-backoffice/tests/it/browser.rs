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
//! SKIPPING banner and passes, unless `PAYGATE_TEST_REQUIRE_BROWSER=1` (set by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use paygate_backoffice::i18n::Lang;
use paygate_testkit::{
    Backend, OPERATOR_EMAIL, OPERATOR_PASSWORD, Options, TestApp, event, new_secret, unique,
};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WIDTH: u32 = 1280;
const MIN_HEIGHT: u32 = 800;
const WAIT: Duration = Duration::from_secs(20);

/// The company's first user (created by the operator with this password).
const USER_PASSWORD: &str = "una password abbastanza lunga";
const XSS_NAME: &str = "<script>alert(1)</script>";

/// Whether the browser can run here; `false` after printing the SKIPPING banner. Panics when
/// the browser is required (`PAYGATE_TEST_REQUIRE_BROWSER=1`) and missing.
fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "the browser test needs Debian's chromium and chromium-driver; missing: {} \
         (apt-get install -y chromium chromium-driver)",
        missing.join(", ")
    );
    if std::env::var("PAYGATE_TEST_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!("PAYGATE_TEST_REQUIRE_BROWSER=1 and {msg}");
    }
    // Straight to stderr, not through `eprintln!`: the test harness would capture it.
    use std::io::Write;
    let bar = "!".repeat(100);
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n{bar}\n!!! SKIPPING the browser test: {msg}\n{bar}\n"
    );
    false
}

/// `target/browser-screenshots/`, emptied of the PNGs of an earlier run.
fn screenshot_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .to_path_buf();
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "png") {
            std::fs::remove_file(path).unwrap();
        }
    }
    dir
}

/// A `chromedriver` child with a fresh Chromium profile directory. Dropping it (also while
/// unwinding from a failed assertion) ends the browser session, kills any Chromium process still
/// running on that profile, then chromedriver, and removes the profile (the
/// driver and the browser it started) and removes the profile.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
    /// The WebDriver session, while open.
    session: std::sync::Mutex<Option<String>>,
}

impl Driver {
    fn start(log_dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let profile = std::env::temp_dir().join(unique("paygate-chromium-"));
        std::fs::create_dir_all(&profile).unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                log_dir.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let driver = Self {
            child,
            port,
            profile,
            session: std::sync::Mutex::new(None),
        };
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// A new headless Chromium session.
    async fn session(&self) -> Client {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--lang=en-US",
            &format!("--window-size={WIDTH},{MIN_HEIGHT}"),
            &format!("--user-data-dir={}", self.profile.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        // An alert stays open, so the test can see it instead of the driver dismissing it.
        caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": args,
                "prefs": { "intl.accept_languages": "en-US,en" },
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("a Chromium session through chromedriver: {e}"));
        *self.session.lock().unwrap() = client.session_id().await.unwrap();
        client
    }

    /// Ends the session cleanly (the normal end of the test).
    async fn close(&self, client: Client) {
        client.close().await.unwrap();
        self.session.lock().unwrap().take();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The session, if still open: chromedriver closes its Chromium.
        let session = self.session.lock().ok().and_then(|mut s| s.take());
        if let Some(id) = session {
            delete_session(self.port, &id);
        }
        // Any Chromium process left on this test's own profile (by pid; `--user-data-dir` is
        // unique to this run), then chromedriver itself.
        let marker = format!("--user-data-dir={}", self.profile.display());
        for pid in processes_with_arg(&marker) {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `DELETE /session/{id}` to chromedriver, blocking (used from `Drop`), at most a few seconds.
fn delete_session(port: u16, id: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // The answer comes once the browser has quit; its first bytes are enough.
        let mut answer = [0u8; 1024];
        let _ = stream.read(&mut answer);
    }
}

/// The ids (all above 1) of the processes whose command line has `arg`.
fn processes_with_arg(arg: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid > 1 && pid != std::process::id())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
        })
        .collect()
}

/// The browser on the app: navigation that waits for the next page, form filling by form
/// `action` and field `name`, page text, and numbered full-page screenshots.
struct Web {
    c: Client,
    base: String,
    /// chromedriver's URL.
    driver: String,
    shots: PathBuf,
    step: u32,
}

impl Web {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The path (and query) of the page shown.
    async fn path(&self) -> String {
        let url = self.c.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.unwrap()
    }

    async fn goto(&self, path: &str) {
        self.c.goto(&self.url(path)).await.unwrap();
        self.wait_loaded().await;
    }

    async fn wait_loaded(&self) {
        self.wait_until(
            "the page to load",
            "return document.readyState === 'complete'",
        )
        .await;
    }

    /// Polls `script` (returning a boolean) until it is true.
    async fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Value::Bool(true)) = self.c.execute(script, vec![]).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what} on {}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find(&self, css: &str) -> Element {
        match self.c.find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!(
                "no element {css} on {}: {e}\n{}",
                self.path().await,
                self.text().await
            ),
        }
    }

    /// Clicks `css` and waits until the next page has loaded.
    async fn click_and_wait(&self, css: &str) {
        let el = self.find(css).await;
        self.js("window.__paygateOldPage = true; return null").await;
        el.click().await.unwrap();
        self.wait_until(
            &format!("the page after clicking {css}"),
            "return window.__paygateOldPage === undefined && document.readyState === 'complete'",
        )
        .await;
    }

    /// Types `value` into the field `name` of the form posting to `action`.
    async fn fill(&self, action: &str, name: &str, value: &str) {
        let el = self
            .find(&format!(
                r#"form[method="post"][action="{action}"] [name="{name}"]"#
            ))
            .await;
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }

    async fn select(&self, action: &str, name: &str, value: &str) {
        self.find(&format!(
            r#"form[method="post"][action="{action}"] select[name="{name}"]"#
        ))
        .await
        .select_by_value(value)
        .await
        .unwrap();
    }

    /// Submits the form posting to `action` with its (first) submit button.
    async fn submit(&self, action: &str) {
        self.click_and_wait(&format!(
            r#"form[method="post"][action="{action}"] button[type="submit"]"#
        ))
        .await;
    }

    /// The visible text of the page.
    async fn text(&self) -> String {
        match self.c.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn assert_text(&self, expected: &str) {
        let text = self.text().await;
        assert!(
            text.contains(expected),
            "{:?} not on {}:\n{text}",
            expected,
            self.path().await
        );
    }

    /// The `lang` of the page.
    async fn lang(&self) -> String {
        self.js("return document.documentElement.lang")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// No alert, confirm or prompt is open.
    async fn assert_no_dialog(&self) {
        match self.c.get_alert_text().await {
            Err(e) if e.is_no_such_alert() => {}
            Ok(text) => panic!("a dialog opened on {}: {text:?}", self.path().await),
            Err(e) => panic!("asking for an open dialog: {e}"),
        }
    }

    /// Saves the whole page as `NN-<name>.png`, 1280 wide and as tall as the page (Chromium's
    /// `Page.captureScreenshot` beyond the viewport, through chromedriver's CDP endpoint).
    async fn shot(&mut self, name: &str) {
        use base64::Engine;
        self.step += 1;
        let height = self
            .js("return Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)")
            .await
            .as_u64()
            .unwrap_or(u64::from(MIN_HEIGHT))
            .clamp(u64::from(MIN_HEIGHT), 6000);
        let session = self.c.session_id().await.unwrap().unwrap();
        let resp = reqwest::Client::new()
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.driver
            ))
            .json(&json!({
                "cmd": "Page.captureScreenshot",
                "params": {
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1},
                },
            }))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        let data = body["value"]["data"]
            .as_str()
            .unwrap_or_else(|| panic!("a screenshot from chromedriver: {body}"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let file = self.shots.join(format!("{:02}-{name}.png", self.step));
        std::fs::write(&file, png).unwrap();
        eprintln!("browser: {} -> {}", self.path().await, file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_journey_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let shots = screenshot_dir();
    let app = TestApp::start(Options::new(Backend::Sqlite)).await;
    let driver = Driver::start(&shots);
    let c = driver.session().await;
    let mut web = Web {
        c: c.clone(),
        base: app.base_url.clone(),
        driver: format!("http://127.0.0.1:{}", driver.port),
        shots,
        step: 0,
    };
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
