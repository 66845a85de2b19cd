//! Wiring: the database, every part's state, the HTTP app and the background tasks.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, web};
use anyhow::Context;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::sync::Notify;

use paygate_admin::intake::IntakeState;
use paygate_admin::{AdminState, JwtKeys};
use paygate_db::DbOptions;
use paygate_router::worker::{WorkerConfig, WorkerPool};
use paygate_router::{FailureRecorder, InboxWriter};
use paygate_stripe::{ClientConfig, StripeClient};
use paygate_tenant::TenantService;
use paygate_web::metrics::Metrics;
use paygate_web::{ApiError, json_config, path_config, query_config};

use crate::config::Settings;

/// Every shared part of a running Paygate.
#[derive(Clone, Debug)]
pub struct Paygate {
    pub settings: Settings,
    pub db: DatabaseConnection,
    pub tenants: TenantService,
    pub intake: IntakeState,
    pub admin: AdminState,
    /// Woken whenever the inbox stores something new.
    pub inbox_wake: Arc<Notify>,
    /// The Stripe API client (base URL from `PAYGATE_STRIPE_API_BASE`).
    pub stripe: StripeClient,
    /// Prometheus metrics of this process.
    pub metrics: Arc<Metrics>,
    /// The workers over the inbox.
    pub worker: WorkerPool,
    /// The workers delivering notifications.
    pub delivery: paygate_notify::DeliveryPool,
    /// The back office and operator console.
    pub backoffice: paygate_backoffice::BackofficeState,
    /// Requests in flight and whether a graceful stop has begun ([`Paygate::stop`]).
    pub drain: paygate_web::drain::Drain,
}

/// Opens and migrates the database (the data directory is created when needed).
pub async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        crate::keys::create_private_dir(&settings.data_dir).with_context(|| {
            format!(
                "creating the data directory {}",
                settings.data_dir.display()
            )
        })?;
    }
    let db = paygate_db::connect(&DbOptions {
        url: url.clone(),
        max_connections: settings.db_max_connections,
    })
    .await
    .context("connecting to the database")?;
    paygate_db::migrate(&db, &url)
        .await
        .context("migrating the database")?;
    Ok(db)
}

impl Paygate {
    /// Connects, migrates, creates the first operator if asked, and starts the intake's
    /// background writers. `actual_addr` is the bound address (for the default public URL).
    pub async fn build(
        settings: Settings,
        actual_addr: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<Self> {
        let keyring = crate::keys::load_keyring(&settings)?;
        let db = open_database(&settings).await?;
        // Before anything reads a secret: legacy values are bound to their rows once.
        crate::keys::bind_sealed_secrets(&db, &keyring)
            .await
            .context("binding the sealed secrets to their rows")?;
        let public_base_url = settings.public_base_url(actual_addr);
        let tenants = TenantService::new(
            db.clone(),
            keyring.clone(),
            public_base_url,
            Duration::from_secs(settings.cache_ttl_secs),
            Duration::from_secs(settings.signing_secret_grace_secs),
        );
        let is_sqlite = settings.database_url().starts_with("sqlite:");
        let writers = settings
            .inbox_writers
            // PostgreSQL: two, so one commit is in flight while the next batch gathers; more
            // writers commit fewer deliveries each, one lets a stalled commit stall everything
            // (measured in docs/benchmarks.md, tenth pass).
            .unwrap_or(if is_sqlite { 1 } else { 2 });
        let inbox_wake = Arc::new(Notify::new());
        let metrics = Arc::new(Metrics::default());
        let writer = InboxWriter::spawn(
            db.clone(),
            writers,
            settings.inbox_batch_max,
            inbox_wake.clone(),
            metrics.clone(),
        )
        .context("starting the inbox writer")?;
        let failures = FailureRecorder::spawn(db.clone());
        let stripe = StripeClient::new(ClientConfig {
            api_base: settings.stripe_api_base.clone(),
            files_base: settings.stripe_files_base.clone(),
            request_timeout: Duration::from_secs(settings.stripe_timeout_secs.max(1)),
            ..ClientConfig::default()
        })
        .context("building the Stripe API client")?;
        let intake = IntakeState {
            tenants: tenants.clone(),
            writer: writer.clone(),
            failures: failures.clone(),
            tolerance_secs: i64::try_from(settings.webhook_tolerance_secs).unwrap_or(300),
            metrics: metrics.clone(),
            reject_throttle: (settings.intake_reject_limit_per_minute > 0).then(|| {
                Arc::new(paygate_web::throttle::Throttle::new(
                    settings.intake_reject_limit_per_minute,
                    Duration::from_secs(60),
                    Duration::from_secs(60),
                ))
            }),
        };
        let mailer = match &settings.smtp_url {
            Some(u) => Some(
                paygate_notify::Mailer::new(u.expose_secret(), &settings.smtp_from)
                    .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        let notify = paygate_notify::NotifyService::new(
            db.clone(),
            keyring.clone(),
            settings.outbound_allow_private,
            mailer.is_some(),
            Arc::new(Notify::new()),
        )
        .with_limits(paygate_notify::NotifyLimits {
            max_endpoints: settings.notify_max_endpoints_per_company,
            test_pings_per_hour: settings.notify_test_pings_per_hour,
        });
        let delivery = paygate_notify::DeliveryPool::new(
            db.clone(),
            notify.clone(),
            mailer,
            paygate_notify::DeliveryConfig {
                schedule: paygate_notify::parse_schedule(&settings.notify_retry_schedule)
                    .map_err(anyhow::Error::msg)?,
                connect_timeout: Duration::from_secs(settings.notify_connect_timeout_secs),
                timeout: Duration::from_secs(settings.notify_timeout_secs),
                disable_after: Duration::from_secs(settings.notify_disable_after_secs),
                concurrency: settings.notify_concurrency,
                endpoint_concurrency: settings.notify_endpoint_concurrency,
                company_concurrency: settings
                    .notify_company_concurrency
                    .unwrap_or(settings.notify_concurrency.div_ceil(2))
                    .min(settings.notify_concurrency),
                lease: Duration::from_secs(settings.notify_lease_secs),
                allow_private: settings.outbound_allow_private,
                ..paygate_notify::DeliveryConfig::default()
            },
            metrics.clone(),
        )
        .context("building the notification HTTP client")?;
        let admin = AdminState {
            notify,
            db: db.clone(),
            tenants: tenants.clone(),
            jwt: JwtKeys::new(&keyring.current().derive("paygate admin jwt v1")),
            token_ttl: Duration::from_secs(settings.admin_token_ttl_secs),
            failures,
            writer,
            stripe: stripe.clone(),
            metrics: metrics.clone(),
        };
        let backoffice = paygate_backoffice::BackofficeState::new(
            db.clone(),
            tenants.clone(),
            paygate_backoffice::SessionConfig {
                idle: Duration::from_secs(settings.session_idle_secs),
                absolute: Duration::from_secs(settings.session_max_secs),
            },
            admin.notify.clone(),
            stripe.clone(),
        )
        .with_local_addr(actual_addr)
        .with_shopper_lookups_per_minute(settings.shopper_lookups_per_minute);
        if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password)
            && paygate_admin::operators::count(&db).await? == 0
        {
            let op = paygate_admin::operators::create(
                &db,
                email,
                password.expose_secret().to_owned().into(),
            )
            .await
            .context("creating the operator from PAYGATE_ADMIN_EMAIL")?;
            tracing::info!(email = %op.email, "created the first operator");
        }

        let worker = WorkerPool::new(
            db.clone(),
            tenants.clone(),
            stripe.clone(),
            WorkerConfig {
                batch_size: settings.worker_batch_size,
                concurrency: settings.worker_concurrency,
                max_attempts: settings.worker_max_attempts,
                lease: Duration::from_secs(settings.worker_lease_secs),
                ..WorkerConfig::default()
            },
            inbox_wake.clone(),
            metrics.clone(),
        );
        worker.set_writer(admin.writer.clone());
        if settings.workers
            && let Some(reader) = paygate_db::connect_reader(&DbOptions {
                url: settings.database_url(),
                max_connections: 1,
            })
            .await
            .context("opening the workers' read-only connection")?
        {
            worker.set_reader(reader);
        }
        if settings.workers && settings.apply_at_intake {
            worker.apply_at_intake(&admin.writer);
        }
        Ok(Self {
            settings,
            db,
            tenants,
            intake,
            admin,
            inbox_wake,
            stripe,
            metrics,
            worker,
            delivery,
            backoffice,
            drain: paygate_web::drain::Drain::new(),
        })
    }

    /// While no operator exists: a new first-run setup link (`/setup/<token>` under the public
    /// base URL; every earlier link stops working), printed on standard output and logged at
    /// `warn` so it shows whatever the log level. Once an operator exists, nothing. The token
    /// appears only in this line: the request logs mask it (`paygate_tenant::setup`).
    pub async fn announce_setup_link(&self) -> anyhow::Result<()> {
        let Some(token) = paygate_tenant::setup::issue(&self.db)
            .await
            .context("issuing the first-run setup link")?
        else {
            return Ok(());
        };
        let line = format!(
            "No operator yet: open {}/setup/{} to create the first one",
            self.tenants.public_base_url().trim_end_matches('/'),
            token.expose_secret()
        );
        println!("{line}");
        tracing::warn!("{line}");
        Ok(())
    }

    /// Stops this replica in order, so that nothing acknowledged or in flight is cut off:
    ///
    /// 1. stop accepting connections (`/readyz` answers 503 from now on);
    /// 2. drain the requests in flight (every answer from now on closes its connection), up to
    ///    [`SHUTDOWN_TIMEOUT`];
    /// 3. stop the HTTP workers (their runtimes end only now, when no request needs them);
    /// 4. drain the writers (the rejected-delivery recorder; the inbox writer has answered every
    ///    request by step 2);
    /// 5. stop the background workers (each finishes its batch);
    /// 6. close the database pool (the inbox writer first lets go of the statements it keeps
    ///    prepared on SQLite's connection).
    pub async fn stop(
        &self,
        http: Option<(
            actix_web::dev::ServerHandle,
            tokio::task::JoinHandle<std::io::Result<()>>,
        )>,
        cancel: &tokio_util::sync::CancellationToken,
        workers: Vec<tokio::task::JoinHandle<()>>,
    ) {
        if let Some((handle, server)) = http {
            handle.pause().await;
            self.drain.begin();
            tracing::info!(
                in_flight = self.drain.in_flight(),
                "stopping: no new connections, draining the requests in flight"
            );
            if !self
                .drain
                .idle(Duration::from_millis(100), SHUTDOWN_TIMEOUT)
                .await
            {
                tracing::warn!(
                    in_flight = self.drain.in_flight(),
                    "requests still in flight after the shutdown timeout"
                );
            }
            handle.stop(true).await;
            if let Ok(Err(e)) = server.await {
                tracing::warn!(error = %e, "the HTTP server ended with an error");
            }
        }
        self.intake.failures.flush().await;
        cancel.cancel();
        for w in workers {
            let _ = w.await;
        }
        // The inbox writer's statements are finalised before the pool closes its connection.
        self.intake.writer.let_go().await;
        self.db.clone().close().await.ok();
    }

    /// Starts the background workers (the inbox's and the notification deliveries') until
    /// `cancel`.
    pub fn spawn_workers(
        &self,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        if !self.settings.workers {
            tracing::info!("PAYGATE_WORKERS=false: intake-only replica, no background workers");
            return Vec::new();
        }
        let tasks = self.settings.worker_tasks.unwrap_or(
            if self.db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
                1
            } else {
                2
            },
        );
        let mut v = vec![
            self.worker.spawn(cancel.clone()),
            self.delivery.spawn(cancel.clone()),
        ];
        v.extend((1..tasks).map(|_| self.worker.sibling().spawn(cancel.clone())));
        if self.settings.dispute_due_check_secs > 0 {
            v.push(self.spawn_dispute_deadlines(
                Duration::from_secs(self.settings.dispute_due_check_secs),
                cancel,
            ));
        }
        if self.settings.reconcile_interval_secs > 0 {
            v.push(self.spawn_reconciler(
                Duration::from_secs(self.settings.reconcile_interval_secs),
                cancel,
            ));
        }
        if self.settings.stripe_check_secs > 0 {
            v.push(self.spawn_stripe_checker(
                Duration::from_secs(self.settings.stripe_check_secs),
                cancel,
            ));
        }
        v
    }

    /// Checks (and repairs) the Stripe connection of every active company every `every` (with up
    /// to 10 % jitter), until `cancel` (see `paygate_router::stripe_connection`).
    pub fn spawn_stripe_checker(
        &self,
        every: Duration,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let jitter = every.mul_f64(rand::random::<f64>() * 0.1);
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(every + jitter) => {}
                }
                if let Err(e) = paygate_router::stripe_connection::check_all(
                    &me.tenants,
                    &me.stripe,
                    &me.intake.writer,
                )
                .await
                {
                    tracing::warn!(error = %e, "periodic Stripe connection check could not list companies");
                }
            }
        })
    }

    /// Sends the `dispute.due_soon` notices due (three days and one day before a dispute's
    /// evidence is due) every `every`, until `cancel` (each notice is sent once, whatever the
    /// number of replicas: see `paygate_router::dispute_deadlines`).
    pub fn spawn_dispute_deadlines(
        &self,
        every: Duration,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let db = self.db.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let now = paygate_db::now_ms() / 1000;
                match paygate_router::dispute_deadlines::notify_due_soon(&db, now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(sent = n, "dispute deadline notices sent"),
                    Err(e) => tracing::warn!(error = %e, "dispute deadline check failed"),
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
            }
        })
    }

    /// Reconciles every active company against Stripe's event list every `every` (with up to
    /// 10 % jitter so replicas spread out; the inbox's deduplication makes overlapping runs
    /// harmless), until `cancel`.
    pub fn spawn_reconciler(
        &self,
        every: Duration,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let jitter = every.mul_f64(rand::random::<f64>() * 0.1);
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(every + jitter) => {}
                }
                if let Err(e) = me.reconcile_all().await {
                    tracing::warn!(error = %e, "periodic reconciliation could not list companies");
                }
            }
        })
    }

    /// One reconciliation run over every active company; returns how many events it recovered.
    pub async fn reconcile_all(&self) -> anyhow::Result<usize> {
        use paygate_db::entities::company;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let companies = company::Entity::find()
            .filter(company::Column::Status.eq("active"))
            .all(&self.db)
            .await?;
        let mut recovered = 0;
        for c in companies {
            let r = paygate_router::reconcile::reconcile_company(
                &self.tenants,
                &self.stripe,
                &self.intake.writer,
                &c,
                None,
                |_| {},
            )
            .await;
            match r {
                Ok(s) => {
                    self.metrics.reconcile("runs", 1);
                    self.metrics.reconcile("fetched", s.fetched as u64);
                    self.metrics.reconcile("recovered", s.recovered as u64);
                    recovered += s.recovered;
                    if s.recovered > 0 {
                        tracing::info!(company = %c.company_id, recovered = s.recovered, fetched = s.fetched, "reconciliation recovered missed events");
                    }
                }
                Err(e) => {
                    self.metrics.reconcile("failed_runs", 1);
                    tracing::warn!(company = %c.company_id, error = %e, "reconciliation failed");
                }
            }
        }
        Ok(recovered)
    }

    /// Registers every route of the app.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.intake.clone()))
            .app_data(web::Data::new(self.admin.clone()))
            .app_data(web::Data::new(self.backoffice.clone()))
            .app_data(web::Data::new(self.db.clone()))
            .app_data(web::Data::new(self.drain.clone()))
            .app_data(web::Data::from(self.metrics.clone()))
            // Whose forwarding headers name the client (`paygate_web::client_addr`).
            .app_data(web::Data::new(self.settings.trusted_proxies()))
            .app_data(json_config(256 * 1024))
            .app_data(query_config())
            .app_data(path_config())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .app_data(web::Data::new(
                paygate_web::hsts::Hsts::for_public_base_url(self.tenants.public_base_url()),
            ))
            .app_data(web::Data::new(paygate_web::body_deadline::BodyDeadline {
                limit: Duration::from_secs(self.settings.body_read_timeout_secs),
            }))
            .configure(|cfg| self.configure_metrics(cfg, self.settings.metrics_bind.is_none()))
            .configure(paygate_admin::configure)
            .configure(paygate_backoffice::configure);
    }

    /// `GET /metrics` and what it needs (its bearer token, when `PAYGATE_METRICS_TOKEN` is set);
    /// the route only when `route` (not when it is served on `PAYGATE_METRICS_BIND`).
    fn configure_metrics(&self, cfg: &mut web::ServiceConfig, route: bool) {
        cfg.app_data(web::Data::new(MetricsAccess(
            self.settings.metrics_token.clone(),
        )));
        if route {
            cfg.route("/metrics", web::get().to(metrics));
        }
    }

    /// Serves `GET /metrics` alone on `PAYGATE_METRICS_BIND`, when it is set (the main listener
    /// then has no `/metrics`). It lives as long as the process and takes no part in the graceful
    /// stop, so a stop can be watched to its end.
    pub fn serve_metrics(&self) -> anyhow::Result<Option<RunningServer>> {
        let Some(addr) = self.settings.metrics_bind_addr()? else {
            return Ok(None);
        };
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("binding PAYGATE_METRICS_BIND {addr}"))?;
        let addr = listener.local_addr()?;
        let me = self.clone();
        let server = actix_web::HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(me.db.clone()))
                .app_data(web::Data::from(me.metrics.clone()))
                .configure(|cfg| me.configure_metrics(cfg, true))
                .default_service(web::to(paygate_web::not_found))
        })
        .workers(1)
        .client_request_timeout(Duration::from_secs(10))
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Some(RunningServer { addr, server }))
    }

    /// Starts the HTTP server on `listener`.
    pub fn serve_http(&self, listener: TcpListener) -> anyhow::Result<RunningServer> {
        let me = self.clone();
        let workers = self.settings.http_workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let addr = listener.local_addr()?;
        let server = actix_web::HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    paygate_web::body_deadline::middleware,
                ))
                .wrap(actix_web::middleware::from_fn(
                    paygate_web::hsts::middleware,
                ))
                .wrap(actix_web::middleware::from_fn(
                    paygate_web::drain::middleware,
                ))
                .wrap(actix_web::middleware::from_fn(
                    paygate_web::request_id::middleware,
                ))
                .configure(|cfg| me.configure(cfg))
                .default_service(web::to(paygate_web::not_found))
        })
        .workers(workers)
        .backlog(2048)
        .client_request_timeout(Duration::from_secs(10))
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
        // The stop is ours ([`Paygate::stop`]): actix alone would let each HTTP worker's runtime
        // end as soon as that worker is idle, while requests on other workers still use
        // database connections opened on it.
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(RunningServer { addr, server })
    }
}

/// How long a graceful stop waits for requests in flight, then for the workers.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP server bound and running (await `server` to wait for its end).
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub server: actix_web::dev::Server,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(
    db: web::Data<DatabaseConnection>,
    drain: web::Data<paygate_web::drain::Drain>,
) -> Result<HttpResponse, ApiError> {
    if drain.draining() {
        return Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "This replica is stopping.",
        ));
    }
    db.ping().await.map_err(ApiError::unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

/// The bearer token `/metrics` requires, if any.
#[derive(Debug)]
struct MetricsAccess(Option<secrecy::SecretString>);

impl MetricsAccess {
    /// Whether `req` may read the metrics: always without a token, else only with
    /// `Authorization: Bearer <token>` (compared in constant time).
    fn allows(&self, req: &actix_web::HttpRequest) -> bool {
        let Some(token) = &self.0 else {
            return true;
        };
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, t)| t.trim());
        let (a, b) = (given.as_bytes(), token.expose_secret().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

async fn metrics(
    req: actix_web::HttpRequest,
    access: web::Data<MetricsAccess>,
    db: web::Data<DatabaseConnection>,
    m: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    if !access.allows(&req) {
        return Ok(ApiError::unauthorized(
            "GET /metrics needs the bearer token set in PAYGATE_METRICS_TOKEN",
        )
        .response_with_header(
            actix_web::http::header::WWW_AUTHENTICATE,
            "Bearer realm=\"metrics\"",
        ));
    }
    use paygate_db::entities::inbox_event;
    use sea_orm::sea_query::{Expr, Func};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let now = paygate_db::now_ms();
    let mut gauges = Vec::new();
    for (status, name, help) in [
        (
            "pending",
            "paygate_inbox_backlog",
            "Inbox events waiting for the workers.",
        ),
        (
            "failed",
            "paygate_inbox_failed",
            "Inbox events whose handling failed for good.",
        ),
    ] {
        let row: Option<(i64, Option<i64>)> = inbox_event::Entity::find()
            .select_only()
            .column_as(
                Expr::from(Func::count(Expr::col(inbox_event::Column::Id))),
                "n",
            )
            .column_as(
                Expr::from(Func::min(Expr::col(inbox_event::Column::ReceivedAt))),
                "oldest",
            )
            .filter(inbox_event::Column::Status.eq(status))
            .into_tuple()
            .one(db.get_ref())
            .await?;
        let (n, oldest) = row.unwrap_or((0, None));
        gauges.push((name, help, n as f64));
        if status == "pending" {
            let age = oldest
                .map(|o| (now - o).max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            gauges.push((
                "paygate_inbox_oldest_age_seconds",
                "Age of the oldest inbox event waiting for the workers.",
                age,
            ));
        }
    }
    // The outbox: notifications waiting to be delivered (first attempts and retries).
    {
        use paygate_db::entities::notification_delivery as nd;
        let row: Option<(i64, Option<i64>)> = nd::Entity::find()
            .select_only()
            .column_as(Expr::from(Func::count(Expr::col(nd::Column::Id))), "n")
            .column_as(
                Expr::from(Func::min(Expr::col(nd::Column::CreatedAt))),
                "oldest",
            )
            .filter(nd::Column::Status.eq("pending"))
            .into_tuple()
            .one(db.get_ref())
            .await?;
        let (n, oldest) = row.unwrap_or((0, None));
        gauges.push((
            "paygate_outbox_backlog",
            "Notification deliveries not yet delivered (waiting or between retries).",
            n as f64,
        ));
        gauges.push((
            "paygate_outbox_oldest_age_seconds",
            "Age of the oldest notification delivery not yet delivered.",
            oldest
                .map(|o| (now - o).max(0) as f64 / 1000.0)
                .unwrap_or(0.0),
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(m.render(&gauges)))
}
