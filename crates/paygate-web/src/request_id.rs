//! A request id on every request: taken from `X-Request-Id` when the caller sent a sane one
//! (a load balancer's), made up otherwise, echoed in the answer, and carried by a `request` span
//! so every log line of the request names it (with the company, when the path names one).
//!
//! Paths that carry a secret (`/invitations/{token}`) are logged without it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

static COUNTER: AtomicU64 = AtomicU64::new(0);
static PREFIX: OnceLock<String> = OnceLock::new();

/// The header.
pub const HEADER: &str = "x-request-id";

fn sane(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new id: a per-process random prefix and a counter (unique, cheap, ordered).
fn new_id() -> String {
    let prefix = PREFIX.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{:08x}", nanos ^ std::process::id().rotate_left(16))
    });
    format!("{prefix}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The company a path names, if any (`/callbacks/v1.0/stripe/{id}`,
/// `/admin/v1/companies/{id}/…`, `/checkout/{id}/…`).
fn company_of(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/callbacks/v1.0/stripe/")
        .or_else(|| path.strip_prefix("/admin/v1/companies/"))
        .or_else(|| path.strip_prefix("/checkout/"))?;
    rest.split('/').next().filter(|c| !c.is_empty())
}

/// The middleware (`App::wrap(from_fn(request_id::middleware))`).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map_or_else(new_id, str::to_owned);
    let path = req.path();
    let logged_path = if path.starts_with("/invitations/") {
        "/invitations/…"
    } else {
        path
    };
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %logged_path,
        company_id = tracing::field::Empty,
    );
    if let Some(c) = company_of(path) {
        span.record("company_id", c);
    }
    let mut res = next.call(req).instrument(span).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_callers_ids_are_checked() {
        assert_ne!(new_id(), new_id());
        assert!(sane("abc-123_x.y:z"));
        assert!(!sane(""));
        assert!(!sane("has space"));
        assert!(!sane(&"x".repeat(65)));
        assert_eq!(company_of("/callbacks/v1.0/stripe/acme"), Some("acme"));
        assert_eq!(company_of("/admin/v1/companies/acme/events"), Some("acme"));
        assert_eq!(company_of("/admin/v1/operators"), None);
    }
}
