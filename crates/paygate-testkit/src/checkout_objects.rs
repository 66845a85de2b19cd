//! A fake Stripe Checkout for tests: answers `GET /v1/checkout/sessions/{id}` (with
//! `line_items` expanded) and `GET /v1/checkout/sessions/{id}/line_items?starting_after=…` for
//! any session id, so a test can use as many sessions as it likes with one mock. Sessions whose
//! id contains `missing` are unknown to it (404 `resource_missing`, as Stripe answers).

use std::collections::HashMap;

use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::objects::checkout_session;

/// What the fake answers for every session.
#[derive(Clone, Debug)]
pub struct FakeCheckout {
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    /// Line items per session (`li_1` … `li_n`).
    pub line_items: usize,
    /// Line items per page.
    pub page_size: usize,
    /// Amount of each line item, minor units.
    pub unit_amount: i64,
    /// Sessions answered with their own object (line items are still attached).
    pub sessions: HashMap<String, Value>,
}

impl FakeCheckout {
    /// Sessions with `payment_status`, `line_items` items over pages of `page_size`.
    pub fn new(payment_status: &str, line_items: usize, page_size: usize) -> Self {
        Self {
            payment_status: payment_status.to_owned(),
            line_items,
            page_size: page_size.max(1),
            unit_amount: 1000,
            sessions: HashMap::new(),
        }
    }

    /// Answers `session["id"]` with `session` instead of the default object.
    pub fn with_session(mut self, session: Value) -> Self {
        if let Some(id) = session["id"].as_str() {
            self.sessions.insert(id.to_owned(), session);
        }
        self
    }

    /// Mounts the fake on `server`.
    pub async fn mount(self, server: &MockServer) {
        Mock::given(method("GET"))
            .and(path_regex(
                r"^/v1/checkout/sessions/cs_[A-Za-z0-9_]+(/line_items)?$",
            ))
            .respond_with(self)
            .mount(server)
            .await;
    }

    fn item(&self, i: usize) -> Value {
        json!({
            "id": format!("li_{i}"), "object": "item", "amount_subtotal": self.unit_amount,
            "amount_total": self.unit_amount, "currency": "eur", "description": format!("Item {i}"),
            "quantity": 1,
            "price": {"id": format!("price_{i}"), "object": "price", "product": format!("prod_{i}"),
                      "unit_amount": self.unit_amount, "currency": "eur"},
        })
    }

    /// Items after `starting_after` (or from the first), one page.
    fn page(&self, session: &str, starting_after: Option<&str>) -> Value {
        let from = starting_after
            .and_then(|s| s.strip_prefix("li_"))
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(1, |n| n + 1);
        let to = (from + self.page_size - 1).min(self.line_items);
        let data: Vec<Value> = (from..=to).map(|i| self.item(i)).collect();
        json!({
            "object": "list", "has_more": to < self.line_items, "data": data,
            "url": format!("/v1/checkout/sessions/{session}/line_items"),
        })
    }
}

/// Stripe's answer for an object that does not exist.
pub fn resource_missing(param: &str) -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({"error": {
        "type": "invalid_request_error", "code": "resource_missing", "param": param,
        "message": format!("No such checkout.session: '{param}'"),
    }}))
}

impl Respond for FakeCheckout {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let parts: Vec<&str> = req.url.path().split('/').collect();
        // ["", "v1", "checkout", "sessions", id, ("line_items")]
        let Some(id) = parts.get(4).copied() else {
            return ResponseTemplate::new(400);
        };
        if id.contains("missing") {
            return resource_missing(id);
        }
        if parts.get(5) == Some(&"line_items") {
            let after = req
                .url
                .query_pairs()
                .find(|(k, _)| k == "starting_after")
                .map(|(_, v)| v.into_owned());
            return ResponseTemplate::new(200).set_body_json(self.page(id, after.as_deref()));
        }
        let total = self.unit_amount * i64::try_from(self.line_items).unwrap_or(0);
        let mut s = self
            .sessions
            .get(id)
            .cloned()
            .unwrap_or_else(|| checkout_session(id, &self.payment_status, total));
        s["line_items"] = self.page(id, None);
        ResponseTemplate::new(200).set_body_json(s)
    }
}
