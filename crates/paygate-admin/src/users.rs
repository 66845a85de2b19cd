//! Company users: the people of a company who sign in to the back office, and their one-time
//! invitations. The admin API's routes are here, and so are the functions the back office calls,
//! so both surfaces validate, audit and scope alike.
//!
//! Policy: every query takes the company's internal id; a user id of another company is "not
//! found". A user created without a password gets an invitation: a random token shown once (in
//! the returned `invitation_url`), stored only as its SHA-256, valid for 7 days and usable once
//! (claimed by a conditional update, so two tabs cannot both use it). Removing a user deletes
//! their invitations and ends their sessions.

use actix_web::{HttpResponse, web};
use base64::Engine;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use paygate_db::entities::{company_user, user_invitation, web_session};
use paygate_db::{Tenant, new_id, now_ms};
use paygate_web::{ApiError, rfc3339_ms};

use crate::error_body::ErrorBody;
use crate::operators::{OperatorError, hash_password, normalize_email};
use crate::{AdminState, List, OperatorPrincipal};

/// How long an invitation link works.
pub const INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Role of a company user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May change the company's configuration and invite users.
    Admin,
    /// Sees everything, changes nothing.
    Viewer,
}

impl Role {
    /// `"admin"` or `"viewer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
    /// Parses `"admin"` / `"viewer"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Why a user could not be added, found, removed or activated. `field()` names the input at
/// fault, for messages next to the field.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("email: must be an e-mail address")]
    InvalidEmail,
    #[error("role: must be \"admin\" or \"viewer\"")]
    InvalidRole,
    #[error("password: must be at least 12 characters")]
    WeakPassword,
    #[error("password_confirm: the two passwords differ")]
    PasswordMismatch,
    #[error("email: the company already has a user with this e-mail")]
    Exists,
    #[error("no such user")]
    NotFound,
    #[error("the invitation link is invalid, already used or expired")]
    InvitationInvalid,
    #[error("database error")]
    Db(#[from] DbErr),
    #[error("password hashing failed")]
    Hash,
}

impl UserError {
    /// The stable code (`invalid_email`, `user_exists` …).
    pub fn code(&self) -> &'static str {
        match self {
            UserError::InvalidEmail => "invalid_email",
            UserError::InvalidRole => "invalid_role",
            UserError::WeakPassword => "weak_password",
            UserError::PasswordMismatch => "password_mismatch",
            UserError::Exists => "user_exists",
            UserError::NotFound => "user_not_found",
            UserError::InvitationInvalid => "invitation_invalid",
            UserError::Db(_) | UserError::Hash => "internal_error",
        }
    }
    /// The input field the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            UserError::InvalidEmail | UserError::Exists => Some("email"),
            UserError::InvalidRole => Some("role"),
            UserError::WeakPassword => Some("password"),
            UserError::PasswordMismatch => Some("password_confirm"),
            _ => None,
        }
    }
}

impl From<OperatorError> for UserError {
    fn from(e: OperatorError) -> Self {
        match e {
            OperatorError::InvalidEmail => UserError::InvalidEmail,
            OperatorError::WeakPassword => UserError::WeakPassword,
            OperatorError::Exists => UserError::Exists,
            OperatorError::Db(e) => UserError::Db(e),
            OperatorError::Hash => UserError::Hash,
        }
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        let code = e.code();
        let field = e.field();
        match e {
            UserError::Db(e) => ApiError::from(e),
            UserError::Hash => ApiError::internal(e),
            UserError::NotFound => ApiError::not_found(code, e.to_string()),
            UserError::InvitationInvalid => ApiError::not_found(code, e.to_string()),
            UserError::Exists => {
                ApiError::conflict(code, e.to_string()).with_field(field.unwrap_or("email"))
            }
            _ => {
                let err = ApiError::unprocessable(code, e.to_string());
                match field {
                    Some(f) => err.with_field(f),
                    None => err,
                }
            }
        }
    }
}

/// A user to add.
pub struct NewUser {
    pub email: String,
    pub role: String,
    /// `None`: the user gets an invitation link instead.
    pub password: Option<SecretString>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A one-time invitation link, as shown once to whoever created it.
#[derive(Clone)]
pub struct Invitation {
    pub url: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A user just added, with the invitation when no password was given.
#[derive(Debug)]
pub struct CreatedUser {
    pub user: company_user::Model,
    pub invitation: Option<Invitation>,
}

/// SHA-256 (hex) of an invitation token.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn check_password(password: &SecretString) -> Result<(), UserError> {
    if password.expose_secret().chars().count() < MIN_PASSWORD_CHARS {
        Err(UserError::WeakPassword)
    } else {
        Ok(())
    }
}

/// Adds a user to a company (`actor` goes to the audit log). Without a password the user gets
/// an invitation link under `public_base_url`.
pub async fn create_user(
    db: &sea_orm::DatabaseConnection,
    public_base_url: &str,
    actor: &str,
    company_pk: i64,
    input: NewUser,
) -> Result<CreatedUser, UserError> {
    let email = normalize_email(&input.email)?;
    let role = Role::parse(&input.role).ok_or(UserError::InvalidRole)?;
    let hash = match input.password {
        Some(p) => {
            check_password(&p)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    let now = now_ms();
    let txn = db.begin().await?;
    let taken = Tenant::new(company_pk)
        .find::<company_user::Entity>()
        .filter(company_user::Column::Email.eq(&email))
        .one(&txn)
        .await?
        .is_some();
    if taken {
        return Err(UserError::Exists);
    }
    let invited = hash.is_none();
    let user = company_user::ActiveModel {
        id: Set(new_id("usr")),
        company_pk: Set(company_pk),
        email: Set(email),
        password_hash: Set(hash),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now),
        last_sign_in_at: Set(None),
        disabled: Set(false),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        if paygate_db::is_unique_violation(&e) {
            UserError::Exists
        } else {
            e.into()
        }
    })?;
    let invitation = if invited {
        Some(insert_invitation(&txn, public_base_url, &user, now).await?)
    } else {
        None
    };
    paygate_tenant::audit::record(
        &txn,
        actor,
        Some(company_pk),
        "user.created",
        &user.id,
        serde_json::json!({"email": user.email, "role": user.role, "invited": invited}),
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedUser { user, invitation })
}

async fn insert_invitation<C: ConnectionTrait>(
    db: &C,
    public_base_url: &str,
    user: &company_user::Model,
    now: i64,
) -> Result<Invitation, DbErr> {
    let token = new_token();
    let expires_at = now + INVITATION_TTL_MS;
    user_invitation::ActiveModel {
        id: Set(new_id("inv")),
        token_hash: Set(token_hash(&token)),
        user_id: Set(user.id.clone()),
        company_pk: Set(user.company_pk),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(Invitation {
        url: format!(
            "{}/invitations/{token}",
            public_base_url.trim_end_matches('/')
        ),
        expires_at,
    })
}

/// The users of a company, oldest first.
pub async fn list_users<C: ConnectionTrait>(
    db: &C,
    company_pk: i64,
) -> Result<Vec<company_user::Model>, DbErr> {
    Tenant::new(company_pk)
        .find::<company_user::Entity>()
        .order_by_asc(company_user::Column::CreatedAt)
        .order_by_asc(company_user::Column::Id)
        .all(db)
        .await
}

/// One user of a company.
pub async fn find_user<C: ConnectionTrait>(
    db: &C,
    company_pk: i64,
    user_id: &str,
) -> Result<Option<company_user::Model>, DbErr> {
    Tenant::new(company_pk)
        .find::<company_user::Entity>()
        .filter(company_user::Column::Id.eq(user_id))
        .one(db)
        .await
}

/// Every enabled user with this e-mail, across companies (for sign-in), oldest first.
pub async fn users_by_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<Vec<company_user::Model>, DbErr> {
    let Ok(email) = normalize_email(email) else {
        return Ok(Vec::new());
    };
    company_user::Entity::find()
        .filter(company_user::Column::Email.eq(email))
        .filter(company_user::Column::Disabled.eq(false))
        .order_by_asc(company_user::Column::CreatedAt)
        .all(db)
        .await
}

/// Removes a user of a company: their invitations go with them and their sessions end.
pub async fn remove_user(
    db: &sea_orm::DatabaseConnection,
    actor: &str,
    company_pk: i64,
    user_id: &str,
) -> Result<company_user::Model, UserError> {
    let txn = db.begin().await?;
    let user = find_user(&txn, company_pk, user_id)
        .await?
        .ok_or(UserError::NotFound)?;
    web_session::Entity::delete_many()
        .filter(web_session::Column::PrincipalKind.eq("user"))
        .filter(web_session::Column::PrincipalId.eq(&user.id))
        .exec(&txn)
        .await?;
    user_invitation::Entity::delete_many()
        .filter(user_invitation::Column::UserId.eq(&user.id))
        .exec(&txn)
        .await?;
    company_user::Entity::delete_by_id(user.id.clone())
        .exec(&txn)
        .await?;
    paygate_tenant::audit::record(
        &txn,
        actor,
        Some(company_pk),
        "user.removed",
        &user.id,
        serde_json::json!({"email": user.email}),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// The user an unused, unexpired invitation token is for.
pub async fn invitation_user<C: ConnectionTrait>(
    db: &C,
    token: &str,
) -> Result<Option<company_user::Model>, DbErr> {
    let Some(inv) = user_invitation::Entity::find()
        .filter(user_invitation::Column::TokenHash.eq(token_hash(token)))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if inv.used_at.is_some() || inv.expires_at <= now_ms() {
        return Ok(None);
    }
    company_user::Entity::find_by_id(inv.user_id)
        .filter(company_user::Column::Disabled.eq(false))
        .one(db)
        .await
}

/// Uses an invitation: sets the user's password; the token never works again.
pub async fn accept_invitation(
    db: &sea_orm::DatabaseConnection,
    token: &str,
    password: SecretString,
    password_confirm: &str,
) -> Result<company_user::Model, UserError> {
    check_password(&password)?;
    if password.expose_secret() != password_confirm {
        return Err(UserError::PasswordMismatch);
    }
    if invitation_user(db, token).await?.is_none() {
        return Err(UserError::InvitationInvalid);
    }
    let hash = hash_password(password).await?;
    let now = now_ms();
    let txn = db.begin().await?;
    let inv = user_invitation::Entity::find()
        .filter(user_invitation::Column::TokenHash.eq(token_hash(token)))
        .one(&txn)
        .await?
        .ok_or(UserError::InvitationInvalid)?;
    // The claim: only one request can move `used_at` from NULL.
    let claimed = user_invitation::Entity::update_many()
        .col_expr(
            user_invitation::Column::UsedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(user_invitation::Column::Id.eq(&inv.id))
        .filter(user_invitation::Column::UsedAt.is_null())
        .filter(user_invitation::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Err(UserError::InvitationInvalid);
    }
    let user = company_user::Entity::find_by_id(inv.user_id.clone())
        .one(&txn)
        .await?
        .ok_or(UserError::InvitationInvalid)?;
    let mut am = user.into_active_model();
    am.password_hash = Set(Some(hash));
    let user = am.update(&txn).await?;
    paygate_tenant::audit::record(
        &txn,
        &format!("user:{}", user.email),
        Some(user.company_pk),
        "user.invitation_accepted",
        &user.id,
        serde_json::json!({"email": user.email}),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Records a successful sign-in.
pub async fn touch_sign_in<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<(), DbErr> {
    company_user::Entity::update_many()
        .col_expr(
            company_user::Column::LastSignInAt,
            sea_orm::sea_query::Expr::value(now_ms()),
        )
        .filter(company_user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

// ---- the admin API ---------------------------------------------------------------------------

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

/// `active`, `invited` or `disabled`.
pub fn user_status(m: &company_user::Model) -> &'static str {
    if m.disabled {
        "disabled"
    } else if m.password_hash.is_none() {
        "invited"
    } else {
        "active"
    }
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

/// Registers `/companies/{companyID}/users`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/companies/{company_id}/users", web::get().to(list))
        .route("/companies/{company_id}/users", web::post().to(create))
        .route(
            "/companies/{company_id}/users/{user_id}",
            web::delete().to(delete),
        );
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
