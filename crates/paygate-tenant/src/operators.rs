//! Operators: the people who run the installation, and the password rules they share with
//! company users.
//!
//! Policy: e-mail addresses are trimmed and lower-cased before they are stored or looked up, so
//! one address is one operator. Passwords have at least [`MIN_PASSWORD_CHARS`] characters and
//! are stored only as Argon2id PHC strings; hashing and verifying run in `spawn_blocking`, off
//! the async threads. An unknown e-mail is checked against a dummy hash, so timing does not
//! tell which addresses exist. A disabled operator signs in nowhere. Creating an operator does
//! not write the audit log: the caller knows who did it (the admin API and the console record
//! `operator.created`; the `paygate operator add` command has no actor).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};
use secrecy::{ExposeSecret, SecretString};

use paygate_db::entities::operator;
use paygate_db::{new_id, now_ms};
use paygate_web::ApiError;

/// The shortest password accepted, for operators and company users alike.
pub const MIN_PASSWORD_CHARS: usize = 12;

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

/// How the admin API answers: 422 `invalid_email` / `weak_password` naming the field, 409
/// `operator_exists`, 500 otherwise.
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

/// Checks the length rule ([`MIN_PASSWORD_CHARS`]).
pub fn check_password(password: &SecretString) -> Result<(), OperatorError> {
    if password.expose_secret().chars().count() < MIN_PASSWORD_CHARS {
        Err(OperatorError::WeakPassword)
    } else {
        Ok(())
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

/// Checks a password against a stored hash (or, for `None`, a dummy one at the same cost: the
/// answer is then `false`), off the async threads.
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

/// The operator with this email (disabled or not).
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

/// The operator with this id, if they exist and are not disabled (a bearer token's subject).
pub async fn find_active<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<operator::Model>, DbErr> {
    Ok(operator::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .filter(|op| !op.disabled))
}

/// The operator an e-mail and password open: `None` when the e-mail is unknown, the password
/// wrong or the operator disabled. The password is verified in every case, at the same cost.
pub async fn authenticate<C: ConnectionTrait>(
    db: &C,
    email: &str,
    password: &SecretString,
) -> Result<Option<operator::Model>, DbErr> {
    let op = find_by_email(db, email).await?;
    let hash = op.as_ref().map(|o| o.password_hash.clone());
    let ok = verify_password(hash, password.expose_secret().to_owned()).await;
    Ok(op.filter(|op| ok && !op.disabled))
}

/// Adds an operator (not audited here: see the module's policy).
pub async fn create<C: ConnectionTrait>(
    db: &C,
    email: &str,
    password: SecretString,
) -> Result<operator::Model, OperatorError> {
    let email = normalize_email(email)?;
    check_password(&password)?;
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

/// Every operator, oldest first.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<operator::Model>, DbErr> {
    operator::Entity::find()
        .order_by_asc(operator::Column::CreatedAt)
        .all(db)
        .await
}

/// How many operators exist.
pub async fn count<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    operator::Entity::find().count(db).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_db;

    #[test]
    fn emails_are_trimmed_lower_cased_and_checked() {
        assert_eq!(
            normalize_email("  Ops@Example.COM\n").ok().as_deref(),
            Some("ops@example.com")
        );
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@example",
            "ops@.com",
            "o ps@x.com",
        ] {
            assert!(
                matches!(normalize_email(bad), Err(OperatorError::InvalidEmail)),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn operator_signs_in_with_the_password_given_at_creation() {
        let db = test_db().await;
        let op = create(&db, " Ops@Example.com ", "correct horse battery".into())
            .await
            .expect("created");
        assert_eq!(op.email, "ops@example.com");
        assert!(op.password_hash.starts_with("$argon2id$"));
        let good: SecretString = "correct horse battery".into();
        let bad: SecretString = "wrong horse battery".into();
        let found = authenticate(&db, "OPS@example.com", &good)
            .await
            .expect("db");
        assert_eq!(found.map(|o| o.id), Some(op.id.clone()));
        assert!(
            authenticate(&db, "ops@example.com", &bad)
                .await
                .expect("db")
                .is_none()
        );
        assert!(
            authenticate(&db, "nobody@example.com", &good)
                .await
                .expect("db")
                .is_none()
        );
        assert!(find_active(&db, &op.id).await.expect("db").is_some());
    }

    #[tokio::test]
    async fn duplicate_or_weak_operators_are_refused() {
        let db = test_db().await;
        create(&db, "ops@example.com", "correct horse battery".into())
            .await
            .expect("created");
        assert!(matches!(
            create(&db, "OPS@example.com", "another long password".into()).await,
            Err(OperatorError::Exists)
        ));
        assert!(matches!(
            create(&db, "two@example.com", "short".into()).await,
            Err(OperatorError::WeakPassword)
        ));
        assert_eq!(count(&db).await.expect("db"), 1);
        assert_eq!(list(&db).await.expect("db").len(), 1);
    }

    #[tokio::test]
    async fn disabled_operator_signs_in_nowhere() {
        let db = test_db().await;
        let op = create(&db, "ops@example.com", "correct horse battery".into())
            .await
            .expect("created");
        operator::Entity::update_many()
            .col_expr(
                operator::Column::Disabled,
                sea_orm::sea_query::Expr::value(true),
            )
            .filter(operator::Column::Id.eq(&op.id))
            .exec(&db)
            .await
            .expect("db");
        let good: SecretString = "correct horse battery".into();
        assert!(
            authenticate(&db, "ops@example.com", &good)
                .await
                .expect("db")
                .is_none()
        );
        assert!(find_active(&db, &op.id).await.expect("db").is_none());
    }
}
