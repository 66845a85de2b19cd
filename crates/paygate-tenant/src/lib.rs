#![doc = include_str!("../README.md")]

pub mod audit;
pub mod cache;
pub mod crypto;
pub mod error;
pub mod service;
pub mod validate;
pub mod wire;

pub use cache::{IntakeCompany, IntakeSecret};
pub use crypto::{Keyring, MasterKey};
pub use error::TenantError;
pub use service::TenantService;

/// Stripe events a company selects when it registers its Paygate endpoint in Stripe: the union
/// of the seeds' lists (Passweb's Checkout events and `checkout.session.expired`, plenigo's
/// list, the legacy Sources flow's `source.*` and `charge.*`).
pub const STRIPE_EVENTS_TO_SELECT: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "account.updated",
    "issuing_card.updated",
    "issuing_cardholder.updated",
    "payment_intent.created",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.amount_capturable_updated",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_method.automatically_updated",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "charge.pending",
    "charge.succeeded",
    "charge.failed",
    "charge.refunded",
    "source.chargeable",
    "source.failed",
    "source.canceled",
];

/// Stripe mode of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    /// `"test"` or `"live"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }
    /// Parses `"test"` / `"live"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "test" => Some(Mode::Test),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }
    /// Stripe's `livemode` of events sent in this mode.
    pub fn livemode(self) -> bool {
        self == Mode::Live
    }
}
