//! Delivery workers over the outbox.
//!
//! Policy: a worker claims due deliveries (`pending`, due, lease free or expired) and leases
//! them; on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so every replica shares the queue. A 2xx
//! answer is success; anything else, a timeout or a refused connection is a failed attempt,
//! retried after the next delay of the schedule (plus up to 10 % jitter) until the schedule is
//! used up, then the delivery is `failed` and stays replayable. Every attempt is recorded. An
//! endpoint whose deliveries have all failed for `disable_after` is disabled, with the reason
//! kept for the back office. A worker that dies mid-delivery leaves the lease to expire and the
//! delivery is sent again: at-least-once, with the same `webhook-id`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::Rng;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use paygate_db::entities::{
    company, notification_attempt, notification_delivery, notification_endpoint,
    notification_message, notification_settings,
};
use paygate_db::{NotificationStatus, Tenant, new_id, now_ms};
use paygate_web::metrics::Metrics;
use paygate_web::{error_chain, rfc3339_ms};

use crate::email::{Mailer, compose, language};
use crate::outbound;
use crate::service::NotifyService;
use crate::signing::signature_header;

/// About three days, as Stripe's own retries.
pub const DEFAULT_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h,14h,20h,10h";

/// Reads a retry schedule such as `5s,5m,30m,2h` (units `ms`, `s`, `m`, `h`, `d`).
pub fn parse_schedule(s: &str) -> Result<Vec<Duration>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let split = part
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{part:?} has no unit (ms, s, m, h or d)"))?;
        let (n, unit) = part.split_at(split);
        let n: u64 = n
            .parse()
            .map_err(|_| format!("{part:?} does not start with a number"))?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            _ => return Err(format!("{part:?}: unknown unit {unit:?}")),
        };
        out.push(d);
    }
    if out.is_empty() {
        return Err("the retry schedule is empty".into());
    }
    Ok(out)
}

/// Knobs of the delivery workers.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Delays after each failed attempt; when used up, the delivery fails.
    pub schedule: Vec<Duration>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// The most of an answer read (the rest is dropped).
    pub max_response_bytes: usize,
    /// How much of an answer is recorded with the attempt.
    pub recorded_response_bytes: usize,
    pub batch_size: u64,
    pub concurrency: usize,
    pub lease: Duration,
    /// An endpoint failing this long is disabled.
    pub disable_after: Duration,
    pub poll_interval: Duration,
    pub allow_private: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            schedule: parse_schedule(DEFAULT_SCHEDULE).unwrap_or_default(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_response_bytes: 64 * 1024,
            recorded_response_bytes: 1024,
            batch_size: 64,
            concurrency: 16,
            lease: Duration::from_secs(60),
            disable_after: Duration::from_secs(5 * 86_400),
            poll_interval: Duration::from_millis(250),
            allow_private: false,
        }
    }
}

/// The outcome of one attempt.
#[derive(Debug, Default)]
struct Attempt {
    ok: bool,
    /// Retrying cannot help (the endpoint is gone or disabled).
    permanent: bool,
    status_code: Option<i32>,
    error: Option<String>,
    body: Option<String>,
}

impl Attempt {
    fn failed(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::default()
        }
    }
    fn permanent(error: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::failed(error)
        }
    }
}

struct Inner {
    db: DatabaseConnection,
    service: NotifyService,
    client: reqwest::Client,
    mailer: Option<Mailer>,
    config: DeliveryConfig,
    id: String,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
}

/// The delivery workers of one process.
#[derive(Clone)]
pub struct DeliveryPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DeliveryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryPool")
            .field("id", &self.inner.id)
            .finish()
    }
}

impl DeliveryPool {
    /// A pool over `db`; `service` reads the endpoints' secrets and its wake-up starts work.
    pub fn new(
        db: DatabaseConnection,
        service: NotifyService,
        mailer: Option<Mailer>,
        config: DeliveryConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let client =
            outbound::client(config.allow_private, config.connect_timeout, config.timeout)?;
        let wake = service.wake().clone();
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                service,
                client,
                mailer,
                config,
                id: new_id("dw"),
                wake,
                metrics,
            }),
        })
    }

    /// Runs until `cancel`: claims and delivers due deliveries, sleeping when none is due.
    pub fn spawn(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if cancel.is_cancelled() {
                    break;
                }
                let n = match me.run_once().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "notification delivery round failed");
                        0
                    }
                };
                if n == 0 {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = me.inner.wake.notified() => {}
                        () = tokio::time::sleep(me.inner.config.poll_interval) => {}
                    }
                }
            }
        })
    }

    /// Delivers everything due now, round after round, until nothing is due; returns how many
    /// attempts were made (tests and the CLI).
    pub async fn drain(&self) -> Result<usize, DbErr> {
        let mut total = 0;
        loop {
            let n = self.run_once().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// One round: claims a batch and delivers it.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        let rows = self.claim().await?;
        let n = rows.len();
        let results: Vec<Result<(), DbErr>> = futures_util::stream::iter(rows)
            .map(|r| self.deliver(r))
            .buffer_unordered(self.inner.config.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    async fn claim(&self) -> Result<Vec<notification_delivery::Model>, DbErr> {
        let i = &self.inner;
        let now = now_ms();
        let txn = i.db.begin().await?;
        let mut q = notification_delivery::Entity::find()
            .filter(notification_delivery::Column::Status.eq(NotificationStatus::Pending.as_str()))
            .filter(notification_delivery::Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(notification_delivery::Column::LockedUntil.is_null())
                    .add(notification_delivery::Column::LockedUntil.lt(now)),
            )
            .order_by_asc(notification_delivery::Column::NextAttemptAt)
            .limit(i.config.batch_size);
        if i.db.get_database_backend() == DatabaseBackend::Postgres {
            q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = q.all(&txn).await?;
        if !rows.is_empty() {
            notification_delivery::Entity::update_many()
                .col_expr(
                    notification_delivery::Column::LockedUntil,
                    Expr::value(now + i.config.lease.as_millis() as i64),
                )
                .col_expr(
                    notification_delivery::Column::LockedBy,
                    Expr::value(i.id.clone()),
                )
                .filter(notification_delivery::Column::Id.is_in(rows.iter().map(|r| r.id)))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(rows)
    }

    async fn deliver(&self, row: notification_delivery::Model) -> Result<(), DbErr> {
        let i = &self.inner;
        let started = Instant::now();
        let attempted_at = now_ms();
        let msg = notification_message::Entity::find_by_id(row.message_id.clone())
            .one(&i.db)
            .await?;
        let (attempt, endpoint) = match (&msg, row.channel.as_str()) {
            (None, _) => (Attempt::permanent("the message no longer exists"), None),
            (Some(m), "webhook") => self.webhook(&row, m).await?,
            (Some(m), "email") => (self.email(&row, m).await?, None),
            (Some(_), other) => (Attempt::permanent(format!("unknown channel {other}")), None),
        };
        let took = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        self.record(&row, attempt, attempted_at, took, endpoint)
            .await
    }

    async fn webhook(
        &self,
        row: &notification_delivery::Model,
        m: &notification_message::Model,
    ) -> Result<(Attempt, Option<notification_endpoint::Model>), DbErr> {
        let i = &self.inner;
        let Some(ep_id) = &row.endpoint_id else {
            return Ok((Attempt::permanent("no endpoint"), None));
        };
        let Some(ep) = notification_endpoint::Entity::find_by_id(ep_id.clone())
            .one(&i.db)
            .await?
        else {
            return Ok((Attempt::permanent("the endpoint was deleted"), None));
        };
        if !ep.enabled {
            return Ok((Attempt::permanent("the endpoint is disabled"), Some(ep)));
        }
        let url = match reqwest::Url::parse(&ep.url) {
            Ok(u) => u,
            Err(_) => return Ok((Attempt::failed("the endpoint URL is not valid"), Some(ep))),
        };
        if !i.config.allow_private
            && let Some(ip) = outbound::literal_is_private(&url)
        {
            return Ok((
                Attempt::failed(format!(
                    "refused: the URL points to a private address ({ip})"
                )),
                Some(ep),
            ));
        }
        let secrets = match i.service.live_secrets(&ep.id).await {
            Ok(s) => s,
            Err(_) => {
                return Ok((
                    Attempt::failed("the endpoint's secret is unreadable"),
                    Some(ep),
                ));
            }
        };
        let ts = attempted_at_secs();
        let body = m.payload.as_bytes();
        let sig = signature_header(secrets.iter().map(String::as_str), &m.id, ts, body);
        let sent = i
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &m.id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(m.payload.clone())
            .send()
            .await;
        let attempt = match sent {
            Ok(mut resp) => {
                let code = resp.status().as_u16();
                let mut buf: Vec<u8> = Vec::new();
                let mut read_error = None;
                while buf.len() < i.config.max_response_bytes {
                    match resp.chunk().await {
                        Ok(Some(c)) => buf.extend_from_slice(&c),
                        Ok(None) => break,
                        Err(e) => {
                            read_error = Some(describe(&e));
                            break;
                        }
                    }
                }
                buf.truncate(i.config.recorded_response_bytes);
                let text = String::from_utf8_lossy(&buf).into_owned();
                let ok = (200..300).contains(&code);
                Attempt {
                    ok,
                    permanent: false,
                    status_code: Some(i32::from(code)),
                    error: if ok {
                        None
                    } else {
                        Some(read_error.unwrap_or_else(|| format!("the endpoint answered {code}")))
                    },
                    body: Some(text).filter(|t| !t.is_empty()),
                }
            }
            Err(e) => Attempt::failed(describe(&e)),
        };
        Ok((attempt, Some(ep)))
    }

    async fn email(
        &self,
        row: &notification_delivery::Model,
        m: &notification_message::Model,
    ) -> Result<Attempt, DbErr> {
        let i = &self.inner;
        let Some(mailer) = &i.mailer else {
            return Ok(Attempt::failed("SMTP is not configured (PAYGATE_SMTP_URL)"));
        };
        let Some(to) = &row.recipient else {
            return Ok(Attempt::permanent("no recipient"));
        };
        let payload: serde_json::Value = serde_json::from_str(&m.payload).unwrap_or_default();
        let settings = Tenant::new(m.company_pk)
            .find::<notification_settings::Entity>()
            .one(&i.db)
            .await?;
        let company_name = company::Entity::find_by_id(m.company_pk)
            .one(&i.db)
            .await?
            .map(|c| c.name)
            .unwrap_or_default();
        let sender = settings.and_then(|s| s.sender_name).unwrap_or(company_name);
        let lang = language(row.language.as_deref());
        let Some(mail) = compose(&m.event_type, &payload["data"]["object"], lang, &sender) else {
            return Ok(Attempt::permanent("no e-mail for this message type"));
        };
        Ok(match mailer.send(to, Some(&sender), &m.id, mail).await {
            Ok(()) => Attempt {
                ok: true,
                ..Attempt::default()
            },
            Err(e) => Attempt::failed(e),
        })
    }

    async fn record(
        &self,
        row: &notification_delivery::Model,
        a: Attempt,
        attempted_at: i64,
        took_ms: i32,
        endpoint: Option<notification_endpoint::Model>,
    ) -> Result<(), DbErr> {
        let i = &self.inner;
        let now = now_ms();
        let attempts = row.attempts + 1;
        let (status, next) = if a.ok {
            (NotificationStatus::Succeeded, now)
        } else if a.permanent || attempts as usize > i.config.schedule.len() {
            (NotificationStatus::Failed, now)
        } else {
            let d = i.config.schedule[(attempts - 1) as usize];
            let jitter = rand::thread_rng().gen_range(0.0..0.1);
            let d = d.as_millis() as f64 * (1.0 + jitter);
            (NotificationStatus::Pending, now + d as i64)
        };
        i.metrics.delivery(match status {
            NotificationStatus::Pending => "retried",
            done => done.as_str(),
        });
        if !a.ok {
            tracing::info!(
                delivery = row.id,
                message = %row.message_id,
                attempt = attempts,
                status_code = a.status_code,
                error = a.error.as_deref().unwrap_or_default(),
                "notification delivery attempt failed"
            );
        }
        let txn = i.db.begin().await?;
        let mine = notification_delivery::Entity::update_many()
            .col_expr(
                notification_delivery::Column::Status,
                Expr::value(status.as_str()),
            )
            .col_expr(
                notification_delivery::Column::Attempts,
                Expr::value(attempts),
            )
            .col_expr(
                notification_delivery::Column::NextAttemptAt,
                Expr::value(next),
            )
            .col_expr(
                notification_delivery::Column::LockedUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(
                notification_delivery::Column::LastStatusCode,
                Expr::value(a.status_code),
            )
            .col_expr(
                notification_delivery::Column::LastError,
                Expr::value(a.error.clone()),
            )
            .col_expr(
                notification_delivery::Column::DeliveredAt,
                Expr::value(a.ok.then_some(now)),
            )
            .col_expr(notification_delivery::Column::UpdatedAt, Expr::value(now))
            .filter(notification_delivery::Column::Id.eq(row.id))
            .filter(notification_delivery::Column::LockedBy.eq(i.id.clone()))
            .filter(notification_delivery::Column::Status.eq(NotificationStatus::Pending.as_str()))
            .exec(&txn)
            .await?
            .rows_affected;
        if mine == 0 {
            // Our lease expired and another worker took the delivery over: its record counts.
            txn.rollback().await?;
            return Ok(());
        }
        notification_attempt::Entity::insert(notification_attempt::ActiveModel {
            delivery_id: Set(row.id),
            attempted_at: Set(attempted_at),
            status_code: Set(a.status_code),
            duration_ms: Set(took_ms),
            error: Set(a.error),
            response_body: Set(a.body),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await?;
        if let Some(ep) = endpoint.filter(|e| e.enabled) {
            self.track_endpoint(&txn, &ep, a.ok, now).await?;
        }
        txn.commit().await
    }

    /// Notes when an endpoint started failing, clears it on success, and disables an endpoint
    /// that has failed for `disable_after`.
    async fn track_endpoint<C: ConnectionTrait>(
        &self,
        db: &C,
        ep: &notification_endpoint::Model,
        ok: bool,
        now: i64,
    ) -> Result<(), DbErr> {
        let q = notification_endpoint::Entity::update_many()
            .filter(notification_endpoint::Column::Id.eq(ep.id.clone()));
        if ok {
            if ep.failing_since.is_some() {
                q.col_expr(
                    notification_endpoint::Column::FailingSince,
                    Expr::value(Option::<i64>::None),
                )
                .exec(db)
                .await?;
            }
            return Ok(());
        }
        match ep.failing_since {
            None => {
                q.col_expr(
                    notification_endpoint::Column::FailingSince,
                    Expr::value(now),
                )
                .filter(notification_endpoint::Column::FailingSince.is_null())
                .exec(db)
                .await?;
            }
            Some(since) if now - since >= self.inner.config.disable_after.as_millis() as i64 => {
                let reason = format!(
                    "disabled by Paygate at {}: every delivery has failed since {}; fix the endpoint, enable it again and replay the failed messages",
                    rfc3339_ms(now),
                    rfc3339_ms(since)
                );
                tracing::warn!(endpoint = %ep.id, "notification endpoint disabled after failing for too long");
                q.col_expr(notification_endpoint::Column::Enabled, Expr::value(false))
                    .col_expr(
                        notification_endpoint::Column::DisabledReason,
                        Expr::value(reason),
                    )
                    .col_expr(notification_endpoint::Column::UpdatedAt, Expr::value(now))
                    .exec(db)
                    .await?;
            }
            Some(_) => {}
        }
        Ok(())
    }
}

fn attempted_at_secs() -> i64 {
    now_ms() / 1000
}

/// A delivery error in plain words.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("could not connect: {}", error_chain(e))
    } else {
        error_chain(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_read_every_unit() {
        assert_eq!(
            parse_schedule("5s, 5m,30m,2h,1d,250ms"),
            Ok(vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(1800),
                Duration::from_secs(7200),
                Duration::from_secs(86_400),
                Duration::from_millis(250),
            ])
        );
        assert!(parse_schedule("").is_err());
        assert!(parse_schedule("5").is_err());
        assert!(parse_schedule("5y").is_err());
        let total: Duration = parse_schedule(DEFAULT_SCHEDULE)
            .unwrap_or_default()
            .iter()
            .sum();
        assert!(total >= Duration::from_secs(60 * 3600) && total <= Duration::from_secs(80 * 3600));
    }
}
