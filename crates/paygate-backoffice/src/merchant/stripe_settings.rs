//! `/app/stripe`: the company's Stripe settings — the Stripe payment method switch, the gateway
//! environment (Test / Live), and the Stripe profiles with their keys and signing secrets.
//!
//! Every change goes through [`paygate_tenant::TenantService`], so the foundation's validation
//! (a live profile takes only live keys, a signing secret starts with `whsec_` …), encryption,
//! audit log and intake-cache invalidation apply exactly as through the admin API; its
//! field-level messages are shown next to their field. Secrets leave only masked: the forms'
//! secret fields are never filled back in, not even after a validation error.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /app/stripe` | switches, profiles, the form to add a profile |
//! | `POST /app/stripe/payment-method` | `stripe_enabled=on\|off` |
//! | `POST /app/stripe/environment` | `environment=test\|live` |
//! | `POST /app/stripe/profiles` | add a profile |
//! | `GET /app/stripe/profiles/{id}` | one profile: edit, rotate its signing secret, remove |
//! | `POST /app/stripe/profiles/{id}` | edit (an empty secret key keeps the current one) |
//! | `POST /app/stripe/profiles/{id}/activate` | make it the active profile of its mode |
//! | `POST /app/stripe/profiles/{id}/signing-secrets` | add a signing secret (rotation) |
//! | `POST /app/stripe/profiles/{id}/remove` | remove it |

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use serde::Deserialize;

use paygate_db::entities::{company, signing_secret, stripe_profile};
use paygate_db::now_ms;
use paygate_tenant::wire::{CompanyPatch, ProfileIn, ProfilePatch, SigningSecretIn};

use crate::MerchantSession;
use crate::page::{FieldErrors, Page, PageError, redirect_with_flash, render, render_status};

/// Registers `/app/stripe…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/stripe", web::get().to(settings))
        .route("/stripe/payment-method", web::post().to(payment_method))
        .route("/stripe/environment", web::post().to(environment))
        .route("/stripe/profiles", web::post().to(create_profile))
        .route("/stripe/profiles/{profile_id}", web::get().to(profile))
        .route(
            "/stripe/profiles/{profile_id}",
            web::post().to(update_profile),
        )
        .route(
            "/stripe/profiles/{profile_id}/activate",
            web::post().to(activate_profile),
        )
        .route(
            "/stripe/profiles/{profile_id}/signing-secrets",
            web::post().to(rotate_secret),
        )
        .route(
            "/stripe/profiles/{profile_id}/remove",
            web::post().to(remove_profile),
        );
}

/// The grace periods offered when a signing secret is rotated, in seconds.
pub const GRACE_PERIODS: &[(u64, &str)] = &[
    (0, "stripe_settings.grace_now"),
    (3600, "stripe_settings.grace_1h"),
    (86_400, "stripe_settings.grace_24h"),
    (259_200, "stripe_settings.grace_3d"),
    (604_800, "stripe_settings.grace_7d"),
];

/// Catalogue key of a mode's name.
pub fn mode_key(mode: &str) -> &'static str {
    if mode == "live" {
        "environment.live"
    } else {
        "environment.test"
    }
}

/// A signing secret as shown: masked.
pub struct SecretRow {
    pub mask: String,
    pub created_at: i64,
    /// Set once rotated out.
    pub expires_at: Option<i64>,
    /// Still accepted by the intake.
    pub valid: bool,
}

/// A profile as shown: the secret key and the signing secrets masked.
pub struct ProfileRow {
    pub id: String,
    pub name: String,
    pub mode: String,
    pub mode_key: &'static str,
    pub active: bool,
    pub account_id: Option<String>,
    pub publishable_key: String,
    pub secret_key_mask: String,
    pub secrets: Vec<SecretRow>,
    pub updated_at: i64,
}

impl ProfileRow {
    fn new(p: stripe_profile::Model, secrets: &[signing_secret::Model], now: i64) -> Self {
        let mut rows: Vec<SecretRow> = secrets
            .iter()
            .filter(|s| s.profile_id == p.id)
            .map(|s| SecretRow {
                mask: s.secret_mask.clone(),
                created_at: s.created_at,
                expires_at: s.expires_at,
                valid: s.expires_at.is_none_or(|e| e > now),
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Self {
            mode_key: mode_key(&p.mode),
            active: p.active_mode.is_some(),
            id: p.id,
            name: p.name,
            mode: p.mode,
            account_id: p.account_id,
            publishable_key: p.publishable_key,
            secret_key_mask: p.secret_key_mask,
            secrets: rows,
            updated_at: p.updated_at,
        }
    }
}

/// The company, fresh from the database (the session carries only what every page needs).
pub async fn company_of(s: &MerchantSession) -> Result<company::Model, PageError> {
    s.company().await
}

/// The company's profiles (oldest first), or only `only`, with their secrets masked.
pub async fn profile_rows(
    s: &MerchantSession,
    only: Option<&str>,
) -> Result<Vec<ProfileRow>, PageError> {
    let mut q = s
        .tenant()
        .find::<stripe_profile::Entity>()
        .order_by_asc(stripe_profile::Column::CreatedAt)
        .order_by_asc(stripe_profile::Column::Id);
    let mut sq = s.tenant().find::<signing_secret::Entity>();
    if let Some(id) = only {
        q = q.filter(stripe_profile::Column::Id.eq(id));
        sq = sq.filter(signing_secret::Column::ProfileId.eq(id));
    }
    let profiles = q.all(s.db()).await?;
    let secrets = sq.all(s.db()).await?;
    let now = now_ms();
    Ok(profiles
        .into_iter()
        .map(|p| ProfileRow::new(p, &secrets, now))
        .collect())
}

/// What the add-profile form had (secrets never come back).
#[derive(Debug, Default)]
struct NewProfileValues {
    name: String,
    mode: String,
    account_id: String,
    publishable_key: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "backoffice/app/stripe_settings.html")]
struct SettingsTemplate {
    ctx: Page,
    is_admin: bool,
    stripe_enabled: bool,
    environment: String,
    environment_key: &'static str,
    has_active_for_environment: bool,
    profiles: Vec<ProfileRow>,
    form: NewProfileValues,
    errors: FieldErrors,
}

async fn settings_page(
    s: &MerchantSession,
    form: NewProfileValues,
    errors: FieldErrors,
) -> Result<SettingsTemplate, PageError> {
    let c = company_of(s).await?;
    let profiles = profile_rows(s, None).await?;
    let has_active_for_environment = profiles.iter().any(|p| p.active && p.mode == c.environment);
    Ok(SettingsTemplate {
        ctx: s.page("stripe_settings.title"),
        is_admin: s.is_admin(),
        stripe_enabled: c.stripe_enabled,
        environment_key: mode_key(&c.environment),
        environment: c.environment,
        has_active_for_environment,
        profiles,
        form,
        errors,
    })
}

async fn settings(s: MerchantSession) -> Result<HttpResponse, PageError> {
    let form = NewProfileValues {
        mode: "test".into(),
        ..NewProfileValues::default()
    };
    render(&settings_page(&s, form, FieldErrors::new()).await?)
}

async fn settings_invalid(
    s: &MerchantSession,
    form: NewProfileValues,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &settings_page(s, form, errors).await?,
    )
}

/// `stripe_enabled=on|off`.
#[derive(Debug, Deserialize)]
struct PaymentMethodForm {
    #[serde(default)]
    stripe_enabled: String,
}

async fn payment_method(
    s: MerchantSession,
    form: web::Form<PaymentMethodForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let enabled = match form.stripe_enabled.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            let mut errors = FieldErrors::new();
            errors.add_text(
                "stripe_enabled",
                s.lang.t("stripe_settings.choose_on_off").to_owned(),
            );
            return settings_invalid(&s, default_values(), errors).await;
        }
    };
    let patch = CompanyPatch {
        stripe_enabled: Some(enabled),
        ..CompanyPatch::default()
    };
    match s
        .tenants()
        .update_company(&s.actor(), &s.company_id, patch)
        .await
    {
        Ok(_) => Ok(redirect_with_flash(
            "/app/stripe",
            if enabled {
                "stripe_settings.flash_enabled"
            } else {
                "stripe_settings.flash_disabled"
            },
        )),
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            settings_invalid(&s, default_values(), errors).await
        }
    }
}

/// `environment=test|live`.
#[derive(Debug, Deserialize)]
struct EnvironmentForm {
    #[serde(default)]
    environment: String,
}

async fn environment(
    s: MerchantSession,
    form: web::Form<EnvironmentForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let patch = CompanyPatch {
        environment: Some(form.into_inner().environment),
        ..CompanyPatch::default()
    };
    match s
        .tenants()
        .update_company(&s.actor(), &s.company_id, patch)
        .await
    {
        Ok(_) => Ok(redirect_with_flash(
            "/app/stripe",
            "stripe_settings.flash_environment",
        )),
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            settings_invalid(&s, default_values(), errors).await
        }
    }
}

fn default_values() -> NewProfileValues {
    NewProfileValues {
        mode: "test".into(),
        ..NewProfileValues::default()
    }
}

fn some_text(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// The add-profile form.
#[derive(Debug, Deserialize)]
struct NewProfileForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    publishable_key: String,
    #[serde(default)]
    secret_key: String,
    #[serde(default)]
    webhook_secret: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    active: Option<String>,
}

async fn create_profile(
    s: MerchantSession,
    form: web::Form<NewProfileForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let f = form.into_inner();
    let c = company_of(&s).await?;
    let input = ProfileIn {
        name: f.name.clone(),
        mode: f.mode.clone(),
        account_id: some_text(&f.account_id),
        publishable_key: f.publishable_key.clone(),
        secret_key: f.secret_key,
        webhook_secret: some_text(&f.webhook_secret),
        active: Some(f.active.is_some()),
    };
    match s.tenants().create_profile(&s.actor(), &c, input).await {
        Ok(p) => Ok(redirect_with_flash(
            &format!("/app/stripe/profiles/{}", p.id),
            "stripe_settings.flash_profile_added",
        )),
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            let values = NewProfileValues {
                name: f.name,
                mode: f.mode,
                account_id: f.account_id,
                publishable_key: f.publishable_key,
                active: f.active.is_some(),
            };
            settings_invalid(&s, values, errors).await
        }
    }
}

/// What the edit form had (the secret key never comes back).
#[derive(Debug, Default)]
struct EditValues {
    name: String,
    account_id: String,
    publishable_key: String,
}

#[derive(Template)]
#[template(path = "backoffice/app/stripe_profile.html")]
struct ProfileTemplate {
    ctx: Page,
    is_admin: bool,
    p: ProfileRow,
    form: EditValues,
    grace_periods: &'static [(u64, &'static str)],
    grace_selected: u64,
    errors: FieldErrors,
}

async fn profile_page(
    s: &MerchantSession,
    profile_id: &str,
    form: Option<EditValues>,
    grace_selected: u64,
    errors: FieldErrors,
) -> Result<ProfileTemplate, PageError> {
    let p = profile_rows(s, Some(profile_id))
        .await?
        .pop()
        .ok_or(PageError::NotFound)?;
    let form = form.unwrap_or_else(|| EditValues {
        name: p.name.clone(),
        account_id: p.account_id.clone().unwrap_or_default(),
        publishable_key: p.publishable_key.clone(),
    });
    let mut ctx = s.page("stripe_settings.profile_title");
    ctx.title = s
        .lang
        .format("stripe_settings.profile_title_named", &[&p.name]);
    Ok(ProfileTemplate {
        ctx,
        is_admin: s.is_admin(),
        p,
        form,
        grace_periods: GRACE_PERIODS,
        grace_selected,
        errors,
    })
}

const DEFAULT_GRACE: u64 = 86_400;

async fn profile(s: MerchantSession, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    render(&profile_page(&s, &path, None, DEFAULT_GRACE, FieldErrors::new()).await?)
}

async fn profile_invalid(
    s: &MerchantSession,
    profile_id: &str,
    form: Option<EditValues>,
    grace_selected: u64,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &profile_page(s, profile_id, form, grace_selected, errors).await?,
    )
}

/// The edit form.
#[derive(Debug, Deserialize)]
struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    publishable_key: String,
    /// Empty: keep the current one.
    #[serde(default)]
    secret_key: String,
}

async fn update_profile(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<EditForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let profile_id = path.into_inner();
    let f = form.into_inner();
    let c = company_of(&s).await?;
    let patch = ProfilePatch {
        name: Some(f.name.clone()),
        account_id: Some(f.account_id.clone()),
        publishable_key: Some(f.publishable_key.clone()),
        secret_key: some_text(&f.secret_key),
        active: None,
    };
    match s
        .tenants()
        .update_profile(&s.actor(), &c, &profile_id, patch)
        .await
    {
        Ok(_) => Ok(redirect_with_flash(
            &format!("/app/stripe/profiles/{profile_id}"),
            "stripe_settings.flash_profile_saved",
        )),
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            let values = EditValues {
                name: f.name,
                account_id: f.account_id,
                publishable_key: f.publishable_key,
            };
            profile_invalid(&s, &profile_id, Some(values), DEFAULT_GRACE, errors).await
        }
    }
}

async fn activate_profile(
    s: MerchantSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let profile_id = path.into_inner();
    let c = company_of(&s).await?;
    let patch = ProfilePatch {
        active: Some(true),
        ..ProfilePatch::default()
    };
    match s
        .tenants()
        .update_profile(&s.actor(), &c, &profile_id, patch)
        .await
    {
        Ok(_) => Ok(redirect_with_flash(
            "/app/stripe",
            "stripe_settings.flash_profile_activated",
        )),
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            profile_invalid(&s, &profile_id, None, DEFAULT_GRACE, errors).await
        }
    }
}

/// The rotation form.
#[derive(Debug, Deserialize)]
struct RotateForm {
    #[serde(default)]
    webhook_secret: String,
    #[serde(default)]
    grace_period_secs: String,
}

async fn rotate_secret(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let profile_id = path.into_inner();
    let f = form.into_inner();
    let grace = match f.grace_period_secs.trim() {
        "" => DEFAULT_GRACE,
        g => match g.parse::<u64>() {
            Ok(g) => g,
            Err(_) => {
                let mut errors = FieldErrors::new();
                errors.add(
                    s.lang,
                    "grace_period_secs",
                    "invalid_grace_period",
                    "Choose how long the previous secret stays valid.",
                );
                return profile_invalid(&s, &profile_id, None, DEFAULT_GRACE, errors).await;
            }
        },
    };
    let c = company_of(&s).await?;
    let input = SigningSecretIn {
        webhook_secret: f.webhook_secret,
        grace_period_secs: Some(grace),
    };
    match s
        .tenants()
        .rotate_signing_secret(&s.actor(), &c, &profile_id, input)
        .await
    {
        Ok(_) => Ok(redirect_with_flash(
            &format!("/app/stripe/profiles/{profile_id}"),
            "stripe_settings.flash_secret_rotated",
        )),
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            profile_invalid(&s, &profile_id, None, grace, errors).await
        }
    }
}

async fn remove_profile(
    s: MerchantSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let profile_id = path.into_inner();
    let c = company_of(&s).await?;
    match s
        .tenants()
        .delete_profile(&s.actor(), &c, &profile_id)
        .await
    {
        Ok(()) => Ok(redirect_with_flash(
            "/app/stripe",
            "stripe_settings.flash_profile_removed",
        )),
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            profile_invalid(&s, &profile_id, None, DEFAULT_GRACE, errors).await
        }
    }
}
