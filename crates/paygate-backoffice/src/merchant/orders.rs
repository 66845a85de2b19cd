//! `/app/orders`: the company's orders, newest first, filtered by status; one order with its line
//! items, its payment (the payment intent and its charges), its fulfillment (when, and whether by
//! Paygate on Stripe's event or on the shopper's return) and its disputes.
//!
//! An order relates to the rest as the operators' API reads it (`paygate_admin::domain`): a
//! Checkout order has its session's line items and fulfillment; its payment intent's charges (or,
//! for a Source order, its one charge) are its payments; the disputes are those on those charges
//! or on the payment intent.
//!
//! Every page shows the orders of one mode ([`super::mode`]): every query — the order and the
//! objects around it — starts from the session's company in that mode, so another company's
//! order, or one of the other mode, is "not found".

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;

use paygate_admin::orders::ORDER_STATUSES;
use paygate_db::Scope;
use paygate_db::entities::{dispute, order};

use crate::MerchantSession;
use crate::i18n::Lang;
use crate::merchant::disputes::DisputeRow;
use crate::merchant::listing::{
    Choice, PAGE_SIZE, choices, decode_cursor, encode_cursor, label, order_href, with_query,
};
use crate::merchant::mode::{ModeParam, View};
use crate::page::{FieldErrors, Page, PageError, render, render_status};

/// Registers `/app/orders…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders", web::get().to(list))
        .route("/orders/{order_id}", web::get().to(detail));
}

/// The filters of the list.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Filters {
    status: String,
    /// The cursor of the next (older) page.
    before: String,
}

/// An amount in the language, when both amount and currency are known.
fn money(lang: Lang, amount: Option<i64>, currency: Option<&str>) -> Option<String> {
    match (amount, currency) {
        (Some(a), Some(c)) if !c.is_empty() => Some(lang.money(a, c)),
        _ => None,
    }
}

/// An order as the list shows it.
pub struct OrderRow {
    pub id: String,
    pub href: String,
    pub status: String,
    pub status_label: String,
    pub kind_label: String,
    pub livemode: bool,
    pub amount: Option<String>,
    pub customer_email: Option<String>,
    pub client_reference_id: Option<String>,
    pub disputed: bool,
    pub created_at: i64,
}

impl OrderRow {
    fn new(lang: Lang, scope: Scope, m: &order::Model) -> Self {
        Self {
            id: m.id.clone(),
            href: order_href(scope, &m.id),
            status: m.status.clone(),
            status_label: label(lang, "order_status", &m.status),
            kind_label: label(lang, "order_kind", &m.kind),
            livemode: m.livemode,
            amount: money(lang, m.amount, m.currency.as_deref()),
            customer_email: m.customer_email.clone(),
            client_reference_id: m.client_reference_id.clone(),
            disputed: m.disputed,
            created_at: m.created_at,
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/app/orders.html")]
struct OrdersTemplate {
    ctx: Page,
    rows: Vec<OrderRow>,
    statuses: Vec<Choice>,
    filtered: bool,
    older: Option<String>,
    errors: FieldErrors,
}

async fn list(
    s: MerchantSession,
    q: web::Query<Filters>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let f = q.into_inner();
    let mut errors = FieldErrors::new();
    let mut status = f.status.trim();
    if !status.is_empty() && !ORDER_STATUSES.contains(&status) {
        errors.add_text("status", s.lang.t("orders.status_invalid").to_owned());
        status = "";
    }
    // Newest first by (created_at, id); the cursor is the last pair of a page.
    let mut sel = v
        .scope
        .orders()
        .order_by_desc(order::Column::CreatedAt)
        .order_by_desc(order::Column::Id)
        .limit(PAGE_SIZE + 1);
    if !status.is_empty() {
        sel = sel.filter(order::Column::Status.eq(status));
    }
    if let Some(parts) = decode_cursor(&f.before, 2)
        && let Ok(at) = parts[0].parse::<i64>()
    {
        let id = parts[1].clone();
        sel = sel.filter(
            Condition::any().add(order::Column::CreatedAt.lt(at)).add(
                Condition::all()
                    .add(order::Column::CreatedAt.eq(at))
                    .add(order::Column::Id.lt(id)),
            ),
        );
    }
    let mut rows = sel.all(s.db()).await?;
    let more = rows.len() as u64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let older = match rows.last() {
        Some(last) if more => Some(with_query(
            "/app/orders",
            &[
                ("mode", v.mode().as_str()),
                ("status", status),
                (
                    "before",
                    &encode_cursor(&[last.created_at.to_string(), last.id.clone()]),
                ),
            ],
        )),
        _ => None,
    };
    let disputed = disputed_orders(s.db(), v.scope, &rows).await?;
    let tpl = OrdersTemplate {
        ctx: v.page(&s, "orders.title", "/app/orders"),
        rows: rows
            .iter()
            .map(|m| {
                let mut row = OrderRow::new(s.lang, v.scope, m);
                row.disputed |= disputed.contains(&m.id);
                row
            })
            .collect(),
        statuses: choices(s.lang, "order_status", ORDER_STATUSES, status),
        filtered: !status.is_empty(),
        older,
        errors,
    };
    if tpl.errors.is_empty() {
        render(&tpl)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl)
    }
}

/// Which of `orders` have a dispute on their payment intent or charge. The order's own flag is
/// set by the dispute's handler, which runs concurrently with the handlers of the order's other
/// objects: when a dispute is handled before the event that links the order to its payment, the
/// flag stays false, so the page asks the disputes themselves.
async fn disputed_orders(
    db: &DatabaseConnection,
    scope: Scope,
    orders: &[order::Model],
) -> Result<HashSet<String>, DbErr> {
    let pis: Vec<&str> = orders
        .iter()
        .filter_map(|o| o.payment_intent_id.as_deref())
        .collect();
    let chs: Vec<&str> = orders
        .iter()
        .filter_map(|o| o.charge_id.as_deref())
        .collect();
    let mut on = Condition::any();
    if !pis.is_empty() {
        on = on.add(dispute::Column::PaymentIntentId.is_in(pis));
    }
    if !chs.is_empty() {
        on = on.add(dispute::Column::ChargeId.is_in(chs));
    }
    if on.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<(Option<String>, Option<String>)> = scope
        .disputes()
        .select_only()
        .column(dispute::Column::PaymentIntentId)
        .column(dispute::Column::ChargeId)
        .filter(on)
        .into_tuple()
        .all(db)
        .await?;
    let (pis, chs): (HashSet<String>, HashSet<String>) = (
        found.iter().filter_map(|(p, _)| p.clone()).collect(),
        found.iter().filter_map(|(_, c)| c.clone()).collect(),
    );
    Ok(orders
        .iter()
        .filter(|o| {
            o.payment_intent_id
                .as_ref()
                .is_some_and(|p| pis.contains(p))
                || o.charge_id.as_ref().is_some_and(|c| chs.contains(c))
        })
        .map(|o| o.id.clone())
        .collect())
}

/// A line item of a Checkout order.
pub struct LineRow {
    pub description: Option<String>,
    pub quantity: Option<i64>,
    pub amount: Option<String>,
    pub price_id: Option<String>,
}

/// The payment intent of an order.
pub struct PaymentRow {
    pub id: String,
    pub status_label: String,
    pub amount: String,
    pub received: String,
    pub error: Option<String>,
    pub cancellation_reason: Option<String>,
    pub disputed: bool,
}

/// A charge of an order.
pub struct ChargeRow {
    pub id: String,
    pub status: String,
    pub status_label: String,
    pub amount: String,
    pub refunded: Option<String>,
    pub failure: Option<String>,
    pub disputed: bool,
    pub updated_at: i64,
}

/// A refund of an order.
pub struct RefundRow {
    pub id: String,
    pub status: String,
    pub status_label: String,
    pub amount: String,
    pub reason_label: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: i64,
}

/// How an order was fulfilled.
pub struct FulfillmentRow {
    pub fulfilled_at: i64,
    pub by_label: String,
    pub payment_status_label: String,
    pub line_item_count: i32,
}

#[derive(Template)]
#[template(path = "backoffice/app/order.html")]
struct OrderTemplate {
    ctx: Page,
    row: OrderRow,
    checkout_session: Option<String>,
    source: Option<String>,
    description: Option<String>,
    updated_at: i64,
    lines: Vec<LineRow>,
    payment: Option<PaymentRow>,
    charges: Vec<ChargeRow>,
    fulfillment: Option<FulfillmentRow>,
    disputes: Vec<DisputeRow>,
    refunds: Vec<RefundRow>,
    /// What is refunded, when anything is.
    amount_refunded: Option<String>,
    /// `fraud warning: <type>, actionable yes/no`, when Stripe sent one.
    fraud_warning: Option<String>,
    /// The Refund action (admins, when something is left to refund).
    refund_href: Option<String>,
    /// Why the Refund action is disabled (admins, a paid order with nothing left to refund).
    refund_why: Option<String>,
}

/// The message of a payment intent's `last_payment_error` (stored as JSON).
fn payment_error(raw: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw?).ok()?;
    let msg = v["message"].as_str().or_else(|| v["code"].as_str())?;
    Some(msg.to_owned())
}

/// The payment intent, charges, disputes, fulfillment and line items of an order, all of the
/// order's own company and mode: the one view of an order (`paygate_router::read_models`, which
/// the operators' API reads too).
async fn load(
    db: &DatabaseConnection,
    lang: Lang,
    scope: Scope,
    m: &order::Model,
) -> Result<OrderTemplateParts, DbErr> {
    let view = paygate_router::read_models::order_view(db, m.clone()).await?;
    debug_assert_eq!(view.scope(), scope);
    let (pi, charges, disputes, fulfilled, lines) = (
        view.payment,
        view.charges,
        view.disputes,
        view.fulfillment,
        view.line_items,
    );
    let currency = m.currency.clone().unwrap_or_default();
    let refunds = view
        .refunds
        .iter()
        .map(|r| RefundRow {
            id: r.stripe_refund_id.clone(),
            status: r.status.clone(),
            status_label: label(lang, "refund_status", &r.status),
            amount: lang.money(
                r.amount,
                if r.currency.is_empty() {
                    &currency
                } else {
                    &r.currency
                },
            ),
            reason_label: r.reason.as_deref().map(|c| label(lang, "refund_reason", c)),
            failure_reason: r.failure_reason.clone(),
            created_at: r.created_at,
        })
        .collect();
    let fraud_warning = view.fraud_warning.map(|w| {
        let yes_no = if w.actionable {
            "fraud.yes"
        } else {
            "fraud.no"
        };
        let fraud_type = label(lang, "fraud_type", &w.fraud_type);
        lang.format("fraud.warning_text", &[&fraud_type, lang.t(yes_no)])
    });
    Ok(OrderTemplateParts {
        refunds,
        fraud_warning,
        lines: lines
            .into_iter()
            .map(|li| LineRow {
                amount: money(
                    lang,
                    Some(li.amount_total),
                    li.currency.as_deref().or(m.currency.as_deref()),
                ),
                description: li.description,
                quantity: li.quantity,
                price_id: li.price_id,
            })
            .collect(),
        payment: pi.map(|p| PaymentRow {
            status_label: label(lang, "intent_status", &p.status),
            amount: lang.money(p.amount, &p.currency),
            received: lang.money(p.amount_received, &p.currency),
            error: payment_error(p.last_payment_error.as_deref()),
            cancellation_reason: p.cancellation_reason,
            disputed: p.disputed,
            id: p.stripe_id,
        }),
        charges: charges
            .into_iter()
            .map(|c| ChargeRow {
                status_label: label(lang, "charge_status", &c.status),
                amount: lang.money(c.amount, &c.currency),
                refunded: (c.amount_refunded > 0)
                    .then(|| lang.money(c.amount_refunded, &c.currency)),
                failure: c.failure_message.or(c.failure_code),
                disputed: c.disputed,
                updated_at: c.updated_at,
                status: c.status,
                id: c.stripe_id,
            })
            .collect(),
        fulfillment: fulfilled.map(|f| FulfillmentRow {
            fulfilled_at: f.fulfilled_at,
            by_label: label(lang, "fulfilled_by", &f.fulfilled_by),
            payment_status_label: label(lang, "checkout_payment", &f.payment_status),
            line_item_count: f.line_item_count,
        }),
        disputes: disputes
            .iter()
            .map(|d| DisputeRow::new(lang, scope, d, Some(m.id.clone())))
            .collect(),
    })
}

/// What [`load`] finds around an order.
struct OrderTemplateParts {
    refunds: Vec<RefundRow>,
    fraud_warning: Option<String>,
    lines: Vec<LineRow>,
    payment: Option<PaymentRow>,
    charges: Vec<ChargeRow>,
    fulfillment: Option<FulfillmentRow>,
    disputes: Vec<DisputeRow>,
}

async fn detail(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let m = v
        .scope
        .orders()
        .filter(order::Column::Id.eq(path.into_inner()))
        .one(s.db())
        .await?
        .ok_or(PageError::NotFound)?;
    let parts = load(s.db(), s.lang, v.scope, &m).await?;
    let mut ctx = v.page(&s, "orders.detail_title", "/app/orders");
    ctx.title = s.lang.format("orders.detail_title", &[&m.id]);
    let mut row = OrderRow::new(s.lang, v.scope, &m);
    // The order's own flag may lag behind its disputes (see `disputed_orders`).
    row.disputed |= !parts.disputes.is_empty();
    let has_payment = m.payment_intent_id.is_some() || m.charge_id.is_some();
    let left = m.amount.unwrap_or(0) - m.amount_refunded;
    let refund_href = (s.is_admin() && has_payment && left > 0)
        .then(|| crate::merchant::refunds::refund_href(v.mode(), &m.id));
    let refund_why = (s.is_admin() && has_payment && left <= 0)
        .then(|| s.lang.t("refunds.nothing_left").to_owned());
    let amount_refunded = (m.amount_refunded > 0)
        .then(|| money(s.lang, Some(m.amount_refunded), m.currency.as_deref()))
        .flatten();
    render(&OrderTemplate {
        refunds: parts.refunds,
        amount_refunded,
        fraud_warning: parts.fraud_warning,
        refund_href,
        refund_why,
        ctx,
        row,
        checkout_session: m.checkout_session_id,
        source: m.source_id,
        description: m.description,
        updated_at: m.updated_at,
        lines: parts.lines,
        payment: parts.payment,
        charges: parts.charges,
        fulfillment: parts.fulfillment,
        disputes: parts.disputes,
    })
}
