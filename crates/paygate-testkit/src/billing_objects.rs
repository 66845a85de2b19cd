//! Builders of Stripe billing objects (issue 19: customers, subscriptions, invoices) in the
//! shapes of `fixtures/stripe-objects/{customer,subscription,subscription_item,invoice}.json`,
//! trimmed to what matters, in the shape of an older API version or of the newest ("basil",
//! 2025-03-31 on: the current period on each item, the invoice's subscription under `parent`).

use serde_json::{Value, json};

/// Which API version's shape to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Before 2025-03-31 (e.g. `2024-06-20`).
    Old,
    /// 2025-03-31 ("basil") and later.
    Basil,
}

impl Shape {
    /// The `api_version` of events of this shape.
    pub fn api_version(self) -> &'static str {
        match self {
            Shape::Old => "2024-06-20",
            Shape::Basil => "2025-03-31.basil",
        }
    }
}

/// A customer with an e-mail address and preferred locales.
pub fn customer(id: &str, email: &str, locales: &[&str]) -> Value {
    json!({
        "id": id, "object": "customer", "address": null, "balance": 0, "created": 1_700_000_000,
        "currency": "eur", "default_source": null, "delinquent": false, "description": null,
        "email": email, "invoice_prefix": "7FE1103", "livemode": false, "metadata": {},
        "name": "Mario Rossi", "phone": null, "preferred_locales": locales, "tax_exempt": "none",
    })
}

/// A subscription of `customer` to one monthly price of 20.00 EUR (quantity `quantity`), in
/// `status`, its period `[period_start, period_start + 30 days)`, in the shape of `shape`.
pub fn subscription(
    id: &str,
    customer: &str,
    status: &str,
    quantity: i64,
    period_start: i64,
    shape: Shape,
) -> Value {
    let period_end = period_start + 30 * 86_400;
    let mut item = json!({
        "id": format!("si_{id}"), "object": "subscription_item", "created": 1_700_000_000,
        "metadata": {}, "quantity": quantity, "subscription": id, "tax_rates": [],
        "price": {
            "id": "price_monthly", "object": "price", "active": true, "currency": "eur",
            "product": "prod_gold", "type": "recurring", "unit_amount": 2000,
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
        },
        "plan": {
            "id": "price_monthly", "object": "plan", "amount": 2000, "currency": "eur",
            "interval": "month", "interval_count": 1, "product": "prod_gold",
        },
    });
    let mut s = json!({
        "id": id, "object": "subscription", "customer": customer, "status": status,
        "created": 1_700_000_000, "currency": "eur", "livemode": false, "metadata": {},
        "cancel_at": null, "cancel_at_period_end": false, "canceled_at": null, "ended_at": null,
        "collection_method": "charge_automatically", "latest_invoice": null,
        "pause_collection": null, "trial_start": null, "trial_end": null,
        "items": {"object": "list", "data": [], "has_more": false},
    });
    match shape {
        Shape::Old => {
            s["current_period_start"] = json!(period_start);
            s["current_period_end"] = json!(period_end);
        }
        Shape::Basil => {
            item["current_period_start"] = json!(period_start);
            item["current_period_end"] = json!(period_end);
            if let Some(o) = item.as_object_mut() {
                o.remove("plan");
            }
        }
    }
    s["items"]["data"] = json!([item]);
    s
}

/// An invoice of `subscription` for `customer` (20.00 EUR), in `status`, after
/// `attempt_count` attempts, in the shape of `shape`.
pub fn invoice(
    id: &str,
    customer: &str,
    subscription: &str,
    status: &str,
    attempt_count: i64,
    shape: Shape,
) -> Value {
    let paid = status == "paid";
    let mut i = json!({
        "id": id, "object": "invoice", "customer": customer, "customer_email": null,
        "status": status, "number": format!("NR-{id}"), "currency": "eur",
        "amount_due": 2000, "amount_paid": if paid { 2000 } else { 0 },
        "amount_remaining": if paid { 0 } else { 2000 }, "attempt_count": attempt_count,
        "attempted": attempt_count > 0, "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically", "created": 1_700_000_000,
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_1/{id}"),
        "invoice_pdf": null, "livemode": false, "metadata": {},
        "next_payment_attempt": if paid || attempt_count == 0 { Value::Null } else { json!(1_800_000_000 + attempt_count * 86_400) },
        "lines": {"object": "list", "data": [], "has_more": false},
    });
    match shape {
        Shape::Old => i["subscription"] = json!(subscription),
        Shape::Basil => {
            i["parent"] = json!({
                "type": "subscription_details", "quote_details": null,
                "subscription_details": {"metadata": {}, "subscription": subscription},
            });
        }
    }
    i
}
