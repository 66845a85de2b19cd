//! Every merchant page and form, found by following the links of the back office as a company
//! admin (so pages added later are covered without touching this file): every change refused
//! without the CSRF token and to a viewer, and another company's user never sees or changes the
//! first company's objects, whatever URL they try. After all that, the admin's pages are as they
//! were.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use paygate_testkit::backoffice::{Browser, Form};
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret};
use reqwest::StatusCode;
use serde_json::json;

/// Forms that change nothing of the company.
fn is_change(f: &Form) -> bool {
    f.method == "post" && f.action != "/signout" && f.action != "/language"
}

/// Whether a path names one object by its id (`/app/stripe/profiles/prf_…/delete`).
fn names_object(path: &str) -> bool {
    path.split('?').next().unwrap_or("").split('/').any(|seg| {
        seg.split_once('_').is_some_and(|(prefix, rest)| {
            !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_lowercase()) && rest.len() >= 6
        })
    })
}

/// Pages (200) reachable from `/app` and the forms on them, by action.
async fn crawl(b: &Browser) -> (BTreeMap<String, String>, BTreeMap<String, Form>) {
    let mut pages = BTreeMap::new();
    let mut forms = BTreeMap::new();
    let mut queue = VecDeque::from(["/app".to_owned()]);
    let mut seen = BTreeSet::new();
    while let Some(url) = queue.pop_front() {
        if !seen.insert(url.clone()) || seen.len() > 80 {
            continue;
        }
        let p = b.get(&url).await;
        assert!(
            p.status == StatusCode::OK || p.status == StatusCode::SEE_OTHER,
            "{url}: {}",
            p.status
        );
        if p.status != StatusCode::OK {
            continue;
        }
        for link in p.links() {
            if link == "/app" || link.starts_with("/app/") || link.starts_with("/app?") {
                queue.push_back(link);
            }
        }
        for f in p.forms() {
            if f.action.starts_with('/') {
                forms.entry(f.action.clone()).or_insert(f);
            }
        }
        pages.insert(url, p.body);
    }
    (pages, forms)
}

/// A page's text with what may differ between two looks (numbers: times, ages) left out.
fn shape(body: &str) -> String {
    body.chars().filter(|c| !c.is_ascii_digit()).collect()
}

async fn every_merchant_form_needs_the_token_an_admin_and_the_own_company(backend: Backend) {
    // Notification endpoints on this machine are allowed, so the page lists one.
    let app = TestApp::start(Options {
        adjust: |s| s.outbound_allow_private = true,
        ..Options::new(backend)
    })
    .await;
    let (a, admin, viewer) = app.company_with_users().await;
    let secret = new_secret();
    app.create_profile(&a, "test", &secret).await;
    let (s, body) = app
        .admin_post(
            &format!("/admin/v1/companies/{a}/api-keys"),
            json!({"name": "shop server"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = app
        .admin_post(
            &format!("/admin/v1/companies/{a}/notification-endpoints"),
            json!({"url": "http://127.0.0.1:9/hook", "description": "shop backend"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _) = app
        .deliver(
            &a,
            &secret,
            &event("charge.succeeded", json!({"id": "ch_matrix"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.drain().await;
    let (b, other, _) = app.company_with_users().await;

    let (pages, forms) = crawl(&admin).await;
    assert!(pages.len() >= 4, "{:?}", pages.keys());
    let changes: Vec<&Form> = forms.values().filter(|f| is_change(f)).collect();
    assert!(changes.len() >= 3, "{:?}", forms.keys());

    // Without the token: refused, whoever asks.
    for f in &changes {
        let p = admin
            .post_form_raw(&f.action, &f.fields_without_csrf())
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{} without csrf", f.action);
    }
    // A viewer: refused, with the viewer's own valid token.
    viewer.get("/app").await;
    for f in &changes {
        let p = viewer.post_form(&f.action, &f.fields_without_csrf()).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{} as a viewer", f.action);
    }
    // Another company's admin: A's pages show none of A, A's objects are not found.
    other.get("/app").await;
    for url in pages.keys() {
        let p = other.get(url).await;
        assert!(
            p.status == StatusCode::OK || p.status == StatusCode::NOT_FOUND,
            "{url} for another company: {}",
            p.status
        );
        assert!(!p.contains(&a), "{url} shows company {a} to {b}");
        if names_object(url) {
            assert_eq!(p.status, StatusCode::NOT_FOUND, "{url} for another company");
        }
    }
    for f in changes.iter().filter(|f| names_object(&f.action)) {
        let p = other.post_form(&f.action, &f.fields_without_csrf()).await;
        assert_eq!(
            p.status,
            StatusCode::NOT_FOUND,
            "{} by another company",
            f.action
        );
    }
    // Nothing of A changed.
    for (url, before) in &pages {
        let p = admin.get(url).await;
        assert_eq!(p.status, StatusCode::OK, "{url} after the attempts");
        assert_eq!(shape(&p.body), shape(before), "{url} changed");
    }
}

db_tests!(every_merchant_form_needs_the_token_an_admin_and_the_own_company);
