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

use paygate_wire::EventType;

/// Stripe events a company selects when it registers its Paygate endpoint in Stripe: the union
/// of the seeds' lists (Passweb's Checkout events and `checkout.session.expired`, plenigo's
/// list, the legacy Sources flow's `source.*` and `charge.*`), which is every type Paygate
/// handles ([`EventType::ALL`], the one list).
pub const STRIPE_EVENTS_TO_SELECT: &[EventType] = EventType::ALL;

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
