//! `/app/disputes`: the company's disputes, the ones waiting for the merchant's evidence
//! (`needs_response`, `warning_needs_response`) first, soonest due first, then the others newest
//! first; each links to its order when Paygate has one. `/app/disputes/{id}` shows one (by
//! Stripe id).
//!
//! Every page shows the disputes of one mode ([`super::mode`]): every query starts from the
//! session's company in that mode, so another company's dispute, or one of the other mode, is
//! "not found".

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, Order, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;

use paygate_db::Scope;
use paygate_db::entities::{dispute, order};

use crate::MerchantSession;
use crate::i18n::Lang;
use crate::merchant::listing::{
    PAGE_SIZE, decode_cursor, encode_cursor, label, order_href, segment,
};
use crate::merchant::mode::{ModeParam, View};
use crate::page::{Page, PageError, mode_href, render};

/// Registers `/app/disputes…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/disputes", web::get().to(list))
        .route("/disputes/{dispute_id}", web::get().to(detail));
}

/// The statuses in which Stripe waits for the merchant's evidence.
pub const NEEDS_RESPONSE: [&str; 2] = ["needs_response", "warning_needs_response"];

/// The sort key of the list, in SQL: bucket 0 for disputes needing a response, then within
/// the bucket the due date (latest possible when Stripe gave none) or, for the others, minus
/// the id (newest first). The statuses are constants and the cursor's parts parsed integers, so
/// nothing from a request is ever spliced in. The same order as the operators' API.
const BUCKET: &str =
    "(CASE WHEN status IN ('needs_response', 'warning_needs_response') THEN 0 ELSE 1 END)";
const WITHIN: &str = "(CASE WHEN status IN ('needs_response', 'warning_needs_response') \
     THEN COALESCE(evidence_due_by, 9223372036854775807) ELSE -id END)";

fn sort_key(d: &dispute::Model) -> [i64; 3] {
    if NEEDS_RESPONSE.contains(&d.status.as_str()) {
        [0, d.evidence_due_by.unwrap_or(i64::MAX), d.id]
    } else {
        [1, -d.id, d.id]
    }
}

/// A dispute as the lists show it.
pub struct DisputeRow {
    pub id: String,
    pub href: String,
    pub status_label: String,
    pub reason_label: Option<String>,
    pub amount: String,
    pub needs_response: bool,
    /// Stripe's `evidence_details.due_by`, seconds.
    pub evidence_due_by: Option<i64>,
    pub order_id: Option<String>,
    pub order_href: Option<String>,
    pub livemode: bool,
    pub created_at: i64,
}

impl DisputeRow {
    /// The row of `d` (found in `scope`), linking to the order `order_id` when there is one;
    /// the links stay in the mode of `scope`.
    pub fn new(lang: Lang, scope: Scope, d: &dispute::Model, order_id: Option<String>) -> Self {
        Self {
            id: d.stripe_id.clone(),
            href: mode_href(
                &format!("/app/disputes/{}", segment(&d.stripe_id)),
                scope.mode(),
            ),
            status_label: label(lang, "dispute_status", &d.status),
            reason_label: d
                .reason
                .as_deref()
                .map(|r| label(lang, "dispute_reason", r)),
            amount: lang.money(d.amount, &d.currency),
            needs_response: NEEDS_RESPONSE.contains(&d.status.as_str()),
            evidence_due_by: d.evidence_due_by,
            order_href: order_id.as_deref().map(|o| order_href(scope, o)),
            order_id,
            livemode: d.livemode,
            created_at: d.created_at,
        }
    }
}

/// The orders of the company in the mode of `scope` whose payment intent or charge is among
/// `payment_intents` / `charges`, by payment intent and by charge (for the dispute list's links).
pub async fn orders_by_payment(
    db: &DatabaseConnection,
    scope: Scope,
    payment_intents: Vec<String>,
    charges: Vec<String>,
) -> Result<(HashMap<String, String>, HashMap<String, String>), DbErr> {
    let (mut by_pi, mut by_charge) = (HashMap::new(), HashMap::new());
    if payment_intents.is_empty() && charges.is_empty() {
        return Ok((by_pi, by_charge));
    }
    let mut on = Condition::any();
    if !payment_intents.is_empty() {
        on = on.add(order::Column::PaymentIntentId.is_in(payment_intents));
    }
    if !charges.is_empty() {
        on = on.add(order::Column::ChargeId.is_in(charges));
    }
    let rows: Vec<(String, Option<String>, Option<String>)> = scope
        .orders()
        .select_only()
        .column(order::Column::Id)
        .column(order::Column::PaymentIntentId)
        .column(order::Column::ChargeId)
        .filter(on)
        .into_tuple()
        .all(db)
        .await?;
    for (id, pi, ch) in rows {
        if let Some(pi) = pi {
            by_pi.insert(pi, id.clone());
        }
        if let Some(ch) = ch {
            by_charge.insert(ch, id);
        }
    }
    Ok((by_pi, by_charge))
}

/// The list's paging.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Paging {
    /// The cursor of the next page.
    after: String,
}

#[derive(Template)]
#[template(path = "backoffice/app/disputes.html")]
struct DisputesTemplate {
    ctx: Page,
    rows: Vec<DisputeRow>,
    more: Option<String>,
}

/// The order of each dispute, by its payment intent or else its charge.
async fn with_orders(
    s: &MerchantSession,
    scope: Scope,
    rows: &[dispute::Model],
) -> Result<Vec<DisputeRow>, PageError> {
    let pis = rows
        .iter()
        .filter_map(|d| d.payment_intent_id.clone())
        .collect();
    let chs = rows.iter().filter_map(|d| d.charge_id.clone()).collect();
    let (by_pi, by_charge) = orders_by_payment(s.db(), scope, pis, chs).await?;
    Ok(rows
        .iter()
        .map(|d| {
            let order = d
                .payment_intent_id
                .as_ref()
                .and_then(|p| by_pi.get(p))
                .or_else(|| d.charge_id.as_ref().and_then(|c| by_charge.get(c)))
                .cloned();
            DisputeRow::new(s.lang, scope, d, order)
        })
        .collect())
}

async fn list(
    s: MerchantSession,
    q: web::Query<Paging>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let mut sel = v
        .scope
        .disputes()
        .order_by(Expr::cust(BUCKET), Order::Asc)
        .order_by(Expr::cust(WITHIN), Order::Asc)
        .order_by(dispute::Column::Id, Order::Asc)
        .limit(PAGE_SIZE + 1);
    let after = decode_cursor(&q.after, 3).and_then(|p| {
        let n: Vec<i64> = p.iter().filter_map(|x| x.parse().ok()).collect();
        (n.len() == 3).then(|| [n[0], n[1], n[2]])
    });
    if let Some([b, k, id]) = after {
        sel = sel.filter(
            Condition::any()
                .add(Expr::cust(format!("{BUCKET} > {b}")))
                .add(Expr::cust(format!("{BUCKET} = {b} AND {WITHIN} > {k}")))
                .add(Expr::cust(format!(
                    "{BUCKET} = {b} AND {WITHIN} = {k} AND id > {id}"
                ))),
        );
    }
    let mut rows = sel.all(s.db()).await?;
    let more = rows.len() as u64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let more = match rows.last() {
        Some(last) if more => Some(format!(
            "/app/disputes?mode={}&after={}",
            v.mode().as_str(),
            encode_cursor(&sort_key(last).map(|n| n.to_string()))
        )),
        _ => None,
    };
    render(&DisputesTemplate {
        ctx: v.page(&s, "disputes.title", "/app/disputes"),
        rows: with_orders(&s, v.scope, &rows).await?,
        more,
    })
}

#[derive(Template)]
#[template(path = "backoffice/app/dispute.html")]
struct DisputeTemplate {
    ctx: Page,
    row: DisputeRow,
    charge: Option<String>,
    payment_intent: Option<String>,
    withdrawn: Option<String>,
    reinstated: Option<String>,
    updated_at: i64,
}

async fn detail(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let d = v
        .scope
        .disputes()
        .filter(dispute::Column::StripeId.eq(path.into_inner()))
        .one(s.db())
        .await?
        .ok_or(PageError::NotFound)?;
    let row = with_orders(&s, v.scope, std::slice::from_ref(&d))
        .await?
        .pop()
        .ok_or(PageError::NotFound)?;
    let mut ctx = v.page(&s, "disputes.detail_title", "/app/disputes");
    ctx.title = s.lang.format("disputes.detail_title", &[&d.stripe_id]);
    render(&DisputeTemplate {
        ctx,
        row,
        withdrawn: (d.funds_withdrawn > 0).then(|| s.lang.money(d.funds_withdrawn, &d.currency)),
        reinstated: (d.funds_reinstated > 0).then(|| s.lang.money(d.funds_reinstated, &d.currency)),
        charge: d.charge_id,
        payment_intent: d.payment_intent_id,
        updated_at: d.updated_at,
    })
}
