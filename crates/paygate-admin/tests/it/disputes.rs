//! The dispute workbench through the merchant API (issue 18 part 3): evidence drafts and the
//! submission (`POST /api/v1/disputes/{id}/evidence`), accepting (`…/close`), the company and
//! mode scoping, and the `dispute.due_soon` notices driven by the test's own `now`; through the
//! real app with a fake Stripe (wiremock on loopback), on both databases.
//!
//! Disputes are made by delivering signed `charge.dispute.created` events, as Stripe would.

use paygate_db::{Mode, Scope};
use paygate_testkit::objects::dispute;
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret, unique};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn start(backend: Backend) -> (TestApp, MockServer) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    opts.adjust = |s| s.outbound_allow_private = true;
    (TestApp::start(opts).await, stripe)
}

/// A company with a test profile (and a live one when `live`); returns its id and secrets.
async fn company(app: &TestApp, live: bool) -> (String, String, String) {
    let (test, live_secret) = (new_secret(), new_secret());
    let id = unique("co");
    app.create_company(&id).await;
    app.create_profile(&id, "test", &test).await;
    if live {
        app.create_profile(&id, "live", &live_secret).await;
    }
    (id, test, live_secret)
}

async fn key(app: &TestApp, company: &str, mode: Mode) -> String {
    let pk = app.app.tenants.company(company).await.unwrap().id;
    paygate_tenant::api_keys::create_key(&app.app.db, "test", Scope::new(pk, mode), "backend")
        .await
        .unwrap()
        .1
}

/// Delivers `charge.dispute.created` for `id` (due at `due_by`) in the mode of `livemode`.
async fn open_dispute(
    app: &TestApp,
    company: &str,
    secret: &str,
    id: &str,
    due_by: i64,
    livemode: bool,
) {
    let mut d = dispute(id, "needs_response", "ch_1", "pi_1", 2500, false, false);
    d["evidence_details"]["due_by"] = json!(due_by);
    d["livemode"] = json!(livemode);
    let mut ev = event("charge.dispute.created", d);
    ev["livemode"] = json!(livemode);
    let (s, b) = app.deliver(company, secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.drain().await;
}

async fn post(app: &TestApp, key: &str, p: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut r = app.client.post(app.url(p)).bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    app.send(r).await
}

/// Stripe answers every dispute update and close with the dispute (one submission once
/// `submit=true` was sent).
async fn mount_disputes(stripe: &MockServer) {
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/disputes/[^/]+$"))
        .respond_with(|r: &Request| {
            let body = String::from_utf8_lossy(&r.body).into_owned();
            let submitted = body.contains("submit=true");
            let id = r.url.path().rsplit('/').next().unwrap_or_default().to_owned();
            ResponseTemplate::new(200).set_body_json(json!({
                "id": id, "object": "dispute",
                "status": if submitted { "under_review" } else { "needs_response" },
                "evidence_details": {"due_by": 1_900_000_000, "has_evidence": true, "past_due": false,
                                     "submission_count": i64::from(submitted)}
            }))
        })
        .mount(stripe)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/disputes/[^/]+/close$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "dp_x", "object": "dispute", "status": "lost",
            "evidence_details": {"due_by": 1_900_000_000, "has_evidence": false, "past_due": false, "submission_count": 0}
        })))
        .mount(stripe)
        .await;
}

async fn stripe_calls(stripe: &MockServer, p: &str) -> Vec<Request> {
    stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .collect()
}

fn form(r: &Request) -> Vec<(String, String)> {
    let body = String::from_utf8_lossy(&r.body);
    reqwest::Url::parse(&format!("http://form.invalid/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn submit_of(r: &Request) -> String {
    form(r)
        .into_iter()
        .find(|(k, _)| k == "submit")
        .map(|(_, v)| v)
        .unwrap_or_default()
}

async fn draft_then_submit_then_read_only(backend: Backend) {
    let (app, stripe) = start(backend).await;
    mount_disputes(&stripe).await;
    let (co, secret, _) = company(&app, false).await;
    open_dispute(&app, &co, &secret, "dp_work1", 1_900_000_000, false).await;
    let k = key(&app, &co, Mode::Test).await;
    let url = "/api/v1/disputes/dp_work1/evidence";

    // Every problem at once, nothing sent.
    let long = "x".repeat(20_001);
    let (s, b) = post(
        &app,
        &k,
        url,
        Some(json!({"evidence": {"favourite_colour": "blue", "receipt": "not-a-file", "uncategorized_text": long}, "submit": false})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "validation_failed");
    let msg = b["error"]["message"].as_str().unwrap();
    for part in ["favourite_colour", "receipt", "20000"] {
        assert!(msg.contains(part), "{msg}");
    }
    assert!(
        stripe_calls(&stripe, "/v1/disputes/dp_work1")
            .await
            .is_empty()
    );

    // A draft, then the submission.
    let evidence = json!({"customer_name": "Ada Lovelace", "product_description": "2 × Mug", "receipt": "file_Receipt1"});
    let (s, b) = post(
        &app,
        &k,
        url,
        Some(json!({"evidence": evidence, "submit": false})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["evidence_state"], "open");
    assert_eq!(b["evidence"]["customer_name"], "Ada Lovelace");
    assert_eq!(b["has_evidence"], true);
    // Two submissions racing (a double click, two servers): one goes to Stripe.
    let submit = json!({"evidence": evidence, "submit": true});
    let (one, two) = tokio::join!(
        post(&app, &k, url, Some(submit.clone())),
        post(&app, &k, url, Some(submit.clone())),
    );
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{one:?} {two:?}"
    );
    let (_, b) = if one.0 == StatusCode::OK { one } else { two };
    assert_eq!(b["evidence_state"], "submitted");
    assert_eq!(b["submission_count"], 1);
    assert!(b["submitted_at"].is_string());

    // Read-only from now on: neither evidence nor acceptance reaches Stripe.
    for body in [
        json!({"evidence": evidence, "submit": true}),
        json!({"evidence": evidence, "submit": false}),
    ] {
        let (s, b) = post(&app, &k, url, Some(body)).await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
        assert_eq!(b["error"]["code"], "dispute_not_editable");
    }
    let (s, b) = post(&app, &k, "/api/v1/disputes/dp_work1/close", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");

    let calls = stripe_calls(&stripe, "/v1/disputes/dp_work1").await;
    let submits: Vec<String> = calls.iter().map(submit_of).collect();
    assert_eq!(
        submits,
        vec!["false", "true"],
        "submit=false, then submit=true once"
    );
    let sent = form(&calls[1]);
    assert!(sent.contains(&("evidence[customer_name]".into(), "Ada Lovelace".into())));
    assert!(sent.contains(&("evidence[receipt]".into(), "file_Receipt1".into())));
    let keys: Vec<&str> = calls
        .iter()
        .map(|r| r.headers.get("idempotency-key").unwrap().to_str().unwrap())
        .collect();
    assert!(
        keys.iter().all(|k| k.starts_with("paygate_dispute_")),
        "{keys:?}"
    );
    assert_ne!(keys[0], keys[1]);
    assert!(
        stripe_calls(&stripe, "/v1/disputes/dp_work1/close")
            .await
            .is_empty()
    );
}

async fn close_is_scoped_to_the_company_and_the_mode(backend: Backend) {
    let (app, stripe) = start(backend).await;
    mount_disputes(&stripe).await;
    let (a, a_test, a_live) = company(&app, true).await;
    let (b, _, _) = company(&app, false).await;
    open_dispute(&app, &a, &a_test, "dp_close_t", 1_900_000_000, false).await;
    open_dispute(&app, &a, &a_live, "dp_close_l", 1_900_000_000, true).await;
    let a_key = key(&app, &a, Mode::Test).await;
    let b_key = key(&app, &b, Mode::Test).await;

    // Another company's key: not found, whatever the path; nothing reaches Stripe.
    for p in [
        "/api/v1/disputes/dp_close_t/close",
        "/api/v1/disputes/dp_close_t/evidence",
    ] {
        let body = p
            .ends_with("evidence")
            .then(|| json!({"evidence": {}, "submit": false}));
        let (s, r) = post(&app, &b_key, p, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {r}");
        assert_eq!(r["error"]["code"], "dispute_not_found");
    }
    // A test key cannot touch a live dispute.
    let (s, r) = post(&app, &a_key, "/api/v1/disputes/dp_close_l/close", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{r}");
    let (s, r) = post(
        &app,
        &a_key,
        "/api/v1/disputes/dp_close_l/evidence",
        Some(json!({"evidence": {"customer_name": "x"}, "submit": true})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{r}");
    // Not even with `?mode=live`-like tricks: nothing of the live dispute reached Stripe.
    assert!(stripe.received_requests().await.unwrap().is_empty());

    // The company's own test key accepts its test dispute.
    let (s, r) = post(&app, &a_key, "/api/v1/disputes/dp_close_t/close", None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["evidence_state"], "accepted");
    let closes = stripe_calls(&stripe, "/v1/disputes/dp_close_t/close").await;
    assert_eq!(closes.len(), 1);
    let auth = closes[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        auth.starts_with("Bearer sk_test_"),
        "the test profile's key"
    );
    assert!(closes[0].headers.get("idempotency-key").is_some());
    // Accepted: no evidence afterwards, no second close.
    let (s, _) = post(
        &app,
        &a_key,
        "/api/v1/disputes/dp_close_t/evidence",
        Some(json!({"evidence": {}, "submit": false})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = post(&app, &a_key, "/api/v1/disputes/dp_close_t/close", None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        stripe_calls(&stripe, "/v1/disputes/dp_close_t/close")
            .await
            .len(),
        1
    );
    // The live dispute is untouched.
    assert!(
        stripe_calls(&stripe, "/v1/disputes/dp_close_l/close")
            .await
            .is_empty()
    );
}

async fn due_soon_is_sent_once_three_days_and_one_day_before(backend: Backend) {
    let (app, stripe) = start(backend).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let (co, secret, _) = company(&app, false).await;
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{co}/notification-endpoints"),
            json!({"url": format!("{}/hooks", receiver.uri()), "event_types": ["dispute.due_soon"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let due = 1_950_000_000;
    open_dispute(&app, &co, &secret, "dp_due1", due, false).await;
    // Another dispute, already answered (under review): never reminded.
    let mut answered = dispute("dp_due2", "under_review", "ch_2", "pi_2", 900, false, false);
    answered["evidence_details"]["due_by"] = json!(due);
    let (s, _) = app
        .deliver(&co, &secret, &event("charge.dispute.created", answered))
        .await;
    assert_eq!(s, StatusCode::OK);
    app.drain().await;
    // A third one, whose evidence was submitted through Paygate (Stripe's event saying so not
    // here yet): not reminded either.
    open_dispute(&app, &co, &secret, "dp_due3", due, false).await;
    paygate_db::entities::dispute_evidence::ActiveModel {
        company_pk: Set(app.app.tenants.company(&co).await.unwrap().id),
        livemode: Set(false),
        dispute_id: Set("dp_due3".into()),
        status: Set("submitted".into()),
        fields: Set("{}".into()),
        submitted_at: Set(Some(1)),
        created_at: Set(1),
        updated_at: Set(1),
        ..Default::default()
    }
    .insert(&app.app.db)
    .await
    .unwrap();

    let sweep = |now: i64| paygate_router::dispute_deadlines::notify_due_soon(&app.app.db, now);
    const DAY: i64 = 86_400;
    assert_eq!(sweep(due - 4 * DAY).await.unwrap(), 0, "too early");
    assert_eq!(
        sweep(due - 3 * DAY + 60).await.unwrap(),
        1,
        "three days before"
    );
    assert_eq!(
        sweep(due - 3 * DAY + 60).await.unwrap(),
        0,
        "a rerun sends nothing"
    );
    assert_eq!(
        sweep(due - 2 * DAY).await.unwrap(),
        0,
        "still the three-day notice"
    );
    assert_eq!(sweep(due - DAY + 60).await.unwrap(), 1, "one day before");
    assert_eq!(
        sweep(due - DAY + 120).await.unwrap(),
        0,
        "a rerun sends nothing"
    );
    assert_eq!(sweep(due - 60).await.unwrap(), 0);
    assert_eq!(sweep(due + 60).await.unwrap(), 0, "past the deadline");
    app.drain_notifications().await;

    let got: Vec<Value> = receiver
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    // Each once (deliveries may arrive in any order).
    let mut notices: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap(),
                m["data"]["object"]["id"].as_str().unwrap(),
                m["data"]["object"]["deadline_notice"].as_str().unwrap(),
            )
        })
        .collect();
    notices.sort_unstable();
    assert_eq!(
        notices,
        vec![
            ("dispute.due_soon", "dp_due1", "1d"),
            ("dispute.due_soon", "dp_due1", "3d"),
        ]
    );
    assert!(got.iter().all(|m| m["livemode"] == json!(false)));
    assert!(stripe.received_requests().await.unwrap().is_empty());
}

db_tests!(
    draft_then_submit_then_read_only,
    close_is_scoped_to_the_company_and_the_mode,
    due_soon_is_sent_once_three_days_and_one_day_before,
);
