//! Faults survived by the real binary: PostgreSQL restarted in the middle of a burst, the Stripe
//! API failing and timing out during fulfillment, SQLite's disk filling up.
//!
//! The PostgreSQL test runs a private server of its own (`initdb`/`pg_ctl`, its own port and
//! data directory, as the `postgres` user when run as root), so no other test is disturbed. The
//! disk-full test mounts a small `tmpfs` (root only). Where either cannot run they are skipped,
//! loudly; `.ci/run` requires both (`PAYGATE_TEST_REQUIRE_POSTGRES=1`,
//! `PAYGATE_TEST_REQUIRE_TMPFS=1`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paygate_testkit::objects::{charge, checkout_session, line_items_page, payment_intent};
use paygate_testkit::{Backend, TestDatabase, db_tests, event, new_secret, now_secs, sign};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::binary::{admin_token, company_with_profile, start};

fn required(var: &str) -> bool {
    std::env::var(var).as_deref() == Ok("1")
}

/// Skips a test loudly, or fails it when `require_var` says the part is required here.
fn skip(test: &str, why: &str, require_var: &str) {
    assert!(
        !required(require_var),
        "{test} cannot run ({why}) but {require_var}=1 requires it"
    );
    eprintln!("\n======== SKIPPING {test}: {why} ========\n");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL server of this test's own.
struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Starts a fresh server, or says why it cannot.
    fn start() -> Result<Self, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no /usr/lib/postgresql: {e}"))?
            .filter_map(Result::ok)
            .map(|d| d.path().join("bin"))
            .find(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
            .ok_or("initdb and pg_ctl not found under /usr/lib/postgresql")?;
        let dir = std::env::temp_dir().join(paygate_testkit::unique("paygate-pg-"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        if as_postgres {
            let st = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err("chown to postgres failed (no postgres user?)".into());
            }
        }
        let me = Self {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        me.run(
            "initdb",
            &[
                "-D",
                &me.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        me.up()?;
        Ok(me)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn up(&self) -> Result<(), String> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=60",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-w", "-o", &opts, "start"],
        )
    }

    /// Stops the server as a crash would (`immediate`: no checkpoint, clients cut off).
    fn crash(&self) -> Result<(), String> {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-w", "-m", "immediate", "stop"],
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One delivery's fate, as the sender saw it.
#[derive(Debug, Clone)]
struct Delivery {
    event_id: String,
    sent: Instant,
    answered: Instant,
    /// The status, or `None` for a connection that failed.
    status: Option<StatusCode>,
}

/// Senders delivering distinct `payment_intent.succeeded` events to `company` until stopped.
struct Burst {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Delivery>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Burst {
    fn start(base: &str, company: &str, whsec: &str, senders: usize, pad: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let url = format!("{base}/callbacks/v1.0/stripe/{company}");
        let tasks = (0..senders)
            .map(|_| {
                let (stop, log, client, url, whsec) = (
                    stop.clone(),
                    log.clone(),
                    client.clone(),
                    url.clone(),
                    whsec.to_owned(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let mut pi = payment_intent(
                            &paygate_testkit::unique("pi_fault_"),
                            "succeeded",
                            1000,
                        );
                        if pad > 0 {
                            pi["description"] = json!("x".repeat(pad));
                        }
                        let ev = event("payment_intent.succeeded", pi);
                        let body = serde_json::to_vec(&ev).unwrap();
                        let sent = Instant::now();
                        let status = client
                            .post(&url)
                            .header("Stripe-Signature", sign(&whsec, now_secs(), &body))
                            .body(body)
                            .send()
                            .await
                            .ok()
                            .map(|r| r.status());
                        log.lock().unwrap().push(Delivery {
                            event_id: ev["id"].as_str().unwrap().to_owned(),
                            sent,
                            answered: Instant::now(),
                            status,
                        });
                        if status.is_none() {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Self { stop, log, tasks }
    }

    fn acked(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.status == Some(StatusCode::OK))
            .map(|d| d.event_id.clone())
            .collect()
    }

    fn acked_after(&self, t: Instant) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.status == Some(StatusCode::OK) && d.sent > t)
            .count()
    }

    async fn wait_acked_after(&self, t: Instant, n: usize, what: &str, logs: &Mutex<String>) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.acked_after(t) < n {
            assert!(
                Instant::now() < deadline,
                "{what}: {} acknowledged\n{}",
                self.acked_after(t),
                logs.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Vec<Delivery> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.log.lock().unwrap().clone()
    }
}

/// Checks that every answer was a 200 or a 503 (a closed connection is fine), and returns the
/// acknowledged events.
fn acked_and_otherwise_503(log: &[Delivery], logs: &Mutex<String>) -> Vec<String> {
    let odd: Vec<_> = log
        .iter()
        .filter_map(|d| d.status)
        .filter(|s| *s != StatusCode::OK && *s != StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(
        odd.is_empty(),
        "answers other than 200 and 503: {odd:?}\n{}",
        logs.lock().unwrap()
    );
    log.iter()
        .filter(|d| d.status == Some(StatusCode::OK))
        .map(|d| d.event_id.clone())
        .collect()
}

async fn stats(client: &reqwest::Client, base: &str, token: &str, company: &str) -> Value {
    client
        .get(format!("{base}/admin/v1/companies/{company}/events/stats"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until every stored event of `company` is processed; then checks that each of `acked`
/// is stored and processed.
async fn every_acked_event_processed(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    company: &str,
    acked: &[String],
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    let st = loop {
        let st = stats(client, base, token, company).await;
        if st["processed"] == st["total"] && st["total"].as_u64() >= Some(acked.len() as u64) {
            break st;
        }
        assert!(Instant::now() < deadline, "not all processed: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for id in acked {
        let r = client
            .get(format!("{base}/admin/v1/companies/{company}/events/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "acknowledged event {id} lost");
        let ev: Value = r.json().await.unwrap();
        assert_eq!(ev["status"], "processed", "{ev}");
    }
    st
}

/// PostgreSQL crashes and restarts in the middle of a burst. While it is down the intake answers
/// 503 (never 200, never 500); afterwards it recovers by itself, and every acknowledged event is
/// stored once and processed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_burst_answers_503_then_recovers_losing_nothing() {
    let test = "faults::postgres_restarted_mid_burst";
    let pg = match PrivatePostgres::start() {
        Ok(pg) => pg,
        Err(why) => return skip(test, &why, "PAYGATE_TEST_REQUIRE_POSTGRES"),
    };
    let dir = TestDatabase::create(Backend::Sqlite).await; // only its data directory is used
    let password = format!("Adm1n-{}", new_secret());
    let url = pg.url();
    let envs = [
        ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
        ("PAYGATE_ADMIN_PASSWORD", password.as_str()),
        ("PAYGATE_DATABASE_URL", url.as_str()),
        ("PAYGATE_DB_MAX_CONNECTIONS", "8"),
        ("PAYGATE_LOG", "warn,paygate=info"),
    ];
    let (child, base) = start(&dir, Backend::Sqlite, &envs);
    let token = admin_token(&base, &password).await;
    let client = reqwest::Client::new();
    let whsec = new_secret();
    company_with_profile(&client, &base, &token, "pgcrash", &whsec).await;

    let t0 = Instant::now();
    let burst = Burst::start(&base, "pgcrash", &whsec, 8, 0);
    burst
        .wait_acked_after(t0, 300, "before the crash", &child.logs)
        .await;
    pg.crash().unwrap();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let up = Instant::now();
    pg.up().unwrap();
    burst
        .wait_acked_after(up, 300, "after the restart", &child.logs)
        .await;
    let log = burst.finish().await;

    let in_outage: Vec<&Delivery> = log
        .iter()
        .filter(|d| d.sent > down && d.answered < up)
        .collect();
    assert!(
        in_outage
            .iter()
            .all(|d| d.status == Some(StatusCode::SERVICE_UNAVAILABLE)),
        "while PostgreSQL was down every answer is a 503: {:?}",
        in_outage.iter().map(|d| d.status).collect::<Vec<_>>()
    );
    assert!(
        !in_outage.is_empty(),
        "deliveries were answered while PostgreSQL was down"
    );
    let acked = acked_and_otherwise_503(&log, &child.logs);
    let st = every_acked_event_processed(&client, &base, &token, "pgcrash", &acked).await;
    // Processed once: one payment per stored event (each event is a payment of its own), and no
    // event needed more than the attempts the outage cost.
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    use sea_orm::{EntityTrait, PaginatorTrait};
    let payments = paygate_db::entities::payment_intent::Entity::find()
        .count(&db)
        .await
        .unwrap();
    assert_eq!(Some(payments), st["total"].as_u64(), "{st}");
    let _ = db.close().await;
    drop(child);
}

/// Answers a fixed script per call (by call number), then `rest`.
struct Script {
    calls: AtomicUsize,
    script: Vec<ResponseTemplate>,
    rest: ResponseTemplate,
}

impl Respond for Script {
    fn respond(&self, _req: &Request) -> ResponseTemplate {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.script.get(n).cloned().unwrap_or(self.rest.clone())
    }
}

fn stripe_500() -> ResponseTemplate {
    ResponseTemplate::new(500).set_body_json(
        json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
    )
}

/// The Stripe API fails during fulfillment: three 500s, then an answer slower than
/// `PAYGATE_STRIPE_TIMEOUT_SECS`, then it recovers. The checkout is fulfilled once; the source is
/// charged once, every attempt carrying the same idempotency key.
async fn stripe_failing_and_timing_out_during_fulfillment_fulfills_once(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let stripe = MockServer::start().await;
    let session = "cs_test_fault_1";
    let mut paid = checkout_session(session, "paid", 1500);
    paid["line_items"] = line_items_page(session, &["li_1"], false);
    let slow_session = ResponseTemplate::new(200)
        .set_body_json(paid.clone())
        .set_delay(Duration::from_secs(4));
    Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(format!(
            "/v1/checkout/sessions/{session}"
        )))
        .respond_with(Script {
            calls: AtomicUsize::new(0),
            script: vec![stripe_500(), stripe_500(), stripe_500(), slow_session],
            rest: ResponseTemplate::new(200).set_body_json(paid),
        })
        .mount(&stripe)
        .await;
    let ch = charge("ch_fault", "pending", 2500, None, Some("src_fault_1"));
    let slow_charge = ResponseTemplate::new(200)
        .set_body_json(ch.clone())
        .set_delay(Duration::from_secs(4));
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/charges"))
        .respond_with(Script {
            calls: AtomicUsize::new(0),
            script: vec![stripe_500(), stripe_500(), stripe_500(), slow_charge],
            rest: ResponseTemplate::new(200).set_body_json(ch),
        })
        .mount(&stripe)
        .await;

    let password = format!("Adm1n-{}", new_secret());
    let stripe_uri = stripe.uri();
    let envs = [
        ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
        ("PAYGATE_ADMIN_PASSWORD", password.as_str()),
        ("PAYGATE_STRIPE_API_BASE", stripe_uri.as_str()),
        ("PAYGATE_STRIPE_TIMEOUT_SECS", "1"),
        ("PAYGATE_LOG", "warn,paygate=info"),
    ];
    let (child, base) = start(&db, backend, &envs);
    let token = admin_token(&base, &password).await;
    let client = reqwest::Client::new();
    let whsec = new_secret();
    company_with_profile(&client, &base, &token, "flaky", &whsec).await;

    // An order paid by a legacy source, awaiting `source.chargeable` (seed 004).
    let db_url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rw",
            db.data_dir
                .join("paygate-data")
                .join("paygate.db")
                .display()
        ),
        Backend::Postgres => db.url.clone(),
    };
    let conn = sea_orm::Database::connect(db_url.as_str()).await.unwrap();
    use paygate_db::entities::{company, fulfillment, order};
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
    let pk = company::Entity::find()
        .filter(company::Column::CompanyId.eq("flaky"))
        .one(&conn)
        .await
        .unwrap()
        .unwrap()
        .id;
    let now = paygate_db::now_ms();
    let order_id = paygate_testkit::unique("ord_fault_");
    order::ActiveModel {
        id: Set(order_id.clone()),
        company_pk: Set(pk),
        livemode: Set(false),
        kind: Set("source".into()),
        status: Set("awaiting_payment".into()),
        source_id: Set(Some("src_fault_1".into())),
        amount: Set(Some(2500)),
        currency: Set(Some("eur".into())),
        metadata: Set("{}".into()),
        disputed: Set(false),
        status_created: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&conn)
    .await
    .unwrap();

    for ev in [
        event(
            "checkout.session.completed",
            checkout_session(session, "paid", 1500),
        ),
        event(
            "source.chargeable",
            paygate_testkit::objects::source("src_fault_1", "chargeable", 2500),
        ),
    ] {
        let body = serde_json::to_vec(&ev).unwrap();
        let r = client
            .post(format!("{base}/callbacks/v1.0/stripe/flaky"))
            .header("Stripe-Signature", sign(&whsec, now_secs(), &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    every_acked_event_processed(&client, &base, &token, "flaky", &[]).await;

    let reqs = stripe.received_requests().await.unwrap();
    let gets = reqs
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path().ends_with(session))
        .count();
    let posts: Vec<&Request> = reqs
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert!(gets >= 5, "the session was fetched {gets} times");
    assert!(
        posts.len() >= 5,
        "the charge was attempted {} times",
        posts.len()
    );
    for p in &posts {
        assert_eq!(
            p.headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok()),
            Some(order_id.as_str()),
            "every attempt of the charge carries the same idempotency key"
        );
    }
    let fulfilled = fulfillment::Entity::find()
        .filter(fulfillment::Column::CompanyPk.eq(pk))
        .count(&conn)
        .await
        .unwrap();
    assert_eq!(fulfilled, 1, "the checkout is fulfilled exactly once");
    let o = order::Entity::find_by_id(order_id.clone())
        .one(&conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (o.charge_id.as_deref(), o.status.as_str()),
        (Some("ch_fault"), "charging")
    );
    let _ = conn.close().await;
    drop(child);
}

db_tests!(stripe_failing_and_timing_out_during_fulfillment_fulfills_once);

/// A small `tmpfs` mounted for one test, unmounted after.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        if !is_root() {
            return Err("mounting a tmpfs needs root".into());
        }
        let dir = std::env::temp_dir().join(paygate_testkit::unique("paygate-full-"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(&dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Self(dir))
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remounting the tmpfs");
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SQLite's disk fills up in the middle of a burst: the intake answers 503 (never 200 for what
/// it could not store), nothing acknowledged is lost, and when space returns it recovers by
/// itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_answers_503_and_recovers_when_space_returns() {
    let test = "faults::sqlite_disk_full";
    let fs = match Tmpfs::mount("3m") {
        Ok(fs) => fs,
        Err(why) => return skip(test, &why, "PAYGATE_TEST_REQUIRE_TMPFS"),
    };
    let dir = TestDatabase::create(Backend::Sqlite).await;
    let password = format!("Adm1n-{}", new_secret());
    let data_dir = fs.path().join("data").display().to_string();
    let envs = [
        ("PAYGATE_ADMIN_EMAIL", "root@example.com"),
        ("PAYGATE_ADMIN_PASSWORD", password.as_str()),
        ("PAYGATE_DATA_DIR", data_dir.as_str()),
        ("PAYGATE_LOG", "warn,paygate=info"),
    ];
    let (child, base) = start(&dir, Backend::Sqlite, &envs);
    let token = admin_token(&base, &password).await;
    let client = reqwest::Client::new();
    let whsec = new_secret();
    company_with_profile(&client, &base, &token, "full", &whsec).await;

    let t0 = Instant::now();
    let burst = Burst::start(&base, "full", &whsec, 4, 4000);
    // Fill the disk: wait for the intake to refuse.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let refused = burst
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.status == Some(StatusCode::SERVICE_UNAVAILABLE))
            .count();
        if refused >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the disk never filled: {} acknowledged\n{}",
            burst.acked_after(t0),
            child.logs.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let full_acked = burst.acked().len();
    assert!(
        full_acked > 0,
        "nothing was acknowledged before the disk filled"
    );
    fs.resize("256m");
    let freed = Instant::now();
    burst
        .wait_acked_after(freed, 100, "after space returned", &child.logs)
        .await;
    let log = burst.finish().await;
    let acked = acked_and_otherwise_503(&log, &child.logs);
    every_acked_event_processed(&client, &base, &token, "full", &acked).await;
    drop(child);
}
