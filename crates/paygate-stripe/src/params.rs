//! Request parameters and how they are form-encoded.

use std::collections::BTreeMap;

use crate::form::FormBuilder;

/// Parameters for `POST /v1/checkout/sessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateCheckoutSession {
    /// `payment`, `setup` or `subscription`.
    pub mode: String,
    /// The items being bought.
    pub line_items: Vec<LineItemParam>,
    /// Where Stripe redirects after a successful payment.
    pub success_url: Option<String>,
    /// Where Stripe redirects when the customer cancels.
    pub cancel_url: Option<String>,
    /// Prefills the customer's email address.
    pub customer_email: Option<String>,
    /// An existing customer (`cus_...`) the session, and in `subscription` mode the new
    /// subscription, belongs to. Stripe takes either this or `customer_email`.
    pub customer: Option<String>,
    /// The caller's own reference, returned in the session and its events.
    pub client_reference_id: Option<String>,
    /// Metadata attached to the session. Sent as `metadata[key]=value`.
    pub metadata: BTreeMap<String, String>,
    /// In `subscription` mode: metadata of the subscription the session creates, sent as
    /// `subscription_data[metadata][key]=value` (the session's own `metadata` stays on the
    /// session).
    pub subscription_metadata: BTreeMap<String, String>,
    /// The language of Stripe's page (`auto`, `it`, `de`, `en`, `pt-BR` …).
    pub locale: Option<String>,
    /// `hosted` (Stripe's default) or `embedded` (the page is mounted in the merchant's site,
    /// with the session's `client_secret`).
    pub ui_mode: Option<String>,
    /// Where an embedded Checkout sends the customer in the end (with `{CHECKOUT_SESSION_ID}`).
    pub return_url: Option<String>,
}

/// One entry of [`CreateCheckoutSession::line_items`]. Set either `price` (an
/// existing Price ID) or `price_data` (an inline price).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineItemParam {
    /// The ID of an existing Price (`price_...`).
    pub price: Option<String>,
    /// An inline price. Use it instead of `price`.
    pub price_data: Option<PriceData>,
    /// The quantity.
    pub quantity: i64,
}

/// An inline price for a [`LineItemParam`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceData {
    /// The three-letter ISO currency code, for example `eur`.
    pub currency: String,
    /// The unit amount, in the currency's smallest unit.
    pub unit_amount: i64,
    /// The product, created inline.
    pub product_data: ProductData,
}

/// An inline product for a [`PriceData`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductData {
    /// The product name shown at checkout.
    pub name: String,
    /// The product description shown at checkout.
    pub description: Option<String>,
}

/// Parameters for `POST /v1/charges` (the legacy Sources flow).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateCharge {
    /// The amount, in the currency's smallest unit.
    pub amount: i64,
    /// The three-letter ISO currency code, for example `eur`.
    pub currency: String,
    /// The ID of the source to charge (`src_...`).
    pub source: String,
    /// A description of the charge.
    pub description: Option<String>,
    /// Metadata attached to the charge. Sent as `metadata[key]=value`.
    pub metadata: BTreeMap<String, String>,
}

/// Parameters for `DELETE /v1/subscriptions/{id}` (cancel at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelSubscription {
    /// Whether to invoice pending usage and prorations now (`invoice_now`).
    pub invoice_now: Option<bool>,
    /// Whether to credit the unused part of the period (`prorate`).
    pub prorate: Option<bool>,
}

/// Parameters for `POST /v1/subscriptions/{id}` (only the fields Paygate changes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateSubscription {
    /// `true` ends the subscription at the end of the current period; `false` keeps it going.
    pub cancel_at_period_end: Option<bool>,
    /// Metadata to set. Sent as `metadata[key]=value`.
    pub metadata: BTreeMap<String, String>,
}

/// Parameters for `POST /v1/subscriptions/{id}/resume` (a `paused` subscription).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeSubscription {
    /// `now` or `unchanged` (Stripe's default is `now`).
    pub billing_cycle_anchor: Option<String>,
    /// `always_invoice`, `create_prorations` or `none`.
    pub proration_behavior: Option<String>,
}

/// Parameters for `POST /v1/billing_portal/sessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateBillingPortalSession {
    /// The customer (`cus_...`).
    pub customer: String,
    /// Where the portal's "return" link leads.
    pub return_url: Option<String>,
    /// The portal's language (`auto`, `en`, `it`, `de`, …). Stripe's default is `auto`.
    pub locale: Option<String>,
}

/// Parameters for `POST /v1/refunds`: a refund of a payment intent or of a charge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateRefund {
    /// The payment intent to refund (`pi_...`); or `charge`.
    pub payment_intent: Option<String>,
    /// The charge to refund (`ch_...`, `py_...`); or `payment_intent`.
    pub charge: Option<String>,
    /// The amount, in the currency's smallest unit; `None` refunds what is left.
    pub amount: Option<i64>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    pub reason: Option<String>,
    /// Metadata attached to the refund. Sent as `metadata[key]=value`.
    pub metadata: BTreeMap<String, String>,
}

impl CreateRefund {
    /// Encodes the parameters in Stripe's bracket notation.
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push_opt("payment_intent", self.payment_intent.as_ref())
            .push_opt("charge", self.charge.as_ref())
            .push_opt("amount", self.amount)
            .push_opt("reason", self.reason.as_ref())
            .push_map("metadata", &self.metadata);
        form
    }
}

/// Parameters for `GET /v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListEvents {
    /// Only return events created at or after this time, in Unix seconds
    /// (`created[gte]`).
    pub created_gte: Option<i64>,
    /// Only return events created at or before this time, in Unix seconds
    /// (`created[lte]`).
    pub created_lte: Option<i64>,
    /// A cursor: the ID of the last event on the previous page. Events are listed
    /// newest first, so this page holds older events.
    pub starting_after: Option<String>,
    /// The page size, from 1 to 100. `0` leaves it out, so Stripe's default of 10
    /// applies.
    pub limit: u32,
    /// Only return events of these types (`types[]`), for example
    /// `checkout.session.completed`. An empty list means all types.
    pub types: Vec<String>,
}

impl CreateCheckoutSession {
    /// Encodes the parameters in Stripe's bracket notation.
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push("mode", &self.mode);
        for (i, item) in self.line_items.iter().enumerate() {
            let p = format!("line_items[{i}]");
            form.push_opt(format!("{p}[price]"), item.price.as_ref());
            if let Some(pd) = &item.price_data {
                form.push(format!("{p}[price_data][currency]"), &pd.currency)
                    .push(format!("{p}[price_data][unit_amount]"), pd.unit_amount)
                    .push(
                        format!("{p}[price_data][product_data][name]"),
                        &pd.product_data.name,
                    )
                    .push_opt(
                        format!("{p}[price_data][product_data][description]"),
                        pd.product_data.description.as_ref(),
                    );
            }
            form.push(format!("{p}[quantity]"), item.quantity);
        }
        form.push_opt("success_url", self.success_url.as_ref())
            .push_opt("cancel_url", self.cancel_url.as_ref())
            .push_opt("customer_email", self.customer_email.as_ref())
            .push_opt("customer", self.customer.as_ref())
            .push_opt("client_reference_id", self.client_reference_id.as_ref())
            .push_map("metadata", &self.metadata)
            .push_map("subscription_data[metadata]", &self.subscription_metadata)
            .push_opt("locale", self.locale.as_ref())
            .push_opt("ui_mode", self.ui_mode.as_ref())
            .push_opt("return_url", self.return_url.as_ref());
        form
    }
}

impl CancelSubscription {
    /// Encodes the parameters (empty when none is set).
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push_opt("invoice_now", self.invoice_now)
            .push_opt("prorate", self.prorate);
        form
    }
}

impl UpdateSubscription {
    /// Encodes the parameters in Stripe's bracket notation.
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push_opt("cancel_at_period_end", self.cancel_at_period_end)
            .push_map("metadata", &self.metadata);
        form
    }
}

impl ResumeSubscription {
    /// Encodes the parameters (empty when none is set).
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push_opt("billing_cycle_anchor", self.billing_cycle_anchor.as_ref())
            .push_opt("proration_behavior", self.proration_behavior.as_ref());
        form
    }
}

impl CreateBillingPortalSession {
    /// Encodes the parameters.
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push("customer", &self.customer)
            .push_opt("return_url", self.return_url.as_ref())
            .push_opt("locale", self.locale.as_ref());
        form
    }
}

impl CreateCharge {
    /// Encodes the parameters in Stripe's bracket notation.
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push("amount", self.amount)
            .push("currency", &self.currency)
            .push("source", &self.source)
            .push_opt("description", self.description.as_ref())
            .push_map("metadata", &self.metadata);
        form
    }
}

impl ListEvents {
    /// Encodes the parameters as a query string in Stripe's bracket notation.
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push_opt("created[gte]", self.created_gte)
            .push_opt("created[lte]", self.created_lte)
            .push_opt("starting_after", self.starting_after.as_ref())
            .push_opt("limit", (self.limit > 0).then_some(self.limit))
            .push_list("types", &self.types);
        form
    }
}
