//! Forward-only state. Stripe guarantees neither order nor single delivery, so a stored state is
//! replaced only by a *newer* one:
//!
//! 1. a terminal status (a payment `succeeded`/`canceled`, a dispute `won`/`lost`/…) is never
//!    replaced by a non-terminal one, whatever the times say (a late `processing` never
//!    overwrites `succeeded`; an `updated` after `closed` never reopens a dispute);
//! 2. otherwise the event's `created` decides, and on a tie the status's rank in its lifecycle;
//! 3. the same (created, status) again changes nothing, so every handler is idempotent.
//!
//! Monotonic facts (a dispute on a payment, money withdrawn, an amount refunded) only ever grow.

/// Kinds of Stripe object whose status has a lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    PaymentIntent,
    Charge,
    Dispute,
    Source,
    Order,
}

/// The rank of `status` in the lifecycle of `kind` (unknown statuses rank lowest).
pub fn rank(kind: Kind, status: &str) -> i32 {
    match kind {
        Kind::PaymentIntent => match status {
            "requires_payment_method" => 0,
            "requires_confirmation" => 1,
            "requires_action" => 2,
            "processing" => 3,
            "requires_capture" => 4,
            "canceled" => 5,
            "succeeded" => 6,
            _ => -1,
        },
        Kind::Charge => match status {
            "pending" => 0,
            "failed" => 1,
            "succeeded" => 2,
            _ => -1,
        },
        Kind::Dispute => match status {
            "warning_needs_response" => 0,
            "warning_under_review" => 1,
            "needs_response" => 2,
            "under_review" => 3,
            "charge_refunded" => 4,
            "warning_closed" | "won" | "lost" | "prevented" => 9,
            _ => -1,
        },
        Kind::Source => match status {
            "pending" => 0,
            "chargeable" => 1,
            "consumed" | "failed" | "canceled" => 2,
            _ => -1,
        },
        Kind::Order => order_rank(status),
    }
}

/// Whether `status` ends the lifecycle of `kind`.
pub fn is_terminal(kind: Kind, status: &str) -> bool {
    match kind {
        Kind::PaymentIntent => matches!(status, "succeeded" | "canceled"),
        Kind::Charge => matches!(status, "succeeded" | "failed"),
        Kind::Dispute => matches!(status, "warning_closed" | "won" | "lost" | "prevented"),
        Kind::Source => matches!(status, "consumed" | "failed" | "canceled"),
        Kind::Order => matches!(
            status,
            "fulfilled" | "payment_failed" | "expired" | "canceled"
        ),
    }
}

/// Whether (`new_status`, `new_created`) should replace (`old_status`, `old_created`).
pub fn is_newer(
    kind: Kind,
    old_status: &str,
    old_created: i64,
    new_status: &str,
    new_created: i64,
) -> bool {
    let (old_t, new_t) = (is_terminal(kind, old_status), is_terminal(kind, new_status));
    if old_t != new_t {
        return new_t;
    }
    (new_created, rank(kind, new_status)) > (old_created, rank(kind, old_status))
}

/// Order statuses: `open`, `awaiting_payment`, `charging`, `payment_failed`, `expired`,
/// `canceled`, `paid`, `fulfilled`. Money that moved outranks a failure report.
pub fn order_rank(status: &str) -> i32 {
    match status {
        "open" => 0,
        "awaiting_payment" => 1,
        "charging" => 2,
        "payment_failed" | "expired" | "canceled" => 3,
        "paid" => 4,
        "fulfilled" => 5,
        _ => -1,
    }
}

/// Whether an order may move from `old` to `new`: only to a higher rank.
pub fn order_advances(old: &str, new: &str) -> bool {
    order_rank(new) > order_rank(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_processing_never_overwrites_succeeded() {
        assert!(!is_newer(
            Kind::PaymentIntent,
            "succeeded",
            10,
            "processing",
            20
        ));
        assert!(is_newer(
            Kind::PaymentIntent,
            "processing",
            20,
            "succeeded",
            10
        ));
        assert!(is_newer(
            Kind::PaymentIntent,
            "requires_payment_method",
            10,
            "processing",
            10
        ));
        assert!(!is_newer(
            Kind::PaymentIntent,
            "processing",
            10,
            "processing",
            10
        ));
    }

    #[test]
    fn closed_dispute_is_never_reopened() {
        assert!(!is_newer(Kind::Dispute, "lost", 5, "under_review", 9));
        assert!(is_newer(Kind::Dispute, "under_review", 9, "won", 5));
    }

    #[test]
    fn orders_only_move_up() {
        assert!(order_advances("open", "awaiting_payment"));
        assert!(order_advances("payment_failed", "paid"));
        assert!(!order_advances("fulfilled", "paid"));
        assert!(!order_advances("expired", "awaiting_payment"));
    }
}
