//! Prometheus metrics, rendered in the text exposition format at `GET /metrics`.
//!
//! Counters on the intake's hot path are plain atomics (fixed label sets); series with open label
//! sets (event types) sit behind a mutex touched once per processed event, never per request.
//! Gauges that describe the database (backlogs, oldest item) are read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Intake outcomes, the `outcome` label of `paygate_intake_requests_total`.
pub const INTAKE_OUTCOMES: &[&str] = &[
    "accepted",
    "duplicate",
    "company_not_found",
    "company_suspended",
    "payload_too_large",
    "signature_missing",
    "signature_malformed",
    "signature_invalid",
    "timestamp_outside_tolerance",
    "livemode_mismatch",
    "payload_invalid",
    "thin_event_unsupported",
    "rate_limited",
    "error",
];

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A fixed-bucket histogram of seconds.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric of one process.
#[derive(Debug)]
pub struct Metrics {
    intake: Vec<AtomicU64>,
    /// Time from request to answer at the intake.
    pub intake_latency: Histogram,
    /// Inbox group commits: time from `BEGIN` to the end of `COMMIT`.
    pub inbox_commit: Histogram,
    /// Deliveries written by inbox group commits (rows / commits = the average batch).
    pub inbox_rows: AtomicU64,
    /// SQLite: the inbox writer's own WAL checkpoint between two batches, which lets the log
    /// start over; nothing is committed while it runs.
    pub wal_restart: Histogram,
    /// SQLite: the `fdatasync` of the WAL that makes the inbox's commits durable (every
    /// acknowledgement waits for one).
    pub inbox_sync: Histogram,
    handlers: Mutex<BTreeMap<(String, String), u64>>,
    deliveries: Mutex<BTreeMap<String, u64>>,
    reconcile: Mutex<BTreeMap<String, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            intake: INTAKE_OUTCOMES.iter().map(|_| AtomicU64::new(0)).collect(),
            intake_latency: Histogram::default(),
            inbox_commit: Histogram::default(),
            inbox_rows: AtomicU64::new(0),
            wal_restart: Histogram::default(),
            inbox_sync: Histogram::default(),
            handlers: Mutex::new(BTreeMap::new()),
            deliveries: Mutex::new(BTreeMap::new()),
            reconcile: Mutex::new(BTreeMap::new()),
        }
    }
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K, n: u64) {
    *m.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(k)
        .or_default() += n;
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts an intake outcome (unknown codes count as `error`).
    pub fn intake(&self, outcome: &str, took: Duration) {
        let i = INTAKE_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(INTAKE_OUTCOMES.len() - 1);
        self.intake[i].fetch_add(1, Ordering::Relaxed);
        self.intake_latency.observe(took);
    }

    /// Counts a handler outcome (`processed`, `ignored`, `retry`, `failed`) for an event type.
    pub fn handler(&self, event_type: &str, outcome: &str) {
        bump(
            &self.handlers,
            (event_type.to_owned(), outcome.to_owned()),
            1,
        );
    }

    /// Counts an outbound delivery outcome.
    pub fn delivery(&self, outcome: &str) {
        bump(&self.deliveries, outcome.to_owned(), 1);
    }

    /// Counts reconciliation results (`runs`, `failed_runs`, `fetched`, `recovered`, …).
    pub fn reconcile(&self, what: &str, n: u64) {
        bump(&self.reconcile, what.to_owned(), n);
    }

    /// The exposition text; `gauges` are (name, help, value) read by the caller at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP paygate_intake_requests_total Deliveries to the intake by outcome.\n# TYPE paygate_intake_requests_total counter\n");
        for (i, o) in INTAKE_OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "paygate_intake_requests_total{{outcome=\"{o}\"}} {}",
                self.intake[i].load(Ordering::Relaxed)
            );
        }
        self.intake_latency.render(
            &mut out,
            "paygate_intake_duration_seconds",
            "Time from request to answer at the intake.",
        );
        self.inbox_commit.render(
            &mut out,
            "paygate_inbox_commit_duration_seconds",
            "Inbox group commits (one transaction for the deliveries waiting together), BEGIN to COMMIT.",
        );
        self.wal_restart.render(
            &mut out,
            "paygate_inbox_wal_restart_duration_seconds",
            "SQLite: the inbox writer's WAL checkpoint between two batches (so that the log starts over); nothing is committed meanwhile.",
        );
        self.inbox_sync.render(
            &mut out,
            "paygate_inbox_sync_duration_seconds",
            "SQLite: the fdatasync of the WAL that makes the inbox's commits durable; every acknowledgement waits for one.",
        );
        let _ = writeln!(
            out,
            "# HELP paygate_inbox_committed_deliveries_total Deliveries written by inbox group commits.\n# TYPE paygate_inbox_committed_deliveries_total counter\npaygate_inbox_committed_deliveries_total {}",
            self.inbox_rows.load(Ordering::Relaxed)
        );
        out.push_str("# HELP paygate_handler_events_total Events handled by the router, by type and outcome.\n# TYPE paygate_handler_events_total counter\n");
        for ((t, o), n) in self
            .handlers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "paygate_handler_events_total{{type=\"{}\",outcome=\"{}\"}} {n}",
                esc(t),
                esc(o)
            );
        }
        out.push_str("# HELP paygate_notification_deliveries_total Outbound notification attempts by outcome.\n# TYPE paygate_notification_deliveries_total counter\n");
        for (o, n) in self
            .deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "paygate_notification_deliveries_total{{outcome=\"{}\"}} {n}",
                esc(o)
            );
        }
        out.push_str("# HELP paygate_reconcile_total Missed-event recovery results.\n# TYPE paygate_reconcile_total counter\n");
        for (o, n) in self
            .reconcile
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "paygate_reconcile_total{{result=\"{}\"}} {n}", esc(o));
        }
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}
