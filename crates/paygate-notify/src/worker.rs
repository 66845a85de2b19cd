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
//!
//! Fairness (one company's slow or silent endpoint must not delay the others): a destination
//! (an endpoint; a company's shopper e-mails count as one) has at most `endpoint_concurrency`
//! deliveries in flight across replicas, counted from the live leases, and one company holds at
//! most `company_concurrency` of this pool's slots. A claim takes the oldest due deliveries of
//! every destination (at most that many each), skips destinations and companies already at
//! their limit, and deals the free slots out one company at a time. The running pool claims as
//! soon as a slot is free rather than batch after batch, so nothing waits for the slowest
//! delivery of a batch. Each attempt has a total budget (`connect_timeout + timeout`: connect,
//! send, the whole answer; for e-mail the whole SMTP exchange), and the leases of the deliveries
//! still running are extended every third of a lease, so a slow delivery is never taken over
//! and sent twice while it is alive.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::Rng;
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, LockBehavior, LockType, Order, OverStatement, Query, WindowStatement,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use paygate_db::entities::{
    company, notification_attempt, notification_delivery, notification_endpoint,
    notification_message, notification_settings, order,
};
use paygate_db::{NotificationStatus, Scope, Tenant, new_id, now_ms};
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
    /// The most a round of [`DeliveryPool::drain`] claims.
    pub batch_size: u64,
    /// Deliveries in flight at once in this pool.
    pub concurrency: usize,
    /// Deliveries to one destination (an endpoint, or a company's shopper e-mails) in flight at
    /// once, across replicas.
    pub endpoint_concurrency: usize,
    /// Slots of this pool one company may hold at once.
    pub company_concurrency: usize,
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
            endpoint_concurrency: 4,
            company_concurrency: 8,
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

    /// Runs until `cancel`: claims due deliveries whenever a slot is free (and no destination
    /// or company is over its limit), delivers them side by side, keeps their leases alive, and
    /// sleeps when nothing is due. On `cancel` it claims nothing more and returns once the
    /// deliveries in flight are recorded (each within its attempt's budget).
    pub fn spawn(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { me.run(cancel).await })
    }

    async fn run(&self, cancel: CancellationToken) {
        let i = &self.inner;
        let slots = i.config.concurrency.max(1);
        // Each delivery is a task of its own: a query it has started must go on while this
        // loop awaits the database too (SQLite has a single connection).
        let mut in_flight: tokio::task::JoinSet<Result<(), DbErr>> = tokio::task::JoinSet::new();
        let mut running: HashMap<tokio::task::Id, i64> = HashMap::new();
        let mut beat = tokio::time::interval(self.heartbeat_every());
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut claim = true;
        loop {
            if claim && !cancel.is_cancelled() && in_flight.len() < slots {
                match self.claim(slots - in_flight.len()).await {
                    Ok(rows) => {
                        for row in rows {
                            let id = row.id;
                            let me = self.clone();
                            let task = in_flight.spawn(async move { me.deliver(row).await });
                            running.insert(task.id(), id);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "claiming notification deliveries failed");
                    }
                }
            }
            claim = false;
            if cancel.is_cancelled() && in_flight.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    // Every delivery finished by now frees its slot before the next claim.
                    let mut done = Some(done);
                    while let Some(d) = done {
                        let (task, outcome) = match d {
                            Ok((task, r)) => (task, r.map_err(|e| error_chain(&e))),
                            // A panic: the lease runs out and the delivery is sent again.
                            Err(e) => (e.id(), Err(e.to_string())),
                        };
                        let delivery = running.remove(&task);
                        if let Err(e) = outcome {
                            tracing::warn!(delivery, error = %e, "a notification delivery could not be recorded");
                        }
                        done = in_flight.try_join_next_with_id();
                    }
                    claim = true;
                }
                _ = beat.tick(), if !running.is_empty() => {
                    let ids: HashSet<i64> = running.values().copied().collect();
                    if let Err(e) = self.extend_leases(&ids).await {
                        tracing::warn!(error = %error_chain(&e), "extending notification delivery leases failed");
                    }
                }
                () = cancel.cancelled(), if !cancel.is_cancelled() => {}
                () = i.wake.notified() => claim = true,
                () = tokio::time::sleep(i.config.poll_interval) => claim = true,
            }
        }
    }

    /// How often the leases of running deliveries are extended: three times per lease.
    fn heartbeat_every(&self) -> Duration {
        (self.inner.config.lease / 3).max(Duration::from_millis(50))
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

    /// One round: claims a batch (within the limits) and delivers it, keeping its leases alive
    /// until every delivery of it is recorded.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        let i = &self.inner;
        let rows = self
            .claim(usize::try_from(i.config.batch_size).unwrap_or(usize::MAX))
            .await?;
        let n = rows.len();
        if n == 0 {
            return Ok(0);
        }
        let ids: HashSet<i64> = rows.iter().map(|r| r.id).collect();
        // The leases are kept alive by a task of its own (the deliveries' queries go on while
        // it waits for the database: SQLite has a single connection).
        let stop = CancellationToken::new();
        let _stop_on_drop = stop.clone().drop_guard();
        let heart = {
            let me = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut beat = tokio::time::interval(me.heartbeat_every());
                beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                beat.tick().await;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = beat.tick() => {
                            // Rows already recorded have no lease any more and are left alone.
                            if let Err(e) = me.extend_leases(&ids).await {
                                tracing::warn!(error = %error_chain(&e), "extending notification delivery leases failed");
                            }
                        }
                    }
                }
            })
        };
        let results: Vec<Result<(), DbErr>> = futures_util::stream::iter(rows)
            .map(|r| self.deliver(r))
            .buffer_unordered(i.config.concurrency.max(1))
            .collect()
            .await;
        stop.cancel();
        let _ = heart.await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    /// Extends the leases this pool holds on `ids` that are still running (a recorded attempt
    /// clears its lease; a lease another worker took over is not ours any more).
    async fn extend_leases(&self, ids: &HashSet<i64>) -> Result<(), DbErr> {
        let i = &self.inner;
        let until = now_ms() + lease_ms(i.config.lease);
        let ids: Vec<i64> = ids.iter().copied().collect();
        for chunk in ids.chunks(500) {
            notification_delivery::Entity::update_many()
                .col_expr(
                    notification_delivery::Column::LockedUntil,
                    Expr::value(until),
                )
                .filter(notification_delivery::Column::Id.is_in(chunk.iter().copied()))
                .filter(notification_delivery::Column::LockedBy.eq(i.id.clone()))
                .filter(notification_delivery::Column::LockedUntil.is_not_null())
                .filter(
                    notification_delivery::Column::Status.eq(NotificationStatus::Pending.as_str()),
                )
                .exec(&i.db)
                .await?;
        }
        Ok(())
    }

    /// Claims up to `want` due deliveries within the limits (see the module's policy) and
    /// leases them to this pool.
    async fn claim(&self, want: usize) -> Result<Vec<notification_delivery::Model>, DbErr> {
        use notification_delivery::Column as Col;
        let i = &self.inner;
        if want == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let txn = i.db.begin().await?;
        // What is in flight now, across replicas: the live leases.
        let leased: Vec<(i64, Option<String>, Option<String>, i64)> =
            notification_delivery::Entity::find()
                .select_only()
                .column(Col::CompanyPk)
                .column(Col::EndpointId)
                .column(Col::LockedBy)
                .column_as(Expr::col(Col::Id).count(), "n")
                .filter(Col::Status.eq(NotificationStatus::Pending.as_str()))
                .filter(Col::LockedUntil.gt(now))
                .group_by(Col::CompanyPk)
                .group_by(Col::EndpointId)
                .group_by(Col::LockedBy)
                .into_tuple()
                .all(&txn)
                .await?;
        let mut busy = Busy::default();
        for (company, endpoint, by, n) in leased {
            let n = usize::try_from(n).unwrap_or(0);
            *busy.destinations.entry((company, endpoint)).or_default() += n;
            if by.as_deref() == Some(i.id.as_str()) {
                *busy.companies.entry(company).or_default() += n;
            }
        }
        // The oldest due deliveries of each destination, at most its limit each: first every
        // destination's oldest, then every destination's second…
        let cap = i.config.endpoint_concurrency.max(1);
        let mut per_destination = WindowStatement::partition_by(Col::CompanyPk);
        per_destination
            .add_partition_by(Expr::col(Col::EndpointId))
            .order_by(Col::NextAttemptAt, Order::Asc)
            .order_by(Col::Id, Order::Asc);
        let rank = Alias::new("rank_in_destination");
        let due = Query::select()
            .columns([Col::Id, Col::CompanyPk, Col::EndpointId, Col::NextAttemptAt])
            .expr_window_as(Expr::cust("ROW_NUMBER()"), per_destination, rank.clone())
            .from(notification_delivery::Entity)
            .and_where(Expr::col(Col::Status).eq(NotificationStatus::Pending.as_str()))
            .and_where(Expr::col(Col::NextAttemptAt).lte(now))
            .cond_where(
                Condition::any()
                    .add(Expr::col(Col::LockedUntil).is_null())
                    .add(Expr::col(Col::LockedUntil).lt(now)),
            )
            .to_owned();
        let window = u64::try_from(want.saturating_mul(4).max(256)).unwrap_or(u64::MAX);
        let candidates = Query::select()
            .columns([Col::Id, Col::CompanyPk, Col::EndpointId])
            .from_subquery(due, Alias::new("due"))
            .and_where(Expr::col(rank.clone()).lte(i64::try_from(cap).unwrap_or(i64::MAX)))
            .order_by(rank, Order::Asc)
            .order_by(Col::NextAttemptAt, Order::Asc)
            .order_by(Col::Id, Order::Asc)
            .limit(window)
            .to_owned();
        let candidates = txn
            .query_all(&candidates)
            .await?
            .iter()
            .map(|r| {
                Ok(Candidate {
                    id: r.try_get("", "id")?,
                    company_pk: r.try_get("", "company_pk")?,
                    endpoint_id: r.try_get("", "endpoint_id")?,
                })
            })
            .collect::<Result<Vec<_>, DbErr>>()?;
        let picked = pick(
            candidates,
            busy,
            Limits {
                destination: cap,
                company: i.config.company_concurrency.max(1),
            },
            want,
        );
        if picked.is_empty() {
            txn.commit().await?;
            return Ok(Vec::new());
        }
        let mut q = notification_delivery::Entity::find()
            .filter(Col::Id.is_in(picked.iter().copied()))
            .filter(Col::Status.eq(NotificationStatus::Pending.as_str()))
            .filter(
                Condition::any()
                    .add(Col::LockedUntil.is_null())
                    .add(Col::LockedUntil.lt(now)),
            );
        if i.db.get_database_backend() == DatabaseBackend::Postgres {
            q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let mut rows = q.all(&txn).await?;
        if !rows.is_empty() {
            notification_delivery::Entity::update_many()
                .col_expr(
                    Col::LockedUntil,
                    Expr::value(now + lease_ms(i.config.lease)),
                )
                .col_expr(Col::LockedBy, Expr::value(i.id.clone()))
                .filter(Col::Id.is_in(rows.iter().map(|r| r.id)))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        // In the order they were dealt: the fairest first.
        let order: HashMap<i64, usize> =
            picked.iter().enumerate().map(|(n, id)| (*id, n)).collect();
        rows.sort_by_key(|r| order.get(&r.id).copied().unwrap_or(usize::MAX));
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
        let secrets = match i.service.live_secrets(ep.company_pk, &ep.id).await {
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
        let request = i
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &m.id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(m.payload.clone());
        let attempt = match tokio::time::timeout(self.budget(), self.post(request)).await {
            Ok(a) => a,
            Err(_) => Attempt::failed(self.over_budget()),
        };
        Ok((attempt, Some(ep)))
    }

    /// The whole time one attempt may take: connecting, sending, and the whole answer (or the
    /// whole SMTP exchange).
    fn budget(&self) -> Duration {
        self.inner.config.connect_timeout + self.inner.config.timeout
    }

    fn over_budget(&self) -> String {
        format!(
            "timed out: no complete answer within {} s",
            self.budget().as_secs()
        )
    }

    /// Sends a webhook and reads (some of) its answer.
    async fn post(&self, request: reqwest::RequestBuilder) -> Attempt {
        let i = &self.inner;
        match request.send().await {
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
        }
    }

    /// Where a shopper whose order's payment failed, expired or was cancelled goes back to pay
    /// again (issue 20): the order's Checkout `cancel_url`, else its `return_url`; `None` for
    /// other messages and for orders with neither.
    async fn pay_again_url(
        &self,
        m: &notification_message::Model,
        object: &serde_json::Value,
    ) -> Result<Option<String>, DbErr> {
        if !matches!(
            m.event_type.as_str(),
            "order.payment_failed" | "order.expired" | "order.canceled"
        ) {
            return Ok(None);
        }
        let Some(id) = object["id"].as_str() else {
            return Ok(None);
        };
        let o = Scope::of_livemode(m.company_pk, m.livemode)
            .find::<order::Entity>()
            .filter(order::Column::Id.eq(id))
            .one(&self.inner.db)
            .await?;
        Ok(o.and_then(|o| o.cancel_url.or(o.return_url)))
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
        let object = &payload["data"]["object"];
        let pay_again = self.pay_again_url(m, object).await?;
        let Some(mail) = compose(&m.event_type, object, lang, &sender, pay_again.as_deref()) else {
            return Ok(Attempt::permanent("no e-mail for this message type"));
        };
        let sent =
            tokio::time::timeout(self.budget(), mailer.send(to, Some(&sender), &m.id, mail)).await;
        Ok(match sent {
            Ok(Ok(())) => Attempt {
                ok: true,
                ..Attempt::default()
            },
            Ok(Err(e)) => Attempt::failed(e),
            Err(_) => Attempt::failed(self.over_budget()),
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

/// A due delivery as a claim sees it.
#[derive(Clone, Debug)]
struct Candidate {
    id: i64,
    company_pk: i64,
    /// `None`: a shopper e-mail (a company's e-mails are one destination).
    endpoint_id: Option<String>,
}

/// Deliveries in flight: per destination (company, endpoint) across replicas, and per company
/// in this pool.
#[derive(Debug, Default)]
struct Busy {
    destinations: HashMap<(i64, Option<String>), usize>,
    companies: HashMap<i64, usize>,
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    /// In flight per destination.
    destination: usize,
    /// Slots of this pool per company.
    company: usize,
}

/// Deals out up to `want` of `candidates` (in the order given: each destination's oldest
/// first), one company at a time in the order of their first candidate, never taking a
/// destination or a company past its limit. Returns the ids in the order dealt.
fn pick(candidates: Vec<Candidate>, mut busy: Busy, limits: Limits, want: usize) -> Vec<i64> {
    let mut companies: Vec<i64> = Vec::new();
    let mut queues: HashMap<i64, VecDeque<Candidate>> = HashMap::new();
    for c in candidates {
        let pk = c.company_pk;
        queues
            .entry(pk)
            .or_insert_with(|| {
                companies.push(pk);
                VecDeque::new()
            })
            .push_back(c);
    }
    let mut picked = Vec::new();
    loop {
        let mut dealt = false;
        for company in &companies {
            if picked.len() >= want {
                return picked;
            }
            let Some(queue) = queues.get_mut(company) else {
                continue;
            };
            let held = busy.companies.entry(*company).or_default();
            if *held >= limits.company {
                queue.clear();
                continue;
            }
            while let Some(c) = queue.pop_front() {
                let n = busy
                    .destinations
                    .entry((c.company_pk, c.endpoint_id))
                    .or_default();
                if *n < limits.destination {
                    *n += 1;
                    *held += 1;
                    picked.push(c.id);
                    dealt = true;
                    break;
                }
            }
        }
        if !dealt {
            return picked;
        }
    }
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4)
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

    fn due(id: i64, company_pk: i64, endpoint: Option<&str>) -> Candidate {
        Candidate {
            id,
            company_pk,
            endpoint_id: endpoint.map(str::to_owned),
        }
    }

    const LIMITS: Limits = Limits {
        destination: 4,
        company: 8,
    };

    #[test]
    fn a_claim_deals_companies_in_turn_within_the_endpoint_limit() {
        // Company 1's ten deliveries to one endpoint are older than company 2's one.
        let mut c: Vec<Candidate> = (1..=4).map(|id| due(id, 1, Some("ne_a"))).collect();
        c.push(due(100, 2, Some("ne_b")));
        let picked = pick(c, Busy::default(), LIMITS, 16);
        assert_eq!(picked, [1, 100, 2, 3, 4]);
        // Only as many as wanted.
        let c = vec![
            due(1, 1, Some("ne_a")),
            due(2, 2, Some("ne_b")),
            due(3, 1, Some("ne_a")),
        ];
        assert_eq!(pick(c, Busy::default(), LIMITS, 2), [1, 2]);
    }

    #[test]
    fn a_destination_or_company_at_its_limit_is_skipped() {
        let c = vec![
            due(1, 1, Some("ne_a")),
            due(2, 1, None),
            due(3, 2, Some("ne_b")),
        ];
        let mut busy = Busy::default();
        busy.destinations.insert((1, Some("ne_a".into())), 4);
        assert_eq!(pick(c.clone(), busy, LIMITS, 16), [2, 3]);
        let mut busy = Busy::default();
        busy.companies.insert(1, 8);
        assert_eq!(pick(c, busy, LIMITS, 16), [3]);
        // A company's e-mails are one destination.
        let mails: Vec<Candidate> = (1..=6).map(|id| due(id, 1, None)).collect();
        assert_eq!(pick(mails, Busy::default(), LIMITS, 16), [1, 2, 3, 4]);
    }

    #[test]
    fn one_company_never_holds_more_than_its_share() {
        // Three endpoints of company 1, each with four due (each endpoint's oldest first).
        let mut c = Vec::new();
        for round in 0..4 {
            for (n, ep) in ["ne_a", "ne_b", "ne_c"].iter().enumerate() {
                c.push(due(round * 10 + n as i64, 1, Some(ep)));
            }
        }
        c.push(due(99, 2, Some("ne_z")));
        let limits = Limits {
            destination: 4,
            company: 4,
        };
        let picked = pick(c, Busy::default(), limits, 16);
        assert_eq!(picked, [0, 99, 1, 2, 10]);
    }

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
