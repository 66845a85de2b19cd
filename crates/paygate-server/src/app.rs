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
            .unwrap_or(if is_sqlite { 1 } else { 4 });
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
        );
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
            // Five failures in 15 minutes lock an e-mail (from an address, or from everywhere
            // after twice that) out for 15 minutes.
            signin_throttle: Arc::new(paygate_web::throttle::Throttle::new(
                5,
                Duration::from_secs(900),
                Duration::from_secs(900),
            )),
        };
        let backoffice = paygate_backoffice::BackofficeState::new(
            db.clone(),
            tenants.clone(),
            admin.signin_throttle.clone(),
            paygate_backoffice::SessionConfig {
                idle: Duration::from_secs(settings.session_idle_secs),
                absolute: Duration::from_secs(settings.session_max_secs),
            },
            admin.notify.clone(),
            stripe.clone(),
        )
        .with_local_addr(actual_addr);
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
        })
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
        if self.settings.reconcile_interval_secs > 0 {
            v.push(self.spawn_reconciler(
                Duration::from_secs(self.settings.reconcile_interval_secs),
                cancel,
            ));
        }
        v
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
            .app_data(web::Data::from(self.metrics.clone()))
            .app_data(json_config(256 * 1024))
            .app_data(query_config())
            .app_data(path_config())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .configure(paygate_admin::configure)
            .configure(paygate_backoffice::configure);
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
                    paygate_web::request_id::middleware,
                ))
                .configure(|cfg| me.configure(cfg))
                .default_service(web::to(paygate_web::not_found))
        })
        .workers(workers)
        .backlog(2048)
        .client_request_timeout(Duration::from_secs(10))
        .shutdown_timeout(30)
        .listen(listener)?
        .run();
        Ok(RunningServer { addr, server })
    }
}

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

async fn readyz(db: web::Data<DatabaseConnection>) -> Result<HttpResponse, ApiError> {
    db.ping().await.map_err(ApiError::unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

async fn metrics(
    db: web::Data<DatabaseConnection>,
    m: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
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
