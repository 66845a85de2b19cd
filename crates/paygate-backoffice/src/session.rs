//! Web sessions of operators and company users, and the cookies of the back office.
//!
//! Policy: the cookie holds 32 random bytes (base64url); the database holds only their SHA-256,
//! so a leaked table opens no session. A session ends at sign-out (its row is deleted), after
//! `idle` without a request, or `absolute` after sign-in, whichever comes first; expired rows are
//! swept at each sign-in. Each session has its own CSRF token. The principal is re-read on every
//! request: a removed or disabled user, a disabled or removed operator, an operator whose
//! password changed since the session began (their `token_epoch` moved on) or a deleted company
//! ends the session at once.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite, time};
use base64::Engine;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use sha2::{Digest, Sha256};

use paygate_db::entities::{company, company_user, operator, web_session};
use paygate_db::now_ms;
use paygate_tenant::users::Role;

use crate::i18n::Lang;

/// The session cookie.
pub const SESSION_COOKIE: &str = "paygate_session";
/// The remembered language.
pub const LANG_COOKIE: &str = "paygate_lang";
/// The CSRF token of visitors who are not signed in (sign-in, invitation and language forms).
pub const PRE_CSRF_COOKIE: &str = "paygate_csrf";
/// A one-shot message (a catalogue key) shown by the next page.
pub const FLASH_COOKIE: &str = "paygate_flash";

/// How long sessions last.
#[derive(Clone, Copy, Debug)]
pub struct SessionConfig {
    /// Ends a session after this long without a request.
    pub idle: Duration,
    /// Ends a session this long after sign-in, whatever happens.
    pub absolute: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(2 * 3600),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

/// Who a session belongs to.
#[derive(Clone, Debug)]
pub enum Principal {
    /// An operator: the console.
    Operator { id: String, email: String },
    /// A company user: the merchant pages of their company, and only those.
    User {
        user_id: String,
        email: String,
        role: Role,
        company_pk: i64,
        company_id: String,
        company_name: String,
        company_status: String,
        /// The company's environment (its Test / Live mode), for the layout's banner.
        company_environment: paygate_db::Mode,
    },
}

impl Principal {
    /// How the audit log names this principal.
    pub fn actor(&self) -> String {
        match self {
            Principal::Operator { email, .. } => format!("operator:{email}"),
            Principal::User { email, .. } => format!("user:{email}"),
        }
    }
    /// The e-mail address.
    pub fn email(&self) -> &str {
        match self {
            Principal::Operator { email, .. } | Principal::User { email, .. } => email,
        }
    }
}

/// A live session.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The row id (hash of the cookie token).
    pub id: String,
    pub principal: Principal,
    pub csrf: String,
    pub language: Option<Lang>,
}

/// 32 random bytes, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `s` has the shape of [`random_token`]'s output (cookies are untrusted input).
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Starts a session; returns the cookie token (shown to nobody but the browser).
pub async fn create<C: ConnectionTrait>(
    db: &C,
    cfg: &SessionConfig,
    principal_kind: &str,
    principal_id: &str,
    company_pk: Option<i64>,
    language: Option<Lang>,
) -> Result<String, DbErr> {
    create_in_epoch(
        db,
        cfg,
        principal_kind,
        principal_id,
        company_pk,
        language,
        0,
    )
    .await
}

/// Starts a session of a principal in `epoch` (an operator's `token_epoch`, read before their
/// password was checked: a password change in between ends the session at its first request).
pub async fn create_in_epoch<C: ConnectionTrait>(
    db: &C,
    cfg: &SessionConfig,
    principal_kind: &str,
    principal_id: &str,
    company_pk: Option<i64>,
    language: Option<Lang>,
    epoch: i64,
) -> Result<String, DbErr> {
    let now = now_ms();
    // Sweep what has expired (cheap, indexed; sign-ins are rare).
    web_session::Entity::delete_many()
        .filter(
            Condition::any()
                .add(web_session::Column::ExpiresAt.lte(now))
                .add(web_session::Column::LastSeenAt.lte(now - ms(cfg.idle))),
        )
        .exec(db)
        .await?;
    let token = random_token();
    web_session::ActiveModel {
        id: Set(hash(&token)),
        principal_kind: Set(principal_kind.to_owned()),
        principal_id: Set(principal_id.to_owned()),
        company_pk: Set(company_pk),
        csrf: Set(random_token()),
        created_at: Set(now),
        expires_at: Set(now + ms(cfg.absolute)),
        last_seen_at: Set(now),
        language: Set(language.map(|l| l.code().to_owned())),
        principal_epoch: Set(epoch),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// The live session of a cookie token, its principal re-read; `None` when it has expired or its
/// principal is gone (the row is then deleted).
pub async fn load<C: ConnectionTrait>(
    db: &C,
    cfg: &SessionConfig,
    token: &str,
) -> Result<Option<SessionInfo>, DbErr> {
    if !is_token_shaped(token) {
        return Ok(None);
    }
    let id = hash(token);
    let Some(row) = web_session::Entity::find_by_id(id.clone()).one(db).await? else {
        return Ok(None);
    };
    let now = now_ms();
    if row.expires_at <= now || row.last_seen_at + ms(cfg.idle) <= now {
        end(db, &id).await?;
        return Ok(None);
    }
    let principal = match row.principal_kind.as_str() {
        "operator" => operator::Entity::find_by_id(row.principal_id.clone())
            .one(db)
            .await?
            .filter(|o| !o.disabled && o.token_epoch == row.principal_epoch)
            .map(|o| Principal::Operator {
                id: o.id,
                email: o.email,
            }),
        "user" => {
            let user = company_user::Entity::find_by_id(row.principal_id.clone())
                .one(db)
                .await?
                .filter(|u| !u.disabled && Some(u.company_pk) == row.company_pk);
            match user {
                Some(u) => company::Entity::find_by_id(u.company_pk)
                    .one(db)
                    .await?
                    .map(|c| Principal::User {
                        user_id: u.id,
                        email: u.email,
                        role: Role::parse(&u.role).unwrap_or(Role::Viewer),
                        company_environment: c.environment_mode(),
                        company_pk: c.id,
                        company_id: c.company_id,
                        company_name: c.name,
                        company_status: c.status,
                    }),
                None => None,
            }
        }
        _ => None,
    };
    let Some(principal) = principal else {
        end(db, &id).await?;
        return Ok(None);
    };
    // Idle expiry slides, written at most once a minute.
    if now - row.last_seen_at > 60_000 {
        web_session::Entity::update_many()
            .col_expr(
                web_session::Column::LastSeenAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(web_session::Column::Id.eq(&id))
            .exec(db)
            .await?;
    }
    Ok(Some(SessionInfo {
        id,
        principal,
        csrf: row.csrf,
        language: row.language.as_deref().and_then(Lang::parse),
    }))
}

/// Ends a session (by row id).
pub async fn end<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    web_session::Entity::delete_by_id(id.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Remembers a session's language.
pub async fn set_language<C: ConnectionTrait>(db: &C, id: &str, lang: Lang) -> Result<(), DbErr> {
    web_session::Entity::update_many()
        .col_expr(
            web_session::Column::Language,
            sea_orm::sea_query::Expr::value(lang.code()),
        )
        .filter(web_session::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// A cookie of the back office: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` when asked.
pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

/// The session cookie (a browser-session cookie: the server decides when it ends).
pub fn session_cookie(token: String, secure: bool) -> Cookie<'static> {
    cookie(SESSION_COOKIE, token, secure)
}

/// A cookie that lasts a year (language).
pub fn lasting_cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    let mut c = cookie(name, value, secure);
    c.set_max_age(time::Duration::days(365));
    c
}

/// A cookie that removes `name`.
pub fn removal_cookie(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), secure);
    c.make_removal();
    c
}
