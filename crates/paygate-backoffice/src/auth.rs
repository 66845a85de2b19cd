//! Signing in and out, the language switch, and invitations.
//!
//! Policy: one form for operators and company users. The e-mail is tried as an operator first,
//! then as a user of each company that has it (oldest first); unknown e-mails cost one Argon2
//! verification too, so timing does not tell which exist. Attempts go through
//! [`paygate_tenant::signin`], as the admin API's token endpoint does: a malformed e-mail is a
//! message next to the field (422, nothing hashed or counted); failures are counted per account
//! and client address (the forwarded one behind a trusted proxy,
//! [`paygate_web::client_addr`]): after five in 15 minutes that account is locked out from that
//! address for 15 minutes (429, a message that says so, `Retry-After`), and a much-failed account
//! slows down the addresses that failed while sparing fresh ones; when too many sign-ins are
//! being checked at once the form says to try again in a moment (503, `Retry-After`). Failures
//! are answered after a pause. A sign-in always starts a new session (a fresh cookie token, in
//! the operator's current epoch), and ends the one the browser had.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use paygate_tenant::operators::MAX_EMAIL_CHARS;
use paygate_tenant::signin::{self, Refused};
use paygate_tenant::{operators, users};
use paygate_web::client_addr::client_ip;

use crate::extract::Visitor;
use crate::i18n::Lang;
use crate::page::{
    FieldErrors, Page, PageError, redirect, redirect_with_flash, render, render_status, safe_next,
};
use crate::session::{self, LANG_COOKIE, Principal, SESSION_COOKIE};

/// Pause before answering a failed sign-in.
const FAILURE_PAUSE: Duration = Duration::from_millis(400);

/// Registers `/`, `/signin`, `/signout`, `/language`, `/invitations/{token}` (each wrapped by
/// the guard by the caller).
pub(crate) fn routes() -> Vec<actix_web::Resource> {
    vec![
        web::resource("/").route(web::get().to(root)),
        web::resource("/signin")
            .route(web::get().to(signin_page))
            .route(web::post().to(signin)),
        web::resource("/signout").route(web::post().to(signout)),
        web::resource("/language").route(web::post().to(language)),
        web::resource("/invitations/{token}")
            .route(web::get().to(invitation_page))
            .route(web::post().to(accept_invitation)),
    ]
}

async fn root(v: Visitor) -> HttpResponse {
    match v.session().map(|s| &s.principal) {
        Some(Principal::Operator { .. }) => redirect("/console"),
        Some(Principal::User { .. }) => redirect("/app"),
        None => redirect("/signin"),
    }
}

#[derive(Template)]
#[template(path = "backoffice/signin.html")]
struct SigninTemplate {
    ctx: Page,
    email: String,
    next: String,
    errors: FieldErrors,
    /// No operator exists yet: the page says where the setup link is ([`crate::setup`]).
    no_operator: bool,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn signin_page(v: Visitor, q: web::Query<NextQuery>) -> Result<HttpResponse, PageError> {
    let next = q
        .next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or("")
        .to_owned();
    // Already signed in: straight to the pages.
    if v.session().is_some() {
        return Ok(redirect(if next.is_empty() { "/" } else { &next }));
    }
    render(&SigninTemplate {
        ctx: v.page("signin.title"),
        email: String::new(),
        next,
        errors: FieldErrors::new(),
        no_operator: paygate_tenant::setup::needed(v.db()).await?,
    })
}

/// The sign-in form (the `csrf` field is checked by the guard).
#[derive(Deserialize)]
struct SigninForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn signin(
    req: HttpRequest,
    v: Visitor,
    form: web::Form<SigninForm>,
) -> Result<HttpResponse, PageError> {
    let SigninForm {
        email,
        password,
        next,
    } = form.into_inner();
    let lang = v.lang();
    let next = safe_next(&next).unwrap_or("").to_owned();
    let no_operator = paygate_tenant::setup::needed(v.db()).await?;
    let fail = |status: StatusCode, errors: FieldErrors, email: String, next: String| {
        render_status(
            status,
            &SigninTemplate {
                ctx: v.page("signin.title"),
                email,
                next,
                errors,
                no_operator,
            },
        )
    };
    // A huge input is not echoed back.
    let shown = if email.len() <= MAX_EMAIL_CHARS {
        email.clone()
    } else {
        String::new()
    };
    let retry_after = |mut res: HttpResponse, after: Duration| {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        res.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(secs.max(1)),
        );
        res
    };
    let client = client_ip(&req);
    let db = v.db();
    let mut attempt = match signin::begin(db, &email, client).await {
        Ok(a) => a,
        Err(Refused::InvalidEmail) => {
            let mut errors = FieldErrors::new();
            errors.add(lang, "email", "invalid_email", "invalid e-mail");
            return fail(StatusCode::UNPROCESSABLE_ENTITY, errors, shown, next);
        }
        Err(Refused::TooManyAttempts { retry_after: wait }) => {
            let minutes = wait.as_secs().div_ceil(60).max(1).to_string();
            let mut errors = FieldErrors::new();
            errors.add_text(
                "form",
                lang.format("field_errors.too_many_attempts", &[&minutes]),
            );
            let res = fail(StatusCode::TOO_MANY_REQUESTS, errors, shown, next)?;
            return Ok(retry_after(res, wait));
        }
        Err(Refused::Busy { retry_after: wait }) => {
            let mut errors = FieldErrors::new();
            errors.add(lang, "form", "signin_busy", "busy: try again in a moment");
            let res = fail(StatusCode::SERVICE_UNAVAILABLE, errors, shown, next)?;
            return Ok(retry_after(res, wait));
        }
        Err(Refused::Db(e)) => return Err(e.into()),
    };
    let password = SecretString::from(password);
    let operator = operators::find_by_email(db, attempt.account())
        .await?
        .filter(|o| !o.disabled);
    // (kind, principal id, company, epoch) of the account the password opens.
    let mut signed_in: Option<(&'static str, String, Option<i64>, i64)> = None;
    if let Some(op) = &operator
        && attempt.verify(Some(&op.password_hash), &password).await
    {
        signed_in = Some(("operator", op.id.clone(), None, op.token_epoch));
    }
    if signed_in.is_none() {
        let candidates: Vec<_> = users::users_by_email(db, attempt.account())
            .await?
            .into_iter()
            .filter(|u| u.password_hash.is_some())
            .collect();
        if candidates.is_empty() && operator.is_none() {
            // Same cost as a real check.
            attempt.verify(None, &password).await;
        }
        for u in candidates {
            if attempt.verify(u.password_hash.as_deref(), &password).await {
                signed_in = Some(("user", u.id.clone(), Some(u.company_pk), 0));
                break;
            }
        }
    }
    drop(password);
    let Some((kind, principal_id, company_pk, epoch)) = signed_in else {
        attempt.failed(db).await?;
        tracing::info!(client = ?client, "back-office sign-in failed");
        tokio::time::sleep(FAILURE_PAUSE).await;
        let mut errors = FieldErrors::new();
        errors.add(
            lang,
            "form",
            "wrong_credentials",
            "wrong e-mail or password",
        );
        return fail(StatusCode::UNAUTHORIZED, errors, shown, next);
    };
    attempt.succeeded(db).await?;
    if let Some(old) = v.session() {
        session::end(db, &old.id).await?;
    }
    let token = session::create_in_epoch(
        db,
        &v.state.sessions,
        kind,
        &principal_id,
        company_pk,
        None,
        epoch,
    )
    .await?;
    if kind == "user" {
        users::touch_sign_in(db, &principal_id).await?;
    }
    tracing::info!(kind, principal = %principal_id, "back-office sign-in");
    let home = if kind == "operator" {
        "/console"
    } else {
        "/app"
    };
    // `next` only within the principal's own area.
    let to = if !next.is_empty() && (next == home || next.starts_with(&format!("{home}/"))) {
        next
    } else {
        home.to_owned()
    };
    let mut res = redirect(&to);
    res.add_cookie(&session::session_cookie(token, v.rc.secure))
        .map_err(PageError::internal)?;
    Ok(res)
}

async fn signout(v: Visitor) -> Result<HttpResponse, PageError> {
    if let Some(s) = v.session() {
        session::end(v.db(), &s.id).await?;
    }
    let mut res = redirect_with_flash("/signin", "flash.signed_out");
    res.add_cookie(&session::removal_cookie(SESSION_COOKIE, v.rc.secure))
        .map_err(PageError::internal)?;
    Ok(res)
}

#[derive(Deserialize)]
struct LanguageForm {
    #[serde(default)]
    lang: String,
    #[serde(default)]
    next: String,
}

/// The language switch: remembered in a cookie, and in the session when signed in.
async fn language(v: Visitor, form: web::Form<LanguageForm>) -> Result<HttpResponse, PageError> {
    let to = safe_next(&form.next).unwrap_or("/").to_owned();
    let Some(lang) = Lang::parse(&form.lang) else {
        return Ok(redirect(&to));
    };
    if let Some(s) = v.session() {
        session::set_language(v.db(), &s.id, lang).await?;
    }
    let mut res = redirect(&to);
    res.add_cookie(&session::lasting_cookie(
        LANG_COOKIE,
        lang.code().to_owned(),
        v.rc.secure,
    ))
    .map_err(PageError::internal)?;
    Ok(res)
}

#[derive(Template)]
#[template(path = "backoffice/invitation.html")]
struct InvitationTemplate {
    ctx: Page,
    email: String,
    action: String,
    errors: FieldErrors,
}

fn invitation_gone(v: &Visitor) -> Result<HttpResponse, PageError> {
    let tpl = crate::page::ErrorTemplate {
        ctx: v.page("invitation.invalid_title"),
        message: v.lang().t("invitation.invalid").to_owned(),
        status: 404,
    };
    render_status(StatusCode::NOT_FOUND, &tpl)
}

async fn invitation_page(v: Visitor, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let token = path.into_inner();
    let Some(user) = users::invitation_user(v.db(), &token).await? else {
        return invitation_gone(&v);
    };
    render(&InvitationTemplate {
        ctx: v.page("invitation.title"),
        email: user.email,
        action: format!("/invitations/{token}"),
        errors: FieldErrors::new(),
    })
}

#[derive(Deserialize)]
struct InvitationForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn accept_invitation(
    v: Visitor,
    path: web::Path<String>,
    form: web::Form<InvitationForm>,
) -> Result<HttpResponse, PageError> {
    let token = path.into_inner();
    let InvitationForm {
        password,
        password_confirm,
    } = form.into_inner();
    let Some(user) = users::invitation_user(v.db(), &token).await? else {
        return invitation_gone(&v);
    };
    let password = SecretString::from(password);
    match users::accept_invitation(v.db(), &token, password, &password_confirm).await {
        Ok(user) => {
            if let Some(old) = v.session() {
                session::end(v.db(), &old.id).await?;
            }
            let token = session::create(
                v.db(),
                &v.state.sessions,
                "user",
                &user.id,
                Some(user.company_pk),
                None,
            )
            .await?;
            users::touch_sign_in(v.db(), &user.id).await?;
            let mut res = redirect_with_flash("/app", "flash.welcome");
            res.add_cookie(&session::session_cookie(token, v.rc.secure))
                .map_err(PageError::internal)?;
            Ok(res)
        }
        Err(users::UserError::InvitationInvalid) => invitation_gone(&v),
        Err(e) => {
            let errors = FieldErrors::from_user(v.lang(), e)?;
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &InvitationTemplate {
                    ctx: v.page("invitation.title"),
                    email: user.email,
                    action: format!("/invitations/{token}"),
                    errors,
                },
            )
        }
    }
}
