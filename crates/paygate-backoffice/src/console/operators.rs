//! `/console/operators`: the people who run the installation. List and add; disable and remove
//! after a confirmation page (never the last active operator: 409 and a message), enable again;
//! and `/console/password`, where an operator changes their own password.
//!
//! Every change is Post/Redirect/Get with a flash; the rules (and the end of the sessions and
//! tokens of a disabled operator, or of one whose password changed) are
//! [`paygate_tenant::operators`]. The password change checks the current password as a sign-in
//! does ([`paygate_tenant::signin`]: lockout, room in the hashing pool), ends every other session
//! and token of the operator, and gives this browser a fresh session.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use paygate_tenant::operators::{self as domain, OperatorError};
use paygate_tenant::signin::{self, Refused};
use paygate_web::client_addr::client_ip;

use crate::OperatorSession;
use crate::page::{FieldErrors, Page, PageError, redirect_with_flash, render, render_status};
use crate::session;

/// Registers `/console/operators…` and `/console/password`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/operators", web::get().to(list))
        .route("/operators", web::post().to(add))
        .route("/operators/{id}/disable", web::get().to(confirm_disable))
        .route("/operators/{id}/disable", web::post().to(disable))
        .route("/operators/{id}/enable", web::post().to(enable))
        .route("/operators/{id}/remove", web::get().to(confirm_remove))
        .route("/operators/{id}/remove", web::post().to(remove))
        .route("/password", web::get().to(password_page))
        .route("/password", web::post().to(change_password));
}

/// An operator as the list shows it.
pub struct OperatorRow {
    pub id: String,
    pub email: String,
    pub disabled: bool,
    pub created_at: i64,
    /// The operator looking at the list.
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "backoffice/console/operators.html")]
struct OperatorsTemplate {
    ctx: Page,
    operators: Vec<OperatorRow>,
    form_email: String,
    errors: FieldErrors,
}

async fn page(
    op: &OperatorSession,
    form_email: String,
    errors: FieldErrors,
) -> Result<OperatorsTemplate, PageError> {
    let operators = domain::list(op.db())
        .await?
        .into_iter()
        .map(|o| OperatorRow {
            is_me: o.id == op.operator_id,
            id: o.id,
            email: o.email,
            disabled: o.disabled,
            created_at: o.created_at,
        })
        .collect();
    Ok(OperatorsTemplate {
        ctx: op.page("operators.title"),
        operators,
        form_email,
        errors,
    })
}

async fn list(op: OperatorSession) -> Result<HttpResponse, PageError> {
    render(&page(&op, String::new(), FieldErrors::new()).await?)
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn add(op: OperatorSession, form: web::Form<AddForm>) -> Result<HttpResponse, PageError> {
    let AddForm { email, password } = form.into_inner();
    match domain::create(op.db(), &email, SecretString::from(password)).await {
        Ok(created) => {
            paygate_tenant::audit::record(
                op.db(),
                &op.actor(),
                None,
                "operator.created",
                &created.id,
                serde_json::json!({"email": created.email}),
            )
            .await?;
            Ok(redirect_with_flash(
                "/console/operators",
                "flash.operator_created",
            ))
        }
        Err(e) => {
            let mut errors = FieldErrors::new();
            match e {
                OperatorError::InvalidEmail => {
                    errors.add(op.lang, "email", "invalid_email", "invalid e-mail")
                }
                OperatorError::Exists => {
                    errors.add(op.lang, "email", "operator_exists", "already exists")
                }
                OperatorError::WeakPassword => {
                    errors.add(op.lang, "password", "weak_password", "too short")
                }
                other => return Err(PageError::internal(other)),
            }
            let tpl = page(&op, email, errors).await?;
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl)
        }
    }
}

/// Disable or remove: the two changes that ask first.
#[derive(Clone, Copy)]
enum Verb {
    Disable,
    Remove,
}

impl Verb {
    fn path(self) -> &'static str {
        match self {
            Verb::Disable => "disable",
            Verb::Remove => "remove",
        }
    }
    fn title_key(self) -> &'static str {
        match self {
            Verb::Disable => "operators.disable_title",
            Verb::Remove => "operators.remove_title",
        }
    }
    fn warning_key(self) -> &'static str {
        match self {
            Verb::Disable => "operators.disable_warning",
            Verb::Remove => "operators.remove_warning",
        }
    }
    fn submit_key(self) -> &'static str {
        match self {
            Verb::Disable => "operators.disable_submit",
            Verb::Remove => "operators.remove_submit",
        }
    }
    fn flash_key(self) -> &'static str {
        match self {
            Verb::Disable => "flash.operator_disabled",
            Verb::Remove => "flash.operator_removed",
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/console/operator_confirm.html")]
struct ConfirmTemplate {
    ctx: Page,
    id: String,
    email: String,
    verb: &'static str,
    warning_key: &'static str,
    submit_key: &'static str,
    is_me: bool,
    errors: FieldErrors,
}

/// The confirmation page of `verb` for operator `id` (404 when there is none).
async fn confirm_page(
    op: &OperatorSession,
    id: &str,
    verb: Verb,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let target = domain::find(op.db(), id)
        .await?
        .ok_or(PageError::NotFound)?;
    render_status(
        status,
        &ConfirmTemplate {
            ctx: op.page(verb.title_key()),
            is_me: target.id == op.operator_id,
            id: target.id,
            email: target.email,
            verb: verb.path(),
            warning_key: verb.warning_key(),
            submit_key: verb.submit_key(),
            errors,
        },
    )
}

async fn confirm_disable(
    op: OperatorSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    confirm_page(
        &op,
        &path,
        Verb::Disable,
        StatusCode::OK,
        FieldErrors::new(),
    )
    .await
}

async fn confirm_remove(
    op: OperatorSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    confirm_page(&op, &path, Verb::Remove, StatusCode::OK, FieldErrors::new()).await
}

/// Does `verb` to operator `id` (confirmed: this is the confirmation page's form).
async fn change(op: OperatorSession, id: String, verb: Verb) -> Result<HttpResponse, PageError> {
    let done = match verb {
        Verb::Disable => domain::disable(op.db(), &op.actor(), &id).await,
        Verb::Remove => domain::remove(op.db(), &op.actor(), &id).await,
    };
    match done {
        Ok(_) => Ok(redirect_with_flash("/console/operators", verb.flash_key())),
        Err(OperatorError::NotFound) => Err(PageError::NotFound),
        Err(OperatorError::LastActive) => {
            let mut errors = FieldErrors::new();
            errors.add_text("form", op.lang.t("operators.last_active").to_owned());
            confirm_page(&op, &id, verb, StatusCode::CONFLICT, errors).await
        }
        Err(e) => Err(PageError::internal(e)),
    }
}

async fn disable(op: OperatorSession, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    change(op, path.into_inner(), Verb::Disable).await
}

async fn remove(op: OperatorSession, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    change(op, path.into_inner(), Verb::Remove).await
}

async fn enable(op: OperatorSession, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    match domain::enable(op.db(), &op.actor(), &path).await {
        Ok(_) => Ok(redirect_with_flash(
            "/console/operators",
            "flash.operator_enabled",
        )),
        Err(OperatorError::NotFound) => Err(PageError::NotFound),
        Err(e) => Err(PageError::internal(e)),
    }
}

#[derive(Template)]
#[template(path = "backoffice/console/password.html")]
struct PasswordTemplate {
    ctx: Page,
    errors: FieldErrors,
}

async fn password_page(op: OperatorSession) -> Result<HttpResponse, PageError> {
    render(&PasswordTemplate {
        ctx: op.page("password.title"),
        errors: FieldErrors::new(),
    })
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

async fn change_password(
    req: HttpRequest,
    op: OperatorSession,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let PasswordForm {
        current_password,
        new_password,
        new_password_confirm,
    } = form.into_inner();
    let lang = op.lang;
    let again = |status: StatusCode, errors: FieldErrors| {
        render_status(
            status,
            &PasswordTemplate {
                ctx: op.page("password.title"),
                errors,
            },
        )
    };
    let new_password = SecretString::from(new_password);
    let mut errors = FieldErrors::new();
    if domain::check_password(&new_password).is_err() {
        errors.add(lang, "new_password", "weak_password", "too short");
    } else if new_password.expose_secret() != new_password_confirm {
        errors.add(lang, "new_password_confirm", "password_mismatch", "differs");
    }
    if !errors.is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    let mut attempt = match signin::begin(op.db(), &op.email, client_ip(&req)).await {
        Ok(a) => a,
        Err(Refused::TooManyAttempts { retry_after }) => {
            let minutes = retry_after.as_secs().div_ceil(60).max(1).to_string();
            errors.add_text(
                "form",
                lang.format("field_errors.too_many_attempts", &[&minutes]),
            );
            return again(StatusCode::TOO_MANY_REQUESTS, errors);
        }
        Err(Refused::Busy { .. }) => {
            errors.add(lang, "form", "signin_busy", "busy: try again in a moment");
            return again(StatusCode::SERVICE_UNAVAILABLE, errors);
        }
        Err(Refused::InvalidEmail) => return Err(PageError::Forbidden),
        Err(Refused::Db(e)) => return Err(e.into()),
    };
    let me = domain::find_active(op.db(), &op.operator_id).await?;
    let current = SecretString::from(current_password);
    let ok = attempt
        .verify(me.as_ref().map(|o| o.password_hash.as_str()), &current)
        .await;
    drop(current);
    if !ok {
        attempt.failed(op.db()).await?;
        errors.add(lang, "current_password", "wrong_password", "wrong password");
        return again(StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    attempt.succeeded(op.db()).await?;
    let changed = domain::change_password(op.db(), &op.actor(), &op.operator_id, new_password)
        .await
        .map_err(PageError::internal)?;
    // Every session of before has ended, this one too: this browser goes on in a new one.
    let token = session::create_in_epoch(
        op.db(),
        &op.state.sessions,
        "operator",
        &changed.id,
        None,
        op.rc.session.as_ref().and_then(|s| s.language),
        changed.token_epoch,
    )
    .await?;
    let mut res = redirect_with_flash("/console/operators", "flash.password_changed");
    res.add_cookie(&session::session_cookie(token, op.rc.secure))
        .map_err(PageError::internal)?;
    Ok(res)
}
