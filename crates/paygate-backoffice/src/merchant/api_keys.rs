//! `/app/api-keys`: the company's keys for the merchant API (`/api/v1/…`). A new key is shown
//! once, by the GET after the creation's redirect (kept for it in [`crate::oneshot`]: a reload
//! creates nothing and shows the plain list), and stored only as a hash
//! ([`paygate_tenant::api_keys`] does the hashing and the audit log, as for operators); the
//! list shows prefix, name, creation, last use and revocation. Revoking is immediate, after a
//! confirmation page naming the key (a POST without `confirm=yes` only shows that page).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use paygate_db::entities::api_key;
use paygate_tenant::api_keys::{self as domain, ApiKeyError};

use crate::MerchantSession;
use crate::page::{
    ConfirmTemplate, FieldErrors, Page, PageError, confirmed, redirect, redirect_with_flash,
    render, render_status,
};

/// The [`crate::oneshot`] slot of a key just made.
const NEW_KEY: &str = "oneshot:api_key.created";

/// Registers `/app/api-keys…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys", web::get().to(list))
        .route("/api-keys", web::post().to(create))
        .route("/api-keys/{key_id}/revoke", web::get().to(confirm_revoke))
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
#[derive(Serialize, Deserialize)]
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
    let created = s.take_once::<NewKey>(NEW_KEY);
    render(&page(&s, String::new(), FieldErrors::new(), created).await?)
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
            // Shown once by the GET after the redirect: a reload creates no second key.
            s.put_once(NEW_KEY, &NewKey { name: m.name, key });
            Ok(redirect("/app/api-keys#new-key"))
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

/// The confirmation page of revoking key `key_id` (an active key of the company, else 404).
async fn confirm_page(s: &MerchantSession, key_id: &str) -> Result<HttpResponse, PageError> {
    let key = domain::list_keys(s.db(), s.tenant())
        .await?
        .into_iter()
        .find(|k| k.id == key_id && k.revoked_at.is_none())
        .ok_or(PageError::NotFound)?;
    render(&ConfirmTemplate {
        ctx: s.page("api_keys.revoke_title"),
        warning: s.lang.format(
            "api_keys.revoke_warning",
            &[key.name.as_str(), &format!("{}…", key.prefix)],
        ),
        details: Vec::new(),
        action: format!("/app/api-keys/{}/revoke", key.id),
        hidden: Vec::new(),
        submit: s.lang.t("api_keys.revoke").to_owned(),
        cancel_href: "/app/api-keys".to_owned(),
        error: None,
    })
}

async fn confirm_revoke(
    s: MerchantSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    confirm_page(&s, &path).await
}

/// The confirmation page's form.
#[derive(Debug, Default, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

async fn revoke(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    if !confirmed(&form.confirm) {
        // One click never revokes: the confirmation page first.
        return confirm_page(&s, &path).await;
    }
    // Scoped by the session's company: another company's key is "not found".
    domain::revoke_key(s.db(), &s.actor(), s.tenant(), &path)
        .await
        .map_err(key_error)?;
    Ok(redirect_with_flash(
        "/app/api-keys",
        "api_keys.flash_revoked",
    ))
}
