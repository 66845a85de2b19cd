//! Operators' lists of a company's orders and Checkout Sessions:
//! `GET /admin/v1/companies/{companyID}/orders` and `…/checkout-sessions`, newest first, with
//! filters and cursor pagination. One order or session in full is in `domain`.
//!
//! Policy: every query is scoped to the company of the path; filters are checked against the
//! known vocabularies (400 `invalid_query` otherwise) so a typo is not an empty page; cursors
//! are opaque and a bad one is 400 `invalid_cursor`.

use actix_web::{HttpResponse, web};
use base64::Engine;
use sea_orm::{ColumnTrait, Condition, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use paygate_db::Mode;
use paygate_db::entities::{checkout_session, order};
use paygate_web::{ApiError, Page, decode_cursor, encode_cursor, rfc3339_ms};

use crate::{AdminState, OperatorPrincipal, page_limit};

/// The order statuses (see `paygate_router::lifecycle::order_rank`).
pub const ORDER_STATUSES: &[&str] = &[
    "open",
    "awaiting_payment",
    "charging",
    "payment_failed",
    "expired",
    "canceled",
    "paid",
    "fulfilled",
    "partially_refunded",
    "refunded",
];
const ORDER_KINDS: &[&str] = &["checkout", "source"];
const FULFILLMENT_STATUSES: &[&str] = &["none", "claimed", "fulfilled"];
const PAYMENT_STATUSES: &[&str] = &["paid", "unpaid", "no_payment_required"];

fn check(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(ApiError::bad_request(
            "invalid_query",
            format!("{field} must be one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// Filters of the order list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// `test` or `live`; the company's environment when absent.
    mode: Option<Mode>,
    /// `open`, `awaiting_payment`, `charging`, `payment_failed`, `expired`, `canceled`, `paid`,
    /// `fulfilled`, `partially_refunded` or `refunded`.
    status: Option<String>,
    /// `checkout` or `source`.
    kind: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An order in a list (the whole order, with payments and fulfillment, is
/// `GET …/orders/{orderID}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderSummaryOut {
    /// `ord_…`.
    id: String,
    livemode: bool,
    /// `checkout` or `source`.
    kind: String,
    status: String,
    amount: Option<i64>,
    currency: Option<String>,
    customer_email: Option<String>,
    client_reference_id: Option<String>,
    checkout_session: Option<String>,
    source: Option<String>,
    payment_intent: Option<String>,
    disputed: bool,
    fulfilled_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<&order::Model> for OrderSummaryOut {
    fn from(m: &order::Model) -> Self {
        Self {
            id: m.id.clone(),
            livemode: m.livemode,
            kind: m.kind.clone(),
            status: m.status.clone(),
            amount: m.amount,
            currency: m.currency.clone(),
            customer_email: m.customer_email.clone(),
            client_reference_id: m.client_reference_id.clone(),
            checkout_session: m.checkout_session_id.clone(),
            source: m.source_id.clone(),
            payment_intent: m.payment_intent_id.clone(),
            disputed: m.disputed,
            fulfilled_at: m.fulfilled_at.map(rfc3339_ms),
            created_at: rfc3339_ms(m.created_at),
            updated_at: rfc3339_ms(m.updated_at),
        }
    }
}

/// Orders are ordered by (`created_at`, `id`); the cursor is the last pair of a page.
fn encode_order_cursor(m: &order::Model) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{}:{}", m.created_at, m.id))
}

fn decode_order_cursor(cursor: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "the pagination cursor is not valid");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let s = String::from_utf8(bytes).map_err(|_| bad())?;
    let rest = s.strip_prefix("o:").ok_or_else(bad)?;
    let (at, id) = rest.split_once(':').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_owned()))
}

/// Orders, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/orders",
    tag = "orders",
    params(("company_id" = String, Path, description = "The company"), OrderQuery),
    responses((status = 200, description = "A page of orders", body = Page<OrderSummaryOut>)),
)]
pub(crate) async fn list_orders(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    q: web::Query<OrderQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let kind = q.kind.as_deref().filter(|s| !s.is_empty());
    check("status", status, ORDER_STATUSES)?;
    check("kind", kind, ORDER_KINDS)?;
    let limit = page_limit(q.limit);
    let mut sel = company
        .scope(q.mode)
        .orders()
        .order_by_desc(order::Column::CreatedAt)
        .order_by_desc(order::Column::Id)
        .limit(limit + 1);
    if let Some(s) = status {
        sel = sel.filter(order::Column::Status.eq(s));
    }
    if let Some(k) = kind {
        sel = sel.filter(order::Column::Kind.eq(k));
    }
    if let Some(c) = q.cursor.as_deref() {
        let (at, id) = decode_order_cursor(c)?;
        sel = sel.filter(
            Condition::any().add(order::Column::CreatedAt.lt(at)).add(
                Condition::all()
                    .add(order::Column::CreatedAt.eq(at))
                    .add(order::Column::Id.lt(id)),
            ),
        );
    }
    let mut rows = sel.all(&state.db).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if has_more {
        rows.last().map(encode_order_cursor)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(Page {
        data: rows.iter().map(OrderSummaryOut::from).collect(),
        has_more,
        next_cursor,
    }))
}

/// Filters of the Checkout Session list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckoutSessionQuery {
    /// `test` or `live`; the company's environment when absent.
    mode: Option<Mode>,
    /// `none`, `claimed` or `fulfilled`.
    fulfillment_status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    payment_status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A Checkout Session in a list (in full, with its order: `GET …/checkout-sessions/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckoutSessionSummaryOut {
    /// Stripe's `cs_…`.
    id: String,
    order_id: String,
    livemode: bool,
    status: Option<String>,
    payment_status: Option<String>,
    amount_total: Option<i64>,
    currency: Option<String>,
    customer_email: Option<String>,
    payment_intent: Option<String>,
    fulfillment_status: String,
    fulfilled_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<&checkout_session::Model> for CheckoutSessionSummaryOut {
    fn from(m: &checkout_session::Model) -> Self {
        Self {
            id: m.session_id.clone(),
            order_id: m.order_id.clone(),
            livemode: m.livemode,
            status: m.status.clone(),
            payment_status: m.payment_status.clone(),
            amount_total: m.amount_total,
            currency: m.currency.clone(),
            customer_email: m.customer_email.clone(),
            payment_intent: m.payment_intent_id.clone(),
            fulfillment_status: m.fulfillment_status.clone(),
            fulfilled_at: m.fulfilled_at.map(rfc3339_ms),
            created_at: rfc3339_ms(m.created_at),
            updated_at: rfc3339_ms(m.updated_at),
        }
    }
}

/// Checkout Sessions, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/checkout-sessions",
    tag = "orders",
    params(("company_id" = String, Path, description = "The company"), CheckoutSessionQuery),
    responses((status = 200, description = "A page of Checkout Sessions", body = Page<CheckoutSessionSummaryOut>)),
)]
pub(crate) async fn list_checkout_sessions(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    q: web::Query<CheckoutSessionQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let fulfillment = q.fulfillment_status.as_deref().filter(|s| !s.is_empty());
    let payment = q.payment_status.as_deref().filter(|s| !s.is_empty());
    check("fulfillment_status", fulfillment, FULFILLMENT_STATUSES)?;
    check("payment_status", payment, PAYMENT_STATUSES)?;
    let limit = page_limit(q.limit);
    let mut sel = company
        .scope(q.mode)
        .checkout_sessions()
        .order_by_desc(checkout_session::Column::Id)
        .limit(limit + 1);
    if let Some(f) = fulfillment {
        sel = sel.filter(checkout_session::Column::FulfillmentStatus.eq(f));
    }
    if let Some(p) = payment {
        sel = sel.filter(checkout_session::Column::PaymentStatus.eq(p));
    }
    if let Some(c) = q.cursor.as_deref() {
        sel = sel.filter(checkout_session::Column::Id.lt(decode_cursor(c)?));
    }
    let mut rows = sel.all(&state.db).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if has_more {
        rows.last().map(|r| encode_cursor(r.id))
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(Page {
        data: rows.iter().map(CheckoutSessionSummaryOut::from).collect(),
        has_more,
        next_cursor,
    }))
}
