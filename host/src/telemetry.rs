//! What the host counts and how it is exposed: per-plugin delivery totals
//! (lock-free, read by the admin API) and the Prometheus metrics served at
//! `GET /metrics`.
//!
//! Owns [`PluginStats`] and [`Metrics`] (which holds the in-memory hour
//! of [`crate::series`] too). Does not own where things happen:
//! the server, the queue workers and the registry record into these, and the
//! admin API serves them.
//!
//! Strategy: what already has a running total elsewhere (delivery outcomes
//! in [`PluginStats`], plugin loads in the registry) is read at scrape time by
//! a collector, not counted twice; the inbox backlog is queried at scrape
//! time; only what has no other home (requests by route and status,
//! verification failures, rate limiting, call durations, retries, dead
//! letters, queue refusals) is counted here as it happens. Per-route queue
//! depths are the inbox's in-memory counts, copied in at scrape time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;

use crate::series::Series;

/// How one delivery to a plugin ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The plugin answered (sync) or handled the event (queue).
    Ok,
    /// The plugin asked to be retried.
    Retry,
    /// The plugin rejected the delivery.
    Reject,
    /// The call trapped (a bug in the plugin) or returned a response the
    /// host cannot send.
    Trap,
    /// The call ran past its timeout.
    Timeout,
    /// The call ran past its memory limit.
    Memory,
    /// No instance slot freed up in time.
    Capacity,
    /// Refused before any call: verification failed.
    Refused,
}

impl Outcome {
    /// Every outcome, in the order they are shown.
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Retry,
        Outcome::Reject,
        Outcome::Trap,
        Outcome::Timeout,
        Outcome::Memory,
        Outcome::Capacity,
        Outcome::Refused,
    ];

    /// The outcome's name in the admin API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retry => "retry",
            Outcome::Reject => "reject",
            Outcome::Trap => "trap",
            Outcome::Timeout => "timeout",
            Outcome::Memory => "memory",
            Outcome::Capacity => "capacity",
            Outcome::Refused => "refused",
        }
    }
}

/// Per-plugin totals since the plugin's name was first loaded. Shared by
/// every version of the plugin (a reload carries them over), so a hot
/// reload does not reset what an operator is watching.
#[derive(Debug, Default)]
pub struct PluginStats {
    outcomes: [AtomicU64; Outcome::ALL.len()],
}

impl PluginStats {
    /// Counts one delivery that ended with `outcome`.
    pub fn record(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Deliveries that ended with `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome as usize].load(Ordering::Relaxed)
    }
}

type Labels = Vec<(&'static str, String)>;

/// Outbound HTTP requests of plugins by plugin and outcome (`ok`, `denied`,
/// `timeout`, `error`), recorded by the runtime where each is decided and
/// served with the other metrics. Cheap to clone: clones count together.
#[derive(Debug, Clone, Default)]
pub struct OutboundCounter(Family<Labels, Counter>);

impl OutboundCounter {
    /// One outbound request of `plugin` ended with `outcome`.
    pub fn record(&self, plugin: &str, outcome: &'static str) {
        self.0
            .get_or_create(&vec![
                ("plugin", plugin.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }
}

/// The body budget's meters: bytes of request bodies buffered now, and
/// requests refused because the budget was spent. Recorded by the server's
/// budget; cheap to clone: clones count together.
#[derive(Debug, Clone, Default)]
pub struct BodyMeters {
    buffered: Gauge,
    refused: Counter,
}

impl BodyMeters {
    /// Buffered body bytes changed by `delta`.
    pub fn buffered(&self, delta: i64) {
        self.buffered.inc_by(delta);
    }

    /// A request was refused 503: the budget had no room for its body.
    pub fn refused(&self) {
        self.refused.inc();
    }
}

/// Plugin call durations, in seconds: 1 ms to ~16 s, doubling. Plugins are
/// expected in the low milliseconds; the top buckets show timeouts coming.
fn call_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

/// The host's Prometheus metrics. Cheap to record into from any thread.
pub struct Metrics {
    registry: prometheus_client::registry::Registry,
    requests: Family<Labels, Counter>,
    verification_failures: Family<Labels, Counter>,
    rate_limited: Family<Labels, Counter>,
    handshakes: Family<Labels, Counter>,
    key_fetches: Family<Labels, Counter>,
    call_duration: Family<Labels, Histogram, fn() -> Histogram>,
    retries: Counter,
    dead_letters: Counter,
    queue_depth: Gauge,
    route_depth: Family<Labels, Gauge>,
    queue_refused: Family<Labels, Counter>,
    oldest_pending_age: Gauge<f64, AtomicU64>,
    store_up: Gauge,
    body: BodyMeters,
    series: Series,
    alert_firing: Family<Labels, Gauge>,
    alert_posts: Family<Labels, Counter>,
    /// `requests` alone, so alert rules read per-route answers at their
    /// own pace without a second count per request.
    answers: prometheus_client::registry::Registry,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics for a host whose plugin totals are read from `plugins` at
    /// scrape time and whose runtime counts outbound requests into
    /// `outbound`.
    pub fn new(plugins: Arc<dyn PluginTotals>, outbound: OutboundCounter) -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "hookhost_requests",
            "Webhook requests answered, by route (`unmatched` when no plugin serves the path) and status",
            requests.clone(),
        );
        let verification_failures = Family::<Labels, Counter>::default();
        registry.register(
            "hookhost_verification_failures",
            "Requests refused because their signature did not verify, by route and reason",
            verification_failures.clone(),
        );
        let rate_limited = Family::<Labels, Counter>::default();
        registry.register(
            "hookhost_rate_limited",
            "Requests refused 429 by a route's rate limit, by route",
            rate_limited.clone(),
        );
        let handshakes = Family::<Labels, Counter>::default();
        registry.register(
            "hookhost_handshakes",
            "Handshakes the host answered itself (no plugin call, no event), by route and kind",
            handshakes.clone(),
        );
        let key_fetches = Family::<Labels, Counter>::default();
        registry.register(
            "hookhost_key_fetches",
            "HTTPS fetches of signing keys and SNS subscription confirmations, by route, what and outcome (ok, error)",
            key_fetches.clone(),
        );
        let call_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(call_buckets);
        registry.register(
            "hookhost_plugin_call_duration_seconds",
            "Time spent in one plugin call (sync or queued), by plugin",
            call_duration.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "hookhost_retries",
            "Queued attempts that failed and were scheduled again",
            retries.clone(),
        );
        let dead_letters = Counter::default();
        registry.register(
            "hookhost_dead_letters",
            "Queued events that became dead (rejected, or out of attempts)",
            dead_letters.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "hookhost_queue_depth",
            "Queued events pending (waiting or being attempted)",
            queue_depth.clone(),
        );
        let route_depth = Family::<Labels, Gauge>::default();
        registry.register(
            "hookhost_queue_route_depth",
            "Queued events pending per route, as counted for `[queue] max_pending` (appends in flight included)",
            route_depth.clone(),
        );
        let queue_refused = Family::<Labels, Counter>::default();
        registry.register(
            "hookhost_queue_refused",
            "Queue-mode deliveries refused 429 and not stored, by route and reason (max_pending)",
            queue_refused.clone(),
        );
        let store_up = Gauge::default();
        registry.register(
            "hookhost_store_up",
            "1 when the store (SQLite or PostgreSQL) answered this scrape's read, else 0: queue routes then answer 503",
            store_up.clone(),
        );
        let oldest_pending_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "hookhost_queue_oldest_pending_age_seconds",
            "Age of the oldest pending queued event; 0 when none is pending",
            oldest_pending_age.clone(),
        );
        registry.register(
            "hookhost_outbound_requests",
            "Outbound HTTP requests of plugins, by plugin and outcome (ok, denied, timeout, error)",
            outbound.0,
        );
        let body = BodyMeters::default();
        registry.register(
            "hookhost_buffered_body_bytes",
            "Request-body bytes buffered now, across all requests (bounded by --max-buffered)",
            body.buffered.clone(),
        );
        registry.register(
            "hookhost_body_budget_refused",
            "Requests answered 503 because --max-buffered had no room for their body",
            body.refused.clone(),
        );
        let alert_firing = Family::<Labels, Gauge>::default();
        registry.register(
            "hookhost_alert_firing",
            "Whether each `[[alert]]` rule of hookhost.toml is firing (1) or not (0), by rule",
            alert_firing.clone(),
        );
        let alert_posts = Family::<Labels, Counter>::default();
        registry.register(
            "hookhost_alert_posts",
            "Alert posts (firing, repeated, resolved) by rule and outcome (ok: a 2xx answer; error: none after every retry)",
            alert_posts.clone(),
        );
        let mut answers = prometheus_client::registry::Registry::default();
        answers.register("answers", "", requests.clone());
        registry.register_collector(Box::new(Totals { plugins }));
        Self {
            registry,
            requests,
            verification_failures,
            rate_limited,
            handshakes,
            key_fetches,
            call_duration,
            retries,
            dead_letters,
            queue_depth,
            route_depth,
            queue_refused,
            oldest_pending_age,
            store_up,
            body,
            series: Series::default(),
            alert_firing,
            alert_posts,
            answers,
        }
    }

    /// The last hour per route, for the dashboard (`GET /stats`).
    pub fn series(&self) -> &Series {
        &self.series
    }

    /// Alert rule `rule` is now firing (or not).
    pub fn alert_state(&self, rule: &str, firing: bool) {
        self.alert_firing
            .get_or_create(&vec![("rule", rule.to_owned())])
            .set(i64::from(firing));
    }

    /// A post of alert rule `rule` ended with `outcome` (`ok`, `error`).
    pub fn alert_post(&self, rule: &str, outcome: &'static str) {
        self.alert_posts
            .get_or_create(&vec![
                ("rule", rule.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// Requests answered on `route` since start: all of them, and those
    /// answered 5xx. Reads the counters through their text form, which is
    /// fine at an alert rule's pace (every few seconds) and costs requests
    /// nothing.
    pub fn route_answers(&self, route: &str) -> RouteAnswers {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.answers)
            .expect("writing to a String cannot fail");
        let wanted = format!("route=\"{}\"", escape_label(route));
        let mut answers = RouteAnswers::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("answers_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            if !labels.split(',').any(|label| label == wanted) {
                continue;
            }
            let count = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            answers.total += count;
            if labels.contains("status=\"5") {
                answers.errors += count;
            }
        }
        answers
    }

    /// The body budget's meters, for the server's budget to record into.
    pub fn body_meters(&self) -> BodyMeters {
        self.body.clone()
    }

    /// One webhook request answered with `status`.
    pub fn request(&self, route: Option<&str>, status: u16) {
        let route = route.unwrap_or("unmatched").to_owned();
        self.requests
            .get_or_create(&vec![("route", route), ("status", status.to_string())])
            .inc();
    }

    /// A request refused by verification for `reason`.
    pub fn verification_failed(&self, route: &str, reason: &str) {
        self.verification_failures
            .get_or_create(&vec![
                ("route", route.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// A request refused by a rate limit on `route`.
    pub fn rate_limited(&self, route: &str) {
        self.rate_limited
            .get_or_create(&vec![("route", route.to_owned())])
            .inc();
    }

    /// A handshake of `kind` answered by the host on `route`.
    pub fn handshake(&self, route: &str, kind: &str) {
        self.handshakes
            .get_or_create(&vec![
                ("route", route.to_owned()),
                ("kind", kind.to_owned()),
            ])
            .inc();
    }

    /// A fetch the host made for `route` (`what`: `key` or `confirm`)
    /// ended with `outcome` (`ok` or `error`).
    pub fn key_fetch(&self, route: &str, what: &'static str, outcome: &'static str) {
        self.key_fetches
            .get_or_create(&vec![
                ("route", route.to_owned()),
                ("what", what.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// One plugin call took `elapsed`.
    pub fn call(&self, plugin: &str, elapsed: Duration) {
        self.call_duration
            .get_or_create(&vec![("plugin", plugin.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    /// A queued attempt failed and will be retried.
    pub fn retry(&self) {
        self.retries.inc();
    }

    /// A queued event became dead.
    pub fn dead_letter(&self) {
        self.dead_letters.inc();
    }

    /// A queue-mode delivery on `route` was refused 429 for `reason`
    /// (`max_pending`) and not stored.
    pub fn queue_refused(&self, route: &str, reason: &'static str) {
        self.queue_refused
            .get_or_create(&vec![
                ("route", route.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// The metrics in the Prometheus text format (OpenMetrics flavour), with
    /// the queue gauges set from `queue` (read by the caller, which may
    /// block on the store).
    pub fn encode(&self, queue: QueueGauges<'_>) -> String {
        self.store_up.set(i64::from(queue.backlog.is_some()));
        if let Some((pending, oldest)) = queue.backlog {
            self.queue_depth
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            self.oldest_pending_age.set(oldest.as_secs_f64());
        }
        for (route, pending) in queue.routes {
            self.route_depth
                .get_or_create(&vec![("route", route.clone())])
                .set(i64::try_from(*pending).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// A route's answers so far (see [`Metrics::route_answers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteAnswers {
    /// Every request answered.
    pub total: u64,
    /// Those answered with a 5xx status.
    pub errors: u64,
}

/// `text` as the Prometheus text format writes a label value.
fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The queue's state at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueGauges<'a> {
    /// Queued events pending (waiting or being attempted), from the store,
    /// and the age of the oldest of them (zero when none is pending);
    /// `None` when the store could not be read for this scrape (the gauges
    /// keep their last values and `hookhost_store_up` is 0).
    pub backlog: Option<(u64, Duration)>,
    /// Pending events per route, as the inbox counts them in memory.
    pub routes: &'a [(String, u64)],
}

/// Where the plugin totals that [`Metrics`] reads at scrape time live (the
/// registry): a trait, so that metrics need nothing above them.
pub trait PluginTotals: Send + Sync {
    /// Plugin versions that went live, and that failed to load, so far.
    fn loads(&self) -> LoadTotals;
    /// Every serving plugin's name and its delivery totals.
    fn deliveries(&self) -> Vec<(String, Arc<PluginStats>)>;
}

/// Plugin loads since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadTotals {
    /// Versions that went live.
    pub loaded: u64,
    /// Distinct load failures.
    pub failed: u64,
    /// Plugins whose newest files failed to load, now.
    pub failing: u64,
}

/// Totals kept elsewhere, read at scrape time.
struct Totals {
    plugins: Arc<dyn PluginTotals>,
}

impl std::fmt::Debug for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totals").finish_non_exhaustive()
    }
}

impl Collector for Totals {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let counts = self.plugins.loads();
        for (name, help, value) in [
            (
                "hookhost_plugin_loads",
                "Plugin versions that went live (start-up, hot reload, SIGHUP, POST /plugins/reload)",
                counts.loaded,
            ),
            (
                "hookhost_plugin_load_failures",
                "Plugin versions that failed to load (each distinct failure once)",
                counts.failed,
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        let metric = encoder.encode_descriptor(
            "hookhost_plugins_failing",
            "Plugins whose newest files failed to load (as `failed` in GET /readyz), now",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(counts.failing as i64).encode(metric)?;
        let mut family = encoder.encode_descriptor(
            "hookhost_deliveries",
            "Deliveries to serving plugins by outcome (as in GET /plugins), since the plugin was first loaded",
            None,
            MetricType::Counter,
        )?;
        for (name, stats) in self.plugins.deliveries() {
            for outcome in Outcome::ALL {
                let labels: Labels = vec![
                    ("plugin", name.clone()),
                    ("outcome", outcome.as_str().to_owned()),
                ];
                let metric = family.encode_family(&labels)?;
                ConstCounter::new(stats.count(outcome)).encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_answers_count_one_route_and_its_5xx() {
        struct NoPlugins;
        impl PluginTotals for NoPlugins {
            fn loads(&self) -> LoadTotals {
                LoadTotals::default()
            }
            fn deliveries(&self) -> Vec<(String, Arc<PluginStats>)> {
                Vec::new()
            }
        }
        let metrics = Metrics::new(Arc::new(NoPlugins), OutboundCounter::default());
        for status in [200, 200, 503, 500, 401] {
            metrics.request(Some("/hooks/a"), status);
        }
        metrics.request(Some("/hooks/ab"), 500);
        metrics.request(None, 404);
        assert_eq!(
            metrics.route_answers("/hooks/a"),
            RouteAnswers {
                total: 5,
                errors: 2
            }
        );
        assert_eq!(
            metrics.route_answers("/hooks/none"),
            RouteAnswers::default()
        );
    }

    #[test]
    fn outcomes_are_counted_apart() {
        let stats = PluginStats::default();
        stats.record(Outcome::Ok);
        stats.record(Outcome::Ok);
        stats.record(Outcome::Capacity);
        assert_eq!(stats.count(Outcome::Ok), 2);
        assert_eq!(stats.count(Outcome::Capacity), 1);
        assert_eq!(stats.count(Outcome::Refused), 0);
        for (index, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, index, "{outcome:?}");
        }
    }
}
