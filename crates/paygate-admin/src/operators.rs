//! Operators: the people who run the installation.

use actix_web::{HttpResponse, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use paygate_db::entities::operator;
use paygate_db::{new_id, now_ms};
use paygate_web::{ApiError, rfc3339_ms};

use crate::error_body::ErrorBody;
use crate::{AdminState, List, OperatorPrincipal};

/// Why an operator could not be added.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("email: must be an e-mail address")]
    InvalidEmail,
    #[error("password: must be at least 12 characters")]
    WeakPassword,
    #[error("an operator with this email already exists")]
    Exists,
    #[error("database error")]
    Db(#[from] DbErr),
    #[error("password hashing failed")]
    Hash,
}

impl From<OperatorError> for ApiError {
    fn from(e: OperatorError) -> Self {
        match e {
            OperatorError::InvalidEmail => {
                ApiError::unprocessable("invalid_email", e.to_string()).with_field("email")
            }
            OperatorError::WeakPassword => {
                ApiError::unprocessable("weak_password", e.to_string()).with_field("password")
            }
            OperatorError::Exists => ApiError::conflict("operator_exists", e.to_string()),
            OperatorError::Db(e) => ApiError::from(e),
            OperatorError::Hash => ApiError::internal(e),
        }
    }
}

/// Trims and lower-cases an e-mail address and checks its shape.
pub fn normalize_email(email: &str) -> Result<String, OperatorError> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 320
        && e.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(e)
    } else {
        Err(OperatorError::InvalidEmail)
    }
}

/// Hashes a password with Argon2id, off the async threads.
pub async fn hash_password(password: SecretString) -> Result<String, OperatorError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| OperatorError::Hash)
    })
    .await
    .map_err(|_| OperatorError::Hash)?
}

/// A throwaway hash verified when the email is unknown, so timing does not tell which emails
/// exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3Yb3bnQJ5bY8xQ1qZ2cN7J3m0a7S7c9oQy8M8dFh2uM";

/// Checks a password against a stored hash (or a dummy one), off the async threads.
pub async fn verify_password(hash: Option<String>, password: String) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    ok && known
}

/// The operator with this email.
pub async fn find_by_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<Option<operator::Model>, DbErr> {
    let Ok(email) = normalize_email(email) else {
        return Ok(None);
    };
    operator::Entity::find()
        .filter(operator::Column::Email.eq(email))
        .one(db)
        .await
}

/// Adds an operator.
pub async fn create<C: ConnectionTrait>(
    db: &C,
    email: &str,
    password: SecretString,
) -> Result<operator::Model, OperatorError> {
    let email = normalize_email(email)?;
    if password.expose_secret().chars().count() < 12 {
        return Err(OperatorError::WeakPassword);
    }
    if find_by_email(db, &email).await?.is_some() {
        return Err(OperatorError::Exists);
    }
    let hash = hash_password(password).await?;
    operator::ActiveModel {
        id: Set(new_id("op")),
        email: Set(email),
        password_hash: Set(hash),
        disabled: Set(false),
        created_at: Set(now_ms()),
    }
    .insert(db)
    .await
    .map_err(|e| {
        if paygate_db::is_unique_violation(&e) {
            OperatorError::Exists
        } else {
            e.into()
        }
    })
}

/// How many operators exist.
pub async fn count<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    operator::Entity::find().count(db).await
}

/// `POST /admin/v1/operators`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorIn {
    email: String,
    /// At least 12 characters.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

impl std::fmt::Debug for OperatorIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorIn")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// An operator as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorOut {
    id: String,
    email: String,
    disabled: bool,
    created_at: String,
}

impl From<operator::Model> for OperatorOut {
    fn from(m: operator::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            disabled: m.disabled,
            created_at: rfc3339_ms(m.created_at),
        }
    }
}

/// Registers `/operators`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/operators", web::get().to(list))
        .route("/operators", web::post().to(add));
}

/// Lists operators.
#[utoipa::path(
    get,
    path = "/admin/v1/operators",
    tag = "operators",
    responses((status = 200, description = "Every operator, oldest first", body = List<OperatorOut>)),
)]
pub(crate) async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
) -> Result<HttpResponse, ApiError> {
    let ops = operator::Entity::find()
        .order_by_asc(operator::Column::CreatedAt)
        .all(&state.db)
        .await?;
    let data: Vec<OperatorOut> = ops.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(List { data }))
}

/// Adds an operator.
#[utoipa::path(
    post,
    path = "/admin/v1/operators",
    tag = "operators",
    request_body = OperatorIn,
    responses(
        (status = 201, description = "The operator", body = OperatorOut),
        (status = 409, description = "An operator with this e-mail exists (`operator_exists`)", body = ErrorBody),
        (status = 422, description = "The e-mail or password is invalid (`invalid_email`, `weak_password`)", body = ErrorBody),
    ),
)]
pub(crate) async fn add(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    body: web::Json<OperatorIn>,
) -> Result<HttpResponse, ApiError> {
    let OperatorIn { email, password } = body.into_inner();
    let created = create(&state.db, &email, password).await?;
    paygate_tenant::audit::record(
        &state.db,
        &op.actor(),
        None,
        "operator.created",
        &created.id,
        serde_json::json!({"email": created.email}),
    )
    .await?;
    Ok(HttpResponse::Created().json(OperatorOut::from(created)))
}
