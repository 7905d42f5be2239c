//! Outbound HTTP for plugins: the standard `wasi:http/outgoing-handler`,
//! linked for every plugin, sending only to the hosts its manifest grants.
//!
//! Owns the allowlist ([`HostPattern`], parsed from `[allow] http`), the
//! per-plugin policy ([`OutboundPolicy`]: allowlist, timeout, response size)
//! and the [`Outbound`] hooks that wasmtime-wasi-http calls for every request
//! a guest sends. Does not own the wasi:http types themselves (the crate
//! implements them) or counting (it records into [`OutboundCounter`]).
//!
//! Strategy: the decision is made on the request's URL authority before any
//! I/O. A denied request never resolves a name or opens a socket: the guest
//! gets the standard `HTTP-request-denied` error, the log a warning naming the
//! plugin and the host (never the path or query, which may carry tokens).
//! An allowed request is sent by wasmtime-wasi-http's own client with
//! timeouts no longer than the manifest's `http_timeout` and the time left
//! before the delivery's deadline, and its response body is cut off with
//! `HTTP-response-body-size` once it passes `http_response` bytes.
//!
//! What the allowlist does not do: it matches names, not addresses, so a name
//! the operator grants may resolve anywhere (that name's DNS is trusted).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::telemetry::OutboundCounter;

/// Default `[limits] http_timeout`: connect, first byte and between bytes,
/// each. Long enough for a slow API, short next to the default delivery
/// timeout of 5 s only when the operator raises that (the delivery deadline
/// bounds every outbound call anyway).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `[limits] http_response`: the largest response body a plugin may
/// read. Chat and API answers are a few KiB; 1 MiB leaves room without
/// letting a hostile server fill the plugin's memory.
pub const DEFAULT_HTTP_RESPONSE: u64 = 1024 * 1024;
/// The largest `[limits] http_response` a manifest may set: the body is read
/// into the plugin's memory whole.
pub const LIMIT_HTTP_RESPONSE: u64 = 64 * 1024 * 1024;

/// One entry of `[allow] http`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `api.example.com`: that host, any port.
    Host(String),
    /// `*.slack.com`: any subdomain of `slack.com` (not `slack.com` itself).
    Subdomains(String),
    /// `127.0.0.1:9000`: that host on that port only.
    HostPort(String, u16),
}

impl HostPattern {
    /// Parses one allowlist entry; the error says what to write instead.
    pub fn parse(text: &str) -> Result<Self, String> {
        let example = "write a host (\"api.example.com\"), a host and port (\"127.0.0.1:9000\") or subdomains (\"*.slack.com\")";
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(format!("\"{text}\" is empty; {example}"));
        }
        if trimmed.contains("://") || trimmed.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "\"{text}\" is not a host: no scheme, path or user; {example}"
            ));
        }
        let lower = trimmed.to_ascii_lowercase();
        if let Some(domain) = lower.strip_prefix("*.") {
            check_hostname(domain).map_err(|why| format!("\"{text}\": {why}; {example}"))?;
            if !domain.contains('.') {
                return Err(format!(
                    "\"{text}\" would allow every subdomain of a top-level domain; name a domain, e.g. \"*.slack.com\""
                ));
            }
            return Ok(Self::Subdomains(domain.to_owned()));
        }
        if lower.contains('*') {
            return Err(format!(
                "\"{text}\": `*` is only allowed as a whole first label (\"*.slack.com\"); {example}"
            ));
        }
        let authority: http::uri::Authority = lower
            .parse()
            .map_err(|_| format!("\"{text}\" is not a valid host; {example}"))?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .map_or_else(
                || check_hostname(host).map(|()| host.to_owned()),
                |ip| {
                    ip.parse::<std::net::Ipv6Addr>()
                        .map(|_| ip.to_owned())
                        .map_err(|_| format!("[{ip}] is not an IPv6 address"))
                },
            )
            .map_err(|why| format!("\"{text}\": {why}; {example}"))?;
        let has_port = authority.as_str().len() > authority.host().len();
        match (has_port, authority.port_u16()) {
            (false, _) => Ok(Self::Host(host)),
            (true, Some(port)) => Ok(Self::HostPort(host, port)),
            (true, None) => Err(format!("\"{text}\" has an invalid port; {example}")),
        }
    }

    /// Whether a request to `host` (lower-case, IPv6 without brackets) on
    /// `port` is allowed by this entry.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        match self {
            Self::Host(allowed) => host == allowed,
            Self::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            Self::HostPort(allowed, allowed_port) => host == allowed && port == *allowed_port,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bracket = |host: &str| {
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            }
        };
        match self {
            Self::Host(host) => write!(f, "{}", bracket(host)),
            Self::Subdomains(domain) => write!(f, "*.{domain}"),
            Self::HostPort(host, port) => write!(f, "{}:{port}", bracket(host)),
        }
    }
}

/// A DNS name or IPv4 address: labels of letters, digits and `-`.
fn check_hostname(host: &str) -> Result<(), String> {
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if valid {
        Ok(())
    } else {
        Err(format!("`{host}` is not a valid host name"))
    }
}

/// What one plugin may do over HTTP: the manifest's `[allow] http` and the
/// outbound limits under `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Hosts it may call; empty means none.
    pub allow: Vec<HostPattern>,
    /// Longest wait to connect, for the first response byte, and between
    /// response bytes (each).
    pub timeout: Duration,
    /// Largest response body it may read, in bytes.
    pub max_response: u64,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            timeout: DEFAULT_HTTP_TIMEOUT,
            max_response: DEFAULT_HTTP_RESPONSE,
        }
    }
}

impl OutboundPolicy {
    /// Whether `host:port` is granted.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.allow.iter().any(|pattern| pattern.allows(host, port))
    }
}

/// The wasi:http hooks of one call: decides each request against the
/// plugin's policy, and bounds it by the delivery's deadline.
pub(super) struct Outbound {
    plugin: std::sync::Arc<str>,
    policy: std::sync::Arc<OutboundPolicy>,
    deadline: Instant,
    counter: OutboundCounter,
}

impl Outbound {
    pub(super) fn new(
        plugin: std::sync::Arc<str>,
        policy: std::sync::Arc<OutboundPolicy>,
        deadline: Instant,
        counter: OutboundCounter,
    ) -> Self {
        Self {
            plugin,
            policy,
            deadline,
            counter,
        }
    }

    /// Bounds requests by a new delivery's deadline (a spare instance's
    /// state, made before its delivery arrived).
    pub(super) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// The request's timeouts: the guest's own where it set them, never
    /// longer than the manifest's, and never past the delivery's deadline.
    fn options(&self, guest: Option<RequestOptions>) -> RequestOptions {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let cap = self.policy.timeout.min(left);
        let bound = |asked: Option<Duration>| Some(asked.map_or(cap, |asked| asked.min(cap)));
        let guest = guest.unwrap_or_default();
        RequestOptions {
            connect_timeout: bound(guest.connect_timeout),
            first_byte_timeout: bound(guest.first_byte_timeout),
            between_bytes_timeout: bound(guest.between_bytes_timeout),
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let plugin = self.plugin.clone();
        let counter = self.counter.clone();
        if !self.policy.allows(&host, port) {
            // The authority only: the path and query may carry tokens.
            tracing::warn!(
                plugin = %plugin,
                host = %host,
                port,
                "outbound request denied: the host is not in the plugin's `[allow] http`"
            );
            counter.record(&plugin, "denied");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let options = self.options(options);
        let deadline = self.deadline;
        let max_response = self.policy.max_response;
        tracing::debug!(plugin = %plugin, host = %host, port, "outbound request");
        Box::new(async move {
            let sent = tokio::time::timeout_at(
                deadline.into(),
                wasmtime_wasi_http::default_send_request(request, Some(options)),
            )
            .await;
            let (response, io) = match sent {
                Err(_elapsed) => {
                    counter.record(&plugin, "timeout");
                    return Err(HttpError::ConnectionReadTimeout);
                }
                Ok(Err(err)) => {
                    let outcome = match err {
                        HttpError::ConnectionTimeout | HttpError::ConnectionReadTimeout => {
                            "timeout"
                        }
                        _ => "error",
                    };
                    tracing::info!(plugin = %plugin, host = %host, port, error = %err, "outbound request failed");
                    counter.record(&plugin, outcome);
                    return Err(err);
                }
                Ok(Ok(sent)) => sent,
            };
            counter.record(&plugin, "ok");
            let response = response.map(|body| {
                SizeLimited {
                    inner: body.boxed_unsync(),
                    left: max_response,
                    limit: max_response,
                }
                .boxed_unsync()
            });
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// A response body that fails with `HTTP-response-body-size` once more than
/// `limit` bytes have arrived.
struct SizeLimited {
    inner: WasiBody,
    left: u64,
    limit: u64,
}

impl Body for SizeLimited {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            let len = data.len() as u64;
            if len > self.left {
                self.left = 0;
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.limit)))));
            }
            self.left -= len;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(pattern: &str, host: &str, port: u16) -> bool {
        HostPattern::parse(pattern).unwrap().allows(host, port)
    }

    #[test]
    fn patterns_match_as_documented() {
        assert!(allows("api.example.com", "api.example.com", 443));
        assert!(allows("API.Example.com", "api.example.com", 8080));
        assert!(!allows("api.example.com", "evil.api.example.com", 443));
        assert!(!allows("api.example.com", "api.example.com.evil.net", 443));

        assert!(allows("*.slack.com", "hooks.slack.com", 443));
        assert!(allows("*.slack.com", "a.b.slack.com", 443));
        assert!(!allows("*.slack.com", "slack.com", 443));
        assert!(!allows("*.slack.com", "evilslack.com", 443));

        assert!(allows("127.0.0.1:9000", "127.0.0.1", 9000));
        assert!(!allows("127.0.0.1:9000", "127.0.0.1", 9001));
        assert!(allows("[::1]:9000", "::1", 9000));
        assert!(allows("[::1]", "::1", 80));
    }

    #[test]
    fn bad_patterns_say_what_to_write() {
        for bad in [
            "",
            "https://api.example.com",
            "api.example.com/path",
            "*",
            "*.com",
            "api.*.com",
            "*api.example.com",
            "user@host",
            "host:",
            "host:99999",
            "bad_-.com ",
            "[nope]",
        ] {
            let err = HostPattern::parse(bad).unwrap_err();
            assert!(
                err.contains("e.g.") || err.contains("write"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn timeouts_never_exceed_the_manifest_or_the_deadline() {
        let policy = std::sync::Arc::new(OutboundPolicy {
            timeout: Duration::from_secs(2),
            ..OutboundPolicy::default()
        });
        let outbound = Outbound::new(
            "p".into(),
            policy.clone(),
            Instant::now() + Duration::from_secs(60),
            OutboundCounter::default(),
        );
        let options = outbound.options(Some(RequestOptions {
            connect_timeout: Some(Duration::from_millis(100)),
            first_byte_timeout: Some(Duration::from_secs(30)),
            between_bytes_timeout: None,
        }));
        assert_eq!(options.connect_timeout, Some(Duration::from_millis(100)));
        assert_eq!(options.first_byte_timeout, Some(Duration::from_secs(2)));
        assert_eq!(options.between_bytes_timeout, Some(Duration::from_secs(2)));

        let soon = Outbound::new(
            "p".into(),
            policy,
            Instant::now() + Duration::from_millis(300),
            OutboundCounter::default(),
        );
        let options = soon.options(None);
        assert!(options.connect_timeout.unwrap() <= Duration::from_millis(300));
    }
}
