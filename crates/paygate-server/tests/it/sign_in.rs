//! Sign-in and operators with the real `paygate` binary (issue 16): a flood of sign-ins with
//! unknown e-mails is answered 503 at once beyond the bounded hashing pool, the server's memory
//! stays bounded, and the real operator signs in from another address during the flood; the
//! `paygate operator disable | enable | remove | passwd` commands, whose effect on a running
//! server's tokens is immediate.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paygate_testkit::{Backend, TestDatabase, db_tests};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ROOT: &str = "root@example.com";
const ROOT_PW: &str = "root's long password";
/// Concurrent clients of the flood.
const FLOOD: usize = 300;
/// The server's peak resident memory must stay below this.
const RSS_LIMIT_KIB: u64 = 150 * 1024;

struct Server {
    proc: std::process::Child,
    logs: Arc<Mutex<String>>,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

/// The `paygate` command in the test's data directory, with no `PAYGATE_*` but `envs` (and the
/// database URL on PostgreSQL).
fn paygate(db: &TestDatabase, backend: Backend, envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paygate"));
    cmd.current_dir(&db.data_dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("PAYGATE_") {
            cmd.env_remove(k);
        }
    }
    if backend == Backend::Postgres {
        cmd.env("PAYGATE_DATABASE_URL", &db.url);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

fn serve(db: &TestDatabase, backend: Backend, envs: &[(&str, &str)]) -> Server {
    let mut cmd = paygate(db, backend, envs);
    cmd.arg("serve")
        .env("PAYGATE_BIND", "127.0.0.1:0")
        .env("PAYGATE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut proc = cmd.spawn().unwrap();
    let logs = Arc::new(Mutex::new(String::new()));
    for stream in [
        Box::new(proc.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(proc.stdout.take().unwrap()),
    ] {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut l = logs.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
    }
    // Killed and waited for when dropped, whatever happens next.
    let mut server = Server {
        proc,
        logs,
        base: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = server.logs.lock().unwrap().clone();
        if let Some(line) = text.lines().find(|l| l.contains("paygate serving")) {
            let addr = line
                .split("addr=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            server.base = format!("http://{addr}");
            return server;
        }
        assert!(Instant::now() < deadline, "paygate did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `paygate operator …` with `stdin`; returns whether it succeeded and what it printed.
fn operator_cli(
    db: &TestDatabase,
    backend: Backend,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String) {
    let mut cmd = paygate(db, backend, &[]);
    cmd.arg("operator")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The peak resident set of a process, KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn api_sign_in(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
    from: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .post(format!("{base}/admin/v1/auth/token"))
        .json(&json!({"email": email, "password": password}));
    if let Some(ip) = from {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

/// The back office's pre-session CSRF cookie and token.
async fn signin_form(client: &reqwest::Client, base: &str) -> (String, String) {
    let page = client.get(format!("{base}/signin")).send().await.unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("paygate_csrf="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body = page.text().await.unwrap();
    let token = paygate_testkit::backoffice::csrf_of(&body).unwrap();
    (cookie, token)
}

async fn a_sign_in_flood_is_bounded_and_the_operator_still_gets_in(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let server = serve(
        &db,
        backend,
        &[
            ("PAYGATE_ADMIN_EMAIL", ROOT),
            ("PAYGATE_ADMIN_PASSWORD", ROOT_PW),
            ("PAYGATE_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    );
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(FLOOD)
        .build()
        .unwrap();
    let (cookie, csrf) = signin_form(&client, &base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let busy_api = Arc::new(AtomicUsize::new(0));
    let busy_page = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let unexpected = Arc::new(Mutex::new(Vec::<String>::new()));
    // Every client of the flood comes from one address (through the proxy) and keeps sending
    // sign-ins with unknown e-mails until told to stop; a third of them use the form.
    let mut flood = Vec::new();
    for n in 0..FLOOD {
        let (client, base, cookie, csrf) =
            (client.clone(), base.clone(), cookie.clone(), csrf.clone());
        let (stop, busy_api, busy_page, answered, unexpected) = (
            stop.clone(),
            busy_api.clone(),
            busy_page.clone(),
            answered.clone(),
            unexpected.clone(),
        );
        flood.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let email = format!("nobody-{n}-{i}@example.com");
                let form = n % 3 == 0;
                let resp = if form {
                    client
                        .post(format!("{base}/signin"))
                        .header("x-forwarded-for", "203.0.113.66")
                        .header("cookie", &cookie)
                        .form(&[
                            ("csrf", csrf.as_str()),
                            ("email", &email),
                            ("password", "not a password at all"),
                        ])
                        .send()
                        .await
                } else {
                    client
                        .post(format!("{base}/admin/v1/auth/token"))
                        .header("x-forwarded-for", "203.0.113.66")
                        .json(&json!({"email": email, "password": "not a password at all"}))
                        .send()
                        .await
                };
                let Ok(resp) = resp else { continue };
                answered.fetch_add(1, Ordering::Relaxed);
                let status = resp.status();
                let retry_after = resp.headers().contains_key("retry-after");
                let body = resp.text().await.unwrap_or_default();
                match status {
                    StatusCode::SERVICE_UNAVAILABLE if retry_after => {
                        if form {
                            busy_page.fetch_add(1, Ordering::Relaxed);
                        } else {
                            let v: Value = serde_json::from_str(&body).unwrap_or_default();
                            if v["error"]["code"] == "busy" {
                                busy_api.fetch_add(1, Ordering::Relaxed);
                            } else {
                                unexpected.lock().unwrap().push(body);
                            }
                        }
                    }
                    StatusCode::UNAUTHORIZED => {}
                    other => unexpected.lock().unwrap().push(format!("{other}: {body}")),
                }
            }
        }));
    }
    // Wait until the pool is full: the flood is being answered 503 at once.
    let deadline = Instant::now() + Duration::from_secs(120);
    while busy_api.load(Ordering::Relaxed) == 0 || busy_page.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "no 503 busy after {} answers: the hashing is not bounded",
            answered.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // During the flood, the real operator signs in from another address.
    let resp = api_sign_in(&client, &base, ROOT, ROOT_PW, Some("198.51.100.20")).await;
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    let peak = peak_rss_kib(server.proc.id());
    eprintln!(
        "sign-in flood: {} answers, {} API and {} form answers 503 busy; server peak RSS {} MiB",
        answered.load(Ordering::Relaxed),
        busy_api.load(Ordering::Relaxed),
        busy_page.load(Ordering::Relaxed),
        peak / 1024
    );
    let unexpected = unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    assert!(
        peak < RSS_LIMIT_KIB,
        "the server's peak RSS was {} MiB",
        peak / 1024
    );
    assert!(!server.logs.lock().unwrap().contains("panicked"));
}

async fn operator_commands_disable_remove_and_change_passwords_at_once(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    for (email, pw) in [
        (ROOT, ROOT_PW),
        ("second@example.com", "second long password"),
    ] {
        let (ok, out) = operator_cli(&db, backend, &["add", "--email", email], Some(pw));
        assert!(ok, "{out}");
    }
    let server = serve(&db, backend, &[]);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let token = |email: &'static str, pw: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let resp = api_sign_in(&client, &base, email, pw, None).await;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or_default();
            (
                status,
                body["access_token"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    let works = |t: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .get(format!("{base}/admin/v1/operators"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                == StatusCode::OK
        }
    };
    let (s, root_token) = token(ROOT, ROOT_PW).await;
    assert_eq!(s, StatusCode::OK);
    let (s, second_token) = token("second@example.com", "second long password").await;
    assert_eq!(s, StatusCode::OK);

    // A new password from standard input: the running server refuses the old token at once.
    let (ok, out) = operator_cli(
        &db,
        backend,
        &["passwd", "--email", ROOT],
        Some("root's new long password\n"),
    );
    assert!(ok, "{out}");
    assert!(!works(root_token).await);
    assert_eq!(token(ROOT, ROOT_PW).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = token(ROOT, "root's new long password").await;
    assert_eq!(s, StatusCode::OK);
    // A short one is refused and changes nothing.
    let (ok, out) = operator_cli(&db, backend, &["passwd", "--email", ROOT], Some("short\n"));
    assert!(!ok && out.contains("12 characters"), "{out}");

    // Disabled: token dead, no sign-in; enabled again: signs in.
    let (ok, out) = operator_cli(
        &db,
        backend,
        &["disable", "--email", "second@example.com"],
        None,
    );
    assert!(ok, "{out}");
    assert!(!works(second_token).await);
    assert_eq!(
        token("second@example.com", "second long password").await.0,
        StatusCode::UNAUTHORIZED
    );
    // The last active operator can be neither disabled nor removed.
    for verb in ["disable", "remove"] {
        let (ok, out) = operator_cli(&db, backend, &[verb, "--email", ROOT], None);
        assert!(!ok && out.contains("last active operator"), "{verb}: {out}");
    }
    let (ok, out) = operator_cli(
        &db,
        backend,
        &["enable", "--email", "second@example.com"],
        None,
    );
    assert!(ok, "{out}");
    let (s, second_token) = token("second@example.com", "second long password").await;
    assert_eq!(s, StatusCode::OK);
    // Removed: gone, token dead.
    let (ok, out) = operator_cli(
        &db,
        backend,
        &["remove", "--email", "second@example.com"],
        None,
    );
    assert!(ok, "{out}");
    assert!(!works(second_token).await);
    let (ok, out) = operator_cli(
        &db,
        backend,
        &["remove", "--email", "nobody@example.com"],
        None,
    );
    assert!(!ok && out.contains("no operator"), "{out}");
}

db_tests!(
    a_sign_in_flood_is_bounded_and_the_operator_still_gets_in,
    operator_commands_disable_remove_and_change_passwords_at_once,
);
