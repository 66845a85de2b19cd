//! Stripe's wire formats as the intake reads them, with no I/O and few dependencies, so that the
//! fuzz targets (`fuzz/`) build in seconds: [`signature`] verifies `Stripe-Signature` headers,
//! [`envelope`] reads the fields of an event the intake needs without copying the body,
//! [`event_type`] is the one list of the Stripe event types Paygate handles.

pub mod envelope;
pub mod event_type;
pub mod signature;
pub mod thin;

pub use event_type::{EventFamily, EventType};
pub use thin::ThinEventType;

/// The Stripe API version Paygate's parsers are written for: the webhook endpoints Paygate
/// creates are pinned to it (`api_version`), so Stripe sends events in this shape whatever the
/// account's default version is.
pub const STRIPE_API_VERSION: &str = "2024-06-20";
