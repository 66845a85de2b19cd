//! Builders of Stripe objects in the shapes of the fixtures (`../shared/fixtures`), trimmed to
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
