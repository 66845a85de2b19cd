//! Issue 17, parts 1–3: connecting a Stripe account from a key alone, staying connected (the
//! check repairs a disabled, deleted or moved endpoint, records and notifies what it found), and
//! the go-live check. Against a fake Stripe account (wiremock on loopback) on both databases.

use std::collections::BTreeSet;

use paygate_testkit::receivers::Receiver;
use paygate_testkit::stripe_account::FakeStripeAccount;
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, objects, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};

const RK_TEST: &str = "rk_test_51RestrictedKeyForAutoConnect0000";
const RK_LIVE: &str = "rk_live_51RestrictedKeyForAutoConnect0000";

async fn app_on(backend: Backend, fake: &FakeStripeAccount) -> TestApp {
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(fake.uri());
    opts.adjust = |s| {
        s.outbound_allow_private = true;
        s.stripe_check_secs = 0;
        s.reconcile_interval_secs = 0;
    };
    TestApp::start(opts).await
}

async fn connect(app: &TestApp, company: &str, key: &str) -> Value {
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/profiles"),
            json!({"secret_key": key, "auto_configure": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

async fn check(app: &TestApp, company: &str) -> Value {
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/stripe-check"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

async fn connection_of(app: &TestApp, company: &str) -> Value {
    let (s, b) = app
        .admin_get(&format!("/admin/v1/companies/{company}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["stripe_connection"].clone()
}

fn handled_types() -> BTreeSet<String> {
    paygate_wire::EventType::ALL
        .iter()
        .map(|e| e.as_str().to_owned())
        .collect()
}

async fn a_profile_created_from_a_restricted_key_alone_connects_itself(backend: Backend) {
    let fake = FakeStripeAccount::start("acct_1AutoConnect000", true, true).await;
    let app = app_on(backend, &fake).await;
    let company = unique("auto");
    app.create_company(&company).await;

    // A key of another account than the one typed is refused before anything is created.
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/profiles"),
            json!({"secret_key": RK_TEST, "auto_configure": true, "account_id": "acct_1SomeoneElse0"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "account_mismatch", "{b}");
    assert!(
        fake.requests("POST", "/v1/webhook_endpoints")
            .await
            .is_empty()
    );
    // A pasted signing secret makes no sense with the automatic path.
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/profiles"),
            json!({"secret_key": RK_TEST, "auto_configure": true, "webhook_secret": "whsec_12345678901234"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "webhook_secret_not_allowed", "{b}");

    let before_account_reads = fake.requests("GET", "/v1/account").await.len();
    let p = connect(&app, &company, RK_TEST).await;
    assert_eq!(
        fake.requests("GET", "/v1/account").await.len(),
        before_account_reads + 1
    );
    let creates = fake.requests("POST", "/v1/webhook_endpoints").await;
    assert_eq!(creates.len(), 1, "exactly one endpoint created");
    let form = FakeStripeAccount::form(&creates[0]);
    let one = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let callback = format!("{}/callbacks/v1.0/stripe/{company}", app.base_url);
    assert_eq!(one("url").as_deref(), Some(callback.as_str()));
    assert_eq!(
        one("api_version").as_deref(),
        Some(paygate_wire::STRIPE_API_VERSION)
    );
    let events: BTreeSet<String> = form
        .iter()
        .filter(|(k, _)| k == "enabled_events[]")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(events, handled_types());
    assert_eq!(
        one("metadata[paygate_company]").as_deref(),
        Some(company.as_str())
    );
    assert!(one("metadata[paygate_installation]").is_some());
    assert!(creates[0].headers.get("idempotency-key").is_some());

    // What it did, and the profile as connected: mode from the key, the account's facts.
    let endpoint = fake.endpoints().pop().unwrap();
    assert_eq!(p["mode"], "test");
    assert_eq!(p["account_id"], "acct_1AutoConnect000");
    assert_eq!(p["auto_configured"], true);
    assert_eq!(p["webhook_endpoint_id"], endpoint.id);
    assert_eq!(p["account"]["country"], "IT");
    assert_eq!(p["account"]["default_currency"], "eur");
    assert_eq!(p["account"]["charges_enabled"], true);
    assert_eq!(p["auto_configure"]["webhook_endpoint_id"], endpoint.id);
    assert_eq!(p["auto_configure"]["url"], callback);
    assert_eq!(
        p["auto_configure"]["actions"],
        json!([
            "account_read",
            "webhook_endpoint_created",
            "signing_secret_stored"
        ])
    );
    // Nothing secret in the answers: the key and the secret masked.
    let text = p.to_string();
    assert!(
        !text.contains(RK_TEST) && !text.contains(&endpoint.secret),
        "{text}"
    );
    assert!(p["secret_key"].as_str().unwrap().contains('…'), "{p}");
    let masked = p["signing_secrets"][0]["secret"].as_str().unwrap();
    assert!(masked.starts_with("whsec_") && masked.contains('…'), "{p}");
    let (_, audit) = app.admin_get("/admin/v1/audit-log").await;
    let audit = audit.to_string();
    assert!(!audit.contains(RK_TEST) && !audit.contains(&endpoint.secret));

    // A delivery signed with the secret Stripe returned is accepted by the intake.
    let ev = event(
        "payment_intent.succeeded",
        objects::payment_intent("pi_auto_1", "succeeded", 1200),
    );
    let (s, b) = app.deliver(&company, &endpoint.secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(app.inbox_count(&company).await, 1);

    assert_eq!(check(&app, &company).await["stripe_connection"], "ok");

    // Disconnecting deletes the endpoint Paygate created.
    let (s, b) = app
        .admin_delete(&format!(
            "/admin/v1/companies/{company}/profiles/{}",
            p["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(
        fake.requests("DELETE", &format!("/v1/webhook_endpoints/{}", endpoint.id))
            .await
            .len(),
        1
    );
    assert!(fake.endpoints().is_empty());
    // Nothing left to check: no state.
    let r = check(&app, &company).await;
    assert_eq!(r["stripe_connection"], Value::Null, "{r}");
    assert_eq!(connection_of(&app, &company).await, Value::Null);
}

/// The notifications the receiver got of the connection's type, each `(state, actions)`.
async fn connection_messages(app: &TestApp, rx: &Receiver) -> Vec<Value> {
    app.drain_notifications().await;
    rx.requests()
        .await
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter(|m| m["type"] == "paygate.stripe_connection.changed")
        .collect()
}

async fn the_check_repairs_a_disabled_deleted_or_moved_endpoint(backend: Backend) {
    let fake = FakeStripeAccount::start("acct_1StayConnected0", true, true).await;
    let app = app_on(backend, &fake).await;
    let company = unique("stay");
    app.create_company(&company).await;
    let rx = Receiver::start(&[]).await;
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": rx.url(), "event_types": ["paygate.stripe_connection.changed"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let p = connect(&app, &company, RK_TEST).await;
    let profile_id = p["id"].as_str().unwrap().to_owned();
    let first = fake.endpoints().pop().unwrap();
    let callback = format!("{}/callbacks/v1.0/stripe/{company}", app.base_url);
    assert_eq!(connection_of(&app, &company).await, Value::Null);

    // Everything right: ok, and no message for the first look.
    let r = check(&app, &company).await;
    assert_eq!(r["stripe_connection"], "ok", "{r}");
    assert_eq!(connection_of(&app, &company).await, "ok");
    assert!(connection_messages(&app, &rx).await.is_empty());

    // Stripe disabled it after failed deliveries: enabled again.
    fake.disable(&first.id);
    let r = check(&app, &company).await;
    assert_eq!(r["stripe_connection"], "disabled_by_stripe", "{r}");
    assert_eq!(r["profiles"][0]["actions"], json!(["endpoint_enabled"]));
    assert_eq!(fake.endpoints()[0].status, "enabled");
    assert_eq!(connection_of(&app, &company).await, "disabled_by_stripe");
    let msgs = connection_messages(&app, &rx).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["data"]["object"]["state"], "disabled_by_stripe");
    assert_eq!(msgs[0]["livemode"], false);

    // Someone moved it elsewhere: its URL (and events) are put back.
    fake.set_url(&first.id, "https://elsewhere.example/hook");
    let r = check(&app, &company).await;
    assert_eq!(r["stripe_connection"], "repaired", "{r}");
    assert_eq!(fake.endpoints()[0].url, callback);
    assert_eq!(connection_of(&app, &company).await, "repaired");
    let msgs = connection_messages(&app, &rx).await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(
        msgs[1]["data"]["object"]["profiles"][0]["actions"],
        json!(["endpoint_updated"])
    );

    // Someone deleted it: re-created, the new secret stored, the old one still valid (grace).
    fake.remove(&first.id);
    let events_before = fake.requests("GET", "/v1/events").await.len();
    let r = check(&app, &company).await;
    assert_eq!(r["stripe_connection"], "repaired", "{r}");
    assert_eq!(r["profiles"][0]["actions"], json!(["endpoint_recreated"]));
    let second = fake.endpoints().pop().unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(second.url, callback);
    assert_eq!(
        second
            .enabled_events
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        handled_types()
    );
    assert_eq!(
        second.api_version.as_deref(),
        Some(paygate_wire::STRIPE_API_VERSION)
    );
    let (_, prof) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/profiles/{profile_id}"
        ))
        .await;
    assert_eq!(prof["webhook_endpoint_id"], second.id);
    for (i, secret) in [&second.secret, &first.secret].into_iter().enumerate() {
        let ev = event(
            "payment_intent.succeeded",
            objects::payment_intent(&format!("pi_stay_{i}"), "succeeded", 700),
        );
        let (s, b) = app.deliver(&company, secret, &ev).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    // The gap was reconciled.
    assert!(fake.requests("GET", "/v1/events").await.len() > events_before);
    assert!(r["reconciled"].is_object(), "{r}");
    let msgs = connection_messages(&app, &rx).await;
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert_eq!(
        msgs[2]["data"]["object"]["profiles"][0]["webhook_endpoint_id"],
        second.id
    );

    // Right again: back to ok, said once; then nothing more to say.
    assert_eq!(check(&app, &company).await["stripe_connection"], "ok");
    assert_eq!(connection_messages(&app, &rx).await.len(), 4);
    assert_eq!(check(&app, &company).await["stripe_connection"], "ok");
    assert_eq!(connection_messages(&app, &rx).await.len(), 4);

    // The key revoked (401): shown, told once however often it is checked.
    fake.fail_with(Some(401));
    assert_eq!(
        check(&app, &company).await["stripe_connection"],
        "key_revoked"
    );
    assert_eq!(
        check(&app, &company).await["stripe_connection"],
        "key_revoked"
    );
    assert_eq!(connection_of(&app, &company).await, "key_revoked");
    let msgs = connection_messages(&app, &rx).await;
    assert_eq!(msgs.len(), 5, "{msgs:?}");
    assert_eq!(msgs[4]["data"]["object"]["state"], "key_revoked");
    fake.fail_with(None);
}

async fn going_live_needs_an_account_that_can_charge_and_pay_out(backend: Backend) {
    let fake = FakeStripeAccount::start("acct_1GoLiveLater00", false, false).await;
    let app = app_on(backend, &fake).await;
    let company = unique("golive");
    app.create_company(&company).await;
    let path = format!("/admin/v1/companies/{company}");

    // No live profile at all.
    let (s, b) = app.admin_patch(&path, json!({"environment": "live"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "account_not_ready");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("live_profile"),
        "{b}"
    );

    // A live profile whose account cannot take charges or pay out yet.
    let p = connect(&app, &company, RK_LIVE).await;
    assert_eq!(p["mode"], "live");
    assert_eq!(p["account"]["charges_enabled"], false);
    let (s, b) = app.admin_patch(&path, json!({"environment": "live"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "account_not_ready");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("charges_enabled") && msg.contains("payouts_enabled"),
        "{b}"
    );
    let (_, c) = app.admin_get(&path).await;
    assert_eq!(c["environment"], "test", "nothing changed");

    // Stripe says the account is ready (`account.updated`, live): allowed.
    let secret = fake.endpoints().pop().unwrap().secret;
    let mut ev = event(
        "account.updated",
        objects::account("acct_1GoLiveLater00", true, &[]),
    );
    ev["livemode"] = json!(true);
    ev["id"] = json!(unique("evt_live_"));
    let (s, b) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.drain().await;
    let (s, b) = app.admin_patch(&path, json!({"environment": "live"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["environment"], "live");
}

db_tests!(
    a_profile_created_from_a_restricted_key_alone_connects_itself,
    the_check_repairs_a_disabled_deleted_or_moved_endpoint,
    going_live_needs_an_account_that_can_charge_and_pay_out,
);
