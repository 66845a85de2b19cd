//! Company API keys (`pgk_test_…`, `pgk_live_…`) for the merchant API: shown once, stored as
//! SHA-256 hashes, revocable. A key belongs to one mode, like Stripe's keys: a test key reads
//! and changes only test data, whatever the company's environment. `POST|GET /admin/v1/companies/{companyID}/api-keys`, `DELETE …/api-keys/{id}`.

use actix_web::{HttpResponse, web};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use paygate_db::entities::api_key;
use paygate_db::{Mode, Scope, Tenant, new_id, now_ms};
use paygate_web::{ApiError, rfc3339_ms};

use crate::error_body::ErrorBody;
use crate::{AdminState, List, OperatorPrincipal};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/companies/{company_id}/api-keys", web::post().to(create))
        .route("/companies/{company_id}/api-keys", web::get().to(list))
        .route(
            "/companies/{company_id}/api-keys/{id}",
            web::delete().to(revoke),
        );
}

/// The hash a key is stored and looked up by.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

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

/// Why a key could not be made or revoked.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// The name is empty or longer than 100 characters.
    #[error("name: must be 1 to 100 characters")]
    InvalidName,
    /// No active key with this id in this company.
    #[error("no such active API key for this company")]
    NotFound,
    #[error("database error")]
    Db(#[from] DbErr),
}

impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::InvalidName => {
                ApiError::unprocessable("invalid_name", e.to_string()).with_field("name")
            }
            ApiKeyError::NotFound => ApiError::not_found("api_key_not_found", e.to_string()),
            ApiKeyError::Db(db) => ApiError::from(db),
        }
    }
}

/// Makes a key for a company in one mode (audited as `api_key.created` by `actor`): the stored
/// row and the key itself, which exists nowhere else and is shown only once.
pub async fn create_key<C: ConnectionTrait>(
    db: &C,
    actor: &str,
    scope: Scope,
    name: &str,
) -> Result<(api_key::Model, String), ApiKeyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiKeyError::InvalidName);
    }
    let secret: [u8; 32] = rand::rngs::OsRng.r#gen();
    let key = format!("pgk_{}_{}", scope.mode(), hex::encode(secret));
    let company_pk = scope.company_pk();
    let m = api_key::ActiveModel {
        id: Set(new_id("key")),
        company_pk: Set(company_pk),
        livemode: Set(scope.livemode()),
        name: Set(name.to_owned()),
        prefix: Set(key[..17].to_owned()),
        key_hash: Set(hash_key(&key)),
        created_at: Set(now_ms()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    paygate_tenant::audit::record(
        db,
        actor,
        Some(company_pk),
        "api_key.created",
        &m.id,
        serde_json::json!({"name": m.name, "prefix": m.prefix, "livemode": m.livemode}),
    )
    .await?;
    Ok((m, key))
}

/// Every key of a company (revoked ones too), oldest first.
pub async fn list_keys<C: ConnectionTrait>(
    db: &C,
    tenant: Tenant,
) -> Result<Vec<api_key::Model>, DbErr> {
    tenant
        .find::<api_key::Entity>()
        .order_by_asc(api_key::Column::CreatedAt)
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await
}

/// Revokes an active key of a company (audited as `api_key.revoked` by `actor`); another
/// company's key, an unknown one or one already revoked is [`ApiKeyError::NotFound`].
pub async fn revoke_key<C: ConnectionTrait>(
    db: &C,
    actor: &str,
    tenant: Tenant,
    id: &str,
) -> Result<(), ApiKeyError> {
    let n = tenant
        .update::<api_key::Entity>()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now_ms()))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    if n == 0 {
        return Err(ApiKeyError::NotFound);
    }
    paygate_tenant::audit::record(
        db,
        actor,
        Some(tenant.company_pk()),
        "api_key.revoked",
        id,
        serde_json::json!({}),
    )
    .await?;
    Ok(())
}
