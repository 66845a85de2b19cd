//! The open-loop benchmark (`--rate R --duration S`) and the search for the highest rate that
//! holds (`--find-max`).
//!
//! Request `i` is due at `t0 + i/R` whatever the server answered before: a dispatcher thread
//! hands each request to the runtime at its intended time, over a pool of keep-alive
//! connections that grows up to `--max-connections`. Every latency is measured from the
//! request's *intended* send time, so a stall counts against every request scheduled behind it
//! (no coordinated omission). While it sends, the admin API's event counts are polled to follow
//! the backlog (acknowledged, not yet processed); afterwards the admin event list gives every
//! acknowledged event's status and `processed_at`, from which the time from acknowledgement to
//! processed and the ledger are computed.
//!
//! Beside the burst (issue 15's other targets): `--bystander-rate` measures a second company's
//! acknowledgements alone and during the burst (fairness); `--runs N` ends by comparing run 1
//! with the median of the others (cold against warm); `--server-pid` follows the server's RSS
//! per second (memory flat or not).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::sync::Semaphore;

use crate::{
    Admin, Args, Request, build_requests, cpu_seconds, pct, process_cpu_seconds, raw, rss_mib,
    target,
};

/// What the per-request timeout gives up after (counted as refused, `transport error`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One request's answer, packed: bit 63 answered, bits 32..48 the status (0: no answer),
/// bits 0..32 the latency in µs from the intended send time.
struct Slot(AtomicU64);

impl Slot {
    fn set(&self, status: u16, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u32::MAX)) as u64;
        self.0.store(
            (1 << 63) | (u64::from(status) << 32) | us,
            Ordering::Release,
        );
    }

    fn get(&self) -> Option<(u16, u32)> {
        let v = self.0.load(Ordering::Acquire);
        (v >> 63 == 1).then_some((((v >> 32) & 0xffff) as u16, (v & 0xffff_ffff) as u32))
    }
}

/// How requests leave: the raw keep-alive client for `http://`, `reqwest` otherwise.
enum Wire {
    Raw {
        addr: String,
        /// Each request's bytes, freed once it has left (a five-minute run at 8 000/s
        /// serialises 2.4 million of them).
        bytes: Vec<Mutex<Vec<u8>>>,
        pool: Mutex<Vec<raw::Conn>>,
    },
    Http {
        url: String,
        client: reqwest::Client,
    },
}

struct Shared {
    wire: Wire,
    /// The requests (for the raw client, their bodies are dropped once serialised).
    reqs: Vec<Request>,
    slots: Vec<Slot>,
    /// Requests answered or given up on; `all_finished` is notified when every one is.
    finished: AtomicUsize,
    all_finished: tokio::sync::Notify,
    /// Per distinct event: acknowledged at least once.
    acked_event: Vec<AtomicBool>,
    acked_events: AtomicUsize,
    permits: Semaphore,
}

impl Shared {
    /// Requests to `url`, serialised now for the raw client (before any clock starts).
    fn new(url: &str, mut reqs: Vec<Request>, events: usize, max_connections: usize) -> Self {
        let wire = match raw::Target::parse(url) {
            Some(t) => Wire::Raw {
                bytes: reqs
                    .iter_mut()
                    .map(|r| {
                        let bytes = t.request(&r.signature, &r.body);
                        r.body = Arc::default();
                        Mutex::new(bytes)
                    })
                    .collect(),
                addr: t.addr,
                pool: Mutex::new(Vec::new()),
            },
            None => Wire::Http {
                url: url.to_owned(),
                client: reqwest::Client::builder()
                    .pool_max_idle_per_host(max_connections)
                    .http1_only()
                    .tcp_nodelay(true)
                    .build()
                    .unwrap_or_default(),
            },
        };
        Self {
            wire,
            slots: (0..reqs.len()).map(|_| Slot(AtomicU64::new(0))).collect(),
            finished: AtomicUsize::new(0),
            all_finished: tokio::sync::Notify::new(),
            acked_event: (0..events).map(|_| AtomicBool::new(false)).collect(),
            acked_events: AtomicUsize::new(0),
            permits: Semaphore::new(max_connections.max(1)),
            reqs,
        }
    }

    /// Opens `k` connections of the raw client's pool now, before the clock starts (on the
    /// runtime that will use them).
    async fn preconnect(&self, k: usize) -> anyhow::Result<()> {
        if let Wire::Raw { addr, pool, .. } = &self.wire {
            let mut conns = Vec::new();
            for _ in 0..k {
                let mut c = raw::Conn::new(addr);
                c.connect().await?;
                conns.push(c);
            }
            if let Ok(mut p) = pool.lock() {
                p.extend(conns);
            }
        }
        Ok(())
    }

    async fn send(&self, i: usize) -> Option<u16> {
        let _permit = self.permits.acquire().await.ok()?;
        match &self.wire {
            Wire::Raw { addr, bytes, pool } => {
                let conn = pool.lock().ok().and_then(|mut p| p.pop());
                let mut conn = conn.unwrap_or_else(|| raw::Conn::new(addr));
                let bytes = bytes[i]
                    .lock()
                    .map(|mut b| std::mem::take(&mut *b))
                    .unwrap_or_default();
                match tokio::time::timeout(REQUEST_TIMEOUT, conn.send(&bytes)).await {
                    Ok(Ok(status)) => {
                        if let Ok(mut p) = pool.lock() {
                            p.push(conn);
                        }
                        Some(status)
                    }
                    _ => None,
                }
            }
            Wire::Http { url, client } => {
                let r = &self.reqs[i];
                let resp = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("stripe-signature", &r.signature)
                    .body(r.body.as_ref().clone())
                    .timeout(REQUEST_TIMEOUT)
                    .send()
                    .await
                    .ok()?;
                let status = resp.status().as_u16();
                let _ = resp.bytes().await;
                Some(status)
            }
        }
    }

    /// One request answered or given up on.
    fn finish_one(&self) {
        if self.finished.fetch_add(1, Ordering::AcqRel) + 1 == self.slots.len() {
            self.all_finished.notify_one();
        }
    }

    /// Until every request is answered or given up on.
    async fn all_answered(&self) {
        while self.finished.load(Ordering::Acquire) < self.slots.len() {
            self.all_finished.notified().await;
        }
    }
}

/// The dispatcher, run on an OS thread of its own: sleeps until request `i`'s time
/// `t0 + i/rate` (finer than the runtime's 1 ms timer) and spawns it onto `handle`, whatever
/// came back before. Returns how late each request left; [`Shared::all_answered`] tells when
/// the requests' tasks are done (they are not kept: a finished task's memory is freed at once).
fn dispatch(
    shared: &Arc<Shared>,
    t0: Instant,
    rate: f64,
    handle: &tokio::runtime::Handle,
) -> Vec<u32> {
    let n = shared.slots.len();
    let mut lag_us = Vec::with_capacity(n);
    for i in 0..n {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        lag_us.push(due.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        let s = shared.clone();
        handle.spawn(async move {
            let status = s.send(i).await;
            s.slots[i].set(status.unwrap_or(0), due.elapsed());
            if status == Some(200)
                && s.reqs[i].good
                && let Some(e) = s.reqs[i].event
                && !s.acked_event[e].swap(true, Ordering::Relaxed)
            {
                s.acked_events.fetch_add(1, Ordering::Relaxed);
            }
            s.finish_one();
        });
    }
    lag_us
}

/// A poll of the admin API's counts, relative to the run's start.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Seconds since `t0`.
    at: f64,
    /// Distinct events acknowledged by then (client side).
    acked: usize,
    /// Events processed, ignored or failed since the run began (server side).
    done: i64,
}

impl Sample {
    fn backlog(&self) -> i64 {
        (self.acked as i64 - self.done).max(0)
    }
}

/// An event's state at the end, from the admin event list.
struct Stored {
    status: String,
    processed_at_ms: Option<i64>,
    listed: usize,
}

/// The end states of a run's acknowledged events, for its ledger.
#[derive(Default)]
struct Tally {
    processed: usize,
    ignored: usize,
    failed: usize,
    pending: usize,
    /// Acknowledged but not in the event list.
    missing: usize,
    listed_twice: usize,
}

impl Tally {
    /// Counts one acknowledged event's state; returns its `processed_at` (epoch ms) when it
    /// was processed or ignored.
    fn add(&mut self, stored: Option<&Stored>) -> Option<i64> {
        let Some(st) = stored else {
            self.missing += 1;
            return None;
        };
        if st.listed > 1 {
            self.listed_twice += 1;
        }
        match st.status.as_str() {
            "processed" => self.processed += 1,
            "ignored" => self.ignored += 1,
            "failed" => self.failed += 1,
            _ => self.pending += 1,
        }
        matches!(st.status.as_str(), "processed" | "ignored")
            .then_some(st.processed_at_ms)
            .flatten()
    }

    /// Every one of `acked` events processed, ignored or failed, none failed, none lost.
    fn balances(&self, acked: usize) -> bool {
        acked == self.processed + self.ignored + self.failed
            && self.failed == 0
            && self.missing == 0
            && self.listed_twice == 0
    }

    /// `distinct events acknowledged A = processed P + ignored I + failed F (…)`.
    fn ledger(&self, acked: usize) -> String {
        let mut out = format!(
            "distinct events acknowledged {acked} {} processed {} + ignored {} + failed {}",
            if acked == self.processed + self.ignored + self.failed {
                "="
            } else {
                "≠"
            },
            self.processed,
            self.ignored,
            self.failed
        );
        if self.pending + self.missing + self.listed_twice > 0 {
            let _ = write!(
                out,
                " (still pending {}, not stored {}, listed twice {})",
                self.pending, self.missing, self.listed_twice
            );
        }
        out
    }
}

/// The outcome of one open-loop run.
pub struct RunResult {
    pub report: String,
    pub ack_p99_ms: f64,
    pub bounded: bool,
    pub balanced: bool,
    /// The imbalance was only events still pending when the drain wait ended.
    pub only_pending: bool,
    pub summary: String,
    /// Distinct events acknowledged per second (see where it is computed).
    pub acked_per_s: f64,
    /// Distinct events processed (or ignored) per second; `None` without the admin API.
    pub processed_per_s: Option<f64>,
    /// Ack → processed p99; `None` without the admin API.
    pub proc_p99_ms: Option<f64>,
}

/// `--rate R --duration S`, `--runs` times; or `--find-max`.
pub async fn run(args: &Args, admin: Option<&Admin>) -> anyhow::Result<()> {
    if let Some(r) = args.bystander_rate {
        if args.find_max {
            bail!("--bystander-rate works with --rate and --duration, not with --find-max");
        }
        if !args.setup || admin.is_none() {
            bail!(
                "--bystander-rate needs --setup and the admin credentials (the bystander gets a company of its own, set up like the main one)"
            );
        }
        if !(r > 0.0 && args.bystander_alone_secs > 0.0) {
            bail!("--bystander-rate and --bystander-alone-secs must be above 0");
        }
    }
    if args.find_max {
        return find_max(args, admin).await;
    }
    let rate = args.rate.context("--rate")?;
    let duration = args.duration.unwrap_or(10.0);
    let mut failed = 0;
    let mut figures = Vec::new();
    for run in 1..=args.runs {
        if args.runs > 1 {
            println!("run {run}/{}", args.runs);
        }
        let r = one(args, admin, rate, duration).await?;
        print!("{}", r.report);
        if !r.balanced {
            failed += 1;
        }
        figures.push(RunFigures {
            acked_per_s: Some(r.acked_per_s),
            processed_per_s: r.processed_per_s,
            ack_p99_ms: Some(r.ack_p99_ms),
            proc_p99_ms: r.proc_p99_ms,
        });
    }
    if figures.len() >= 2 {
        println!("{}", cold_vs_warm(&figures, args.warmup));
    }
    if failed > 0 {
        bail!(
            "{failed} of {} runs FAILED: the ledger (the main company's or the bystander's) does not balance",
            args.runs
        );
    }
    Ok(())
}

/// One run's figures that `--runs` compares between the first run and the others.
#[derive(Clone, Copy, Debug, Default)]
struct RunFigures {
    acked_per_s: Option<f64>,
    processed_per_s: Option<f64>,
    ack_p99_ms: Option<f64>,
    proc_p99_ms: Option<f64>,
}

/// Picks one of a run's figures.
type Figure = fn(&RunFigures) -> Option<f64>;

/// How far the first run may be from the warm ones, and the bystander's ack p99 under the
/// burst from its p99 alone (issue 15's targets: within 20 %).
const FAIRNESS_TOLERANCE: f64 = 0.2;

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        f64::midpoint(v[m - 1], v[m])
    } else {
        v[m]
    })
}

/// `(first − reference) / reference`, as a share; `None` when there is nothing to compare.
fn change(first: Option<f64>, reference: Option<f64>) -> Option<f64> {
    match (first, reference) {
        (Some(f), Some(r)) if r > 0.0 => Some((f - r) / r),
        _ => None,
    }
}

/// The line that ends `--runs N` (N ≥ 2): run 1 against the median of runs 2..N, for "the
/// first run after a fresh start within 20 % of the warm runs".
fn cold_vs_warm(runs: &[RunFigures], warmup: usize) -> String {
    let (first, warm) = (runs[0], &runs[1..]);
    let med = |f: Figure| median(warm.iter().filter_map(f).collect());
    let mut parts = Vec::new();
    let mut off = Vec::new();
    let mut unknown = false;
    let rows: [(&str, &str, Figure, bool); 4] = [
        ("acknowledged", "events/s", |r| r.acked_per_s, true),
        ("processed", "events/s", |r| r.processed_per_s, true),
        ("ack p99", "ms", |r| r.ack_p99_ms, true),
        ("ack → processed p99", "ms", |r| r.proc_p99_ms, false),
    ];
    for (name, unit, f, judged) in rows {
        let (a, b) = (f(&first), med(f));
        let fmt = |v: Option<f64>| match v {
            Some(v) if unit == "ms" => format!("{v:.2}"),
            Some(v) => format!("{v:.0}"),
            None => "-".to_owned(),
        };
        let c = change(a, b);
        parts.push(format!(
            "{name} {} vs {} {unit} ({}{})",
            fmt(a),
            fmt(b),
            c.map_or_else(|| "-".to_owned(), |c| format!("{:+.1} %", c * 100.0)),
            if judged { "" } else { ", not judged" }
        ));
        if judged {
            match c {
                Some(c) if c.abs() > FAIRNESS_TOLERANCE => off.push(name),
                Some(_) => {}
                None => unknown = true,
            }
        }
    }
    format!(
        "cold vs warm: run 1 against the median of runs 2–{} (run 1 is a cold start only on a server started just before{}): {}; within 20 % (events/s and ack p99): {}",
        runs.len(),
        if warmup > 0 {
            format!(", and {warmup} warm-up events were sent before it")
        } else {
            String::new()
        },
        parts.join(", "),
        if !off.is_empty() {
            format!("no ({})", off.join(", "))
        } else if unknown {
            "unknown".to_owned()
        } else {
            "yes".to_owned()
        }
    )
}

/// `first … MiB (before sending), max … MiB (at … s), last … MiB; over the second half of
/// sending ±… MiB/min`: is the server's memory flat?
fn rss_summary(first: Option<f64>, samples: &[(f64, f64)], duration: f64) -> String {
    let Some(&(last_at, last)) = samples.last() else {
        return "not readable".to_owned();
    };
    let (max_at, max) = samples
        .iter()
        .copied()
        .fold((f64::NAN, f64::MIN), |m, s| if s.1 > m.1 { s } else { m });
    let mut out = String::new();
    if let Some(f) = first {
        let _ = write!(out, "first {f:.1} MiB (before sending), ");
    }
    let _ = write!(
        out,
        "max {max:.1} MiB (at {max_at:.0} s), last {last:.1} MiB (at {last_at:.0} s, after draining)"
    );
    let half: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(at, _)| *at >= duration / 2.0 && *at <= duration)
        .collect();
    if let Some(g) = slope(&half) {
        let _ = write!(
            out,
            "; over the second half of sending {:+.2} MiB/min",
            g * 60.0
        );
    }
    out
}

fn workload_name(args: &Args) -> &'static str {
    if args.payment_intents_only {
        "payment_intent.succeeded"
    } else {
        "mix of payment_intent.succeeded and checkout.session.completed (half each)"
    }
}

async fn find_max(args: &Args, admin: Option<&Admin>) -> anyhow::Result<()> {
    if admin.is_none() || !(args.setup || args.company.is_some()) {
        bail!(
            "--find-max follows the backlog through Paygate's admin API: it needs --setup (or --company) and the admin credentials"
        );
    }
    let duration = args.duration.unwrap_or(5.0);
    let mut rate = args.rate.unwrap_or(2000.0).max(10.0);
    println!(
        "workload: find-max over open-loop {}, processing on (followed through the admin API), probes of {duration} s each; a rate holds if ack p99 ≤ {} ms, the backlog is bounded (drains within {} s after sending stops and grows by less than 10 % of the rate over the probe's second half) and the ledger balances",
        workload_name(args),
        args.max_p99_ms,
        args.max_drain
    );
    let mut lo: Option<(f64, RunResult)> = None;
    let mut hi: Option<f64> = None;
    for probe in 1..=args.max_probes {
        let r = one(args, admin, rate, duration).await?;
        let holds = r.ack_p99_ms <= args.max_p99_ms && r.bounded && r.balanced;
        println!(
            "probe {probe}: {rate:.0}/s → {}  ({})",
            if holds { "holds" } else { "does not hold" },
            r.summary
        );
        if !r.balanced && !r.only_pending {
            print!("{}", r.report);
            bail!("FAILED: the ledger of the {rate:.0}/s probe does not balance");
        }
        if holds {
            lo = Some((rate, r));
        } else {
            hi = Some(rate);
        }
        let next = match (&lo, hi) {
            (Some((l, _)), None) => l * 2.0,
            (None, Some(h)) => h / 2.0,
            (Some((l, _)), Some(h)) => {
                if (h - l) / l <= args.precision {
                    break;
                }
                (l + h) / 2.0
            }
            (None, None) => unreachable!(),
        };
        rate = (next / 50.0).round().max(1.0) * 50.0;
        if lo.as_ref().is_some_and(|(l, _)| (rate - l).abs() < 1.0) || hi == Some(rate) {
            break;
        }
        if rate < 10.0 {
            break;
        }
    }
    match lo {
        Some((l, r)) => {
            println!(
                "max: {l:.0} events/s hold (ack p99 ≤ {} ms, backlog bounded){}; the highest passing probe's report:",
                args.max_p99_ms,
                hi.map_or_else(
                    || " — the search ran out of probes before a rate failed".to_owned(),
                    |h| format!(", {h:.0}/s does not")
                )
            );
            print!("{}", r.report);
            Ok(())
        }
        None => bail!("no probed rate held (lowest tried: {rate:.0}/s)"),
    }
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

async fn counts(admin: &Admin, company: &str) -> anyhow::Result<(i64, i64)> {
    let s = admin
        .get(&format!("/admin/v1/companies/{company}/events/stats"))
        .await?;
    let n = |k: &str| s[k].as_i64().unwrap_or(0);
    Ok((n("processed") + n("ignored") + n("failed"), n("pending")))
}

/// The company's pending events: `/events/backlog`.
async fn pending(admin: &Admin, company: &str) -> anyhow::Result<i64> {
    let s = admin
        .get(&format!("/admin/v1/companies/{company}/events/backlog"))
        .await?;
    Ok(s["pending"].as_i64().unwrap_or(0))
}

/// One open-loop run at `rate` for `duration` seconds.
async fn one(
    args: &Args,
    admin: Option<&Admin>,
    rate: f64,
    duration: f64,
) -> anyhow::Result<RunResult> {
    let (url, secret, company) = target(args, admin).await?;
    // Requests = rate × duration, duplicates and bad signatures included.
    let events = ((rate * duration) / (1.0 + args.duplicates + args.bad_signatures))
        .round()
        .max(1.0) as usize;
    let gen_args = Args {
        events,
        ..args.clone()
    };
    let (reqs, ids) = build_requests(&gen_args, &secret, Some(rate));
    let n = reqs.len();
    let avg_bytes = reqs.iter().map(|r| r.body.len()).sum::<usize>() / n.max(1);
    let shared = Arc::new(Shared::new(&url, reqs, ids.len(), args.max_connections));
    let preconnect = args.max_connections.min(64);
    // Open some connections before the clock starts (with a bystander, just before the burst:
    // the server closes connections idle for 5 s).
    if args.bystander_rate.is_none() {
        shared.preconnect(preconnect).await?;
    }
    let company_admin = match (admin, company.as_deref()) {
        (Some(a), Some(c)) => Some((a, c.to_owned())),
        _ => None,
    };
    let mut bystander = match (args.bystander_rate, admin) {
        (Some(r), Some(a)) => Some(
            Bystander::prepare(args, a, r, duration)
                .await?
                .ready()
                .await?,
        ),
        (Some(_), None) => bail!("--bystander-rate needs --setup and the admin credentials"),
        (None, _) => None,
    };
    let rss_first = args.server_pid.and_then(rss_mib);
    // (seconds since t0, MiB)
    let mut rss_samples: Vec<(f64, f64)> = Vec::new();

    // With a bystander, it sends alone first and the burst starts after; the admin API is
    // not polled meanwhile, so nothing else reaches the server.
    let lead = Duration::from_millis(50);
    let alone = bystander.as_ref().map_or(Duration::ZERO, |b| {
        Duration::from_secs_f64(b.bystander.alone)
    });
    let (now, wall_now) = (Instant::now(), wall_ms());
    let start = now + lead;
    let t0 = start + alone;
    let wall_t0 = wall_now + (lead + alone).as_secs_f64() * 1000.0;
    let cpu0 = cpu_seconds();
    let server_cpu0 = args
        .server_pid
        .and_then(|p| process_cpu_seconds(&p.to_string()));
    if let Some(b) = &mut bystander {
        b.go(start, wall_now + lead.as_secs_f64() * 1000.0);
    }
    let handle = tokio::runtime::Handle::current();
    let dispatch_shared = shared.clone();
    let dispatcher =
        tokio::task::spawn_blocking(move || dispatch(&dispatch_shared, t0, rate, &handle));
    if bystander.is_some() {
        let before = t0.checked_sub(Duration::from_millis(200)).unwrap_or(t0);
        tokio::time::sleep_until(tokio::time::Instant::from_std(before)).await;
        shared.preconnect(preconnect).await?;
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(t0)).await;

    // Follow the backlog while sending, then until it drained (or the drain wait ends).
    let mut samples: Vec<Sample> = Vec::new();
    let mut all_answered_at: Option<f64> = None;
    let mut drained_at: Option<f64> = None;
    let mut dispatcher = Some(dispatcher);
    let mut lag_us = Vec::new();
    let interval = Duration::from_millis(args.sample_ms.max(20));
    loop {
        tokio::time::sleep(interval).await;
        if let Some(pid) = args.server_pid
            && let Some(r) = rss_mib(pid)
        {
            rss_samples.push((t0.elapsed().as_secs_f64(), r));
        }
        if dispatcher.as_ref().is_some_and(|d| d.is_finished())
            && let Some(d) = dispatcher.take()
        {
            lag_us = d.await?;
            shared.all_answered().await;
            all_answered_at = Some(t0.elapsed().as_secs_f64());
        }
        let acked_before = shared.acked_events.load(Ordering::Relaxed);
        let Some((a, c)) = &company_admin else {
            if all_answered_at.is_some() {
                break;
            }
            continue;
        };
        // The backlog alone, while sending: a count of the pending events (an index range on
        // the server, cheap however large the inbox is; a count of every status would read
        // the company's whole history each time, on the connection the intake commits on).
        let backlog = pending(a, c).await?;
        let acked_after = shared.acked_events.load(Ordering::Relaxed);
        let s = Sample {
            at: t0.elapsed().as_secs_f64(),
            acked: (acked_before + acked_after) / 2,
            done: (acked_after as i64 - backlog).max(0),
        };
        samples.push(s);
        if let Some(answered) = all_answered_at {
            if s.done >= acked_after as i64 {
                drained_at = Some(s.at);
                break;
            }
            if s.at - answered > args.drain_timeout {
                break;
            }
        }
    }
    let bystander = match (bystander, admin) {
        (Some(b), Some(a)) => Some(b.finish(a, args, interval, duration).await?),
        _ => None,
    };
    let cpu = cpu_seconds() - cpu0;
    let server_cpu = args
        .server_pid
        .and_then(|p| process_cpu_seconds(&p.to_string()))
        .zip(server_cpu0)
        .map(|(after, before)| after - before);
    if let Some(pid) = args.server_pid
        && let Some(r) = rss_mib(pid)
    {
        rss_samples.push((t0.elapsed().as_secs_f64(), r));
    }

    // The answers.
    let answers: Vec<Option<(u16, u32)>> = shared.slots.iter().map(Slot::get).collect();
    let mut by_status: std::collections::BTreeMap<u16, usize> = Default::default();
    let mut transport_errors = 0;
    let mut acked_requests = 0;
    let mut bad_acked = 0;
    for (i, a) in answers.iter().enumerate() {
        match a {
            Some((0, _)) | None => transport_errors += 1,
            Some((s, _)) => {
                *by_status.entry(*s).or_default() += 1;
                if *s == 200 {
                    acked_requests += 1;
                    if !shared.reqs[i].good {
                        bad_acked += 1;
                    }
                }
            }
        }
    }
    let refused = n - acked_requests;
    // When the last answer came, from the schedule and the latencies (seconds since t0).
    let last_answer = answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.map(|(_, lat)| i as f64 / rate + f64::from(lat) / 1e6))
        .fold(0.0_f64, f64::max);
    // The first acknowledgement of each distinct event: its request and wall time.
    let mut first_ack: HashMap<usize, (usize, f64)> = HashMap::new();
    for (i, a) in answers.iter().enumerate() {
        if let (Some((200, lat)), Some(e), true) = (a, shared.reqs[i].event, shared.reqs[i].good) {
            let at = wall_t0 + i as f64 / rate * 1000.0 + f64::from(*lat) / 1000.0;
            let entry = first_ack.entry(e).or_insert((i, at));
            if at < entry.1 {
                *entry = (i, at);
            }
        }
    }

    // Every acknowledged event's state, from the admin event list (newest first).
    let stored = match &company_admin {
        Some((a, c)) => Some(list_events(a, c, &ids, &first_ack).await?),
        None => None,
    };

    // Per second of the schedule.
    let secs = (n as f64 / rate).ceil().max(1.0) as usize;
    let mut per_sec_ack: Vec<Vec<u32>> = vec![Vec::new(); secs];
    let mut per_sec_sent = vec![0usize; secs];
    let mut per_sec_refused = vec![0usize; secs];
    for (i, a) in answers.iter().enumerate() {
        let s = ((i as f64 / rate) as usize).min(secs - 1);
        per_sec_sent[s] += 1;
        match a {
            Some((200, lat)) => per_sec_ack[s].push(*lat),
            _ => per_sec_refused[s] += 1,
        }
    }
    let mut per_sec_proc: Vec<Vec<u32>> = vec![Vec::new(); secs];
    let mut proc_all: Vec<u32> = Vec::new();
    let mut tally = Tally::default();
    // The last of them processed, epoch ms.
    let mut last_processed_ms: Option<i64> = None;
    if let Some(stored) = &stored {
        for (e, (i, at)) in &first_ack {
            if let Some(p) = tally.add(stored.get(&ids[*e])) {
                let us = ((p as f64 - at).max(0.0) * 1000.0) as u32;
                proc_all.push(us);
                per_sec_proc[((*i as f64 / rate) as usize).min(secs - 1)].push(us);
                last_processed_ms = last_processed_ms.max(Some(p));
            }
        }
    }
    let (processed, ignored, failed, pending, missing, listed_twice) = (
        tally.processed,
        tally.ignored,
        tally.failed,
        tally.pending,
        tally.missing,
        tally.listed_twice,
    );
    let stored_but_refused = stored.as_ref().map_or(0, |st| {
        (0..ids.len())
            .filter(|e| !first_ack.contains_key(e) && st.contains_key(&ids[*e]))
            .count()
    });
    let acked_events = first_ack.len();

    // Backlog per second: the last sample at or before each second's end.
    let backlog_at = |t: f64| -> Option<i64> {
        samples
            .iter()
            .take_while(|s| s.at <= t + 1e-9)
            .last()
            .map(Sample::backlog)
    };
    let end_of_sending = duration;
    let backlog_end = backlog_at(end_of_sending);
    let peak = samples.iter().map(Sample::backlog).max();
    let drain_after = drained_at.map(|d| (d - end_of_sending).max(0.0));
    // Growth over the second half of sending: least-squares slope of the backlog samples.
    let half: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.at >= duration / 2.0 && s.at <= duration)
        .map(|s| (s.at, s.backlog() as f64))
        .collect();
    let growth = slope(&half);
    let have_admin = company_admin.is_some();
    let bounded = have_admin
        && drain_after.is_some_and(|d| d <= args.max_drain)
        && growth.is_none_or(|g| g <= 0.1 * rate);

    let mut ack_all: Vec<u32> = per_sec_ack.iter().flatten().copied().collect();
    ack_all.sort_unstable();
    proc_all.sort_unstable();
    lag_us.sort_unstable();

    let requests_balance = n == acked_requests + refused;
    let events_balance = have_admin && tally.balances(acked_events);
    let main_balanced = requests_balance && bad_acked == 0 && (events_balance || !have_admin);
    // The bystander's acknowledged events must all be processed too.
    let balanced = main_balanced && bystander.as_ref().is_none_or(|b| b.balanced);
    let only_pending = requests_balance
        && bad_acked == 0
        && failed == 0
        && missing == 0
        && listed_twice == 0
        && pending > 0;

    // The report.
    let mut out = String::new();
    let processing = if !have_admin {
        "processing not observed (no admin API)"
    } else if processed + ignored > 0 {
        "processing on"
    } else {
        "processing apparently off (nothing processed)"
    };
    let _ = writeln!(
        out,
        "workload: open-loop {}, {processing}, rate {rate:.0}/s for {duration} s ({n} requests: {events} distinct events, {:.0} % duplicates, {:.0} % bad signatures, ~{avg_bytes} B each), up to {} connections, to {url}{}",
        workload_name(args),
        args.duplicates * 100.0,
        args.bad_signatures * 100.0,
        args.max_connections,
        bystander.as_ref().map_or_else(String::new, |b| format!(
            "; with a bystander: a second company at {:.0}/s on its own connections, {} s alone, then during the burst",
            b.rate, b.alone
        )),
    );
    let _ = writeln!(
        out,
        "  request i is due at t0 + i/R whatever came back; ack latency is from that intended time (no coordinated omission)"
    );
    if have_admin {
        let _ = writeln!(
            out,
            "  ack → processed: every acknowledged event (not a sample): its processed_at from the admin event list (ms, stamped by the server just before its commit) minus our acknowledgement; backlog: the company's pending events (/events/backlog, an index range), polled every {} ms",
            interval.as_millis()
        );
    }
    // The server's RSS at the end of a second: the last reading at or before it.
    let rss_at = |t: f64| -> Option<f64> {
        rss_samples
            .iter()
            .take_while(|(at, _)| *at <= t + 1e-9)
            .last()
            .map(|(_, r)| *r)
    };
    let rss_col = args.server_pid.is_some();
    let _ = writeln!(
        out,
        "  {:>4} {:>7} {:>7} {:>7} {:>8} {:>8} {:>9} {:>8} {:>9} {:>9} {:>8}{}",
        "sec",
        "sent",
        "acked",
        "refused",
        "ack p50",
        "ack p99",
        "ack p99.9",
        "ack max",
        "proc p50",
        "proc p99",
        "backlog",
        if rss_col {
            format!(" {:>8}", "RSS MiB")
        } else {
            String::new()
        }
    );
    for s in 0..secs {
        let mut a = std::mem::take(&mut per_sec_ack[s]);
        a.sort_unstable();
        let mut p = std::mem::take(&mut per_sec_proc[s]);
        p.sort_unstable();
        let _ = writeln!(
            out,
            "  {:>4} {:>7} {:>7} {:>7} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>9} {:>9} {:>8}{}",
            s + 1,
            per_sec_sent[s],
            a.len(),
            per_sec_refused[s],
            pct(&a, 0.5),
            pct(&a, 0.99),
            pct(&a, 0.999),
            pct(&a, 1.0),
            opt_ms(have_admin && !p.is_empty(), pct(&p, 0.5)),
            opt_ms(have_admin && !p.is_empty(), pct(&p, 0.99)),
            backlog_at((s + 1) as f64).map_or_else(|| "-".to_owned(), |b| b.to_string()),
            if rss_col {
                format!(
                    " {:>8}",
                    rss_at((s + 1) as f64).map_or_else(|| "-".to_owned(), |r| format!("{r:.1}"))
                )
            } else {
                String::new()
            }
        );
    }
    if have_admin {
        // After sending stopped: the backlog each second until it drained.
        let last = samples.last().map_or(0.0, |s| s.at);
        let mut t = end_of_sending + 1.0;
        let mut tail = Vec::new();
        while t <= last + 1.0 && tail.len() < 120 {
            if let Some(b) = backlog_at(t) {
                tail.push(format!("+{:.0} s {b}", t - end_of_sending));
                if b == 0 {
                    break;
                }
            }
            t += 1.0;
        }
        let _ = writeln!(
            out,
            "  after sending  backlog {}",
            if tail.is_empty() {
                "0".to_owned()
            } else {
                tail.join(", ")
            }
        );
    }
    let _ = writeln!(
        out,
        "  overall  sent {n} in {duration} s, the last answer {last_answer:.3} s after t0; acknowledged {:.0}/s",
        acked_requests as f64 / duration
    );
    let _ = writeln!(
        out,
        "  ack latency ms        p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        pct(&ack_all, 0.5),
        pct(&ack_all, 0.99),
        pct(&ack_all, 0.999),
        pct(&ack_all, 1.0)
    );
    if have_admin {
        let _ = writeln!(
            out,
            "  ack → processed ms    p50 {}  p99 {}  p99.9 {}  max {}  ({} events)",
            opt_ms(!proc_all.is_empty(), pct(&proc_all, 0.5)),
            opt_ms(!proc_all.is_empty(), pct(&proc_all, 0.99)),
            opt_ms(!proc_all.is_empty(), pct(&proc_all, 0.999)),
            opt_ms(!proc_all.is_empty(), pct(&proc_all, 1.0)),
            proc_all.len()
        );
        let _ = writeln!(
            out,
            "  backlog               peak {}, at end of sending {}, growth over the second half {}, drained {}",
            peak.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            backlog_end.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            growth.map_or_else(|| "-".to_owned(), |g| format!("{g:+.0} events/s")),
            drain_after.map_or_else(
                || format!("NOT within the {} s drain wait", args.drain_timeout),
                |d| format!("{d:.2} s after sending stopped")
            ),
        );
    }
    let _ = writeln!(
        out,
        "  sender                lag behind schedule p50 {:.3} ms, p99 {:.3} ms, max {:.2} ms; client CPU {cpu:.2} s ({:.0} % of one core)",
        pct(&lag_us, 0.5),
        pct(&lag_us, 0.99),
        pct(&lag_us, 1.0),
        cpu / now.elapsed().as_secs_f64().max(0.001) * 100.0
    );
    let _ = writeln!(
        out,
        "  by status             {by_status:?}  transport errors/timeouts {transport_errors}"
    );
    if let Some(pid) = args.server_pid {
        let _ = writeln!(
            out,
            "  server RSS (pid {pid})  {}",
            rss_summary(rss_first, &rss_samples, duration)
        );
    }
    if let Some(s) = server_cpu {
        // From t0 to the end of the drain: what it cost the server to take and apply them.
        let _ = writeln!(
            out,
            "  server CPU            {s:.2} s ({:.0} % of one core), {:.1} µs per request sent",
            s / now.elapsed().as_secs_f64().max(0.001) * 100.0,
            s * 1e6 / (n.max(1) as f64)
        );
    }
    if let Some(b) = &bystander {
        out.push_str(&b.report);
    }
    let mut ledger = format!(
        "  ledger                requests sent {n} = acknowledged {acked_requests} + refused {refused}"
    );
    if bad_acked > 0 {
        let _ = write!(
            ledger,
            " (of them {bad_acked} bad signatures acknowledged!)"
        );
    }
    if have_admin {
        let _ = write!(ledger, "; {}", tally.ledger(acked_events));
        if stored_but_refused > 0 {
            let _ = write!(
                ledger,
                "; {stored_but_refused} refused deliveries were stored all the same"
            );
        }
    } else {
        let _ = write!(ledger, "; processing not checked (no admin API)");
    }
    let _ = writeln!(
        out,
        "{ledger} — {}",
        if balanced {
            "balanced"
        } else {
            "DOES NOT BALANCE"
        }
    );
    let p99 = pct(&ack_all, 0.99);
    let _ = writeln!(
        out,
        "  result: {}  (ack p99 {p99:.2} ms ≤ {} ms: {}; backlog bounded: {}{})",
        if balanced { "OK" } else { "FAILED" },
        args.max_p99_ms,
        if p99 <= args.max_p99_ms { "yes" } else { "no" },
        if !have_admin {
            "unknown"
        } else if bounded {
            "yes"
        } else {
            "no"
        },
        bystander.as_ref().map_or_else(String::new, |b| format!(
            "; bystander ack p99 within 20 % of alone: {}{}",
            match b.p99_ratio {
                Some(r) if (r - 1.0).abs() <= FAIRNESS_TOLERANCE => "yes",
                Some(_) => "no",
                None => "unknown",
            },
            if b.balanced {
                ""
            } else {
                ", its ledger DOES NOT BALANCE"
            }
        ))
    );
    if args.e2e
        && let Some(d) = drained_at
    {
        let _ = writeln!(
            out,
            "  end to end            {d:.3} s from t0 until every acknowledged event was processed: {:.0} events/s",
            acked_events as f64 / d
        );
    }
    let summary = format!(
        "ack p99 {p99:.2} ms, ack → processed p99 {}, backlog end {} peak {}, drained {}, ledger {}",
        opt_ms(!proc_all.is_empty(), pct(&proc_all, 0.99)),
        backlog_end.map_or_else(|| "-".to_owned(), |b| b.to_string()),
        peak.map_or_else(|| "-".to_owned(), |b| b.to_string()),
        drain_after.map_or_else(|| "no".to_owned(), |d| format!("+{d:.2} s")),
        if balanced {
            "balanced"
        } else {
            "does not balance"
        }
    );
    if args.check {
        if let (Some((a, c)), true) = (&company_admin, balanced) {
            let acked_ids: Vec<String> = first_ack.keys().map(|e| ids[*e].clone()).collect();
            if stored_but_refused == 0 {
                crate::check_stored(a, c, &acked_ids).await?;
            }
        }
        let expected_bad = (events as f64 * args.bad_signatures).round() as usize;
        let bad = by_status.get(&400).copied().unwrap_or(0);
        if bad != expected_bad {
            bail!(
                "check failed: {bad} deliveries got 400, expected {expected_bad} (the bad signatures)"
            );
        }
    }
    // Throughput for `--runs`' cold-versus-warm line: distinct events acknowledged (processed)
    // over the time from t0 to the last acknowledgement (the last processed_at), at least the
    // sending time.
    let acked_per_s = acked_events as f64 / last_answer.max(duration);
    let processed_per_s = last_processed_ms.map(|last| {
        (processed + ignored) as f64 / ((last as f64 - wall_t0) / 1000.0).max(duration)
    });
    Ok(RunResult {
        report: out,
        ack_p99_ms: p99,
        bounded,
        balanced,
        only_pending,
        summary,
        acked_per_s,
        processed_per_s,
        proc_p99_ms: (!proc_all.is_empty()).then(|| pct(&proc_all, 0.99)),
    })
}

/// A second company's events at a fixed low rate during a run (`--bystander-rate`): does one
/// company's burst slow the others' acknowledgements? It is measured alone first (nothing
/// else sent), then during the burst. Its requests go over connections of their own, from a
/// client thread and runtime of their own, so they never queue behind the burst's inside
/// this client: what slows them is the server.
struct Bystander {
    company: String,
    rate: f64,
    /// Seconds it sends alone before the burst.
    alone: f64,
    ids: Vec<String>,
    shared: Arc<Shared>,
}

struct RunningBystander {
    bystander: Bystander,
    /// Epoch ms of its first request's intended time (set by `go`).
    wall_start: f64,
    /// Tells the thread when its first request is due.
    go: Option<std::sync::mpsc::Sender<Instant>>,
    /// Returns how late each request left.
    thread: std::thread::JoinHandle<anyhow::Result<Vec<u32>>>,
}

/// What the run's report says about the bystander.
struct BystanderOutcome {
    report: String,
    rate: f64,
    alone: f64,
    /// Ack p99 under the burst ÷ ack p99 alone.
    p99_ratio: Option<f64>,
    /// Requests sent = acknowledged + refused, every acknowledged event processed.
    balanced: bool,
}

/// One phase of the bystander's run (alone, or during the burst).
#[derive(Default)]
struct Phase {
    sent: usize,
    refused: usize,
    ack: Vec<u32>,
    proc: Vec<u32>,
}

impl Bystander {
    /// A company of its own (a profile and a secret, as `--setup` makes for the main one)
    /// and its events for the alone phase and the burst, the same workload as the burst's.
    async fn prepare(
        args: &Args,
        admin: &Admin,
        rate: f64,
        burst_secs: f64,
    ) -> anyhow::Result<Self> {
        let (url, secret, company) =
            crate::setup_company(args, admin, "Benchmark bystander").await?;
        let alone = args.bystander_alone_secs;
        let events = (rate * (alone + burst_secs)).round().max(1.0) as usize;
        let gen_args = Args {
            events,
            duplicates: 0.0,
            bad_signatures: 0.0,
            ..args.clone()
        };
        let (reqs, ids) = build_requests(&gen_args, &secret, Some(rate));
        Ok(Self {
            company: company.context("the bystander's company")?,
            rate,
            alone,
            shared: Arc::new(Shared::new(&url, reqs, ids.len(), args.max_connections)),
            ids,
        })
    }

    /// Starts its thread and runtime and opens its connections, before any clock starts;
    /// it sends once `go` says when.
    async fn ready(self) -> anyhow::Result<RunningBystander> {
        let (shared, rate) = (self.shared.clone(), self.rate);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<Instant>();
        let thread = std::thread::Builder::new()
            .name("bystander".to_owned())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("bystander-rt")
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    shared.preconnect(4).await?;
                    let _ = ready_tx.send(());
                    let handle = tokio::runtime::Handle::current();
                    let s = shared.clone();
                    let lag_us = tokio::task::spawn_blocking(move || {
                        let start = go_rx
                            .recv()
                            .context("the run ended before the bystander started")?;
                        anyhow::Ok(dispatch(&s, start, rate, &handle))
                    })
                    .await??;
                    shared.all_answered().await;
                    Ok(lag_us)
                })
            })?;
        let running = RunningBystander {
            bystander: self,
            wall_start: 0.0,
            go: Some(go_tx),
            thread,
        };
        if ready_rx.await.is_err() {
            // The thread ended before it was ready: its error says why.
            return match tokio::task::spawn_blocking(move || running.thread.join()).await? {
                Ok(Err(e)) => Err(e.context("starting the bystander")),
                _ => bail!("the bystander's sender thread ended before it was ready"),
            };
        }
        Ok(running)
    }
}

impl RunningBystander {
    /// Request i is due at `start + i/rate`; `wall_start` is `start` as epoch ms.
    fn go(&mut self, start: Instant, wall_start: f64) {
        self.wall_start = wall_start;
        if let Some(go) = self.go.take() {
            let _ = go.send(start);
        }
    }

    /// Waits for its last answer and for its acknowledged events to be processed, then
    /// reports on it.
    async fn finish(
        self,
        admin: &Admin,
        args: &Args,
        interval: Duration,
        burst_secs: f64,
    ) -> anyhow::Result<BystanderOutcome> {
        let Self {
            bystander: b,
            wall_start,
            thread,
            ..
        } = self;
        let mut lag_us = match tokio::task::spawn_blocking(move || thread.join()).await? {
            Ok(r) => r?,
            Err(_) => bail!("the bystander's sender thread panicked"),
        };
        lag_us.sort_unstable();
        let n = b.shared.slots.len();
        let alone_n = ((b.rate * b.alone).ceil() as usize).min(n);
        let phase_of = |i: usize| usize::from(i >= alone_n);
        let mut phases = [Phase::default(), Phase::default()];
        let mut first_ack: HashMap<usize, (usize, f64)> = HashMap::new();
        let mut acked_requests = 0;
        let mut by_status: std::collections::BTreeMap<u16, usize> = Default::default();
        let mut transport_errors = 0;
        for (i, a) in b.shared.slots.iter().map(Slot::get).enumerate() {
            let p = &mut phases[phase_of(i)];
            p.sent += 1;
            match a {
                Some((0, _)) | None => transport_errors += 1,
                Some((s, _)) => *by_status.entry(s).or_default() += 1,
            }
            match a {
                Some((200, lat)) => {
                    acked_requests += 1;
                    p.ack.push(lat);
                    if let Some(e) = b.shared.reqs[i].event {
                        let at = wall_start + i as f64 / b.rate * 1000.0 + f64::from(lat) / 1000.0;
                        first_ack.entry(e).or_insert((i, at));
                    }
                }
                _ => p.refused += 1,
            }
        }
        let refused = n - acked_requests;
        // Every acknowledged bystander event must be processed: wait for its backlog.
        let acked_events = first_ack.len();
        let waiting = Instant::now();
        let mut drained = false;
        while waiting.elapsed().as_secs_f64() <= args.drain_timeout {
            let (done, _) = counts(admin, &b.company).await?;
            if done >= acked_events as i64 {
                drained = true;
                break;
            }
            tokio::time::sleep(interval).await;
        }
        let stored = list_events(admin, &b.company, &b.ids, &first_ack).await?;
        let mut tally = Tally::default();
        for (e, (i, at)) in &first_ack {
            if let Some(p) = tally.add(stored.get(&b.ids[*e])) {
                phases[phase_of(*i)]
                    .proc
                    .push(((p as f64 - at).max(0.0) * 1000.0) as u32);
            }
        }
        for p in &mut phases {
            p.ack.sort_unstable();
            p.proc.sort_unstable();
        }
        let balanced = n == acked_requests + refused && tally.balances(acked_events);
        let [alone, burst] = &phases;
        let p99 = |p: &Phase| (!p.ack.is_empty()).then(|| pct(&p.ack, 0.99));
        let p99_ratio = match (p99(alone), p99(burst)) {
            (Some(a), Some(u)) if a > 0.0 => Some(u / a),
            _ => None,
        };

        let mut out = String::new();
        let _ = writeln!(
            out,
            "  bystander             company {} at {:.0}/s on its own connections and client thread: {} s alone (nothing else sent), then during the {burst_secs} s burst",
            b.company, b.rate, b.alone
        );
        let _ = writeln!(
            out,
            "    {:<15} {:>6} {:>6} {:>7} {:>8} {:>8} {:>9} {:>8} {:>9} {:>9}",
            "phase",
            "sent",
            "acked",
            "refused",
            "ack p50",
            "ack p99",
            "ack p99.9",
            "ack max",
            "proc p50",
            "proc p99"
        );
        for (name, p) in [("alone", alone), ("under the burst", burst)] {
            let _ = writeln!(
                out,
                "    {:<15} {:>6} {:>6} {:>7} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>9} {:>9}",
                name,
                p.sent,
                p.ack.len(),
                p.refused,
                pct(&p.ack, 0.5),
                pct(&p.ack, 0.99),
                pct(&p.ack, 0.999),
                pct(&p.ack, 1.0),
                opt_ms(!p.proc.is_empty(), pct(&p.proc, 0.5)),
                opt_ms(!p.proc.is_empty(), pct(&p.proc, 0.99)),
            );
        }
        let _ = writeln!(
            out,
            "  bystander ack p99     {} under the burst vs {} alone: {}",
            p99(burst).map_or_else(|| "-".to_owned(), |v| format!("{v:.2} ms")),
            p99(alone).map_or_else(|| "-".to_owned(), |v| format!("{v:.2} ms")),
            p99_ratio.map_or_else(
                || "no ratio".to_owned(),
                |r| format!(
                    "×{r:.2} ({:+.0} %; target: unchanged within 20 %: {})",
                    (r - 1.0) * 100.0,
                    if (r - 1.0).abs() <= FAIRNESS_TOLERANCE {
                        "met"
                    } else {
                        "not met"
                    }
                )
            )
        );
        let _ = writeln!(
            out,
            "  bystander sender      lag behind schedule p50 {:.3} ms, p99 {:.3} ms, max {:.2} ms; by status {by_status:?}, transport errors/timeouts {transport_errors}",
            pct(&lag_us, 0.5),
            pct(&lag_us, 0.99),
            pct(&lag_us, 1.0)
        );
        let _ = writeln!(
            out,
            "  bystander ledger      requests sent {n} = acknowledged {acked_requests} + refused {refused}; {}{} — {}",
            tally.ledger(acked_events),
            if drained {
                String::new()
            } else {
                format!(
                    " (not all processed within the {} s drain wait)",
                    args.drain_timeout
                )
            },
            if balanced {
                "balanced"
            } else {
                "DOES NOT BALANCE"
            }
        );
        Ok(BystanderOutcome {
            report: out,
            rate: b.rate,
            alone: b.alone,
            p99_ratio,
            balanced,
        })
    }
}

fn opt_ms(some: bool, v: f64) -> String {
    if some {
        format!("{v:.1}")
    } else {
        "-".to_owned()
    }
}

fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Pages through the company's events (newest first) until every acknowledged one was seen.
async fn list_events(
    admin: &Admin,
    company: &str,
    ids: &[String],
    first_ack: &HashMap<usize, (usize, f64)>,
) -> anyhow::Result<HashMap<String, Stored>> {
    let ours: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut wanted: HashSet<&str> = first_ack.keys().map(|e| ids[*e].as_str()).collect();
    let mut out: HashMap<String, Stored> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/v1/companies/{company}/events?limit=200&cursor={c}"),
            None => format!("/admin/v1/companies/{company}/events?limit=200"),
        };
        let page = admin.get(&path).await?;
        for e in page["data"].as_array().into_iter().flatten() {
            let id = e["id"].as_str().unwrap_or_default();
            if !ours.contains(id) {
                continue;
            }
            wanted.remove(id);
            out.entry(id.to_owned())
                .and_modify(|s| s.listed += 1)
                .or_insert_with(|| Stored {
                    status: e["status"].as_str().unwrap_or_default().to_owned(),
                    processed_at_ms: e["processed_at"].as_str().and_then(parse_rfc3339_ms),
                    listed: 1,
                });
        }
        match page["next_cursor"].as_str() {
            Some(c) if page["has_more"] == true && !wanted.is_empty() => {
                cursor = Some(c.to_owned())
            }
            _ => break,
        }
    }
    Ok(out)
}

/// `2026-12-04T22:17:23.123Z` → epoch milliseconds (UTC only, as Paygate writes them).
fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = if b[19] == b'.' {
        let frac: String = s[20..].chars().take_while(char::is_ascii_digit).collect();
        let f = format!("{frac:0<3}");
        f[..3].parse::<i64>().ok()?
    } else {
        0
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paygate_timestamps() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2026-12-04T22:17:23.123Z"),
            Some(1_796_422_643_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2000-03-01T00:00:01Z"),
            Some(951_868_801_000)
        );
        assert_eq!(parse_rfc3339_ms("garbage"), None);
    }

    #[test]
    fn slope_of_a_line() {
        let pts = [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)];
        assert!((slope(&pts).unwrap_or(0.0) - 2.0).abs() < 1e-9);
        assert_eq!(slope(&pts[..2]), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    fn figures(acked: f64, processed: f64, p99: f64) -> RunFigures {
        RunFigures {
            acked_per_s: Some(acked),
            processed_per_s: Some(processed),
            ack_p99_ms: Some(p99),
            proc_p99_ms: Some(50.0),
        }
    }

    #[test]
    fn the_first_run_is_compared_with_the_median_of_the_others() {
        let runs = [
            figures(1900.0, 1900.0, 6.0),
            figures(2000.0, 2000.0, 4.0),
            figures(2000.0, 1990.0, 5.0),
            figures(1000.0, 1000.0, 50.0),
        ];
        let line = cold_vs_warm(&runs, 0);
        assert!(line.starts_with("cold vs warm: run 1 against the median of runs 2–4"));
        assert!(
            line.contains("acknowledged 1900 vs 2000 events/s (-5.0 %)"),
            "{line}"
        );
        assert!(line.contains("ack p99 6.00 vs 5.00 ms (+20.0 %)"), "{line}");
        assert!(
            line.ends_with("within 20 % (events/s and ack p99): yes"),
            "{line}"
        );
        let runs = [figures(2000.0, 2000.0, 9.0), figures(2000.0, 2000.0, 5.0)];
        assert!(cold_vs_warm(&runs, 100).ends_with("no (ack p99)"));
        let no_admin = RunFigures {
            processed_per_s: None,
            ..figures(2000.0, 0.0, 5.0)
        };
        assert!(cold_vs_warm(&[no_admin, no_admin], 0).ends_with("unknown"));
    }

    #[test]
    fn rss_summary_names_first_max_last_and_the_trend() {
        let samples = [
            (1.0, 40.0),
            (2.0, 50.0),
            (3.0, 50.0),
            (4.0, 50.0),
            (5.0, 48.0),
        ];
        let s = rss_summary(Some(30.0), &samples, 4.0);
        assert!(
            s.starts_with(
                "first 30.0 MiB (before sending), max 50.0 MiB (at 2 s), last 48.0 MiB (at 5 s"
            ),
            "{s}"
        );
        assert!(
            s.ends_with("over the second half of sending +0.00 MiB/min"),
            "{s}"
        );
        assert_eq!(rss_summary(None, &[], 4.0), "not readable");
    }

    #[test]
    fn a_tally_balances_only_when_every_acknowledged_event_is_done() {
        let st = |status: &str| Stored {
            status: status.to_owned(),
            processed_at_ms: Some(7),
            listed: 1,
        };
        let mut t = Tally::default();
        assert_eq!(t.add(Some(&st("processed"))), Some(7));
        assert_eq!(t.add(Some(&st("ignored"))), Some(7));
        assert!(t.balances(2));
        assert_eq!(t.add(Some(&st("pending"))), None);
        assert!(!t.balances(3));
        assert!(
            t.ledger(3)
                .contains("(still pending 1, not stored 0, listed twice 0)")
        );
        let mut t = Tally::default();
        assert_eq!(t.add(None), None);
        assert!(!t.balances(1));
        let mut t = Tally::default();
        t.add(Some(&st("failed")));
        assert!(!t.balances(1));
    }

    #[test]
    fn a_slot_keeps_status_and_latency() {
        let s = Slot(AtomicU64::new(0));
        assert_eq!(s.get(), None);
        s.set(200, Duration::from_micros(1234));
        assert_eq!(s.get(), Some((200, 1234)));
        s.set(0, Duration::from_micros(5));
        assert_eq!(s.get(), Some((0, 5)));
    }
}
