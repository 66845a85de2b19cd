//! The first-run setup link: how the first operator is created on an installation that has none.
//!
//! Policy: while no operator exists, each start of `paygate serve` calls [`issue`], which makes a
//! random token of 256 bits (base64url), stores only its SHA-256 and replaces every token stored
//! before (so the link of an earlier start, or of another replica's start, stops working), and
//! returns it for the one log line that shows the link. A token is valid while it is stored and
//! no operator exists. [`complete`] checks the form (every error at once), then, in one
//! transaction, consumes the token (a conditional delete: of two concurrent uses one wins) and
//! creates the operator (audited as `operator.created` by `setup-link`); so the link works once. Once any operator exists, [`issue`] stores
//! nothing and every remaining token is deleted.

use base64::Engine;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use paygate_db::entities::{operator, setup_token};
use paygate_db::now_ms;

use crate::operators::{self, OperatorError};

/// The longest token accepted before hashing (a real one has 43 characters).
const MAX_TOKEN_CHARS: usize = 128;

/// Why the setup form was refused.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The token is unknown, used, replaced, or an operator exists already.
    #[error("the setup link is not valid")]
    InvalidToken,
    /// What is wrong with the form: `(field, code)` pairs, every one found
    /// (`email`/`invalid_email`, `password`/`weak_password`, `password_confirm`/`password_mismatch`).
    #[error("the form has errors")]
    Invalid(Vec<(&'static str, &'static str)>),
    #[error("database error")]
    Db(#[from] DbErr),
    #[error("password hashing failed")]
    Hash,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn no_operator<C: ConnectionTrait>(db: &C) -> Result<bool, DbErr> {
    Ok(operators::count(db).await? == 0)
}

/// A new setup token when no operator exists (every earlier one is replaced), else `None` (and
/// any token left over is deleted).
pub async fn issue(db: &DatabaseConnection) -> Result<Option<SecretString>, DbErr> {
    let txn = db.begin().await?;
    setup_token::Entity::delete_many().exec(&txn).await?;
    if !no_operator(&txn).await? {
        txn.commit().await?;
        return Ok(None);
    }
    let token = new_token();
    setup_token::ActiveModel {
        token_hash: Set(token_hash(&token)),
        created_at: Set(now_ms()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Some(SecretString::from(token)))
}

/// Whether `token` opens the setup page now.
pub async fn is_valid<C: ConnectionTrait>(db: &C, token: &str) -> Result<bool, DbErr> {
    if token.len() > MAX_TOKEN_CHARS {
        return Ok(false);
    }
    let stored = setup_token::Entity::find()
        .filter(setup_token::Column::TokenHash.eq(token_hash(token)))
        .one(db)
        .await?;
    Ok(stored.is_some() && no_operator(db).await?)
}

/// Whether no operator exists yet (the sign-in page then points to the setup link).
pub async fn needed<C: ConnectionTrait>(db: &C) -> Result<bool, DbErr> {
    no_operator(db).await
}

/// Creates the first operator through the link `token`, which is consumed.
pub async fn complete(
    db: &DatabaseConnection,
    token: &str,
    email: &str,
    password: SecretString,
    password_confirm: &str,
) -> Result<operator::Model, SetupError> {
    if !is_valid(db, token).await? {
        return Err(SetupError::InvalidToken);
    }
    let mut errors = Vec::new();
    if operators::normalize_email(email).is_err() {
        errors.push(("email", "invalid_email"));
    }
    if operators::check_password(&password).is_err() {
        errors.push(("password", "weak_password"));
    }
    if password.expose_secret() != password_confirm {
        errors.push(("password_confirm", "password_mismatch"));
    }
    if !errors.is_empty() {
        return Err(SetupError::Invalid(errors));
    }
    let txn = db.begin().await?;
    let consumed = setup_token::Entity::delete_many()
        .filter(setup_token::Column::TokenHash.eq(token_hash(token)))
        .exec(&txn)
        .await?
        .rows_affected;
    if consumed == 0 || !no_operator(&txn).await? {
        return Err(SetupError::InvalidToken);
    }
    let op = operators::create(&txn, email, password)
        .await
        .map_err(|e| match e {
            OperatorError::InvalidEmail => SetupError::Invalid(vec![("email", "invalid_email")]),
            OperatorError::WeakPassword => SetupError::Invalid(vec![("password", "weak_password")]),
            // Another operator appeared meanwhile: the link is spent.
            OperatorError::Exists | OperatorError::NotFound | OperatorError::LastActive => {
                SetupError::InvalidToken
            }
            OperatorError::Db(e) => SetupError::Db(e),
            OperatorError::Hash => SetupError::Hash,
        })?;
    crate::audit::record(
        &txn,
        "setup-link",
        None,
        "operator.created",
        &op.id,
        serde_json::json!({"email": op.email}),
    )
    .await?;
    // No token outlives the first operator.
    setup_token::Entity::delete_many().exec(&txn).await?;
    txn.commit().await?;
    Ok(op)
}
