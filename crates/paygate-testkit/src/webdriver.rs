//! A real browser for the browser tests: Debian's `chromium`, driven through `chromedriver` with
//! WebDriver (fantoccini), headless, with a fresh profile per test.
//!
//! ```ignore
//! if !browser_available("the merchant journey") {
//!     return; // SKIPPING banner printed (a panic when PAYGATE_TEST_REQUIRE_BROWSER=1)
//! }
//! let shots = screenshot_dir(env!("CARGO_TARGET_TMPDIR"), None);
//! let driver = Driver::start(&shots);
//! let c = driver.session().await;
//! let mut web = Web::new(&driver, c.clone(), &app.base_url, shots);
//! web.goto("/").await;
//! web.fill("/signin", "email", OPERATOR_EMAIL).await;
//! web.submit("/signin").await;
//! web.shot("console").await; // target/browser-screenshots/01-console.png
//! driver.close(c).await;
//! ```
//!
//! `fantoccini` is re-exported, so a test needs no dependency of its own for `Element` and
//! `Locator`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::unique;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The window's width, and that of every screenshot.
pub const WIDTH: u32 = 1280;
/// The window's height, and the least height of a screenshot.
pub const MIN_HEIGHT: u32 = 800;
/// How long a page, an element or chromedriver is waited for.
pub const WAIT: Duration = Duration::from_secs(20);

/// Whether the browser can run here; `false` after printing a SKIPPING banner naming `test`.
/// Panics when the browser is required (`PAYGATE_TEST_REQUIRE_BROWSER=1`) and missing.
pub fn browser_available(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test} needs Debian's chromium and chromium-driver; missing: {} \
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
        "\n{bar}\n!!! SKIPPING {test}: {msg}\n{bar}\n"
    );
    false
}

/// `<target>/browser-screenshots/` (or its subdirectory `sub`), emptied of the PNGs of an
/// earlier run; `target_tmpdir` is the test's `env!("CARGO_TARGET_TMPDIR")` (`<target>/tmp`).
pub fn screenshot_dir(target_tmpdir: &str, sub: Option<&str>) -> PathBuf {
    let target = Path::new(target_tmpdir)
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .to_path_buf();
    let mut dir = target.join("browser-screenshots");
    if let Some(sub) = sub {
        dir.push(sub);
    }
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
/// running on that profile, then chromedriver, and removes the profile.
pub struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
    /// The WebDriver session, while open.
    session: std::sync::Mutex<Option<String>>,
}

impl Driver {
    /// Starts chromedriver on a free port, logging to `log_dir/chromedriver.log`.
    pub fn start(log_dir: &Path) -> Self {
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

    /// chromedriver's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new headless Chromium session, asking for English pages.
    pub async fn session(&self) -> Client {
        self.session_in("en-US").await
    }

    /// A new headless Chromium session whose user speaks `lang` (e.g. `it-IT`): its
    /// `Accept-Language` and `navigator.language`.
    pub async fn session_in(&self, lang: &str) -> Client {
        let primary = lang.split('-').next().unwrap_or(lang);
        let accept = if primary == lang {
            lang.to_owned()
        } else {
            format!("{lang},{primary}")
        };
        let lang_arg = format!("--lang={lang}");
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
            &lang_arg,
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
                "prefs": { "intl.accept_languages": accept },
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("a Chromium session through chromedriver: {e}"));
        *self.session.lock().unwrap() = client.session_id().await.unwrap();
        client
    }

    /// Ends the session cleanly (the normal end of the test).
    pub async fn close(&self, client: Client) {
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
pub struct Web {
    pub c: Client,
    /// The app's base URL, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// chromedriver's URL.
    pub driver: String,
    /// Where the screenshots go.
    pub shots: PathBuf,
    /// The number of the last screenshot.
    pub step: u32,
}

impl Web {
    /// The browser of `driver`'s session `c`, on the app at `base`; screenshots go to `shots`.
    pub fn new(driver: &Driver, c: Client, base: &str, shots: PathBuf) -> Self {
        Self {
            c,
            base: base.to_owned(),
            driver: driver.url(),
            shots,
            step: 0,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let url = self.c.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.unwrap()
    }

    /// Opens `path` of the app and waits until it has loaded.
    pub async fn goto(&self, path: &str) {
        self.c.goto(&self.url(path)).await.unwrap();
        self.wait_loaded().await;
    }

    pub async fn wait_loaded(&self) {
        self.wait_until(
            "the page to load",
            "return document.readyState === 'complete'",
        )
        .await;
    }

    /// Polls `script` (returning a boolean) until it is true.
    pub async fn wait_until(&self, what: &str, script: &str) {
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

    /// The element `css` (a panic with the page's text when there is none).
    pub async fn find(&self, css: &str) -> Element {
        match self.c.find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!(
                "no element {css} on {}: {e}\n{}",
                self.path().await,
                self.text().await
            ),
        }
    }

    /// Every element `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.c.find_all(Locator::Css(css)).await.unwrap()
    }

    /// Clicks `css` and waits until the next page has loaded.
    pub async fn click_and_wait(&self, css: &str) {
        let el = self.find(css).await;
        self.js("window.__paygateOldPage = true; return null").await;
        el.click().await.unwrap();
        self.wait_until(
            &format!("the page after clicking {css}"),
            "return window.__paygateOldPage === undefined && document.readyState === 'complete'",
        )
        .await;
    }

    /// How the page shown was reached, from the Navigation Timing API: its type (`navigate`,
    /// `reload`, `back_forward`) and the number of redirects on the way there (a form's POST
    /// answered by a 303 and the GET it led to: 1).
    pub async fn navigation(&self) -> (String, u64) {
        let v = self
            .js("const n = performance.getEntriesByType('navigation')[0]; \
                 return n ? [n.type, n.redirectCount] : ['', 0]")
            .await;
        (
            v[0].as_str().unwrap_or_default().to_owned(),
            v[1].as_u64().unwrap_or(0),
        )
    }

    /// Panics unless the page shown was reached through a redirect (Post/Redirect/Get: the
    /// browser's reload then asks for this page again instead of posting the form again);
    /// `what` names the form in the message.
    pub async fn assert_redirected(&self, what: &str) {
        let (kind, redirects) = self.navigation().await;
        assert!(
            kind == "navigate" && redirects >= 1,
            "{what}: the page after the POST was not reached by a redirect \
             (navigation {kind:?}, {redirects} redirect(s)) on {}:\n{}",
            self.path().await,
            self.text().await
        );
    }

    /// The browser's reload of the page shown (what F5 does, `refresh()` of WebDriver), waited
    /// for until the new page has loaded; panics when a dialog opened (such as "send the form
    /// again?").
    pub async fn reload(&self) {
        self.js("window.__paygateOldPage = true; return null").await;
        self.c.refresh().await.unwrap();
        self.assert_no_dialog().await;
        self.wait_until(
            "the page to reload",
            "return window.__paygateOldPage === undefined && document.readyState === 'complete'",
        )
        .await;
    }

    /// Types `value` into the field `name` of the form posting to `action`.
    pub async fn fill(&self, action: &str, name: &str, value: &str) {
        let el = self
            .find(&format!(
                r#"form[method="post"][action="{action}"] [name="{name}"]"#
            ))
            .await;
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }

    /// Chooses `value` in the select `name` of the form posting to `action`.
    pub async fn select(&self, action: &str, name: &str, value: &str) {
        self.find(&format!(
            r#"form[method="post"][action="{action}"] select[name="{name}"]"#
        ))
        .await
        .select_by_value(value)
        .await
        .unwrap();
    }

    /// Submits the form posting to `action` with its (first) submit button.
    pub async fn submit(&self, action: &str) {
        self.click_and_wait(&format!(
            r#"form[method="post"][action="{action}"] button[type="submit"]"#
        ))
        .await;
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        match self.c.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn assert_text(&self, expected: &str) {
        let text = self.text().await;
        assert!(
            text.contains(expected),
            "{:?} not on {}:\n{text}",
            expected,
            self.path().await
        );
    }

    /// The `lang` of the page.
    pub async fn lang(&self) -> String {
        self.js("return document.documentElement.lang")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// No alert, confirm or prompt is open.
    pub async fn assert_no_dialog(&self) {
        match self.c.get_alert_text().await {
            Err(e) if e.is_no_such_alert() => {}
            Ok(text) => panic!("a dialog opened on {}: {text:?}", self.path().await),
            Err(e) => panic!("asking for an open dialog: {e}"),
        }
    }

    /// Saves the whole page as `NN-<name>.png`, 1280 wide and as tall as the page (Chromium's
    /// `Page.captureScreenshot` beyond the viewport, through chromedriver's CDP endpoint).
    pub async fn shot(&mut self, name: &str) {
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
