//! `GET /admin/v1/audit-log`: who changed what in tenant configuration, when.

use actix_web::{HttpResponse, web};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use paygate_db::entities::audit_log;
use paygate_web::{ApiError, Page, decode_cursor, encode_cursor, rfc3339_ms};

use crate::error_body::ErrorBody;
use crate::{AdminState, OperatorPrincipal, page_limit};

/// Filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// One company's entries only (its id).
    company: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditOut {
    id: i64,
    at: String,
    /// `operator:<e-mail>`, `user:<e-mail>`, `merchant_api` …
    actor: String,
    /// `company.created`, `api_key.revoked` …
    action: String,
    target: String,
    /// What changed (free-form).
    detail: serde_json::Value,
}

/// Changes to tenant configuration, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/audit-log",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = Page<AuditOut>),
        (status = 404, description = "No such company (`company_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(q.limit);
    // The whole installation's log, or one company's.
    let mut sel = match q.company.as_deref() {
        Some(c) => state.tenants.company(c).await?.tenant().find(),
        None => audit_log::Entity::find(),
    }
    .order_by_desc(audit_log::Column::Id)
    .limit(limit + 1);
    if let Some(c) = q.cursor.as_deref() {
        sel = sel.filter(audit_log::Column::Id.lt(decode_cursor(c)?));
    }
    let mut rows = sel.all(&state.db).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|r| encode_cursor(r.id))
    } else {
        None
    };
    let data: Vec<AuditOut> = rows
        .into_iter()
        .map(|r| AuditOut {
            id: r.id,
            at: rfc3339_ms(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(HttpResponse::Ok().json(Page {
        data,
        has_more,
        next_cursor,
    }))
}
