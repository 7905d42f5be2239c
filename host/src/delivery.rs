//! One delivery to a plugin, the same whichever path brought it.
//!
//! Owns building the [`Delivery`] a plugin receives ([`build`], the only
//! place one is made) and "call the plugin, record the outcome"
//! ([`Deliverer::call`]): the runtime call, the plugin's delivery totals and
//! the call-duration metric. The sync path ([`crate::server`]) and the queue
//! workers ([`crate::queue`]) both go through it, so a delivery looks and is
//! counted the same in both modes.
//!
//! Does not own what a failure means (that is [`CallError::classify`]) or
//! what happens next: the server answers the sender, the workers record the
//! attempt in the inbox.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument as _;

use crate::config::Mode;
use crate::inbox::{Millis, StoredRequest};
use crate::registry::Plugin;
use crate::runtime::{CallError, Delivery, Header, Response, Runtime};
use crate::telemetry::Metrics;

/// The delivery a plugin receives: attempt `attempt` of `request`, received
/// at `received_at` on `route` under delivery id `id`.
pub fn build(
    id: String,
    route: String,
    request: StoredRequest,
    received_at: Millis,
    attempt: u32,
) -> Delivery {
    let StoredRequest {
        method,
        path,
        query,
        mut headers,
        body,
        verified_by,
    } = request;
    crate::trace::strip(&mut headers);
    Delivery {
        id,
        route,
        method,
        path,
        query,
        headers: headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        body,
        received_at: u64::try_from(received_at).unwrap_or_default(),
        attempt,
        verified_by,
    }
}

/// Every header as a (lower-case name, value) pair, in order: how the host
/// keeps and hands on headers. Values that are not UTF-8 have the invalid
/// bytes replaced (as the WIT contract says).
pub fn header_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Runs deliveries through plugins and records how each went.
pub struct Deliverer {
    runtime: Arc<Runtime>,
    metrics: Arc<Metrics>,
}

/// A call's result and how long it took.
#[derive(Debug)]
pub struct Called {
    /// The plugin's response, or why there is none.
    pub result: Result<Response, CallError>,
    /// Time spent in the call, waiting for an instance slot included.
    pub elapsed: Duration,
}

impl Deliverer {
    /// Calls plugins on `runtime`, counting into `metrics`.
    pub fn new(runtime: Arc<Runtime>, metrics: Arc<Metrics>) -> Self {
        Self { runtime, metrics }
    }

    /// Runs `delivery` through `plugin` (its newest version, with that
    /// version's grants and limits) and records the outcome in the plugin's
    /// totals and the call-duration metric.
    pub async fn call(&self, plugin: &Plugin, delivery: &Delivery) -> Called {
        let started = Instant::now();
        let span = crate::trace::span(|| tracing::info_span!("plugin.call", plugin = %plugin.name));
        let result = self
            .runtime
            .call(&plugin.prepared, &plugin.grants, delivery, plugin.limits())
            .instrument(span)
            .await;
        let elapsed = started.elapsed();
        self.metrics.call(&plugin.name, elapsed);
        plugin.stats.record(CallError::outcome_of(&result));
        Called { result, elapsed }
    }

    /// The metrics it records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// Records what a trace shows of `plugin` on `span` (a delivery or an
/// attempt): its version, scheme and mode, and the attempt number.
pub fn record_plugin(span: &tracing::Span, plugin: &Plugin, attempt: u32) {
    span.record("version", hex::encode(&plugin.digest[..6]).as_str());
    span.record(
        "scheme",
        plugin
            .manifest
            .verify
            .as_ref()
            .map_or("none", |scheme| scheme.name()),
    );
    span.record(
        "mode",
        match plugin.manifest.mode {
            Mode::Queue => "queue",
            Mode::Sync => "sync",
        },
    );
    span.record("attempt", attempt);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_request_becomes_the_delivery_as_it_was_received() {
        let request = StoredRequest {
            method: "POST".into(),
            path: "/hooks/echo".into(),
            query: "a=1".into(),
            headers: vec![("x-one".into(), "1".into()), ("x-one".into(), "2".into())],
            body: b"{}".to_vec(),
            verified_by: Some("github".into()),
        };
        let delivery = build(
            "id-1".into(),
            "/hooks/echo".into(),
            request,
            1_700_000_000_123,
            3,
        );
        assert_eq!(delivery.id, "id-1");
        assert_eq!(delivery.route, "/hooks/echo");
        assert_eq!(
            (delivery.method.as_str(), delivery.query.as_str()),
            ("POST", "a=1")
        );
        let headers: Vec<_> = delivery
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            headers,
            [("x-one", "1"), ("x-one", "2")],
            "order and repeats kept"
        );
        assert_eq!(delivery.body, b"{}");
        assert_eq!(delivery.received_at, 1_700_000_000_123);
        assert_eq!(delivery.attempt, 3);
        assert_eq!(delivery.verified_by.as_deref(), Some("github"));
    }

    #[test]
    fn header_values_that_are_not_utf8_are_replaced_not_dropped() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-bin", http::HeaderValue::from_bytes(b"a\xffb").unwrap());
        assert_eq!(
            header_pairs(&headers),
            [("x-bin".to_owned(), "a\u{fffd}b".to_owned())]
        );
    }
}
