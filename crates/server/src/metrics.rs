//! `/metrics` in Prometheus' text format: HTTP answers by route pattern and status, intake by
//! source and outcome, how long routing transactions take, timers fired, and — read from the
//! database at each scrape — the hold queue, the pools, timers due, deliveries waiting, dead
//! letters per channel and the connection pool. Counters live in memory per instance (sum
//! them across instances); the queue sizes are the database's, the same on every instance.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::AppState;

/// What this instance counted since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `route pattern → status → answers`.
    http: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    /// `(source, outcome) → leads`.
    intake: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
    pub fn count_response(&self, route: &str, status: u16) {
        let mut http = self
            .http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // No allocation once a route has been seen.
        match http.get_mut(route) {
            Some(statuses) => *statuses.entry(status).or_default() += 1,
            None => {
                http.insert(route.to_owned(), BTreeMap::from([(status, 1)]));
            }
        }
    }

    /// A lead offered at intake: `api`, `batch` or `intake:<source>`; `created`, `duplicate`
    /// or `rejected`.
    pub fn count_intake(&self, source: &str, outcome: &'static str) {
        let mut intake = self
            .intake
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *intake.entry((source.to_owned(), outcome)).or_default() += 1;
    }

    /// What became of a lead offered through the API, counted under `source`.
    pub fn count_created(
        &self,
        source: &str,
        result: &Result<crate::routing::Created, crate::error::ApiError>,
    ) {
        self.count_intake(
            source,
            match result {
                Ok(crate::routing::Created::Duplicate { .. }) => "duplicate",
                Ok(crate::routing::Created::Attached { .. }) => "attached",
                Ok(_) => "created",
                Err(_) => "rejected",
            },
        );
    }
}

/// Upper bounds of the routing-latency buckets, in microseconds.
const BOUNDS_MICROS: [u64; 10] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];

/// A latency histogram that can live in a `static`.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_MICROS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS_MICROS.len()],
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        for (bound, bucket) in BOUNDS_MICROS.iter().zip(&self.buckets) {
            if micros <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in BOUNDS_MICROS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {}",
                *bound as f64 / 1e6,
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}\n{name}_count {count}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
}

/// How long each routing transaction took, lock to commit (the routing worker observes it).
pub static ROUTING_TRANSACTIONS: Histogram = Histogram::new();
/// SLA and follow-up timers fired by this instance.
pub static TIMERS_FIRED: AtomicU64 = AtomicU64::new(0);
/// Routing batches routed while the batch before them wrote, and of those, the ones routed
/// again because another connection committed meanwhile.
pub static ROUTED_AHEAD: AtomicU64 = AtomicU64::new(0);
pub static ROUTED_AGAIN: AtomicU64 = AtomicU64::new(0);

fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition, in memory counters first, then what the database says now.
pub async fn render(app: &AppState) -> String {
    let mut out = String::new();
    out.push_str(
        "# HELP leadroute_http_requests_total HTTP answers by route pattern and status.\n\
         # TYPE leadroute_http_requests_total counter\n",
    );
    for (route, statuses) in app
        .metrics
        .http
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
    {
        for (status, count) in statuses {
            let _ = writeln!(
                out,
                "leadroute_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
                label(route)
            );
        }
    }
    out.push_str(
        "# HELP leadroute_intake_leads_total Leads offered at intake, by source and outcome.\n\
         # TYPE leadroute_intake_leads_total counter\n",
    );
    for ((source, outcome), count) in app
        .metrics
        .intake
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "leadroute_intake_leads_total{{source=\"{}\",outcome=\"{outcome}\"}} {count}",
            label(source)
        );
    }
    ROUTING_TRANSACTIONS.render(
        "leadroute_routing_transaction_seconds",
        "Routing transactions, from taking the lock to commit.",
        &mut out,
    );
    let _ = writeln!(
        out,
        "# HELP leadroute_timers_fired_total SLA and follow-up timers this instance fired.\n\
         # TYPE leadroute_timers_fired_total counter\nleadroute_timers_fired_total {}",
        TIMERS_FIRED.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP leadroute_routing_batches_ahead_total Routing batches routed while the batch \
         before them wrote, by whether that routing stood or was done again.\n\
         # TYPE leadroute_routing_batches_ahead_total counter\n\
         leadroute_routing_batches_ahead_total{{outcome=\"stood\"}} {}\n\
         leadroute_routing_batches_ahead_total{{outcome=\"routed_again\"}} {}",
        ROUTED_AHEAD.load(Ordering::Relaxed),
        ROUTED_AGAIN.load(Ordering::Relaxed)
    );
    let (open, idle) = app.store.pool_state();
    let _ = writeln!(
        out,
        "# HELP leadroute_db_connections Database connections of this instance.\n\
         # TYPE leadroute_db_connections gauge\n\
         leadroute_db_connections{{state=\"open\"}} {open}\n\
         leadroute_db_connections{{state=\"idle\"}} {idle}"
    );
    let now = chrono::Utc::now().timestamp_micros();
    match app.store.workload(now).await {
        Ok(workload) => {
            for (name, help, value) in [
                (
                    "leadroute_hold_queue_leads",
                    "Leads waiting for someone eligible.",
                    workload.held,
                ),
                (
                    "leadroute_pool_leads",
                    "Leads waiting in pools (公海).",
                    workload.pooled,
                ),
                (
                    "leadroute_timers_due",
                    "Timers due now and not yet fired.",
                    workload.timers_due,
                ),
                (
                    "leadroute_outbox_pending",
                    "Notification deliveries waiting to be sent.",
                    workload.deliveries_pending,
                ),
            ] {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
                );
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: queue sizes unavailable"),
    }
    match app.store.dead_letters().await {
        Ok(dead) => {
            out.push_str(
                "# HELP leadroute_outbox_dead_letters Deliveries given up on, per channel.\n\
                 # TYPE leadroute_outbox_dead_letters gauge\n",
            );
            for (channel, count) in dead {
                let _ = writeln!(
                    out,
                    "leadroute_outbox_dead_letters{{channel=\"{}\"}} {count}",
                    label(&channel)
                );
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: dead letters unavailable"),
    }
    out
}
