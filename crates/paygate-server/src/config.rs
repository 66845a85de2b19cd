//! `Settings`: every knob of Paygate, documented, validated at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The whole configuration. Each field maps to `PAYGATE_<FIELD>` and to `<field>` in the TOML.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Settings {
    /// Listen address (`PAYGATE_BIND`).
    pub bind: String,
    /// Where the SQLite file and a generated master key live (`PAYGATE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; default: SQLite file in the data dir.
    #[serde(serialize_with = "ser_secret_opt")]
    pub database_url: Option<SecretString>,
    /// File holding the database URL (it may carry a password).
    pub database_url_file: Option<PathBuf>,
    /// Base64 of 32 bytes; default: generated into `<data_dir>/master.key` on first start.
    #[serde(serialize_with = "ser_secret_opt")]
    pub master_key: Option<SecretString>,
    /// File holding the master key.
    pub master_key_file: Option<PathBuf>,
    /// Retired master keys (comma-separated base64) still needed to open old values.
    #[serde(serialize_with = "ser_secret_opt")]
    pub master_keys_retired: Option<SecretString>,
    /// Used to build the callback URLs shown to merchants; default `http://<bind>`.
    pub public_base_url: Option<String>,
    /// With `admin_password`: the first operator, created at start when none exists.
    pub admin_email: Option<String>,
    #[serde(serialize_with = "ser_secret_opt")]
    pub admin_password: Option<SecretString>,
    pub admin_password_file: Option<PathBuf>,
    /// Signature timestamp tolerance, seconds.
    pub webhook_tolerance_secs: u64,
    /// Where Paygate calls Stripe.
    pub stripe_api_base: String,
    /// Where Paygate uploads files to Stripe (dispute evidence; Stripe's files host).
    pub stripe_files_base: String,
    /// How often disputes are checked for a `dispute.due_soon` notice to send (three days and
    /// one day before the evidence is due), seconds; 0: never.
    pub dispute_due_check_secs: u64,
    /// Time limit of one Stripe API request (sending it and reading the whole answer), seconds.
    pub stripe_timeout_secs: u64,
    /// Lifetime of operator tokens, seconds.
    pub admin_token_ttl_secs: u64,
    /// A back-office session ends after this long without a request, seconds.
    pub session_idle_secs: u64,
    /// A back-office session ends this long after sign-in whatever happens, seconds.
    pub session_max_secs: u64,
    /// How long the intake caches a company (changes on other replicas show within it), seconds.
    pub cache_ttl_secs: u64,
    /// Grace period of a rotated-out signing secret, seconds.
    pub signing_secret_grace_secs: u64,
    /// PostgreSQL pool size.
    pub db_max_connections: u32,
    /// Most deliveries committed in one inbox transaction.
    pub inbox_batch_max: usize,
    /// Inbox writer tasks (default: 1 on SQLite, 2 on PostgreSQL).
    pub inbox_writers: Option<usize>,
    /// HTTP worker threads (default: the number of CPUs).
    pub http_workers: Option<usize>,
    /// How long a request's whole body may take to arrive once its head has, seconds
    /// (`PAYGATE_BODY_READ_TIMEOUT_SECS`); a slower body gets 408 and its connection is closed.
    pub body_read_timeout_secs: u64,
    /// The bearer token `GET /metrics` requires when set (`PAYGATE_METRICS_TOKEN`, at least 16
    /// characters); unset: `/metrics` is open to whoever reaches it.
    #[serde(serialize_with = "ser_secret_opt")]
    pub metrics_token: Option<SecretString>,
    /// File holding the metrics token.
    pub metrics_token_file: Option<PathBuf>,
    /// Serve `GET /metrics` on this address (e.g. `0.0.0.0:9090`) instead of the main one
    /// (`PAYGATE_METRICS_BIND`), so it can stay off the public listener.
    pub metrics_bind: Option<String>,
    /// Rejected deliveries an address may cause per minute before it gets 429 for a minute
    /// (0: no limit). Behind a proxy every request shares the proxy's address: raise or disable.
    pub intake_reject_limit_per_minute: u32,
    /// Proxies whose forwarding headers are believed (`PAYGATE_TRUSTED_PROXIES`): comma-separated
    /// CIDRs (`10.0.0.0/8, 192.168.1.7`), default none. Only when the peer of a connection is in
    /// one of them is the client address read from `X-Forwarded-For` (the rightmost address not
    /// itself a trusted proxy), or from `Forwarded: for=` when there is no `X-Forwarded-For`; it
    /// keys the sign-in lockout and the intake's per-address limit. In TOML a list of strings
    /// works too.
    #[serde(deserialize_with = "string_or_list")]
    pub trusted_proxies: String,
    /// Stripe lookups the shopper's landing page may trigger per company and mode per minute
    /// (`PAYGATE_SHOPPER_LOOKUPS_PER_MINUTE`; a token bucket, bursts up to this many). Beyond
    /// it the page answers from the database alone ("payment being confirmed") and the webhook
    /// completes the order. 0: the page never calls Stripe.
    pub shopper_lookups_per_minute: u32,
    /// Run the background workers (inbox processing, notification deliveries, reconciliation)
    /// in this process (`PAYGATE_WORKERS`, default true). `false` makes an intake-only replica:
    /// it verifies and stores deliveries and serves the APIs; other replicas process.
    pub workers: bool,
    /// On SQLite, apply `payment_intent.*` events (but cancellations, which an order may follow)
    /// in the transaction that stores them, on the inbox writer's own connection, instead of
    /// leaving them to the workers (`PAYGATE_APPLY_AT_INTAKE`, default true; only with
    /// `workers`). Each is then processed by the time Stripe has its 200, written and committed
    /// once; every other event goes to the workers. Measured against leaving them to the
    /// workers: a higher sustained rate with the acknowledgement p99 within 10 ms, and a lower
    /// p99 (docs/benchmarks.md, fifth pass). `false` leaves every event to the workers. No
    /// effect on PostgreSQL.
    pub apply_at_intake: bool,
    /// Attempts before an event is marked failed.
    pub worker_max_attempts: i32,
    /// Events a worker claims at once.
    pub worker_batch_size: u64,
    /// How long a worker's claim on an event holds (a crashed worker's events return after it).
    pub worker_lease_secs: u64,
    /// Events whose handlers call Stripe (Checkout fulfillment, Source charges) handled at once
    /// per worker pool; the database-only ones of a batch share one transaction.
    pub worker_concurrency: usize,
    /// Inbox worker tasks in this process, each claiming its own batches (default: 1 on SQLite,
    /// whose one connection would only make more of them queue; 2 on PostgreSQL, where they
    /// claim side by side with `SKIP LOCKED`).
    pub worker_tasks: Option<usize>,
    /// Delays between attempts of a notification (`PAYGATE_NOTIFY_RETRY_SCHEDULE`, e.g.
    /// `5s,5m,30m,2h`); after the last one the message is marked failed.
    pub notify_retry_schedule: String,
    /// Connect timeout of a notification delivery, seconds.
    pub notify_connect_timeout_secs: u64,
    /// Total timeout of a notification delivery, seconds.
    pub notify_timeout_secs: u64,
    /// An endpoint whose deliveries have all failed this long is disabled, seconds.
    pub notify_disable_after_secs: u64,
    /// How often every active company is reconciled against Stripe's event list (missed-event
    /// recovery), seconds; 0: never (on demand only).
    pub reconcile_interval_secs: u64,
    /// How often the webhook endpoints Paygate created (profiles connected automatically) are
    /// checked and repaired (`PAYGATE_STRIPE_CHECK_SECS`), seconds; 0: never (on demand only).
    pub stripe_check_secs: u64,
    /// Notification deliveries in flight at once per process.
    pub notify_concurrency: usize,
    /// How long a worker's claim on a notification delivery holds (a crashed replica's
    /// deliveries are taken over after it), seconds.
    pub notify_lease_secs: u64,
    /// Deliveries to one endpoint in flight at once, across replicas
    /// (`PAYGATE_NOTIFY_ENDPOINT_CONCURRENCY`): a slow or silent endpoint holds at most this many
    /// delivery slots; a company's shopper e-mails count as one endpoint.
    pub notify_endpoint_concurrency: usize,
    /// Delivery slots of this process one company may hold at once
    /// (`PAYGATE_NOTIFY_COMPANY_CONCURRENCY`; default: half of `notify_concurrency`), so the
    /// other companies always find free ones.
    pub notify_company_concurrency: Option<usize>,
    /// Notification endpoints a company may have (`PAYGATE_NOTIFY_MAX_ENDPOINTS_PER_COMPANY`).
    pub notify_max_endpoints_per_company: u64,
    /// Test messages (`ping`) a company may send per hour (`PAYGATE_NOTIFY_TEST_PINGS_PER_HOUR`);
    /// beyond it 429.
    pub notify_test_pings_per_hour: u64,
    /// Let notification URLs reach private, loopback and link-local addresses
    /// (`PAYGATE_OUTBOUND_ALLOW_PRIVATE`; for tests and closed networks).
    pub outbound_allow_private: bool,
    /// SMTP server for shopper e-mails (`PAYGATE_SMTP_URL`, e.g.
    /// `smtps://user:password@mail.example.com`); unset: no e-mails.
    #[serde(serialize_with = "ser_secret_opt")]
    pub smtp_url: Option<SecretString>,
    /// The sender address of shopper e-mails (`PAYGATE_SMTP_FROM`).
    pub smtp_from: String,
    /// Log filter, e.g. `info` or `paygate=debug,info`.
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
}

/// A comma-separated string, or a list of strings joined with commas.
fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s,
        OneOrMany::Many(v) => v.join(","),
    })
}

fn ser_secret_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_some("[redacted]"),
        None => s.serialize_none(),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./paygate-data"),
            database_url: None,
            database_url_file: None,
            master_key: None,
            master_key_file: None,
            master_keys_retired: None,
            public_base_url: None,
            admin_email: None,
            admin_password: None,
            admin_password_file: None,
            webhook_tolerance_secs: 300,
            stripe_api_base: "https://api.stripe.com".into(),
            stripe_files_base: "https://files.stripe.com".into(),
            dispute_due_check_secs: 900,
            stripe_timeout_secs: 30,
            admin_token_ttl_secs: 3600,
            session_idle_secs: 2 * 3600,
            session_max_secs: 12 * 3600,
            cache_ttl_secs: 5,
            signing_secret_grace_secs: 24 * 3600,
            db_max_connections: 16,
            inbox_batch_max: 256,
            inbox_writers: None,
            http_workers: None,
            body_read_timeout_secs: 10,
            metrics_token: None,
            metrics_token_file: None,
            metrics_bind: None,
            intake_reject_limit_per_minute: 600,
            trusted_proxies: String::new(),
            shopper_lookups_per_minute: 60,
            workers: true,
            apply_at_intake: true,
            worker_max_attempts: 8,
            worker_batch_size: 256,
            worker_lease_secs: 60,
            worker_concurrency: 16,
            worker_tasks: None,
            notify_retry_schedule: paygate_notify::worker::DEFAULT_SCHEDULE.into(),
            notify_connect_timeout_secs: 5,
            notify_timeout_secs: 15,
            notify_disable_after_secs: 5 * 86_400,
            reconcile_interval_secs: 3600,
            stripe_check_secs: 3600,
            notify_concurrency: 16,
            notify_lease_secs: 60,
            notify_endpoint_concurrency: 4,
            notify_company_concurrency: None,
            notify_max_endpoints_per_company: 10,
            notify_test_pings_per_hour: 30,
            outbound_allow_private: false,
            smtp_url: None,
            smtp_from: "paygate@localhost".into(),
            log: "info".into(),
            log_format: "text".into(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

impl Settings {
    /// Defaults, then `paygate.toml` (or `$PAYGATE_CONFIG`), then `PAYGATE_*`.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var_os("PAYGATE_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| "paygate.toml".into());
        let s: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("PAYGATE_").ignore(&["CONFIG"]))
            .extract()
            .map_err(Box::new)?;
        s.validated()
    }

    /// Checks every field; reads the `*_file` variants.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        self.bind_addr()?;
        if self.webhook_tolerance_secs == 0 || self.webhook_tolerance_secs > 24 * 3600 {
            return Err(invalid(
                "webhook_tolerance_secs",
                "must be between 1 and 86400",
            ));
        }
        if !(self.stripe_api_base.starts_with("http://")
            || self.stripe_api_base.starts_with("https://"))
        {
            return Err(invalid("stripe_api_base", "must be an http(s) URL"));
        }
        if !(self.stripe_files_base.starts_with("http://")
            || self.stripe_files_base.starts_with("https://"))
        {
            return Err(invalid("stripe_files_base", "must be an http(s) URL"));
        }
        if let Some(u) = &self.public_base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(invalid("public_base_url", "must be an http(s) URL"));
        }
        if self.inbox_batch_max == 0 || self.inbox_batch_max > 10_000 {
            return Err(invalid("inbox_batch_max", "must be between 1 and 10000"));
        }
        if !(1..=1000).contains(&self.worker_max_attempts) {
            return Err(invalid("worker_max_attempts", "must be between 1 and 1000"));
        }
        if !(1..=10_000).contains(&self.worker_batch_size) {
            return Err(invalid("worker_batch_size", "must be between 1 and 10000"));
        }
        if !(1..=86_400).contains(&self.worker_lease_secs) {
            return Err(invalid("worker_lease_secs", "must be between 1 and 86400"));
        }
        if !(1..=1024).contains(&self.worker_concurrency) {
            return Err(invalid("worker_concurrency", "must be between 1 and 1024"));
        }
        if self.worker_tasks.is_some_and(|n| !(1..=64).contains(&n)) {
            return Err(invalid("worker_tasks", "must be between 1 and 64"));
        }
        if !(60..=30 * 86_400).contains(&self.session_idle_secs)
            || !(60..=30 * 86_400).contains(&self.session_max_secs)
        {
            return Err(invalid(
                "session_idle_secs",
                "session_idle_secs and session_max_secs must be between 60 and 2592000",
            ));
        }
        if let Err(e) = paygate_notify::parse_schedule(&self.notify_retry_schedule) {
            return Err(invalid("notify_retry_schedule", e));
        }
        if !(1..=120).contains(&self.notify_connect_timeout_secs)
            || !(1..=300).contains(&self.notify_timeout_secs)
        {
            return Err(invalid(
                "notify_timeout_secs",
                "notify_connect_timeout_secs must be 1–120 and notify_timeout_secs 1–300",
            ));
        }
        if !(1..=86_400).contains(&self.notify_lease_secs) {
            return Err(invalid("notify_lease_secs", "must be between 1 and 86400"));
        }
        if !(1..=1024).contains(&self.notify_concurrency) {
            return Err(invalid("notify_concurrency", "must be between 1 and 1024"));
        }
        if !(1..=1024).contains(&self.notify_endpoint_concurrency) {
            return Err(invalid(
                "notify_endpoint_concurrency",
                "must be between 1 and 1024",
            ));
        }
        if self
            .notify_company_concurrency
            .is_some_and(|n| !(1..=1024).contains(&n))
        {
            return Err(invalid(
                "notify_company_concurrency",
                "must be between 1 and 1024",
            ));
        }
        if !(1..=10_000).contains(&self.notify_max_endpoints_per_company) {
            return Err(invalid(
                "notify_max_endpoints_per_company",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=100_000).contains(&self.notify_test_pings_per_hour) {
            return Err(invalid(
                "notify_test_pings_per_hour",
                "must be between 1 and 100000",
            ));
        }
        if !self.smtp_from.contains('@') || self.smtp_from.chars().any(char::is_whitespace) {
            return Err(invalid("smtp_from", "must be an e-mail address"));
        }
        if self.shopper_lookups_per_minute > 100_000 {
            return Err(invalid(
                "shopper_lookups_per_minute",
                "must be between 0 and 100000",
            ));
        }
        if let Err(e) = paygate_web::client_addr::TrustedProxies::parse(&self.trusted_proxies) {
            return Err(invalid("trusted_proxies", e));
        }
        if self.log_format != "text" && self.log_format != "json" {
            return Err(invalid("log_format", "must be text or json"));
        }
        if let Some(p) = &self.admin_password_file {
            self.admin_password = Some(read_secret_file(p)?);
        }
        if let Some(p) = &self.database_url_file {
            self.database_url = Some(read_secret_file(p)?);
        }
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return Err(invalid(
                "admin_email",
                "PAYGATE_ADMIN_EMAIL and PAYGATE_ADMIN_PASSWORD go together",
            ));
        }
        if !(1..=3600).contains(&self.body_read_timeout_secs) {
            return Err(invalid(
                "body_read_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        self.metrics_bind_addr()?;
        if let Some(p) = &self.metrics_token_file {
            self.metrics_token = Some(read_secret_file(p)?);
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().chars().count() < 16)
        {
            return Err(invalid("metrics_token", "must be at least 16 characters"));
        }
        Ok(self)
    }

    /// The listen address.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.bind
            .parse()
            .map_err(|_| invalid("bind", "must be an address like 127.0.0.1:8080"))
    }

    /// The separate metrics address, when set.
    pub fn metrics_bind_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        self.metrics_bind
            .as_deref()
            .map(|b| {
                b.parse()
                    .map_err(|_| invalid("metrics_bind", "must be an address like 0.0.0.0:9090"))
            })
            .transpose()
    }

    /// The database URL (default: SQLite in the data dir).
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose_secret().to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("paygate.db").display()
            ),
        }
    }

    /// The proxies whose forwarding headers are believed (none when the list does not parse,
    /// which [`validated`](Self::validated) refuses).
    pub fn trusted_proxies(&self) -> paygate_web::client_addr::TrustedProxies {
        paygate_web::client_addr::TrustedProxies::parse(&self.trusted_proxies).unwrap_or_default()
    }

    /// The public base URL.
    pub fn public_base_url(&self, actual: Option<SocketAddr>) -> String {
        match &self.public_base_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!(
                "http://{}",
                actual
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| self.bind.clone())
            ),
        }
    }
}

/// Reads a secret from a file, surrounding whitespace trimmed.
pub fn read_secret_file(path: &Path) -> Result<SecretString, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| SecretString::from(s.trim().to_owned()))
        .map_err(|source| ConfigError::File {
            path: path.to_owned(),
            source,
        })
}
