//! `/app/users`: the company's back-office users. Everyone sees the list; company admins invite
//! (a one-time link, shown once by the GET after the invitation's redirect) and remove users
//! (after a confirmation page naming them).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use paygate_db::entities::company_user;
use paygate_tenant::users::{self as domain, NewUser, Role};

use crate::MerchantSession;
use crate::page::{
    ConfirmTemplate, FieldErrors, Page, PageError, confirmed, redirect, redirect_with_flash,
    render, render_status,
};

/// The [`crate::oneshot`] slot of an invitation just made: (link, e-mail address).
const INVITATION: &str = "oneshot:users.invitation";

/// Registers `/app/users…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list))
        .route("/users", web::post().to(invite))
        .route("/users/{user_id}/remove", web::get().to(confirm_remove))
        .route("/users/{user_id}/remove", web::post().to(remove));
}

/// Catalogue key of a role's name.
pub fn role_key(role: Role) -> &'static str {
    match role {
        Role::Admin => "roles.admin",
        Role::Viewer => "roles.viewer",
    }
}

/// Catalogue key of a user's status.
pub fn status_key(m: &company_user::Model) -> &'static str {
    match domain::user_status(m) {
        "disabled" => "user_status.disabled",
        "invited" => "user_status.invited",
        _ => "user_status.active",
    }
}

/// A user as the list shows it.
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role_key: &'static str,
    pub status_key: &'static str,
    pub last_sign_in_at: Option<i64>,
}

impl From<company_user::Model> for UserRow {
    fn from(m: company_user::Model) -> Self {
        Self {
            role_key: role_key(Role::parse(&m.role).unwrap_or(Role::Viewer)),
            status_key: status_key(&m),
            id: m.id,
            email: m.email,
            last_sign_in_at: m.last_sign_in_at,
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/app/users.html")]
struct UsersTemplate {
    ctx: Page,
    users: Vec<UserRow>,
    is_admin: bool,
    me: String,
    form_email: String,
    form_role: String,
    errors: FieldErrors,
    invitation_url: Option<String>,
    invited_email: String,
}

async fn page(
    s: &MerchantSession,
    form_email: String,
    form_role: String,
    errors: FieldErrors,
    invitation: Option<(String, String)>,
) -> Result<UsersTemplate, PageError> {
    let users = domain::list_users(s.db(), s.company_pk)
        .await?
        .into_iter()
        .map(UserRow::from)
        .collect();
    let (invitation_url, invited_email) = match invitation {
        Some((url, email)) => (Some(url), email),
        None => (None, String::new()),
    };
    Ok(UsersTemplate {
        ctx: s.page("users.title"),
        users,
        is_admin: s.is_admin(),
        me: s.user_id.clone(),
        form_email,
        form_role,
        errors,
        invitation_url,
        invited_email,
    })
}

async fn list(s: MerchantSession) -> Result<HttpResponse, PageError> {
    let invitation = s.take_once::<(String, String)>(INVITATION);
    let tpl = page(
        &s,
        String::new(),
        "viewer".into(),
        FieldErrors::new(),
        invitation,
    )
    .await?;
    render(&tpl)
}

/// The invitation form (`csrf` is checked by the guard).
#[derive(Debug, Deserialize)]
struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Adds what else is wrong with an invitation form (the domain stops at the first error), so
/// that every error shows at once.
pub fn also_invalid(lang: crate::Lang, errors: &mut FieldErrors, email: &str, role: &str) {
    if !errors.has("email") && paygate_tenant::operators::normalize_email(email).is_err() {
        errors.add(
            lang,
            "email",
            "invalid_email",
            "Enter an e-mail address like name@example.com.",
        );
    }
    if !errors.has("role") && Role::parse(role).is_none() {
        errors.add(lang, "role", "invalid_role", "Choose Admin or Viewer.");
    }
}

async fn invite(
    s: MerchantSession,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let InviteForm { email, role } = form.into_inner();
    let created = domain::create_user(
        s.db(),
        s.tenants().public_base_url(),
        &s.actor(),
        s.company_pk,
        NewUser {
            email: email.clone(),
            role: role.clone(),
            password: None,
        },
    )
    .await;
    match created {
        Ok(c) => {
            // Shown once by the GET after the redirect: a reload invites nobody again.
            if let Some(i) = c.invitation {
                s.put_once(INVITATION, &(i.url, c.user.email.clone()));
            }
            Ok(redirect("/app/users#invitation"))
        }
        Err(e) => {
            let mut errors = FieldErrors::from_user(s.lang, e)?;
            also_invalid(s.lang, &mut errors, &email, &role);
            let tpl = page(&s, email, role, errors, None).await?;
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl)
        }
    }
}

/// The confirmation page of removing user `user_id` (of the company, else 404).
async fn confirm_page(s: &MerchantSession, user_id: &str) -> Result<HttpResponse, PageError> {
    let user = domain::list_users(s.db(), s.company_pk)
        .await?
        .into_iter()
        .find(|u| u.id == user_id)
        .ok_or(PageError::NotFound)?;
    render(&ConfirmTemplate {
        ctx: s.page("users.remove_title"),
        warning: s
            .lang
            .format("users.remove_warning", &[user.email.as_str()]),
        details: Vec::new(),
        action: format!("/app/users/{}/remove", user.id),
        hidden: Vec::new(),
        submit: s.lang.t("users.remove").to_owned(),
        cancel_href: "/app/users".to_owned(),
        error: None,
    })
}

async fn confirm_remove(
    s: MerchantSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    if *path == s.user_id {
        return Ok(redirect_with_flash(
            "/app/users",
            "flash.cannot_remove_self",
        ));
    }
    confirm_page(&s, &path).await
}

/// The confirmation page's form.
#[derive(Debug, Default, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

async fn remove(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let user_id = path.into_inner();
    if user_id == s.user_id {
        return Ok(redirect_with_flash(
            "/app/users",
            "flash.cannot_remove_self",
        ));
    }
    if !confirmed(&form.confirm) {
        // One click never removes: the confirmation page first.
        return confirm_page(&s, &user_id).await;
    }
    // Scoped by the session's company: another company's user is "not found".
    domain::remove_user(s.db(), &s.actor(), s.company_pk, &user_id).await?;
    Ok(redirect_with_flash("/app/users", "flash.user_removed"))
}
