//! Thin event types (event destinations, API v2): apart from [`crate::EventType`], which is the
//! list of snapshot (v1) types merchants select. A thin event carries no snapshot; the worker
//! fetches it (`GET /v2/core/events/{id}`) and, where it acts on one, its related object.
//!
//! Only the few types Paygate acts on by name are named here; every other thin type is
//! [`ThinEventType::Other`] and handled by its related object's type (a payment intent updates
//! the payment intent read model) or ignored.

/// What Paygate does with a thin event, by its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThinEventType {
    /// `v2.core.event_destination.ping`: Stripe checks the destination; answered and recorded.
    DestinationPing,
    /// `v2.core.health.event_generation_failure.resolved`: Stripe failed to generate events for
    /// a while and says so; the window is reconciled.
    EventGenerationFailureResolved,
    /// Any other thin type.
    Other,
}

impl ThinEventType {
    /// The type of a thin event by its name.
    pub fn parse(name: &str) -> Self {
        match name {
            "v2.core.event_destination.ping" => ThinEventType::DestinationPing,
            "v2.core.health.event_generation_failure.resolved" => {
                ThinEventType::EventGenerationFailureResolved
            }
            _ => ThinEventType::Other,
        }
    }

    /// Whether `name` is shaped like a thin event's type (`v1.…`, `v2.…`): snapshot types
    /// never start with a version.
    pub fn is_thin_name(name: &str) -> bool {
        name.starts_with("v1.") || name.starts_with("v2.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            ThinEventType::parse("v2.core.event_destination.ping"),
            ThinEventType::DestinationPing
        );
        assert_eq!(
            ThinEventType::parse("v2.core.health.event_generation_failure.resolved"),
            ThinEventType::EventGenerationFailureResolved
        );
        assert_eq!(
            ThinEventType::parse("v1.billing.meter.error_report_triggered"),
            ThinEventType::Other
        );
        assert!(ThinEventType::is_thin_name(
            "v1.billing.meter.no_meter_found"
        ));
        assert!(!ThinEventType::is_thin_name(
            "snapshot_type.without_version"
        ));
    }
}
