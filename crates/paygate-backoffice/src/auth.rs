//! Signing in and out, the language switch, and invitations.
//!
//! Policy: one form for operators and company users. The e-mail is tried as an operator first,
//! then as a user of each company that has it (oldest first); unknown e-mails cost one Argon2
//! verification too, so timing does not tell which exist. Failures are answered after a pause and
//! counted per e-mail and address in the same throttle as the admin API's token endpoint: after
//! five in 15 minutes that e-mail is locked out from that address for 15 minutes, with a message
//! that says so. A sign-in always starts a new session (a fresh cookie token), and ends the one
//! the browser had.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use paygate_tenant::users;

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
    let fail = |status: StatusCode, errors: FieldErrors, email: String, next: String| {
        render_status(
            status,
            &SigninTemplate {
                ctx: v.page("signin.title"),
                email,
                next,
                errors,
            },
        )
    };
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let who = email.trim().to_lowercase();
    let key = format!("{who}|{ip}");
    let throttle = &v.state.signin_throttle;
    if let Some(wait) = throttle.locked(&key) {
        let minutes = wait.as_secs().div_ceil(60).max(1).to_string();
        let mut errors = FieldErrors::new();
        errors.add_text(
            "form",
            lang.format("field_errors.too_many_attempts", &[&minutes]),
        );
        return fail(StatusCode::TOO_MANY_REQUESTS, errors, email, next);
    }

    let db = v.db();
    let operator = paygate_tenant::operators::find_by_email(db, &email)
        .await?
        .filter(|o| !o.disabled);
    // (kind, principal id, company) of the account the password opens.
    let mut signed_in: Option<(&'static str, String, Option<i64>)> = None;
    if let Some(op) = &operator
        && paygate_tenant::operators::verify_password(
            Some(op.password_hash.clone()),
            password.clone(),
        )
        .await
    {
        signed_in = Some(("operator", op.id.clone(), None));
    }
    if signed_in.is_none() {
        let candidates: Vec<_> = users::users_by_email(db, &email)
            .await?
            .into_iter()
            .filter(|u| u.password_hash.is_some())
            .collect();
        if candidates.is_empty() && operator.is_none() {
            // Same cost as a real check.
            paygate_tenant::operators::verify_password(None, password.clone()).await;
        }
        for u in candidates {
            if paygate_tenant::operators::verify_password(u.password_hash.clone(), password.clone())
                .await
            {
                signed_in = Some(("user", u.id.clone(), Some(u.company_pk)));
                break;
            }
        }
    }
    drop(password);
    let Some((kind, principal_id, company_pk)) = signed_in else {
        throttle.fail(&key);
        tracing::info!(ip = %ip, "back-office sign-in failed");
        tokio::time::sleep(FAILURE_PAUSE).await;
        let mut errors = FieldErrors::new();
        errors.add(
            lang,
            "form",
            "wrong_credentials",
            "wrong e-mail or password",
        );
        return fail(StatusCode::UNAUTHORIZED, errors, email, next);
    };
    throttle.clear(&key);
    if let Some(old) = v.session() {
        session::end(db, &old.id).await?;
    }
    let token =
        session::create(db, &v.state.sessions, kind, &principal_id, company_pk, None).await?;
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
