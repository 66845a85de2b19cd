//! The middleware around every back-office route.
//!
//! Before the handler: resolves the session from its cookie, the language (the session's, the
//! remembered switch, `Accept-Language`, English), the CSRF token (the session's, or a
//! pre-session token in its own cookie for visitors), and puts them in the request
//! ([`RequestCtx`]). Every request other than GET/HEAD must carry that token in the `csrf`
//! field of its urlencoded body (or of its `multipart/form-data` body, the one form sending a
//! file, read up to [`crate::multipart::MAX_BODY`]), compared in constant time: otherwise 403
//! and the handler never runs, so nothing can change. After the handler: renders [`PageError`]s as pages of the
//! layout in the visitor's language, sets the security headers (CSP, `nosniff`, referrer
//! policy, no caching, no framing), and writes the cookies.

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use paygate_web::request_id::loggable_path;
use subtle::ConstantTimeEq;

use crate::BackofficeState;
use crate::i18n::Lang;
use crate::page::{ErrorTemplate, FlashOut, Page, PageError, RequestCtx, render_status};
use crate::session::{self, FLASH_COOKIE, LANG_COOKIE, PRE_CSRF_COOKIE, SESSION_COOKIE};

/// The Content-Security-Policy of every back-office page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

/// Sets the security headers every back-office response carries.
pub(crate) fn security_headers(h: &mut header::HeaderMap) {
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
}

/// Whether `path` needs a signed-in principal (a stale session there goes to the sign-in page).
fn needs_session(path: &str) -> bool {
    ["/app", "/console"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// The value of one field of an urlencoded body.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The middleware (see the module doc).
pub(crate) async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<BackofficeState>>().cloned() else {
        return Err(PageError::internal(std::io::Error::other("back-office state missing")).into());
    };
    let secure = state.secure_cookies || req.connection_info().scheme() == "https";
    let session_token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
    let session = match &session_token {
        Some(t) => session::load(&state.db, &state.sessions, t)
            .await
            .map_err(PageError::from)?
            .map(Arc::new),
        None => None,
    };
    let stale_session = session_token.is_some() && session.is_none();
    let pre = req
        .cookie(PRE_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| session::is_token_shaped(v));
    let new_pre = match pre {
        Some(_) => None,
        None => Some(session::random_token()),
    };
    let csrf = match (&session, &pre, &new_pre) {
        (Some(s), _, _) => s.csrf.clone(),
        (None, Some(p), _) => p.clone(),
        (None, None, Some(n)) => n.clone(),
        (None, None, None) => String::new(),
    };
    let lang = session
        .as_ref()
        .and_then(|s| s.language)
        .or_else(|| req.cookie(LANG_COOKIE).and_then(|c| Lang::parse(c.value())))
        .or_else(|| {
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|h| h.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or_default();
    let had_flash = req.cookie(FLASH_COOKIE).is_some();
    let flash = req
        .cookie(FLASH_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|k| Lang::En.has(k));
    let path = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_owned(),
    };
    let rc = RequestCtx {
        lang,
        csrf: csrf.clone(),
        session,
        flash,
        path: path.clone(),
        secure,
    };
    req.extensions_mut().insert(rc.clone());

    let mut res: ServiceResponse<BoxBody> = if !matches!(*req.method(), Method::GET | Method::HEAD)
    {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let multipart = crate::multipart::is_multipart(&content_type);
        if multipart {
            // A file upload: a larger body than a form's (for this request only).
            let mut limit = actix_web::dev::Extensions::new();
            limit.insert(web::PayloadConfig::new(crate::multipart::MAX_BODY));
            req.add_data_container(std::rc::Rc::new(limit));
        }
        let body = req.extract::<web::Bytes>().await?;
        let sent = if multipart {
            crate::multipart::field(&content_type, &body, "csrf")
        } else {
            form_field(&body, "csrf")
        }
        .unwrap_or_default();
        let ok = !csrf.is_empty()
            && sent.len() == csrf.len()
            && bool::from(sent.as_bytes().ct_eq(csrf.as_bytes()));
        if ok {
            req.set_payload(Payload::from(body));
            next.call(req).await?.map_into_boxed_body()
        } else if stale_session && needs_session(req.path()) {
            tracing::info!(path = %loggable_path(req.path()), "form of an expired session");
            let to = format!("/signin?next={}", encode(req.path()));
            req.into_response(crate::page::redirect(&to))
        } else {
            tracing::warn!(path = %loggable_path(req.path()), "form refused: CSRF token missing or wrong");
            let page = error_page(&rc, &PageError::Csrf);
            req.into_response(page)
        }
    } else {
        next.call(req).await?.map_into_boxed_body()
    };

    // A handler's PageError becomes a page of the layout in the visitor's language.
    let page_error = res
        .response()
        .error()
        .and_then(|e| e.as_error::<PageError>())
        .filter(|e| !matches!(e, PageError::Redirect(_)))
        .map(|e| error_page(&rc, e));
    if let Some(page) = page_error {
        res = res.into_response(page);
    } else if res.status() == StatusCode::NOT_FOUND
        && res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        // The app's JSON 404 (an unknown path under a back-office scope).
        res = res.into_response(error_page(&rc, &PageError::NotFound));
    }

    let flash_out = res.response().extensions().get::<FlashOut>().cloned();
    let response = res.response_mut();
    security_headers(response.headers_mut());
    let mut cookies = Vec::new();
    if let Some(n) = new_pre {
        cookies.push(session::cookie(PRE_CSRF_COOKIE, n, secure));
    }
    if stale_session && !response.headers().contains_key(header::SET_COOKIE) {
        cookies.push(session::removal_cookie(SESSION_COOKIE, secure));
    }
    if let Some(FlashOut(key)) = flash_out {
        cookies.push(session::cookie(FLASH_COOKIE, key, secure));
    } else if had_flash && response.status().is_success() {
        cookies.push(session::removal_cookie(FLASH_COOKIE, secure));
    }
    for c in cookies {
        response.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(res)
}

/// The error page for `err` in the visitor's language.
pub(crate) fn error_page(rc: &RequestCtx, err: &PageError) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(err);
    let title_key = match status {
        StatusCode::NOT_FOUND => "errors.not_found_title",
        StatusCode::FORBIDDEN => "errors.forbidden_title",
        StatusCode::BAD_REQUEST => "errors.bad_request_title",
        _ => "errors.internal_title",
    };
    let mut rc = rc.clone();
    rc.flash = None;
    let tpl = ErrorTemplate {
        ctx: Page::new(&rc, title_key),
        message: rc.lang.t(err.message_key()).to_owned(),
        status: status.as_u16(),
    };
    render_status(status, &tpl).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the error page failed to render");
        HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(rc.lang.t(err.message_key()).to_owned())
    })
}

/// Percent-encodes a path for a query parameter.
pub(crate) fn encode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)])
        .map(|e| e.trim_start_matches("x=").to_owned())
        .unwrap_or_default()
}
