//! `paygate demo`: a demo shop with realistic data, made through the real intake.
//!
//! Policy:
//! - **One company, labelled.** Everything happens in the company `demo`
//!   ([`DEMO_COMPANY_ID`]), named [`DEMO_COMPANY_NAME`], in test mode; it is created when absent
//!   and reused after. A company `demo` that this command did not make (no demo key in its test
//!   profile) is left alone, and so is every other company: the command reads and writes no
//!   other company's rows.
//! - **Nothing live.** The company's environment is `test`, its one profile is a test profile
//!   whose secret key is a demo key (`sk_test_paygate_demo_…`), every event and object says
//!   `livemode: false`, and every object carries the metadata `paygate_demo: "true"`.
//! - **The real path.** Set-up (company, profile and signing secret, merchant user, an optional
//!   notification endpoint) is written to the database as `paygate operator add` does; the
//!   events then go over HTTP to the running server's intake, signed with the profile's signing
//!   secret exactly as Stripe signs them, and are verified, stored and handled like Stripe's. The
//!   Stripe calls fulfillment makes with the demo key are answered by the stand-in of
//!   `paygate_stripe::demo`, which reads the cart from the session id.
//! - **The merchant user** (`merchant@demo.paygate.example`, role admin) is created with a
//!   random password on the first run, which prints it once; later runs reuse the user and do
//!   not change its password (`--reset` starts over).
//! - **Each run is a new batch**: fresh ids, so a second run adds a second set of orders,
//!   payments and a dispute to the same company.
//! - `--reset` deletes the demo company and everything it owns (only the demo company).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use paygate_db::entities::{company, order, signing_secret, stripe_profile};
use paygate_db::{Mode, Scope, Tenant, now_ms};
use paygate_stripe::demo::{DEMO_KEY_PREFIX, DEMO_METADATA_KEY, DemoCart};
use paygate_tenant::TenantService;
use paygate_tenant::crypto::field;
use paygate_tenant::service::STATUS_ACTIVE;
pub use paygate_tenant::validate::DEMO_COMPANY_ID;
use paygate_tenant::wire::{CompanyIn, CompanyPatch, ProfileIn};
use paygate_wire::EventType;

use crate::config::Settings;

/// The demo company's name: it says it is demo data wherever it is shown.
pub const DEMO_COMPANY_NAME: &str = "Demo shop (demo data)";

/// The demo merchant user's e-mail.
pub const DEMO_USER_EMAIL: &str = "merchant@demo.paygate.example";

/// Who the audit log names for the demo's changes.
const ACTOR: &str = "cli:demo";

/// What `paygate demo` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// The running server's base URL (default: `PAYGATE_PUBLIC_BASE_URL`, else `PAYGATE_BIND`).
    pub base_url: Option<String>,
    /// Register a notification endpoint of the demo company at this URL.
    pub notify_url: Option<String>,
    /// Remove the demo company instead.
    pub reset: bool,
}

/// Runs `paygate demo`.
pub async fn run(settings: &Settings, opts: DemoOptions) -> anyhow::Result<()> {
    let base = base_url(settings, opts.base_url.as_deref());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?;
    if !opts.reset {
        // Before anything is written: without a server the demo has nowhere to send its events.
        check_server(&http, &base).await?;
    }
    let keyring = crate::keys::load_keyring(settings)?;
    let db = crate::app::open_database(settings).await?;
    let tenants = TenantService::new(
        db.clone(),
        keyring.clone(),
        base.clone(),
        Duration::from_secs(settings.cache_ttl_secs),
        Duration::from_secs(settings.signing_secret_grace_secs),
    );
    if opts.reset {
        return reset(&tenants).await;
    }

    let company = demo_company(&tenants).await?;
    let secret = signing_secret(&tenants, &company).await?;
    let user = merchant_user(&db, &base, &company).await?;
    let notify = match &opts.notify_url {
        Some(url) => Some(notification_endpoint(settings, &db, &keyring, &company, url).await?),
        None => None,
    };

    println!(
        "Demo company `{DEMO_COMPANY_ID}` (\"{DEMO_COMPANY_NAME}\"), test mode; its Stripe calls are answered by Paygate's built-in stand-in."
    );
    println!("Merchant user (admin):");
    println!("  e-mail:   {DEMO_USER_EMAIL}");
    match &user {
        Some(password) => println!("  password: {}", password.expose_secret()),
        None => println!(
            "  password: unchanged (printed when the user was created; `paygate demo --reset` starts over)"
        ),
    }
    if let Some(n) = &notify {
        println!("Notifications of the demo company go to {n}");
    }

    let run = Run::new(&company, &secret, &base, http);
    let stream = Stream::new(now_secs());
    println!(
        "Sending {} signed demo events to {}/callbacks/v1.0/stripe/{DEMO_COMPANY_ID} …",
        stream.first.len() + stream.later.len() + stream.dispute_steps.len(),
        base
    );
    run.deliver_all(&stream.first, settings.cache_ttl_secs)
        .await?;
    run.wait_processed(&db, &stream.first).await;
    println!(
        "  {} is waiting for its SEPA debit; settling it now …",
        stream.delayed.session_id()
    );
    run.deliver_all(&stream.later, 0).await?;
    run.wait_processed(&db, &stream.later).await;
    for step in &stream.dispute_steps {
        run.deliver_all(std::slice::from_ref(step), 0).await?;
        run.wait_processed(&db, std::slice::from_ref(step)).await;
    }

    let scope = Scope::new(company.id, Mode::Test);
    println!("Orders of this run:");
    for (cart, what) in &stream.orders {
        let status = scope
            .orders()
            .filter(order::Column::CheckoutSessionId.eq(cart.session_id()))
            .one(&db)
            .await?
            .map_or_else(|| "not yet processed".to_owned(), |o| o.status);
        let (name, _) = cart.shopper();
        println!(
            "  {:<18} {:>8} {}  {:<17} {what}",
            name,
            format!("{:.2}", cart.amount_total() as f64 / 100.0),
            cart.currency.to_uppercase(),
            status
        );
    }
    println!(
        "  and a dispute ({}) on {}'s order, opened, answered and won",
        stream.dispute_id,
        stream.disputed.shopper().0
    );
    println!("Sign in at {base}/signin as {DEMO_USER_EMAIL} to see them in the back office.");
    Ok(())
}

/// The server's base URL: `--base-url`, else the public base URL, else `http://<bind>` (a
/// wildcard bind address is reached on loopback).
fn base_url(settings: &Settings, given: Option<&str>) -> String {
    let url = match given {
        Some(u) => u.to_owned(),
        None => settings.public_base_url(None),
    };
    url.trim_end_matches('/')
        .replace("://0.0.0.0:", "://127.0.0.1:")
        .replace("://[::]:", "://[::1]:")
}

/// Fails with a clear message when no Paygate answers at `base`.
async fn check_server(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let answer = http.get(format!("{base}/healthz")).send().await;
    match answer {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => bail!(
            "{base}/healthz answered {}: is Paygate running there? Start it with `paygate serve` (same configuration), or give its address with --base-url",
            r.status()
        ),
        Err(e) => bail!(
            "Paygate is not reachable at {base} ({e}). `paygate demo` sends its events through the running server: start it with `paygate serve` (same configuration and data directory) in another shell, or give its address with --base-url"
        ),
    }
}

/// Whether `c` is the company this command makes: id `demo` and a test profile with a demo key
/// (or, after a run interrupted before its profile, the demo name and no profile at all).
async fn is_demo(tenants: &TenantService, c: &company::Model) -> anyhow::Result<bool> {
    if c.company_id != DEMO_COMPANY_ID {
        return Ok(false);
    }
    if let Some(p) = tenants
        .active_profile_for(c.id, Mode::Test.as_str())
        .await
        .map_err(anyhow::Error::msg)?
    {
        return Ok(paygate_stripe::demo::is_demo_key(
            p.secret_key.expose_secret(),
        ));
    }
    let profiles = Tenant::new(c.id)
        .find::<stripe_profile::Entity>()
        .count(tenants.db())
        .await?;
    Ok(profiles == 0 && c.name == DEMO_COMPANY_NAME)
}

async fn find_demo(tenants: &TenantService) -> anyhow::Result<Option<company::Model>> {
    let Some(c) = company::Entity::find()
        .filter(company::Column::CompanyId.eq(DEMO_COMPANY_ID))
        .one(tenants.db())
        .await?
    else {
        return Ok(None);
    };
    if !is_demo(tenants, &c).await? {
        bail!(
            "a company `{DEMO_COMPANY_ID}` exists that `paygate demo` did not make (its test profile has no demo key); the demo leaves it alone"
        );
    }
    Ok(Some(c))
}

/// `--reset`: the demo company and everything it owns are deleted.
async fn reset(tenants: &TenantService) -> anyhow::Result<()> {
    match find_demo(tenants).await? {
        None => println!("There is no demo company; nothing to remove."),
        Some(c) => {
            tenants
                .delete_company(ACTOR, &c.company_id)
                .await
                .map_err(anyhow::Error::msg)?;
            println!(
                "Removed the demo company `{DEMO_COMPANY_ID}` and everything of it (its users, events, orders, payments, disputes, notifications)."
            );
        }
    }
    Ok(())
}

fn random_token(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// The demo company with its demo test profile, active, Stripe on; made when absent.
async fn demo_company(tenants: &TenantService) -> anyhow::Result<company::Model> {
    let c = match find_demo(tenants).await? {
        Some(c) => c,
        None => tenants
            .create_company(
                ACTOR,
                CompanyIn {
                    company_id: Some(DEMO_COMPANY_ID.to_owned()),
                    name: DEMO_COMPANY_NAME.to_owned(),
                    ..CompanyIn::default()
                },
            )
            .await
            .map_err(anyhow::Error::msg)?,
    };
    if tenants
        .active_profile_for(c.id, Mode::Test.as_str())
        .await
        .map_err(anyhow::Error::msg)?
        .is_none()
    {
        tenants
            .create_profile(
                ACTOR,
                &c,
                ProfileIn {
                    name: "Demo test profile (demo data)".to_owned(),
                    mode: Mode::Test.as_str().to_owned(),
                    account_id: Some("acct_paygatedemo".to_owned()),
                    publishable_key: format!("pk_test_paygate_demo_{}", random_token(24)),
                    secret_key: format!("{DEMO_KEY_PREFIX}{}", random_token(24)),
                    webhook_secret: Some(format!("whsec_{}", random_token(32))),
                    active: Some(true),
                    auto_configure: None,
                },
            )
            .await
            .map_err(anyhow::Error::msg)?;
    }
    if c.environment != Mode::Test.as_str() || !c.stripe_enabled || c.status != STATUS_ACTIVE {
        tenants
            .update_company(
                ACTOR,
                DEMO_COMPANY_ID,
                CompanyPatch {
                    status: Some(STATUS_ACTIVE.to_owned()),
                    stripe_enabled: Some(true),
                    environment: Some(Mode::Test.as_str().to_owned()),
                    ..CompanyPatch::default()
                },
            )
            .await
            .map_err(anyhow::Error::msg)?;
    }
    Ok(tenants.company(DEMO_COMPANY_ID).await?)
}

/// The newest valid signing secret of the demo company's active test profile (one is added
/// when it has none).
async fn signing_secret(
    tenants: &TenantService,
    c: &company::Model,
) -> anyhow::Result<SecretString> {
    let tenant = Tenant::new(c.id);
    let profile = tenants
        .active_profile_for(c.id, Mode::Test.as_str())
        .await
        .map_err(anyhow::Error::msg)?
        .context("the demo company has no active test profile")?
        .profile;
    let now = now_ms();
    let newest = tenant
        .find::<signing_secret::Entity>()
        .filter(signing_secret::Column::ProfileId.eq(&profile.id))
        .all(tenants.db())
        .await?
        .into_iter()
        .filter(|s| s.expires_at.is_none_or(|e| e > now))
        .max_by_key(|s| s.created_at);
    if let Some(s) = newest {
        return tenants
            .keyring()
            .open(field::SIGNING_SECRET.owner(c.id, &s.id), &s.secret_enc)
            .map_err(|e| anyhow::anyhow!("opening the demo signing secret: {e}"));
    }
    let secret = format!("whsec_{}", random_token(32));
    tenants
        .rotate_signing_secret(
            ACTOR,
            c,
            &profile.id,
            paygate_tenant::wire::SigningSecretIn {
                webhook_secret: secret.clone(),
                grace_period_secs: Some(0),
            },
        )
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(SecretString::from(secret))
}

/// The merchant user; its new password when this call created it.
async fn merchant_user(
    db: &DatabaseConnection,
    base: &str,
    c: &company::Model,
) -> anyhow::Result<Option<SecretString>> {
    let users = paygate_tenant::users::list_users(db, c.id).await?;
    if users.iter().any(|u| u.email == DEMO_USER_EMAIL) {
        return Ok(None);
    }
    let password = SecretString::from(format!("demo-{}", random_token(20)));
    paygate_tenant::users::create_user(
        db,
        base,
        ACTOR,
        c.id,
        paygate_tenant::users::NewUser {
            email: DEMO_USER_EMAIL.to_owned(),
            role: "admin".to_owned(),
            password: Some(password.clone()),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the demo merchant user: {e}"))?;
    Ok(Some(password))
}

/// A notification endpoint of the demo company at `url` (reused when one is there already).
async fn notification_endpoint(
    settings: &Settings,
    db: &DatabaseConnection,
    keyring: &paygate_tenant::Keyring,
    c: &company::Model,
    url: &str,
) -> anyhow::Result<String> {
    let notify = paygate_notify::NotifyService::new(
        db.clone(),
        keyring.clone(),
        settings.outbound_allow_private,
        false,
        Arc::new(tokio::sync::Notify::new()),
    );
    let existing = notify
        .list(c.id)
        .await
        .map_err(|e| anyhow::anyhow!("listing the demo notification endpoints: {e}"))?;
    if let Some(e) = existing.iter().find(|e| e.url == url) {
        return Ok(e.url.clone());
    }
    let e = notify
        .create(
            c.id,
            paygate_notify::service::EndpointIn {
                url: url.to_owned(),
                description: Some("paygate demo (demo data)".to_owned()),
                event_types: None,
                enabled: Some(true),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("registering the notification endpoint {url}: {e}"))?;
    Ok(e.url)
}

fn now_secs() -> i64 {
    now_ms() / 1000
}

// ---- the events -----------------------------------------------------------------------------

/// A Stripe event envelope (API version 2024-06-20, test mode).
fn event(id: String, kind: EventType, object: Value, created: i64) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind.as_str(),
    })
}

/// A payment intent of `cart` in `status`; `error` is its `last_payment_error`.
fn payment_intent(
    cart: &DemoCart,
    status: &str,
    method: &str,
    created: i64,
    error: Option<Value>,
) -> Value {
    let amount = cart.amount_total();
    let succeeded = status == "succeeded";
    json!({
        "id": cart.payment_intent_id(),
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": if succeeded { amount } else { 0 },
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": null,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic",
        "client_secret": null,
        "confirmation_method": "automatic",
        "created": created,
        "currency": cart.currency,
        "customer": null,
        "description": format!("Demo shop order cart_{}", cart.nonce),
        "invoice": null,
        "last_payment_error": error,
        "latest_charge": succeeded.then(|| charge_id(cart)),
        "livemode": false,
        "metadata": {DEMO_METADATA_KEY: "true"},
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": format!("pm_paygatedemo_{}", cart.nonce),
        "payment_method_types": [method],
        "processing": null,
        "receipt_email": cart.shopper().1,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": status,
        "transfer_data": null,
        "transfer_group": null,
    })
}

fn charge_id(cart: &DemoCart) -> String {
    format!("ch_paygatedemo_{}", cart.nonce)
}

/// The succeeded charge of `cart`'s payment.
fn charge(cart: &DemoCart, method: &str, created: i64) -> Value {
    let amount = cart.amount_total();
    json!({
        "id": charge_id(cart),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "balance_transaction": format!("txn_paygatedemo_{}", cart.nonce),
        "billing_details": {"email": cart.shopper().1, "name": cart.shopper().0},
        "captured": true,
        "created": created,
        "currency": cart.currency,
        "customer": null,
        "description": format!("Demo shop order cart_{}", cart.nonce),
        "disputed": false,
        "failure_code": null,
        "failure_message": null,
        "livemode": false,
        "metadata": {DEMO_METADATA_KEY: "true"},
        "outcome": {"network_status": "approved_by_network", "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized"},
        "paid": true,
        "payment_intent": cart.payment_intent_id(),
        "payment_method": format!("pm_paygatedemo_{}", cart.nonce),
        "payment_method_details": {"type": method},
        "receipt_email": cart.shopper().1,
        "refunded": false,
        "source": null,
        "status": "succeeded",
    })
}

/// A dispute of `cart`'s charge in `status`; `withdrawn` / `reinstated` list the balance
/// transactions Stripe adds.
fn dispute(
    id: &str,
    cart: &DemoCart,
    status: &str,
    created: i64,
    evidence: bool,
    withdrawn: bool,
    reinstated: bool,
) -> Value {
    let amount = cart.amount_total();
    let mut bts = Vec::new();
    if withdrawn {
        bts.push(json!({"id": format!("txn_paygatedemo_{}w", cart.nonce), "object": "balance_transaction", "amount": -amount, "currency": cart.currency, "type": "adjustment", "reporting_category": "dispute"}));
    }
    if reinstated {
        bts.push(json!({"id": format!("txn_paygatedemo_{}r", cart.nonce), "object": "balance_transaction", "amount": amount, "currency": cart.currency, "type": "adjustment", "reporting_category": "dispute_reversal"}));
    }
    json!({
        "id": id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": bts,
        "charge": charge_id(cart),
        "created": created,
        "currency": cart.currency,
        "evidence": {"customer_email_address": cart.shopper().1, "product_description": if evidence { json!("Delivered with tracking; signed for by the customer.") } else { Value::Null }},
        "evidence_details": {"due_by": created + 7 * 86_400, "has_evidence": evidence, "past_due": false, "submission_count": u32::from(evidence)},
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {DEMO_METADATA_KEY: "true"},
        "payment_intent": cart.payment_intent_id(),
        "reason": "product_not_received",
        "status": status,
    })
}

/// The events of one run: `first` now, `later` once they are handled (the delayed payment
/// settling).
struct Stream {
    first: Vec<Value>,
    later: Vec<Value>,
    dispute_steps: Vec<Value>,
    /// Each order of the run and what happens to it.
    orders: Vec<(DemoCart, &'static str)>,
    delayed: DemoCart,
    disputed: DemoCart,
    dispute_id: String,
}

impl Stream {
    /// The run's events, `created` in the last two hours before `now`, in order.
    fn new(now: i64) -> Self {
        let run = random_token(8).to_ascii_lowercase();
        let cart = |k: usize, shopper: usize, items: &[(usize, u32)]| DemoCart {
            nonce: format!("{run}{k}"),
            shopper,
            currency: "eur".to_owned(),
            items: items.to_vec(),
        };
        let paid = [
            cart(1, 0, &[(0, 2), (1, 1)]),
            cart(2, 1, &[(2, 1), (3, 2)]),
            cart(3, 2, &[(4, 1)]),
        ];
        let declined = cart(4, 3, &[(1, 2)]);
        let delayed = cart(5, 4, &[(0, 1), (4, 1)]);
        let failed_debit = cart(6, 0, &[(2, 1)]);
        let disputed = paid[1].clone();
        let dispute_id = format!("dp_paygatedemo_{run}");

        let mut clock = Clock {
            run: run.clone(),
            t: now - 2 * 3600,
            n: 0,
        };
        let mut first = Vec::new();
        // Three card payments through Checkout: paid and fulfilled.
        for c in &paid {
            let at = clock.tick(420);
            first.push(clock.event(
                EventType::PaymentIntentSucceeded,
                payment_intent(c, "succeeded", "card", at, None),
            ));
            clock.tick(1);
            first.push(clock.event(EventType::ChargeSucceeded, charge(c, "card", at)));
            clock.tick(1);
            first.push(clock.event(
                EventType::CheckoutSessionCompleted,
                c.session("paid", at - 60),
            ));
        }
        // A card declined; the shopper gives up and the session expires.
        let declined_error = json!({
            "charge": null, "code": "card_declined", "decline_code": "insufficient_funds",
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "message": "Your card has insufficient funds.", "type": "card_error",
        });
        let at = clock.tick(300);
        first.push(clock.event(
            EventType::PaymentIntentPaymentFailed,
            payment_intent(
                &declined,
                "requires_payment_method",
                "card",
                at,
                Some(declined_error),
            ),
        ));
        let mut expired = declined.session("unpaid", at - 60);
        expired["status"] = json!("expired");
        clock.tick(1800);
        first.push(clock.event(EventType::CheckoutSessionExpired, expired));
        // SEPA Direct Debit: completed unpaid; one settles later (the `later` events), one
        // bounces.
        let sepa_session = |c: &DemoCart, status: &str, at: i64| {
            let mut s = c.session(status, at);
            s["payment_method_types"] = json!(["sepa_debit"]);
            s
        };
        let mut started = Vec::new();
        for c in [&delayed, &failed_debit] {
            let at = clock.tick(240);
            started.push(at);
            first.push(clock.event(
                EventType::CheckoutSessionCompleted,
                sepa_session(c, "unpaid", at),
            ));
            clock.tick(1);
            first.push(clock.event(
                EventType::PaymentIntentProcessing,
                payment_intent(c, "processing", "sepa_debit", at, None),
            ));
        }
        let debit_error = json!({
            "code": "insufficient_funds", "message": "The account has insufficient funds to cover this payment.",
            "payment_method": {"id": format!("pm_paygatedemo_{}", failed_debit.nonce), "type": "sepa_debit"},
            "type": "invalid_request_error",
        });
        clock.tick(600);
        first.push(clock.event(
            EventType::CheckoutSessionAsyncPaymentFailed,
            sepa_session(&failed_debit, "unpaid", started[1]),
        ));
        let at = clock.tick(1);
        first.push(clock.event(
            EventType::PaymentIntentPaymentFailed,
            payment_intent(
                &failed_debit,
                "requires_payment_method",
                "sepa_debit",
                at,
                Some(debit_error),
            ),
        ));
        // A dispute on the second order: opened, funds withdrawn, evidence sent, won.
        let d = &disputed;
        // One at a time (see `Run`): each step is processed before the next is sent, so the
        // merchant's systems are told of every step in order.
        let mut dispute_steps = Vec::new();
        let opened = clock.tick(300);
        dispute_steps.push(clock.event(
            EventType::ChargeDisputeCreated,
            dispute(
                &dispute_id,
                d,
                "needs_response",
                opened,
                false,
                false,
                false,
            ),
        ));
        clock.tick(1);
        dispute_steps.push(clock.event(
            EventType::ChargeDisputeFundsWithdrawn,
            dispute(&dispute_id, d, "needs_response", opened, false, true, false),
        ));
        clock.tick(900);
        dispute_steps.push(clock.event(
            EventType::ChargeDisputeUpdated,
            dispute(&dispute_id, d, "under_review", opened, true, true, false),
        ));
        clock.tick(1200);
        dispute_steps.push(clock.event(
            EventType::ChargeDisputeClosed,
            dispute(&dispute_id, d, "won", opened, true, true, false),
        ));
        clock.tick(1);
        dispute_steps.push(clock.event(
            EventType::ChargeDisputeFundsReinstated,
            dispute(&dispute_id, d, "won", opened, true, true, true),
        ));
        // The delayed debit settles.
        let mut later = Vec::new();
        let at = clock.tick(60);
        later.push(clock.event(
            EventType::CheckoutSessionAsyncPaymentSucceeded,
            sepa_session(&delayed, "paid", started[0]),
        ));
        clock.tick(1);
        later.push(clock.event(
            EventType::PaymentIntentSucceeded,
            payment_intent(&delayed, "succeeded", "sepa_debit", at, None),
        ));
        clock.tick(1);
        later.push(clock.event(
            EventType::ChargeSucceeded,
            charge(&delayed, "sepa_debit", at),
        ));
        let orders = vec![
            (paid[0].clone(), "card, paid"),
            (paid[1].clone(), "card, paid, then disputed (won)"),
            (paid[2].clone(), "card, paid"),
            (declined.clone(), "card declined, session expired"),
            (delayed.clone(), "SEPA debit, settled later"),
            (failed_debit.clone(), "SEPA debit, failed"),
        ];
        Self {
            first,
            later,
            dispute_steps,
            orders,
            delayed,
            disputed,
            dispute_id,
        }
    }
}

/// The run's clock: each event a little after the one before, each with its own id.
struct Clock {
    run: String,
    t: i64,
    n: u32,
}

impl Clock {
    /// Moves on `step` seconds; the new time.
    fn tick(&mut self, step: i64) -> i64 {
        self.t += step;
        self.t
    }

    /// An event of `kind` about `object`, created now.
    fn event(&mut self, kind: EventType, object: Value) -> Value {
        self.n += 1;
        event(
            format!("evt_paygatedemo_{}{:02}", self.run, self.n),
            kind,
            object,
            self.t,
        )
    }
}

/// Delivers events to the demo company's callback URL, signed.
struct Run {
    url: String,
    secret: SecretString,
    http: reqwest::Client,
    company_pk: i64,
}

impl Run {
    fn new(c: &company::Model, secret: &SecretString, base: &str, http: reqwest::Client) -> Self {
        Self {
            url: format!("{base}/callbacks/v1.0/stripe/{}", c.company_id),
            secret: secret.clone(),
            http,
            company_pk: c.id,
        }
    }

    /// Delivers `events` in order. The first may wait up to `settle_secs` (+3) for the server
    /// to see the company as it is now (its intake caches companies for
    /// `PAYGATE_CACHE_TTL_SECS`).
    async fn deliver_all(&self, events: &[Value], settle_secs: u64) -> anyhow::Result<()> {
        for (i, e) in events.iter().enumerate() {
            let deadline = Instant::now()
                + Duration::from_secs(if i == 0 && settle_secs > 0 {
                    settle_secs + 3
                } else {
                    0
                });
            loop {
                let body = serde_json::to_vec(e)?;
                let now = now_secs();
                let sig = paygate_router::signature::sign(self.secret.expose_secret(), now, &body);
                let r = self
                    .http
                    .post(&self.url)
                    .header("content-type", "application/json")
                    .header("Stripe-Signature", sig)
                    .body(body)
                    .send()
                    .await
                    .with_context(|| format!("posting a demo event to {}", self.url))?;
                let status = r.status();
                if status.is_success() {
                    break;
                }
                let text = r.text().await.unwrap_or_default();
                let settling =
                    text.contains("company_not_found") || text.contains("signature_invalid");
                if settling && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                if text.contains("company_not_found") {
                    bail!(
                        "the server at {} does not know the demo company this command just made: it uses another database. Run `paygate demo` with the configuration of `paygate serve` (working directory, PAYGATE_DATA_DIR or PAYGATE_DATABASE_URL)",
                        self.url
                    );
                }
                bail!(
                    "the intake refused the demo event {} ({}): {status} {text}",
                    e["id"],
                    e["type"]
                );
            }
        }
        Ok(())
    }

    /// Waits (up to a minute) until the server's workers have handled `events`.
    async fn wait_processed(&self, db: &DatabaseConnection, events: &[Value]) {
        use paygate_db::entities::inbox_event;
        let ids: Vec<String> = events
            .iter()
            .filter_map(|e| e["id"].as_str().map(str::to_owned))
            .collect();
        let scope = Scope::new(self.company_pk, Mode::Test);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pending = scope
                .inbox_events()
                .filter(inbox_event::Column::StripeEventId.is_in(ids.clone()))
                .filter(inbox_event::Column::Status.eq("pending"))
                .count(db)
                .await;
            match pending {
                Ok(0) => return,
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(n) => {
                    println!(
                        "  {n} event(s) are stored but not handled yet: are the server's workers running (PAYGATE_WORKERS)?"
                    );
                    return;
                }
                Err(e) => {
                    println!("  could not follow the processing: {e}");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_event_is_test_mode_and_labelled() {
        let s = Stream::new(1_800_000_000);
        let all: Vec<&Value> = s
            .first
            .iter()
            .chain(&s.dispute_steps)
            .chain(&s.later)
            .collect();
        assert!(all.len() > 20);
        let mut ids = std::collections::HashSet::new();
        for e in &all {
            assert_eq!(e["livemode"], false);
            assert_eq!(e["data"]["object"]["livemode"], false);
            assert_eq!(e["data"]["object"]["metadata"][DEMO_METADATA_KEY], "true");
            assert!(EventType::parse(e["type"].as_str().unwrap_or_default()).is_some());
            assert!(ids.insert(e["id"].as_str().unwrap_or_default().to_owned()));
        }
        let created: Vec<i64> = all.iter().filter_map(|e| e["created"].as_i64()).collect();
        assert!(created.windows(2).all(|w| w[0] < w[1]), "{created:?}");
        assert!(created.iter().all(|&c| c <= 1_800_000_000));
    }
}
