//! The admin API's company API keys: `POST|GET /admin/v1/companies/{companyID}/api-keys`,
//! `DELETE …/api-keys/{id}`. The rules (one mode per key, shown once, stored as SHA-256,
//! revocation, the audit log) are [`paygate_tenant::api_keys`]; this file is only their HTTP
//! form.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use paygate_db::Mode;
use paygate_db::entities::api_key;
use paygate_tenant::api_keys::{create_key, list_keys, revoke_key};
use paygate_web::{ApiError, rfc3339_ms};

use crate::error_body::ErrorBody;
use crate::{AdminState, List, OperatorPrincipal};

/// `POST …/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    name: String,
    /// `test` or `live`; the company's environment when absent.
    mode: Option<Mode>,
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyOut {
    id: String,
    name: String,
    /// The key's first characters (`pgk_test_1a2b3c4d`), to recognise it.
    prefix: String,
    /// A live key (`pgk_live_…`) or a test one.
    livemode: bool,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    /// Only in the answer to the creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<api_key::Model> for ApiKeyOut {
    fn from(m: api_key::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            prefix: m.prefix,
            livemode: m.livemode,
            created_at: rfc3339_ms(m.created_at),
            last_used_at: m.last_used_at.map(rfc3339_ms),
            revoked_at: m.revoked_at.map(rfc3339_ms),
            key: None,
        }
    }
}

/// Creates an API key, shown once.
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/api-keys",
    tag = "api-keys",
    params(("company_id" = String, Path, description = "The company")),
    request_body = ApiKeyIn,
    responses(
        (status = 201, description = "The key, with `key` in full (the only time)", body = ApiKeyOut),
        (status = 422, description = "The name is invalid (`invalid_name`)", body = ErrorBody),
    ),
)]
pub(crate) async fn create(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
    body: web::Json<ApiKeyIn>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let scope = company.scope(body.mode);
    let (m, key) = create_key(&state.db, &op.actor(), scope, &body.name).await?;
    let mut out = ApiKeyOut::from(m);
    out.key = Some(key);
    Ok(HttpResponse::Created().json(out))
}

/// The company's API keys, revoked ones too (never the keys themselves).
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/api-keys",
    tag = "api-keys",
    params(("company_id" = String, Path, description = "The company")),
    responses((status = 200, description = "Every key, oldest first", body = List<ApiKeyOut>)),
)]
pub(crate) async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let rows = list_keys(&state.db, company.tenant()).await?;
    let data: Vec<ApiKeyOut> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(List { data }))
}

/// Revokes an API key.
#[utoipa::path(
    delete,
    path = "/admin/v1/companies/{company_id}/api-keys/{id}",
    tag = "api-keys",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "The key's id (`key_…`)"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such active key (`api_key_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn revoke(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    revoke_key(&state.db, &op.actor(), company.tenant(), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
