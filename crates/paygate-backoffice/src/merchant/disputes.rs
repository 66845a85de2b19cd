//! `/app/disputes`: the company's disputes, the ones waiting for the merchant's evidence
//! (`needs_response`, `warning_needs_response`) first, soonest due first, then the others newest
//! first; each links to its order when Paygate has one, and one waiting for evidence shows the
//! time left until its deadline (`evidence_details.due_by`). `/app/disputes/{id}`, one dispute
//! and its evidence, is the workbench ([`super::dispute_workbench`]).
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
    cfg.route("/disputes", web::get().to(list));
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
    /// The time left until the deadline, in words, for a dispute waiting for evidence.
    pub time_left: Option<String>,
    /// Whether the deadline has passed (Stripe's `past_due`, or by the clock).
    pub overdue: bool,
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
            time_left: NEEDS_RESPONSE
                .contains(&d.status.as_str())
                .then(|| {
                    d.evidence_due_by
                        .map(|due| time_left(lang, due, paygate_db::now_ms() / 1000))
                })
                .flatten(),
            overdue: NEEDS_RESPONSE.contains(&d.status.as_str())
                && (d.past_due
                    || d.evidence_due_by
                        .is_some_and(|due| due <= paygate_db::now_ms() / 1000)),
            order_href: order_id.as_deref().map(|o| order_href(scope, o)),
            order_id,
            livemode: d.livemode,
            created_at: d.created_at,
        }
    }
}

/// The time from `now` to `due_by` (seconds) in words: days and hours, hours, minutes, or
/// "past due".
pub fn time_left(lang: Lang, due_by: i64, now: i64) -> String {
    let left = due_by - now;
    if left <= 0 {
        return lang.t("dispute_workbench.overdue").to_owned();
    }
    let (days, hours, minutes) = (left / 86_400, (left % 86_400) / 3600, (left % 3600) / 60);
    if days > 0 {
        lang.format(
            "dispute_workbench.left_days",
            &[&days.to_string(), &hours.to_string()],
        )
    } else if hours > 0 {
        lang.format("dispute_workbench.left_hours", &[&hours.to_string()])
    } else {
        lang.format(
            "dispute_workbench.left_minutes",
            &[&minutes.max(1).to_string()],
        )
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
pub async fn with_orders(
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
