#![doc = include_str!("../README.md")]

pub mod accept_language;
pub mod body_deadline;
pub mod client_addr;
pub mod drain;
pub mod hsts;
pub mod metrics;
pub mod request_id;
pub mod throttle;

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine;
use serde::Serialize;

/// The one error type at the web edge.
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    field: Option<Cow<'static, str>>,
    /// Seconds for the `Retry-After` header.
    retry_after: Option<u64>,
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            retry_after: None,
            cause: None,
        }
    }
    /// 400.
    pub fn bad_request(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 403.
    pub fn forbidden(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    /// 404.
    pub fn not_found(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    /// 409.
    pub fn conflict(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// 429: the caller has used up a limit; `message` says which and when it frees up.
    pub fn too_many_requests(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
    }
    /// 422.
    pub fn unprocessable(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    /// 500 with a generic body; the cause is logged with its chain when the response is built.
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error".into(),
            message: "an internal error occurred; it has been logged".into(),
            field: None,
            retry_after: None,
            cause: Some(Box::new(cause)),
        }
    }
    /// 503 with a generic body.
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "service_unavailable".into(),
            message: "the service is temporarily unavailable; retry later".into(),
            field: None,
            retry_after: None,
            cause: Some(Box::new(cause)),
        }
    }
    /// 503 for a refusal by design (a full pool): no cause to log; say when to retry with
    /// [`with_retry_after`](Self::with_retry_after).
    pub fn service_unavailable(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
    /// 502: an upstream (Stripe) could not be reached or failed.
    pub fn bad_gateway(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, code, message)
    }
    /// Names the input field the error is about (`"field"` in the body).
    pub fn with_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = Some(field.into());
        self
    }
    /// Sends `Retry-After` with the answer: `after` rounded up to whole seconds (at least 1).
    pub fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        self.retry_after = Some(secs.max(1));
        self
    }
    /// The answer, with one more header (`Allow` on a 405, `WWW-Authenticate` on a 401).
    pub fn response_with_header(
        &self,
        name: actix_web::http::header::HeaderName,
        value: &'static str,
    ) -> HttpResponse {
        let mut res = self.error_response();
        res.headers_mut().insert(
            name,
            actix_web::http::header::HeaderValue::from_static(value),
        );
        res
    }
    /// The `Retry-After` seconds, if the answer carries them.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }
    /// The message (for 5xx the generic one, never the cause).
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The input field the error is about, if it names one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status.as_u16())
            .field("code", &self.code)
            .field("message", &self.message)
            .field("cause", &self.cause)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: BodyInner<'a>,
}
#[derive(Serialize)]
struct BodyInner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// The whole cause chain of an error, one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        // A 503 that says when to retry (a full pool, say) is a refusal by design, not a failure.
        if self.status.is_server_error() && (self.cause.is_some() || self.retry_after.is_none()) {
            match &self.cause {
                Some(c) => {
                    tracing::error!(code = %self.code, cause = %error_chain(c.as_ref()), "request failed")
                }
                None => tracing::error!(code = %self.code, "request failed"),
            }
        }
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs));
        }
        res.json(Body {
            error: BodyInner {
                code: &self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        })
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        if matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ) {
            return Self::conflict("conflict", "the object conflicts with an existing one");
        }
        Self::internal(err)
    }
}

/// A `JsonConfig` whose errors are `ApiError`s: 413 over `limit` bytes, 415 for another
/// content type, 400 `invalid_json` (with serde's explanation) otherwise.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError as E;
            match &err {
                E::OverflowKnownLength { .. } | E::Overflow { .. } => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                )
                .into(),
                E::ContentType => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the request body as application/json",
                )
                .into(),
                E::Deserialize(e) => {
                    ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")).into()
                }
                _ => ApiError::bad_request("invalid_json", "the request body could not be read")
                    .into(),
            }
        })
}

/// A `QueryConfig` whose errors are 400 `invalid_query`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::bad_request("invalid_query", format!("invalid query string: {err}")).into()
    })
}

/// A `PathConfig` whose errors are 404 `not_found`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_err, _req| ApiError::not_found("not_found", "no such resource").into())
}

/// The default service: 404 with the JSON error body.
pub async fn not_found(_req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("not_found", "no such route"))
}

/// An opaque pagination cursor over a monotonically increasing integer key.
pub fn encode_cursor(id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("c:{id}"))
}

/// Reads a cursor made by [`encode_cursor`]; 400 `invalid_cursor` otherwise.
pub fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "the pagination cursor is not valid");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let s = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    s.strip_prefix("c:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)
}

/// Formats epoch milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Formats epoch seconds as RFC 3339 (UTC).
pub fn rfc3339_s(s: i64) -> String {
    chrono::DateTime::from_timestamp(s, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A page of a list: `data`, `has_more` and the cursor of the next page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
