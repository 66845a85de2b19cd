//! Builders of Stripe objects in the shapes of the fixtures (`fixtures/` of this crate), trimmed to
//! what matters, and of events around them at a given `created`.

use serde_json::{Value, json};

/// An event of `event_type` around `object`, created at `created`, with a fresh id.
pub fn event_at(event_type: &str, object: Value, created: i64) -> Value {
    let mut e = crate::event(event_type, object);
    e["created"] = json!(created);
    e
}

/// A payment intent.
pub fn payment_intent(id: &str, status: &str, amount: i64) -> Value {
    let received = if status == "succeeded" { amount } else { 0 };
    let capturable = if status == "requires_capture" {
        amount
    } else {
        0
    };
    json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": capturable,
        "amount_received": received, "currency": "eur", "customer": "cus_TestCustomer",
        "capture_method": "automatic", "cancellation_reason": null, "created": 1_700_000_000,
        "last_payment_error": null, "livemode": false, "metadata": {}, "payment_method": "pm_1",
        "payment_method_types": ["card"], "status": status,
    })
}

/// A charge.
pub fn charge(
    id: &str,
    status: &str,
    amount: i64,
    payment_intent: Option<&str>,
    source: Option<&str>,
) -> Value {
    json!({
        "id": id, "object": "charge", "amount": amount, "amount_captured": if status == "succeeded" { amount } else { 0 },
        "amount_refunded": 0, "captured": status == "succeeded", "currency": "eur", "disputed": false,
        "failure_code": if status == "failed" { json!("card_declined") } else { Value::Null },
        "failure_message": if status == "failed" { json!("Your card was declined.") } else { Value::Null },
        "livemode": false, "paid": status == "succeeded", "payment_intent": payment_intent, "refunded": false,
        "source": source.map(|s| json!({"id": s, "object": "source", "type": "sofort"})), "status": status,
    })
}

/// A dispute on a charge; `withdrawn`/`reinstated` add the balance transactions Stripe lists.
pub fn dispute(
    id: &str,
    status: &str,
    charge: &str,
    payment_intent: &str,
    amount: i64,
    withdrawn: bool,
    reinstated: bool,
) -> Value {
    let mut bts = Vec::new();
    if withdrawn {
        bts.push(json!({"id": "txn_w", "object": "balance_transaction", "amount": -amount, "type": "adjustment", "reporting_category": "dispute"}));
    }
    if reinstated {
        bts.push(json!({"id": "txn_r", "object": "balance_transaction", "amount": amount, "type": "adjustment", "reporting_category": "dispute_reversal"}));
    }
    json!({
        "id": id, "object": "dispute", "amount": amount, "balance_transactions": bts, "charge": charge,
        "currency": "eur", "evidence_details": {"due_by": 1_900_000_000, "has_evidence": false, "past_due": false, "submission_count": 0},
        "is_charge_refundable": false, "livemode": false, "metadata": {}, "payment_intent": payment_intent,
        "reason": "fraudulent", "status": status,
    })
}

/// A legacy Source.
pub fn source(id: &str, status: &str, amount: i64) -> Value {
    json!({"id": id, "object": "source", "amount": amount, "currency": "eur", "flow": "redirect", "livemode": false, "status": status, "type": "sofort", "usage": "single_use"})
}

/// A Checkout Session.
pub fn checkout_session(id: &str, payment_status: &str, amount_total: i64) -> Value {
    json!({
        "id": id, "object": "checkout.session", "amount_subtotal": amount_total, "amount_total": amount_total,
        "client_reference_id": "cart_42", "currency": "eur",
        "customer_details": {"email": "shopper@example.com", "name": "Mario Rossi"}, "customer_email": null,
        "livemode": false, "metadata": {}, "mode": "payment", "payment_intent": format!("pi_for_{id}"),
        "payment_status": payment_status, "status": "complete", "url": null,
    })
}

/// A page of line items as `GET /v1/checkout/sessions/{id}/line_items` answers.
pub fn line_items_page(session: &str, ids: &[&str], has_more: bool) -> Value {
    json!({
        "object": "list", "has_more": has_more, "url": format!("/v1/checkout/sessions/{session}/line_items"),
        "data": ids.iter().map(|id| json!({
            "id": id, "object": "item", "amount_subtotal": 1000, "amount_total": 1000, "currency": "eur",
            "description": format!("Item {id}"), "quantity": 1,
            "price": {"id": format!("price_{id}"), "object": "price", "product": format!("prod_{id}"), "unit_amount": 1000, "currency": "eur"},
        })).collect::<Vec<_>>(),
    })
}

/// An account.
pub fn account(id: &str, charges_enabled: bool, due: &[&str]) -> Value {
    json!({
        "id": id, "object": "account", "charges_enabled": charges_enabled, "payouts_enabled": charges_enabled,
        "details_submitted": true, "requirements": {"currently_due": due, "disabled_reason": if charges_enabled { Value::Null } else { json!("requirements.past_due") }},
    })
}

/// A payment method with a card, as `payment_method.automatically_updated` carries it.
pub fn payment_method(
    id: &str,
    customer: &str,
    brand: &str,
    last4: &str,
    exp_month: i64,
    exp_year: i64,
) -> Value {
    json!({
        "id": id, "object": "payment_method", "billing_details": {"email": null, "name": null},
        "card": {"brand": brand, "country": "GB", "exp_month": exp_month, "exp_year": exp_year,
                 "funding": "debit", "last4": last4, "networks": {"available": [brand], "preferred": null}},
        "created": 1_700_000_000, "customer": customer, "livemode": false, "metadata": {}, "type": "card",
    })
}

/// An Issuing card (`issuing_card.updated`).
pub fn issuing_card(id: &str, status: &str) -> Value {
    json!({
        "id": id, "object": "issuing.card", "brand": "Visa", "cancellation_reason": null,
        "cardholder": {"id": "ich_1", "object": "issuing.cardholder", "status": "active"},
        "currency": "eur", "exp_month": 8, "exp_year": 2029, "last4": "0005", "livemode": false,
        "status": status, "type": "virtual",
    })
}

/// An Issuing cardholder (`issuing_cardholder.updated`).
pub fn issuing_cardholder(id: &str, status: &str) -> Value {
    json!({
        "id": id, "object": "issuing.cardholder", "email": "holder@example.com", "livemode": false,
        "name": "Jenny Rosen", "status": status, "type": "individual",
    })
}

/// The event types of which `fixtures/stripe-events/` holds a real payload.
pub const FIXTURE_EVENT_TYPES: &[&str] = &[
    "account.updated",
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
    "charge.failed",
    "charge.pending",
    "charge.succeeded",
    "checkout.session.completed",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.succeeded",
    "payment_method.automatically_updated",
    "source.canceled",
    "source.chargeable",
    "source.failed",
];

fn fixture_text(event_type: &str) -> Option<&'static str> {
    macro_rules! fixtures {
        ($($name:literal),* $(,)?) => {
            match event_type {
                $($name => Some(include_str!(concat!("../fixtures/stripe-events/", $name, ".json"))),)*
                _ => None,
            }
        };
    }
    fixtures!(
        "account.updated",
        "charge.dispute.closed",
        "charge.dispute.created",
        "charge.dispute.funds_reinstated",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.failed",
        "charge.pending",
        "charge.succeeded",
        "checkout.session.completed",
        "payment_intent.amount_capturable_updated",
        "payment_intent.canceled",
        "payment_intent.created",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.succeeded",
        "payment_method.automatically_updated",
        "source.canceled",
        "source.chargeable",
        "source.failed",
    )
}

/// The real Stripe payload of `event_type` from `fixtures/stripe-events/` (see its
/// `SOURCES.md`), unchanged except for a fresh event id, so it can be delivered many times.
/// Panics on a type without a sample (see [`FIXTURE_EVENT_TYPES`]).
pub fn fixture_event(event_type: &str) -> Value {
    let text = fixture_text(event_type)
        .unwrap_or_else(|| panic!("no Stripe sample of {event_type} in fixtures/stripe-events"));
    let mut e: Value = serde_json::from_str(text).unwrap();
    e["id"] = json!(crate::unique("evt_fixture_"));
    e
}

/// The real Stripe object `issuing.card` or `issuing.cardholder` from `fixtures/stripe-objects/`.
pub fn fixture_object(name: &str) -> Value {
    let text = match name {
        "issuing.card" => include_str!("../fixtures/stripe-objects/issuing.card.json"),
        "issuing.cardholder" => include_str!("../fixtures/stripe-objects/issuing.cardholder.json"),
        _ => panic!("no Stripe sample of the object {name} in fixtures/stripe-objects"),
    };
    serde_json::from_str(text).unwrap()
}

/// A refund of a charge (and of its payment intent, when it has one).
pub fn refund(
    id: &str,
    status: &str,
    amount: i64,
    charge: &str,
    payment_intent: Option<&str>,
) -> Value {
    json!({
        "id": id, "object": "refund", "amount": amount, "balance_transaction": null,
        "charge": charge, "created": 1_700_000_100, "currency": "eur",
        "destination_details": {"card": {"type": "reversal"}, "type": "card"},
        "failure_reason": if status == "failed" { json!("expired_or_canceled_card") } else { Value::Null },
        "metadata": {}, "payment_intent": payment_intent, "reason": "requested_by_customer",
        "receipt_number": null, "status": status,
    })
}

/// A Radar early fraud warning on a charge.
pub fn early_fraud_warning(
    id: &str,
    charge: &str,
    payment_intent: Option<&str>,
    fraud_type: &str,
    actionable: bool,
) -> Value {
    json!({
        "id": id, "object": "radar.early_fraud_warning", "actionable": actionable,
        "charge": charge, "created": 1_700_000_200, "fraud_type": fraud_type, "livemode": false,
        "payment_intent": payment_intent,
    })
}
