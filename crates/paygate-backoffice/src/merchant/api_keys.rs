//! `/app/api-keys`: the company's keys for the merchant API (`/api/v1/…`). A new key is shown
//! once, on the page that answers its creation, and stored only as a hash
//! ([`paygate_tenant::api_keys`] does the hashing and the audit log, as for operators); the
//! list shows prefix, name, creation, last use and revocation. Revoking is immediate.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use paygate_db::entities::api_key;
use paygate_tenant::api_keys::{self as domain, ApiKeyError};

use crate::MerchantSession;
use crate::page::{FieldErrors, Page, PageError, redirect_with_flash, render, render_status};

/// Registers `/app/api-keys…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys", web::get().to(list))
        .route("/api-keys", web::post().to(create))
        .route("/api-keys/{key_id}/revoke", web::post().to(revoke));
}

/// A key as listed (never the key itself).
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<api_key::Model> for KeyRow {
    fn from(m: api_key::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            prefix: m.prefix,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// A key just made: the only time it is shown.
pub struct NewKey {
    pub name: String,
    pub key: String,
}

#[derive(Template)]
#[template(path = "backoffice/app/api_keys.html")]
struct ApiKeysTemplate {
    ctx: Page,
    keys: Vec<KeyRow>,
    is_admin: bool,
    form_name: String,
    errors: FieldErrors,
    created: Option<NewKey>,
    api_base: String,
}

async fn page(
    s: &MerchantSession,
    form_name: String,
    errors: FieldErrors,
    created: Option<NewKey>,
) -> Result<ApiKeysTemplate, PageError> {
    let keys = domain::list_keys(s.db(), s.tenant())
        .await?
        .into_iter()
        .rev()
        .map(KeyRow::from)
        .collect();
    Ok(ApiKeysTemplate {
        ctx: s.page("api_keys.title"),
        keys,
        is_admin: s.is_admin(),
        form_name,
        errors,
        created,
        api_base: format!(
            "{}/api/v1",
            s.tenants().public_base_url().trim_end_matches('/')
        ),
    })
}

async fn list(s: MerchantSession) -> Result<HttpResponse, PageError> {
    render(&page(&s, String::new(), FieldErrors::new(), None).await?)
}

fn key_error(e: ApiKeyError) -> PageError {
    match e {
        ApiKeyError::NotFound => PageError::NotFound,
        other => PageError::internal(other),
    }
}

/// The creation form.
#[derive(Debug, Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
}

async fn create(
    s: MerchantSession,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let name = form.into_inner().name;
    // The key is of the company's current environment's mode (`pgk_test_…` / `pgk_live_…`).
    let scope = s.company().await?.scope(None);
    match domain::create_key(s.db(), &s.actor(), scope, &name).await {
        Ok((m, key)) => {
            let created = NewKey { name: m.name, key };
            // Rendered, not redirected: the key exists nowhere else and is shown only now.
            render(&page(&s, String::new(), FieldErrors::new(), Some(created)).await?)
        }
        Err(ApiKeyError::InvalidName) => {
            let mut errors = FieldErrors::new();
            errors.add_text("name", s.lang.t("api_keys.name_invalid").to_owned());
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(&s, name, errors, None).await?,
            )
        }
        Err(e) => Err(key_error(e)),
    }
}

async fn revoke(s: MerchantSession, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    // Scoped by the session's company: another company's key is "not found".
    domain::revoke_key(s.db(), &s.actor(), s.tenant(), &path)
        .await
        .map_err(key_error)?;
    Ok(redirect_with_flash(
        "/app/api-keys",
        "api_keys.flash_revoked",
    ))
}
