//! Company API keys (`pgk_test_…`, `pgk_live_…`) for the merchant API.
//!
//! Policy: a key belongs to one company and one mode, like Stripe's keys: a test key reads and
//! changes only test data, whatever the company's environment. The key is 32 random bytes,
//! shown once to whoever creates it and stored only as its SHA-256 ([`hash_key`]) with its first
//! characters to recognise it. Revoking is immediate and final. Creation and revocation are
//! audited (`api_key.created`, `api_key.revoked`); every accepted use is recorded
//! (`last_used_at`). A key of a suspended company opens nothing.

use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use sha2::{Digest, Sha256};

use paygate_db::entities::{api_key, company};
use paygate_db::{Mode, Scope, Tenant, new_id, now_ms};
use paygate_web::ApiError;

use crate::audit;
use crate::service::STATUS_ACTIVE;

/// What every key starts with; then the mode (`test_` / `live_`) and 64 hex digits.
pub const KEY_PREFIX: &str = "pgk_";

/// How many leading characters of a key are kept to recognise it (`pgk_test_1a2b3c4d`).
const SHOWN_PREFIX_CHARS: usize = 17;

/// Why a key could not be made or revoked.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// The name is empty or longer than 100 characters.
    #[error("name: must be 1 to 100 characters")]
    InvalidName,
    /// No active key with this id in this company.
    #[error("no such active API key for this company")]
    NotFound,
    #[error("database error")]
    Db(#[from] DbErr),
}

/// How the admin API answers: 422 `invalid_name` naming the field, 404 `api_key_not_found`,
/// 500 otherwise.
impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::InvalidName => {
                ApiError::unprocessable("invalid_name", e.to_string()).with_field("name")
            }
            ApiKeyError::NotFound => ApiError::not_found("api_key_not_found", e.to_string()),
            ApiKeyError::Db(db) => ApiError::from(db),
        }
    }
}

/// The hash a key is stored and looked up by (SHA-256, hex).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Makes a key for a company in one mode (audited as `api_key.created` by `actor`): the stored
/// row and the key itself, which exists nowhere else and is shown only once.
pub async fn create_key<C: ConnectionTrait>(
    db: &C,
    actor: &str,
    scope: Scope,
    name: &str,
) -> Result<(api_key::Model, String), ApiKeyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiKeyError::InvalidName);
    }
    let secret: [u8; 32] = rand::rngs::OsRng.r#gen();
    let key = format!("{KEY_PREFIX}{}_{}", scope.mode(), hex::encode(secret));
    let company_pk = scope.company_pk();
    let m = api_key::ActiveModel {
        id: Set(new_id("key")),
        company_pk: Set(company_pk),
        livemode: Set(scope.livemode()),
        name: Set(name.to_owned()),
        prefix: Set(key[..SHOWN_PREFIX_CHARS].to_owned()),
        key_hash: Set(hash_key(&key)),
        created_at: Set(now_ms()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    audit::record(
        db,
        actor,
        Some(company_pk),
        "api_key.created",
        &m.id,
        serde_json::json!({"name": m.name, "prefix": m.prefix, "livemode": m.livemode}),
    )
    .await?;
    Ok((m, key))
}

/// Every key of a company (revoked ones too, both modes), oldest first.
pub async fn list_keys<C: ConnectionTrait>(
    db: &C,
    tenant: Tenant,
) -> Result<Vec<api_key::Model>, DbErr> {
    tenant
        .find::<api_key::Entity>()
        .order_by_asc(api_key::Column::CreatedAt)
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await
}

/// Revokes an active key of a company (audited as `api_key.revoked` by `actor`); another
/// company's key, an unknown one or one already revoked is [`ApiKeyError::NotFound`].
pub async fn revoke_key<C: ConnectionTrait>(
    db: &C,
    actor: &str,
    tenant: Tenant,
    id: &str,
) -> Result<(), ApiKeyError> {
    let n = tenant
        .update::<api_key::Entity>()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now_ms()))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    if n == 0 {
        return Err(ApiKeyError::NotFound);
    }
    audit::record(
        db,
        actor,
        Some(tenant.company_pk()),
        "api_key.revoked",
        id,
        serde_json::json!({}),
    )
    .await?;
    Ok(())
}

/// What a key presented to the merchant API opens.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per request and moved once into the principal: boxing saves nothing"
)]
pub enum KeyCheck {
    /// No active key is this one: unknown, revoked, or its company is gone.
    Unknown,
    /// The key's company is suspended; the use is not recorded.
    Suspended,
    /// The key's company, and the company in the key's mode: everything the key may reach. The
    /// use is recorded.
    Valid {
        company: company::Model,
        scope: Scope,
    },
}

/// Looks up a presented key (the whole `pgk_…` string) and, when it opens its company, records
/// its use.
pub async fn check_key<C: ConnectionTrait>(db: &C, presented: &str) -> Result<KeyCheck, DbErr> {
    // By the key's hash: the key is all its holder presents, the company follows from it.
    let Some(key) = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(hash_key(presented)))
        .filter(api_key::Column::RevokedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(KeyCheck::Unknown);
    };
    let Some(company) = company::Entity::find_by_id(key.company_pk).one(db).await? else {
        return Ok(KeyCheck::Unknown);
    };
    if company.status != STATUS_ACTIVE {
        return Ok(KeyCheck::Suspended);
    }
    let tenant = company.tenant();
    tenant
        .update::<api_key::Entity>()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(now_ms()))
        .filter(api_key::Column::Id.eq(key.id))
        .exec(db)
        .await?;
    let scope = tenant.in_mode(Mode::from_livemode(key.livemode));
    Ok(KeyCheck::Valid { company, scope })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{test_company, test_db};

    #[tokio::test]
    async fn a_key_is_shown_once_and_opens_its_company_in_its_mode() {
        let db = test_db().await;
        let c = Tenant::new(test_company(&db, "acme").await);
        let (m, key) = create_key(&db, "t", c.in_mode(Mode::Live), " shop ")
            .await
            .expect("created");
        assert!(key.starts_with("pgk_live_") && key.len() == 9 + 64, "{key}");
        assert_eq!(m.prefix, key[..17]);
        assert_eq!(m.name, "shop");
        assert!(m.livemode);
        assert_eq!(m.key_hash, hash_key(&key));
        assert_ne!(m.key_hash, key);
        match check_key(&db, &key).await.expect("db") {
            KeyCheck::Valid { company, scope } => {
                assert_eq!(company.id, c.company_pk());
                assert_eq!(scope, c.in_mode(Mode::Live));
            }
            other => panic!("{other:?}"),
        }
        let listed = list_keys(&db, c).await.expect("db");
        assert!(listed[0].last_used_at.is_some());
        assert!(matches!(
            check_key(&db, "pgk_live_unknown").await.expect("db"),
            KeyCheck::Unknown
        ));
    }

    #[tokio::test]
    async fn names_are_checked() {
        let db = test_db().await;
        let c = Tenant::new(test_company(&db, "acme").await);
        for bad in ["", "   ", &"x".repeat(101)] {
            assert!(matches!(
                create_key(&db, "t", c.in_mode(Mode::Test), bad).await,
                Err(ApiKeyError::InvalidName)
            ));
        }
        let (_, key) = create_key(&db, "t", c.in_mode(Mode::Test), "ci")
            .await
            .expect("created");
        assert!(key.starts_with("pgk_test_"));
    }

    #[tokio::test]
    async fn revoked_or_other_companys_keys() {
        let db = test_db().await;
        let c = Tenant::new(test_company(&db, "acme").await);
        let other = Tenant::new(test_company(&db, "other").await);
        let (m, key) = create_key(&db, "t", c.in_mode(Mode::Test), "ci")
            .await
            .expect("created");
        assert!(matches!(
            revoke_key(&db, "t", other, &m.id).await,
            Err(ApiKeyError::NotFound)
        ));
        assert!(list_keys(&db, other).await.expect("db").is_empty());
        revoke_key(&db, "t", c, &m.id).await.expect("revoked");
        assert!(matches!(
            revoke_key(&db, "t", c, &m.id).await,
            Err(ApiKeyError::NotFound)
        ));
        assert!(matches!(
            check_key(&db, &key).await.expect("db"),
            KeyCheck::Unknown
        ));
        assert_eq!(list_keys(&db, c).await.expect("db").len(), 1);
    }

    #[tokio::test]
    async fn a_suspended_companys_key_opens_nothing() {
        let db = test_db().await;
        let pk = test_company(&db, "acme").await;
        let (_, key) = create_key(&db, "t", Tenant::new(pk).in_mode(Mode::Test), "ci")
            .await
            .expect("created");
        company::Entity::update_many()
            .col_expr(company::Column::Status, Expr::value("suspended"))
            .filter(company::Column::Id.eq(pk))
            .exec(&db)
            .await
            .expect("db");
        assert!(matches!(
            check_key(&db, &key).await.expect("db"),
            KeyCheck::Suspended
        ));
        let listed = list_keys(&db, Tenant::new(pk)).await.expect("db");
        assert!(listed[0].last_used_at.is_none());
    }
}
