//! The Stripe objects returned by the client.
//!
//! Only the fields Paygate needs are typed. Fields Stripe may omit or send as
//! `null` fall back to their default value. For Checkout Sessions, charges and
//! accounts, the complete object is also kept in `raw`.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Deserializes a missing or `null` field as `T::default()`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads the ID of an expandable field. The field may be a string ID or an
/// expanded object with an `id`.
fn expandable_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(id) => Some(id.clone()),
        Value::Object(obj) => obj.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// A page of a Stripe list (`{"object": "list", "data": [...], "has_more": ...}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct List<T> {
    /// The objects on this page.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Whether more objects come after the last one on this page.
    #[serde(default)]
    pub has_more: bool,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            has_more: false,
        }
    }
}

/// A Checkout Session (`checkout.session`).
///
/// [`crate::StripeClient::retrieve_checkout_session`] returns it with every line
/// item. A session from [`crate::StripeClient::create_checkout_session`] or from a
/// webhook payload has only the line items that were embedded in it, which is
/// usually none.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub struct CheckoutSession {
    /// The session ID (`cs_...`).
    pub id: String,
    /// Always `checkout.session`.
    pub object: String,
    /// `open`, `complete` or `expired`.
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    /// `payment`, `setup` or `subscription`.
    pub mode: String,
    /// The total after discounts and taxes, in the currency's smallest unit.
    pub amount_total: Option<i64>,
    /// The total before discounts and taxes, in the currency's smallest unit.
    pub amount_subtotal: Option<i64>,
    /// The three-letter ISO currency code, in lowercase.
    pub currency: Option<String>,
    /// The customer ID. An expanded customer object is reduced to its ID.
    pub customer: Option<String>,
    /// The email address given when the session was created.
    pub customer_email: Option<String>,
    /// The details the customer entered during checkout.
    pub customer_details: Option<CustomerDetails>,
    /// The caller's reference passed when the session was created.
    pub client_reference_id: Option<String>,
    /// The PaymentIntent ID. An expanded PaymentIntent object is reduced to its ID.
    pub payment_intent: Option<String>,
    /// The session's metadata.
    pub metadata: HashMap<String, String>,
    /// The URL of the hosted payment page, while the session is open.
    pub url: Option<String>,
    /// Whether the session is in live mode.
    pub livemode: bool,
    /// When the session was created, in Unix seconds.
    pub created: i64,
    /// When the session expires, in Unix seconds.
    pub expires_at: i64,
    /// The line items. See the type-level docs for when this list is complete.
    pub line_items: Vec<LineItem>,
    /// The session object exactly as Stripe returned it. For
    /// `retrieve_checkout_session` this holds only the first page of line items.
    pub raw: Value,
}

impl CheckoutSession {
    /// The customer's email address. `customer_details.email` is preferred and
    /// `customer_email` is the fallback.
    #[must_use]
    pub fn email(&self) -> Option<&str> {
        self.customer_details
            .as_ref()
            .and_then(|d| d.email.as_deref())
            .or(self.customer_email.as_deref())
    }

    /// Parses a session from its JSON. Also returns whether the embedded
    /// `line_items` list has more pages.
    pub(crate) fn from_value(raw: Value) -> Result<(Self, bool), serde_json::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "null_default")]
            id: String,
            #[serde(default, deserialize_with = "null_default")]
            object: String,
            #[serde(default)]
            status: Option<String>,
            #[serde(default, deserialize_with = "null_default")]
            payment_status: String,
            #[serde(default, deserialize_with = "null_default")]
            mode: String,
            #[serde(default)]
            amount_total: Option<i64>,
            #[serde(default)]
            amount_subtotal: Option<i64>,
            #[serde(default)]
            currency: Option<String>,
            #[serde(default)]
            customer: Option<Value>,
            #[serde(default)]
            customer_email: Option<String>,
            #[serde(default)]
            customer_details: Option<CustomerDetails>,
            #[serde(default)]
            client_reference_id: Option<String>,
            #[serde(default)]
            payment_intent: Option<Value>,
            #[serde(default, deserialize_with = "null_default")]
            metadata: HashMap<String, String>,
            #[serde(default)]
            url: Option<String>,
            #[serde(default, deserialize_with = "null_default")]
            livemode: bool,
            #[serde(default, deserialize_with = "null_default")]
            created: i64,
            #[serde(default, deserialize_with = "null_default")]
            expires_at: i64,
            #[serde(default)]
            line_items: Option<List<LineItem>>,
        }

        let w = Wire::deserialize(&raw)?;
        let line_items = w.line_items.unwrap_or_default();
        let session = Self {
            id: w.id,
            object: w.object,
            status: w.status,
            payment_status: w.payment_status,
            mode: w.mode,
            amount_total: w.amount_total,
            amount_subtotal: w.amount_subtotal,
            currency: w.currency,
            customer: expandable_id(w.customer.as_ref()),
            customer_email: w.customer_email,
            customer_details: w.customer_details,
            client_reference_id: w.client_reference_id,
            payment_intent: expandable_id(w.payment_intent.as_ref()),
            metadata: w.metadata,
            url: w.url,
            livemode: w.livemode,
            created: w.created,
            expires_at: w.expires_at,
            line_items: line_items.data,
            raw,
        };
        Ok((session, line_items.has_more))
    }
}

impl TryFrom<Value> for CheckoutSession {
    type Error = serde_json::Error;

    fn try_from(raw: Value) -> Result<Self, Self::Error> {
        Self::from_value(raw).map(|(session, _)| session)
    }
}

/// The `customer_details` of a Checkout Session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CustomerDetails {
    /// The email address the customer entered.
    #[serde(default)]
    pub email: Option<String>,
    /// The name the customer entered.
    #[serde(default)]
    pub name: Option<String>,
}

/// A Checkout Session line item (`item`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub struct LineItem {
    /// The line item ID (`li_...`). Pagination uses it for `starting_after`.
    pub id: String,
    /// The description, which defaults to the product name.
    pub description: Option<String>,
    /// The quantity.
    pub quantity: Option<i64>,
    /// The total before discounts and taxes, in the currency's smallest unit.
    pub amount_subtotal: i64,
    /// The total after discounts and taxes, in the currency's smallest unit.
    pub amount_total: i64,
    /// The three-letter ISO currency code, in lowercase.
    pub currency: String,
    /// The ID of the price, taken from `price.id`.
    pub price_id: Option<String>,
    /// The ID of the product, taken from `price.product`, whether that is a string
    /// or an expanded object.
    pub product_id: Option<String>,
    /// The line item object exactly as Stripe returned it.
    pub raw: Value,
}

impl TryFrom<Value> for LineItem {
    type Error = serde_json::Error;

    fn try_from(raw: Value) -> Result<Self, Self::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "null_default")]
            id: String,
            #[serde(default)]
            description: Option<String>,
            #[serde(default)]
            quantity: Option<i64>,
            #[serde(default, deserialize_with = "null_default")]
            amount_subtotal: i64,
            #[serde(default, deserialize_with = "null_default")]
            amount_total: i64,
            #[serde(default, deserialize_with = "null_default")]
            currency: String,
            #[serde(default)]
            price: Option<Value>,
        }

        let w = Wire::deserialize(&raw)?;
        let product_id = match &w.price {
            Some(Value::Object(price)) => expandable_id(price.get("product")),
            _ => None,
        };
        Ok(Self {
            id: w.id,
            description: w.description,
            quantity: w.quantity,
            amount_subtotal: w.amount_subtotal,
            amount_total: w.amount_total,
            currency: w.currency,
            price_id: expandable_id(w.price.as_ref()),
            product_id,
            raw,
        })
    }
}

/// A charge (`charge`) created through the legacy Sources flow.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub struct Charge {
    /// The charge ID (`ch_...` or `py_...`).
    pub id: String,
    /// `succeeded`, `pending` or `failed`.
    pub status: String,
    /// The amount, in the currency's smallest unit.
    pub amount: i64,
    /// The three-letter ISO currency code, in lowercase.
    pub currency: String,
    /// Whether the charge succeeded or was authorized for later capture.
    pub paid: bool,
    /// The ID of the charged source, taken from `source` (object or string).
    pub source_id: Option<String>,
    /// The PaymentIntent ID, if any. An expanded object is reduced to its ID.
    pub payment_intent: Option<String>,
    /// The charge's metadata.
    pub metadata: HashMap<String, String>,
    /// Stripe's failure code, if the charge failed.
    pub failure_code: Option<String>,
    /// Stripe's failure message, if the charge failed.
    pub failure_message: Option<String>,
    /// The charge object exactly as Stripe returned it.
    pub raw: Value,
}

impl TryFrom<Value> for Charge {
    type Error = serde_json::Error;

    fn try_from(raw: Value) -> Result<Self, Self::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "null_default")]
            id: String,
            #[serde(default, deserialize_with = "null_default")]
            status: String,
            #[serde(default, deserialize_with = "null_default")]
            amount: i64,
            #[serde(default, deserialize_with = "null_default")]
            currency: String,
            #[serde(default, deserialize_with = "null_default")]
            paid: bool,
            #[serde(default)]
            source: Option<Value>,
            #[serde(default)]
            payment_intent: Option<Value>,
            #[serde(default, deserialize_with = "null_default")]
            metadata: HashMap<String, String>,
            #[serde(default)]
            failure_code: Option<String>,
            #[serde(default)]
            failure_message: Option<String>,
        }

        let w = Wire::deserialize(&raw)?;
        Ok(Self {
            id: w.id,
            status: w.status,
            amount: w.amount,
            currency: w.currency,
            paid: w.paid,
            source_id: expandable_id(w.source.as_ref()),
            payment_intent: expandable_id(w.payment_intent.as_ref()),
            metadata: w.metadata,
            failure_code: w.failure_code,
            failure_message: w.failure_message,
            raw,
        })
    }
}

/// The account that owns the secret key (`GET /v1/account`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub struct Account {
    /// The account ID (`acct_...`).
    pub id: String,
    /// Whether the account can create live charges.
    pub charges_enabled: bool,
    /// Whether Stripe can send payouts to the account.
    pub payouts_enabled: bool,
    /// Whether the account details have been submitted.
    pub details_submitted: bool,
    /// The information Stripe still needs for the account.
    pub requirements: AccountRequirements,
    /// The account object exactly as Stripe returned it.
    pub raw: Value,
}

impl TryFrom<Value> for Account {
    type Error = serde_json::Error;

    fn try_from(raw: Value) -> Result<Self, Self::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "null_default")]
            id: String,
            #[serde(default, deserialize_with = "null_default")]
            charges_enabled: bool,
            #[serde(default, deserialize_with = "null_default")]
            payouts_enabled: bool,
            #[serde(default, deserialize_with = "null_default")]
            details_submitted: bool,
            #[serde(default, deserialize_with = "null_default")]
            requirements: AccountRequirements,
        }

        let w = Wire::deserialize(&raw)?;
        Ok(Self {
            id: w.id,
            charges_enabled: w.charges_enabled,
            payouts_enabled: w.payouts_enabled,
            details_submitted: w.details_submitted,
            requirements: w.requirements,
            raw,
        })
    }
}

/// The `requirements` of an [`Account`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AccountRequirements {
    /// The fields that must be collected to keep the account enabled.
    #[serde(default, deserialize_with = "null_default")]
    pub currently_due: Vec<String>,
    /// Why the account is disabled, if it is.
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

/// A subscription (`subscription`), as the subscription calls return it.
///
/// Stripe moved `current_period_start` / `current_period_end` from the subscription to its
/// items (API version 2025-03-31); both places are read, the subscription's own first.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub struct Subscription {
    /// The subscription ID (`sub_...`).
    pub id: String,
    /// `incomplete`, `incomplete_expired`, `trialing`, `active`, `past_due`, `canceled`,
    /// `unpaid` or `paused`.
    pub status: String,
    /// The customer ID. An expanded customer object is reduced to its ID.
    pub customer: Option<String>,
    /// Whether the subscription ends at the end of the current period.
    pub cancel_at_period_end: bool,
    /// When the subscription is set to end, in Unix seconds.
    pub cancel_at: Option<i64>,
    /// When the subscription was canceled, in Unix seconds.
    pub canceled_at: Option<i64>,
    /// When the subscription ended, in Unix seconds.
    pub ended_at: Option<i64>,
    /// The start of the current period, in Unix seconds.
    pub current_period_start: Option<i64>,
    /// The end of the current period, in Unix seconds.
    pub current_period_end: Option<i64>,
    /// The `behavior` of `pause_collection` when collection is paused.
    pub pause_collection: Option<String>,
    /// The ID of the latest invoice. An expanded invoice is reduced to its ID.
    pub latest_invoice: Option<String>,
    /// Whether the subscription is in live mode.
    pub livemode: bool,
    /// When the subscription was created, in Unix seconds.
    pub created: i64,
    /// The subscription object exactly as Stripe returned it.
    pub raw: Value,
}

impl TryFrom<Value> for Subscription {
    type Error = serde_json::Error;

    fn try_from(raw: Value) -> Result<Self, Self::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "null_default")]
            id: String,
            #[serde(default, deserialize_with = "null_default")]
            status: String,
            #[serde(default)]
            customer: Option<Value>,
            #[serde(default, deserialize_with = "null_default")]
            cancel_at_period_end: bool,
            #[serde(default)]
            cancel_at: Option<i64>,
            #[serde(default)]
            canceled_at: Option<i64>,
            #[serde(default)]
            ended_at: Option<i64>,
            #[serde(default)]
            current_period_start: Option<i64>,
            #[serde(default)]
            current_period_end: Option<i64>,
            #[serde(default)]
            pause_collection: Option<Value>,
            #[serde(default)]
            latest_invoice: Option<Value>,
            #[serde(default, deserialize_with = "null_default")]
            livemode: bool,
            #[serde(default, deserialize_with = "null_default")]
            created: i64,
        }

        let w = Wire::deserialize(&raw)?;
        let first_item = raw.pointer("/items/data/0");
        let item_time = |name: &str| {
            first_item
                .and_then(|item| item.get(name))
                .and_then(Value::as_i64)
        };
        Ok(Self {
            id: w.id,
            status: w.status,
            customer: expandable_id(w.customer.as_ref()),
            cancel_at_period_end: w.cancel_at_period_end,
            cancel_at: w.cancel_at,
            canceled_at: w.canceled_at,
            ended_at: w.ended_at,
            current_period_start: w
                .current_period_start
                .or_else(|| item_time("current_period_start")),
            current_period_end: w
                .current_period_end
                .or_else(|| item_time("current_period_end")),
            pause_collection: w
                .pause_collection
                .as_ref()
                .and_then(|p| p.get("behavior"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            latest_invoice: expandable_id(w.latest_invoice.as_ref()),
            livemode: w.livemode,
            created: w.created,
            raw,
        })
    }
}

/// A customer portal session (`billing_portal.session`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub struct BillingPortalSession {
    /// The session ID (`bps_...`).
    pub id: String,
    /// The customer the session is for.
    pub customer: String,
    /// The short-lived URL of the portal, to send the customer to.
    pub url: String,
    /// Where the portal sends the customer back to.
    pub return_url: Option<String>,
    /// Whether the session is in live mode.
    pub livemode: bool,
    /// The session object exactly as Stripe returned it.
    pub raw: Value,
}

impl TryFrom<Value> for BillingPortalSession {
    type Error = serde_json::Error;

    fn try_from(raw: Value) -> Result<Self, Self::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "null_default")]
            id: String,
            #[serde(default)]
            customer: Option<Value>,
            #[serde(default, deserialize_with = "null_default")]
            url: String,
            #[serde(default)]
            return_url: Option<String>,
            #[serde(default, deserialize_with = "null_default")]
            livemode: bool,
        }

        let w = Wire::deserialize(&raw)?;
        Ok(Self {
            id: w.id,
            customer: expandable_id(w.customer.as_ref()).unwrap_or_default(),
            url: w.url,
            return_url: w.return_url,
            livemode: w.livemode,
            raw,
        })
    }
}
