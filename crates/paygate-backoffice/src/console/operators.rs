//! `/console/operators`: the people who run the installation. List and add.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use paygate_tenant::operators::{self as domain, OperatorError};

use crate::OperatorSession;
use crate::page::{FieldErrors, Page, PageError, redirect_with_flash, render, render_status};

/// Registers `/console/operators`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/operators", web::get().to(list))
        .route("/operators", web::post().to(add));
}

/// An operator as the list shows it.
pub struct OperatorRow {
    pub email: String,
    pub disabled: bool,
    pub created_at: i64,
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
