//! `/console/companies`: the tenants. List with search, create, one company's page (facts,
//! suspend / reactivate, its users), delete after a confirmation step. Every change goes
//! through [`paygate_tenant::TenantService`] or [`paygate_tenant::users`], which validate, write
//! the audit log and invalidate the intake's cache.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use paygate_db::entities::company;
use paygate_tenant::service::{STATUS_ACTIVE, STATUS_SUSPENDED};
use paygate_tenant::users::{self as domain, NewUser};
use paygate_tenant::wire::{CompanyIn, CompanyPatch};
use secrecy::SecretString;

use crate::OperatorSession;
use crate::merchant::users::UserRow;
use crate::page::{
    ConfirmTemplate, FieldErrors, Page, PageError, confirmed, redirect, redirect_with_flash,
    render, render_status,
};

/// The [`crate::oneshot`] slot of an invitation just made: (link, e-mail address).
const INVITATION: &str = "oneshot:company.invitation";

/// Registers `/console/companies…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/companies", web::get().to(list))
        .route("/companies", web::post().to(create))
        .route("/companies/{company_id}", web::get().to(show))
        .route(
            "/companies/{company_id}/suspend",
            web::get().to(confirm_suspend),
        )
        .route("/companies/{company_id}/suspend", web::post().to(suspend))
        .route(
            "/companies/{company_id}/reactivate",
            web::post().to(reactivate),
        )
        .route(
            "/companies/{company_id}/delete",
            web::get().to(confirm_delete),
        )
        .route("/companies/{company_id}/delete", web::post().to(delete))
        .route("/companies/{company_id}/users", web::post().to(add_user))
        .route(
            "/companies/{company_id}/users/{user_id}/remove",
            web::get().to(confirm_remove_user),
        )
        .route(
            "/companies/{company_id}/users/{user_id}/remove",
            web::post().to(remove_user),
        );
}

/// Catalogue key of a company status.
pub fn status_key(status: &str) -> &'static str {
    if status == STATUS_SUSPENDED {
        "company_status.suspended"
    } else {
        "company_status.active"
    }
}

/// A company as the list shows it.
pub struct CompanyRow {
    pub company_id: String,
    pub name: String,
    pub status_key: &'static str,
    pub suspended: bool,
    pub created_at: i64,
}

impl From<company::Model> for CompanyRow {
    fn from(c: company::Model) -> Self {
        Self {
            status_key: status_key(&c.status),
            suspended: c.status == STATUS_SUSPENDED,
            company_id: c.company_id,
            name: c.name,
            created_at: c.created_at,
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/console/companies.html")]
struct CompaniesTemplate {
    ctx: Page,
    search: String,
    companies: Vec<CompanyRow>,
    /// More than the page shows: refine the search.
    truncated: bool,
    form_company_id: String,
    form_name: String,
    errors: FieldErrors,
}

/// Companies the list shows at most.
const LIST_LIMIT: u64 = 200;

#[derive(Debug, Deserialize)]
struct ListQuery {
    search: Option<String>,
}

async fn list_page(
    op: &OperatorSession,
    search: String,
    form_company_id: String,
    form_name: String,
    errors: FieldErrors,
) -> Result<CompaniesTemplate, PageError> {
    let mut rows = op
        .tenants()
        .list_companies(None, LIST_LIMIT + 1, Some(search.as_str()))
        .await?;
    let truncated = rows.len() as u64 > LIST_LIMIT;
    rows.truncate(LIST_LIMIT as usize);
    Ok(CompaniesTemplate {
        ctx: op.page("companies.title"),
        search,
        companies: rows.into_iter().map(CompanyRow::from).collect(),
        truncated,
        form_company_id,
        form_name,
        errors,
    })
}

async fn list(op: OperatorSession, q: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let search = q.search.clone().unwrap_or_default();
    let tpl = list_page(
        &op,
        search,
        String::new(),
        String::new(),
        FieldErrors::new(),
    )
    .await?;
    render(&tpl)
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    #[serde(default)]
    company_id: String,
    #[serde(default)]
    name: String,
}

async fn create(
    op: OperatorSession,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, PageError> {
    let CreateForm { company_id, name } = form.into_inner();
    let input = CompanyIn {
        company_id: Some(company_id.trim().to_owned()).filter(|s| !s.is_empty()),
        name: name.clone(),
        ..CompanyIn::default()
    };
    match op.tenants().create_company(&op.actor(), input).await {
        Ok(c) => Ok(redirect_with_flash(
            &format!("/console/companies/{}", c.company_id),
            "flash.company_created",
        )),
        Err(e) => {
            let errors = FieldErrors::from_tenant(op.lang, e)?;
            let tpl = list_page(&op, String::new(), company_id, name, errors).await?;
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl)
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/console/company.html")]
struct CompanyTemplate {
    ctx: Page,
    company: CompanyRow,
    environment_key: &'static str,
    stripe_enabled: bool,
    /// The Stripe connection's state (issue 17) and its sentence; `None` before the first check.
    stripe_connection: Option<(String, String)>,
    callback_url: String,
    users: Vec<UserRow>,
    form_email: String,
    form_role: String,
    errors: FieldErrors,
    invitation_url: Option<String>,
    invited_email: String,
}

async fn company_page(
    op: &OperatorSession,
    company_id: &str,
    form_email: String,
    form_role: String,
    errors: FieldErrors,
    invitation: Option<(String, String)>,
) -> Result<CompanyTemplate, PageError> {
    let c = op.tenants().company(company_id).await?;
    let out = op.tenants().company_out(&c);
    let users = domain::list_users(op.db(), c.id)
        .await?
        .into_iter()
        .map(UserRow::from)
        .collect();
    let (invitation_url, invited_email) = match invitation {
        Some((url, email)) => (Some(url), email),
        None => (None, String::new()),
    };
    let mut ctx = op.page("company.title");
    ctx.title = c.name.clone();
    Ok(CompanyTemplate {
        ctx,
        environment_key: if c.environment == "live" {
            "environment.live"
        } else {
            "environment.test"
        },
        stripe_enabled: c.stripe_enabled,
        stripe_connection: c.stripe_connection.as_deref().map(|st| {
            (
                st.to_owned(),
                op.lang.t(&format!("connection_state.{st}")).to_owned(),
            )
        }),
        callback_url: out.callback_url,
        company: CompanyRow::from(c),
        users,
        form_email,
        form_role,
        errors,
        invitation_url,
        invited_email,
    })
}

async fn show(op: OperatorSession, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let invitation = op.take_once::<(String, String)>(INVITATION);
    let tpl = company_page(
        &op,
        &path,
        String::new(),
        "admin".into(),
        FieldErrors::new(),
        invitation,
    )
    .await?;
    render(&tpl)
}

async fn set_status(
    op: &OperatorSession,
    company_id: &str,
    status: &str,
    flash: &str,
) -> Result<HttpResponse, PageError> {
    op.tenants()
        .update_company(
            &op.actor(),
            company_id,
            CompanyPatch {
                status: Some(status.to_owned()),
                ..CompanyPatch::default()
            },
        )
        .await?;
    Ok(redirect_with_flash(
        &format!("/console/companies/{company_id}"),
        flash,
    ))
}

/// The confirmation page's form.
#[derive(Debug, Default, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

/// The confirmation page of suspending company `company_id`.
async fn suspend_page(op: &OperatorSession, company_id: &str) -> Result<HttpResponse, PageError> {
    let c = op.tenants().company(company_id).await?;
    render(&ConfirmTemplate {
        ctx: op.page("company.suspend_title"),
        warning: op.lang.format(
            "company.suspend_warning",
            &[c.name.as_str(), c.company_id.as_str()],
        ),
        details: vec![op.lang.t("company.suspend_hint").to_owned()],
        action: format!("/console/companies/{}/suspend", c.company_id),
        hidden: Vec::new(),
        submit: op.lang.t("company.suspend").to_owned(),
        cancel_href: format!("/console/companies/{}", c.company_id),
        error: None,
    })
}

async fn confirm_suspend(
    op: OperatorSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    suspend_page(&op, &path).await
}

async fn suspend(
    op: OperatorSession,
    path: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, PageError> {
    if !confirmed(&form.confirm) {
        // One click never suspends: the confirmation page first.
        return suspend_page(&op, &path).await;
    }
    set_status(&op, &path, STATUS_SUSPENDED, "flash.company_suspended").await
}

/// The confirmation page of reactivating company `company_id`.
async fn reactivate_page(
    op: &OperatorSession,
    company_id: &str,
) -> Result<HttpResponse, PageError> {
    let c = op.tenants().company(company_id).await?;
    render(&ConfirmTemplate {
        ctx: op.page("company.reactivate_title"),
        warning: op.lang.format(
            "company.reactivate_warning",
            &[c.name.as_str(), c.company_id.as_str()],
        ),
        details: Vec::new(),
        action: format!("/console/companies/{}/reactivate", c.company_id),
        hidden: Vec::new(),
        submit: op.lang.t("company.reactivate").to_owned(),
        cancel_href: format!("/console/companies/{}", c.company_id),
        error: None,
    })
}

async fn reactivate(
    op: OperatorSession,
    path: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, PageError> {
    if !confirmed(&form.confirm) {
        // One click never reactivates: the confirmation page first.
        return reactivate_page(&op, &path).await;
    }
    set_status(&op, &path, STATUS_ACTIVE, "flash.company_reactivated").await
}

#[derive(Template)]
#[template(path = "backoffice/console/company_delete.html")]
struct DeleteTemplate {
    ctx: Page,
    company: CompanyRow,
    user_count: String,
    form_confirm: String,
    errors: FieldErrors,
}

async fn delete_page(
    op: &OperatorSession,
    company_id: &str,
    form_confirm: String,
    errors: FieldErrors,
) -> Result<DeleteTemplate, PageError> {
    let c = op.tenants().company(company_id).await?;
    let user_count = domain::list_users(op.db(), c.id).await?.len().to_string();
    Ok(DeleteTemplate {
        ctx: op.page("company_delete.title"),
        company: CompanyRow::from(c),
        user_count,
        form_confirm,
        errors,
    })
}

async fn confirm_delete(
    op: OperatorSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let tpl = delete_page(&op, &path, String::new(), FieldErrors::new()).await?;
    render(&tpl)
}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

async fn delete(
    op: OperatorSession,
    path: web::Path<String>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, PageError> {
    let company_id = path.into_inner();
    // The confirmation: the company's id typed again.
    if form.confirm.trim() != company_id {
        let mut errors = FieldErrors::new();
        errors.add(
            op.lang,
            "confirm",
            "confirm_mismatch",
            "type the company id to confirm",
        );
        let tpl = delete_page(&op, &company_id, form.confirm.clone(), errors).await?;
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl);
    }
    op.tenants()
        .delete_company(&op.actor(), &company_id)
        .await?;
    Ok(redirect_with_flash(
        "/console/companies",
        "flash.company_deleted",
    ))
}

#[derive(Debug, Deserialize)]
struct UserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    /// Empty: the user gets an invitation link instead.
    #[serde(default)]
    password: String,
}

async fn add_user(
    op: OperatorSession,
    path: web::Path<String>,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, PageError> {
    let company_id = path.into_inner();
    let c = op.tenants().company(&company_id).await?;
    let UserForm {
        email,
        role,
        password,
    } = form.into_inner();
    let created = domain::create_user(
        op.db(),
        op.tenants().public_base_url(),
        &op.actor(),
        c.id,
        NewUser {
            email: email.clone(),
            role: role.clone(),
            password: (!password.is_empty()).then(|| SecretString::from(password)),
        },
    )
    .await;
    match created {
        Ok(created) => match created.invitation {
            // The link is shown once, by the GET after the redirect (a reload adds no one).
            Some(inv) => {
                op.put_once(INVITATION, &(inv.url, created.user.email));
                Ok(redirect(&format!(
                    "/console/companies/{company_id}#invitation"
                )))
            }
            None => Ok(redirect_with_flash(
                &format!("/console/companies/{company_id}"),
                "flash.user_created",
            )),
        },
        Err(e) => {
            let mut errors = FieldErrors::from_user(op.lang, e)?;
            crate::merchant::users::also_invalid(op.lang, &mut errors, &email, &role);
            let tpl = company_page(&op, &company_id, email, role, errors, None).await?;
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl)
        }
    }
}

/// The confirmation page of removing user `user_id` of company `company_id`.
async fn remove_user_page(
    op: &OperatorSession,
    company_id: &str,
    user_id: &str,
) -> Result<HttpResponse, PageError> {
    let c = op.tenants().company(company_id).await?;
    let user = domain::list_users(op.db(), c.id)
        .await?
        .into_iter()
        .find(|u| u.id == user_id)
        .ok_or(PageError::NotFound)?;
    render(&ConfirmTemplate {
        ctx: op.page("users.remove_title"),
        warning: op
            .lang
            .format("users.remove_warning", &[user.email.as_str()]),
        details: vec![c.name.clone()],
        action: format!(
            "/console/companies/{}/users/{}/remove",
            c.company_id, user.id
        ),
        hidden: Vec::new(),
        submit: op.lang.t("users.remove").to_owned(),
        cancel_href: format!("/console/companies/{}", c.company_id),
        error: None,
    })
}

async fn confirm_remove_user(
    op: OperatorSession,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (company_id, user_id) = path.into_inner();
    remove_user_page(&op, &company_id, &user_id).await
}

async fn remove_user(
    op: OperatorSession,
    path: web::Path<(String, String)>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, PageError> {
    let (company_id, user_id) = path.into_inner();
    if !confirmed(&form.confirm) {
        // One click never removes: the confirmation page first.
        return remove_user_page(&op, &company_id, &user_id).await;
    }
    let c = op.tenants().company(&company_id).await?;
    domain::remove_user(op.db(), &op.actor(), c.id, &user_id).await?;
    Ok(redirect_with_flash(
        &format!("/console/companies/{company_id}"),
        "flash.user_removed",
    ))
}
