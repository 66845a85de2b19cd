//! `/console/system`: the health of the whole installation — the inbox backlog (events waiting
//! and the age of the oldest), events whose handling failed for good, and recent rejected
//! deliveries, across companies.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use paygate_db::entities::{company, delivery_failure, inbox_event};
use paygate_db::now_ms;

use crate::OperatorSession;
use crate::page::{Page, PageError, render};

/// Registers `/console/system`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/system", web::get().to(system));
}

/// Rows each list shows.
const RECENT: u64 = 50;

/// A failed event.
pub struct FailedRow {
    pub company_id: String,
    pub company_name: String,
    pub stripe_event_id: String,
    pub event_type: String,
    pub attempts: i32,
    pub last_error: String,
    pub received_at: i64,
}

/// A rejected delivery.
pub struct RejectionRow {
    pub company_id: String,
    pub company_name: String,
    /// Catalogue key of the reason in plain words, or the code itself.
    pub reason: String,
    pub remote_addr: String,
    pub occurred_at: i64,
}

#[derive(Template)]
#[template(path = "backoffice/console/system.html")]
struct SystemTemplate {
    ctx: Page,
    pending: String,
    oldest_age: String,
    failed_count: String,
    failed: Vec<FailedRow>,
    rejections_24h: String,
    rejections: Vec<RejectionRow>,
}

async fn count_and_oldest(
    op: &OperatorSession,
    status: &str,
) -> Result<(i64, Option<i64>), PageError> {
    let row: Option<(i64, Option<i64>)> = inbox_event::Entity::find()
        .select_only()
        .column_as(
            Expr::from(Func::count(Expr::col(inbox_event::Column::Id))),
            "n",
        )
        .column_as(
            Expr::from(Func::min(Expr::col(inbox_event::Column::ReceivedAt))),
            "oldest",
        )
        .filter(inbox_event::Column::Status.eq(status))
        .into_tuple()
        .one(op.db())
        .await?;
    Ok(row.unwrap_or((0, None)))
}

/// "3 h 12 min", "45 s" — an age in the page's language.
fn age(op: &OperatorSession, ms: i64) -> String {
    let secs = (ms / 1000).max(0);
    let lang = op.lang;
    if secs < 120 {
        lang.format("system.age_seconds", &[&secs.to_string()])
    } else if secs < 2 * 3600 {
        lang.format("system.age_minutes", &[&(secs / 60).to_string()])
    } else {
        lang.format(
            "system.age_hours",
            &[
                &(secs / 3600).to_string(),
                &((secs % 3600) / 60).to_string(),
            ],
        )
    }
}

async fn companies_by_pk(
    op: &OperatorSession,
    pks: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, company::Model>, PageError> {
    let mut pks: Vec<i64> = pks.collect();
    pks.sort_unstable();
    pks.dedup();
    if pks.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(company::Entity::find()
        .filter(company::Column::Id.is_in(pks))
        .all(op.db())
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect())
}

async fn system(op: OperatorSession) -> Result<HttpResponse, PageError> {
    let now = now_ms();
    let (pending, oldest) = count_and_oldest(&op, "pending").await?;
    let (failed_count, _) = count_and_oldest(&op, "failed").await?;
    let failed_rows = inbox_event::Entity::find()
        .select_only()
        .columns([
            inbox_event::Column::CompanyPk,
            inbox_event::Column::StripeEventId,
            inbox_event::Column::EventType,
            inbox_event::Column::Attempts,
            inbox_event::Column::LastError,
            inbox_event::Column::ReceivedAt,
        ])
        .filter(inbox_event::Column::Status.eq("failed"))
        .order_by_desc(inbox_event::Column::Id)
        .limit(RECENT)
        .into_tuple::<(i64, String, String, i32, Option<String>, i64)>()
        .all(op.db())
        .await?;
    let rejections_24h: i64 = delivery_failure::Entity::find()
        .select_only()
        .column_as(
            Expr::from(Func::count(Expr::col(delivery_failure::Column::Id))),
            "n",
        )
        .filter(delivery_failure::Column::OccurredAt.gt(now - 24 * 3600 * 1000))
        .into_tuple()
        .one(op.db())
        .await?
        .unwrap_or(0);
    let rejection_rows = delivery_failure::Entity::find()
        .order_by_desc(delivery_failure::Column::Id)
        .limit(RECENT)
        .all(op.db())
        .await?;
    let companies = companies_by_pk(
        &op,
        failed_rows
            .iter()
            .map(|r| r.0)
            .chain(rejection_rows.iter().map(|r| r.company_pk)),
    )
    .await?;
    let name = |pk: i64| {
        companies
            .get(&pk)
            .map(|c| (c.company_id.clone(), c.name.clone()))
            .unwrap_or_default()
    };
    let failed = failed_rows
        .into_iter()
        .map(|(pk, id, ty, attempts, err, at)| {
            let (company_id, company_name) = name(pk);
            let mut last_error = err.unwrap_or_default();
            if last_error.chars().count() > 300 {
                last_error = last_error.chars().take(300).collect::<String>() + "…";
            }
            FailedRow {
                company_id,
                company_name,
                stripe_event_id: id,
                event_type: ty,
                attempts,
                last_error,
                received_at: at,
            }
        })
        .collect();
    let rejections = rejection_rows
        .into_iter()
        .map(|r| {
            let (company_id, company_name) = name(r.company_pk);
            RejectionRow {
                company_id,
                company_name,
                reason: crate::page::rejection_text(op.lang, &r.reason),
                remote_addr: r.remote_addr.unwrap_or_default(),
                occurred_at: r.occurred_at,
            }
        })
        .collect();
    render(&SystemTemplate {
        ctx: op.page("system.title"),
        pending: pending.to_string(),
        oldest_age: oldest.map(|o| age(&op, now - o)).unwrap_or_default(),
        failed_count: failed_count.to_string(),
        failed,
        rejections_24h: rejections_24h.to_string(),
        rejections,
    })
}
