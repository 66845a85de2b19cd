//! Issue 19: the read APIs of subscriptions, invoices and customers. Operators read a company's
//! objects in either mode (`?mode=`); merchants read their key's company and mode only: another
//! company's object is 404, the other mode's is invisible (404, absent from lists, 403 when
//! named with `?mode=`). Filters by status and customer e-mail; pages. Both databases.

use paygate_testkit::billing_objects::{Shape, customer, invoice, subscription};
use paygate_testkit::objects::event_at;
use paygate_testkit::{Backend, TestApp, db_tests, new_secret, now_secs, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Co {
    id: String,
    live: String,
    test: String,
}

async fn company(app: &TestApp) -> Co {
    let id = unique("co");
    app.create_company(&id).await;
    let (live, test) = (new_secret(), new_secret());
    app.create_profile(&id, "live", &live).await;
    app.create_profile(&id, "test", &test).await;
    Co { id, live, test }
}

async fn key(app: &TestApp, company: &str, mode: &str) -> String {
    let (s, k) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/api-keys"),
            json!({"name": "shop backend", "mode": mode}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    k["key"].as_str().unwrap().to_owned()
}

async fn merchant(app: &TestApp, key: &str, path: &str) -> (StatusCode, Value) {
    app.send(app.client.get(app.url(path)).bearer_auth(key))
        .await
}

/// Sends a customer, a subscription and an invoice of `suffix` in the given mode.
async fn billing(app: &TestApp, co: &Co, live: bool, suffix: &str, email: &str, status: &str) {
    let t = now_secs() - 100;
    let secret = if live { &co.live } else { &co.test };
    let cus = format!("cus_{suffix}");
    let sub = format!("sub_{suffix}");
    for mut ev in [
        event_at("customer.created", customer(&cus, email, &["it"]), t),
        event_at(
            "customer.subscription.created",
            subscription(&sub, &cus, status, 2, t, Shape::Basil),
            t,
        ),
        event_at(
            "invoice.finalized",
            invoice(&format!("in_{suffix}"), &cus, &sub, "open", 0, Shape::Old),
            t,
        ),
    ] {
        ev["livemode"] = json!(live);
        ev["data"]["object"]["livemode"] = json!(live);
        let (s, b) = app.deliver(&co.id, secret, &ev).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    app.drain().await;
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn reads_are_scoped_to_company_and_mode(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = company(&app).await;
    let b = company(&app).await;
    billing(&app, &a, true, "a_live", "anna@example.com", "active").await;
    billing(&app, &a, false, "a_test", "anna@example.com", "trialing").await;
    billing(&app, &a, false, "a_test2", "other@example.com", "past_due").await;
    billing(&app, &b, true, "b_live", "bob@example.com", "active").await;

    // Operators: per mode, with filters.
    let base = format!("/admin/v1/companies/{}", a.id);
    let (s, p) = app
        .admin_get(&format!("{base}/subscriptions?mode=live"))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(ids(&p), vec!["sub_a_live"]);
    let (_, p) = app
        .admin_get(&format!("{base}/subscriptions?mode=test"))
        .await;
    assert_eq!(ids(&p), vec!["sub_a_test2", "sub_a_test"], "newest first");
    let (_, p) = app
        .admin_get(&format!("{base}/subscriptions?mode=test&status=trialing"))
        .await;
    assert_eq!(ids(&p), vec!["sub_a_test"]);
    let (_, p) = app
        .admin_get(&format!(
            "{base}/subscriptions?mode=test&email=other@example.com"
        ))
        .await;
    assert_eq!(ids(&p), vec!["sub_a_test2"]);
    let (_, p) = app
        .admin_get(&format!("{base}/invoices?mode=test&email=anna@example.com"))
        .await;
    assert_eq!(ids(&p), vec!["in_a_test"]);
    let (_, p) = app
        .admin_get(&format!(
            "{base}/customers?mode=test&email=anna@example.com"
        ))
        .await;
    assert_eq!(ids(&p), vec!["cus_a_test"]);
    let (_, p) = app
        .admin_get(&format!("{base}/subscriptions?mode=test&limit=1"))
        .await;
    assert_eq!(ids(&p), vec!["sub_a_test2"]);
    assert_eq!(p["has_more"], true);
    let cursor = p["next_cursor"].as_str().unwrap().to_owned();
    let (_, p) = app
        .admin_get(&format!(
            "{base}/subscriptions?mode=test&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&p), vec!["sub_a_test"]);
    let (s, p) = app
        .admin_get(&format!("{base}/subscriptions?mode=test&cursor=nonsense"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");
    assert_eq!(p["error"]["code"], "invalid_cursor");
    let (s, sub) = app
        .admin_get(&format!("{base}/subscriptions/sub_a_live?mode=live"))
        .await;
    assert_eq!(s, StatusCode::OK, "{sub}");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["livemode"], true);
    assert_eq!(sub["items"][0]["quantity"], 2, "{sub}");
    assert!(sub["current_period_end"].is_string(), "{sub}");
    let (s, inv) = app
        .admin_get(&format!("{base}/invoices/in_a_live?mode=live"))
        .await;
    assert_eq!(s, StatusCode::OK, "{inv}");
    assert_eq!(inv["subscription"], "sub_a_live");
    assert_eq!(inv["amount_due"], 2000);
    let (s, cus) = app
        .admin_get(&format!("{base}/customers/cus_a_live?mode=live"))
        .await;
    assert_eq!(s, StatusCode::OK, "{cus}");
    assert_eq!(cus["locale"], "it");
    // The other mode, the other company: not found.
    for p in [
        "subscriptions/sub_a_live?mode=test",
        "invoices/in_a_test?mode=live",
        "customers/cus_b_live?mode=live",
        "subscriptions/sub_b_live?mode=live",
    ] {
        let (s, e) = app.admin_get(&format!("{base}/{p}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {e}");
        assert!(
            e["error"]["code"].as_str().unwrap().ends_with("_not_found"),
            "{e}"
        );
    }

    // Merchants: the key's company and mode.
    let live_key = key(&app, &a.id, "live").await;
    let test_key = key(&app, &a.id, "test").await;
    let (s, p) = merchant(&app, &live_key, "/api/v1/subscriptions").await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(ids(&p), vec!["sub_a_live"]);
    let (_, p) = merchant(&app, &test_key, "/api/v1/subscriptions?status=past_due").await;
    assert_eq!(ids(&p), vec!["sub_a_test2"]);
    let (_, p) = merchant(&app, &test_key, "/api/v1/invoices").await;
    assert_eq!(ids(&p), vec!["in_a_test2", "in_a_test"]);
    let (_, p) = merchant(&app, &live_key, "/api/v1/customers").await;
    assert_eq!(ids(&p), vec!["cus_a_live"]);
    for (k, p) in [
        (&live_key, "/api/v1/subscriptions/sub_a_live"),
        (&live_key, "/api/v1/invoices/in_a_live"),
        (&live_key, "/api/v1/customers/cus_a_live"),
        (&test_key, "/api/v1/subscriptions/sub_a_test"),
    ] {
        let (s, o) = merchant(&app, k, p).await;
        assert_eq!(s, StatusCode::OK, "{p}: {o}");
    }
    for (k, p) in [
        // The other mode.
        (&test_key, "/api/v1/subscriptions/sub_a_live"),
        (&test_key, "/api/v1/invoices/in_a_live"),
        (&live_key, "/api/v1/customers/cus_a_test"),
        // The other company.
        (&live_key, "/api/v1/subscriptions/sub_b_live"),
        (&live_key, "/api/v1/invoices/in_b_live"),
        (&live_key, "/api/v1/customers/cus_b_live"),
    ] {
        let (s, e) = merchant(&app, k, p).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {e}");
    }
    let (s, e) = merchant(&app, &test_key, "/api/v1/subscriptions?mode=live").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "mode_not_allowed");
    let (s, _) = app
        .send(app.client.get(app.url("/api/v1/subscriptions")))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

db_tests!(reads_are_scoped_to_company_and_mode);
