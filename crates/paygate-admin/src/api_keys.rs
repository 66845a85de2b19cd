//! Company API keys (`pgk_…`) for the merchant API: shown once, stored as SHA-256 hashes,
//! revocable. `POST|GET /admin/v1/companies/{companyID}/api-keys`, `DELETE …/api-keys/{id}`.

use actix_web::{HttpResponse, web};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use paygate_db::entities::api_key;
use paygate_db::{new_id, now_ms};
use paygate_web::{ApiError, rfc3339_ms};

use crate::{AdminState, OperatorPrincipal};

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    name: String,
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize)]
pub struct ApiKeyOut {
    id: String,
    name: String,
    prefix: String,
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
            created_at: rfc3339_ms(m.created_at),
            last_used_at: m.last_used_at.map(rfc3339_ms),
            revoked_at: m.revoked_at.map(rfc3339_ms),
            key: None,
        }
    }
}

async fn create(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
    body: web::Json<ApiKeyIn>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(
            ApiError::unprocessable("invalid_name", "name: must be 1 to 100 characters")
                .with_field("name"),
        );
    }
    let secret: [u8; 32] = rand::rngs::OsRng.r#gen();
    let key = format!("pgk_{}", hex::encode(secret));
    let m = api_key::ActiveModel {
        id: Set(new_id("key")),
        company_pk: Set(company.id),
        name: Set(name.to_owned()),
        prefix: Set(key[..12].to_owned()),
        key_hash: Set(hash_key(&key)),
        created_at: Set(now_ms()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&state.db)
    .await?;
    paygate_tenant::audit::record(
        &state.db,
        &op.actor(),
        Some(company.id),
        "api_key.created",
        &m.id,
        serde_json::json!({"name": m.name, "prefix": m.prefix}),
    )
    .await?;
    let mut out = ApiKeyOut::from(m);
    out.key = Some(key);
    Ok(HttpResponse::Created().json(out))
}

async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let rows = api_key::Entity::find()
        .filter(api_key::Column::CompanyPk.eq(company.id))
        .order_by_asc(api_key::Column::CreatedAt)
        .all(&state.db)
        .await?;
    let data: Vec<ApiKeyOut> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"data": data})))
}

async fn revoke(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let n = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now_ms()))
        .filter(api_key::Column::CompanyPk.eq(company.id))
        .filter(api_key::Column::Id.eq(id.as_str()))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(&state.db)
        .await?
        .rows_affected;
    if n == 0 {
        return Err(ApiError::not_found(
            "api_key_not_found",
            "no such active API key for this company",
        ));
    }
    paygate_tenant::audit::record(
        &state.db,
        &op.actor(),
        Some(company.id),
        "api_key.revoked",
        &id,
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
