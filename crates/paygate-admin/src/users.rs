//! The admin API's company users: `GET, POST /admin/v1/companies/{companyID}/users`,
//! `DELETE …/users/{userID}`. The rules (roles, invitations, passwords, scoping, the audit log)
//! are [`paygate_tenant::users`]; this file is only their HTTP form.

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use paygate_db::entities::company_user;
use paygate_tenant::users::{NewUser, Role, create_user, list_users, remove_user, user_status};
use paygate_web::{ApiError, rfc3339_ms};

use crate::error_body::ErrorBody;
use crate::{AdminState, List, OperatorPrincipal};

/// `POST /admin/v1/companies/{companyID}/users`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    email: String,
    #[schema(value_type = Role)]
    role: String,
    /// At least 12 characters; absent: the answer holds a one-time invitation link instead.
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretString>,
}

impl std::fmt::Debug for UserIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserIn")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserOut {
    id: String,
    email: String,
    #[schema(value_type = Role)]
    role: String,
    /// `active`, `invited` (no password yet) or `disabled`.
    status: &'static str,
    created_at: String,
    last_sign_in_at: Option<String>,
    /// Only in the answer to the creation of a user without a password: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    invitation_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invitation_expires_at: Option<String>,
}

impl From<company_user::Model> for UserOut {
    fn from(m: company_user::Model) -> Self {
        Self {
            status: user_status(&m),
            id: m.id,
            email: m.email,
            role: m.role,
            created_at: rfc3339_ms(m.created_at),
            last_sign_in_at: m.last_sign_in_at.map(rfc3339_ms),
            invitation_url: None,
            invitation_expires_at: None,
        }
    }
}

/// The company's back-office users (never their passwords).
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/users",
    tag = "users",
    params(("company_id" = String, Path, description = "The company")),
    responses((status = 200, description = "Every user, oldest first", body = List<UserOut>)),
)]
pub(crate) async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let data: Vec<UserOut> = list_users(&state.db, company.id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(List { data }))
}

/// Adds a back-office user.
///
/// Without a password the answer holds a one-time `invitation_url`, valid 7 days.
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/users",
    tag = "users",
    params(("company_id" = String, Path, description = "The company")),
    request_body = UserIn,
    responses(
        (status = 201, description = "The user", body = UserOut),
        (status = 409, description = "The company has a user with this e-mail (`user_exists`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`invalid_email`, `invalid_role`, `weak_password`)", body = ErrorBody),
    ),
)]
pub(crate) async fn create(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
    body: web::Json<UserIn>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let UserIn {
        email,
        role,
        password,
    } = body.into_inner();
    let created = create_user(
        &state.db,
        state.tenants.public_base_url(),
        &op.actor(),
        company.id,
        NewUser {
            email,
            role,
            password,
        },
    )
    .await?;
    let mut out = UserOut::from(created.user);
    if let Some(inv) = created.invitation {
        out.invitation_url = Some(inv.url);
        out.invitation_expires_at = Some(rfc3339_ms(inv.expires_at));
    }
    Ok(HttpResponse::Created().json(out))
}

/// Removes a back-office user (their sessions end).
#[utoipa::path(
    delete,
    path = "/admin/v1/companies/{company_id}/users/{user_id}",
    tag = "users",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("user_id" = String, Path, description = "The user (`usr_…`)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such user (`user_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn delete(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, user_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    remove_user(&state.db, &op.actor(), company.id, &user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
