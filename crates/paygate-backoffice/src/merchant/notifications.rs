//! `/app/notifications`: where Paygate tells the company's own systems what happened (issue 5).
//! The endpoints (URL, event types, enabled, masked secret, and a plain warning when Paygate
//! disabled one because every delivery failed for too long), the recent messages with the state
//! of each delivery, and the shopper e-mail settings.
//!
//! Everything goes through [`paygate_notify::NotifyService`], scoped by the session's company
//! (another company's endpoint or message is "not found"); changes are written to the audit log
//! like the admin API's. An endpoint's secret is shown in full only on the page that answers its
//! creation or rotation.
//!
//! The messages are data of one mode ([`super::mode`]): the page lists those of its mode
//! (`?mode=test|live`, the company's environment by default), and *Replay* of one message finds
//! it only in the mode of the form's hidden `mode` field. Every form carries that field and its
//! redirect comes back to the page in the same mode — but the endpoint's *Send test message*,
//! whose `ping` is test data, comes back in test mode, where its message is listed.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /app/notifications` | endpoints, messages, settings |
//! | `POST /app/notifications` | add an endpoint (`url`, `description`, `event_types` repeated) |
//! | `POST /app/notifications/{id}/enable`, `…/disable` | the switch (disable: after the confirmation, `confirm=yes`) |
//! | `POST /app/notifications/{id}/rotate` | a new secret (`grace_secs`; `0` only with `confirm=yes`) |
//! | `POST /app/notifications/{id}/test` | queue a `ping` message |
//! | `POST /app/notifications/{id}/replay-failed` | send again its failed messages (`since_hours`, `confirm=yes`) |
//! | `POST /app/notifications/{id}/delete` | remove it |
//! | `POST /app/notifications/messages/{message_id}/replay` | send one message again (after the confirmation, `confirm=yes`) |
//! | `POST /app/notifications/settings` | shopper e-mails on/off, sender name |

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use paygate_notify::failure::FailureKind;
use paygate_notify::outbox::MESSAGE_TYPES;
use paygate_notify::service::{EndpointIn, EndpointOut, EndpointPatch, MessageOut, SettingsIo};
use paygate_web::ApiError;

use paygate_db::Mode;

use crate::MerchantSession;
use crate::i18n::Lang;
use crate::merchant::mode::{ModeParam, View};
use crate::merchant::stripe_settings::GRACE_PERIODS;
use crate::page::{
    ConfirmTemplate, FieldErrors, Page, PageError, confirmed, mode_href, redirect,
    redirect_with_flash, render, render_status,
};

/// Registers `/app/notifications…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/notifications", web::get().to(list))
        .route("/notifications", web::post().to(create))
        .route("/notifications/settings", web::post().to(save_settings))
        .route(
            "/notifications/messages/{message_id}/replay",
            web::post().to(replay_message),
        )
        .route(
            "/notifications/{endpoint_id}/enable",
            web::post().to(enable),
        )
        .route(
            "/notifications/{endpoint_id}/disable",
            web::post().to(disable),
        )
        .route(
            "/notifications/{endpoint_id}/rotate",
            web::post().to(rotate),
        )
        .route("/notifications/{endpoint_id}/test", web::post().to(test))
        .route(
            "/notifications/{endpoint_id}/replay-failed",
            web::post().to(replay_failed),
        )
        .route(
            "/notifications/{endpoint_id}/delete",
            web::get().to(confirm_delete),
        )
        .route(
            "/notifications/{endpoint_id}/delete",
            web::post().to(delete),
        );
}

/// Messages the page lists.
const RECENT_MESSAGES: u64 = 25;

/// How far back "replay failed messages" reaches, in hours.
pub const REPLAY_WINDOWS: &[(i64, &str)] = &[
    (24, "notifications.since_24h"),
    (72, "notifications.since_3d"),
    (168, "notifications.since_7d"),
];

/// Epoch milliseconds of an RFC 3339 time as the service gives them.
fn ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// An endpoint as listed (its secret masked).
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Paygate disabled it (deliveries failing for too long).
    pub disabled_by_paygate: bool,
    pub failing_since: Option<i64>,
    pub secret: String,
    pub created_at: Option<i64>,
}

impl From<EndpointOut> for EndpointRow {
    fn from(e: EndpointOut) -> Self {
        Self {
            disabled_by_paygate: !e.enabled && e.disabled_reason.is_some(),
            failing_since: e.failing_since.as_deref().and_then(ms),
            created_at: ms(&e.created_at),
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            enabled: e.enabled,
            secret: e.secret,
        }
    }
}

/// One delivery of a message, as listed.
pub struct DeliveryRow {
    /// The endpoint's URL, or the shopper's masked address for an e-mail.
    pub to: String,
    pub email: bool,
    pub status: String,
    pub status_key: &'static str,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    /// The technical text of the last failure (behind a disclosure on the page).
    pub last_error: Option<String>,
    /// The last failure in plain words, in the page's language.
    pub last_error_words: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
}

/// A message as listed.
pub struct MessageRow {
    pub id: String,
    pub event_type: String,
    /// Caused by the Connect page's *Send test event* (`"test_event": true`).
    pub test_event: bool,
    pub created_at: Option<i64>,
    pub deliveries: Vec<DeliveryRow>,
}

/// Catalogue key of a delivery state.
pub fn delivery_status_key(status: &str) -> &'static str {
    match status {
        "succeeded" => "notifications.status_succeeded",
        "failed" => "notifications.status_failed",
        _ => "notifications.status_pending",
    }
}

/// A recorded delivery failure in plain words of `lang` (the technical text stays English).
pub fn failure_words(lang: Lang, error: &str, status_code: Option<i32>) -> String {
    let kind = FailureKind::of(error, status_code);
    let key = format!("delivery_failure.{}", kind.name());
    match kind {
        FailureKind::HttpStatus(code) => lang.format(&key, &[&code.to_string()]),
        _ => lang.t(&key).to_owned(),
    }
}

fn message_row(m: MessageOut, urls: &HashMap<String, String>, lang: Lang) -> MessageRow {
    MessageRow {
        test_event: m.payload["test_event"].as_bool().unwrap_or(false),
        created_at: ms(&m.created_at),
        deliveries: m
            .deliveries
            .into_iter()
            .map(|d| DeliveryRow {
                email: d.channel == "email",
                to: match (&d.endpoint_id, &d.recipient) {
                    (Some(id), _) => urls
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| lang.t("notifications.endpoint_deleted").to_owned()),
                    (None, Some(r)) => r.clone(),
                    (None, None) => "—".into(),
                },
                status_key: delivery_status_key(&d.status),
                status: d.status,
                attempts: d.attempts,
                last_status_code: d.last_status_code,
                last_error_words: d
                    .last_error
                    .as_deref()
                    .map(|e| failure_words(lang, e, d.last_status_code)),
                last_error: d.last_error,
                next_attempt_at: d.next_attempt_at.as_deref().and_then(ms),
                delivered_at: d.delivered_at.as_deref().and_then(ms),
            })
            .collect(),
        id: m.id,
        event_type: m.event_type,
    }
}

/// What the add form had.
#[derive(Debug, Default)]
struct AddValues {
    url: String,
    description: String,
    event_types: Vec<String>,
}

/// A secret to show once: (endpoint URL, secret), kept in [`crate::oneshot`] by the POST that
/// made it and shown by the GET after its redirect (a reload makes no second endpoint or secret).
type ShownSecret = (String, String);

/// The [`crate::oneshot`] slot of an endpoint just added.
const CREATED: &str = "oneshot:notifications.created";
/// The [`crate::oneshot`] slot of a secret just rotated.
const ROTATED: &str = "oneshot:notifications.rotated";

#[derive(Template)]
#[template(path = "backoffice/app/notifications.html")]
struct NotificationsTemplate {
    ctx: Page,
    is_admin: bool,
    endpoints: Vec<EndpointRow>,
    messages: Vec<MessageRow>,
    disabled_count: usize,
    types: &'static [&'static str],
    grace_periods: &'static [(u64, &'static str)],
    replay_windows: &'static [(i64, &'static str)],
    form: AddValues,
    shopper_emails: bool,
    sender_name: String,
    errors: FieldErrors,
    created: Option<ShownSecret>,
    rotated: Option<ShownSecret>,
}

async fn page(
    s: &MerchantSession,
    v: &View,
    form: AddValues,
    errors: FieldErrors,
    created: Option<ShownSecret>,
    rotated: Option<ShownSecret>,
    settings_typed: Option<SettingsIo>,
) -> Result<NotificationsTemplate, PageError> {
    let notify = &s.state.notify;
    let endpoints: Vec<EndpointRow> = notify
        .list(s.company_pk)
        .await
        .map_err(api_error)?
        .into_iter()
        .map(EndpointRow::from)
        .collect();
    let urls: HashMap<String, String> = endpoints
        .iter()
        .map(|e| (e.id.clone(), e.url.clone()))
        .collect();
    let messages = notify
        .messages(v.scope, None, RECENT_MESSAGES, None)
        .await
        .map_err(api_error)?
        .data
        .into_iter()
        .map(|m| message_row(m, &urls, s.lang))
        .collect();
    let settings = match settings_typed {
        Some(t) => t,
        None => notify.settings(s.company_pk).await.map_err(api_error)?,
    };
    Ok(NotificationsTemplate {
        ctx: v.page(s, "notifications.title", "/app/notifications"),
        is_admin: s.is_admin(),
        disabled_count: endpoints.iter().filter(|e| e.disabled_by_paygate).count(),
        endpoints,
        messages,
        types: MESSAGE_TYPES,
        grace_periods: GRACE_PERIODS,
        replay_windows: REPLAY_WINDOWS,
        form,
        shopper_emails: settings.shopper_emails,
        sender_name: settings.sender_name.unwrap_or_default(),
        errors,
        created,
        rotated,
    })
}

/// A 404 of the service is this page's 404; anything else that is not about a field is a 500.
fn api_error(e: ApiError) -> PageError {
    if e.status() == StatusCode::NOT_FOUND {
        PageError::NotFound
    } else {
        PageError::internal(e)
    }
}

/// The field message of a validation error (in the page's language), or the error for `?`.
fn field_errors(s: &MerchantSession, e: ApiError) -> Result<FieldErrors, PageError> {
    let lang = s.lang;
    if e.status() != StatusCode::UNPROCESSABLE_ENTITY {
        return Err(api_error(e));
    }
    if e.code() == "too_many_endpoints" {
        let max = s.state.notify.limits().max_endpoints.to_string();
        let mut fe = FieldErrors::new();
        fe.add_text(
            "url",
            lang.format("notifications.too_many_endpoints", &[&max]),
        );
        return Ok(fe);
    }
    let Some(field) = e.field().map(str::to_owned) else {
        return Err(api_error(e));
    };
    let key = match field.as_str() {
        "url" if e.code() == "host_unresolvable" => "notifications.url_unresolvable",
        "url" if e.code() == "private_address" => "notifications.url_private",
        "url" => "notifications.url_invalid",
        "event_types" => "notifications.types_invalid",
        "description" => "notifications.description_invalid",
        "sender_name" => "notifications.sender_name_invalid",
        "shopper_emails" => "notifications.shopper_emails_unavailable",
        _ => "notifications.invalid",
    };
    let mut fe = FieldErrors::new();
    fe.add_text(&field, lang.t(key).to_owned());
    Ok(fe)
}

async fn list(s: MerchantSession, mode: web::Query<ModeParam>) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let created = s.take_once::<ShownSecret>(CREATED);
    let rotated = s.take_once::<ShownSecret>(ROTATED);
    render(
        &page(
            &s,
            &v,
            AddValues::default(),
            FieldErrors::new(),
            created,
            rotated,
            None,
        )
        .await?,
    )
}

async fn audit(
    s: &MerchantSession,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), PageError> {
    paygate_tenant::audit::record(
        s.db(),
        &s.actor(),
        Some(s.company_pk),
        action,
        target,
        detail,
    )
    .await?;
    Ok(())
}

/// The fields of a form whose keys may repeat (`event_types`), in order.
fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    serde_urlencoded::from_bytes(body).map_err(PageError::internal)
}

async fn create(s: MerchantSession, body: web::Bytes) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let mut form = AddValues::default();
    let mut mode = ModeParam::default();
    for (k, v) in form_pairs(&body)? {
        match k.as_str() {
            "url" => form.url = v,
            "description" => form.description = v,
            "event_types" => form.event_types.push(v),
            "mode" => mode.mode = v,
            _ => {}
        }
    }
    let v = View::of(&s, &mode).await?;
    let input = EndpointIn {
        url: form.url.clone(),
        description: Some(form.description.trim().to_owned()).filter(|d| !d.is_empty()),
        event_types: Some(form.event_types.clone()),
        enabled: Some(true),
    };
    match s.state.notify.create(s.company_pk, input).await {
        Ok(out) => {
            audit(
                &s,
                "notification_endpoint.created",
                &out.id,
                serde_json::json!({"url": out.url, "event_types": out.event_types}),
            )
            .await?;
            // Shown once by the GET after the redirect: a reload adds no second endpoint.
            s.put_once(CREATED, &(out.url, out.secret));
            Ok(redirect(&format!(
                "{}#new-secret",
                v.href("/app/notifications")
            )))
        }
        Err(e) => {
            let errors = field_errors(&s, e)?;
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(&s, &v, form, errors, None, None, None).await?,
            )
        }
    }
}

async fn switch(
    s: MerchantSession,
    mode: ModeParam,
    endpoint_id: String,
    enabled: bool,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(&s, &mode).await?;
    let patch = EndpointPatch {
        enabled: Some(enabled),
        ..EndpointPatch::default()
    };
    s.state
        .notify
        .update(s.company_pk, &endpoint_id, patch)
        .await
        .map_err(api_error)?;
    audit(
        &s,
        "notification_endpoint.updated",
        &endpoint_id,
        serde_json::json!({"fields": ["enabled"], "enabled": enabled}),
    )
    .await?;
    Ok(redirect_with_flash(
        &v.href("/app/notifications"),
        if enabled {
            "notifications.flash_enabled"
        } else {
            "notifications.flash_disabled"
        },
    ))
}

async fn enable(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Form<ModeParam>,
) -> Result<HttpResponse, PageError> {
    switch(s, mode.into_inner(), path.into_inner(), true).await
}

/// A form of the page's mode and the confirmation page's `confirm=yes`.
#[derive(Debug, Default, Deserialize)]
struct ConfirmModeForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    confirm: String,
}

/// The confirmation page of an action on endpoint `endpoint_id` (the company's, else 404):
/// `warning` is formatted with the endpoint's URL first, then `args`.
#[expect(clippy::too_many_arguments, reason = "one page, its few parts")]
async fn endpoint_confirm_page(
    s: &MerchantSession,
    v: &View,
    endpoint_id: &str,
    title: &str,
    warning: &str,
    args: &[&str],
    action: &str,
    hidden: Vec<(String, String)>,
    submit: &str,
) -> Result<HttpResponse, PageError> {
    let e = s
        .state
        .notify
        .get(s.company_pk, endpoint_id)
        .await
        .map_err(api_error)?;
    let mut all = vec![e.url.as_str()];
    all.extend_from_slice(args);
    let mut fields = vec![("mode".to_owned(), v.mode().as_str().to_owned())];
    fields.extend(hidden);
    render(&ConfirmTemplate {
        ctx: v.page(s, title, "/app/notifications"),
        warning: s.lang.format(warning, &all),
        details: Vec::new(),
        action: format!("/app/notifications/{}/{action}", e.id),
        hidden: fields,
        submit: s.lang.t(submit).to_owned(),
        cancel_href: v.href("/app/notifications"),
        error: None,
    })
}

async fn disable(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<ConfirmModeForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !confirmed(&form.confirm) {
        // One click never disables: the confirmation page first.
        s.require_admin()?;
        let v = View::of(&s, &ModeParam { mode: form.mode }).await?;
        return endpoint_confirm_page(
            &s,
            &v,
            &path,
            "notifications.disable_title",
            "notifications.disable_warning",
            &[],
            "disable",
            Vec::new(),
            "notifications.disable",
        )
        .await;
    }
    switch(s, ModeParam { mode: form.mode }, path.into_inner(), false).await
}

/// The rotation form.
#[derive(Debug, Deserialize)]
struct RotateForm {
    #[serde(default)]
    grace_secs: String,
    /// The page's mode.
    #[serde(default)]
    mode: String,
    /// The confirmation page's `yes` (asked when the old secret would stop at once).
    #[serde(default)]
    confirm: String,
}

async fn rotate(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(
        &s,
        &ModeParam {
            mode: form.mode.clone(),
        },
    )
    .await?;
    let endpoint_id = path.into_inner();
    let grace = match form.grace_secs.trim() {
        "" => 86_400,
        g => g.parse::<u64>().unwrap_or(u64::MAX),
    };
    if grace > 7 * 86_400 {
        let mut errors = FieldErrors::new();
        errors.add(
            s.lang,
            "form",
            "invalid_grace_period",
            "Choose how long the previous secret stays valid.",
        );
        // Only an own endpoint gets the page with the message.
        s.state
            .notify
            .get(s.company_pk, &endpoint_id)
            .await
            .map_err(api_error)?;
        return render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&s, &v, AddValues::default(), errors, None, None, None).await?,
        );
    }
    if grace == 0 && !confirmed(&form.confirm) {
        // The old secret would stop at once: the confirmation page first.
        return endpoint_confirm_page(
            &s,
            &v,
            &endpoint_id,
            "notifications.rotate_now_title",
            "notifications.rotate_now_warning",
            &[],
            "rotate",
            vec![("grace_secs".to_owned(), "0".to_owned())],
            "notifications.rotate",
        )
        .await;
    }
    let out = s
        .state
        .notify
        .rotate(s.company_pk, &endpoint_id, Duration::from_secs(grace))
        .await
        .map_err(api_error)?;
    audit(
        &s,
        "notification_endpoint.secret_rotated",
        &endpoint_id,
        serde_json::json!({"grace_secs": grace}),
    )
    .await?;
    // Shown once by the GET after the redirect: a reload rotates nothing again.
    s.put_once(ROTATED, &(out.url, out.secret));
    Ok(redirect(&format!(
        "{}#new-secret",
        v.href("/app/notifications")
    )))
}

async fn test(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Form<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    mode.parse()?;
    let flash = match s.state.notify.send_test(s.company_pk, &path).await {
        Ok(_) => "notifications.flash_test_queued",
        Err(e) if e.status() == StatusCode::TOO_MANY_REQUESTS => "notifications.flash_test_limited",
        Err(e) => return Err(api_error(e)),
    };
    // The `ping` is a test-mode message: back to the test-mode list, where it shows.
    Ok(redirect_with_flash(
        &mode_href("/app/notifications", Mode::Test),
        flash,
    ))
}

/// The replay-failed form.
#[derive(Debug, Deserialize)]
struct ReplayFailedForm {
    #[serde(default)]
    since_hours: String,
    /// The page's mode.
    #[serde(default)]
    mode: String,
    /// The confirmation page's `yes`.
    #[serde(default)]
    confirm: String,
}

async fn replay_failed(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<ReplayFailedForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(
        &s,
        &ModeParam {
            mode: form.mode.clone(),
        },
    )
    .await?;
    let hours = form
        .since_hours
        .trim()
        .parse::<i64>()
        .unwrap_or(24)
        .clamp(1, 24 * 30);
    if !confirmed(&form.confirm) {
        // Sending many messages again is one decision: the confirmation page first.
        let hours_text = hours.to_string();
        return endpoint_confirm_page(
            &s,
            &v,
            &path,
            "notifications.replay_title",
            "notifications.replay_warning",
            &[hours_text.as_str()],
            "replay-failed",
            vec![("since_hours".to_owned(), hours_text.clone())],
            "notifications.replay_failed",
        )
        .await;
    }
    let since = paygate_db::now_ms() - hours * 3_600_000;
    let n = s
        .state
        .notify
        .replay_failed(s.company_pk, &path, since)
        .await
        .map_err(api_error)?;
    audit(
        &s,
        "notification_endpoint.replayed",
        &path,
        serde_json::json!({"since_hours": hours, "messages": n}),
    )
    .await?;
    Ok(redirect_with_flash(
        &v.href("/app/notifications"),
        if n == 0 {
            "notifications.flash_nothing_to_replay"
        } else {
            "notifications.flash_replayed"
        },
    ))
}

async fn replay_message(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<ConfirmModeForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let form = form.into_inner();
    // The message of the session's company in the form's mode: another company's message, or
    // one of the other mode, is not found.
    let v = View::of(&s, &ModeParam { mode: form.mode }).await?;
    if !confirmed(&form.confirm) {
        // The merchant's systems receive the message once more (a payment they may act on
        // again): the confirmation page first, naming the message.
        let m = s
            .state
            .notify
            .message(v.scope, &path)
            .await
            .map_err(api_error)?;
        return render(&ConfirmTemplate {
            ctx: v.page(&s, "notifications.replay_one_title", "/app/notifications"),
            warning: s.lang.format(
                "notifications.replay_one_warning",
                &[m.event_type.as_str(), m.id.as_str()],
            ),
            details: vec![s.lang.t("notifications.replay_one_hint").to_owned()],
            action: format!("/app/notifications/messages/{}/replay", m.id),
            hidden: vec![("mode".to_owned(), v.mode().as_str().to_owned())],
            submit: s.lang.t("notifications.replay").to_owned(),
            cancel_href: v.href("/app/notifications"),
            error: None,
        });
    }
    s.state
        .notify
        .replay_message(v.scope, &path)
        .await
        .map_err(api_error)?;
    audit(
        &s,
        "notification_message.replayed",
        &path,
        serde_json::json!({}),
    )
    .await?;
    Ok(redirect_with_flash(
        &v.href("/app/notifications"),
        "notifications.flash_replayed",
    ))
}

/// The delete form: the page's mode, and the confirmation page's `confirm=yes`.
#[derive(Debug, Default, Deserialize)]
struct DeleteForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    confirm: String,
}

/// The confirmation page of deleting endpoint `endpoint_id` (the company's, else 404).
async fn delete_confirm_page(
    s: &MerchantSession,
    v: &View,
    endpoint_id: &str,
) -> Result<HttpResponse, PageError> {
    let e = s
        .state
        .notify
        .get(s.company_pk, endpoint_id)
        .await
        .map_err(api_error)?;
    render(&ConfirmTemplate {
        ctx: v.page(s, "notifications.delete_title", "/app/notifications"),
        warning: s
            .lang
            .format("notifications.delete_warning", &[e.url.as_str()]),
        details: Vec::new(),
        action: format!("/app/notifications/{}/delete", e.id),
        hidden: vec![("mode".to_owned(), v.mode().as_str().to_owned())],
        submit: s.lang.t("notifications.delete").to_owned(),
        cancel_href: v.href("/app/notifications"),
        error: None,
    })
}

async fn confirm_delete(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(&s, &mode).await?;
    delete_confirm_page(&s, &v, &path).await
}

async fn delete(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let form = form.into_inner();
    let v = View::of(&s, &ModeParam { mode: form.mode }).await?;
    if !confirmed(&form.confirm) {
        // One click never deletes: the confirmation page first.
        return delete_confirm_page(&s, &v, &path).await;
    }
    s.state
        .notify
        .delete(s.company_pk, &path)
        .await
        .map_err(api_error)?;
    audit(
        &s,
        "notification_endpoint.deleted",
        &path,
        serde_json::json!({}),
    )
    .await?;
    Ok(redirect_with_flash(
        &v.href("/app/notifications"),
        "notifications.flash_deleted",
    ))
}

/// The shopper e-mail settings form.
#[derive(Debug, Deserialize)]
struct SettingsForm {
    /// A checkbox: present when ticked.
    #[serde(default)]
    shopper_emails: Option<String>,
    #[serde(default)]
    sender_name: String,
    /// The page's mode.
    #[serde(default)]
    mode: String,
}

async fn save_settings(
    s: MerchantSession,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let f = form.into_inner();
    let v = View::of(
        &s,
        &ModeParam {
            mode: f.mode.clone(),
        },
    )
    .await?;
    let input = SettingsIo {
        shopper_emails: f.shopper_emails.is_some(),
        sender_name: Some(f.sender_name.clone()),
    };
    match s.state.notify.save_settings(s.company_pk, input).await {
        Ok(saved) => {
            audit(
                &s,
                "notification_settings.updated",
                &s.company_id,
                serde_json::json!({"shopper_emails": saved.shopper_emails}),
            )
            .await?;
            Ok(redirect_with_flash(
                &v.href("/app/notifications"),
                "notifications.flash_settings_saved",
            ))
        }
        Err(e) => {
            let errors = field_errors(&s, e)?;
            let typed = SettingsIo {
                shopper_emails: f.shopper_emails.is_some(),
                sender_name: Some(f.sender_name),
            };
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(
                    &s,
                    &v,
                    AddValues::default(),
                    errors,
                    None,
                    None,
                    Some(typed),
                )
                .await?,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of failure has words in every language, and the technical text is not them.
    #[test]
    fn delivery_failures_are_told_in_words() {
        for kind in [
            FailureKind::Timeout,
            FailureKind::ConnectionRefused,
            FailureKind::Dns,
            FailureKind::Tls,
            FailureKind::PrivateAddress,
            FailureKind::Connect,
            FailureKind::HttpStatus(500),
            FailureKind::Email,
            FailureKind::Other,
        ] {
            for lang in Lang::ALL {
                let key = format!("delivery_failure.{}", kind.name());
                assert!(lang.has(&key), "{lang}: {key}");
            }
        }
        let chain = "could not connect: error sending request for url (https://x.invalid/): \
                     client error (Connect): dns error: failed to lookup address information";
        assert_eq!(
            failure_words(Lang::En, chain, None),
            "The host name could not be resolved."
        );
        assert_eq!(
            failure_words(Lang::De, "the endpoint answered 503", Some(503)),
            "Ihr System hat mit dem HTTP-Status 503 geantwortet."
        );
        assert_eq!(
            failure_words(Lang::It, "timed out", None),
            "Il tuo sistema non ha risposto in tempo."
        );
    }
}
