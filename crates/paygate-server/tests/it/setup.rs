//! The first-run setup link with the real `paygate` binary (issue 21): a start with no
//! configuration and no operator prints `No operator yet: open <base>/setup/<token> …`; a new
//! start replaces the link; the sign-in page says where to find it; the page's form (CSRF, every
//! error at once) creates the operator, signs them in and leads to the console, and the operator
//! can then get an admin API token; the link then answers 404; wrong links answer 404 and, after
//! a few, 429; a start with an operator prints no link; and the token appears in no log line but
//! the announced ones.

use std::time::{Duration, Instant};

use paygate_testkit::{Backend, TestDatabase, db_tests};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};

use crate::binary::{Child, start};

const ANNOUNCE: &str = "No operator yet: open ";

/// The setup URL the server announced (waits for the line).
pub(crate) fn announced_url(child: &Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = child.logs.lock().unwrap().clone();
        if let Some(line) = logs.lines().find(|l| l.contains(ANNOUNCE)) {
            let rest = &line[line.find(ANNOUNCE).unwrap() + ANNOUNCE.len()..];
            assert!(rest.contains(" to create the first one"), "{line}");
            return rest.split_whitespace().next().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no setup link announced:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The token of a setup URL.
fn token_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

/// `name=value` of the cookie `name` the response sets.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The CSRF token of the page's form.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// Every line of `logs` that names `token`, and how many times it appears in all.
fn token_lines(logs: &str, token: &str) -> (Vec<String>, usize) {
    let lines = logs
        .lines()
        .filter(|l| l.contains(token))
        .map(str::to_owned)
        .collect();
    (lines, logs.matches(token).count())
}

/// The token appears exactly once in each announced line (the printed one and the `warn` log
/// line), and nowhere else.
fn assert_token_only_announced(logs: &str, token: &str) {
    let (lines, count) = token_lines(logs, token);
    assert_eq!(
        lines.len(),
        2,
        "the link is printed and logged once each:\n{}",
        lines.join("\n")
    );
    assert_eq!(count, 2, "{}", lines.join("\n"));
    for l in &lines {
        assert!(l.contains(ANNOUNCE), "the token leaked into: {l}");
    }
}

fn form_post(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    body: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    client.post(url).header(COOKIE, cookie).form(body)
}

async fn setup_link_creates_the_first_operator_once(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A first start announces a link; a second start replaces it.
    let (first, base) = start(&db, backend, &[("PAYGATE_LOG_FORMAT", "json")]);
    let old_url = announced_url(&first);
    assert!(old_url.starts_with(&format!("{base}/setup/")), "{old_url}");
    let old_token = token_of(&old_url);
    assert_eq!(old_token.len(), 43, "256 bits, base64url: {old_token}");
    assert_eq!(
        client.get(&old_url).send().await.unwrap().status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_token_only_announced(&first.logs.lock().unwrap(), &old_token);
    drop(first);

    let (child, base) = start(&db, backend, &[]);
    let url = announced_url(&child);
    assert!(url.starts_with(&format!("{base}/setup/")), "{url}");
    let token = token_of(&url);
    assert_ne!(token, old_token, "a new start makes a new link");
    let old_now = format!("{base}/setup/{old_token}");
    let r = client.get(&old_now).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "the replaced link is dead"
    );
    assert!(r.text().await.unwrap().contains("data-status=\"404\""));

    // The sign-in page says where the link is.
    let signin = client.get(format!("{base}/signin")).send().await.unwrap();
    assert_eq!(signin.status(), StatusCode::OK);
    assert!(signin.text().await.unwrap().contains("id=\"no-operator\""));

    // The form: a pre-session CSRF cookie and token.
    let page = client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let cookie = set_cookie(&page, "paygate_csrf").expect("a pre-session CSRF cookie");
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"password_confirm\""), "{html}");
    let csrf = csrf_of(&html);

    // Without the CSRF token: refused, nothing created.
    let good_password = "the first operator's password";
    let r = form_post(
        &client,
        &url,
        &cookie,
        &[
            ("email", "first@example.com"),
            ("password", good_password),
            ("password_confirm", good_password),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Every error at once, and the e-mail kept.
    let r = form_post(
        &client,
        &url,
        &cookie,
        &[
            ("csrf", &csrf),
            ("email", "not-an-email"),
            ("password", "short"),
            ("password_confirm", "other"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    for id in ["email-error", "password-error", "password_confirm-error"] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "{id} missing:\n{html}"
        );
    }
    assert!(html.contains("value=\"not-an-email\""));

    // The operator is created, signed in and sent to the console.
    let r = form_post(
        &client,
        &url,
        &cookie,
        &[
            ("csrf", &csrf),
            ("email", "First@Example.com"),
            ("password", good_password),
            ("password_confirm", good_password),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/console");
    let session = set_cookie(&r, "paygate_session").expect("a session");
    let console = client
        .get(format!("{base}/console/companies"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(console.status(), StatusCode::OK);
    assert!(console.text().await.unwrap().contains("first@example.com"));

    // The operator gets an admin API token.
    let r = client
        .post(format!("{base}/admin/v1/auth/token"))
        .json(&json!({"email": "first@example.com", "password": good_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    // The link is spent: 404, to a GET and to the form.
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = form_post(
        &client,
        &url,
        &cookie,
        &[
            ("csrf", &csrf),
            ("email", "second@example.com"),
            ("password", good_password),
            ("password_confirm", good_password),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let signin = client.get(format!("{base}/signin")).send().await.unwrap();
    assert!(!signin.text().await.unwrap().contains("id=\"no-operator\""));

    // Wrong links are counted per address: after a few, 429, even for a well-formed one.
    let mut statuses = Vec::new();
    for n in 0..8 {
        let r = client
            .get(format!("{base}/setup/wrong-token-{n}"))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key(RETRY_AFTER));
        }
        statuses.push(r.status());
    }
    let first_429 = statuses
        .iter()
        .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .unwrap_or_else(|| panic!("never rate-limited: {statuses:?}"));
    assert!(first_429 >= 1, "{statuses:?}");
    assert!(
        statuses[..first_429]
            .iter()
            .all(|s| *s == StatusCode::NOT_FOUND),
        "{statuses:?}"
    );
    assert!(
        statuses[first_429..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // The token is in the announced lines only; the request logs name the path masked.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = child.logs.lock().unwrap().clone();
    assert_token_only_announced(&logs, &token);
    assert!(!logs.contains(&old_token), "the replaced token was logged");
    assert!(logs.contains("/setup/…"), "the path is logged, masked");
    drop(child);

    // A start with an operator announces nothing.
    let (child, base) = start(&db, backend, &[]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let logs = child.logs.lock().unwrap().clone();
    assert!(!logs.contains("No operator yet"), "{logs}");
    assert_eq!(
        client
            .get(format!("{base}/setup/{token}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

db_tests!(setup_link_creates_the_first_operator_once);
