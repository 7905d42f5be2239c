//! Outbound HTTP for plugins: the standard `wasi:http/outgoing-handler`,
//! linked for every plugin, sending only to the hosts its manifest grants.
//!
//! Owns the allowlist ([`HostPattern`], parsed from `[allow] http`), the
//! per-plugin policy ([`OutboundPolicy`]: allowlist, timeout, response size)
//! and the [`Outbound`] hooks that wasmtime-wasi-http calls for every request
//! a guest sends. Does not own the wasi:http types themselves (the crate
//! implements them) or counting (it records into [`OutboundCounter`]).
//!
//! Strategy: the decision is made in two steps. First on the request's URL
//! authority, before any I/O: a denied request never resolves a name or opens
//! a socket; the guest gets the standard `HTTP-request-denied` error, the log
//! a warning naming the plugin and the host (never the path or query, which
//! may carry tokens). Then on the addresses: the host's own connector
//! ([`send`]) resolves the name, refuses (`destination-IP-prohibited`) if any
//! address is loopback, private, link-local, unique-local, CGNAT,
//! documentation, multicast or otherwise not public ([`is_public`]), unless
//! the grant is that IP literal or says `private = true`, and then connects
//! to exactly the addresses it checked, so a second lookup (DNS rebinding)
//! cannot send the request elsewhere. TLS is rustls with the webpki roots.
//! Every step is bounded by timeouts no longer than the manifest's
//! `http_timeout` and the time left before the delivery's deadline; a
//! response body is cut off with `HTTP-response-body-size` once it passes
//! `http_response` bytes; at most [`MAX_IN_FLIGHT`] requests of one instance
//! are open at once (the rest fail with `connection-limit-reached`), since
//! each holds a socket and buffers in host memory, outside the plugin's
//! memory cap.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
/// Most outbound requests one instance may have open at once (sent, response
/// not yet dropped). Each holds a socket, a connection task and buffers in
/// host memory; a plugin fanning out to a handful of APIs needs a few.
pub const MAX_IN_FLIGHT: usize = 16;

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

impl HostPattern {
    /// The IP address this entry names literally (`127.0.0.1`,
    /// `[::1]:9000`), if it is one.
    fn ip_literal(&self) -> Option<IpAddr> {
        match self {
            Self::Host(host) | Self::HostPort(host, _) => host.parse().ok(),
            Self::Subdomains(_) => None,
        }
    }
}

/// One entry of `[allow] http`: where the plugin may send requests, and
/// whether the names it grants may resolve to non-public addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    /// The host (and port) granted.
    pub pattern: HostPattern,
    /// `private = true`: the granted names may resolve to loopback, private
    /// and other non-public addresses. Without it only an IP literal grant
    /// reaches such an address.
    pub private: bool,
}

impl HttpGrant {
    /// A grant of `pattern` to public addresses only (the string form).
    pub fn public(pattern: HostPattern) -> Self {
        Self {
            pattern,
            private: false,
        }
    }
}

impl fmt::Display for HttpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.pattern)?;
        if self.private {
            write!(f, " (private addresses too)")?;
        }
        Ok(())
    }
}

/// Which addresses a granted request may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only (see [`is_public`]).
    Public,
    /// Any address: the grant names this IP literally or says `private = true`.
    Any,
}

/// Whether `ip` is a public unicast address a plugin may reach through a
/// granted *name*: not unspecified, loopback, private (RFC 1918), CGNAT,
/// link-local (with the cloud metadata address 169.254.169.254), unique-
/// or site-local, multicast, broadcast, documentation, benchmarking or
/// reserved, and not one of those in IPv4-mapped, -compatible, NAT64 or
/// 6to4 form.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let denied = a == 0 // "this network", 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !denied
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if segments[..6] == [0; 6] {
        // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d.
        return ip != Ipv6Addr::UNSPECIFIED
            && ip != Ipv6Addr::LOCALHOST
            && is_public_v4(embedded(segments[6], segments[7]));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64.
        return is_public_v4(embedded(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        // 6to4.
        return is_public_v4(embedded(segments[1], segments[2]));
    }
    let denied = (segments[0] & 0xfe00) == 0xfc00 // unique-local fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] & 0xff00) == 0xff00 // multicast
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x2001 && segments[1] == 0) // Teredo
        || segments[..4] == [0x100, 0, 0, 0]; // discard-only
    !denied
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
    pub allow: Vec<HttpGrant>,
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
    /// Whether `host:port` is granted (to some address).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.reach(host, port).is_some()
    }

    /// Where a request to `host` (lower-case, IPv6 without brackets) on
    /// `port` may connect: `None` if no grant matches it, [`Reach::Any`] if
    /// a matching grant says `private = true` or names `host` as that very
    /// IP literal, else [`Reach::Public`].
    pub fn reach(&self, host: &str, port: u16) -> Option<Reach> {
        let literal: Option<IpAddr> = host.parse().ok();
        let mut reach = None;
        for grant in self.allow.iter().filter(|g| g.pattern.allows(host, port)) {
            let names_ip = literal.is_some() && grant.pattern.ip_literal() == literal;
            if grant.private || names_ip {
                return Some(Reach::Any);
            }
            reach = Some(Reach::Public);
        }
        reach
    }
}

/// The wasi:http hooks of one call: decides each request against the
/// plugin's policy, and bounds it by the delivery's deadline.
pub(super) struct Outbound {
    plugin: std::sync::Arc<str>,
    policy: std::sync::Arc<OutboundPolicy>,
    deadline: Instant,
    counter: OutboundCounter,
    /// [`MAX_IN_FLIGHT`] permits: one is held by each request from send
    /// until its response (body) is dropped.
    in_flight: Arc<Semaphore>,
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
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
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
        mut request: http::Request<WasiBody>,
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
        let Some(reach) = self.policy.reach(&host, port) else {
            // The authority only: the path and query may carry tokens.
            tracing::warn!(
                plugin = %plugin,
                host = %host,
                port,
                "outbound request denied: the host is not in the plugin's `[allow] http`"
            );
            counter.record(&plugin, "denied");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        };
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(
                plugin = %plugin,
                host = %host,
                port,
                "outbound request refused: the instance already has {MAX_IN_FLIGHT} requests open"
            );
            counter.record(&plugin, "error");
            return Box::new(async { Err(HttpError::ConnectionLimitReached) });
        };
        let options = self.options(options);
        let deadline = self.deadline;
        let max_response = self.policy.max_response;
        tracing::debug!(plugin = %plugin, host = %host, port, "outbound request");
        // With traces on: a client span, a child of the plugin call, whose
        // context the callee gets as `traceparent`.
        let span = crate::trace::span(|| {
            tracing::info_span!(
                "outbound",
                otel.kind = "client",
                http.request.method = %request.method(),
                server.address = %host,
                server.port = port,
                http.response.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            )
        });
        crate::trace::inject(&span, request.headers_mut());
        let traced = span.clone();
        let send_traced = async move {
            let target = Target {
                host: &host,
                port,
                https,
                reach,
            };
            let sent =
                tokio::time::timeout_at(deadline.into(), send(request, &target, options)).await;
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
                        HttpError::DestinationIpProhibited => "denied",
                        _ => "error",
                    };
                    tracing::info!(plugin = %plugin, host = %host, port, error = %err, "outbound request failed");
                    counter.record(&plugin, outcome);
                    return Err(err);
                }
                Ok(Ok(sent)) => sent,
            };
            counter.record(&plugin, "ok");
            traced.record("http.response.status_code", response.status().as_u16());
            let response = response.map(|body| {
                SizeLimited {
                    inner: body,
                    left: max_response,
                    limit: max_response,
                    _permit: permit,
                }
                .boxed_unsync()
            });
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        };
        Box::new(tracing::Instrument::instrument(send_traced, span))
    }
}

/// The host's own POST (alert rules, [`crate::alert`]) through the same
/// connector as plugins' requests: resolved and checked addresses only, so
/// `url` must be public unless `loopback` says the operator's config named a
/// loopback address literally. Every step is bounded by `timeout`. Returns
/// the answer's status (the body is not read).
pub async fn post(
    url: &http::Uri,
    loopback: bool,
    headers: http::HeaderMap,
    body: Bytes,
    timeout: Duration,
) -> Result<u16, HttpError> {
    let https = url.scheme() == Some(&http::uri::Scheme::HTTPS);
    let host = url
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let target = Target {
        host: &host,
        port,
        https,
        reach: if loopback { Reach::Any } else { Reach::Public },
    };
    let authority = url
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let mut request = http::Request::post(url.clone())
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(
            http_body_util::Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    request.headers_mut().extend(headers);
    let options = RequestOptions {
        connect_timeout: Some(timeout),
        first_byte_timeout: Some(timeout),
        between_bytes_timeout: Some(timeout),
    };
    let (response, _rest) = tokio::time::timeout(timeout * 2, send(request, &target, options))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    Ok(response.status().as_u16())
}

/// Where one granted request goes.
struct Target<'a> {
    /// Lower-case name or IP literal (IPv6 without brackets).
    host: &'a str,
    port: u16,
    https: bool,
    reach: Reach,
}

/// The addresses `target` may be connected to: the IP literal itself, or
/// every address its name resolves to, each checked against its reach.
/// One address that is not allowed refuses the whole name: a name that
/// resolves to a public and a private address is one an attacker controls.
async fn resolve(target: &Target<'_>, timeout: Duration) -> Result<Vec<SocketAddr>, HttpError> {
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => {
            tokio::time::timeout(timeout, tokio::net::lookup_host((target.host, target.port)))
                .await
                .map_err(|_| HttpError::DnsTimeout)?
                .map_err(|_| HttpError::DnsError {
                    rcode: None,
                    info_code: None,
                })?
                .collect()
        }
    };
    if addrs.is_empty() {
        return Err(HttpError::DestinationNotFound);
    }
    if target.reach == Reach::Public
        && let Some(refused) = addrs.iter().find(|addr| !is_public(addr.ip()))
    {
        tracing::warn!(
            host = %target.host,
            address = %refused.ip(),
            "outbound request refused: the name resolves to a non-public address; \
             grant the IP itself or add `private = true` to its `[allow] http` entry"
        );
        return Err(HttpError::DestinationIpProhibited);
    }
    Ok(addrs)
}

/// Connects to the first of `addrs` that answers (the addresses that were
/// checked, never a fresh lookup).
async fn connect(addrs: &[SocketAddr]) -> Result<tokio::net::TcpStream, HttpError> {
    let mut last = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) => last = Some(err),
        }
    }
    Err(match last {
        Some(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
            HttpError::ConnectionRefused
        }
        Some(err) => HttpError::Connect(err),
        None => HttpError::DestinationNotFound,
    })
}

/// The client TLS configuration: rustls (ring) with the webpki roots, made
/// once.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// Sends `request` to `target` over HTTP/1.1: resolve and check
/// ([`resolve`]), connect to a checked address, TLS for `https`, then the
/// request. `options` holds every timeout (all set, see
/// [`Outbound::options`]). Returns the response and the future that drives
/// the rest of the connection (the body), as wasmtime-wasi-http expects.
async fn send(
    mut request: http::Request<WasiBody>,
    target: &Target<'_>,
    options: RequestOptions,
) -> Result<
    (
        http::Response<WasiBody>,
        impl Future<Output = Result<(), HttpError>> + Send + 'static,
    ),
    HttpError,
> {
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_HTTP_TIMEOUT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_HTTP_TIMEOUT);
    let between_bytes = options
        .between_bytes_timeout
        .unwrap_or(DEFAULT_HTTP_TIMEOUT)
        .max(Duration::from_millis(1));

    let connecting = async {
        let addrs = resolve(target, connect_timeout).await?;
        let tcp = connect(&addrs).await?;
        let stream: Box<dyn Stream> = if target.https {
            let name = match target.host.parse::<IpAddr>() {
                Ok(ip) => rustls::pki_types::ServerName::from(ip),
                Err(_) => rustls::pki_types::ServerName::try_from(target.host.to_owned())
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?,
            };
            let tls = tokio_rustls::TlsConnector::from(tls_config())
                .connect(name, tcp)
                .await
                .map_err(HttpError::Tls)?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        hyper::client::conn::http1::Builder::new()
            .handshake::<_, WasiBody>(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(HttpError::from)
    };
    let (mut sender, conn) = tokio::time::timeout(connect_timeout, connecting)
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;

    // The request line carries the path only (the authority is in `Host`,
    // which wasmtime-wasi-http sets).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    let send = async move {
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(HttpError::from)?;
        let mut timer = tokio::time::interval(between_bytes);
        timer.reset();
        Ok::<_, HttpError>(response.map(|incoming| Incoming { incoming, timer }.boxed_unsync()))
    };
    // Drive the connection while waiting for the response head; what is left
    // of it (the body) is handed back to be driven while the guest reads.
    let mut send = std::pin::pin!(send);
    let mut conn = Some(conn);
    let response = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(driving) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = std::task::ready!(Pin::new(driving).poll(cx));
            conn = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(err) => Poll::Ready(Err(HttpError::from(err))),
            }
        }
    })
    .await?;
    Ok((response, async move {
        match conn {
            Some(conn) => conn.await.map_err(|err| {
                if err.is_timeout() {
                    HttpError::HttpResponseTimeout
                } else {
                    HttpError::from(err)
                }
            }),
            None => Ok(()),
        }
    }))
}

/// A response body from hyper that fails with `connection-read-timeout`
/// when no frame arrives within the between-bytes timeout.
struct Incoming {
    incoming: hyper::body::Incoming,
    timer: tokio::time::Interval,
}

impl Body for Incoming {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.timer.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(if err.is_timeout() {
                HttpError::HttpResponseTimeout
            } else {
                HttpError::from(err)
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                std::task::ready!(self.timer.poll_tick(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

/// A response body that fails with `HTTP-response-body-size` once more than
/// `limit` bytes have arrived. Holds the request's in-flight permit: the
/// request counts as open until its body is dropped.
struct SizeLimited {
    inner: WasiBody,
    left: u64,
    limit: u64,
    _permit: OwnedSemaphorePermit,
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
    fn only_public_addresses_are_public() {
        for denied in [
            "0.0.0.0",
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            assert!(
                !is_public(denied.parse().unwrap()),
                "{denied} counted as public"
            );
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "203.0.114.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "2002:0808:0808::",
        ] {
            assert!(
                is_public(public.parse().unwrap()),
                "{public} counted as private"
            );
        }
    }

    #[test]
    fn a_name_reaches_private_addresses_only_when_granted_so() {
        let policy = |entries: &[(&str, bool)]| OutboundPolicy {
            allow: entries
                .iter()
                .map(|(text, private)| HttpGrant {
                    pattern: HostPattern::parse(text).unwrap(),
                    private: *private,
                })
                .collect(),
            ..OutboundPolicy::default()
        };
        let names = policy(&[("localhost", false), ("*.0.1", false)]);
        assert_eq!(names.reach("localhost", 80), Some(Reach::Public));
        // A subdomain pattern that happens to match an IP is not an IP grant.
        assert_eq!(names.reach("127.0.0.1", 80), Some(Reach::Public));
        assert_eq!(names.reach("example.com", 80), None);
        let ips = policy(&[("127.0.0.1:9000", false), ("[::1]", false)]);
        assert_eq!(ips.reach("127.0.0.1", 9000), Some(Reach::Any));
        assert_eq!(ips.reach("::1", 80), Some(Reach::Any));
        let private = policy(&[("localhost", true)]);
        assert_eq!(private.reach("localhost", 80), Some(Reach::Any));
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
