//! Test and live never mix. Someone holding only a company's *test* signing secret (developers,
//! CI) signs test-mode events that name live objects: for every handled event type, a live
//! event is applied, then a test-mode event about the same object id with a later `created`,
//! and the live object (and the live order behind it) is found unchanged, while the test event
//! made a test object of its own. The merchant API: a test key never reads or changes live
//! orders. Through the real intake, workers and admin / merchant APIs, on both databases.

use paygate_testkit::backoffice::Browser;
use paygate_testkit::billing_objects;
use paygate_testkit::checkout_objects::FakeCheckout;
use paygate_testkit::objects::{
    account, charge, checkout_session, dispute, early_fraud_warning, event_at, issuing_card,
    issuing_cardholder, payment_intent, payment_method, refund, source,
};
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret, now_secs, unique};
use paygate_wire::{EventFamily, EventType};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A company in the live environment with a live and a test profile, a fake Stripe that
/// answers Checkout Sessions and creates charges, and a live merchant API key.
struct World {
    app: TestApp,
    stripe: MockServer,
    company: String,
    live_secret: String,
    test_secret: String,
    live_key: String,
}

async fn world(backend: Backend) -> World {
    let stripe = MockServer::start().await;
    FakeCheckout::new("paid", 2, 10).mount(&stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "ch_from_source", "object": "charge", "amount": 1999, "currency": "eur",
            "livemode": true, "status": "pending", "paid": false,
        })))
        .mount(&stripe)
        .await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    // The merchant's receiver listens on loopback.
    opts.adjust = |s| s.outbound_allow_private = true;
    let app = TestApp::start(opts).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (live_secret, test_secret) = (new_secret(), new_secret());
    app.create_profile(&company, "live", &live_secret).await;
    app.create_profile(&company, "test", &test_secret).await;
    // Going live needs an account Stripe lets charge and pay out (issue 17).
    paygate_testkit::stripe_account::live_account_ready(&app, &company, "acct_1TestAccount000")
        .await;
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"environment": "live", "stripe_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let live_key = api_key(&app, &company, Some("live")).await;
    World {
        app,
        stripe,
        company,
        live_secret,
        test_secret,
        live_key,
    }
}

async fn api_key(app: &TestApp, company: &str, mode: Option<&str>) -> String {
    let mut body = json!({"name": "shop backend"});
    if let Some(m) = mode {
        body["mode"] = json!(m);
    }
    let (s, k) = app
        .admin_post(&format!("/admin/v1/companies/{company}/api-keys"), body)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let key = k["key"].as_str().unwrap().to_owned();
    assert_eq!(
        k["livemode"],
        json!(mode == Some("live")),
        "the key says its mode: {k}"
    );
    key
}

impl World {
    /// Delivers `ev` as a live event (signed with the live secret).
    async fn live(&self, mut ev: Value) {
        ev["livemode"] = json!(true);
        ev["data"]["object"]["livemode"] = json!(true);
        ev["id"] = json!(unique("evt_live_"));
        let (s, b) = self
            .app
            .deliver(&self.company, &self.live_secret, &ev)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        self.app.drain().await;
    }

    /// Delivers `ev` as a test-mode event (signed with the test secret).
    async fn test(&self, ev: Value) {
        assert_eq!(ev["livemode"], json!(false));
        let (s, b) = self
            .app
            .deliver(&self.company, &self.test_secret, &ev)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        self.app.drain().await;
    }

    /// An operator's read of `path` (under the company) in `mode`, without `updated_at`.
    async fn read(&self, path: &str, mode: &str) -> (StatusCode, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (s, mut b) = self
            .app
            .admin_get(&format!(
                "/admin/v1/companies/{}/{path}{sep}mode={mode}",
                self.company
            ))
            .await;
        strip_times(&mut b);
        (s, b)
    }

    async fn merchant(&self, key: &str, p: &str) -> (StatusCode, Value) {
        self.app
            .send(self.app.client.get(self.app.url(p)).bearer_auth(key))
            .await
    }

    async fn merchant_post(&self, key: &str, p: &str, body: Value) -> (StatusCode, Value) {
        self.app
            .send(
                self.app
                    .client
                    .post(self.app.url(p))
                    .bearer_auth(key)
                    .json(&body),
            )
            .await
    }

    /// A live order paid by the legacy Source `src`, made through the merchant API.
    async fn live_source_order(&self, src: &str) -> String {
        let (s, o) = self
            .merchant_post(
                &self.live_key,
                "/api/v1/orders",
                json!({"source": src, "amount": 1999, "currency": "eur"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        assert_eq!(o["livemode"], json!(true), "{o}");
        o["id"].as_str().unwrap().to_owned()
    }
}

/// Bookkeeping times change when a row is rewritten with the same state; the state is the rest.
fn strip_times(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("updated_at");
            for x in o.values_mut() {
                strip_times(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_times),
        _ => {}
    }
}

/// The object a case is about, the event's object in live and in test (same id, different
/// state), and where operators read it.
struct Case {
    live: Value,
    test: Value,
    read: String,
}

/// Every handled type has a case: the `match` is exhaustive, so a new type must add one.
fn case(t: EventType, n: usize) -> Case {
    use EventType as T;
    let id = |p: &str| format!("{p}_shared_{n}");
    match t.family() {
        EventFamily::PaymentIntent => {
            let status = match t {
                T::PaymentIntentCreated => "requires_payment_method",
                T::PaymentIntentProcessing => "processing",
                T::PaymentIntentRequiresAction => "requires_action",
                T::PaymentIntentAmountCapturableUpdated => "requires_capture",
                T::PaymentIntentSucceeded => "succeeded",
                T::PaymentIntentPaymentFailed => "requires_payment_method",
                _ => "canceled",
            };
            let pi = id("pi");
            Case {
                live: payment_intent(&pi, status, 1000),
                test: payment_intent(&pi, status, 2000),
                read: format!("payment-intents/{pi}"),
            }
        }
        EventFamily::Charge => {
            let status = match t {
                T::ChargePending => "pending",
                T::ChargeFailed => "failed",
                _ => "succeeded",
            };
            let ch = id("ch");
            let mut test = charge(&ch, status, 2000, Some("pi_x"), None);
            if t == T::ChargeRefunded {
                test["refunded"] = json!(true);
                test["amount_refunded"] = json!(2000);
            }
            Case {
                live: charge(&ch, status, 1000, Some("pi_x"), None),
                test,
                read: format!("charges/{ch}"),
            }
        }
        EventFamily::Dispute => {
            let (status, w, r) = match t {
                T::ChargeDisputeClosed => ("lost", true, false),
                T::ChargeDisputeFundsWithdrawn => ("needs_response", true, false),
                T::ChargeDisputeFundsReinstated => ("won", true, true),
                T::ChargeDisputeUpdated => ("under_review", false, false),
                _ => ("needs_response", false, false),
            };
            let dp = id("dp");
            Case {
                live: dispute(
                    &dp,
                    "warning_needs_response",
                    "ch_d",
                    "pi_d",
                    1000,
                    false,
                    false,
                ),
                test: dispute(&dp, status, "ch_d", "pi_d", 2000, w, r),
                read: format!("disputes/{dp}"),
            }
        }
        EventFamily::Source => {
            let src = id("src");
            Case {
                live: source(&src, "pending", 1999),
                test: source(&src, "canceled", 1999),
                // The live order paid by the source: see `every_handled_type_keeps_…`.
                read: src,
            }
        }
        EventFamily::CheckoutSession => {
            // An id without a mode prefix, so the scope (not the prefix check) is what holds.
            let cs = id("cs");
            Case {
                live: checkout_session(&cs, "unpaid", 1000),
                test: checkout_session(&cs, "paid", 2000),
                read: format!("checkout-sessions/{cs}"),
            }
        }
        EventFamily::Account => {
            let acct = id("acct");
            Case {
                live: account(&acct, true, &[]),
                test: account(&acct, false, &["external_account"]),
                read: "accounts".into(),
            }
        }
        EventFamily::PaymentMethod => {
            let pm = id("pm");
            Case {
                live: payment_method(&pm, "cus_1", "visa", "4242", 1, 2030),
                test: payment_method(&pm, "cus_1", "mastercard", "4444", 2, 2031),
                read: format!("payment-methods/{pm}"),
            }
        }
        EventFamily::Issuing => {
            let ic = id("ic");
            let (live, test) = if t == T::IssuingCardholderUpdated {
                (
                    issuing_cardholder(&ic, "active"),
                    issuing_cardholder(&ic, "blocked"),
                )
            } else {
                (issuing_card(&ic, "active"), issuing_card(&ic, "canceled"))
            };
            Case {
                live,
                test,
                read: format!("issuing/{ic}"),
            }
        }
        EventFamily::Refund => {
            let re = id("re");
            let status = if t == T::RefundFailed {
                "failed"
            } else {
                "succeeded"
            };
            Case {
                live: refund(&re, "pending", 1000, "ch_x", Some("pi_x")),
                test: refund(&re, status, 2000, "ch_x", Some("pi_x")),
                read: format!("refunds/{re}"),
            }
        }
        EventFamily::EarlyFraudWarning => {
            let w = id("issfr");
            Case {
                live: early_fraud_warning(&w, "ch_x", Some("pi_x"), "misc", true),
                test: early_fraud_warning(&w, "ch_x", Some("pi_x"), "made_with_stolen_card", false),
                read: format!("early-fraud-warnings/{w}"),
            }
        }
        // Each is filled in by the work that handles the family.
        EventFamily::Customer => {
            let cus = id("cus");
            Case {
                live: billing_objects::customer(&cus, "live@example.com", &["de"]),
                test: billing_objects::customer(&cus, "test@example.com", &["it"]),
                read: format!("customers/{cus}"),
            }
        }
        EventFamily::Subscription => {
            let sub = id("sub");
            let (shape_live, shape_test) =
                (billing_objects::Shape::Old, billing_objects::Shape::Basil);
            let status = match t {
                T::CustomerSubscriptionDeleted => "canceled",
                T::CustomerSubscriptionPaused => "paused",
                T::CustomerSubscriptionTrialWillEnd => "trialing",
                _ => "past_due",
            };
            Case {
                live: billing_objects::subscription(
                    &sub,
                    "cus_1",
                    "active",
                    1,
                    1_700_000_000,
                    shape_live,
                ),
                test: billing_objects::subscription(
                    &sub,
                    "cus_1",
                    status,
                    3,
                    1_800_000_000,
                    shape_test,
                ),
                read: format!("subscriptions/{sub}"),
            }
        }
        EventFamily::Invoice => {
            let inv = id("in");
            let (status, attempts) = match t {
                T::InvoicePaid | T::InvoicePaymentSucceeded => ("paid", 1),
                T::InvoiceVoided => ("void", 0),
                T::InvoiceMarkedUncollectible => ("uncollectible", 2),
                T::InvoicePaymentFailed | T::InvoicePaymentActionRequired => ("open", 2),
                _ => ("draft", 0),
            };
            let shape = billing_objects::Shape::Basil;
            let mut live = billing_objects::invoice(&inv, "cus_1", "sub_1", "open", 1, shape);
            let mut test =
                billing_objects::invoice(&inv, "cus_1", "sub_1", status, attempts, shape);
            if t == T::InvoiceUpcoming {
                // A preview without an id: nothing is recorded in either mode.
                for o in [&mut live, &mut test] {
                    o.as_object_mut().map(|o| o.remove("id"));
                }
                return Case {
                    live,
                    test,
                    read: "invoices".into(),
                };
            }
            Case {
                live,
                test,
                read: format!("invoices/{inv}"),
            }
        }
    }
}

/// Older accounts send older API versions: half the cases use an older envelope, and the test
/// event carries its expandable fields expanded where the live one had ids.
fn with_version(mut ev: Value, n: usize) -> Value {
    if n % 2 == 1 {
        ev["api_version"] = json!("2019-02-19");
    }
    ev
}

async fn every_handled_type_keeps_live_objects_out_of_reach_of_test_events(backend: Backend) {
    let w = world(backend).await;
    let t0 = now_secs() - 1000;
    for (n, &t) in EventType::ALL.iter().enumerate() {
        let c = case(t, n);
        let is_source = t.family() == EventFamily::Source;
        let live_order = if is_source {
            Some(w.live_source_order(&c.read).await)
        } else {
            None
        };
        w.live(with_version(event_at(t.as_str(), c.live.clone(), t0), n))
            .await;
        let before = match &live_order {
            Some(o) => {
                w.merchant(&w.live_key, &format!("/api/v1/orders/{o}"))
                    .await
            }
            None => w.read(&c.read, "live").await,
        };
        assert_eq!(before.0, StatusCode::OK, "{t}: {}", before.1);

        let mut test = event_at(t.as_str(), c.test.clone(), t0 + 100);
        if t.family() == EventFamily::Dispute {
            test["data"]["object"]["charge"] = json!({"id": "ch_d", "object": "charge"});
        }
        w.test(with_version(test, n + 1)).await;

        let after = match &live_order {
            Some(o) => {
                w.merchant(&w.live_key, &format!("/api/v1/orders/{o}"))
                    .await
            }
            None => w.read(&c.read, "live").await,
        };
        let mut after = after;
        strip_times(&mut after.1);
        let mut before = before;
        strip_times(&mut before.1);
        assert_eq!(after, before, "{t}: the live object changed");
        if !is_source && t.family() != EventFamily::Account && t != EventType::InvoiceUpcoming {
            // The test event was applied, in its own world.
            let (s, test_obj) = w.read(&c.read, "test").await;
            assert_eq!(s, StatusCode::OK, "{t}: {test_obj}");
            assert_eq!(test_obj["livemode"], json!(false), "{t}: {test_obj}");
            assert_ne!(test_obj, before.1, "{t}: the test object is its own");
        }
    }
    // The test source events never charged anything: the one charge made was the live one's.
    let charges = w
        .stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/charges")
        .count();
    assert_eq!(
        charges, 1,
        "only source.chargeable in live creates a charge"
    );
    let (s, accounts) = w.read("accounts", "live").await;
    assert_eq!(s, StatusCode::OK);
    for a in accounts["data"].as_array().unwrap() {
        assert_eq!(a["livemode"], json!(true), "{a}");
        assert_eq!(a["charges_enabled"], json!(true), "{a}");
    }
}

/// The attack the issue opened with: a test-mode `charge.succeeded` whose `source` names a live
/// Source order, and a test event naming a `cs_live_` session. Nothing live moves and no live
/// message is written.
async fn a_test_charge_naming_a_live_source_order_moves_nothing(backend: Backend) {
    let w = world(backend).await;
    let order = w.live_source_order("src_live_victim").await;
    let mut ch = charge(
        "ch_attack",
        "succeeded",
        1999,
        None,
        Some("src_live_victim"),
    );
    ch["livemode"] = json!(false);
    w.test(event_at(
        EventType::ChargeSucceeded.as_str(),
        ch,
        now_secs(),
    ))
    .await;
    let (s, o) = w
        .merchant(&w.live_key, &format!("/api/v1/orders/{order}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["status"], json!("awaiting_payment"), "{o}");
    assert_eq!(o["livemode"], json!(true));

    // A live session, then a test event naming it.
    w.live(event_at(
        EventType::CheckoutSessionCompleted.as_str(),
        checkout_session("cs_live_victim", "unpaid", 5000),
        now_secs() - 10,
    ))
    .await;
    let (_, before) = w.read("checkout-sessions/cs_live_victim", "live").await;
    let ev = event_at(
        EventType::CheckoutSessionCompleted.as_str(),
        checkout_session("cs_live_victim", "paid", 5000),
        now_secs(),
    );
    let id = ev["id"].as_str().unwrap().to_owned();
    w.test(ev).await;
    let (_, after) = w.read("checkout-sessions/cs_live_victim", "live").await;
    assert_eq!(after, before);
    let (s, stored) = w.read(&format!("events/{id}"), "test").await;
    assert_eq!(s, StatusCode::OK, "{stored}");
    assert_eq!(
        stored["status"],
        json!("failed"),
        "refused for good: {stored}"
    );
    let (s, none) = w.read("checkout-sessions/cs_live_victim", "test").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{none}");

    // No message of the live world was written by any of it.
    let (s, msgs) = w.read("notification-messages", "live").await;
    assert_eq!(s, StatusCode::OK, "{msgs}");
    for m in msgs["data"].as_array().unwrap() {
        assert_ne!(m["type"], json!("order.paid"), "{m}");
        assert_ne!(m["type"], json!("order.fulfilled"), "{m}");
    }
}

/// A test event may reuse a live event's id: it is stored apart and suppresses nothing.
async fn a_test_event_cannot_take_a_live_event_id(backend: Backend) {
    let w = world(backend).await;
    let id = unique("evt_shared_");
    let mut test = event_at(
        EventType::PaymentIntentSucceeded.as_str(),
        payment_intent("pi_pre", "succeeded", 100),
        now_secs(),
    );
    test["id"] = json!(id);
    w.test(test).await;
    let mut live = event_at(
        EventType::PaymentIntentSucceeded.as_str(),
        payment_intent("pi_pre", "succeeded", 9900),
        now_secs(),
    );
    live["livemode"] = json!(true);
    live["data"]["object"]["livemode"] = json!(true);
    live["id"] = json!(id);
    let (s, b) = w.app.deliver(&w.company, &w.live_secret, &live).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    w.app.drain().await;
    let (s, pi) = w.read("payment-intents/pi_pre", "live").await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the live event was stored and applied: {pi}"
    );
    assert_eq!(pi["amount"], json!(9900));
    let (_, pi) = w.read("payment-intents/pi_pre", "test").await;
    assert_eq!(pi["amount"], json!(100));
}

/// The merchant API: a key belongs to one mode and reaches nothing of the other.
async fn a_test_key_cannot_read_or_change_live_orders(backend: Backend) {
    let w = world(backend).await;
    let test_key = api_key(&w.app, &w.company, Some("test")).await;
    assert!(test_key.starts_with("pgk_test_"), "{test_key}");
    assert!(w.live_key.starts_with("pgk_live_"));
    let order = w.live_source_order("src_live_1").await;

    let (s, b) = w
        .merchant(&test_key, &format!("/api/v1/orders/{order}"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert_eq!(b["error"]["code"], json!("order_not_found"));
    let (s, b) = w
        .merchant(&test_key, &format!("/api/v1/orders/{order}?mode=live"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], json!("mode_not_allowed"));
    // The company works in live: a test key creates no (live) order.
    let (s, b) = w
        .merchant_post(
            &test_key,
            "/api/v1/orders",
            json!({"source": "src_test_2", "amount": 100, "currency": "eur"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], json!("environment_mismatch"));
    let (s, b) = w
        .merchant(&test_key, "/api/v1/notification-messages?mode=live")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // The live key sees its order; the operator sees it in live and not in test.
    let (s, o) = w
        .merchant(&w.live_key, &format!("/api/v1/orders/{order}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    let (s, _) = w.read(&format!("orders/{order}"), "live").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = w.read(&format!("orders/{order}"), "test").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, list) = w.read("orders", "test").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["data"], json!([]), "{list}");
    // Without ?mode, the company's environment (live).
    let (s, list) = w
        .app
        .admin_get(&format!("/admin/v1/companies/{}/orders", w.company))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["data"][0]["id"], json!(order), "{list}");
    // A mode that is neither is a clear 400.
    let (s, b) = w.read("orders", "staging").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["error"]["code"].is_string(), "{b}");
}

/// The back office's *Send test event* with the company in live: through the real intake,
/// workers and outbox to the merchant's receiver. Its event is a test-mode event, it changes no
/// live row, and every message it causes says `livemode: false` and `test_event: true`.
async fn send_test_event_in_the_live_environment_touches_nothing_live(backend: Backend) {
    let w = world(backend).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let (s, b) = w
        .app
        .admin_post(
            &format!("/admin/v1/companies/{}/notification-endpoints", w.company),
            json!({"url": format!("{}/hooks", receiver.uri()), "event_types": []}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (email, password) = w.app.company_user(&w.company, "admin").await;
    let browser = Browser::new(&w.app);
    browser.sign_in(&email, &password).await;
    browser.get("/app/connect").await;
    let sent = browser.post_form("/app/connect/test-event", &[]).await;
    let sent = match sent.location() {
        Some(to) if sent.status == StatusCode::SEE_OTHER => browser.get(to).await,
        _ => sent,
    };
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    w.app.drain().await;
    w.app.drain_notifications().await;

    let (s, events) = w.read("events", "test").await;
    assert_eq!(s, StatusCode::OK, "{events}");
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0]["id"]
            .as_str()
            .unwrap()
            .starts_with(paygate_router::handlers::TEST_EVENT_ID_PREFIX),
        "{events:?}"
    );
    assert_eq!(events[0]["livemode"], json!(false));
    assert_eq!(events[0]["status"], json!("processed"), "{events:?}");
    for what in [
        "events",
        "payment-intents",
        "notification-messages",
        "orders",
    ] {
        let (s, live) = w.read(what, "live").await;
        assert_eq!(s, StatusCode::OK, "{live}");
        assert_eq!(live["data"], json!([]), "no live {what}: {live}");
    }
    let got = receiver.received_requests().await.unwrap();
    assert!(
        !got.is_empty(),
        "the test event's message reached the receiver"
    );
    for r in &got {
        let m: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(m["livemode"], json!(false), "{m}");
        assert_eq!(m["test_event"], json!(true), "{m}");
        assert_eq!(m["data"]["object"]["livemode"], json!(false), "{m}");
    }
}

db_tests!(
    send_test_event_in_the_live_environment_touches_nothing_live,
    every_handled_type_keeps_live_objects_out_of_reach_of_test_events,
    a_test_charge_naming_a_live_source_order_moves_nothing,
    a_test_event_cannot_take_a_live_event_id,
    a_test_key_cannot_read_or_change_live_orders,
);
