//! Sign-in attempts, for operators and company users alike (the admin API's token endpoint, the
//! back office's form, and the current password of a password change).
//!
//! Policy, in the order an attempt meets it:
//! 1. **The e-mail is checked first** ([`crate::operators::normalize_email`]: at most 254
//!    characters, one `@`, no whitespace or control characters). A malformed one is refused
//!    ([`Refused::InvalidEmail`]) before anything is hashed or written.
//! 2. **Lockout per account and client address**: [`ADDRESS_LIMIT`] failures of one account from
//!    one address within [`WINDOW`] lock that account out *from that address* until [`WINDOW`]
//!    after the last of them. A stranger can thus lock out only their own address, never the
//!    owner's (behind a proxy, the client address is the forwarded one: see
//!    `paygate_web::client_addr`).
//! 3. **Per-account slowdown**: once an account has [`ACCOUNT_SLOWDOWN_AFTER`] failures within
//!    [`WINDOW`] from anywhere, the addresses that have failed for it share
//!    [`SLOWED_PER_MINUTE`] attempts a minute. An address that has not failed for the account is
//!    never held back, so its owner can always sign in from a fresh address; a spread-out guesser
//!    gets one try per new address and then the shared trickle.
//! 4. **Room in the hashing pool** ([`crate::password`]): refused at once when full
//!    ([`Refused::Busy`]).
//!
//! Failures are rows of `sign_in_failures`, shared by every replica (the same table on SQLite
//! and PostgreSQL); a refused attempt (steps 1 to 4) writes nothing, and a success forgets the
//! failures of its own address. Rows older than [`WINDOW`] are swept whenever one is written, so
//! the table holds at most what the hashing pool can verify in one window. Unknown e-mails count
//! like known ones, so the lockout does not tell which accounts exist.

use std::net::IpAddr;
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use secrecy::SecretString;

use paygate_db::entities::sign_in_failure as failure;
use paygate_db::now_ms;
use paygate_web::ApiError;

use crate::operators::normalize_email;
use crate::password::{BUSY_RETRY_AFTER, PasswordPool, Permit};

/// Failures of one account from one address that lock it out there.
pub const ADDRESS_LIMIT: u64 = 5;
/// How long failures count, and how long a lockout lasts after the last of them.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures of one account from anywhere after which its failed addresses are slowed down.
pub const ACCOUNT_SLOWDOWN_AFTER: u64 = 2 * ADDRESS_LIMIT;
/// Attempts a minute the failed addresses of a slowed-down account share.
pub const SLOWED_PER_MINUTE: u64 = 3;

const MINUTE_MS: i64 = 60_000;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Why an attempt was refused before its password was checked.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("email: must be an e-mail address")]
    InvalidEmail,
    #[error("too many failed sign-ins; try again later")]
    TooManyAttempts { retry_after: Duration },
    #[error("too many sign-ins are being checked; try again in a moment")]
    Busy { retry_after: Duration },
    #[error("database error")]
    Db(#[from] DbErr),
}

/// How the admin API answers: 422 `invalid_email` naming the field, 429 `too_many_attempts` and
/// 503 `busy` with `Retry-After`, 500 otherwise.
impl From<Refused> for ApiError {
    fn from(e: Refused) -> Self {
        match e {
            Refused::InvalidEmail => {
                ApiError::unprocessable("invalid_email", e.to_string()).with_field("email")
            }
            Refused::TooManyAttempts { retry_after } => ApiError::too_many_requests(
                "too_many_attempts",
                format!(
                    "too many failed sign-ins; try again in {} s",
                    retry_after.as_secs().max(1)
                ),
            )
            .with_retry_after(retry_after),
            Refused::Busy { retry_after } => {
                ApiError::service_unavailable("busy", e.to_string()).with_retry_after(retry_after)
            }
            Refused::Db(e) => ApiError::from(e),
        }
    }
}

/// An attempt admitted to check a password: verify, then report the outcome.
#[derive(Debug)]
pub struct Attempt {
    account: String,
    client: String,
    permit: Permit,
}

/// Starts a sign-in attempt of `email` from `client` (see the module's policy).
pub async fn begin<C: ConnectionTrait>(
    db: &C,
    email: &str,
    client: Option<IpAddr>,
) -> Result<Attempt, Refused> {
    let account = normalize_email(email).map_err(|_| Refused::InvalidEmail)?;
    let client_key = client.map(|ip| ip.to_string()).unwrap_or_default();
    if let Some(retry_after) = held_back(db, &account, &client_key, now_ms()).await? {
        return Err(Refused::TooManyAttempts { retry_after });
    }
    let permit = PasswordPool::global()
        .try_admit(client)
        .map_err(|_| Refused::Busy {
            retry_after: BUSY_RETRY_AFTER,
        })?;
    Ok(Attempt {
        account,
        client: client_key,
        permit,
    })
}

impl Attempt {
    /// The normalized e-mail.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Whether `password` matches `hash` (`None`: an unknown account, checked at the same cost
    /// against a dummy hash, and `false`).
    pub async fn verify(&mut self, hash: Option<&str>, password: &SecretString) -> bool {
        self.permit.verify(hash, password).await
    }

    /// Records the failure (and sweeps expired ones).
    pub async fn failed<C: ConnectionTrait>(self, db: &C) -> Result<(), DbErr> {
        let Attempt {
            account,
            client,
            permit,
        } = self;
        // The pool's room is free for the next attempt while this one is written down.
        drop(permit);
        let now = now_ms();
        failure::ActiveModel {
            account: Set(account),
            client: Set(client),
            failed_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await?;
        failure::Entity::delete_many()
            .filter(failure::Column::FailedAt.lte(now - ms(WINDOW)))
            .exec(db)
            .await?;
        Ok(())
    }

    /// Forgets the failures of this account from this address.
    pub async fn succeeded<C: ConnectionTrait>(self, db: &C) -> Result<(), DbErr> {
        let Attempt {
            account,
            client,
            permit,
        } = self;
        drop(permit);
        failure::Entity::delete_many()
            .filter(failure::Column::Account.eq(account))
            .filter(failure::Column::Client.eq(client))
            .exec(db)
            .await?;
        Ok(())
    }
}

/// The newest `limit` failure times of `account` (from `client` when given) since `since`.
async fn failure_times<C: ConnectionTrait>(
    db: &C,
    account: &str,
    client: Option<&str>,
    since: i64,
    limit: u64,
) -> Result<Vec<i64>, DbErr> {
    let mut q = failure::Entity::find()
        .select_only()
        .column(failure::Column::FailedAt)
        .filter(failure::Column::Account.eq(account))
        .filter(failure::Column::FailedAt.gt(since));
    if let Some(c) = client {
        q = q.filter(failure::Column::Client.eq(c));
    }
    q.order_by_desc(failure::Column::FailedAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

fn wait_until(until: i64, now: i64) -> Option<Duration> {
    (until > now).then(|| Duration::from_millis(u64::try_from(until - now).unwrap_or(0)))
}

/// How long `account` is held back from `client`, if it is (steps 2 and 3 of the policy).
async fn held_back<C: ConnectionTrait>(
    db: &C,
    account: &str,
    client: &str,
    now: i64,
) -> Result<Option<Duration>, DbErr> {
    let since = now - ms(WINDOW);
    let mine = failure_times(db, account, Some(client), since, ADDRESS_LIMIT).await?;
    let Some(&latest) = mine.first() else {
        // An address that has not failed for this account is never held back.
        return Ok(None);
    };
    if mine.len() as u64 >= ADDRESS_LIMIT {
        return Ok(wait_until(latest + ms(WINDOW), now));
    }
    let all = failure_times(db, account, None, since, ACCOUNT_SLOWDOWN_AFTER).await?;
    if (all.len() as u64) < ACCOUNT_SLOWDOWN_AFTER {
        return Ok(None);
    }
    // Slowed down: the newest SLOWED_PER_MINUTE failures all within the last minute mean the
    // minute's share is used up until the oldest of them is a minute old.
    let share = usize::try_from(SLOWED_PER_MINUTE).unwrap_or(usize::MAX);
    match all.get(share - 1) {
        Some(&t) if t > now - MINUTE_MS => Ok(wait_until(t + MINUTE_MS, now)),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_db;

    async fn fail(db: &sea_orm::DatabaseConnection, account: &str, client: &str, at: i64) {
        failure::ActiveModel {
            account: Set(account.to_owned()),
            client: Set(client.to_owned()),
            failed_at: Set(at),
            ..Default::default()
        }
        .insert(db)
        .await
        .expect("db");
    }

    #[tokio::test]
    async fn five_failures_lock_one_address_for_fifteen_minutes_after_the_last() {
        let db = test_db().await;
        let now = now_ms();
        for n in 0..4 {
            fail(&db, "a@example.com", "203.0.113.1", now - 1000 * n).await;
        }
        assert_eq!(
            held_back(&db, "a@example.com", "203.0.113.1", now)
                .await
                .expect("db"),
            None
        );
        fail(&db, "a@example.com", "203.0.113.1", now - 10_000).await;
        let wait = held_back(&db, "a@example.com", "203.0.113.1", now)
            .await
            .expect("db")
            .expect("locked");
        assert_eq!(wait, WINDOW);
        // Another address, another account: untouched.
        assert_eq!(
            held_back(&db, "a@example.com", "198.51.100.1", now)
                .await
                .expect("db"),
            None
        );
        assert_eq!(
            held_back(&db, "b@example.com", "203.0.113.1", now)
                .await
                .expect("db"),
            None
        );
        // Fifteen minutes after the last failure, it is over.
        let later = now + ms(WINDOW);
        assert_eq!(
            held_back(&db, "a@example.com", "203.0.113.1", later)
                .await
                .expect("db"),
            None
        );
    }

    #[tokio::test]
    async fn a_slowed_account_spares_fresh_addresses_and_lets_a_trickle_through() {
        let db = test_db().await;
        let now = now_ms();
        // Ten failures from ten addresses, the newest three within the last minute.
        for n in 0..10 {
            fail(
                &db,
                "a@example.com",
                &format!("203.0.113.{n}"),
                now - 5_000 * n,
            )
            .await;
        }
        let wait = held_back(&db, "a@example.com", "203.0.113.9", now)
            .await
            .expect("db")
            .expect("slowed");
        assert_eq!(wait, Duration::from_millis(50_000));
        assert_eq!(
            held_back(&db, "a@example.com", "198.51.100.1", now)
                .await
                .expect("db"),
            None
        );
        // A minute on, the trickle flows again.
        assert_eq!(
            held_back(&db, "a@example.com", "203.0.113.9", now + 50_000)
                .await
                .expect("db"),
            None
        );
    }
}
