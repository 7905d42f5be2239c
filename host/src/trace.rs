//! Traces: OpenTelemetry export over OTLP and the W3C trace context that
//! travels with a delivery.
//!
//! Owns turning `otlp_endpoint` (or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) and `OTEL_EXPORTER_OTLP_PROTOCOL` into an
//! exporting tracer provider ([`Exporter`], which `main` puts behind the
//! `tracing` subscriber and flushes at exit), the switch that says whether
//! traces are on ([`enabled`]), and the `traceparent` header: read from a
//! sender ([`join`]), written on a plugin's outbound requests
//! ([`inject`]), and kept with a queued event ([`ACCEPTED_HEADER`]) so its
//! attempts, maybe hours later, link back to the acceptance ([`link`]).
//!
//! Does not own the spans: they are the `tracing` spans of the server,
//! delivery, queue and runtime, exported by the tracing-opentelemetry
//! bridge. `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` are read by the
//! OpenTelemetry SDK itself.
//!
//! Off by default. When off, [`enabled`] is one relaxed atomic load and the
//! callers make no extra span, parse no header and record no extra field,
//! so a host without traces does exactly the work it did before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The stored header that carries a queued event's acceptance span (as a
/// `traceparent` value). Added by the host when it accepts the event with
/// traces on, never handed to the plugin (see [`strip`]).
pub const ACCEPTED_HEADER: &str = "x-hookhost-accepted-traceparent";

/// The standard variable for the collector's address, read when
/// `otlp_endpoint` is not set.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard variable choosing the OTLP transport.
pub const PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

/// How long the export at exit may take before the host stops anyway.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported (an [`Exporter`] was started).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// `make()` when traces are on, else a disabled span that costs nothing:
/// for the child spans that only exist for traces.
#[inline]
pub fn span(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if enabled() {
        make()
    } else {
        tracing::Span::none()
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf` (the default): POST to `ENDPOINT/v1/traces`.
    HttpProtobuf,
    /// `grpc`: the collector's OTLP gRPC service at `ENDPOINT`.
    Grpc,
}

/// Where and how traces are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// The collector's base URL, e.g. `http://127.0.0.1:4318`.
    pub endpoint: String,
    pub protocol: Protocol,
}

impl ExportConfig {
    /// The export settings for `endpoint` (`None`: traces off) with the
    /// protocol `protocol` names (the value of `OTEL_EXPORTER_OTLP_PROTOCOL`;
    /// `None` is `http/protobuf`).
    pub fn new(endpoint: Option<&str>, protocol: Option<&str>) -> anyhow::Result<Option<Self>> {
        let Some(endpoint) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        let uri: http::Uri = endpoint.parse().map_err(|_| {
            anyhow::anyhow!(
                "otlp_endpoint `{endpoint}` is not a URL; write the collector's base URL, e.g. http://127.0.0.1:4318"
            )
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            anyhow::bail!(
                "otlp_endpoint `{endpoint}` needs http:// or https:// and a host, e.g. http://127.0.0.1:4318"
            );
        }
        let protocol = match protocol.map(str::trim) {
            None | Some("" | "http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => anyhow::bail!(
                "{PROTOCOL_ENV}=`{other}` is not supported; write `http/protobuf` (the default) or `grpc`"
            ),
        };
        Ok(Some(Self {
            endpoint: endpoint.to_owned(),
            protocol,
        }))
    }
}

/// The running export: a tracer provider with a batch processor (its own
/// thread), and for gRPC the small runtime tonic's channel runs on.
pub struct Exporter {
    provider: SdkTracerProvider,
    /// tonic needs a tokio runtime for its connection; the batch thread
    /// exports through it. Kept here so it outlives the host's own runtime
    /// until the final flush.
    _grpc_runtime: Option<tokio::runtime::Runtime>,
}

impl Exporter {
    /// Starts exporting as `config` says and turns [`enabled`] on.
    pub fn start(config: &ExportConfig) -> anyhow::Result<Self> {
        let (exporter, grpc_runtime) = match config.protocol {
            Protocol::HttpProtobuf => {
                let endpoint = format!("{}/v1/traces", config.endpoint.trim_end_matches('/'));
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(endpoint)
                    .with_timeout(EXPORT_TIMEOUT)
                    .build()
                    .context("cannot set up the OTLP HTTP exporter")?;
                (exporter, None)
            }
            Protocol::Grpc => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("otlp-grpc")
                    .enable_all()
                    .build()
                    .context("cannot start the OTLP gRPC runtime")?;
                let exporter = {
                    let _entered = runtime.enter();
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(config.endpoint.clone())
                        .with_timeout(EXPORT_TIMEOUT)
                        .build()
                        .context("cannot set up the OTLP gRPC exporter")?
                };
                (exporter, Some(runtime))
            }
        };
        // The SDK's defaults read OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
        // (resource) and OTEL_TRACES_SAMPLER(_ARG) (sampler); the service
        // name falls back to the binary's.
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(
                std::env::var("OTEL_SERVICE_NAME")
                    .ok()
                    .filter(|name| !name.is_empty())
                    .unwrap_or_else(|| "hookhost".to_owned()),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        ENABLED.store(true, Ordering::Relaxed);
        Ok(Self {
            provider,
            _grpc_runtime: grpc_runtime,
        })
    }

    /// The tracer the `tracing` bridge exports through.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("hookhost")
    }

    /// Exports what is left and stops (at exit, after the host drained).
    pub fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(err) = self.provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            eprintln!("warning: traces not all exported at exit: {err}");
        }
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` (not yet entered) part of the sender's trace when
/// `headers` carry a valid `traceparent`; otherwise it starts a trace.
pub fn join(span: &tracing::Span, headers: &http::HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Adds `span`'s `traceparent` (and `tracestate`) to `headers`, replacing
/// any the guest set: the callee joins the delivery's trace.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if !enabled() {
        return;
    }
    let context = span.context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeadersMut(headers));
    }
}

/// `span`'s context as a `traceparent` value, for storing with an event.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let mut headers = http::HeaderMap::new();
    inject(span, &mut headers);
    headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Adds a link from `span` to the span `traceparent` names (a queued
/// event's acceptance).
pub fn link(span: &tracing::Span, traceparent: &str) {
    if !enabled() {
        return;
    }
    if let Some(context) = parse_traceparent(traceparent) {
        span.add_link(context);
    }
}

fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", http::HeaderValue::from_str(value).ok()?);
    let context = TraceContextPropagator::new().extract(&Headers(&headers));
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// Removes the host's own [`ACCEPTED_HEADER`] from stored headers: plugins
/// get what the sender sent.
pub fn strip(headers: &mut Vec<(String, String)>) {
    headers.retain(|(name, _)| name != ACCEPTED_HEADER);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_and_protocol_are_checked_with_the_fix() {
        assert_eq!(ExportConfig::new(None, Some("grpc")).unwrap(), None);
        assert_eq!(ExportConfig::new(Some(" "), None).unwrap(), None);
        let config = ExportConfig::new(Some("http://127.0.0.1:4318"), None)
            .unwrap()
            .unwrap();
        assert_eq!(config.protocol, Protocol::HttpProtobuf);
        let grpc = ExportConfig::new(Some("http://127.0.0.1:4317"), Some("grpc"))
            .unwrap()
            .unwrap();
        assert_eq!(grpc.protocol, Protocol::Grpc);
        let err = ExportConfig::new(Some("127.0.0.1:4318"), None).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
        let err = ExportConfig::new(Some("http://c:4318"), Some("http/json")).unwrap_err();
        assert!(
            err.to_string()
                .contains("OTEL_EXPORTER_OTLP_PROTOCOL=`http/json`"),
            "{err}"
        );
    }

    #[test]
    fn a_traceparent_parses_into_its_span_context() {
        let context =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(parse_traceparent("garbage").is_none());
    }

    #[test]
    fn the_accepted_header_never_reaches_a_plugin() {
        let mut headers = vec![
            ("content-type".to_owned(), "x".to_owned()),
            (ACCEPTED_HEADER.to_owned(), "00-1-2-01".to_owned()),
        ];
        strip(&mut headers);
        assert_eq!(headers, [("content-type".to_owned(), "x".to_owned())]);
    }
}
