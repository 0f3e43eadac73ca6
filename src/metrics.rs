//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! What changes as the process works (streams opened, log lines written,
//! scans ended, webhook deliveries) is counted as it happens, in [`Metrics`].
//! What the database or the Calendly client already knows (scans by status,
//! customers, calls, 429s, retries) is read when Prometheus scrapes, so it
//! never drifts from its source.

use std::fmt::Write as _;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::calendly::CallStats;
use crate::store::ScanStatus;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScanLabel {
    scan_id: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

type DurationFamily = Family<StatusLabel, Histogram, fn() -> Histogram>;

/// The process's counters; cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    open_streams: Gauge,
    scan_duration: DurationFamily,
    log_lines: Counter,
    progress_writes: Histogram,
    webhook_deliveries: Family<ResultLabel, Counter>,
}

/// What is read at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Subscribers of each scan running in this process.
    pub subscribers: Vec<(String, usize)>,
    /// Scans in the database, by status.
    pub scans_by_status: Vec<(String, i64)>,
    pub customers: i64,
    /// The Calendly client's counts since the process started.
    pub calendly: Option<CallStats>,
}

/// A guard that counts one open event stream while it lives.
#[derive(Debug)]
pub struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        fn durations() -> Histogram {
            // 1 s to about 4.5 h.
            Histogram::new(exponential_buckets(1.0, 2.0, 15))
        }
        let webhook_deliveries = Family::<ResultLabel, Counter>::default();
        for result in ["accepted", "refused"] {
            // Both series exist from the start, at zero.
            webhook_deliveries.get_or_create_owned(&ResultLabel { result });
        }
        Self {
            inner: Arc::new(Inner {
                open_streams: Gauge::default(),
                scan_duration: Family::new_with_constructor(durations),
                log_lines: Counter::default(),
                // 0.1 ms to about 3 s.
                progress_writes: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
                webhook_deliveries,
            }),
        }
    }

    /// Counts an event stream as open until the guard is dropped.
    pub fn stream_opened(&self) -> OpenStream {
        self.inner.open_streams.inc();
        OpenStream(self.inner.open_streams.clone())
    }

    /// A scan run by this process ended with `status` after `seconds`.
    pub fn scan_ended(&self, status: &str, seconds: f64) {
        self.inner
            .scan_duration
            .get_or_create(&StatusLabel {
                status: status.to_owned(),
            })
            .observe(seconds);
    }

    /// `lines` log lines were written to the database.
    pub fn log_lines_written(&self, lines: u64) {
        self.inner.log_lines.inc_by(lines);
    }

    /// One write of scan progress (every scan's new figures and lines,
    /// in one transaction) took `seconds`; it is published after.
    pub fn progress_written(&self, seconds: f64) {
        self.inner.progress_writes.observe(seconds);
    }

    /// A Calendly webhook delivery was accepted (`true`) or refused.
    pub fn webhook_delivery(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "refused" };
        self.inner
            .webhook_deliveries
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Every metric, with `snapshot`'s values, as OpenMetrics text.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let inner = &self.inner;
        let mut registry = Registry::with_prefix("calscan");
        registry.register(
            "open_streams",
            "Event streams open on this instance",
            inner.open_streams.clone(),
        );
        let subscribers = Family::<ScanLabel, Gauge>::default();
        for (scan_id, n) in &snapshot.subscribers {
            subscribers
                .get_or_create(&ScanLabel {
                    scan_id: scan_id.clone(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        registry.register(
            "scan_subscribers",
            "Live subscribers of each scan running on this instance",
            subscribers,
        );
        let scans = Family::<StatusLabel, Gauge>::default();
        for status in ScanStatus::ALL {
            scans.get_or_create_owned(&StatusLabel {
                status: status.as_str().to_owned(),
            });
        }
        for (status, n) in &snapshot.scans_by_status {
            scans
                .get_or_create(&StatusLabel {
                    status: status.clone(),
                })
                .set(*n);
        }
        registry.register("scans", "Scans in the database, by status", scans);
        registry.register(
            "scan_duration_seconds",
            "Duration of the scans this instance ran, by how they ended",
            inner.scan_duration.clone(),
        );
        let customers = Gauge::<i64>::default();
        customers.set(snapshot.customers);
        registry.register("customers", "Customers in the database", customers);
        registry.register(
            "log_lines_written",
            "Scan log lines this instance wrote",
            inner.log_lines.clone(),
        );
        registry.register(
            "progress_write_seconds",
            "Time to write one batch of scan progress to the database, before it is published",
            inner.progress_writes.clone(),
        );
        let calendly = snapshot.calendly.unwrap_or_default();
        for (name, help, value) in [
            (
                "calendly_requests",
                "Requests sent to Calendly, retries included",
                calendly.requests,
            ),
            (
                "calendly_rate_limited",
                "429 answers from Calendly",
                calendly.rate_limited,
            ),
            (
                "calendly_retries",
                "Calendly requests repeated after a transient failure",
                calendly.retries,
            ),
        ] {
            registry.register(name, help, ConstCounter::new(value));
        }
        registry.register(
            "webhook_deliveries",
            "Calendly webhook deliveries, accepted or refused",
            inner.webhook_deliveries.clone(),
        );
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            // Writing to a String cannot fail; say so in the text if it ever does.
            let _ = writeln!(text, "# encoding failed: {error}");
        }
        text
    }
}
