//! Company users: the people of a company who sign in to the back office, and their one-time
//! invitations. The admin API and the back office both call these functions, so both surfaces
//! validate, audit and scope alike.
//!
//! Policy: every query of a company's users starts from its [`Tenant`]; a user id of another
//! company is "not found". A user created without a password gets an invitation: a random token
//! shown once (in the returned [`Invitation::url`]), stored only as its SHA-256, valid for 7 days
//! and usable once (claimed by a conditional update, so two tabs cannot both use it). Removing a
//! user deletes their invitations and ends their sessions. E-mails and passwords follow the
//! operators' rules ([`crate::operators`]).

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
use paygate_web::ApiError;

use crate::audit;
use crate::operators::{OperatorError, check_password, hash_password, normalize_email};

pub use crate::operators::MIN_PASSWORD_CHARS;

/// How long an invitation link works.
pub const INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

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
            // Operators' own outcomes; the user functions never meet them.
            OperatorError::NotFound | OperatorError::LastActive => UserError::NotFound,
            OperatorError::Db(e) => UserError::Db(e),
            OperatorError::Hash => UserError::Hash,
        }
    }
}

/// How the admin API answers: 404 `user_not_found` / `invitation_invalid`, 409 `user_exists`,
/// 422 naming the field for the other input errors, 500 otherwise.
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

/// `active`, `invited` (no password yet) or `disabled`.
pub fn user_status(m: &company_user::Model) -> &'static str {
    if m.disabled {
        "disabled"
    } else if m.password_hash.is_none() {
        "invited"
    } else {
        "active"
    }
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

/// Adds a user to a company (`actor` goes to the audit log as `user.created`). Without a
/// password the user gets an invitation link under `public_base_url`.
pub async fn create_user(
    db: &sea_orm::DatabaseConnection,
    public_base_url: &str,
    actor: &str,
    company_pk: i64,
    input: NewUser,
) -> Result<CreatedUser, UserError> {
    let tenant = Tenant::new(company_pk);
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
    let taken = tenant
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
        company_pk: Set(tenant.company_pk()),
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
    audit::record(
        &txn,
        actor,
        Some(tenant.company_pk()),
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

/// Removes a user of a company (audited as `user.removed` by `actor`): their invitations go with
/// them and their sessions end.
pub async fn remove_user(
    db: &sea_orm::DatabaseConnection,
    actor: &str,
    company_pk: i64,
    user_id: &str,
) -> Result<company_user::Model, UserError> {
    let tenant = Tenant::new(company_pk);
    let txn = db.begin().await?;
    let user = find_user(&txn, company_pk, user_id)
        .await?
        .ok_or(UserError::NotFound)?;
    // Every session of this principal, whatever company it names: removal must end them all.
    web_session::Entity::delete_many()
        .filter(web_session::Column::PrincipalKind.eq("user"))
        .filter(web_session::Column::PrincipalId.eq(&user.id))
        .exec(&txn)
        .await?;
    tenant
        .delete::<user_invitation::Entity>()
        .filter(user_invitation::Column::UserId.eq(&user.id))
        .exec(&txn)
        .await?;
    tenant
        .delete::<company_user::Entity>()
        .filter(company_user::Column::Id.eq(&user.id))
        .exec(&txn)
        .await?;
    audit::record(
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

/// The unused, unexpired invitation a token is for.
async fn open_invitation<C: ConnectionTrait>(
    db: &C,
    token: &str,
) -> Result<Option<user_invitation::Model>, DbErr> {
    // By the token's hash: the token is the only thing its holder knows, not the company.
    let inv = user_invitation::Entity::find()
        .filter(user_invitation::Column::TokenHash.eq(token_hash(token)))
        .one(db)
        .await?;
    Ok(inv.filter(|inv| inv.used_at.is_none() && inv.expires_at > now_ms()))
}

/// The user an unused, unexpired invitation token is for.
pub async fn invitation_user<C: ConnectionTrait>(
    db: &C,
    token: &str,
) -> Result<Option<company_user::Model>, DbErr> {
    let Some(inv) = open_invitation(db, token).await? else {
        return Ok(None);
    };
    Tenant::new(inv.company_pk)
        .find::<company_user::Entity>()
        .filter(company_user::Column::Id.eq(inv.user_id))
        .filter(company_user::Column::Disabled.eq(false))
        .one(db)
        .await
}

/// Uses an invitation: sets the user's password (audited as `user.invitation_accepted` by the
/// user); the token never works again.
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
    let tenant = Tenant::new(inv.company_pk);
    // The claim: only one request can move `used_at` from NULL.
    let claimed = tenant
        .update::<user_invitation::Entity>()
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
    let user = tenant
        .find::<company_user::Entity>()
        .filter(company_user::Column::Id.eq(&inv.user_id))
        .one(&txn)
        .await?
        .ok_or(UserError::InvitationInvalid)?;
    let mut am = user.into_active_model();
    am.password_hash = Set(Some(hash));
    let user = am.update(&txn).await?;
    audit::record(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::verify_password;
    use crate::{test_company, test_db};

    const BASE: &str = "https://pay.example/";

    fn new_user(email: &str, role: &str, password: Option<&str>) -> NewUser {
        NewUser {
            email: email.to_owned(),
            role: role.to_owned(),
            password: password.map(SecretString::from),
        }
    }

    fn token_of(inv: &Invitation) -> &str {
        inv.url
            .strip_prefix("https://pay.example/invitations/")
            .expect("the link is under the public base URL")
    }

    #[test]
    fn roles_parse_and_print() {
        assert_eq!(Role::parse(" admin "), Some(Role::Admin));
        assert_eq!(Role::parse("viewer").map(Role::as_str), Some("viewer"));
        assert_eq!(Role::parse("owner"), None);
    }

    #[tokio::test]
    async fn user_with_a_password_is_active_and_has_no_invitation() {
        let db = test_db().await;
        let c = test_company(&db, "acme").await;
        let created = create_user(
            &db,
            BASE,
            "operator:ops@example.com",
            c,
            new_user(" Ann@Example.com", "admin", Some("correct horse battery")),
        )
        .await
        .expect("created");
        assert!(created.invitation.is_none());
        assert_eq!(created.user.email, "ann@example.com");
        assert_eq!(user_status(&created.user), "active");
        assert!(
            verify_password(
                created.user.password_hash.clone(),
                "correct horse battery".to_owned()
            )
            .await
        );
        assert_eq!(list_users(&db, c).await.expect("db").len(), 1);
    }

    #[tokio::test]
    async fn invalid_users_name_the_field() {
        let db = test_db().await;
        let c = test_company(&db, "acme").await;
        let cases = [
            (new_user("not-an-email", "admin", None), Some("email")),
            (new_user("a@example.com", "owner", None), Some("role")),
            (
                new_user("a@example.com", "admin", Some("short")),
                Some("password"),
            ),
        ];
        for (input, field) in cases {
            let err = create_user(&db, BASE, "t", c, input)
                .await
                .expect_err("refused");
            assert_eq!(err.field(), field);
        }
        create_user(&db, BASE, "t", c, new_user("a@example.com", "viewer", None))
            .await
            .expect("created");
        let dup = create_user(&db, BASE, "t", c, new_user("A@example.com", "admin", None)).await;
        assert!(matches!(dup, Err(UserError::Exists)));
        // The same e-mail in another company is another user.
        let other = test_company(&db, "other").await;
        create_user(
            &db,
            BASE,
            "t",
            other,
            new_user("a@example.com", "admin", None),
        )
        .await
        .expect("created in the other company");
        assert_eq!(
            users_by_email(&db, "a@example.com")
                .await
                .expect("db")
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn invitation_works_once() {
        let db = test_db().await;
        let c = test_company(&db, "acme").await;
        let created = create_user(&db, BASE, "t", c, new_user("b@example.com", "viewer", None))
            .await
            .expect("created");
        assert_eq!(user_status(&created.user), "invited");
        let inv = created.invitation.expect("an invitation");
        let token = token_of(&inv);
        assert_eq!(
            invitation_user(&db, token).await.expect("db").map(|u| u.id),
            Some(created.user.id.clone())
        );
        let mismatch = accept_invitation(
            &db,
            token,
            "correct horse battery".into(),
            "correct horse battery!",
        )
        .await;
        assert!(matches!(mismatch, Err(UserError::PasswordMismatch)));
        let user = accept_invitation(
            &db,
            token,
            "correct horse battery".into(),
            "correct horse battery",
        )
        .await
        .expect("accepted");
        assert_eq!(user_status(&user), "active");
        assert!(invitation_user(&db, token).await.expect("db").is_none());
        let again = accept_invitation(
            &db,
            token,
            "another good password".into(),
            "another good password",
        )
        .await;
        assert!(matches!(again, Err(UserError::InvitationInvalid)));
    }

    #[tokio::test]
    async fn another_companys_user_is_not_found_and_removal_ends_invitations() {
        let db = test_db().await;
        let c = test_company(&db, "acme").await;
        let other = test_company(&db, "other").await;
        let created = create_user(&db, BASE, "t", c, new_user("c@example.com", "viewer", None))
            .await
            .expect("created");
        let token = token_of(created.invitation.as_ref().expect("invited")).to_owned();
        assert!(
            find_user(&db, other, &created.user.id)
                .await
                .expect("db")
                .is_none()
        );
        assert!(matches!(
            remove_user(&db, "t", other, &created.user.id).await,
            Err(UserError::NotFound)
        ));
        remove_user(&db, "t", c, &created.user.id)
            .await
            .expect("removed");
        assert!(list_users(&db, c).await.expect("db").is_empty());
        assert!(invitation_user(&db, &token).await.expect("db").is_none());
    }
}
