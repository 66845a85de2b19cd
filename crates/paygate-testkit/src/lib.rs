#![doc = include_str!("../README.md")]
#![expect(clippy::unwrap_used, reason = "a test kit fails loudly")]

pub mod backoffice;
pub mod billing_objects;
pub mod checkout_objects;
mod db;
pub mod objects;
pub mod openapi;
pub mod receivers;
pub mod stripe_account;
pub mod thin_events;
pub mod webdriver;

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

pub use db::{Backend, TestDatabase, postgres_available};
pub use paygate_router::signature::sign;
pub use paygate_server::{Paygate, Settings};

/// Runs each listed `async fn name(backend: Backend)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if !$crate::postgres_available().await {
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

/// The operator every `TestApp` can sign in as.
pub const OPERATOR_EMAIL: &str = "ops@paygate.test";
/// Its password.
pub const OPERATOR_PASSWORD: &str = "correct horse battery staple";

/// A running Paygate for one test.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub base_url: String,
    pub app: Paygate,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    token: OnceCell<String>,
    server: actix_web::dev::ServerHandle,
}

/// Options of [`TestApp::start`].
#[derive(Debug, Clone)]
pub struct Options {
    pub backend: Backend,
    pub stripe_api_base: Option<String>,
    pub tolerance_secs: u64,
    pub adjust: fn(&mut Settings),
    /// `PAYGATE_SMTP_URL` (a sink started by the test).
    pub smtp_url: Option<String>,
}

impl Options {
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            stripe_api_base: None,
            tolerance_secs: 300,
            adjust: |_| {},
            smtp_url: None,
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique suffix for names in one test process.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestApp {
    /// Boots the app on the given backend with default options.
    pub async fn spawn(backend: Backend) -> Self {
        Self::start(Options::new(backend)).await
    }

    /// Boots the app.
    pub async fn start(opts: Options) -> Self {
        let db = TestDatabase::create(opts.backend).await;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut settings = Settings {
            bind: addr.to_string(),
            data_dir: db.data_dir.clone(),
            database_url: Some(db.url.clone().into()),
            webhook_tolerance_secs: opts.tolerance_secs,
            http_workers: Some(2),
            cache_ttl_secs: 60,
            // Every pooled connection is opened at start (see `paygate_db::connect`): a test app
            // holds 8, so the tests running side by side stay well within the server's limit.
            db_max_connections: 8,
            ..Settings::default()
        };
        if let Some(base) = &opts.stripe_api_base {
            settings.stripe_api_base = base.clone();
            // Stripe's files host is the same fake server in tests.
            settings.stripe_files_base = base.clone();
        }
        if let Some(u) = &opts.smtp_url {
            settings.smtp_url = Some(u.clone().into());
        }
        (opts.adjust)(&mut settings);
        let app = Paygate::build(settings.validated().unwrap(), Some(addr))
            .await
            .unwrap();
        paygate_tenant::operators::create(
            &app.db,
            OPERATOR_EMAIL,
            OPERATOR_PASSWORD.to_owned().into(),
        )
        .await
        .unwrap();
        let running = app.serve_http(listener).unwrap();
        let server = running.server.handle();
        tokio::spawn(running.server);
        Self {
            addr,
            base_url: format!("http://{addr}"),
            app,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            db,
            token: OnceCell::new(),
            server,
        }
    }

    /// A full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A bearer token of the test operator.
    pub async fn admin_token(&self) -> String {
        self.token
            .get_or_init(|| async {
                let (status, body) = self
                    .send(
                        self.client
                            .post(self.url("/admin/v1/auth/token"))
                            .json(&json!({
                                "email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD
                            })),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                body["access_token"].as_str().unwrap().to_owned()
            })
            .await
            .clone()
    }

    /// Sends a request and reads the status and JSON body (`Value::Null` when empty).
    ///
    /// An answer of the admin or merchant API (`/admin/v1/…`, `/api/v1/…`) must be as the
    /// OpenAPI document says (see [`openapi`]): otherwise this panics.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let (client, req) = req.build_split();
        let req = req.unwrap();
        let method = req.method().clone();
        let url = req.url().clone();
        let resp = client.execute(req).await.unwrap();
        let status = resp.status();
        let json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        let text = resp.text().await.unwrap();
        let parsed = serde_json::from_str::<Value>(&text).ok();
        let is_json = json && parsed.is_some();
        let body = match parsed {
            _ if text.is_empty() => Value::Null,
            Some(v) => v,
            None => Value::String(text),
        };
        let path = url.path();
        let ours = url.port() == Some(self.addr.port())
            && (path.starts_with("/admin/v1/") || path.starts_with("/api/v1/"));
        if ours {
            let json_body = is_json.then_some(&body);
            if let Err(e) = openapi::check_answer(
                openapi::document(),
                method.as_str(),
                path,
                status.as_u16(),
                json_body,
            ) {
                panic!(
                    "{method} {path} answered {status} not as the OpenAPI document says: {e}\nbody: {body}"
                );
            }
        }
        (status, body)
    }

    /// An authenticated admin request.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(self.admin_token().await);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        self.admin(reqwest::Method::GET, path, None).await
    }
    pub async fn admin_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn admin_patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.admin(reqwest::Method::PATCH, path, Some(body)).await
    }
    pub async fn admin_delete(&self, path: &str) -> (StatusCode, Value) {
        self.admin(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a company (201 asserted).
    pub async fn create_company(&self, company_id: &str) -> Value {
        let (status, body) = self
            .admin_post(
                "/admin/v1/companies",
                json!({"company_id": company_id, "name": format!("{company_id} Ltd")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates a profile of `mode` with valid keys and the given signing secret (201 asserted).
    pub async fn create_profile(
        &self,
        company_id: &str,
        mode: &str,
        webhook_secret: &str,
    ) -> Value {
        let (status, body) = self
            .admin_post(
                &format!("/admin/v1/companies/{company_id}/profiles"),
                profile_json(mode, webhook_secret),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// A company with one test profile holding `secret`; returns the company id.
    pub async fn company_with_secret(&self, secret: &str) -> String {
        let id = unique("co");
        self.create_company(&id).await;
        self.create_profile(&id, "test", secret).await;
        id
    }

    /// Posts a raw body with an optional `Stripe-Signature` to a company's callback URL.
    pub async fn post_callback(
        &self,
        company_id: &str,
        body: impl Into<reqwest::Body>,
        signature: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(self.url(&format!("/callbacks/v1.0/stripe/{company_id}")))
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = signature {
            req = req.header("Stripe-Signature", s);
        }
        self.send(req).await
    }

    /// Signs `event` with `secret` at the current time and delivers it.
    pub async fn deliver(
        &self,
        company_id: &str,
        secret: &str,
        event: &Value,
    ) -> (StatusCode, Value) {
        let body = serde_json::to_vec(event).unwrap();
        let sig = sign(secret, now_secs(), &body);
        self.post_callback(company_id, body, Some(&sig)).await
    }

    /// Every inbox row of a company (by internal id), straight from the database.
    pub async fn inbox_count(&self, company_id: &str) -> usize {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let c = self.app.tenants.company(company_id).await.unwrap();
        paygate_db::entities::inbox_event::Entity::find()
            .filter(paygate_db::entities::inbox_event::Column::CompanyPk.eq(c.id))
            .count(&self.app.db)
            .await
            .unwrap() as usize
    }

    /// A paid test-mode Checkout order of 25.00 EUR on payment intent `pi` and charge `ch`,
    /// written straight to the database (for tests of what happens to a paid order); returns its
    /// id.
    pub async fn paid_order(&self, company_id: &str, pi: &str, ch: &str) -> String {
        use paygate_db::entities::order;
        use sea_orm::{ActiveModelTrait, Set};
        let pk = self.app.tenants.company(company_id).await.unwrap().id;
        let id = unique("ord_");
        let now = paygate_db::now_ms();
        order::ActiveModel {
            id: Set(id.clone()),
            company_pk: Set(pk),
            livemode: Set(false),
            kind: Set("checkout".into()),
            status: Set("paid".into()),
            payment_intent_id: Set(Some(pi.into())),
            charge_id: Set(Some(ch.into())),
            amount: Set(Some(2500)),
            currency: Set(Some("eur".into())),
            metadata: Set("{}".into()),
            disputed: Set(false),
            status_created: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.app.db)
        .await
        .unwrap();
        id
    }

    /// Runs the workers until no event is due; returns how many they handled.
    pub async fn drain(&self) -> usize {
        self.app.worker.drain().await.unwrap()
    }

    /// Delivers every notification due now (round after round); returns the attempts made.
    pub async fn drain_notifications(&self) -> usize {
        self.app.delivery.drain().await.unwrap()
    }

    /// Stops the HTTP server.
    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

/// A valid profile body of `mode`.
pub fn profile_json(mode: &str, webhook_secret: &str) -> Value {
    json!({
        "name": unique(&format!("{mode} profile ")),
        "mode": mode,
        "account_id": "acct_1TestAccount000",
        "publishable_key": format!("pk_{mode}_51PublishableKey000000000000"),
        "secret_key": format!("sk_{mode}_51SecretKeyValue{}", unique("x")),
        "webhook_secret": webhook_secret,
    })
}

/// A fresh random signing secret.
pub fn new_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::thread_rng().r#gen();
    format!("whsec_{}", hex::encode(bytes))
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A Stripe event envelope of `event_type` around `object`, with a fresh id, `created` now,
/// test mode. Adjust fields on the returned value as needed.
pub fn event(event_type: &str, object: Value) -> Value {
    json!({
        "id": unique("evt_test_"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": now_secs(),
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type,
    })
}

/// `ev` with `field` removed from its `data.object`: a payload a handler must refuse.
pub fn without_object_field(mut ev: Value, field: &str) -> Value {
    if let Some(o) = ev["data"]["object"].as_object_mut() {
        o.remove(field);
    }
    ev
}

/// Every ordering of `items` (tests feed a flow's events in each order).
pub fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}
