#![doc = include_str!("../README.md")]
#![recursion_limit = "512"]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;

mod open;
mod raw;

/// Load generator for Stripe webhook endpoints.
#[derive(Clone, Debug, Parser)]
#[command(name = "paygate-bench", version, about)]
struct Args {
    /// Callback URL to post to (any system). With `--setup`, derived from Paygate's answer.
    #[arg(long)]
    url: Option<String>,
    /// Signing secret (`whsec_…`). With `--setup`, a fresh one is generated.
    #[arg(long)]
    secret: Option<String>,
    /// Paygate base URL, for `--setup`, `--check` and `--e2e`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Operator e-mail for Paygate's admin API.
    #[arg(long, env = "PAYGATE_BENCH_ADMIN_EMAIL")]
    admin_email: Option<String>,
    /// Operator password for Paygate's admin API.
    #[arg(long, env = "PAYGATE_BENCH_ADMIN_PASSWORD")]
    admin_password: Option<String>,
    /// Company id at Paygate (for `--check`/`--e2e` without `--setup`).
    #[arg(long)]
    company: Option<String>,
    /// Create a fresh company and test profile at Paygate and post to its callback URL.
    #[arg(long)]
    setup: bool,
    /// Distinct good events to send.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    events: usize,
    /// Requests in flight.
    #[arg(long, short = 'c', default_value_t = 32)]
    concurrency: usize,
    /// Share of extra requests that repeat an earlier event (0.1 = 10 %).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Share of extra requests with a wrong signature.
    #[arg(long, default_value_t = 0.0)]
    bad_signatures: f64,
    /// Only `payment_intent.succeeded` events (the router benchmark's shape).
    #[arg(long)]
    payment_intents_only: bool,
    /// Afterwards, ask Paygate that exactly the distinct good events were stored.
    #[arg(long)]
    check: bool,
    /// Afterwards, wait until Paygate's workers processed every event; report events/s.
    #[arg(long)]
    e2e: bool,
    /// Sample this process's resident memory (VmRSS) during the run.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Repeat the whole run this many times (fresh events each time).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// First send this many events, not counted (a freshly started server's first run is
    /// its slowest); with `--setup` to a company of their own, processed before the runs.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Open loop: send at this fixed arrival rate (requests/s), whatever the answers; latency
    /// is measured from each request's intended send time. With `--find-max`, the first rate
    /// tried (default 2000).
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: seconds to send for (default 10; 5 for each `--find-max` probe).
    #[arg(long)]
    duration: Option<f64>,
    /// Search (doubling, then bisection over short open-loop runs) the highest rate whose ack
    /// p99 stays within `--max-p99-ms`, whose backlog stays bounded and whose ledger balances.
    #[arg(long)]
    find_max: bool,
    /// Open loop: most connections (requests in flight) at once; beyond, requests wait for one
    /// (their latency still counts from their intended send time).
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Open loop: seconds to wait after the last answer for the backlog to drain.
    #[arg(long, default_value_t = 60.0)]
    drain_timeout: f64,
    /// `--find-max`: the ack p99 a rate must stay within, in ms.
    #[arg(long, default_value_t = 10.0)]
    max_p99_ms: f64,
    /// `--find-max`: seconds after sending stops within which the backlog must have drained.
    #[arg(long, default_value_t = 3.0)]
    max_drain: f64,
    /// `--find-max`: most probes.
    #[arg(long, default_value_t = 10)]
    max_probes: usize,
    /// `--find-max`: stop when the passing and the failing rate are this close (0.05 = 5 %).
    #[arg(long, default_value_t = 0.05)]
    precision: f64,
    /// Open loop: how often to poll the admin API's event counts for the backlog, in ms.
    #[arg(long, default_value_t = 250)]
    sample_ms: u64,
    /// Open loop (`--rate`, with `--setup`): fairness. A second company of its own sends at
    /// this fixed low rate on its own connections, first alone for `--bystander-alone-secs`,
    /// then during the burst; its ack p99 alone and under the burst are compared.
    #[arg(long)]
    bystander_rate: Option<f64>,
    /// `--bystander-rate`: seconds the bystander is measured alone before the burst starts.
    #[arg(long, default_value_t = 5.0)]
    bystander_alone_secs: f64,
}

struct Request {
    body: Arc<Vec<u8>>,
    signature: String,
    good: bool,
    /// Index of the distinct good event it delivers (`None` for a bad signature).
    event: Option<usize>,
}

fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The characters of Stripe's ids, in their sort order (digits, upper case, lower case).
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn rand_id(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
        .collect()
}

/// Where the creation second in a Stripe id counts from: `evt_1IlYUU…` (created 1619697430)
/// and `evt_1Itt6e…` (created 1621683300), two genuine events, both give this epoch.
const STRIPE_ID_EPOCH: i64 = 426_256_548;

/// How Stripe's own ids are made, so that a stream of them meets our indexes as a real one
/// does: after the prefix, six base-62 characters counting the second the object was created
/// (from [`STRIPE_ID_EPOCH`]), ten characters the account's own id ends with (`acct_1PgafT` +
/// `B7WZ01zgkW`, and `pi_1Pgafy` + `B7WZ01zgkW` + eight more), then eight random ones. So a
/// company's ids arrive in the order of their seconds, random only within one second.
struct StripeIds {
    /// The ten characters of the sending account (one account: one company).
    account: String,
}

impl StripeIds {
    /// The ids of the account whose webhook secret is `secret` (the same account from run to
    /// run against the same company).
    fn of_account(secret: &str) -> Self {
        use rand::SeedableRng;
        let seed = secret.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        Self {
            account: rand_id(&mut rng, 10),
        }
    }

    /// An id with `prefix` (`evt`, `pi`, `ch`) of an object created at `created` (Unix s).
    fn id(&self, rng: &mut impl Rng, prefix: &str, created: i64) -> String {
        let mut second = (created - STRIPE_ID_EPOCH).max(0);
        let mut time = [b'0'; 6];
        for c in time.iter_mut().rev() {
            *c = BASE62[(second % 62) as usize];
            second /= 62;
        }
        let time = std::str::from_utf8(&time).unwrap_or_default();
        format!("{prefix}_{time}{}{}", self.account, rand_id(rng, 8))
    }
}

/// A `payment_intent.succeeded` of about 2.5 KB, shaped like Stripe's.
fn payment_intent_event(rng: &mut impl Rng, ids: &StripeIds, now: i64) -> Value {
    let pi = ids.id(rng, "pi", now - 3);
    let ch = ids.id(rng, "ch", now - 1);
    let amount = rng.gen_range(100..100_000);
    json!({
        "id": ids.id(rng, "evt", now), "object": "event", "api_version": "2024-06-20", "created": now,
        "data": {"object": {
            "id": pi, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
            "amount_details": {"tip": {}}, "amount_received": amount, "application": null,
            "application_fee_amount": null, "automatic_payment_methods": {"allow_redirects": "always", "enabled": true},
            "canceled_at": null, "cancellation_reason": null, "capture_method": "automatic_async",
            "client_secret": format!("{pi}_secret_{}", rand_id(rng, 25)), "confirmation_method": "automatic",
            "created": now - 3, "currency": "eur", "customer": format!("cus_{}", rand_id(rng, 14)),
            "description": "Order 1042 — 2 × Espresso beans 1 kg", "invoice": null, "last_payment_error": null,
            "latest_charge": ch, "livemode": false,
            "metadata": {"order_id": format!("ord_{}", rand_id(rng, 12)), "cart": "a1b2c3", "channel": "web"},
            "next_action": null, "on_behalf_of": null, "payment_method": format!("pm_{}", rand_id(rng, 24)),
            "payment_method_configuration_details": {"id": format!("pmc_{}", rand_id(rng, 24)), "parent": null},
            "payment_method_options": {"card": {"installments": null, "mandate_options": null, "network": null, "request_three_d_secure": "automatic"},
                "bancontact": {"preferred_language": "en"}, "eps": {}, "giropay": {}, "ideal": {}, "klarna": {"preferred_locale": null},
                "link": {"persistent_token": null}, "sepa_debit": {}, "sofort": {"preferred_language": null}},
            "payment_method_types": ["card", "bancontact", "eps", "giropay", "ideal", "klarna", "link", "sepa_debit", "sofort"],
            "processing": null, "receipt_email": "shopper@example.com", "review": null, "setup_future_usage": null,
            "shipping": {"address": {"city": "Milano", "country": "IT", "line1": "Via Roma 1", "line2": null, "postal_code": "20121", "state": "MI"},
                "carrier": null, "name": "Mario Rossi", "phone": null, "tracking_number": null},
            "source": null, "statement_descriptor": null, "statement_descriptor_suffix": null, "status": "succeeded",
            "transfer_data": null, "transfer_group": null
        }},
        "livemode": false, "pending_webhooks": 2,
        "request": {"id": format!("req_{}", rand_id(rng, 14)), "idempotency_key": format!("{}-{}", rand_id(rng, 8), rand_id(rng, 12))},
        "type": "payment_intent.succeeded"
    })
}

/// A `checkout.session.completed` of about 2.5 KB, shaped like Stripe's.
fn checkout_event(rng: &mut impl Rng, ids: &StripeIds, now: i64) -> Value {
    let cs = format!("cs_test_{}", rand_id(rng, 58));
    json!({
        "id": ids.id(rng, "evt", now), "object": "event", "api_version": "2024-06-20", "created": now,
        "data": {"object": {
            "id": cs, "object": "checkout.session", "after_expiration": null, "allow_promotion_codes": null,
            "amount_subtotal": 3998, "amount_total": 3998, "automatic_tax": {"enabled": false, "liability": null, "status": null},
            "billing_address_collection": null, "cancel_url": "https://shop.example/cart", "client_reference_id": format!("cart_{}", rand_id(rng, 10)),
            "consent": null, "consent_collection": null, "created": now - 60, "currency": "eur", "custom_fields": [],
            "custom_text": {"after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null},
            "customer": null, "customer_creation": "if_required",
            "customer_details": {"address": {"city": "Torino", "country": "IT", "line1": "Corso Francia 2", "line2": null, "postal_code": "10138", "state": "TO"},
                "email": "shopper@example.com", "name": "Giulia Bianchi", "phone": null, "tax_exempt": "none", "tax_ids": []},
            "customer_email": null, "expires_at": now + 86_340, "invoice": null, "invoice_creation": {"enabled": false, "invoice_data": {
                "account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": null, "metadata": {}, "rendering_options": null}},
            "livemode": false, "locale": "it", "metadata": {"order": format!("{}", rng.gen_range(1000..99999))}, "mode": "payment",
            "payment_intent": ids.id(rng, "pi", now - 60), "payment_link": null, "payment_method_collection": "if_required",
            "payment_method_configuration_details": null, "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": ["card", "sepa_debit"], "payment_status": "paid",
            "phone_number_collection": {"enabled": false}, "recovered_from": null, "setup_intent": null, "shipping_address_collection": null,
            "shipping_cost": null, "shipping_details": null, "shipping_options": [], "status": "complete", "submit_type": null,
            "subscription": null, "success_url": "https://paygate.example/checkout/acme/return?session_id={CHECKOUT_SESSION_ID}",
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}, "ui_mode": "hosted",
            "url": null
        }},
        "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "type": "checkout.session.completed"
    })
}

/// A request of a run before it is signed: its body, whether it is signed with the right
/// secret, its event (`None` for a bad signature), and where it goes in the stream.
struct Slot {
    at: f64,
    body: Arc<Vec<u8>>,
    good: bool,
    event: Option<usize>,
}

/// The requests of a run, in the order they are sent. `rate`: open loop, request `k` leaves
/// about `k / rate` seconds after the run starts, and is signed with that time, so a long run's
/// last requests are as fresh as its first (signed all at the start, they would pass the
/// receiver's 300 s tolerance); `None`: all signed now.
fn build_requests(args: &Args, secret: &str, rate: Option<f64>) -> (Vec<Request>, Vec<String>) {
    let mut rng = rand::thread_rng();
    let now = now_secs();
    let stripe = StripeIds::of_account(secret);
    let dups = (args.events as f64 * args.duplicates).round() as usize;
    let bads = (args.events as f64 * args.bad_signatures).round() as usize;
    // Distinct events a second: open loop, each event is created in the second it is sent
    // (as Stripe sends them, a moment after), so its id carries that second.
    let per_second = rate
        .filter(|r| *r > 0.0)
        .map(|r| r * args.events as f64 / (args.events + dups + bads) as f64);
    let created = |i: usize| match per_second {
        Some(p) => now + (i as f64 / p) as i64,
        None => now,
    };
    let mut bodies: Vec<Slot> = Vec::with_capacity(args.events + dups + bads);
    let mut ids = Vec::with_capacity(args.events);
    for i in 0..args.events {
        let ev = if args.payment_intents_only || i % 2 == 0 {
            payment_intent_event(&mut rng, &stripe, created(i))
        } else {
            checkout_event(&mut rng, &stripe, created(i))
        };
        ids.push(ev["id"].as_str().unwrap_or_default().to_owned());
        bodies.push(Slot {
            at: i as f64,
            body: Arc::new(serde_json::to_vec(&ev).unwrap_or_default()),
            good: true,
            event: Some(i),
        });
    }
    // A duplicate comes within a second before or after its original (Stripe retries, or
    // sends the same event twice at once); a bad signature anywhere.
    let second = per_second.unwrap_or(args.events as f64);
    for _ in 0..dups {
        let j = rng.gen_range(0..args.events);
        let at = j as f64 + rng.gen_range(-second..second);
        let body = bodies[j].body.clone();
        bodies.push(Slot {
            at,
            body,
            good: true,
            event: Some(j),
        });
    }
    for _ in 0..bads {
        let at = rng.gen_range(0.0..args.events as f64);
        let ev = payment_intent_event(&mut rng, &stripe, created(at as usize));
        bodies.push(Slot {
            at,
            body: Arc::new(serde_json::to_vec(&ev).unwrap_or_default()),
            good: false,
            event: None,
        });
    }
    bodies.sort_by(|a, b| a.at.total_cmp(&b.at));
    let reqs = bodies
        .into_iter()
        .enumerate()
        .map(
            |(
                k,
                Slot {
                    body, good, event, ..
                },
            )| {
                let t = match rate {
                    Some(r) if r > 0.0 => now + (k as f64 / r) as i64,
                    _ => now,
                };
                let key = if good {
                    secret
                } else {
                    "whsec_not_the_right_secret_at_all"
                };
                Request {
                    signature: sign(key, t, &body),
                    body,
                    good,
                    event,
                }
            },
        )
        .collect();
    (reqs, ids)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// User + system CPU seconds of this process, from /proc.
fn cpu_seconds() -> f64 {
    process_cpu_seconds("self").unwrap_or(0.0)
}

/// User and system CPU time of process `pid` (`"self"`, or a number), seconds.
fn process_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Some(ticks / 100.0)
}

fn rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    async fn login(args: &Args, http: &reqwest::Client) -> anyhow::Result<Self> {
        let (Some(email), Some(password)) = (&args.admin_email, &args.admin_password) else {
            bail!("--admin-email and --admin-password are needed for --setup, --check and --e2e");
        };
        let r: Value = http
            .post(format!("{}/admin/v1/auth/token", args.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?
            .error_for_status()
            .context("signing in to the admin API")?
            .json()
            .await?;
        let token = r["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned();
        Ok(Self {
            base: args.base.clone(),
            token,
            http: http.clone(),
        })
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("{path}: {status} {v}");
        }
        Ok(v)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

#[derive(Default)]
struct Outcome {
    latencies_us: Vec<u32>,
    by_status: BTreeMap<u16, usize>,
    accepted_good: usize,
    transport_errors: usize,
}

/// Sends every request at `concurrency`: over the raw keep-alive client for `http://` URLs,
/// over `reqwest` (TLS) otherwise.
async fn blast(url: &str, reqs: Vec<Request>, concurrency: usize) -> (Outcome, Duration) {
    match raw::Target::parse(url) {
        Some(target) => blast_raw(&target, reqs, concurrency).await,
        None => blast_reqwest(url, reqs, concurrency).await,
    }
}

async fn blast_raw(
    target: &raw::Target,
    reqs: Vec<Request>,
    concurrency: usize,
) -> (Outcome, Duration) {
    // Serialised before the clock starts: the run measures the server, not our formatting.
    let wire: Arc<Vec<(Vec<u8>, bool)>> = Arc::new(
        reqs.iter()
            .map(|r| (target.request(&r.signature, &r.body), r.good))
            .collect(),
    );
    drop(reqs);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (wire, next, addr) = (wire.clone(), next.clone(), target.addr.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut conn = raw::Conn::new(&addr);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((bytes, good)) = wire.get(i) else {
                    break;
                };
                let t = Instant::now();
                match conn.send(bytes).await {
                    Ok(status) => out.answered(status, *good, t),
                    Err(_) => out.transport_errors += 1,
                }
            }
            out
        }));
    }
    (merge(tasks).await, start.elapsed())
}

impl Outcome {
    /// Records an answer with `status` to a request sent at `sent`.
    fn answered(&mut self, status: u16, good: bool, sent: Instant) {
        self.latencies_us
            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        *self.by_status.entry(status).or_default() += 1;
        if status == 200 && good {
            self.accepted_good += 1;
        }
    }
}

async fn merge(tasks: Vec<tokio::task::JoinHandle<Outcome>>) -> Outcome {
    let mut total = Outcome::default();
    for t in tasks {
        if let Ok(o) = t.await {
            total.latencies_us.extend(o.latencies_us);
            for (k, v) in o.by_status {
                *total.by_status.entry(k).or_default() += v;
            }
            total.accepted_good += o.accepted_good;
            total.transport_errors += o.transport_errors;
        }
    }
    total
}

async fn blast_reqwest(url: &str, reqs: Vec<Request>, concurrency: usize) -> (Outcome, Duration) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .http1_only()
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default();
    let reqs = Arc::new(reqs);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, reqs, next, url) = (http.clone(), reqs.clone(), next.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = reqs.get(i) else { break };
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("stripe-signature", &r.signature)
                    .body(r.body.as_ref().clone())
                    .send()
                    .await;
                match resp {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let _ = resp.bytes().await;
                        out.answered(status, r.good, t);
                    }
                    Err(_) => out.transport_errors += 1,
                }
            }
            out
        }));
    }
    (merge(tasks).await, start.elapsed())
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

async fn check_stored(admin: &Admin, company: &str, expected: &[String]) -> anyhow::Result<()> {
    let mut stored = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/v1/companies/{company}/events?limit=200&cursor={c}"),
            None => format!("/admin/v1/companies/{company}/events?limit=200"),
        };
        let page = admin.get(&path).await?;
        for e in page["data"].as_array().into_iter().flatten() {
            let id = e["id"].as_str().unwrap_or_default().to_owned();
            if !stored.insert(id.clone()) {
                bail!("check failed: {id} listed twice");
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) if page["has_more"] == true => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    let missing = expected.iter().filter(|id| !stored.contains(*id)).count();
    let extra = stored.len() + missing - expected.len();
    if missing > 0 || extra > 0 {
        bail!(
            "check failed: {missing} acknowledged events missing, {extra} unexpected events stored"
        );
    }
    println!(
        "check: ok — exactly the {} distinct good events are stored, each once",
        expected.len()
    );
    Ok(())
}

async fn wait_processed(
    admin: &Admin,
    company: &str,
    expected: usize,
    started: Instant,
) -> anyhow::Result<Duration> {
    loop {
        let stats = admin
            .get(&format!("/admin/v1/companies/{company}/events/stats"))
            .await?;
        let done = stats["processed"].as_u64().unwrap_or(0)
            + stats["ignored"].as_u64().unwrap_or(0)
            + stats["failed"].as_u64().unwrap_or(0);
        if done as usize >= expected {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("workers did not finish within 10 minutes: {stats}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

/// Where a run posts: with `--setup` a fresh company and test profile at Paygate (URL, secret,
/// company id), otherwise `--url` and `--secret`.
async fn target(
    args: &Args,
    admin: Option<&Admin>,
) -> anyhow::Result<(String, String, Option<String>)> {
    if !args.setup {
        return Ok((
            args.url.clone().context("--url (or --setup) is required")?,
            args.secret
                .clone()
                .context("--secret (or --setup) is required")?,
            args.company.clone(),
        ));
    }
    setup_company(args, admin.context("admin")?, "Benchmark").await
}

/// Creates a fresh company called `name` with a test profile and a new signing secret at
/// Paygate; returns its callback URL, the secret and the company id.
async fn setup_company(
    args: &Args,
    admin: &Admin,
    name: &str,
) -> anyhow::Result<(String, String, Option<String>)> {
    let secret = format!("whsec_{}", rand_id(&mut rand::thread_rng(), 32));
    let company = format!("bench_{}", rand_id(&mut rand::thread_rng(), 10));
    admin
        .post(
            "/admin/v1/companies",
            json!({"company_id": company, "name": name}),
        )
        .await?;
    admin
        .post(
            &format!("/admin/v1/companies/{company}/profiles"),
            json!({"name": "bench", "mode": "test", "publishable_key": "pk_test_bench", "secret_key": "sk_test_bench_key_0000000000", "webhook_secret": secret}),
        )
        .await?;
    // The callback URL as Paygate shows it, but on the address we can reach.
    let url = format!("{}/callbacks/v1.0/stripe/{company}", args.base);
    Ok((url, secret, Some(company)))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let open_loop = args.rate.is_some() || args.find_max;
    let admin = if args.setup
        || args.check
        || args.e2e
        || (open_loop && args.company.is_some() && args.admin_email.is_some())
    {
        Some(Admin::login(&args, &http).await?)
    } else {
        None
    };
    if args.warmup > 0 {
        if !args.setup && (args.check || args.e2e) {
            bail!(
                "--warmup with --check or --e2e needs --setup (the warm-up events go to a company of their own)"
            );
        }
        let (url, secret, company) = target(&args, admin.as_ref()).await?;
        let warm = Args {
            events: args.warmup,
            duplicates: 0.0,
            bad_signatures: 0.0,
            ..args.clone()
        };
        let (reqs, _) = build_requests(&warm, &secret, None);
        let started = Instant::now();
        let (out, elapsed) = blast(&url, reqs, args.concurrency).await;
        if let (true, Some(admin), Some(company)) = (args.e2e, admin.as_ref(), company) {
            wait_processed(admin, &company, args.warmup, started).await?;
        }
        println!(
            "warm-up: {} requests in {:.3} s ({} answered 200), not counted",
            args.warmup,
            elapsed.as_secs_f64(),
            out.by_status.get(&200).copied().unwrap_or(0)
        );
    }
    if open_loop {
        return open::run(&args, admin.as_ref()).await;
    }
    for run in 1..=args.runs {
        let (url, secret, company) = target(&args, admin.as_ref()).await?;
        let (reqs, ids) = build_requests(&args, &secret, None);
        let total_requests = reqs.len();
        let bytes: usize = reqs.iter().map(|r| r.body.len()).sum::<usize>() / total_requests.max(1);
        let rss_before = args.server_pid.and_then(rss_mib);
        let peak_kib = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sampler = args.server_pid.map(|pid| {
            let peak_kib = peak_kib.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(r) = rss_mib(pid) {
                        peak_kib.fetch_max((r * 1024.0) as u64, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        let cpu0 = cpu_seconds();
        let started = Instant::now();
        let (mut out, elapsed) = blast(&url, reqs, args.concurrency).await;
        let cpu = cpu_seconds() - cpu0;
        out.latencies_us.sort_unstable();
        let secs = elapsed.as_secs_f64();
        println!(
            "run {run}/{}: {} requests ({} distinct good events, {:.0} % duplicates, {:.0} % bad signatures, ~{} B each), concurrency {}",
            args.runs,
            total_requests,
            args.events,
            args.duplicates * 100.0,
            args.bad_signatures * 100.0,
            bytes,
            args.concurrency
        );
        println!("  elapsed          {secs:.3} s");
        println!("  requests/s       {:.0}", total_requests as f64 / secs);
        println!(
            "  accepted events/s {:.0}  (200 answers to good deliveries)",
            out.accepted_good as f64 / secs
        );
        println!(
            "  latency ms       p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            pct(&out.latencies_us, 0.5),
            pct(&out.latencies_us, 0.9),
            pct(&out.latencies_us, 0.99),
            pct(&out.latencies_us, 1.0)
        );
        println!(
            "  by status        {:?}  transport errors {}",
            out.by_status, out.transport_errors
        );
        println!(
            "  client CPU       {cpu:.2} s ({:.0} % of one core)",
            cpu / secs * 100.0
        );
        if let Some(h) = sampler {
            h.abort();
        }
        if let Some(pid) = args.server_pid {
            println!(
                "  server RSS       before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB",
                rss_before.unwrap_or(0.0),
                peak_kib.load(Ordering::Relaxed) as f64 / 1024.0,
                rss_mib(pid).unwrap_or(0.0)
            );
        }
        if args.e2e {
            let admin = admin.as_ref().context("admin")?;
            let company = company
                .as_deref()
                .context("--company or --setup is needed for --e2e")?;
            let took = wait_processed(admin, company, args.events, started).await?;
            println!(
                "  end to end       {:.3} s until every event was processed: {:.0} events/s",
                took.as_secs_f64(),
                args.events as f64 / took.as_secs_f64()
            );
        }
        if args.check {
            let admin = admin.as_ref().context("admin")?;
            let company = company
                .as_deref()
                .context("--company or --setup is needed for --check")?;
            // The check expects every good event stored: it says nothing if some were refused
            // (the throttle's 429 answers every delivery from the address for a while).
            let throttled = out.by_status.get(&429).copied().unwrap_or(0);
            if throttled > 0 {
                bail!(
                    "check not made: {throttled} deliveries were refused with 429 (the intake's throttle of rejected deliveries, tripped by --bad-signatures); start the server with PAYGATE_INTAKE_REJECT_LIMIT_PER_MINUTE=0"
                );
            }
            check_stored(admin, company, &ids).await?;
            let good_rejected: usize = out
                .by_status
                .iter()
                .filter(|(s, _)| **s != 200 && **s != 400)
                .map(|(_, n)| n)
                .sum();
            if good_rejected > 0 || out.transport_errors > 0 {
                bail!(
                    "check failed: {good_rejected} unexpected statuses, {} transport errors",
                    out.transport_errors
                );
            }
            let bad = out.by_status.get(&400).copied().unwrap_or(0);
            let expected_bad = (args.events as f64 * args.bad_signatures).round() as usize;
            if bad != expected_bad {
                bail!(
                    "check failed: {bad} deliveries got 400, expected {expected_bad} (the bad signatures)"
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids carry their second as Stripe's do: the time part of two genuine event ids comes
    /// back from their `created`, and a company's ids sort by the second they were created.
    #[test]
    fn stripe_shaped_ids_carry_their_creation_second() {
        let ids = StripeIds::of_account("whsec_test");
        let mut rng = rand::thread_rng();
        assert!(
            ids.id(&mut rng, "evt", 1_619_697_430)
                .starts_with("evt_1IlYUU")
        );
        assert!(
            ids.id(&mut rng, "evt", 1_621_683_300)
                .starts_with("evt_1Itt6e")
        );
        let a = ids.id(&mut rng, "pi", 1_796_000_000);
        let b = ids.id(&mut rng, "pi", 1_796_000_001);
        assert!(a < b, "{a} sorts before {b}");
        assert_eq!(a.len(), "pi_".len() + 24);
        assert_eq!(a[9..19], b[9..19], "one account, one suffix");
        assert_ne!(
            StripeIds::of_account("whsec_other").account,
            ids.account,
            "another account, another suffix"
        );
    }
}
