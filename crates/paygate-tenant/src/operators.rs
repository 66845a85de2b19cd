//! Operators: the people who run the installation, and the password rules they share with
//! company users.
//!
//! Policy: e-mail addresses are trimmed and lower-cased before they are stored or looked up, so
//! one address is one operator; they have at most 254 characters, one `@`, and no whitespace or
//! control characters. Passwords have at least [`MIN_PASSWORD_CHARS`] characters and are stored
//! only as Argon2id PHC strings, hashed and verified in the one bounded pool of
//! [`crate::password`]; signing in goes through [`crate::signin`] (validation, lockout, room in
//! the pool). A disabled operator signs in nowhere.
//!
//! Lifecycle: an operator can be disabled, enabled again, removed, and can change their password
//! (the caller checks the current one). Disabling and changing the password move the operator's
//! `token_epoch` on, so every token and session issued before is refused at once (the admin API
//! and the back office compare it on every request); disabling, removing and a new password also
//! delete the operator's sessions. The last active operator can be neither disabled nor removed
//! ([`OperatorError::LastActive`]): the active operators are locked (`FOR UPDATE` on PostgreSQL;
//! SQLite has one writer) while the change is decided, so two operators disabling each other at
//! once leave one. Every change is audited with the actor the caller names; creating an operator
//! is audited by the caller (the admin API and the console record `operator.created`; the
//! `paygate operator add` command has no actor).

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};

use paygate_db::entities::{operator, web_session};
use paygate_db::{new_id, now_ms};
use paygate_web::ApiError;

use crate::audit;
use crate::password::PasswordPool;

/// The shortest password accepted, for operators and company users alike.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The longest e-mail address accepted (RFC 5321's path limit, less the angle brackets).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Why an operator could not be added or changed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("email: must be an e-mail address")]
    InvalidEmail,
    #[error("password: must be at least 12 characters")]
    WeakPassword,
    #[error("an operator with this email already exists")]
    Exists,
    #[error("no operator with this id or email")]
    NotFound,
    #[error("the last active operator can be neither disabled nor removed")]
    LastActive,
    #[error("database error")]
    Db(#[from] DbErr),
    #[error("password hashing failed")]
    Hash,
}

/// How the admin API answers: 422 `invalid_email` / `weak_password` naming the field, 409
/// `operator_exists` / `last_active_operator`, 404 `operator_not_found`, 500 otherwise.
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
            OperatorError::NotFound => ApiError::not_found("operator_not_found", e.to_string()),
            OperatorError::LastActive => ApiError::conflict("last_active_operator", e.to_string()),
            OperatorError::Db(e) => ApiError::from(e),
            OperatorError::Hash => ApiError::internal(e),
        }
    }
}

/// Trims and lower-cases an e-mail address and checks its shape (see the module's policy).
pub fn normalize_email(email: &str) -> Result<String, OperatorError> {
    // Bound the work on hostile input before trimming and lower-casing it.
    if email.len() > 4 * MAX_EMAIL_CHARS {
        return Err(OperatorError::InvalidEmail);
    }
    let e = email.trim().to_lowercase();
    let valid = e.chars().count() <= MAX_EMAIL_CHARS
        && e.matches('@').count() == 1
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

/// Hashes a password with Argon2id in the bounded pool, waiting for room.
pub async fn hash_password(password: SecretString) -> Result<String, OperatorError> {
    PasswordPool::global()
        .admit()
        .await
        .hash(password)
        .await
        .map_err(|_| OperatorError::Hash)
}

/// Checks a password against a stored hash (or, for `None`, a dummy one at the same cost: the
/// answer is then `false`) in the bounded pool, waiting for room. Sign-ins use
/// [`crate::signin`] instead, which never waits.
pub async fn verify_password(hash: Option<String>, password: String) -> bool {
    PasswordPool::global()
        .admit()
        .await
        .verify(hash.as_deref(), &SecretString::from(password))
        .await
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

/// The operator with this id, if they exist and are not disabled (a bearer token's subject; the
/// caller compares the token's epoch with `token_epoch`).
pub async fn find_active<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<operator::Model>, DbErr> {
    Ok(operator::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .filter(|op| !op.disabled))
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
        token_epoch: Set(0),
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

/// The operator with this id.
pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<operator::Model>, DbErr> {
    operator::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Locks the active operators for the rest of the transaction and returns them; then `op` (in
/// the same transaction), or [`OperatorError::NotFound`].
async fn lock_active_and_find<C: ConnectionTrait>(
    txn: &C,
    id: &str,
) -> Result<(Vec<operator::Model>, operator::Model), OperatorError> {
    let active = operator::Entity::find()
        .filter(operator::Column::Disabled.eq(false))
        .lock_exclusive()
        .all(txn)
        .await?;
    let op = find(txn, id).await?.ok_or(OperatorError::NotFound)?;
    Ok((active, op))
}

/// Whether `op` is the only active operator.
fn is_last_active(active: &[operator::Model], op: &operator::Model) -> bool {
    !op.disabled && active.iter().all(|a| a.id == op.id)
}

async fn end_sessions<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    web_session::Entity::delete_many()
        .filter(web_session::Column::PrincipalKind.eq("operator"))
        .filter(web_session::Column::PrincipalId.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Moves the operator's epoch on and ends their sessions: what was issued before is refused.
async fn revoke<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    operator::Entity::update_many()
        .col_expr(
            operator::Column::TokenEpoch,
            Expr::col(operator::Column::TokenEpoch).add(1),
        )
        .filter(operator::Column::Id.eq(id))
        .exec(db)
        .await?;
    end_sessions(db, id).await
}

/// Disables an operator (audited as `operator.disabled` by `actor`): they sign in nowhere, and
/// their tokens and sessions end at once. Never the last active one; disabling a disabled
/// operator changes nothing.
pub async fn disable(
    db: &DatabaseConnection,
    actor: &str,
    id: &str,
) -> Result<operator::Model, OperatorError> {
    let txn = db.begin().await?;
    let (active, op) = lock_active_and_find(&txn, id).await?;
    if op.disabled {
        return Ok(op);
    }
    if is_last_active(&active, &op) {
        return Err(OperatorError::LastActive);
    }
    commit_disabled(txn, actor, &op, true).await
}

/// Enables a disabled operator again (audited as `operator.enabled`); what they held before
/// the disable stays refused: they sign in anew.
pub async fn enable(
    db: &DatabaseConnection,
    actor: &str,
    id: &str,
) -> Result<operator::Model, OperatorError> {
    let txn = db.begin().await?;
    let op = find(&txn, id).await?.ok_or(OperatorError::NotFound)?;
    if !op.disabled {
        return Ok(op);
    }
    commit_disabled(txn, actor, &op, false).await
}

/// Writes `disabled` on `op` (a disable also ends their tokens and sessions), audits it as
/// `operator.disabled` or `operator.enabled`, and commits; returns the operator as stored.
async fn commit_disabled(
    txn: sea_orm::DatabaseTransaction,
    actor: &str,
    op: &operator::Model,
    disabled: bool,
) -> Result<operator::Model, OperatorError> {
    operator::Entity::update_many()
        .col_expr(operator::Column::Disabled, Expr::value(disabled))
        .filter(operator::Column::Id.eq(&op.id))
        .exec(&txn)
        .await?;
    if disabled {
        revoke(&txn, &op.id).await?;
    }
    let action = if disabled {
        "operator.disabled"
    } else {
        "operator.enabled"
    };
    audit::record(
        &txn,
        actor,
        None,
        action,
        &op.id,
        serde_json::json!({"email": op.email}),
    )
    .await?;
    let op = find(&txn, &op.id).await?.ok_or(OperatorError::NotFound)?;
    txn.commit().await?;
    Ok(op)
}

/// Removes an operator (audited as `operator.removed`); their sessions end with them. Never the
/// last active one.
pub async fn remove(
    db: &DatabaseConnection,
    actor: &str,
    id: &str,
) -> Result<operator::Model, OperatorError> {
    let txn = db.begin().await?;
    let (active, op) = lock_active_and_find(&txn, id).await?;
    if is_last_active(&active, &op) {
        return Err(OperatorError::LastActive);
    }
    end_sessions(&txn, &op.id).await?;
    operator::Entity::delete_by_id(op.id.clone())
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        None,
        "operator.removed",
        &op.id,
        serde_json::json!({"email": op.email}),
    )
    .await?;
    txn.commit().await?;
    Ok(op)
}

/// Sets an operator's password (audited as `operator.password_changed`; the caller has checked
/// the current one, or is the `paygate operator passwd` command): every token and session
/// issued before ends at once. Returns the operator as it is now (for a fresh token).
pub async fn change_password(
    db: &DatabaseConnection,
    actor: &str,
    id: &str,
    password: SecretString,
) -> Result<operator::Model, OperatorError> {
    check_password(&password)?;
    if find(db, id).await?.is_none() {
        return Err(OperatorError::NotFound);
    }
    let hash = hash_password(password).await?;
    let txn = db.begin().await?;
    let op = find(&txn, id).await?.ok_or(OperatorError::NotFound)?;
    operator::Entity::update_many()
        .col_expr(operator::Column::PasswordHash, Expr::value(hash))
        .filter(operator::Column::Id.eq(&op.id))
        .exec(&txn)
        .await?;
    revoke(&txn, &op.id).await?;
    audit::record(
        &txn,
        actor,
        None,
        "operator.password_changed",
        &op.id,
        serde_json::json!({"email": op.email}),
    )
    .await?;
    let op = find(&txn, id).await?.ok_or(OperatorError::NotFound)?;
    txn.commit().await?;
    Ok(op)
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
        let long = format!("{}@example.com", "a".repeat(250));
        let huge = format!("{}@example.com", " ".repeat(100_000));
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@example",
            "ops@.com",
            "o ps@x.com",
            "ops@ops@example.com",
            "ops\u{0}@example.com",
            long.as_str(),
            huge.as_str(),
        ] {
            assert!(
                matches!(normalize_email(bad), Err(OperatorError::InvalidEmail)),
                "{bad:?}"
            );
        }
        let longest = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS - 12));
        assert!(normalize_email(&longest).is_ok());
    }

    async fn signs_in(db: &DatabaseConnection, email: &str, password: &str) -> bool {
        match find_by_email(db, email).await.expect("db") {
            Some(op) if !op.disabled => {
                verify_password(Some(op.password_hash), password.to_owned()).await
            }
            _ => false,
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
        assert!(signs_in(&db, "OPS@example.com", "correct horse battery").await);
        assert!(!signs_in(&db, "ops@example.com", "wrong horse battery").await);
        assert!(!signs_in(&db, "nobody@example.com", "correct horse battery").await);
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
    async fn the_last_active_operator_stays_and_changes_move_the_epoch() {
        let db = test_db().await;
        let one = create(&db, "one@example.com", "correct horse battery".into())
            .await
            .expect("created");
        assert!(matches!(
            disable(&db, "t", &one.id).await,
            Err(OperatorError::LastActive)
        ));
        assert!(matches!(
            remove(&db, "t", &one.id).await,
            Err(OperatorError::LastActive)
        ));
        let two = create(&db, "two@example.com", "correct horse battery".into())
            .await
            .expect("created");
        let disabled = disable(&db, "t", &two.id).await.expect("disabled");
        assert!(disabled.disabled);
        assert_eq!(disabled.token_epoch, two.token_epoch + 1);
        assert!(find_active(&db, &two.id).await.expect("db").is_none());
        assert!(!signs_in(&db, "two@example.com", "correct horse battery").await);
        // Disabled operators do not count: one is the last active one again.
        assert!(matches!(
            disable(&db, "t", &one.id).await,
            Err(OperatorError::LastActive)
        ));
        let enabled = enable(&db, "t", &two.id).await.expect("enabled");
        assert!(!enabled.disabled);
        assert_eq!(enabled.token_epoch, disabled.token_epoch);
        let changed = change_password(&db, "t", &one.id, "a brand new password".into())
            .await
            .expect("changed");
        assert_eq!(changed.token_epoch, one.token_epoch + 1);
        assert!(signs_in(&db, "one@example.com", "a brand new password").await);
        assert!(!signs_in(&db, "one@example.com", "correct horse battery").await);
        assert!(matches!(
            change_password(&db, "t", &one.id, "short".into()).await,
            Err(OperatorError::WeakPassword)
        ));
        remove(&db, "t", &two.id).await.expect("removed");
        assert!(matches!(
            remove(&db, "t", &two.id).await,
            Err(OperatorError::NotFound)
        ));
        assert_eq!(count(&db).await.expect("db"), 1);
    }
}
