//! Notification endpoints, messages, replays and shopper e-mail settings, for operators
//! (`/admin/v1/companies/{company_id}/…`) and for merchants with an API key (`/api/v1/…`).
//! One set of handlers serves both: `Requester` resolves the company from the operator's path or
//! from the merchant's key, so a merchant can only ever name its own company; messages are read
//! in one mode (a key's own; for operators `?mode=`, the company's environment by default).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::Deserialize;

use paygate_db::entities::company;
use paygate_db::{Mode, Scope as DataScope};
use paygate_notify::service::{
    EndpointIn, EndpointOut, EndpointPatch, MessageOut, MessagePage, SettingsIo,
};
use paygate_web::ApiError;

use crate::error_body::ErrorBody;
use crate::merchant::MerchantPrincipal;
use crate::{AdminState, List, ModeQuery, OperatorPrincipal};

/// The company a request is about, and who is asking (for the audit log).
#[derive(Debug)]
pub struct Requester {
    pub company: company::Model,
    pub actor: String,
    /// The merchant key's scope (`None` for operators, who may read either mode).
    pub key_scope: Option<DataScope>,
}

impl Requester {
    /// The company in the mode `asked` (operators; the company's environment by default), or in
    /// the key's own mode (merchants: naming the other one is 403).
    pub fn data_scope(&self, asked: Option<Mode>) -> Result<DataScope, ApiError> {
        match self.key_scope {
            None => Ok(self.company.scope(asked)),
            Some(key) => crate::merchant::key_scope(key, asked),
        }
    }
}

impl FromRequest for Requester {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let operator = req.path().starts_with("/admin/");
        let company_id = req.match_info().get("company_id").map(str::to_owned);
        let state = req.app_data::<web::Data<AdminState>>().cloned();
        if operator {
            let op = OperatorPrincipal::from_request(req, payload);
            Box::pin(async move {
                let op = op.await?;
                let state = state
                    .ok_or_else(|| ApiError::internal(std::io::Error::other("state missing")))?;
                let company = state
                    .tenants
                    .company(company_id.as_deref().unwrap_or_default())
                    .await?;
                Ok(Requester {
                    company,
                    actor: op.actor(),
                    key_scope: None,
                })
            })
        } else {
            let m = MerchantPrincipal::from_request(req, payload);
            Box::pin(async move {
                let m = m.await?;
                Ok(Requester {
                    key_scope: Some(m.scope),
                    company: m.company,
                    actor: "merchant_api".into(),
                })
            })
        }
    }
}

fn param(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_owned()
}

async fn audit(
    state: &AdminState,
    scope: &Requester,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    paygate_tenant::audit::record(
        &state.db,
        &scope.actor,
        Some(scope.company.id),
        action,
        target,
        detail,
    )
    .await?;
    Ok(())
}

/// Answer to `POST …/test`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TestMessageOut {
    /// The `ping` message sent (`msg_…`).
    pub message_id: String,
}

/// Answer to the replays.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReplayedOut {
    /// How many deliveries are due again.
    pub replayed: u64,
}

// The operators' routes are documented here; the merchant ones (`/api/v1/notification-…`, the
// same handlers, listed in `crate::routes`) are derived from them in `crate::openapi`.

/// Creates a notification endpoint; its `whsec_` secret is shown in full only in this answer.
///
/// A company has at most `PAYGATE_NOTIFY_MAX_ENDPOINTS_PER_COMPANY` endpoints (default 10).
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/notification-endpoints",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company")),
    request_body = EndpointIn,
    responses(
        (status = 201, description = "The endpoint, secret in full", body = EndpointOut),
        (status = 422, description = "A field is invalid (`invalid_parameter`), or the company has as many endpoints as allowed (`too_many_endpoints`)", body = ErrorBody)
    ),
)]
pub(crate) async fn create(
    state: web::Data<AdminState>,
    scope: Requester,
    body: web::Json<EndpointIn>,
) -> Result<HttpResponse, ApiError> {
    let out = state
        .notify
        .create(scope.company.id, body.into_inner())
        .await?;
    audit(
        &state,
        &scope,
        "notification_endpoint.created",
        &out.id,
        serde_json::json!({"url": out.url, "event_types": out.event_types}),
    )
    .await?;
    Ok(HttpResponse::Created().json(out))
}

/// The notification endpoints (secrets masked).
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/notification-endpoints",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company")),
    responses(
        (status = 200, description = "Every endpoint", body = List<EndpointOut>),
    ),
)]
pub(crate) async fn list(
    state: web::Data<AdminState>,
    scope: Requester,
) -> Result<HttpResponse, ApiError> {
    let data = state.notify.list(scope.company.id).await?;
    Ok(HttpResponse::Ok().json(List { data }))
}

/// A notification endpoint (secret masked).
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company"), ("endpoint_id" = String, Path, description = "The endpoint (`ne_…`)")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointOut),
        (status = 404, description = "No such endpoint (`notification_endpoint_not_found`)", body = ErrorBody)
    ),
)]
pub(crate) async fn get(
    state: web::Data<AdminState>,
    scope: Requester,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let out = state
        .notify
        .get(scope.company.id, &param(&req, "endpoint_id"))
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Changes a notification endpoint.
///
/// Enabling it again clears what Paygate noted when it disabled it.
#[utoipa::path(
    patch,
    path = "/admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company"), ("endpoint_id" = String, Path, description = "The endpoint (`ne_…`)")),
    request_body = EndpointPatch,
    responses(
        (status = 200, description = "The endpoint", body = EndpointOut),
        (status = 404, description = "No such endpoint (`notification_endpoint_not_found`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`invalid_parameter`)", body = ErrorBody)
    ),
)]
pub(crate) async fn update(
    state: web::Data<AdminState>,
    scope: Requester,
    req: HttpRequest,
    body: web::Json<EndpointPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = param(&req, "endpoint_id");
    let p = body.into_inner();
    let fields: Vec<&str> = [
        p.url.as_ref().map(|_| "url"),
        p.description.as_ref().map(|_| "description"),
        p.event_types.as_ref().map(|_| "event_types"),
        p.enabled.as_ref().map(|_| "enabled"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let out = state.notify.update(scope.company.id, &id, p).await?;
    audit(
        &state,
        &scope,
        "notification_endpoint.updated",
        &id,
        serde_json::json!({"fields": fields}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Deletes a notification endpoint.
#[utoipa::path(
    delete,
    path = "/admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company"), ("endpoint_id" = String, Path, description = "The endpoint (`ne_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint (`notification_endpoint_not_found`)", body = ErrorBody)
    ),
)]
pub(crate) async fn delete(
    state: web::Data<AdminState>,
    scope: Requester,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = param(&req, "endpoint_id");
    state.notify.delete(scope.company.id, &id).await?;
    audit(
        &state,
        &scope,
        "notification_endpoint.deleted",
        &id,
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST …/rotate-secret`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// How long the old secret keeps signing, seconds (default one day, at most seven).
    #[serde(default)]
    pub grace_secs: Option<u64>,
}

/// A new signing secret (shown once); the old one keeps signing for `grace_secs` (default 86400).
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}/rotate-secret",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company"), ("endpoint_id" = String, Path, description = "The endpoint (`ne_…`)")),
    request_body = Option<RotateIn>,
    responses(
        (status = 200, description = "The endpoint, new secret in full", body = EndpointOut),
        (status = 404, description = "No such endpoint (`notification_endpoint_not_found`)", body = ErrorBody),
        (status = 422, description = "`grace_secs` is over seven days (`invalid_parameter`)", body = ErrorBody)
    ),
)]
pub(crate) async fn rotate(
    state: web::Data<AdminState>,
    scope: Requester,
    req: HttpRequest,
    body: Option<web::Json<RotateIn>>,
) -> Result<HttpResponse, ApiError> {
    let id = param(&req, "endpoint_id");
    let grace = body.and_then(|b| b.grace_secs).unwrap_or(86_400);
    if grace > 7 * 86_400 {
        return Err(ApiError::unprocessable(
            "invalid_parameter",
            "grace_secs: at most 604800 (seven days)",
        )
        .with_field("grace_secs"));
    }
    let out = state
        .notify
        .rotate(scope.company.id, &id, Duration::from_secs(grace))
        .await?;
    audit(
        &state,
        &scope,
        "notification_endpoint.secret_rotated",
        &id,
        serde_json::json!({"grace_secs": grace}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Sends a `ping` message to the endpoint.
///
/// A company sends at most `PAYGATE_NOTIFY_TEST_PINGS_PER_HOUR` of them in any hour (default 30).
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}/test",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company"), ("endpoint_id" = String, Path, description = "The endpoint (`ne_…`)")),
    responses(
        (status = 202, description = "The message is on its way", body = TestMessageOut),
        (status = 404, description = "No such endpoint (`notification_endpoint_not_found`)", body = ErrorBody),
        (status = 429, description = "The company has sent as many test messages as allowed this hour (`too_many_test_pings`); the message says when the next one can go", body = ErrorBody)
    ),
)]
pub(crate) async fn test(
    state: web::Data<AdminState>,
    scope: Requester,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = state
        .notify
        .send_test(scope.company.id, &param(&req, "endpoint_id"))
        .await?;
    Ok(HttpResponse::Accepted().json(TestMessageOut { message_id: id }))
}

/// `POST …/replay`: every failed message of the endpoint since a time.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// RFC 3339 time or Unix seconds; default: every failed message.
    #[serde(default)]
    pub since: Option<serde_json::Value>,
}

fn since_ms(v: Option<&serde_json::Value>) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::unprocessable(
            "invalid_parameter",
            "since: an RFC 3339 time or Unix seconds",
        )
        .with_field("since")
    };
    match v {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .filter(|s| *s >= 0)
            .map(|s| s.saturating_mul(1000))
            .ok_or_else(bad),
        Some(serde_json::Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// Sends again every failed message of the endpoint created since a time.
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}/replay",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company"), ("endpoint_id" = String, Path, description = "The endpoint (`ne_…`)")),
    request_body = Option<ReplayIn>,
    responses(
        (status = 202, description = "The deliveries are due again", body = ReplayedOut),
        (status = 404, description = "No such endpoint (`notification_endpoint_not_found`)", body = ErrorBody),
        (status = 422, description = "`since` is invalid (`invalid_parameter`)", body = ErrorBody)
    ),
)]
pub(crate) async fn replay_failed(
    state: web::Data<AdminState>,
    scope: Requester,
    req: HttpRequest,
    body: Option<web::Json<ReplayIn>>,
) -> Result<HttpResponse, ApiError> {
    let since = since_ms(body.as_ref().and_then(|b| b.since.as_ref()))?;
    let n = state
        .notify
        .replay_failed(scope.company.id, &param(&req, "endpoint_id"), since)
        .await?;
    Ok(HttpResponse::Accepted().json(ReplayedOut { replayed: n }))
}

/// `GET …/notification-messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// `test` or `live` (see [`Requester::data_scope`]).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// The message type (`order.paid` …).
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Messages sent to the company's systems, newest first, with their deliveries.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/notification-messages",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company"), MessagesQuery),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
    ),
)]
pub(crate) async fn messages(
    state: web::Data<AdminState>,
    scope: Requester,
    q: web::Query<MessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = crate::page_limit(q.limit);
    let page = state
        .notify
        .messages(
            scope.data_scope(q.mode)?,
            q.event_type.as_deref(),
            limit,
            q.cursor.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A message with its deliveries and every attempt.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/notification-messages/{message_id}",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company"), ("message_id" = String, Path, description = "The message (`msg_…`)"), ModeQuery),
    responses(
        (status = 200, description = "The message", body = MessageOut),
        (status = 404, description = "No such message in this mode (`message_not_found`)", body = ErrorBody)
    ),
)]
pub(crate) async fn message(
    state: web::Data<AdminState>,
    scope: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let m = state
        .notify
        .message(scope.data_scope(q.mode)?, &param(&req, "message_id"))
        .await?;
    Ok(HttpResponse::Ok().json(m))
}

/// Sends a message again to every destination it had.
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/notification-messages/{message_id}/replay",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company"), ("message_id" = String, Path, description = "The message (`msg_…`)"), ModeQuery),
    responses(
        (status = 202, description = "The deliveries are due again", body = ReplayedOut),
        (status = 404, description = "No such message in this mode (`message_not_found`)", body = ErrorBody)
    ),
)]
pub(crate) async fn replay_message(
    state: web::Data<AdminState>,
    scope: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let n = state
        .notify
        .replay_message(scope.data_scope(q.mode)?, &param(&req, "message_id"))
        .await?;
    Ok(HttpResponse::Accepted().json(ReplayedOut { replayed: n }))
}

/// The shopper e-mail settings.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/notification-settings",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company")),
    responses(
        (status = 200, description = "The settings", body = SettingsIo),
    ),
)]
pub(crate) async fn settings(
    state: web::Data<AdminState>,
    scope: Requester,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.notify.settings(scope.company.id).await?))
}

/// Saves the shopper e-mail settings (on only when `PAYGATE_SMTP_URL` is set).
#[utoipa::path(
    put,
    path = "/admin/v1/companies/{company_id}/notification-settings",
    tag = "notifications",
    params(("company_id" = String, Path, description = "The company")),
    request_body = SettingsIo,
    responses(
        (status = 200, description = "The settings", body = SettingsIo),
        (status = 422, description = "A field is invalid (`invalid_parameter`)", body = ErrorBody)
    ),
)]
pub(crate) async fn save_settings(
    state: web::Data<AdminState>,
    scope: Requester,
    body: web::Json<SettingsIo>,
) -> Result<HttpResponse, ApiError> {
    let out = state
        .notify
        .save_settings(scope.company.id, body.into_inner())
        .await?;
    audit(
        &state,
        &scope,
        "notification_settings.updated",
        &scope.company.company_id,
        serde_json::json!({"shopper_emails": out.shopper_emails}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(out))
}
