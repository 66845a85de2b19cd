//! Dispatch of stored events to the handlers that keep the domain tables right.
//!
//! Policy: every handler is idempotent and tolerates any order of arrival (see `lifecycle`); an
//! event type Paygate does not act on is `Ignored` (stored, acknowledged, visible). Errors say
//! whether retrying can help: a payload without the fields a handler needs will not improve.

pub mod accounts;
pub mod checkout;
pub mod orders;
pub mod payments;

use paygate_db::{Mode, Scope};
use paygate_stripe::{StripeClient, StripeError};
use paygate_tenant::{TenantError, TenantService};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use serde_json::Value;

/// The event being handled.
#[derive(Clone, Debug)]
pub struct EventMeta {
    pub id: String,
    pub event_type: String,
    /// Stripe's `created`, seconds.
    pub created: i64,
    pub livemode: bool,
    pub account: Option<String>,
}

/// The id prefix of the events the back office's *Send test event* makes.
pub const TEST_EVENT_ID_PREFIX: &str = "evt_test_paygate_";

impl EventMeta {
    /// Whether this is the back office's test event (always test mode; its messages say so).
    pub fn is_test_event(&self) -> bool {
        !self.livemode && self.id.starts_with(TEST_EVENT_ID_PREFIX)
    }
}

/// Everything a handler may use. `db` is the unit of work the handler's writes belong to (the
/// worker's batch transaction, or the pool for handlers that call Stripe); `pool` is the pool.
#[derive(Clone, Copy, Debug)]
pub struct HandlerCtx<'a, C = DatabaseConnection> {
    pub db: &'a C,
    pub pool: &'a DatabaseConnection,
    pub tenants: &'a TenantService,
    pub stripe: &'a StripeClient,
    /// The company and the event's mode: every row the handler reads or writes is found from
    /// it, so a test-mode event can never reach a live row.
    pub scope: Scope,
    pub event: &'a EventMeta,
    /// `data.object`.
    pub object: &'a Value,
    pub previous_attributes: Option<&'a Value>,
    /// The batch of messages of the unit of work `db` belongs to, if it has one.
    pub outbox: Option<&'a crate::outbox::OutboxBatch>,
}

impl<C> HandlerCtx<'_, C> {
    /// The mode of the event.
    pub fn mode(&self) -> Mode {
        self.scope.mode()
    }
    /// A required string field of the object.
    pub fn str(&self, field: &str) -> Result<&str, HandlerError> {
        self.object[field]
            .as_str()
            .ok_or_else(|| HandlerError::Payload(format!("data.object.{field} is missing")))
    }
}

/// What a handler did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Ignored,
}

/// Why a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("database")]
    Db(#[from] DbErr),
    #[error("Stripe API")]
    Stripe(#[from] StripeError),
    #[error("payload: {0}")]
    Payload(String),
    #[error("tenant configuration")]
    Tenant(#[from] TenantError),
    #[error("{0}")]
    Other(String),
}

impl HandlerError {
    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            HandlerError::Payload(_) => false,
            // Even a 4xx from Stripe may heal: a merchant fixes a key, a session shows up under
            // the other mode's profile. Retries are bounded by max_attempts.
            HandlerError::Stripe(_) => true,
            _ => true,
        }
    }
}

/// The result of a handler.
pub type HandlerResult = Result<Outcome, HandlerError>;

/// Whether an event's handler calls Stripe, and so must not run inside a shared transaction
/// (it would hold the database while waiting on the network).
pub fn calls_stripe(event_type: &str) -> bool {
    event_type.starts_with("checkout.session.") || event_type == "source.chargeable"
}

/// Routes an event to its handler by type.
pub async fn dispatch<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
) -> HandlerResult {
    let t = ctx.event.event_type.as_str();
    match t {
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => checkout::handle(ctx).await,
        t if is_payment_intent(t) => payments::payment_intent(ctx).await,
        "charge.pending" | "charge.succeeded" | "charge.failed" | "charge.refunded" => {
            payments::charge(ctx).await
        }
        "charge.dispute.created"
        | "charge.dispute.updated"
        | "charge.dispute.closed"
        | "charge.dispute.funds_withdrawn"
        | "charge.dispute.funds_reinstated" => payments::dispute(ctx).await,
        "source.chargeable" | "source.failed" | "source.canceled" => payments::source(ctx).await,
        "account.updated" => accounts::account(ctx).await,
        "payment_method.automatically_updated" => accounts::payment_method(ctx).await,
        "issuing_card.updated" => accounts::issuing(ctx, "card").await,
        "issuing_cardholder.updated" => accounts::issuing(ctx, "cardholder").await,
        _ => Ok(Outcome::Ignored),
    }
}

/// Whether an event's handler is [`payments::payment_intent`].
fn is_payment_intent(event_type: &str) -> bool {
    matches!(
        event_type,
        "payment_intent.created"
            | "payment_intent.processing"
            | "payment_intent.requires_action"
            | "payment_intent.amount_capturable_updated"
            | "payment_intent.succeeded"
            | "payment_intent.payment_failed"
            | "payment_intent.canceled"
    )
}

/// Routes the events of a batch (one unit of work) to their handlers: the payment intents
/// together ([`payments::payment_intents`]: one statement for many), then every other event
/// one by one, in order. Stops at the first failure: that event and the ones not run yet get
/// an error.
pub async fn dispatch_many<C: ConnectionTrait + TransactionTrait>(
    ctxs: &[HandlerCtx<'_, C>],
) -> Vec<HandlerResult> {
    let not_run = || {
        Err(HandlerError::Other(
            "not run: an earlier event of the batch failed".into(),
        ))
    };
    let intents: Vec<usize> = (0..ctxs.len())
        .filter(|&i| is_payment_intent(&ctxs[i].event.event_type))
        .collect();
    let mut results: Vec<Option<HandlerResult>> = (0..ctxs.len()).map(|_| None).collect();
    let together: Vec<&HandlerCtx<'_, C>> = intents.iter().map(|&i| &ctxs[i]).collect();
    match payments::payment_intents(&together).await {
        Ok(done) => {
            for (&i, r) in intents.iter().zip(done) {
                results[i] = r;
            }
        }
        Err(e) => {
            let mut out: Vec<HandlerResult> = (0..ctxs.len()).map(|_| not_run()).collect();
            out[intents[0]] = Err(e);
            return out;
        }
    }
    let mut failed = false;
    for (ctx, slot) in ctxs.iter().zip(results.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        if failed {
            *slot = Some(not_run());
            continue;
        }
        let r = dispatch(ctx).await;
        failed = r.is_err();
        *slot = Some(r);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(not_run))
        .collect()
}

/// A string field that may be an id or an expanded object with an `id`.
pub(crate) fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}
