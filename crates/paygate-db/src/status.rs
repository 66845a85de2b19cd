//! The statuses of what Paygate keeps, each list written once with its rank beside it.
//!
//! Policy: a status is stored as its string (`as_str`) and read back with `parse`; code compares
//! and moves statuses through these enums, never through string literals. The rank orders a
//! lifecycle (forward-only rules in `paygate_router::lifecycle` compare ranks); a *terminal*
//! status ends it. A string no enum knows (a status Stripe adds later) parses to `None` and
//! ranks lowest, so it never outranks a known one.

/// A status with a place in a lifecycle.
pub trait Lifecycle: Copy + Eq + Sized + 'static {
    /// Every status, lowest rank first.
    const ALL: &'static [Self];
    /// The stored / wire name.
    fn as_str(self) -> &'static str;
    /// Its rank in the lifecycle (higher is later).
    fn rank(self) -> i32;
    /// Whether it ends the lifecycle.
    fn is_terminal(self) -> bool;

    /// The status named `s`, if it is one of these.
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
    /// The rank of the status named `s` (an unknown one ranks lowest, -1).
    fn rank_of(s: &str) -> i32 {
        Self::parse(s).map_or(-1, Self::rank)
    }
    /// The names of the terminal statuses.
    fn terminal_names() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|v| v.is_terminal())
            .map(|v| v.as_str())
            .collect()
    }
}

/// Declares a status enum: `Variant = "name", rank, terminal?;` per line.
macro_rules! statuses {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $s:literal, $rank:literal, $terminal:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("`", $s, "`")]
                $variant,
            )+
        }

        impl Lifecycle for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s,)+ }
            }
            fn rank(self) -> i32 {
                match self { $($name::$variant => $rank,)+ }
            }
            fn is_terminal(self) -> bool {
                match self { $($name::$variant => $terminal,)+ }
            }
        }

        impl $name {
            /// The stored / wire name.
            pub fn as_str(self) -> &'static str {
                Lifecycle::as_str(self)
            }
            /// The status named `s`, if it is one of these.
            pub fn parse(s: &str) -> Option<Self> {
                <Self as Lifecycle>::parse(s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }
    };
}

statuses! {
    /// A Paygate order. Money that moved outranks a failure report, and a failure report
    /// outranks waiting; `charging` (a Source charge created, its outcome not known yet) ranks
    /// above `awaiting_payment` so the order can move there, and below every outcome. On the
    /// same rank the first status stays. Orders never end for good except `fulfilled`: a paid
    /// order may still be fulfilled, a failed one may still be paid by a later attempt.
    OrderStatus {
        Open = "open", 0, false;
        AwaitingPayment = "awaiting_payment", 1, false;
        Charging = "charging", 2, false;
        PaymentFailed = "payment_failed", 3, true;
        Expired = "expired", 3, true;
        Canceled = "canceled", 3, true;
        Paid = "paid", 4, false;
        Fulfilled = "fulfilled", 5, true;
        PartiallyRefunded = "partially_refunded", 6, false;
        Refunded = "refunded", 7, false;
    }
}

statuses! {
    /// A Stripe Refund. A refund that succeeded may still fail later (the bank returns it):
    /// only `failed` and `canceled` end it.
    RefundStatus {
        Pending = "pending", 0, false;
        RequiresAction = "requires_action", 1, false;
        Succeeded = "succeeded", 2, false;
        Failed = "failed", 3, true;
        Canceled = "canceled", 3, true;
    }
}

statuses! {
    /// A Stripe PaymentIntent (Paygate's "payment").
    PaymentStatus {
        RequiresPaymentMethod = "requires_payment_method", 0, false;
        RequiresConfirmation = "requires_confirmation", 1, false;
        RequiresAction = "requires_action", 2, false;
        Processing = "processing", 3, false;
        RequiresCapture = "requires_capture", 4, false;
        Canceled = "canceled", 5, true;
        Succeeded = "succeeded", 6, true;
    }
}

statuses! {
    /// A Stripe Charge.
    ChargeStatus {
        Pending = "pending", 0, false;
        Failed = "failed", 1, true;
        Succeeded = "succeeded", 2, true;
    }
}

statuses! {
    /// A Stripe Dispute.
    DisputeStatus {
        WarningNeedsResponse = "warning_needs_response", 0, false;
        WarningUnderReview = "warning_under_review", 1, false;
        NeedsResponse = "needs_response", 2, false;
        UnderReview = "under_review", 3, false;
        ChargeRefunded = "charge_refunded", 4, false;
        WarningClosed = "warning_closed", 9, true;
        Won = "won", 9, true;
        Lost = "lost", 9, true;
        Prevented = "prevented", 9, true;
    }
}

statuses! {
    /// A legacy Stripe Source.
    SourceStatus {
        Pending = "pending", 0, false;
        Chargeable = "chargeable", 1, false;
        Consumed = "consumed", 2, true;
        Failed = "failed", 2, true;
        Canceled = "canceled", 2, true;
    }
}

statuses! {
    /// A delivery of a notification message (to an endpoint or a shopper's inbox).
    NotificationStatus {
        Pending = "pending", 0, false;
        Succeeded = "succeeded", 1, true;
        Failed = "failed", 1, true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<S: Lifecycle + std::fmt::Debug>() {
        for &s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        assert_eq!(S::parse("no_such_status"), None);
        assert_eq!(S::rank_of("no_such_status"), -1);
    }

    #[test]
    fn every_status_round_trips_and_unknown_ones_rank_lowest() {
        round_trips::<OrderStatus>();
        round_trips::<PaymentStatus>();
        round_trips::<ChargeStatus>();
        round_trips::<DisputeStatus>();
        round_trips::<SourceStatus>();
        round_trips::<RefundStatus>();
        round_trips::<NotificationStatus>();
    }

    #[test]
    fn ranks_follow_the_lifecycles() {
        assert!(OrderStatus::Paid.rank() > OrderStatus::PaymentFailed.rank());
        assert!(OrderStatus::Fulfilled.rank() > OrderStatus::Paid.rank());
        assert_eq!(OrderStatus::Expired.rank(), OrderStatus::Canceled.rank());
        assert!(PaymentStatus::Succeeded.is_terminal());
        assert!(!PaymentStatus::Processing.is_terminal());
        assert_eq!(
            DisputeStatus::terminal_names(),
            ["warning_closed", "won", "lost", "prevented"]
        );
        let stored = String::from("paid");
        assert!(stored == OrderStatus::Paid);
    }
}
