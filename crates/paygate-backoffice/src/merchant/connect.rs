//! `/app/connect`: connecting the company's Stripe account, step by step as the seeds describe
//! it — the callback URL to register in Stripe (with a copy button), the events to select,
//! where the signing secret goes, and a **Send test event** button (a self-test: see below; the
//! real proof that Stripe reaches Paygate is the Overview's "last event received from Stripe").
//! Below: the account status Stripe last reported (`account.updated`) in the page's mode
//! ([`super::mode`]), and the deliveries the intake recently rejected (of either mode: a
//! rejected delivery has no trusted mode), each with its reason in plain words.
//!
//! *Send test event* (`POST /app/connect/test-event`, company admins) is a test, always: whatever
//! the company's environment, it builds a realistic `payment_intent.succeeded` event in **test
//! mode** (`livemode: false`) whose id starts with
//! [`TEST_EVENT_ID_PREFIX`](paygate_router::handlers::TEST_EVENT_ID_PREFIX) (`evt_test_paygate_…`)
//! and whose objects are recognisable too (`pi_test_paygate_…`), signs it with the newest valid
//! signing secret of the company's active **test** profile exactly as Stripe does
//! (`Stripe-Signature: t=…,v1=…`), and posts it over real HTTP to the company's callback path on
//! this process's own address
//! ([`BackofficeState::intake_base_url`](crate::BackofficeState::intake_base_url)). Nothing is
//! short-circuited: the intake verifies, stores and answers as for Stripe, and the router handles
//! it in test mode, so it reads, changes and notifies nothing live (its notifications say
//! `"test_event": true`). Without an active test profile, or one without a valid signing
//! secret, it is refused (422) with the reason and nothing is sent. The page then shows, labelled
//! as test data, the intake's status code, whether the event is in the company's test-mode
//! events, and a link to it there.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use rand::Rng;
use rand::distributions::Alphanumeric;
use sea_orm::{ColumnTrait, Condition, QueryFilter, QueryOrder, QuerySelect};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use paygate_db::entities::{
    delivery_failure, inbox_event, signing_secret, stripe_account, stripe_profile,
};
use paygate_db::{Mode, now_ms};
use paygate_router::handlers::TEST_EVENT_ID_PREFIX;
use paygate_tenant::STRIPE_EVENTS_TO_SELECT;
use paygate_tenant::crypto::field;
use paygate_wire::EventType;

use crate::MerchantSession;
use crate::merchant::listing::segment;
use crate::merchant::mode::{ModeParam, View};
use crate::merchant::stripe_settings::mode_key;
use crate::page::{Page, PageError, mode_href, redirect, rejection_text, render, render_status};

/// The [`crate::oneshot`] slot of the last test event's result.
const TEST_RESULT: &str = "oneshot:connect.test_result";

/// Registers `/app/connect…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/connect", web::get().to(connect))
        .route("/connect/test-event", web::post().to(send_test_event));
}

/// Rejected deliveries the page lists.
const RECENT_REJECTIONS: u64 = 20;

/// The account status from the last `account.updated` (of the page's mode).
pub struct AccountRow {
    pub account_id: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    /// Stripe's requirement codes (`individual.verification.document` …).
    pub currently_due: Vec<String>,
    pub disabled_reason: Option<String>,
    /// The event's `created`, seconds.
    pub reported_at: i64,
}

/// A rejected delivery, its reason in plain words in the page's language.
pub struct RejectionRow {
    pub occurred_at: i64,
    pub code: String,
    pub reason: String,
    pub remote_addr: Option<String>,
}

/// What *Send test event* found out (always about test data), shown once by the GET after the
/// POST's redirect (a reload sends nothing again).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct TestResult {
    pub event_id: String,
    /// The event's page, in test mode.
    pub event_href: String,
    pub event_type: String,
    /// The name of the test profile that signed it.
    pub profile_name: String,
    /// The intake's answer; `None` when it could not be reached at all.
    pub status: Option<u16>,
    /// The event is in the company's inbox.
    pub arrived: bool,
    /// Why the intake refused it, in plain words.
    pub reason: Option<String>,
}

#[derive(Template)]
#[template(path = "backoffice/app/connect.html")]
struct ConnectTemplate {
    ctx: Page,
    is_admin: bool,
    callback_url: String,
    events: &'static [paygate_wire::EventType],
    /// The company's environment (what Stripe's live traffic is checked against).
    environment_key: &'static str,
    stripe_enabled: bool,
    /// The active test profile (the test event's signer): its name and whether it has a valid
    /// signing secret.
    test_profile: Option<(String, bool)>,
    /// Whether *Send test event* can work (else the button is disabled, the reason beside it).
    can_send_test: bool,
    accounts: Vec<AccountRow>,
    rejections: Vec<RejectionRow>,
    result: Option<TestResult>,
    /// Why no test event could be sent (a catalogue text).
    test_error: Option<String>,
}

async fn page(
    s: &MerchantSession,
    v: &View,
    result: Option<TestResult>,
    test_error: Option<String>,
) -> Result<ConnectTemplate, PageError> {
    let c = &v.company;
    let out = s.tenants().company_out(c);
    let test_profile = active_profile(s, Mode::Test)
        .await?
        .map(|(p, secret)| (p.name, secret.is_some()));
    let accounts = v
        .scope
        .stripe_accounts()
        .order_by_desc(stripe_account::Column::UpdatedAt)
        .all(s.db())
        .await?
        .into_iter()
        .map(|a| AccountRow {
            currently_due: serde_json::from_str(&a.currently_due).unwrap_or_default(),
            account_id: a.account_id,
            charges_enabled: a.charges_enabled,
            payouts_enabled: a.payouts_enabled,
            details_submitted: a.details_submitted,
            disabled_reason: a.disabled_reason,
            reported_at: a.state_created,
        })
        .collect();
    let rejections = s
        .tenant()
        .find::<delivery_failure::Entity>()
        .order_by_desc(delivery_failure::Column::Id)
        .limit(RECENT_REJECTIONS)
        .all(s.db())
        .await?
        .into_iter()
        .map(|f| RejectionRow {
            occurred_at: f.occurred_at,
            reason: rejection_text(s.lang, &f.reason),
            code: f.reason,
            remote_addr: f.remote_addr,
        })
        .collect();
    Ok(ConnectTemplate {
        ctx: v.page(s, "connect.title", "/app/connect"),
        is_admin: s.is_admin(),
        callback_url: out.callback_url,
        events: STRIPE_EVENTS_TO_SELECT,
        environment_key: mode_key(&c.environment),
        stripe_enabled: c.stripe_enabled,
        can_send_test: test_profile.as_ref().is_some_and(|(_, secret)| *secret),
        test_profile,
        accounts,
        rejections,
        result,
        test_error,
    })
}

async fn connect(
    s: MerchantSession,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let result = s.take_once::<TestResult>(TEST_RESULT);
    render(&page(&s, &v, result, None).await?)
}

/// The active profile of `mode` and its newest signing secret that the intake accepts now.
async fn active_profile(
    s: &MerchantSession,
    mode: Mode,
) -> Result<Option<(stripe_profile::Model, Option<signing_secret::Model>)>, PageError> {
    let Some(p) = s
        .tenant()
        .find::<stripe_profile::Entity>()
        .filter(stripe_profile::Column::ActiveMode.eq(mode.as_str()))
        .one(s.db())
        .await?
    else {
        return Ok(None);
    };
    let secret = s
        .tenant()
        .find::<signing_secret::Entity>()
        .filter(signing_secret::Column::ProfileId.eq(&p.id))
        .filter(
            Condition::any()
                .add(signing_secret::Column::ExpiresAt.is_null())
                .add(signing_secret::Column::ExpiresAt.gt(now_ms())),
        )
        .order_by_desc(signing_secret::Column::CreatedAt)
        .order_by_desc(signing_secret::Column::Id)
        .one(s.db())
        .await?;
    Ok(Some((p, secret)))
}

/// A Stripe-looking id: `prefix` and 24 letters and digits.
fn stripe_id(prefix: &str) -> String {
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

/// The test event: `payment_intent.succeeded` shaped as Stripe sends it (API version
/// 2024-06-20), in test mode, its id starting with [`TEST_EVENT_ID_PREFIX`] and its objects'
/// ids with `…_test_paygate_`, marked as a Paygate test in its metadata and description.
pub fn test_event(now_secs: i64) -> (String, Value) {
    let evt = stripe_id(TEST_EVENT_ID_PREFIX);
    let pi = stripe_id("pi_test_paygate_");
    let ch = stripe_id("ch_test_paygate_");
    let pm = stripe_id("pm_test_paygate_");
    let livemode = Mode::Test.livemode();
    let object = json!({
        "id": pi,
        "object": "payment_intent",
        "amount": 1999,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 1999,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": {"allow_redirects": "always", "enabled": true},
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic_async",
        "client_secret": null,
        "confirmation_method": "automatic",
        "created": now_secs,
        "currency": "eur",
        "customer": null,
        "description": "Paygate test event (sent from the back office)",
        "invoice": null,
        "last_payment_error": null,
        "latest_charge": ch,
        "livemode": livemode,
        "metadata": {"paygate_test_event": "true"},
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": pm,
        "payment_method_configuration_details": null,
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "succeeded",
        "transfer_data": null,
        "transfer_group": null,
    });
    let body = json!({
        "id": evt,
        "object": "event",
        "api_version": "2024-06-20",
        "created": now_secs,
        "data": {"object": object},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": EventType::PaymentIntentSucceeded.as_str(),
    });
    (evt, body)
}

/// The page with why no test event could be sent (422); nothing was sent.
async fn refuse(s: &MerchantSession, v: &View, key: &str) -> Result<HttpResponse, PageError> {
    let text = s
        .lang
        .format(key, &[s.lang.t(mode_key(Mode::Test.as_str()))]);
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &page(s, v, None, Some(text)).await?,
    )
}

async fn send_test_event(
    s: MerchantSession,
    mode: web::Form<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    // The page comes back in the mode it was in; the event itself is test data, always.
    let v = View::of(&s, &mode).await?;
    let c = &v.company;
    let (profile, secret) = match active_profile(&s, Mode::Test).await? {
        None => return refuse(&s, &v, "connect.test_no_profile").await,
        Some((_, None)) => return refuse(&s, &v, "connect.test_no_secret").await,
        Some((p, Some(secret))) => (p, secret),
    };
    let plain = s
        .tenants()
        .keyring()
        .open(
            field::SIGNING_SECRET.owner(s.tenant().company_pk(), &secret.id),
            &secret.secret_enc,
        )
        .map_err(PageError::internal)?;
    let now = chrono::Utc::now().timestamp();
    let (event_id, event) = test_event(now);
    let body = serde_json::to_vec(&event).map_err(PageError::internal)?;
    let signature = paygate_router::signature::sign(plain.expose_secret(), now, &body);
    let url = format!(
        "{}/callbacks/v1.0/stripe/{}",
        s.state.intake_base_url, c.company_id
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        // Paygate's own intake, never through a proxy of the environment.
        .no_proxy()
        .build()
        .map_err(PageError::internal)?;
    let answer = client
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Paygate back office (test event)")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await;
    let (status, reason) = match answer {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let code = if resp.status().is_success() {
                None
            } else {
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                Some(v["error"]["code"].as_str().unwrap_or("unknown").to_owned())
            };
            (Some(status), code.map(|c| rejection_text(s.lang, &c)))
        }
        Err(e) => {
            tracing::warn!(error = %e, url, "the test event could not be posted to the intake");
            (None, Some(s.lang.t("connect.test_unreachable").to_owned()))
        }
    };
    // The intake answers 200 only once the event is committed to the inbox: look for it among
    // the company's test-mode events.
    let test = c.tenant().in_mode(Mode::Test);
    let arrived = test
        .inbox_events()
        .filter(inbox_event::Column::StripeEventId.eq(&event_id))
        .one(s.db())
        .await?
        .is_some();
    tracing::info!(company_id = %c.company_id, event_id, ?status, arrived, "test event sent from the back office");
    let result = TestResult {
        event_href: mode_href(&format!("/app/events/{}", segment(&event_id)), test.mode()),
        event_id,
        event_type: EventType::PaymentIntentSucceeded.as_str().to_owned(),
        profile_name: profile.name,
        status,
        arrived,
        reason,
    };
    s.put_once(TEST_RESULT, &result);
    Ok(redirect(&format!(
        "{}#test-result",
        mode_href("/app/connect", v.mode())
    )))
}
