//! Connect platforms: events on a platform's callback URL that name a connected account are
//! stored and processed for the linked company whose active profile of the event's mode has
//! that account id; the others are acknowledged and listed as unroutable.

use paygate_testkit::objects::payment_intent;
use paygate_testkit::{Backend, TestApp, db_tests, event, new_secret, profile_json, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A profile of `mode` for `account` with signing secret `secret` (201 asserted).
async fn profile(app: &TestApp, company: &str, mode: &str, account: &str, secret: &str) {
    let mut body = profile_json(mode, secret);
    body["account_id"] = json!(account);
    let (s, b) = app
        .admin_post(&format!("/admin/v1/companies/{company}/profiles"), body)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

/// A platform with a test and a live profile; returns its id and the (test, live) secrets.
async fn platform(app: &TestApp) -> (String, String, String) {
    let id = unique("platform");
    let (s, b) = app
        .admin_post(
            "/admin/v1/companies",
            json!({"company_id": id, "name": "Platform Ltd", "is_connect_platform": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["is_connect_platform"], json!(true));
    let (test, live) = (new_secret(), new_secret());
    profile(app, &id, "test", "acct_1Platform0000000", &test).await;
    profile(app, &id, "live", "acct_1Platform0000000", &live).await;
    (id, test, live)
}

/// A company linked to `platform` (through an update, as an operator links an existing one).
async fn linked(app: &TestApp, platform: &str) -> String {
    let id = unique("connected");
    app.create_company(&id).await;
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{id}"),
            json!({"connect_platform": platform}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["connect_platform"], json!(platform));
    id
}

/// A `payment_intent.succeeded` of `account` about `pi`, in `livemode`.
fn connect_event(account: &str, pi: &str, livemode: bool) -> Value {
    let mut obj = payment_intent(pi, "succeeded", 1500);
    obj["livemode"] = json!(livemode);
    let mut e = event("payment_intent.succeeded", obj);
    e["account"] = json!(account);
    e["livemode"] = json!(livemode);
    e
}

async fn payment_intent_status(app: &TestApp, company: &str, pi: &str, mode: &str) -> Value {
    let (s, b) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/payment-intents/{pi}?mode={mode}"
        ))
        .await;
    if s == StatusCode::NOT_FOUND {
        return Value::Null;
    }
    assert_eq!(s, StatusCode::OK, "{b}");
    b["status"].clone()
}

async fn unroutable(app: &TestApp, platform: &str) -> Vec<Value> {
    let (s, b) = app
        .admin_get(&format!("/admin/v1/companies/{platform}/unroutable-events"))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["data"].as_array().cloned().unwrap_or_default()
}

async fn connect_events_go_to_the_linked_company(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (platform, test_secret, live_secret) = platform(&app).await;
    let shop = linked(&app, &platform).await;
    // Before the shop has a profile for its account, its events are the platform's unroutable
    // ones (and the platform's routing table is now cached).
    let early = connect_event("acct_1ShopOne00000000", "pi_connect_0", false);
    assert_eq!(
        app.deliver(&platform, &test_secret, &early).await.0,
        StatusCode::OK
    );
    assert_eq!(app.inbox_count(&platform).await, 1);
    // A profile of the linked company changes the platform's routing table at once.
    profile(&app, &shop, "test", "acct_1ShopOne00000000", &new_secret()).await;
    profile(&app, &shop, "live", "acct_1ShopOne00000000", &new_secret()).await;

    let e = connect_event("acct_1ShopOne00000000", "pi_connect_1", false);
    let (s, b) = app.deliver(&platform, &test_secret, &e).await;
    assert_eq!((s, &b["duplicate"]), (StatusCode::OK, &json!(false)), "{b}");
    // Stored once, for the linked company, whatever the number of deliveries.
    let (s, b) = app.deliver(&platform, &test_secret, &e).await;
    assert_eq!((s, &b["duplicate"]), (StatusCode::OK, &json!(true)), "{b}");
    assert_eq!(app.inbox_count(&shop).await, 1);
    assert_eq!(app.inbox_count(&platform).await, 1);
    app.drain().await;
    assert_eq!(
        payment_intent_status(&app, &shop, "pi_connect_1", "test").await,
        json!("succeeded")
    );
    assert_eq!(
        payment_intent_status(&app, &platform, "pi_connect_1", "test").await,
        Value::Null
    );
    assert_eq!(
        payment_intent_status(&app, &shop, "pi_connect_1", "live").await,
        Value::Null,
        "a test event never reaches live data"
    );

    // A live Connect endpoint also receives the connected accounts' test events, signed with
    // the live secret: they go to the linked company's test profile.
    let e = connect_event("acct_1ShopOne00000000", "pi_connect_2", false);
    assert_eq!(
        app.deliver(&platform, &live_secret, &e).await.0,
        StatusCode::OK
    );
    app.drain().await;
    assert_eq!(
        payment_intent_status(&app, &shop, "pi_connect_2", "test").await,
        json!("succeeded")
    );
    assert_eq!(
        payment_intent_status(&app, &shop, "pi_connect_2", "live").await,
        Value::Null
    );
    // A live event signed with the test secret is refused as for any company.
    let e = connect_event("acct_1ShopOne00000000", "pi_connect_3", true);
    let (s, b) = app.deliver(&platform, &test_secret, &e).await;
    assert_eq!(
        (s, &b["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("livemode_mismatch"))
    );
    // A live event goes to the live profile's company, in live.
    assert_eq!(
        app.deliver(&platform, &live_secret, &e).await.0,
        StatusCode::OK
    );
    app.drain().await;
    assert_eq!(
        payment_intent_status(&app, &shop, "pi_connect_3", "live").await,
        json!("succeeded")
    );
    // The platform's own events (no account) are its own.
    let own = event(
        "payment_intent.succeeded",
        payment_intent("pi_platform_own", "succeeded", 700),
    );
    assert_eq!(
        app.deliver(&platform, &test_secret, &own).await.0,
        StatusCode::OK
    );
    app.drain().await;
    assert_eq!(
        payment_intent_status(&app, &platform, "pi_platform_own", "test").await,
        json!("succeeded")
    );
    let listed = unroutable(&app, &platform).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], early["id"]);
    assert_eq!(
        payment_intent_status(&app, &shop, "pi_connect_0", "test").await,
        Value::Null
    );
}

async fn an_account_no_linked_company_has_is_unroutable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (platform, test_secret, live_secret) = platform(&app).await;
    let shop = linked(&app, &platform).await;
    // Only a test profile for the account.
    profile(&app, &shop, "test", "acct_1ShopTwo00000000", &new_secret()).await;

    let unknown = connect_event("acct_1Nobody000000000", "pi_nobody", false);
    let (s, b) = app.deliver(&platform, &test_secret, &unknown).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Wrong mode: a live event for an account the linked company has only in test.
    let live = connect_event("acct_1ShopTwo00000000", "pi_live_only", true);
    let (s, b) = app.deliver(&platform, &live_secret, &live).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Repeated: still one row each.
    assert_eq!(
        app.deliver(&platform, &live_secret, &live).await.1["duplicate"],
        json!(true)
    );
    assert_eq!(
        app.drain().await,
        0,
        "unroutable events are never processed"
    );
    assert_eq!(app.inbox_count(&shop).await, 0);
    assert_eq!(app.inbox_count(&platform).await, 2);
    for (company, mode) in [
        (&shop, "test"),
        (&shop, "live"),
        (&platform, "test"),
        (&platform, "live"),
    ] {
        for pi in ["pi_nobody", "pi_live_only"] {
            assert_eq!(
                payment_intent_status(&app, company, pi, mode).await,
                Value::Null,
                "{pi} processed for {company} in {mode}"
            );
        }
    }
    let listed = unroutable(&app, &platform).await;
    let mut got: Vec<(Value, Value, Value)> = listed
        .iter()
        .map(|e| (e["id"].clone(), e["account"].clone(), e["livemode"].clone()))
        .collect();
    got.sort_by_key(|g| g.0.to_string());
    let mut want = vec![
        (
            unknown["id"].clone(),
            json!("acct_1Nobody000000000"),
            json!(false),
        ),
        (
            live["id"].clone(),
            json!("acct_1ShopTwo00000000"),
            json!(true),
        ),
    ];
    want.sort_by_key(|g| g.0.to_string());
    assert_eq!(got, want);
    // Also a status of the platform's inbox rows.
    let (s, b) = app
        .admin_get(&format!(
            "/admin/v1/companies/{platform}/events?mode=live&status=unroutable"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"][0]["id"], live["id"]);
    assert_eq!(b["data"][0]["status"], json!("unroutable"));
}

async fn links_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let plain = unique("plain");
    app.create_company(&plain).await;
    let other = unique("other");
    // A company can only be linked to a platform that exists and is one.
    for target in [plain.as_str(), "no_such_company"] {
        let (s, b) = app
            .admin_post(
                "/admin/v1/companies",
                json!({"company_id": other, "name": "Other", "connect_platform": target}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["error"]["code"], json!("connect_platform_invalid"));
    }
    let (platform, _, _) = platform(&app).await;
    let shop = linked(&app, &platform).await;
    // A platform with linked companies stays one until they are unlinked.
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{platform}"),
            json!({"is_connect_platform": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], json!("platform_has_linked_companies"));
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{shop}"),
            json!({"connect_platform": null}),
        )
        .await;
    assert_eq!(
        (s, &b["connect_platform"]),
        (StatusCode::OK, &Value::Null),
        "{b}"
    );
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{platform}"),
            json!({"is_connect_platform": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["is_connect_platform"], json!(false));
}

db_tests!(
    connect_events_go_to_the_linked_company,
    an_account_no_linked_company_has_is_unroutable,
    links_are_checked,
);
