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
//! | `POST /app/stripe/connect` | connect automatically: a profile from a key alone (issue 17) |
//! | `POST /app/stripe/check` | check (and repair) the connection now |
//! | `GET /app/stripe/profiles/{id}` | one profile: edit, rotate its signing secret, remove |
//! | `POST /app/stripe/profiles/{id}` | edit (an empty secret key keeps the current one) |
//! | `POST /app/stripe/profiles/{id}/activate` | make it the active profile of its mode |
//! | `POST /app/stripe/profiles/{id}/signing-secrets` | add a signing secret (rotation; `grace_period_secs=0`, which expires the previous ones at once, only after the confirmation, `confirm=yes`) |
//! | `POST /app/stripe/profiles/{id}/remove` | remove it |

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use serde::Deserialize;

use paygate_db::entities::{company, signing_secret, stripe_profile};
use paygate_db::now_ms;
use paygate_tenant::wire::{CompanyPatch, ProfileIn, ProfilePatch, SigningSecretIn};
use paygate_tenant::{Mode, TenantError};

use crate::MerchantSession;
use crate::page::{
    ConfirmTemplate, FieldErrors, Page, PageError, confirmed, redirect_with_flash, render,
    render_status,
};

/// Registers `/app/stripe…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/stripe", web::get().to(settings))
        .route("/stripe/payment-method", web::post().to(payment_method))
        .route("/stripe/environment", web::post().to(environment))
        .route("/stripe/fraud-refunds", web::post().to(fraud_refunds))
        .route("/stripe/profiles", web::post().to(create_profile))
        .route("/stripe/connect", web::post().to(connect_automatically))
        .route("/stripe/check", web::post().to(check_connection))
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
    /// Refund automatically on an actionable early fraud warning.
    auto_refund: bool,
    environment: String,
    environment_key: &'static str,
    has_active_for_environment: bool,
    /// Why *Live* cannot be chosen yet (what the live account lacks), in the page's language;
    /// `None` when it can (or the company is live already).
    live_not_ready: Option<String>,
    /// The connection's state as the last check found it (the banner), in the page's language.
    connection: Option<ConnectionBanner>,
    /// When the connection was last checked, ms.
    connection_checked_at: Option<i64>,
    /// Whether the company has a profile connected automatically (the check button).
    has_auto_profile: bool,
    /// What the *Connect automatically* form had (the key never comes back).
    auto_account_id: String,
    /// The permissions a restricted key needs.
    permissions: &'static [(&'static str, &'static str)],
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
    let live_not_ready = if c.environment == "live" {
        None
    } else {
        let missing = paygate_tenant::readiness::live_missing(s.db(), s.company_pk).await?;
        (!missing.is_empty()).then(|| {
            let items: Vec<String> = missing
                .iter()
                .map(|m| s.lang.t(&format!("readiness.{m}")).to_owned())
                .collect();
            s.lang
                .format("field_errors.account_not_ready", &[&items.join("; ")])
        })
    };
    Ok(SettingsTemplate {
        live_not_ready,
        ctx: s.page("stripe_settings.title"),
        is_admin: s.is_admin(),
        stripe_enabled: c.stripe_enabled,
        auto_refund: c.auto_refund_fraud_warnings,
        environment_key: mode_key(&c.environment),
        environment: c.environment,
        has_active_for_environment,
        connection: c
            .stripe_connection
            .as_deref()
            .map(|st| ConnectionBanner::new(s.lang, st)),
        connection_checked_at: c.stripe_checked_at,
        has_auto_profile: auto_profiles(s).await?,
        auto_account_id: String::new(),
        permissions: paygate_tenant::connection::RESTRICTED_KEY_PERMISSIONS,
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

/// `stripe_enabled=on|off`; turning off also needs the confirmation page's `confirm=yes`.
#[derive(Debug, Deserialize)]
struct PaymentMethodForm {
    #[serde(default)]
    stripe_enabled: String,
    #[serde(default)]
    confirm: String,
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
    if !enabled && !confirmed(&form.confirm) {
        // One click never stops the shop taking payments: the page naming the environment
        // first.
        let c = company_of(&s).await?;
        let env = if c.environment == "live" {
            "environment.live"
        } else {
            "environment.test"
        };
        return render(&ConfirmTemplate {
            ctx: s.page("stripe_settings.turn_off_title"),
            warning: s
                .lang
                .format("stripe_settings.turn_off_warning", &[s.lang.t(env)]),
            details: vec![s.lang.t("stripe_settings.turn_off_hint").to_owned()],
            action: "/app/stripe/payment-method".to_owned(),
            hidden: vec![("stripe_enabled".to_owned(), "off".to_owned())],
            submit: s.lang.t("stripe_settings.turn_off").to_owned(),
            cancel_href: "/app/stripe".to_owned(),
            error: None,
        });
    }
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

/// `auto_refund=on|off`.
#[derive(Debug, Deserialize)]
struct FraudRefundsForm {
    #[serde(default)]
    auto_refund: String,
}

/// Turns the automatic refund of payments warned of fraud on or off (admins).
async fn fraud_refunds(
    s: MerchantSession,
    form: web::Form<FraudRefundsForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let on = match form.auto_refund.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            let mut errors = FieldErrors::new();
            errors.add_text(
                "auto_refund",
                s.lang.t("stripe_settings.choose_on_off").to_owned(),
            );
            return settings_invalid(&s, default_values(), errors).await;
        }
    };
    let patch = CompanyPatch {
        auto_refund_fraud_warnings: Some(on),
        ..CompanyPatch::default()
    };
    match s
        .tenants()
        .update_company(&s.actor(), &s.company_id, patch)
        .await
    {
        Ok(_) => Ok(redirect_with_flash(
            "/app/stripe",
            if on {
                "fraud.flash_auto_refund_on"
            } else {
                "fraud.flash_auto_refund_off"
            },
        )),
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            settings_invalid(&s, default_values(), errors).await
        }
    }
}

/// `environment=test|live`; going live also needs the confirmation page's `confirm=yes`.
#[derive(Debug, Deserialize)]
struct EnvironmentForm {
    #[serde(default)]
    environment: String,
    #[serde(default)]
    confirm: String,
}

/// The confirmation page of going live, naming the live profile and its Stripe account: from
/// now on real payments are processed.
async fn go_live_page(s: &MerchantSession) -> Result<HttpResponse, PageError> {
    let c = company_of(s).await?;
    let live = profile_rows(s, None)
        .await?
        .into_iter()
        .find(|p| p.active && p.mode == "live");
    let (name, account) = match live {
        Some(p) => (p.name, p.account_id.unwrap_or_else(|| "—".to_owned())),
        None => ("—".to_owned(), "—".to_owned()),
    };
    render(&ConfirmTemplate {
        ctx: s.page("stripe_settings.go_live_title"),
        warning: s.lang.format(
            "stripe_settings.go_live_warning",
            &[c.name.as_str(), name.as_str(), account.as_str()],
        ),
        details: vec![s.lang.t("stripe_settings.go_live_details").to_owned()],
        action: "/app/stripe/environment".to_owned(),
        hidden: vec![("environment".to_owned(), "live".to_owned())],
        submit: s.lang.t("stripe_settings.go_live_submit").to_owned(),
        cancel_href: "/app/stripe".to_owned(),
        error: None,
    })
}

async fn environment(
    s: MerchantSession,
    form: web::Form<EnvironmentForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let EnvironmentForm {
        environment,
        confirm,
    } = form.into_inner();
    if environment == "live"
        && !confirmed(&confirm)
        && company_of(&s).await?.environment != "live"
        && paygate_tenant::readiness::live_missing(s.db(), s.company_pk)
            .await?
            .is_empty()
    {
        // Going live is never one click: the page naming the live account first. (When the
        // account is not ready, the update below says what is missing.)
        return go_live_page(&s).await;
    }
    let patch = CompanyPatch {
        environment: Some(environment),
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
        Err(TenantError::Conflict {
            code: "account_not_ready",
            ..
        }) => {
            // Say what is missing, in the merchant's language.
            let missing = paygate_tenant::readiness::live_missing(s.db(), s.company_pk).await?;
            let items: Vec<String> = missing
                .iter()
                .map(|m| s.lang.t(&format!("readiness.{m}")).to_owned())
                .collect();
            let mut errors = FieldErrors::new();
            errors.add_text(
                "environment",
                s.lang
                    .format("field_errors.account_not_ready", &[&items.join("; ")]),
            );
            render_status(
                StatusCode::CONFLICT,
                &settings_page(&s, default_values(), errors).await?,
            )
        }
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            settings_invalid(&s, default_values(), errors).await
        }
    }
}

/// The connection banner: the state's sentence, and whether it asks for attention.
pub struct ConnectionBanner {
    pub state: String,
    pub text: String,
    /// Something the merchant should know or do (not `ok`).
    pub attention: bool,
}

impl ConnectionBanner {
    fn new(lang: crate::i18n::Lang, state: &str) -> Self {
        Self {
            state: state.to_owned(),
            text: lang.t(&format!("connection_state.{state}")).to_owned(),
            attention: state != "ok",
        }
    }
}

async fn auto_profiles(s: &MerchantSession) -> Result<bool, PageError> {
    Ok(s.tenant()
        .find::<stripe_profile::Entity>()
        .filter(stripe_profile::Column::WebhookEndpointId.is_not_null())
        .one(s.db())
        .await?
        .is_some())
}

/// The *Connect automatically* form: the key alone (and, optionally, the account it must be of).
#[derive(Debug, Deserialize)]
struct AutoConnectForm {
    #[serde(default)]
    auto_secret_key: String,
    #[serde(default)]
    auto_account_id: String,
}

/// Connects the company's Stripe account from a key alone (see
/// `paygate_tenant::connection`); a refusal is shown on the form's fields.
async fn connect_automatically(
    s: MerchantSession,
    form: web::Form<AutoConnectForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let f = form.into_inner();
    let c = company_of(&s).await?;
    let input = ProfileIn {
        name: String::new(),
        mode: String::new(),
        account_id: some_text(&f.auto_account_id),
        publishable_key: String::new(),
        secret_key: f.auto_secret_key,
        webhook_secret: None,
        active: None,
        auto_configure: Some(true),
    };
    match s
        .tenants()
        .connect_profile(&s.actor(), &c, input, &s.state.stripe)
        .await
    {
        Ok(p) => Ok(redirect_with_flash(
            &format!("/app/stripe/profiles/{}", p.id),
            "stripe_settings.flash_connected",
        )),
        Err(e) => {
            let mut errors = FieldErrors::new();
            match e {
                TenantError::Invalid {
                    field,
                    code,
                    message,
                } => {
                    let field = if field == "account_id" {
                        "auto_account_id"
                    } else {
                        "auto_secret_key"
                    };
                    errors.add(s.lang, field, code, &message);
                }
                TenantError::Conflict { code, message }
                | TenantError::Upstream { code, message } => {
                    errors.add(s.lang, "auto_form", code, &message)
                }
                other => return Err(other.into()),
            }
            let mut page = settings_page(&s, default_values(), errors).await?;
            page.auto_account_id = f.auto_account_id;
            let status = if page.errors.has("auto_form") {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            render_status(status, &page)
        }
    }
}

/// *Check the connection now*: the periodic check, on demand.
async fn check_connection(
    s: MerchantSession,
    admin: web::Data<paygate_admin::AdminState>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let c = company_of(&s).await?;
    paygate_router::stripe_connection::check_company(
        &admin.tenants,
        &admin.stripe,
        &admin.writer,
        &c,
        &s.actor(),
    )
    .await
    .map_err(|e| match e {
        paygate_router::stripe_connection::CheckError::Tenant(t) => PageError::from(t),
        paygate_router::stripe_connection::CheckError::Db(d) => PageError::from(d),
    })?;
    Ok(redirect_with_flash(
        "/app/stripe#stripe-connection",
        "stripe_settings.flash_checked",
    ))
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

/// What is wrong with a pasted Stripe key of `field` (`publishable_key` or `secret_key`) for a
/// profile of `mode` (unknown when the mode itself is wrong): a `field_errors.<code>`, accurate
/// for the key's kind — `pk_foo` is "not a publishable key", not "of the other mode".
fn key_error_code(field: &str, mode: Option<Mode>, raw: &str) -> Option<&'static str> {
    let k = raw.trim();
    if k.is_empty() {
        return Some("missing_field");
    }
    if k.len() > 512 || !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Some("invalid_key_format");
    }
    let (kinds, other_kind): (&[&str], &[&str]) = if field == "publishable_key" {
        (&["pk_"], &["sk_", "rk_"])
    } else {
        (&["sk_", "rk_"], &["pk_"])
    };
    let key_mode = kinds.iter().find_map(|p| {
        let rest = k.strip_prefix(p)?;
        if rest.starts_with("test_") {
            Some(Mode::Test)
        } else if rest.starts_with("live_") {
            Some(Mode::Live)
        } else {
            None
        }
    });
    match key_mode {
        Some(m) if mode.is_some_and(|want| want != m) => Some("key_mode_mismatch"),
        Some(_) => None,
        None if other_kind.iter().any(|p| k.starts_with(p)) => {
            Some(if field == "publishable_key" {
                "publishable_is_secret"
            } else {
                "secret_is_publishable"
            })
        }
        None if field == "publishable_key" => Some("not_publishable_key"),
        None => Some("not_secret_key"),
    }
}

/// Every error of the add-profile form at once (the service stops at the first), each message
/// accurate for its field; empty when the service may be asked.
fn profile_form_errors(lang: crate::Lang, f: &NewProfileForm) -> FieldErrors {
    use paygate_tenant::validate;
    fn push(fe: &mut FieldErrors, lang: crate::Lang, e: TenantError) {
        if let TenantError::Invalid {
            field,
            code,
            message,
        } = e
        {
            fe.add(lang, field, code, &message);
        }
    }
    let mut fe = FieldErrors::new();
    if let Err(e) = validate::name("name", &f.name) {
        push(&mut fe, lang, e);
    }
    let mode = match validate::mode("mode", &f.mode) {
        Ok(m) => Some(m),
        Err(e) => {
            push(&mut fe, lang, e);
            None
        }
    };
    if !f.account_id.trim().is_empty()
        && let Err(e) = validate::account_id(&f.account_id)
    {
        push(&mut fe, lang, e);
    }
    for (field, raw) in [
        ("publishable_key", &f.publishable_key),
        ("secret_key", &f.secret_key),
    ] {
        if let Some(code) = key_error_code(field, mode, raw) {
            fe.add(lang, field, code, code);
        }
    }
    if !f.webhook_secret.trim().is_empty()
        && let Err(e) = validate::webhook_secret(&f.webhook_secret)
    {
        push(&mut fe, lang, e);
    }
    fe
}

async fn create_profile(
    s: MerchantSession,
    form: web::Form<NewProfileForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let f = form.into_inner();
    let errors = profile_form_errors(s.lang, &f);
    if !errors.is_empty() {
        let values = NewProfileValues {
            name: f.name,
            mode: f.mode,
            account_id: f.account_id,
            publishable_key: f.publishable_key,
            active: f.active.is_some(),
        };
        return settings_invalid(&s, values, errors).await;
    }
    let c = company_of(&s).await?;
    let input = ProfileIn {
        name: f.name.clone(),
        mode: f.mode.clone(),
        account_id: some_text(&f.account_id),
        publishable_key: f.publishable_key.clone(),
        secret_key: f.secret_key,
        webhook_secret: some_text(&f.webhook_secret),
        active: Some(f.active.is_some()),
        auto_configure: None,
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

/// Every error of the edit form at once (see [`profile_form_errors`]); an empty secret key
/// keeps the current one.
fn edit_form_errors(lang: crate::Lang, mode: Mode, f: &EditForm) -> FieldErrors {
    use paygate_tenant::validate;
    let mut fe = FieldErrors::new();
    let mut push = |e: TenantError| {
        if let TenantError::Invalid {
            field,
            code,
            message,
        } = e
        {
            fe.add(lang, field, code, &message);
        }
    };
    if let Err(e) = validate::name("name", &f.name) {
        push(e);
    }
    if !f.account_id.trim().is_empty()
        && let Err(e) = validate::account_id(&f.account_id)
    {
        push(e);
    }
    let keys = [
        Some(("publishable_key", &f.publishable_key)),
        (!f.secret_key.trim().is_empty()).then_some(("secret_key", &f.secret_key)),
    ];
    for (field, raw) in keys.into_iter().flatten() {
        if let Some(code) = key_error_code(field, Some(mode), raw) {
            fe.add(lang, field, code, code);
        }
    }
    fe
}

async fn update_profile(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<EditForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let profile_id = path.into_inner();
    let f = form.into_inner();
    // Every error at once, accurate per field (the service stops at the first); a profile
    // that is not the company's is left to the service's 404.
    let mode = profile_rows(&s, None)
        .await?
        .into_iter()
        .find(|p| p.id == profile_id)
        .and_then(|p| Mode::parse(&p.mode));
    if let Some(mode) = mode {
        let errors = edit_form_errors(s.lang, mode, &f);
        if !errors.is_empty() {
            let values = EditValues {
                name: f.name,
                account_id: f.account_id,
                publishable_key: f.publishable_key,
            };
            return profile_invalid(&s, &profile_id, Some(values), DEFAULT_GRACE, errors).await;
        }
    }
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
    /// The confirmation page's `yes` (asked when the previous secrets would stop at once).
    #[serde(default)]
    confirm: String,
}

/// The [`crate::oneshot`] slot of a rotation waiting for its confirmation: the profile and the
/// new secret, kept in this process's memory so that the confirmation page never carries the
/// secret.
const PENDING_ROTATION: &str = "oneshot:stripe_settings.pending_rotation";

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
    let mut webhook_secret = f.webhook_secret;
    if grace == 0 {
        let pending = s.take_once::<(String, String)>(PENDING_ROTATION);
        if !confirmed(&f.confirm) {
            // The previous secrets would stop at once, and Stripe's retries of events signed
            // with them would be refused: the confirmation page first, once the form is valid.
            return rotate_now_confirm_page(&s, &profile_id, webhook_secret).await;
        }
        if webhook_secret.trim().is_empty() {
            // Confirmed on the page: the secret entered on the form before it.
            match pending {
                Some((id, secret)) if id == profile_id => webhook_secret = secret,
                _ => {
                    let mut errors = FieldErrors::new();
                    errors.add(
                        s.lang,
                        "webhook_secret",
                        "confirmation_expired",
                        "The confirmation expired: enter the new signing secret again.",
                    );
                    return profile_invalid(&s, &profile_id, None, grace, errors).await;
                }
            }
        }
    }
    let c = company_of(&s).await?;
    let input = SigningSecretIn {
        webhook_secret,
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

/// The confirmation page of a rotation that ends the previous secrets of `profile_id` at once
/// (the company's profile, else 404), or the form again with its errors if `webhook_secret` is
/// not a signing secret. The secret waits in this session's [`PENDING_ROTATION`] slot, not in
/// the page.
async fn rotate_now_confirm_page(
    s: &MerchantSession,
    profile_id: &str,
    webhook_secret: String,
) -> Result<HttpResponse, PageError> {
    let p = profile_rows(s, None)
        .await?
        .into_iter()
        .find(|p| p.id == profile_id)
        .ok_or(PageError::NotFound)?;
    let secret = match paygate_tenant::validate::webhook_secret(&webhook_secret) {
        Ok(secret) => secret,
        Err(e) => {
            let errors = FieldErrors::from_tenant(s.lang, e)?;
            return profile_invalid(s, profile_id, None, 0, errors).await;
        }
    };
    s.put_once(PENDING_ROTATION, &(p.id.clone(), secret));
    profile_confirm_page(
        s,
        &p,
        ConfirmKeys {
            title: "stripe_settings.rotate_now_title",
            warning: "stripe_settings.rotate_now_confirm",
            hint: "stripe_settings.rotate_now_hint",
            submit: "stripe_settings.rotate_now",
        },
        "signing-secrets",
        vec![("grace_period_secs".to_owned(), "0".to_owned())],
    )
}

/// The catalogue keys of a profile's confirmation page; `warning` is formatted with the
/// profile's name, its account and its mode.
struct ConfirmKeys {
    title: &'static str,
    warning: &'static str,
    hint: &'static str,
    submit: &'static str,
}

/// The confirmation page of an action on profile `p`: the form posts `hidden` and `confirm=yes`
/// to `/app/stripe/profiles/{id}/{verb}`.
fn profile_confirm_page(
    s: &MerchantSession,
    p: &ProfileRow,
    keys: ConfirmKeys,
    verb: &str,
    hidden: Vec<(String, String)>,
) -> Result<HttpResponse, PageError> {
    render(&ConfirmTemplate {
        ctx: s.page(keys.title),
        warning: s.lang.format(
            keys.warning,
            &[
                p.name.as_str(),
                p.account_id.as_deref().unwrap_or("—"),
                s.lang.t(p.mode_key),
            ],
        ),
        details: vec![s.lang.t(keys.hint).to_owned()],
        action: format!("/app/stripe/profiles/{}/{verb}", p.id),
        hidden,
        submit: s.lang.t(keys.submit).to_owned(),
        cancel_href: format!("/app/stripe/profiles/{}", p.id),
        error: None,
    })
}

/// The confirmation form (`confirm=yes`).
#[derive(Debug, Default, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

async fn remove_profile(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let profile_id = path.into_inner();
    if !confirmed(&form.confirm) {
        // One click never removes a profile: the page naming it and its account first.
        let p = profile_rows(&s, None)
            .await?
            .into_iter()
            .find(|p| p.id == profile_id)
            .ok_or(PageError::NotFound)?;
        let keys = ConfirmKeys {
            title: "stripe_settings.remove_title",
            warning: "stripe_settings.remove_confirm",
            hint: "stripe_settings.remove_hint",
            submit: "stripe_settings.remove",
        };
        return profile_confirm_page(&s, &p, keys, "remove", Vec::new());
    }
    let c = company_of(&s).await?;
    match s
        .tenants()
        .disconnect_profile(&s.actor(), &c, &profile_id, &s.state.stripe)
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
