//! The first-run setup page, `/setup/{token}`: the first operator chooses their e-mail and
//! password.
//!
//! Policy: the link is the one `paygate serve` logs while no operator exists
//! ([`paygate_tenant::setup`]: random, stored hashed, replaced at each start, valid once and only
//! while no operator exists). A token that does not open the page answers the standard not-found
//! page, and counts as a failure of the client address ([`paygate_web::client_addr`]): after
//! [`SETUP_FAILURE_LIMIT`] within 15 minutes, every setup URL answers 429 (with `Retry-After`)
//! to that address for 15 minutes, so the token cannot be guessed by trying (it has 256 bits
//! anyway). The form is CSRF-protected like every pre-sign-in form (the guard's pre-session
//! token); its errors are shown all at once (422). On success the operator is signed in (a new
//! session, as the sign-in makes) and sent to the console (303); the link answers 404 from then
//! on. The token is in the path, which the logs mask (`setup` is one of
//! [`paygate_web::request_id::SECRET_SEGMENTS`]).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use paygate_tenant::operators::MAX_EMAIL_CHARS;
use paygate_tenant::setup::{self, SetupError};
use paygate_web::client_addr::client_ip;
use paygate_web::throttle::Throttle;

use crate::extract::Visitor;
use crate::page::{
    ErrorTemplate, FieldErrors, Page, PageError, redirect_with_flash, render, render_status,
};
use crate::session;

/// Wrong setup tokens one client address may try within [`SETUP_WINDOW`].
pub const SETUP_FAILURE_LIMIT: u32 = 5;
/// The window of [`SETUP_FAILURE_LIMIT`], and how long an address is then refused.
pub const SETUP_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The throttle of wrong setup tokens, per client address (in memory, per replica).
pub fn new_throttle() -> Throttle {
    Throttle::new(SETUP_FAILURE_LIMIT, SETUP_WINDOW, SETUP_WINDOW)
}

/// Registers `/setup/{token}` (wrapped by the guard by the caller).
pub(crate) fn routes() -> Vec<actix_web::Resource> {
    vec![
        web::resource("/setup/{token}")
            .route(web::get().to(setup_page))
            .route(web::post().to(create_operator)),
    ]
}

#[derive(Template)]
#[template(path = "backoffice/setup.html")]
struct SetupTemplate {
    ctx: Page,
    email: String,
    action: String,
    errors: FieldErrors,
}

/// The throttle's key: the client address (all unknown ones share one).
fn client_key(req: &HttpRequest) -> String {
    client_ip(req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// 429 while the address is refused.
fn refused(v: &Visitor, key: &str) -> Result<Option<HttpResponse>, PageError> {
    let Some(wait) = v.state.setup_throttle.locked(key) else {
        return Ok(None);
    };
    let tpl = ErrorTemplate {
        ctx: v.page("setup.too_many_title"),
        message: v.lang().t("setup.too_many").to_owned(),
        status: 429,
    };
    let mut res = render_status(StatusCode::TOO_MANY_REQUESTS, &tpl)?;
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    Ok(Some(res))
}

/// A token that opens nothing: counted, then the standard not-found page.
fn not_found(v: &Visitor, key: &str) -> Result<HttpResponse, PageError> {
    v.state.setup_throttle.fail(key);
    tracing::info!(client = %key, "setup link refused: unknown, used or replaced");
    Err(PageError::NotFound)
}

async fn setup_page(
    req: HttpRequest,
    v: Visitor,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let key = client_key(&req);
    if let Some(res) = refused(&v, &key)? {
        return Ok(res);
    }
    let token = path.into_inner();
    if !setup::is_valid(v.db(), &token).await? {
        return not_found(&v, &key);
    }
    render(&SetupTemplate {
        ctx: v.page("setup.title"),
        email: String::new(),
        action: format!("/setup/{token}"),
        errors: FieldErrors::new(),
    })
}

/// The setup form (the `csrf` field is checked by the guard).
#[derive(Deserialize)]
struct SetupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn create_operator(
    req: HttpRequest,
    v: Visitor,
    path: web::Path<String>,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, PageError> {
    let key = client_key(&req);
    if let Some(res) = refused(&v, &key)? {
        return Ok(res);
    }
    let token = path.into_inner();
    let SetupForm {
        email,
        password,
        password_confirm,
    } = form.into_inner();
    let password = SecretString::from(password);
    match setup::complete(v.db(), &token, &email, password, &password_confirm).await {
        Ok(op) => {
            if let Some(old) = v.session() {
                session::end(v.db(), &old.id).await?;
            }
            let cookie_token = session::create_in_epoch(
                v.db(),
                &v.state.sessions,
                "operator",
                &op.id,
                None,
                None,
                op.token_epoch,
            )
            .await?;
            tracing::info!(principal = %op.id, "the first operator was created through the setup link");
            let mut res = redirect_with_flash("/console", "flash.setup_done");
            res.add_cookie(&session::session_cookie(cookie_token, v.rc.secure))
                .map_err(PageError::internal)?;
            Ok(res)
        }
        Err(SetupError::InvalidToken) => not_found(&v, &key),
        Err(SetupError::Invalid(found)) => {
            let mut errors = FieldErrors::new();
            for (field, code) in found {
                errors.add(v.lang(), field, code, code);
            }
            // A huge input is not echoed back.
            let email = if email.len() <= MAX_EMAIL_CHARS {
                email
            } else {
                String::new()
            };
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &SetupTemplate {
                    ctx: v.page("setup.title"),
                    email,
                    action: format!("/setup/{token}"),
                    errors,
                },
            )
        }
        Err(SetupError::Db(e)) => Err(e.into()),
        Err(e @ SetupError::Hash) => Err(PageError::internal(e)),
    }
}
