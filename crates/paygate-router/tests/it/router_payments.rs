//! The payment side of the event router, through the real intake and read back through the
//! admin API: Stripe's own sample payloads for every handled type; flows in every order with
//! every event delivered twice and then replayed; disputes flagging payments, charges and
//! orders; legacy Sources charged exactly once; the workers' retries, permanent failures and
//! leases; two worker pools racing on the same objects; the operator's lists.

use std::sync::Arc;
use std::time::Duration;

use paygate_db::entities::{inbox_event, order, source as source_row};
use paygate_router::worker::{WorkerConfig, WorkerPool};
use paygate_testkit::objects::{
    FIXTURE_EVENT_TYPES, charge, dispute, event_at, fixture_event, fixture_object, issuing_card,
    issuing_cardholder, payment_intent, payment_method, source,
};
use paygate_testkit::{
    Backend, Options, TestApp, db_tests, event, new_secret, now_secs, permutations, unique,
    without_object_field,
};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::deliver_together;

async fn deliver(app: &TestApp, company: &str, secret: &str, ev: &Value) {
    let (s, b) = app.deliver(company, secret, ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// GET through the admin API, 200 asserted.
async fn get(app: &TestApp, path: &str) -> Value {
    let (s, b) = app.admin_get(path).await;
    assert_eq!(s, StatusCode::OK, "GET {path}: {b}");
    b
}

async fn replay(app: &TestApp, company: &str, event_id: &str) {
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/events/{event_id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b, json!({"id": event_id, "status": "pending"}));
}

async fn event_row(app: &TestApp, company: &str, id: &str) -> Value {
    get(app, &format!("/admin/v1/companies/{company}/events/{id}")).await
}

/// The object without the bookkeeping that legitimately changes when nothing else does.
fn state_of(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("updated_at");
    }
    v
}

fn id_of(ev: &Value) -> &str {
    ev["id"].as_str().unwrap()
}

/// An app whose workers apply every event (`PAYGATE_APPLY_AT_INTAKE=false`): for the tests of
/// the workers' own batches, leases and races, which the intake would otherwise leave nothing.
fn workers_apply_everything(backend: Backend) -> Options {
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.apply_at_intake = false;
    opts
}

/// A worker pool of its own over the app's database (as on another replica).
fn pool(app: &TestApp, config: WorkerConfig) -> WorkerPool {
    WorkerPool::new(
        app.app.db.clone(),
        app.app.tenants.clone(),
        app.app.stripe.clone(),
        config,
        Arc::new(tokio::sync::Notify::new()),
        app.app.metrics.clone(),
    )
}

async fn insert_order(
    app: &TestApp,
    company: &str,
    status: &str,
    source_id: Option<&str>,
    payment_intent_id: Option<&str>,
    charge_id: Option<&str>,
) -> String {
    let pk = app.app.tenants.company(company).await.unwrap().id;
    let id = unique("ord_");
    let now = paygate_db::now_ms();
    order::ActiveModel {
        id: Set(id.clone()),
        company_pk: Set(pk),
        livemode: Set(false),
        kind: Set(if source_id.is_some() {
            "source"
        } else {
            "checkout"
        }
        .into()),
        status: Set(status.into()),
        source_id: Set(source_id.map(str::to_owned)),
        payment_intent_id: Set(payment_intent_id.map(str::to_owned)),
        charge_id: Set(charge_id.map(str::to_owned)),
        amount: Set(Some(2500)),
        currency: Set(Some("eur".into())),
        description: Set(Some("Order from the tests".into())),
        metadata: Set("{}".into()),
        disputed: Set(false),
        status_created: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.app.db)
    .await
    .unwrap();
    id
}

/// What each of Stripe's sample payloads leaves behind, read through the admin API.
async fn fixture_events_are_handled_as_stripe_sends_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for &t in FIXTURE_EVENT_TYPES {
        if t.starts_with("checkout.session.") {
            continue; // Checkout calls Stripe; its tests live with fulfillment.
        }
        // A company per sample: the samples reuse object ids across types.
        let secret = new_secret();
        let c = app.company_with_secret(&secret).await;
        let ev = fixture_event(t);
        deliver(&app, &c, &secret, &ev).await;
        // Delivered again by Stripe: stored once, handled once.
        deliver(&app, &c, &secret, &ev).await;
        // Handled once: at intake (SQLite) or by the workers, one attempt either way.
        app.drain().await;
        let e = event_row(&app, &c, id_of(&ev)).await;
        let expected = if t.starts_with("source.") {
            "ignored" // no order is paid with the sample's source
        } else {
            "processed"
        };
        assert_eq!(
            (e["status"].as_str(), e["attempts"].as_i64()),
            (Some(expected), Some(1)),
            "{t}: {e}"
        );
        let base = format!("/admin/v1/companies/{c}");
        let pi24 = format!("{base}/payment-intents/pi_000000000000000000000000");
        match t {
            "payment_intent.created" => {
                let pi = get(&app, &pi24).await;
                assert_eq!(
                    (&pi["status"], &pi["amount"], &pi["currency"]),
                    (
                        &json!("requires_payment_method"),
                        &json!(2000),
                        &json!("usd")
                    )
                );
            }
            "payment_intent.processing" => {
                let pi = get(&app, &format!("{base}/payment-intents/pi_00000000000000")).await;
                assert_eq!(
                    (&pi["status"], &pi["amount"], &pi["customer"]),
                    (
                        &json!("processing"),
                        &json!(900),
                        &json!("cus_00000000000000")
                    )
                );
            }
            "payment_intent.amount_capturable_updated" => {
                let pi = get(&app, &pi24).await;
                assert_eq!(
                    (&pi["status"], &pi["amount_capturable"]),
                    (&json!("requires_capture"), &json!(2000))
                );
            }
            "payment_intent.succeeded" => {
                let pi = get(&app, &pi24).await;
                assert_eq!(
                    (&pi["status"], &pi["amount_received"]),
                    (&json!("succeeded"), &json!(2000))
                );
            }
            "payment_intent.payment_failed" => {
                let pi = get(&app, &pi24).await;
                assert_eq!(pi["status"], "requires_payment_method");
                assert_eq!(pi["last_payment_error"]["code"], "card_declined");
                assert_eq!(pi["last_payment_error"]["decline_code"], "generic_decline");
                assert!(pi["last_payment_error"]["message"].is_string(), "{pi}");
            }
            "payment_intent.canceled" => {
                let pi = get(&app, &pi24).await;
                assert_eq!(
                    (&pi["status"], &pi["cancellation_reason"]),
                    (&json!("canceled"), &json!("requested_by_customer"))
                );
            }
            "charge.succeeded" | "charge.failed" => {
                let ch = get(&app, &format!("{base}/charges/ch_000000000000000000000000")).await;
                assert_eq!(ch["payment_intent"], "pi_000000000000000000000000");
                assert_eq!(ch["amount"], 2000);
                if t == "charge.failed" {
                    assert_eq!(
                        (&ch["status"], &ch["failure_code"]),
                        (&json!("failed"), &json!("card_declined"))
                    );
                } else {
                    assert_eq!(ch["status"], "succeeded");
                }
            }
            "charge.pending" => {
                // A Dashboard sample: its generic object says `succeeded`; the row says what
                // the object says, with the card (not a Source) it was paid with left out.
                let ch = get(&app, &format!("{base}/charges/ch_00000000000000")).await;
                assert_eq!((&ch["amount"], &ch["source"]), (&json!(100), &Value::Null));
            }
            "charge.dispute.created" => {
                let d = get(
                    &app,
                    &format!("{base}/disputes/dp_000000000000000000000000"),
                )
                .await;
                assert_eq!(
                    (
                        &d["status"],
                        &d["reason"],
                        &d["amount"],
                        &d["needs_response"]
                    ),
                    (
                        &json!("warning_needs_response"),
                        &json!("fraudulent"),
                        &json!(100),
                        &json!(true)
                    )
                );
                assert_eq!(d["evidence_due_by"], "2022-04-04T23:59:59Z");
                assert_eq!(d["charge"], "ch_000000000000000000000000");
            }
            "charge.dispute.updated" | "charge.dispute.closed" => {
                let d = get(&app, &format!("{base}/disputes/dp_00000000000000")).await;
                let status = if t.ends_with("closed") {
                    "won"
                } else {
                    "under_review"
                };
                assert_eq!(
                    (&d["status"], &d["reason"]),
                    (&json!(status), &json!("general"))
                );
            }
            "charge.dispute.funds_withdrawn" | "charge.dispute.funds_reinstated" => {
                let d = get(&app, &format!("{base}/disputes/dp_00000000000000")).await;
                assert_eq!(d["funds_withdrawn"], 25000, "{t}: {d}");
                let back = if t.ends_with("reinstated") { 25000 } else { 0 };
                assert_eq!(d["funds_reinstated"], back, "{t}: {d}");
            }
            "account.updated" => {
                let a = get(&app, &format!("{base}/accounts")).await;
                let a = &a["data"][0];
                assert_eq!(a["id"], "acct_1Fg9jUA3kq9o1aTc");
                assert_eq!(
                    (
                        &a["charges_enabled"],
                        &a["payouts_enabled"],
                        &a["details_submitted"]
                    ),
                    (&json!(false), &json!(false), &json!(false))
                );
                assert_eq!(
                    a["requirements"]["disabled_reason"],
                    "requirements.past_due"
                );
                let due = a["requirements"]["currently_due"].as_array().unwrap();
                assert_eq!(due.len(), 7, "{a}");
                assert!(due.contains(&json!("external_account")), "{a}");
            }
            "payment_method.automatically_updated" => {
                let pm = get(&app, &format!("{base}/payment-methods/pm_1M9HtjJDP...")).await;
                assert_eq!(
                    (&pm["customer"], &pm["card"]),
                    (
                        &json!("cus_Mt3..."),
                        &json!({"brand": "mastercard", "last4": "0123", "exp_month": 11, "exp_year": 2027})
                    )
                );
            }
            "source.chargeable" | "source.failed" | "source.canceled" => {
                // The source is recorded even though no order waits for it, with the status
                // the event stands for (the sample object says `pending`).
                let pk = app.app.tenants.company(&c).await.unwrap().id;
                let row = source_row::Entity::find()
                    .filter(source_row::Column::CompanyPk.eq(pk))
                    .filter(source_row::Column::StripeId.eq("src_00000000000000"))
                    .one(&app.app.db)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(row.status, t.trim_start_matches("source."));
            }
            other => panic!("no expectation for {other}"),
        }
    }
    // Issuing: no event sample exists, only the objects.
    let secret = new_secret();
    let c = app.company_with_secret(&secret).await;
    let card = fixture_object("issuing.card");
    let holder = fixture_object("issuing.cardholder");
    deliver(&app, &c, &secret, &event("issuing_card.updated", card)).await;
    deliver(
        &app,
        &c,
        &secret,
        &event("issuing_cardholder.updated", holder),
    )
    .await;
    app.drain().await;
    let ic = get(
        &app,
        &format!("/admin/v1/companies/{c}/issuing/ic_1Pgag5B7WZ01zgkWephORn8N"),
    )
    .await;
    assert_eq!(
        (&ic["kind"], &ic["status"]),
        (&json!("card"), &json!("active"))
    );
    let ich = get(
        &app,
        &format!("/admin/v1/companies/{c}/issuing/ich_1Pgag4B7WZ01zgkWdPVfBngi"),
    )
    .await;
    assert_eq!(
        (&ich["kind"], &ich["status"]),
        (&json!("cardholder"), &json!("active"))
    );
}

/// All 6 orders of (created, processing, succeeded), each event delivered twice and handled as
/// it arrives, then every event replayed: the same payment every time.
async fn payment_intent_flows_converge_through_duplicates_and_replays(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs() - 100;
    let mut finals = Vec::new();
    for (n, perm) in permutations(&[0usize, 1, 2]).into_iter().enumerate() {
        let id = format!("pi_flow_{n}");
        let mut created = payment_intent(&id, "requires_payment_method", 2000);
        created["customer"] = json!("cus_flow");
        let mut processing = payment_intent(&id, "processing", 2000);
        processing["customer"] = json!("cus_flow");
        let mut succeeded = payment_intent(&id, "succeeded", 2000);
        succeeded["customer"] = json!("cus_flow");
        let evs = [
            event_at("payment_intent.created", created, t),
            event_at("payment_intent.processing", processing, t + 1),
            event_at("payment_intent.succeeded", succeeded, t + 2),
        ];
        for &i in &perm {
            deliver(&app, &company, &secret, &evs[i]).await;
            deliver(&app, &company, &secret, &evs[i]).await;
            app.drain().await;
        }
        let path = format!("/admin/v1/companies/{company}/payment-intents/{id}");
        let first = state_of(get(&app, &path).await);
        // Every event handled a second time, in the same order.
        for &i in &perm {
            replay(&app, &company, id_of(&evs[i])).await;
            app.drain().await;
        }
        let again = state_of(get(&app, &path).await);
        assert_eq!(first, again, "a replay changed the payment ({perm:?})");
        for ev in &evs {
            let e = event_row(&app, &company, id_of(ev)).await;
            assert_eq!(
                (e["status"].as_str(), e["attempts"].as_i64()),
                (Some("processed"), Some(1))
            );
        }
        let mut v = first;
        v["id"] = json!("pi_flow");
        finals.push((perm, v));
    }
    let (_, reference) = &finals[0];
    assert_eq!(reference["status"], "succeeded");
    assert_eq!(reference["amount_received"], 2000);
    assert_eq!(reference["customer"], "cus_flow");
    assert_eq!(reference["state_created"], paygate_web::rfc3339_s(t + 2));
    for (perm, v) in &finals {
        assert_eq!(v, reference, "order {perm:?}");
    }
}

/// All 24 orders of (created, updated, funds_withdrawn, closed) for a dispute, each event
/// delivered twice (the second time under a new event id, as a re-sent event would be handled
/// again), then replayed: the same dispute every time; its payment, charge and order flagged.
async fn dispute_flows_converge_and_flag_payment_charge_and_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs() - 100;
    let mut finals = Vec::new();
    for (n, perm) in permutations(&[0usize, 1, 2, 3]).into_iter().enumerate() {
        let (id, ch, pi) = (
            format!("dp_flow_{n}"),
            format!("ch_flow_{n}"),
            format!("pi_flow_{n}"),
        );
        deliver(
            &app,
            &company,
            &secret,
            &event_at(
                "payment_intent.succeeded",
                payment_intent(&pi, "succeeded", 5000),
                t - 10,
            ),
        )
        .await;
        deliver(
            &app,
            &company,
            &secret,
            &event_at(
                "charge.succeeded",
                charge(&ch, "succeeded", 5000, Some(&pi), None),
                t - 10,
            ),
        )
        .await;
        let order_id = insert_order(&app, &company, "fulfilled", None, Some(&pi), None).await;
        app.drain().await;
        let d =
            |status: &str, withdrawn: bool| dispute(&id, status, &ch, &pi, 5000, withdrawn, false);
        let evs = [
            event_at("charge.dispute.created", d("needs_response", false), t),
            event_at("charge.dispute.updated", d("under_review", true), t + 1),
            event_at(
                "charge.dispute.funds_withdrawn",
                d("needs_response", true),
                t + 2,
            ),
            event_at("charge.dispute.closed", d("lost", true), t + 3),
        ];
        for &i in &perm {
            deliver(&app, &company, &secret, &evs[i]).await;
            let mut resent = evs[i].clone();
            resent["id"] = json!(unique("evt_resent_"));
            deliver(&app, &company, &secret, &resent).await;
        }
        app.drain().await;
        let path = format!("/admin/v1/companies/{company}/disputes/{id}");
        let first = state_of(get(&app, &path).await);
        for &i in &perm {
            replay(&app, &company, id_of(&evs[i])).await;
        }
        app.drain().await;
        assert_eq!(
            first,
            state_of(get(&app, &path).await),
            "a replay changed the dispute"
        );
        let base = format!("/admin/v1/companies/{company}");
        assert_eq!(
            get(&app, &format!("{base}/payment-intents/{pi}")).await["disputed"],
            true
        );
        assert_eq!(
            get(&app, &format!("{base}/charges/{ch}")).await["disputed"],
            true
        );
        let o = get(&app, &format!("{base}/orders/{order_id}")).await;
        assert_eq!(
            (&o["disputed"], &o["status"]),
            (&json!(true), &json!("fulfilled"))
        );
        let mut v = first;
        for k in ["id", "charge", "payment_intent"] {
            v[k] = json!(k);
        }
        finals.push((perm, v));
    }
    assert_eq!(finals.len(), 24);
    let (_, reference) = &finals[0];
    assert_eq!(
        (
            &reference["status"],
            &reference["funds_withdrawn"],
            &reference["funds_reinstated"]
        ),
        (&json!("lost"), &json!(5000), &json!(0))
    );
    assert_eq!(reference["needs_response"], false);
    for (perm, v) in &finals {
        assert_eq!(v, reference, "order {perm:?}");
    }
}

/// Money reinstated after a won dispute, and the dispute of a Source order found by its charge;
/// flags never go back.
async fn dispute_funds_and_flags_only_grow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs() - 100;
    let order_id = insert_order(
        &app,
        &company,
        "paid",
        Some("src_disp"),
        None,
        Some("ch_src_disp"),
    )
    .await;
    let d =
        |status: &str, w: bool, r: bool| dispute("dp_src", status, "ch_src_disp", "", 2500, w, r);
    let mut evs = vec![
        event_at(
            "charge.dispute.created",
            d("needs_response", false, false),
            t,
        ),
        event_at(
            "charge.dispute.funds_withdrawn",
            d("needs_response", true, false),
            t + 1,
        ),
        event_at("charge.dispute.closed", d("won", true, true), t + 3),
        event_at(
            "charge.dispute.funds_reinstated",
            d("won", true, true),
            t + 3,
        ),
    ];
    for e in &mut evs {
        e["data"]["object"]["payment_intent"] = Value::Null;
    }
    // Newest first: the worst order of arrival.
    for e in evs.iter().rev() {
        deliver(&app, &company, &secret, e).await;
        app.drain().await;
    }
    let base = format!("/admin/v1/companies/{company}");
    let dsp = get(&app, &format!("{base}/disputes/dp_src")).await;
    assert_eq!(
        (
            &dsp["status"],
            &dsp["funds_withdrawn"],
            &dsp["funds_reinstated"],
            &dsp["payment_intent"]
        ),
        (&json!("won"), &json!(2500), &json!(2500), &Value::Null)
    );
    let o = get(&app, &format!("{base}/orders/{order_id}")).await;
    assert_eq!(
        (&o["disputed"], &o["status"]),
        (&json!(true), &json!("paid"))
    );
    // A reinstatement reported without balance transactions is recorded from the amount.
    let mut bare = dispute("dp_bare", "won", "ch_x", "pi_x", 700, false, false);
    bare["balance_transactions"] = json!([]);
    deliver(
        &app,
        &company,
        &secret,
        &event_at("charge.dispute.funds_reinstated", bare, t),
    )
    .await;
    app.drain().await;
    let b = get(&app, &format!("{base}/disputes/dp_bare")).await;
    assert_eq!(
        (&b["funds_withdrawn"], &b["funds_reinstated"]),
        (&json!(700), &json!(700))
    );
}

/// Seed 004 end to end with Stripe's own `source.chargeable` sample: three deliveries (one of
/// them under another event id) and a replay create one charge at Stripe, with the order id as
/// Idempotency-Key; `charge.pending` does not confirm the order, `charge.succeeded` does.
async fn source_order_is_charged_once_and_confirmed_by_its_charge(backend: Backend) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let src = "src_00000000000000";
    let order_id = insert_order(&app, &company, "awaiting_payment", Some(src), None, None).await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_json(charge(
            "ch_seed4",
            "pending",
            2500,
            None,
            Some(src),
        )))
        .mount(&stripe)
        .await;
    let chargeable = fixture_event("source.chargeable");
    let mut resent = chargeable.clone();
    resent["id"] = json!(unique("evt_resent_"));
    deliver(&app, &company, &secret, &chargeable).await;
    deliver(&app, &company, &secret, &chargeable).await;
    deliver(&app, &company, &secret, &resent).await;
    app.drain().await;
    replay(&app, &company, id_of(&chargeable)).await;
    app.drain().await;
    let posts: Vec<_> = stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "exactly one charge created at Stripe");
    let p = &posts[0];
    assert_eq!(
        p.headers.get("Idempotency-Key").unwrap().to_str().unwrap(),
        order_id
    );
    let body = String::from_utf8_lossy(&p.body).to_string();
    for part in [
        "amount=2500",
        "currency=eur",
        "source=src_00000000000000",
        "description=Order%20from%20the%20tests",
    ] {
        assert!(body.contains(part), "{part} missing in {body}");
    }
    assert!(
        body.contains(&format!("metadata[order_id]={order_id}")),
        "{body}"
    );
    assert!(
        p.headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer sk_test_"),
        "the company's test key"
    );
    let base = format!("/admin/v1/companies/{company}");
    let o = get(&app, &format!("{base}/orders/{order_id}")).await;
    assert_eq!(
        (&o["status"], &o["charge"]),
        (&json!("charging"), &json!("ch_seed4"))
    );
    // charge.pending: recorded, the order still waits.
    deliver(
        &app,
        &company,
        &secret,
        &event(
            "charge.pending",
            charge("ch_seed4", "pending", 2500, None, Some(src)),
        ),
    )
    .await;
    app.drain().await;
    assert_eq!(
        get(&app, &format!("{base}/orders/{order_id}")).await["status"],
        "charging"
    );
    assert_eq!(
        get(&app, &format!("{base}/charges/ch_seed4")).await["source"],
        src
    );
    deliver(
        &app,
        &company,
        &secret,
        &event(
            "charge.succeeded",
            charge("ch_seed4", "succeeded", 2500, None, Some(src)),
        ),
    )
    .await;
    // A late charge.failed of the same charge and a late source.failed change nothing.
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "charge.failed",
            charge("ch_seed4", "failed", 2500, None, Some(src)),
            now_secs() - 60,
        ),
    )
    .await;
    deliver(&app, &company, &secret, &fixture_event("source.failed")).await;
    app.drain().await;
    let o = get(&app, &format!("{base}/orders/{order_id}")).await;
    assert_eq!(o["status"], "paid");
    assert_eq!(
        get(&app, &format!("{base}/charges/ch_seed4")).await["status"],
        "succeeded"
    );
    // The charge of a Checkout payment (with a payment intent) never touches a Source order.
    let other = insert_order(
        &app,
        &company,
        "awaiting_payment",
        Some("src_other"),
        None,
        None,
    )
    .await;
    deliver(
        &app,
        &company,
        &secret,
        &event(
            "charge.failed",
            charge("ch_card", "failed", 100, Some("pi_card"), None),
        ),
    )
    .await;
    app.drain().await;
    assert_eq!(
        get(&app, &format!("{base}/orders/{other}")).await["status"],
        "awaiting_payment"
    );
    assert_eq!(
        stripe
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .count(),
        1
    );
}

/// A failing Stripe call is retried with backoff until the attempts run out, its error visible;
/// a payload that cannot be handled fails at once.
async fn retries_run_out_and_bad_payloads_fail_at_once(backend: Backend) {
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({"error": {
            "type": "card_error", "code": "card_declined", "message": "Your card was declined."
        }})))
        .mount(&stripe)
        .await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let order_id = insert_order(
        &app,
        &company,
        "awaiting_payment",
        Some("src_declined"),
        None,
        None,
    )
    .await;
    let workers = pool(
        &app,
        WorkerConfig {
            max_attempts: 3,
            backoff_base: Duration::ZERO,
            ..WorkerConfig::default()
        },
    );
    let chargeable = event(
        "source.chargeable",
        source("src_declined", "chargeable", 2500),
    );
    let broken = without_object_field(
        event(
            "payment_intent.succeeded",
            payment_intent("pi_broken", "succeeded", 1),
        ),
        "status",
    );
    deliver(&app, &company, &secret, &chargeable).await;
    deliver(&app, &company, &secret, &broken).await;
    // Backoff zero: each drain handles what is due, retries included, until the attempts run out.
    workers.drain().await.unwrap();
    let e = event_row(&app, &company, id_of(&chargeable)).await;
    assert_eq!(
        (e["status"].as_str(), e["attempts"].as_i64()),
        (Some("failed"), Some(3)),
        "{e}"
    );
    let err = e["last_error"].as_str().unwrap();
    assert!(err.contains("Your card was declined"), "{err}");
    assert!(!err.contains("sk_test_"), "no secret in errors: {err}");
    let b = event_row(&app, &company, id_of(&broken)).await;
    assert_eq!(
        (b["status"].as_str(), b["attempts"].as_i64()),
        (Some("failed"), Some(1)),
        "{b}"
    );
    assert!(
        b["last_error"]
            .as_str()
            .unwrap()
            .contains("data.object.status is missing"),
        "{b}"
    );
    assert_eq!(
        stripe.received_requests().await.unwrap().len(),
        3,
        "one call per attempt, none after the last"
    );
    let base = format!("/admin/v1/companies/{company}");
    assert_eq!(
        get(&app, &format!("{base}/orders/{order_id}")).await["status"],
        "awaiting_payment"
    );
    let (_, failed) = app.admin_get(&format!("{base}/events?status=failed")).await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 2, "{failed}");
    // With the app's own backoff, a failure is scheduled for later, not retried at once.
    replay(&app, &company, id_of(&chargeable)).await;
    assert_eq!(app.drain().await, 1);
    let e = event_row(&app, &company, id_of(&chargeable)).await;
    assert_eq!(
        (e["status"].as_str(), e["attempts"].as_i64()),
        (Some("pending"), Some(1)),
        "{e}"
    );
}

/// A worker that claimed events and died holds them only until its lease runs out; then another
/// worker handles them, and the dead one's late outcome is not recorded over it.
async fn a_dead_workers_events_are_claimed_again_after_the_lease(backend: Backend) {
    let app = TestApp::start(workers_apply_everything(backend)).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let ev = event(
        "payment_intent.processing",
        payment_intent("pi_lease", "processing", 10),
    );
    deliver(&app, &company, &secret, &ev).await;
    let short = WorkerConfig {
        lease: Duration::from_millis(800),
        ..WorkerConfig::default()
    };
    let dead = pool(&app, short.clone());
    let claimed = dead.claim().await.unwrap();
    assert_eq!(claimed.len(), 1);
    let row = inbox_event::Entity::find_by_id(claimed[0].id)
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.locked_by.as_deref(), Some(dead.id()));
    let alive = pool(&app, short);
    assert_eq!(alive.drain().await.unwrap(), 0, "leased to the dead worker");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(alive.drain().await.unwrap(), 1, "the lease ran out");
    let e = event_row(&app, &company, id_of(&ev)).await;
    assert_eq!(
        (e["status"].as_str(), e["attempts"].as_i64()),
        (Some("processed"), Some(1))
    );
    // The dead worker wakes up and finishes its copy: nothing changes.
    dead.process(&claimed[0]).await.unwrap();
    let e2 = event_row(&app, &company, id_of(&ev)).await;
    assert_eq!(e, e2);
    let pi = get(
        &app,
        &format!("/admin/v1/companies/{company}/payment-intents/pi_lease"),
    )
    .await;
    assert_eq!(pi["status"], "processing");
}

/// A claim reads the oldest due events in order through one index and stops at its batch,
/// however large the backlog: on PostgreSQL also in the plan it keeps for the prepared claim
/// after five executions (a generic plan, which cannot know the statement's values). Before,
/// both backends read every pending event and sorted them all to keep the first batch: the
/// larger the backlog to drain, the slower each claim.
async fn a_claim_reads_a_batch_not_the_whole_backlog(backend: Backend) {
    use sea_orm::sea_query::{PostgresQueryBuilder, QueryBuilder};
    use sea_orm::{
        ConnectionTrait, DbBackend, QueryOrder, QuerySelect, Statement, TransactionTrait,
    };
    let app = TestApp::start(workers_apply_everything(backend)).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let events: Vec<Value> = (0..300)
        .map(|i| {
            event(
                "payment_intent.processing",
                payment_intent(&format!("pi_backlog_{i}"), "processing", 10 + i),
            )
        })
        .collect();
    for chunk in events.chunks(50) {
        deliver_together(&app, &company, &secret, chunk).await;
    }
    let worker = pool(
        &app,
        WorkerConfig {
            batch_size: 20,
            ..WorkerConfig::default()
        },
    );
    let claim = worker.claim_statement();
    let db = &app.app.db;
    let plan: Vec<String> = match backend {
        Backend::Sqlite => {
            let explain = Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {}", claim.sql),
                claim.values.clone().expect("the claim binds its values"),
            );
            db.query_all_raw(explain)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String>("", "detail").unwrap())
                .collect()
        }
        Backend::Postgres => {
            let values = claim.values.clone().expect("the claim binds its values");
            let literals: Vec<String> = values
                .0
                .iter()
                .map(|v| PostgresQueryBuilder.value_to_string(v))
                .collect();
            let txn = db.begin().await.unwrap();
            txn.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan")
                .await
                .unwrap();
            txn.execute_unprepared(&format!("PREPARE claim AS {}", claim.sql))
                .await
                .unwrap();
            let rows = txn
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("EXPLAIN EXECUTE claim({})", literals.join(", ")),
                ))
                .await
                .unwrap();
            txn.execute_unprepared("DEALLOCATE claim").await.unwrap();
            txn.rollback().await.unwrap();
            rows.iter()
                .map(|r| r.try_get::<String>("", "QUERY PLAN").unwrap())
                .collect()
        }
    };
    let plan = plan.join("\n");
    assert!(plan.contains("ix_inbox_events_status_id"), "{plan}");
    assert!(
        !plan.contains("Sort") && !plan.contains("TEMP B-TREE"),
        "the claim sorts the backlog:\n{plan}"
    );
    // And it takes the oldest, in order.
    let oldest: Vec<i64> = inbox_event::Entity::find()
        .select_only()
        .column(inbox_event::Column::Id)
        .filter(inbox_event::Column::Status.eq("pending"))
        .order_by_asc(inbox_event::Column::Id)
        .limit(20)
        .into_tuple()
        .all(db)
        .await
        .unwrap();
    let claimed: Vec<i64> = worker.claim().await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(claimed, oldest);
}

/// Two worker pools (two replicas) with small batches take events of the same new objects at
/// once: the inserts race, the conditional updates race; every event is handled, and the
/// objects end as if the events had come one by one.
async fn two_pools_racing_on_the_same_objects_converge(backend: Backend) {
    let app = TestApp::start(workers_apply_everything(backend)).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs() - 100;
    let n = 12;
    // An object's events one after the other, so each pool's batch of 2 holds events of the
    // object the other pool's batch is also about.
    for k in 0..n {
        let (pi, ch) = (format!("pi_race_{k}"), format!("ch_race_{k}"));
        let evs = [
            event_at(
                "payment_intent.succeeded",
                payment_intent(&pi, "succeeded", 100),
                t + 2,
            ),
            event_at(
                "charge.pending",
                charge(&ch, "pending", 100, Some(&pi), None),
                t,
            ),
            event_at(
                "payment_intent.created",
                payment_intent(&pi, "requires_payment_method", 100),
                t,
            ),
            event_at(
                "charge.succeeded",
                charge(&ch, "succeeded", 100, Some(&pi), None),
                t + 2,
            ),
            event_at(
                "payment_intent.processing",
                payment_intent(&pi, "processing", 100),
                t + 1,
            ),
            event_at(
                "charge.pending",
                charge(&ch, "pending", 100, Some(&pi), None),
                t + 1,
            ),
        ];
        // Rotate so the racing pair differs from object to object.
        for i in 0..evs.len() {
            deliver(&app, &company, &secret, &evs[(i + k) % evs.len()]).await;
        }
    }
    // One attempt each, so a lost race cannot hide behind a successful retry.
    let config = WorkerConfig {
        batch_size: 2,
        max_attempts: 1,
        ..WorkerConfig::default()
    };
    let (a, b) = (pool(&app, config.clone()), pool(&app, config));
    let (ra, rb) = tokio::join!(a.drain(), b.drain());
    assert_eq!(ra.unwrap() + rb.unwrap(), 6 * n);
    // Two transactions locking the same rows in opposite orders is a deadlock PostgreSQL breaks
    // by failing one of them: a retry's business. Losing a race to insert or to update is not.
    let failed = inbox_event::Entity::find()
        .filter(inbox_event::Column::Status.eq("failed"))
        .all(&app.app.db)
        .await
        .unwrap();
    for f in &failed {
        let err = f.last_error.as_deref().unwrap_or_default();
        assert!(err.contains("deadlock"), "{}: {err}", f.event_type);
        replay(&app, &company, &f.stripe_event_id).await;
    }
    app.drain().await;
    let stats = get(&app, &format!("/admin/v1/companies/{company}/events/stats")).await;
    assert_eq!(
        (&stats["processed"], &stats["failed"], &stats["pending"]),
        (&json!(6 * n), &json!(0), &json!(0)),
        "{stats}"
    );
    for k in 0..n {
        let base = format!("/admin/v1/companies/{company}");
        let pi = get(&app, &format!("{base}/payment-intents/pi_race_{k}")).await;
        assert_eq!(
            (&pi["status"], &pi["amount_received"]),
            (&json!("succeeded"), &json!(100)),
            "{pi}"
        );
        let ch = get(&app, &format!("{base}/charges/ch_race_{k}")).await;
        assert_eq!(ch["status"], "succeeded", "{ch}");
    }
}

/// The operator's views: filters, cursor pagination, disputes needing a response first, other
/// companies' objects invisible, accounts, payment methods, Issuing, and replay's errors.
async fn operator_views_filter_page_and_isolate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let t = now_secs() - 100;
    for k in 0..5 {
        let st = if k % 2 == 0 {
            "succeeded"
        } else {
            "processing"
        };
        deliver(
            &app,
            &company,
            &secret,
            &event_at(
                "payment_intent.created",
                payment_intent(&format!("pi_list_{k}"), st, 100 + k),
                t,
            ),
        )
        .await;
    }
    let disputes = [
        ("dp_a", "under_review", 1_900_000_300),
        ("dp_b", "needs_response", 1_900_000_200),
        ("dp_c", "won", 1_900_000_100),
        ("dp_d", "warning_needs_response", 1_900_000_100),
        ("dp_e", "lost", 1_900_000_000),
    ];
    for (id, st, due) in disputes {
        let mut d = dispute(id, st, "ch_l", "pi_l", 100, false, false);
        d["evidence_details"]["due_by"] = json!(due);
        deliver(
            &app,
            &company,
            &secret,
            &event_at("charge.dispute.created", d, t),
        )
        .await;
    }
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "account.updated",
            paygate_testkit::objects::account("acct_l", true, &[]),
            t,
        ),
    )
    .await;
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "payment_method.automatically_updated",
            payment_method("pm_l", "cus_l", "visa", "4242", 1, 2030),
            t,
        ),
    )
    .await;
    deliver(
        &app,
        &company,
        &secret,
        &event_at("issuing_card.updated", issuing_card("ic_l", "canceled"), t),
    )
    .await;
    deliver(
        &app,
        &company,
        &secret,
        &event_at(
            "issuing_cardholder.updated",
            issuing_cardholder("ich_l", "blocked"),
            t,
        ),
    )
    .await;
    app.drain().await;
    let base = format!("/admin/v1/companies/{company}");

    // Payment intents: newest first, pages of 2, a status filter.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{base}/payment-intents?limit=2&cursor={c}"),
            None => format!("{base}/payment-intents?limit=2"),
        };
        let page = get(&app, &q).await;
        for p in page["data"].as_array().unwrap() {
            seen.push(p["id"].as_str().unwrap().to_owned());
        }
        if page["has_more"] != true {
            assert!(page.get("next_cursor").is_none() || page["next_cursor"].is_null());
            break;
        }
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen,
        [
            "pi_list_4",
            "pi_list_3",
            "pi_list_2",
            "pi_list_1",
            "pi_list_0"
        ]
    );
    let ok = get(&app, &format!("{base}/payment-intents?status=succeeded")).await;
    assert_eq!(ok["data"].as_array().unwrap().len(), 3);

    // Disputes: the ones needing a response first, soonest due first; then the rest newest
    // first; the same order across pages.
    let mut order = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{base}/disputes?limit=2&cursor={c}"),
            None => format!("{base}/disputes?limit=2"),
        };
        let page = get(&app, &q).await;
        for d in page["data"].as_array().unwrap() {
            order.push(d["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(order, ["dp_d", "dp_b", "dp_e", "dp_c", "dp_a"]);
    let lost = get(&app, &format!("{base}/disputes?status=lost")).await;
    assert_eq!(lost["data"][0]["id"], "dp_e");
    assert_eq!(lost["data"].as_array().unwrap().len(), 1);
    let (s, b) = app
        .admin_get(&format!("{base}/disputes?cursor=bm9wZQ"))
        .await;
    assert_eq!(
        (s, &b["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_cursor"))
    );

    let accounts = get(&app, &format!("{base}/accounts")).await;
    assert_eq!(accounts["data"].as_array().unwrap().len(), 1);
    assert_eq!(accounts["data"][0]["payouts_enabled"], true);
    assert_eq!(
        get(&app, &format!("{base}/payment-methods/pm_l")).await["card"]["last4"],
        "4242"
    );
    assert_eq!(
        get(&app, &format!("{base}/issuing/ic_l")).await["status"],
        "canceled"
    );
    assert_eq!(
        get(&app, &format!("{base}/issuing/ich_l")).await["status"],
        "blocked"
    );

    // Another company sees none of it.
    let other = app.company_with_secret(&new_secret()).await;
    let obase = format!("/admin/v1/companies/{other}");
    for p in [
        "payment-intents/pi_list_0",
        "disputes/dp_a",
        "charges/ch_l",
        "payment-methods/pm_l",
        "issuing/ic_l",
    ] {
        let (s, b) = app.admin_get(&format!("{obase}/{p}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {b}");
        assert!(
            b["error"]["code"].as_str().unwrap().ends_with("_not_found"),
            "{b}"
        );
    }
    assert_eq!(
        get(&app, &format!("{obase}/payment-intents")).await["data"],
        json!([])
    );
    assert_eq!(
        get(&app, &format!("{obase}/disputes")).await["data"],
        json!([])
    );
    let any_event = get(&app, &format!("{base}/events?limit=1")).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = app
        .admin_post(&format!("{obase}/events/{any_event}/replay"), json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another company's event");
    let (s, _) = app
        .admin_post("/admin/v1/companies/nobody/events/evt_1/replay", json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .send(
            app.client
                .post(app.url(&format!("{base}/events/{any_event}/replay"))),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .send(app.client.get(app.url(&format!("{base}/disputes"))))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// The forward-only rule as the database applies it to a whole batch (one statement for many
/// payment intents) agrees with `lifecycle::is_newer` for every pair of states: every status,
/// earlier, same and later `created`. All first states arrive in one batch, all second ones in
/// the next.
async fn a_batch_of_payment_intents_follows_the_lifecycle_rule_for_every_pair(backend: Backend) {
    use paygate_db::entities::payment_intent as pi_row;
    use paygate_router::lifecycle::{Kind, is_newer};
    let app = TestApp::start(workers_apply_everything(backend)).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let statuses = [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "canceled",
        "succeeded",
    ];
    let t = now_secs() - 100;
    let mut pairs = Vec::new();
    for (a, old) in statuses.iter().enumerate() {
        for (b, new) in statuses.iter().enumerate() {
            for dt in [-1i64, 0, 1] {
                pairs.push((format!("pi_pair_{a}_{b}_{}", dt + 1), *old, *new, t + dt));
            }
        }
    }
    let workers = pool(
        &app,
        WorkerConfig {
            batch_size: 1000,
            ..WorkerConfig::default()
        },
    );
    // The event Stripe sends for a payment intent reaching `status`, with an amount that tells
    // which event the stored state came from.
    let send = |id: &str, status: &str, at: i64| {
        let kind = match status {
            "succeeded" => "payment_intent.succeeded",
            "canceled" => "payment_intent.canceled",
            "processing" => "payment_intent.processing",
            "requires_action" => "payment_intent.requires_action",
            "requires_capture" => "payment_intent.amount_capturable_updated",
            _ => "payment_intent.created",
        };
        let mut o = payment_intent(id, status, 1500);
        o["amount_received"] = json!(at - t + 10);
        event_at(kind, o, at)
    };
    for (id, old, _, _) in &pairs {
        deliver(&app, &company, &secret, &send(id, old, t)).await;
    }
    assert_eq!(workers.drain().await.unwrap(), pairs.len());
    for (id, _, new, at) in &pairs {
        deliver(&app, &company, &secret, &send(id, new, *at)).await;
    }
    assert_eq!(workers.drain().await.unwrap(), pairs.len());
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    let stored: std::collections::HashMap<String, pi_row::Model> = pi_row::Entity::find()
        .filter(pi_row::Column::CompanyPk.eq(pk))
        .all(&app.app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.stripe_id.clone(), m))
        .collect();
    for (id, old, new, at) in &pairs {
        let (status, created) = if is_newer(Kind::PaymentIntent, old, t, new, *at) {
            (*new, *at)
        } else {
            (*old, t)
        };
        let m = &stored[id];
        assert_eq!(
            (m.status.as_str(), m.state_created, m.amount_received),
            (status, created, created - t + 10),
            "{old} at t, then {new} at t{:+}",
            at - t
        );
    }
}

db_tests!(
    fixture_events_are_handled_as_stripe_sends_them,
    payment_intent_flows_converge_through_duplicates_and_replays,
    dispute_flows_converge_and_flag_payment_charge_and_order,
    dispute_funds_and_flags_only_grow,
    source_order_is_charged_once_and_confirmed_by_its_charge,
    retries_run_out_and_bad_payloads_fail_at_once,
    a_dead_workers_events_are_claimed_again_after_the_lease,
    a_claim_reads_a_batch_not_the_whole_backlog,
    two_pools_racing_on_the_same_objects_converge,
    operator_views_filter_page_and_isolate,
    a_batch_of_payment_intents_follows_the_lifecycle_rule_for_every_pair,
);
