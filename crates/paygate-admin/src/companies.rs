//! `/admin/v1/companies`: the tenants.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use paygate_tenant::wire::{CompanyIn, CompanyOut, CompanyPatch};
use paygate_web::{ApiError, Page, decode_cursor, encode_cursor};

use crate::{AdminState, OperatorPrincipal, page_limit};

/// Registers the company routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/companies", web::get().to(list))
        .route("/companies", web::post().to(create))
        .route("/companies/{company_id}", web::get().to(get))
        .route("/companies/{company_id}", web::patch().to(update))
        .route("/companies/{company_id}", web::delete().to(delete));
}

/// Query of the company list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    search: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(q.limit);
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut rows = state
        .tenants
        .list_companies(after, limit + 1, q.search.as_deref())
        .await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|c| encode_cursor(c.id))
    } else {
        None
    };
    let data: Vec<CompanyOut> = rows.iter().map(|c| state.tenants.company_out(c)).collect();
    Ok(HttpResponse::Ok().json(Page {
        data,
        has_more,
        next_cursor,
    }))
}

async fn create(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    body: web::Json<CompanyIn>,
) -> Result<HttpResponse, ApiError> {
    let m = state
        .tenants
        .create_company(&op.actor(), body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(state.tenants.company_out(&m)))
}

async fn get(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let m = state.tenants.company(&path).await?;
    Ok(HttpResponse::Ok().json(state.tenants.company_out(&m)))
}

async fn update(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
    body: web::Json<CompanyPatch>,
) -> Result<HttpResponse, ApiError> {
    let m = state
        .tenants
        .update_company(&op.actor(), &path, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(state.tenants.company_out(&m)))
}

async fn delete(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.tenants.delete_company(&op.actor(), &path).await?;
    Ok(HttpResponse::NoContent().finish())
}
