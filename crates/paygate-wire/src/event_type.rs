//! The Stripe event types Paygate handles: one list, parsed once at the edge.
//!
//! Policy: the table in this file is the only place a Stripe event type is spelled. Code that
//! routes, filters or lists events uses [`EventType`]; [`EventType::ALL`] is also the list of
//! events a merchant selects when registering the Paygate endpoint in Stripe, in the order it is
//! shown. An event whose type is not here is still stored and acknowledged (so it stays visible
//! and can be replayed once handled) but not handled: [`EventType::parse`] returns `None` and the
//! caller keeps the raw string. Adding a type is one line of the table (plus its handler).
//!
//! Older API versions: Stripe has used these same names for these events in every API version
//! Paygate has payloads for (the fixtures span 2017-12-14 to 2020-08-27), so there are no legacy
//! aliases to accept; `parse` matches Stripe's names exactly (case-sensitive, no trimming).
//! (The fixtures' upstream file `source.cancelled.json` is only a file name: the `type` in it is
//! `source.canceled`.)

use std::fmt;
use std::str::FromStr;

/// Declares [`EventType`] and its string/family table from one list of
/// `Variant = "stripe.name", Family;` lines.
macro_rules! event_types {
    ($( $variant:ident = $name:literal, $family:ident; )+) => {
        /// A Stripe event type Paygate handles. See the module docs for the policy.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )+
        }

        impl EventType {
            /// Every handled type, in the order shown to merchants ("events to select").
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            /// Stripe's name of the type, e.g. `"checkout.session.completed"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)+
                }
            }

            /// The type named `s`, or `None` for a type Paygate does not handle (the caller
            /// stores and acknowledges such an event, keeping the string).
            pub fn parse(s: &str) -> Option<EventType> {
                match s {
                    $($name => Some(EventType::$variant),)+
                    _ => None,
                }
            }

            /// The kind of Stripe object the event is about.
            pub const fn family(self) -> EventFamily {
                match self {
                    $(EventType::$variant => EventFamily::$family,)+
                }
            }
        }
    };
}

event_types! {
    CheckoutSessionCompleted = "checkout.session.completed", CheckoutSession;
    CheckoutSessionAsyncPaymentSucceeded = "checkout.session.async_payment_succeeded", CheckoutSession;
    CheckoutSessionAsyncPaymentFailed = "checkout.session.async_payment_failed", CheckoutSession;
    CheckoutSessionExpired = "checkout.session.expired", CheckoutSession;
    AccountUpdated = "account.updated", Account;
    IssuingCardUpdated = "issuing_card.updated", Issuing;
    IssuingCardholderUpdated = "issuing_cardholder.updated", Issuing;
    PaymentIntentCreated = "payment_intent.created", PaymentIntent;
    PaymentIntentProcessing = "payment_intent.processing", PaymentIntent;
    PaymentIntentRequiresAction = "payment_intent.requires_action", PaymentIntent;
    PaymentIntentAmountCapturableUpdated = "payment_intent.amount_capturable_updated", PaymentIntent;
    PaymentIntentSucceeded = "payment_intent.succeeded", PaymentIntent;
    PaymentIntentPaymentFailed = "payment_intent.payment_failed", PaymentIntent;
    PaymentIntentCanceled = "payment_intent.canceled", PaymentIntent;
    PaymentMethodAutomaticallyUpdated = "payment_method.automatically_updated", PaymentMethod;
    ChargeDisputeCreated = "charge.dispute.created", Dispute;
    ChargeDisputeUpdated = "charge.dispute.updated", Dispute;
    ChargeDisputeClosed = "charge.dispute.closed", Dispute;
    ChargeDisputeFundsWithdrawn = "charge.dispute.funds_withdrawn", Dispute;
    ChargeDisputeFundsReinstated = "charge.dispute.funds_reinstated", Dispute;
    ChargePending = "charge.pending", Charge;
    ChargeSucceeded = "charge.succeeded", Charge;
    ChargeFailed = "charge.failed", Charge;
    ChargeRefunded = "charge.refunded", Charge;
    RefundCreated = "refund.created", Refund;
    RefundUpdated = "refund.updated", Refund;
    RefundFailed = "refund.failed", Refund;
    RadarEarlyFraudWarningCreated = "radar.early_fraud_warning.created", EarlyFraudWarning;
    RadarEarlyFraudWarningUpdated = "radar.early_fraud_warning.updated", EarlyFraudWarning;
    SourceChargeable = "source.chargeable", Source;
    SourceFailed = "source.failed", Source;
    SourceCanceled = "source.canceled", Source;
    CustomerCreated = "customer.created", Customer;
    CustomerUpdated = "customer.updated", Customer;
    CustomerDeleted = "customer.deleted", Customer;
    CustomerSubscriptionCreated = "customer.subscription.created", Subscription;
    CustomerSubscriptionUpdated = "customer.subscription.updated", Subscription;
    CustomerSubscriptionDeleted = "customer.subscription.deleted", Subscription;
    CustomerSubscriptionPaused = "customer.subscription.paused", Subscription;
    CustomerSubscriptionResumed = "customer.subscription.resumed", Subscription;
    CustomerSubscriptionTrialWillEnd = "customer.subscription.trial_will_end", Subscription;
    InvoiceCreated = "invoice.created", Invoice;
    InvoiceFinalized = "invoice.finalized", Invoice;
    InvoicePaid = "invoice.paid", Invoice;
    InvoicePaymentSucceeded = "invoice.payment_succeeded", Invoice;
    InvoicePaymentFailed = "invoice.payment_failed", Invoice;
    InvoicePaymentActionRequired = "invoice.payment_action_required", Invoice;
    InvoiceUpcoming = "invoice.upcoming", Invoice;
    InvoiceVoided = "invoice.voided", Invoice;
    InvoiceMarkedUncollectible = "invoice.marked_uncollectible", Invoice;
}

/// The kind of Stripe object an event is about; one handler per family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventFamily {
    /// `checkout.session.*`
    CheckoutSession,
    /// `payment_intent.*`
    PaymentIntent,
    /// `charge.*` except disputes
    Charge,
    /// `charge.dispute.*`
    Dispute,
    /// `source.*` (the legacy Sources API)
    Source,
    /// `account.*`
    Account,
    /// `payment_method.*`
    PaymentMethod,
    /// `issuing_card.*` and `issuing_cardholder.*`
    Issuing,
    /// `refund.*`
    Refund,
    /// `radar.early_fraud_warning.*`
    EarlyFraudWarning,
    /// `customer.*` except subscriptions
    Customer,
    /// `customer.subscription.*`
    Subscription,
    /// `invoice.*`
    Invoice,
}

impl EventType {
    /// Whether the event's handler calls Stripe, and so must not run inside a shared
    /// transaction (it would hold the database while waiting on the network).
    pub const fn calls_stripe(self) -> bool {
        matches!(
            self.family(),
            EventFamily::CheckoutSession | EventFamily::EarlyFraudWarning
        ) || matches!(self, EventType::SourceChargeable)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Stripe event type Paygate does not handle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Paygate does not handle the Stripe event type {0:?}")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::parse(s).ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = EventType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Stripe event type Paygate handles")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EventType, E> {
                EventType::parse(v).ok_or_else(|| E::custom(UnknownEventType(v.to_owned())))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// `docs/stripe-events.md`: the events a merchant selects in Stripe, written from [`EventType::ALL`]
/// (a test keeps the file equal to it).
pub fn events_document() -> String {
    let mut out = String::from(
        "# Stripe events Paygate handles\n\n\
         Select these when you register your Paygate callback URL in Stripe (Developers →\n\
         Webhooks → Add endpoint). Generated from `paygate_wire::EventType` (the one list in the\n\
         code); a test fails when this file and the list differ.\n\n\
         | event | about |\n| --- | --- |\n",
    );
    for t in EventType::ALL {
        let about = match t.family() {
            EventFamily::CheckoutSession => "a Checkout Session: the order and its fulfillment",
            EventFamily::PaymentIntent => "a payment (PaymentIntent)",
            EventFamily::Charge => "a charge (orders paid with a legacy Source follow it)",
            EventFamily::Dispute => "a dispute on a charge",
            EventFamily::Source => "a legacy Source (charged once it is chargeable)",
            EventFamily::Account => "your Stripe account's status",
            EventFamily::PaymentMethod => "a card updated by the card network",
            EventFamily::Issuing => "an Issuing card or cardholder",
            EventFamily::Refund => "a refund (its status, and a refund that fails later)",
            EventFamily::EarlyFraudWarning => "an early fraud warning on a payment",
            EventFamily::Customer => "a customer (subscriptions and invoices are theirs)",
            EventFamily::Subscription => "a subscription",
            EventFamily::Invoice => "an invoice (renewals, dunning)",
        };
        out.push_str(&format!("| `{}` | {about} |\n", t.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_events_document_is_the_one_list() {
        let written = include_str!("../../../docs/stripe-events.md");
        let want = events_document();
        assert!(
            written == want,
            "docs/stripe-events.md is out of date; write this into it:\n{want}"
        );
    }

    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_type_round_trips_through_its_name() {
        for &t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t), "{t:?}");
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
    }

    #[test]
    fn all_lists_each_type_once() {
        let names: HashSet<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
        assert!(EventType::ALL.len() >= 27);
    }

    #[test]
    fn unknown_types_are_none() {
        for s in [
            "",
            "customer.create",
            "payment.succeeded",
            "order.paid",
            "dispute.opened",
            "Charge.succeeded",
            " charge.succeeded",
            "charge.succeeded ",
            "charge",
            "checkout.session",
            "source.cancelled",
            "v1.billing.meter.error_report_triggered",
        ] {
            assert_eq!(EventType::parse(s), None, "{s:?}");
            assert_eq!(s.parse::<EventType>(), Err(UnknownEventType(s.to_owned())));
        }
    }

    #[test]
    fn families_follow_the_object() {
        use EventFamily::*;
        for (s, family) in [
            ("checkout.session.expired", CheckoutSession),
            ("payment_intent.requires_action", PaymentIntent),
            ("charge.refunded", Charge),
            ("charge.dispute.funds_withdrawn", Dispute),
            ("source.chargeable", Source),
            ("account.updated", Account),
            ("payment_method.automatically_updated", PaymentMethod),
            ("issuing_card.updated", Issuing),
            ("issuing_cardholder.updated", Issuing),
        ] {
            assert_eq!(
                EventType::parse(s).map(EventType::family),
                Some(family),
                "{s}"
            );
        }
    }

    #[test]
    fn names_match_their_family_prefix() {
        for &t in EventType::ALL {
            let prefix = match t.family() {
                EventFamily::CheckoutSession => "checkout.session.",
                EventFamily::PaymentIntent => "payment_intent.",
                EventFamily::Charge => "charge.",
                EventFamily::Dispute => "charge.dispute.",
                EventFamily::Source => "source.",
                EventFamily::Account => "account.",
                EventFamily::PaymentMethod => "payment_method.",
                EventFamily::Issuing => "issuing_card",
                EventFamily::Refund => "refund.",
                EventFamily::EarlyFraudWarning => "radar.early_fraud_warning.",
                EventFamily::Customer => "customer.",
                EventFamily::Subscription => "customer.subscription.",
                EventFamily::Invoice => "invoice.",
            };
            assert!(t.as_str().starts_with(prefix), "{t:?}");
            if t.family() == EventFamily::Charge {
                assert!(!t.as_str().starts_with("charge.dispute."), "{t:?}");
            }
        }
    }

    #[test]
    fn only_checkout_sessions_fraud_warnings_and_chargeable_sources_call_stripe() {
        let calling: Vec<&str> = EventType::ALL
            .iter()
            .filter(|t| t.calls_stripe())
            .map(|t| t.as_str())
            .collect();
        assert_eq!(
            calling,
            [
                "checkout.session.completed",
                "checkout.session.async_payment_succeeded",
                "checkout.session.async_payment_failed",
                "checkout.session.expired",
                "radar.early_fraud_warning.created",
                "radar.early_fraud_warning.updated",
                "source.chargeable",
            ]
        );
    }

    #[test]
    fn serde_uses_stripe_names() {
        let json =
            serde_json::to_string(&EventType::ChargeDisputeClosed).map_err(|e| e.to_string());
        assert_eq!(json.as_deref(), Ok("\"charge.dispute.closed\""));
        let back: Result<EventType, _> = serde_json::from_str("\"charge.dispute.closed\"");
        assert_eq!(back.ok(), Some(EventType::ChargeDisputeClosed));
        let owned: Result<EventType, _> = serde_json::from_reader(&b"\"source.failed\""[..]);
        assert_eq!(owned.ok(), Some(EventType::SourceFailed));
        let unknown: Result<EventType, _> = serde_json::from_str("\"product.created\"");
        assert!(unknown.is_err());
    }
}
