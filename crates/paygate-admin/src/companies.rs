//! `/admin/v1/companies`: the tenants.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use paygate_tenant::wire::{CompanyIn, CompanyOut, CompanyPatch};
use paygate_web::{ApiError, Page, decode_cursor, encode_cursor};

use crate::error_body::ErrorBody;
use crate::{AdminState, OperatorPrincipal, page_limit};

/// Query of the company list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Part of the company's id or name.
    search: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists companies.
#[utoipa::path(
    get,
    path = "/admin/v1/companies",
    tag = "companies",
    params(ListQuery),
    responses((status = 200, description = "A page of companies", body = Page<CompanyOut>)),
)]
pub(crate) async fn list(
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

/// Creates a company.
#[utoipa::path(
    post,
    path = "/admin/v1/companies",
    tag = "companies",
    request_body = CompanyIn,
    responses(
        (status = 201, description = "The company", body = CompanyOut),
        (status = 409, description = "The id is taken (`company_exists`)", body = ErrorBody),
        (status = 422, description = "A field is invalid; a `connect_platform` that is not a Connect platform is `connect_platform_invalid`, a platform linked to another is `connect_platform_linked`", body = ErrorBody),
    ),
)]
pub(crate) async fn create(
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

/// A company, with its callback URL and the Stripe events to select.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}",
    tag = "companies",
    params(("company_id" = String, Path, description = "The company")),
    responses((status = 200, description = "The company", body = CompanyOut)),
)]
pub(crate) async fn get(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let m = state.tenants.company(&path).await?;
    Ok(HttpResponse::Ok().json(state.tenants.company_out(&m)))
}

/// Changes a company's name, status, `stripe_enabled` or environment.
#[utoipa::path(
    patch,
    path = "/admin/v1/companies/{company_id}",
    tag = "companies",
    params(("company_id" = String, Path, description = "The company")),
    request_body = CompanyPatch,
    responses(
        (status = 200, description = "The company", body = CompanyOut),
        (status = 409, description = "The change conflicts with the company's state; switching to live while the live Stripe account is not ready is `account_not_ready`, naming what is missing (`live_profile`, `charges_enabled`, `payouts_enabled`); unmarking a Connect platform that still has linked companies is `platform_has_linked_companies`", body = ErrorBody),
        (status = 422, description = "A field is invalid; a `connect_platform` that is not a Connect platform is `connect_platform_invalid`, a platform linked to another is `connect_platform_linked`", body = ErrorBody),
    ),
)]
pub(crate) async fn update(
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

/// Deletes a company and everything it owns.
#[utoipa::path(
    delete,
    path = "/admin/v1/companies/{company_id}",
    tag = "companies",
    params(("company_id" = String, Path, description = "The company")),
    responses((status = 204, description = "Deleted")),
)]
pub(crate) async fn delete(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.tenants.delete_company(&op.actor(), &path).await?;
    Ok(HttpResponse::NoContent().finish())
}
