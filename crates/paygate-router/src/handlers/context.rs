//! What every handler gets (the event, its scope, the connections) and what it returns.
//!
//! Apart from the dispatch in `handlers`, so the handlers and the modules they use (fulfillment,
//! lifecycle) depend on this and never on the dispatch: imports point one way.

use paygate_db::{Mode, Scope};
use paygate_stripe::{StripeClient, StripeError};
use paygate_tenant::{TenantError, TenantService};
use paygate_wire::EventType;
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::Value;

/// The event being handled.
#[derive(Clone, Debug)]
pub struct EventMeta {
    pub id: String,
    /// Stripe's type, as sent.
    pub event_type: String,
    /// The type, when Paygate handles it (parsed once, when the event is claimed).
    pub kind: Option<EventType>,
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
        is_test_event(self.livemode, &self.id)
    }
}

/// Whether the event `id` (of mode `livemode`) is the back office's test event.
pub fn is_test_event(livemode: bool, id: &str) -> bool {
    !livemode && id.starts_with(TEST_EVENT_ID_PREFIX)
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
    pub outbox: Option<&'a paygate_notify::outbox::OutboxBatch>,
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

/// A string field that may be an id or an expanded object with an `id`.
pub(crate) fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}
