//! A request id on every request: taken from `X-Request-Id` when the caller sent a sane one
//! (a load balancer's), made up otherwise, echoed in the answer, and carried by a `request` span
//! so every log line of the request names it (with the company, when the path names one).
//!
//! Paths that carry a secret (`/invitations/{token}`, `/setup/{token}`) are logged without it:
//! every log line that names a path goes through [`loggable_path`], which masks the segment
//! after a secret-bearing one ([`SECRET_SEGMENTS`], in any case and wherever it appears, so
//! mistyped links are masked too) and cuts a path longer than [`MAX_LOGGED_PATH`] (a path can
//! be as long as the request head). The company id is recorded only when it is shaped like one.

use std::borrow::Cow;
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

/// Path segments followed by a secret: `/invitations/{token}` (a one-time link that sets a
/// password) and `/setup/{token}` (the first-run link that creates the first operator). A new
/// secret-bearing route (a password reset link, say) adds its segment here.
pub const SECRET_SEGMENTS: &[&str] = &["invitations", "setup"];

/// The longest path written to the log, in bytes; a longer one is cut and ends with `…`.
pub const MAX_LOGGED_PATH: usize = 256;

/// `path` as it may be written to the log: the segment after each of [`SECRET_SEGMENTS`]
/// (compared ignoring case) replaced by `…`, and cut to [`MAX_LOGGED_PATH`] bytes.
pub fn loggable_path(path: &str) -> Cow<'_, str> {
    let mut masked: Option<String> = None;
    let mut after_secret = false;
    for (i, seg) in path.split('/').enumerate() {
        let secret = after_secret && !seg.is_empty();
        // An empty segment (`//`) keeps the secret pending: the next one is still masked.
        if !seg.is_empty() {
            after_secret = SECRET_SEGMENTS.iter().any(|s| seg.eq_ignore_ascii_case(s));
        }
        if secret && masked.is_none() {
            // Copy what came before, then build the rest segment by segment.
            let before: Vec<&str> = path.split('/').take(i).collect();
            masked = Some(before.join("/"));
        }
        if let Some(m) = masked.as_mut() {
            m.push('/');
            m.push_str(if secret { "…" } else { seg });
        }
    }
    let out: Cow<'_, str> = masked.map_or(Cow::Borrowed(path), Cow::Owned);
    if out.len() <= MAX_LOGGED_PATH {
        return out;
    }
    let mut end = MAX_LOGGED_PATH;
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &out[..end]))
}

/// The company a path names, if any (`/callbacks/v1.0/stripe/{id}`,
/// `/admin/v1/companies/{id}/…`, `/checkout/{id}/…`), when it is shaped like a company id
/// (1 to 64 of `A-Z a-z 0-9 _ -`): anything else names no company and is not logged whole.
fn company_of(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/callbacks/v1.0/stripe/")
        .or_else(|| path.strip_prefix("/admin/v1/companies/"))
        .or_else(|| path.strip_prefix("/checkout/"))?;
    rest.split('/').next().filter(|c| {
        !c.is_empty()
            && c.len() <= 64
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
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
    let logged_path = loggable_path(path);
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
        assert_eq!(
            company_of(&format!("/checkout/{}/return", "x".repeat(65))),
            None
        );
        assert_eq!(company_of("/callbacks/v1.0/stripe/a.b"), None);
    }

    #[test]
    fn secret_segments_are_masked_and_long_paths_cut() {
        assert_eq!(loggable_path("/invitations/s3cr3t"), "/invitations/…");
        assert_eq!(loggable_path("/invitations/s3cr3t/"), "/invitations/…/");
        assert_eq!(loggable_path("/Invitations/s3cr3t/x"), "/Invitations/…/x");
        assert_eq!(loggable_path("//invitations/s3cr3t"), "//invitations/…");
        assert_eq!(loggable_path("/invitations//s3cr3t"), "/invitations//…");
        assert_eq!(loggable_path("/setup/s3cr3t"), "/setup/…");
        assert_eq!(loggable_path("/SETUP/s3cr3t?x"), "/SETUP/…");
        assert_eq!(loggable_path("/app/orders"), "/app/orders");
        assert!(matches!(loggable_path("/app/orders"), Cow::Borrowed(_)));
        let long = format!("/x/{}", "é".repeat(400));
        let cut = loggable_path(&long);
        assert!(cut.len() <= MAX_LOGGED_PATH + "…".len() && cut.ends_with('…'));
    }
}
