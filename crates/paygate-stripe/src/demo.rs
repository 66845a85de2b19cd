//! The demo stand-in: the few Stripe API calls Paygate makes, answered in process for the demo
//! company of `paygate demo` and for nothing else.
//!
//! Policy:
//! - **Only a demo key reaches it.** A call is answered here when, and only when, the secret key
//!   starts with [`DEMO_KEY_PREFIX`] (`sk_test_paygate_demo_…`). A live key (`sk_live_…`,
//!   `rk_live_…`) can never start so, and no key Stripe issues does either; tenant validation
//!   accepts such a key in the demo company's profile only (`paygate_tenant::validate`). Every
//!   other key goes to Stripe as before: the stand-in adds one prefix comparison per call.
//! - **Nothing to keep.** The stand-in holds no state: a demo Checkout Session's id says what the
//!   session is ([`DemoCart`]: the shopper, the currency, the products and quantities from the
//!   fixed [`CATALOGUE`]), and the session with its line items is synthesised from it, so any
//!   replica answers the same and a restart forgets nothing. Every session it describes is paid
//!   (the demo's payments all go through in the end; the demo's failed checkouts are told by
//!   events that need no call to Stripe).
//! - **What it answers**: `GET /v1/checkout/sessions/{id}` (with its line items) and
//!   `GET /v1/checkout/sessions/{id}/line_items`; `GET /v1/events` (an empty list: the demo has
//!   no missed events to recover); `GET /v1/account` (a demo account). A session id that is not
//!   a demo cart is `404 resource_missing`, as Stripe answers; any other call is refused with
//!   `400 invalid_request_error`, code `paygate_demo_unsupported`.
//! - Everything it returns is test mode (`livemode: false`) and carries the metadata
//!   `paygate_demo: "true"`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::error::StripeError;

/// The start of every demo secret key: the stand-in answers calls made with such a key.
pub const DEMO_KEY_PREFIX: &str = "sk_test_paygate_demo_";

/// The start of every demo Checkout Session id (test mode, as Stripe's `cs_test_…`).
pub const DEMO_SESSION_PREFIX: &str = "cs_test_paygatedemo_";

/// The metadata key every demo object carries (value `"true"`).
pub const DEMO_METADATA_KEY: &str = "paygate_demo";

/// Whether `secret_key` is a demo key (see the module policy).
#[must_use]
pub fn is_demo_key(secret_key: &str) -> bool {
    secret_key.starts_with(DEMO_KEY_PREFIX)
}

/// A product of the demo shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    /// Its letter in a session id.
    pub code: char,
    pub name: &'static str,
    /// Price in minor units.
    pub unit_amount: i64,
}

/// What the demo shop sells.
pub const CATALOGUE: &[Product] = &[
    Product {
        code: 'a',
        name: "Espresso beans, 1 kg",
        unit_amount: 2490,
    },
    Product {
        code: 'b',
        name: "Ceramic mug",
        unit_amount: 1200,
    },
    Product {
        code: 'c',
        name: "Hand grinder",
        unit_amount: 6900,
    },
    Product {
        code: 'd',
        name: "Paper filters (100)",
        unit_amount: 450,
    },
    Product {
        code: 'e',
        name: "Gooseneck kettle",
        unit_amount: 5400,
    },
];

/// The demo shop's (made-up) shoppers: name and e-mail (`example.com`, which receives no mail).
pub const SHOPPERS: &[(&str, &str)] = &[
    ("Giulia Bianchi", "giulia.bianchi@example.com"),
    ("Lukas Weber", "lukas.weber@example.com"),
    ("Emma Martin", "emma.martin@example.com"),
    ("Sofia Rossi", "sofia.rossi@example.com"),
    ("Jonas Keller", "jonas.keller@example.com"),
];

/// A demo Checkout Session, as its id spells it:
/// `cs_test_paygatedemo_<nonce>_<shopper>_<currency>_<code><quantity>…`, e.g.
/// `cs_test_paygatedemo_k3x9q2_0_eur_a2b1` (two bags of beans and a mug for Giulia, in euros).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCart {
    /// Letters and digits only; makes the id unique.
    pub nonce: String,
    /// Index into [`SHOPPERS`].
    pub shopper: usize,
    /// Lowercase ISO code, e.g. `eur`.
    pub currency: String,
    /// Index into [`CATALOGUE`] and quantity (1 to 9).
    pub items: Vec<(usize, u32)>,
}

impl DemoCart {
    /// The session id that describes this cart.
    #[must_use]
    pub fn session_id(&self) -> String {
        let items: String = self
            .items
            .iter()
            .map(|&(p, q)| format!("{}{q}", CATALOGUE[p % CATALOGUE.len()].code))
            .collect();
        format!(
            "{DEMO_SESSION_PREFIX}{}_{}_{}_{items}",
            self.nonce, self.shopper, self.currency
        )
    }

    /// The cart a demo session id describes, or `None` for any other id.
    #[must_use]
    pub fn parse(session_id: &str) -> Option<Self> {
        let rest = session_id.strip_prefix(DEMO_SESSION_PREFIX)?;
        let parts: Vec<&str> = rest.split('_').collect();
        let [nonce, shopper, currency, items] = parts.as_slice() else {
            return None;
        };
        let alnum = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !alnum(nonce) || currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase())
        {
            return None;
        }
        let shopper: usize = shopper.parse().ok().filter(|&s| s < SHOPPERS.len())?;
        let bytes = items.as_bytes();
        if bytes.is_empty() || bytes.len() % 2 != 0 {
            return None;
        }
        let mut cart = Vec::new();
        for pair in bytes.chunks(2) {
            let product = CATALOGUE
                .iter()
                .position(|p| p.code as u32 == u32::from(pair[0]))?;
            let quantity = char::from(pair[1]).to_digit(10).filter(|&q| q > 0)?;
            cart.push((product, quantity));
        }
        Some(Self {
            nonce: (*nonce).to_owned(),
            shopper,
            currency: (*currency).to_owned(),
            items: cart,
        })
    }

    /// The total, in minor units.
    #[must_use]
    pub fn amount_total(&self) -> i64 {
        self.items
            .iter()
            .map(|&(p, q)| CATALOGUE[p % CATALOGUE.len()].unit_amount * i64::from(q))
            .sum()
    }

    /// The id of the session's payment intent.
    #[must_use]
    pub fn payment_intent_id(&self) -> String {
        format!("pi_paygatedemo_{}", self.nonce)
    }

    /// The shopper's name and e-mail.
    #[must_use]
    pub fn shopper(&self) -> (&'static str, &'static str) {
        SHOPPERS[self.shopper % SHOPPERS.len()]
    }

    /// The line items, as `GET /v1/checkout/sessions/{id}/line_items` lists them.
    #[must_use]
    pub fn line_items(&self) -> Vec<Value> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, &(p, q))| {
                let p = CATALOGUE[p % CATALOGUE.len()];
                let total = p.unit_amount * i64::from(q);
                json!({
                    "id": format!("li_paygatedemo_{}_{}", self.nonce, i + 1),
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": total,
                    "amount_tax": 0,
                    "amount_total": total,
                    "currency": self.currency,
                    "description": p.name,
                    "quantity": q,
                    "price": {
                        "id": format!("price_paygatedemo_{}", p.code),
                        "object": "price",
                        "active": true,
                        "currency": self.currency,
                        "livemode": false,
                        "metadata": {DEMO_METADATA_KEY: "true"},
                        "product": format!("prod_paygatedemo_{}", p.code),
                        "type": "one_time",
                        "unit_amount": p.unit_amount,
                    },
                })
            })
            .collect()
    }

    /// The session as a webhook carries it (no line items), with `payment_status` and
    /// `created`.
    #[must_use]
    pub fn session(&self, payment_status: &str, created: i64) -> Value {
        let (name, email) = self.shopper();
        let total = self.amount_total();
        json!({
            "id": self.session_id(),
            "object": "checkout.session",
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": total,
            "amount_total": total,
            "automatic_tax": {"enabled": false, "liability": null, "status": null},
            "billing_address_collection": null,
            "cancel_url": "https://demo-shop.example/cart",
            "client_reference_id": format!("cart_{}", self.nonce),
            "created": created,
            "currency": self.currency,
            "customer": null,
            "customer_creation": "if_required",
            "customer_details": {
                "address": null, "email": email, "name": name, "phone": null,
                "tax_exempt": "none", "tax_ids": [],
            },
            "customer_email": null,
            "expires_at": created + 86_400,
            "invoice": null,
            "livemode": false,
            "locale": null,
            "metadata": {DEMO_METADATA_KEY: "true"},
            "mode": "payment",
            "payment_intent": self.payment_intent_id(),
            "payment_method_types": ["card"],
            "payment_status": payment_status,
            "status": "complete",
            "submit_type": "pay",
            "success_url": "https://demo-shop.example/thanks",
            "url": null,
        })
    }

    /// The session as `GET /v1/checkout/sessions/{id}?expand[]=line_items` answers: paid, with
    /// every line item.
    fn retrieved(&self) -> Value {
        let mut s = self.session("paid", 0);
        s["line_items"] = self.line_items_page();
        s
    }

    fn line_items_page(&self) -> Value {
        json!({
            "object": "list",
            "data": self.line_items(),
            "has_more": false,
            "url": format!("/v1/checkout/sessions/{}/line_items", self.session_id()),
        })
    }
}

fn api_error(status: u16, code: &str, message: String) -> StripeError {
    StripeError::Api {
        status,
        error_type: "invalid_request_error".to_owned(),
        code: Some(code.to_owned()),
        message: Some(message),
        param: None,
    }
}

/// The stand-in's answer to `method path` (the client checked that the key is a demo key).
pub(crate) fn respond(method: &Method, path: &str) -> Result<Value, StripeError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let answer = match (method.as_str(), segments.as_slice()) {
        ("GET", ["v1", "checkout", "sessions", id]) => DemoCart::parse(id).map(|c| c.retrieved()),
        ("GET", ["v1", "checkout", "sessions", id, "line_items"]) => {
            DemoCart::parse(id).map(|c| c.line_items_page())
        }
        ("GET", ["v1", "events"]) => {
            Some(json!({"object": "list", "data": [], "has_more": false, "url": "/v1/events"}))
        }
        ("GET", ["v1", "account"]) => Some(json!({
            "id": "acct_paygatedemo", "object": "account", "business_profile": {"name": "Demo shop (demo data)"},
            "charges_enabled": true, "payouts_enabled": true, "details_submitted": true,
            "country": "IT", "default_currency": "eur", "metadata": {DEMO_METADATA_KEY: "true"},
            "requirements": {"currently_due": [], "disabled_reason": null},
        })),
        ("GET", ["v1", "checkout", "sessions", ..]) => None,
        _ => {
            return Err(api_error(
                400,
                "paygate_demo_unsupported",
                format!("the Paygate demo stand-in does not answer {method} {path}"),
            ));
        }
    };
    tracing::debug!(%method, path, found = answer.is_some(), "answered by the demo stand-in");
    answer.ok_or_else(|| {
        let id = segments.get(3).copied().unwrap_or_default();
        api_error(
            404,
            "resource_missing",
            format!("No such checkout.session: '{id}'"),
        )
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn cart() -> DemoCart {
        DemoCart {
            nonce: "k3x9q2".into(),
            shopper: 1,
            currency: "eur".into(),
            items: vec![(0, 2), (1, 1)],
        }
    }

    #[test]
    fn a_cart_round_trips_through_its_session_id() {
        let c = cart();
        assert_eq!(c.session_id(), "cs_test_paygatedemo_k3x9q2_1_eur_a2b1");
        assert_eq!(DemoCart::parse(&c.session_id()), Some(c.clone()));
        assert_eq!(c.amount_total(), 2 * 2490 + 1200);
        for bad in [
            "cs_test_abc",
            "cs_live_paygatedemo_k3_1_eur_a2",
            "cs_test_paygatedemo_k3_9_eur_a2",
            "cs_test_paygatedemo_k3_1_EUR_a2",
            "cs_test_paygatedemo_k3_1_eur_z2",
            "cs_test_paygatedemo_k3_1_eur_a0",
            "cs_test_paygatedemo_k3_1_eur_a",
            "cs_test_paygatedemo_k_3_1_eur_a2",
        ] {
            assert_eq!(DemoCart::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_demo_keys_are_demo_keys() {
        assert!(is_demo_key("sk_test_paygate_demo_abc"));
        for k in [
            "sk_live_paygate_demo_abc",
            "rk_live_paygate_demo_abc",
            "sk_test_51abc",
            "sk_test_paygate_dem",
            "",
        ] {
            assert!(!is_demo_key(k), "{k}");
        }
    }

    #[test]
    fn the_stand_in_answers_sessions_events_and_account_and_refuses_the_rest() {
        let c = cart();
        let s = respond(
            &Method::GET,
            &format!("/v1/checkout/sessions/{}", c.session_id()),
        )
        .unwrap();
        assert_eq!(s["payment_status"], "paid");
        assert_eq!(s["livemode"], false);
        assert_eq!(s["amount_total"], c.amount_total());
        assert_eq!(s["line_items"]["data"].as_array().unwrap().len(), 2);
        let e = respond(&Method::GET, "/v1/checkout/sessions/cs_test_other").unwrap_err();
        assert_eq!(e.status(), Some(404));
        assert!(respond(&Method::GET, "/v1/events").is_ok());
        assert!(respond(&Method::GET, "/v1/account").is_ok());
        let e = respond(&Method::POST, "/v1/charges").unwrap_err();
        assert_eq!(e.status(), Some(400));
    }
}
