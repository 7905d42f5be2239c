//! The admin API: a small JSON HTTP service on its own listener (`--admin
//! ADDR`, off by default) for operators to see and replay queued events.
//!
//! Owns the admin routes, their authentication, and how events are shown
//! (timestamps in RFC 3339, secret-bearing headers redacted). Does not own
//! the events (the inbox) or the accept loop (it reuses
//! [`crate::server::serve`]).
//!
//! Access: without `--admin-token` the API is served only on a loopback
//! address and asks for nothing (whoever can reach it is on the machine).
//! With a token, every request must carry `Authorization: Bearer <token>`,
//! compared in constant time, and any address may be used.
//!
//! Health endpoints follow the same rule: a probe of a token-protected API
//! sends the token too (Kubernetes `httpGet.httpHeaders`). One rule for every
//! endpoint is easier to reason about than exemptions by path, and the
//! unauthenticated case is exactly the loopback-only one.
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | `200 {"status":"ok"}` while the process serves |
//! | `GET /readyz` | `200 {"status":"ready","plugins":N,"failed":[names]}` when the initial plugin load finished and the inbox store takes a write; else `503 {"status":"not ready","reason":…}` |
//! | `GET /plugins` | every plugin: serving ones with route, mode, scheme, hash, delivery counts; failed ones with their error |
//! | `POST /plugins/reload` | rescans the plugin folder (as SIGHUP does) and reports what changed |
//! | `GET /metrics` | Prometheus text format (see [`crate::telemetry`]) |
//! | `GET /events/{id}[?route=R]` | the newest event with that delivery id, with its request |
//! | `GET /events?status=&route=&limit=&before=` | events newest first, without requests |
//! | `POST /events/{id}/replay[?route=R]` | a done or dead event back to pending, due now |

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::config::Mode;
use crate::inbox::{Event, EventKey, Filter, Inbox, Millis, Replayed, Status};
use crate::registry::{Changes, LoadError, Registry};
use crate::runtime::Runtime;
use crate::telemetry::{Metrics, Outcome};

/// Events listed when the request sets no `limit`.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// The largest `limit` a list request may ask for.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// The bearer token the admin API requires. `Debug` never shows it.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl Token {
    /// Reads the token from `env:VAR` or `file:PATH` (trailing newlines
    /// dropped). A token written inline is refused: command lines are
    /// visible to every local user.
    pub fn resolve(reference: &str) -> Result<Self, String> {
        let token = if let Some(var) = reference.strip_prefix("env:") {
            std::env::var(var)
                .map_err(|_| format!("environment variable {var} is not set or not UTF-8"))?
                .into_bytes()
        } else if let Some(path) = reference.strip_prefix("file:") {
            let mut bytes = std::fs::read(path)
                .map_err(|err| format!("cannot read token file {path}: {err}"))?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            bytes
        } else {
            return Err(
                "write `env:VAR` or `file:PATH`; a token on the command line is visible to every local user"
                    .into(),
            );
        };
        if token.is_empty() {
            return Err(format!("the token in {reference} is empty"));
        }
        Ok(Self(token))
    }

    /// A token with these bytes (tests, embedding).
    pub fn new(token: impl Into<Vec<u8>>) -> Self {
        Self(token.into())
    }

    /// The `Authorization` header value that carries this token, marked
    /// sensitive so HTTP libraries never log it.
    pub fn bearer(&self) -> http::HeaderValue {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(&self.0);
        let mut value = http::HeaderValue::from_bytes(&value)
            .unwrap_or_else(|_| http::HeaderValue::from_static("Bearer invalid-token-bytes"));
        value.set_sensitive(true);
        value
    }

    /// Constant-time check of an `Authorization` header value.
    fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(|value| value.strip_prefix(b"Bearer ")) else {
            return false;
        };
        // Hashing first makes the comparison equal-length, so its time says
        // nothing about the token's length either.
        Sha256::digest(given).ct_eq(&Sha256::digest(&self.0)).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Refuses to serve the API unauthenticated anywhere but on loopback.
pub fn check_bind(addr: SocketAddr, token: Option<&Token>) -> anyhow::Result<()> {
    if token.is_none() && !addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to serve the admin API on {addr} without a token: anyone who can reach it \
             could read and replay events. Bind it to 127.0.0.1 or set --admin-token env:VAR"
        );
    }
    Ok(())
}

/// What the admin API looks at and acts on.
pub struct Parts {
    /// The queued events.
    pub inbox: Arc<Inbox>,
    /// The live plugins and their load errors.
    pub registry: Arc<Registry>,
    /// Compiles plugins on `POST /plugins/reload`.
    pub runtime: Arc<Runtime>,
    /// The folder `POST /plugins/reload` rescans.
    pub plugins_dir: PathBuf,
    /// What `GET /metrics` shows.
    pub metrics: Arc<Metrics>,
}

/// The admin API's request handler.
pub struct Admin {
    inbox: Arc<Inbox>,
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    plugins_dir: PathBuf,
    metrics: Arc<Metrics>,
    token: Option<Token>,
}

impl Admin {
    /// An admin API over `parts`, requiring `token` when given.
    pub fn new(parts: Parts, token: Option<Token>) -> Self {
        let Parts {
            inbox,
            registry,
            runtime,
            plugins_dir,
            metrics,
        } = parts;
        Self {
            inbox,
            registry,
            runtime,
            plugins_dir,
            metrics,
            token,
        }
    }

    async fn route(&self, request: &Request<Incoming>) -> Result<Answer, Refusal> {
        if let Some(token) = &self.token {
            let authorization = request
                .headers()
                .get(header::AUTHORIZATION)
                .map(|value| value.as_bytes());
            if !token.admits(authorization) {
                return Err(Refusal::Unauthorized);
            }
        }
        let query = Query::parse(request.uri().query().unwrap_or_default())?;
        let segments: Vec<&str> = request
            .uri()
            .path()
            .trim_end_matches('/')
            .split('/')
            .skip(1)
            .collect();
        let answer = match (request.method(), segments.as_slice()) {
            (&Method::GET, ["metrics"]) => return Ok(Answer::Metrics(self.metrics().await?)),
            (&Method::GET, ["healthz"]) => Ok(json!({ "status": "ok" })),
            (&Method::GET, ["readyz"]) => self.ready().await,
            (&Method::GET, ["plugins"]) => Ok(self.plugins()),
            (&Method::POST, ["plugins", "reload"]) => self.reload().await,
            (&Method::GET, ["events"]) => self.list(&query).await,
            (&Method::GET, ["events", id]) => self.get(key(id, &query)?).await,
            (&Method::POST, ["events", id, "replay"]) => self.replay(key(id, &query)?).await,
            (_, ["events"] | ["events", _] | ["healthz"] | ["readyz"]) => {
                Err(Refusal::Method("GET"))
            }
            (_, ["plugins"] | ["metrics"]) => Err(Refusal::Method("GET")),
            (_, ["events", _, "replay"] | ["plugins", "reload"]) => Err(Refusal::Method("POST")),
            _ => Err(Refusal::NotFound("no such admin endpoint".into())),
        };
        answer.map(Answer::Json)
    }

    /// The Prometheus exposition, with the queue gauges read now.
    async fn metrics(&self) -> Result<String, Refusal> {
        let backlog = self
            .inbox
            .backlog()
            .await
            .map_err(|err| Refusal::Store(err.to_string()))?;
        Ok(self.metrics.encode(backlog, crate::inbox::now_millis()))
    }

    /// Ready means the initial plugin load finished and the store takes a
    /// write. The first holds by construction: [`crate::run`] serves the admin
    /// listener only after that load (until then connections wait in the
    /// backlog). The second is checked with a real, committed write, because
    /// a full disk or a read-only mount shows only when writing.
    ///
    /// A plugin that fails to load does not make the host unready: every
    /// replica shares the plugin folder, so one bad file would take them all
    /// out of rotation and stop every other route too. The answer names the
    /// failed plugins instead (`failed`), as `GET /plugins` details them.
    async fn ready(&self) -> Result<Value, Refusal> {
        match self.inbox.probe().await {
            Ok(()) => {
                let serving = self.registry.plugins().len();
                let failed: Vec<String> = self.registry.errors().into_keys().collect();
                Ok(json!({ "status": "ready", "plugins": serving, "failed": failed }))
            }
            Err(err) => {
                tracing::warn!(error = %err, "not ready: the inbox store refused a write");
                Err(Refusal::NotReady("the inbox store is not writable".into()))
            }
        }
    }

    /// Serving plugins by name, each with its newest load error if its
    /// newest files are not what serves; then plugins that failed and serve
    /// nothing.
    fn plugins(&self) -> Value {
        let mut errors = self.registry.errors();
        let mut plugins: Vec<Value> = self
            .registry
            .plugins()
            .iter()
            .map(|plugin| {
                let error = errors.remove(&plugin.name);
                let deliveries: serde_json::Map<String, Value> = Outcome::ALL
                    .iter()
                    .map(|o| (o.as_str().to_owned(), plugin.stats.count(*o).into()))
                    .collect();
                json!({
                    "name": plugin.name,
                    "serving": true,
                    "route": plugin.manifest.route,
                    "mode": match plugin.manifest.mode {
                        Mode::Sync => "sync",
                        Mode::Queue => "queue",
                    },
                    "scheme": plugin.manifest.verify.as_ref().map(|s| s.name()),
                    "sha256": hex::encode(plugin.digest),
                    "loaded_at": humantime::format_rfc3339_millis(plugin.loaded_at).to_string(),
                    "max_deliveries": plugin.manifest.max_deliveries,
                    "last_error": error.as_ref().map(error_json),
                    "deliveries": deliveries,
                })
            })
            .collect();
        plugins.extend(errors.iter().map(|(name, error)| {
            json!({
                "name": name,
                "serving": false,
                "last_error": error_json(error),
            })
        }));
        json!({ "plugins": plugins })
    }

    /// Rescans the folder the way SIGHUP does: every manifest re-validated
    /// (secrets re-read), unchanged components not recompiled.
    async fn reload(&self) -> Result<Value, Refusal> {
        tracing::info!(folder = %self.plugins_dir.display(), "reload requested by an operator");
        let report = self
            .registry
            .reload(&self.runtime, &self.plugins_dir, Changes::Refresh)
            .await
            .map_err(|err| Refusal::Reload(format!("{err:#}")))?;
        Ok(json!({
            "loaded": report.loaded,
            "removed": report.removed,
            "failed": report
                .failed
                .iter()
                .map(|(name, error)| {
                    let mut value = error_json(error);
                    value["name"] = name.as_str().into();
                    value
                })
                .collect::<Vec<_>>(),
        }))
    }

    async fn list(&self, query: &Query) -> Result<Value, Refusal> {
        let status = match query.get("status") {
            Some(text) => Some(Status::parse(text).ok_or_else(|| {
                Refusal::BadRequest(format!(
                    "status \"{text}\" is not one of pending, done, dead"
                ))
            })?),
            None => None,
        };
        let limit = match query.get("limit") {
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => n,
                _ => {
                    return Err(Refusal::BadRequest(format!(
                        "limit must be a number from 1 to {MAX_LIST_LIMIT}"
                    )));
                }
            },
            None => DEFAULT_LIST_LIMIT,
        };
        let before = match query.get("before") {
            Some(text) => Some(text.parse::<i64>().map_err(|_| {
                Refusal::BadRequest("before must be an event's seq (a number)".into())
            })?),
            None => None,
        };
        let events = self
            .inbox
            .list(Filter {
                status,
                route: query.get("route").map(str::to_owned),
                before,
                limit,
            })
            .await
            .map_err(|err| Refusal::Store(err.to_string()))?;
        // The cursor for the next page, when this one is full.
        let next_before = (events.len() == limit as usize)
            .then(|| events.last().map(|e| e.seq))
            .flatten();
        Ok(json!({
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
            "next_before": next_before,
        }))
    }

    async fn get(&self, key: EventKey) -> Result<Value, Refusal> {
        match self.inbox.get(key.clone()).await {
            Ok(Some(event)) => Ok(event_json(&event)),
            Ok(None) => Err(Refusal::NotFound(format!("no event with id {}", key.id))),
            Err(err) => Err(Refusal::Store(err.to_string())),
        }
    }

    async fn replay(&self, key: EventKey) -> Result<Value, Refusal> {
        match self.inbox.replay(key.clone()).await {
            Ok(Replayed::Replayed { seq }) => {
                tracing::info!(id = %key.id, seq, "event replayed by an operator");
                self.get(key).await
            }
            Ok(Replayed::Pending) => Err(Refusal::Conflict(format!(
                "event {} is still pending: it will be attempted anyway",
                key.id
            ))),
            Ok(Replayed::NotFound) => {
                Err(Refusal::NotFound(format!("no event with id {}", key.id)))
            }
            Err(err) => Err(Refusal::Store(err.to_string())),
        }
    }
}

impl crate::server::Handler for Admin {
    async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> http::Response<Full<Bytes>> {
        let (status, body) = match self.route(&request).await {
            Ok(Answer::Json(body)) => (StatusCode::OK, body),
            Ok(Answer::Metrics(text)) => {
                let mut response = http::Response::new(Full::new(Bytes::from(text)));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                return response;
            }
            Err(refusal) => {
                if let Refusal::Store(err) | Refusal::Reload(err) = &refusal {
                    tracing::error!(error = %err, "admin request failed");
                }
                if let Refusal::Unauthorized = &refusal {
                    tracing::warn!(%peer, path = %request.uri().path(), "admin request without a valid token");
                }
                let body = match &refusal {
                    Refusal::NotReady(reason) => json!({ "status": "not ready", "reason": reason }),
                    _ => json!({ "error": refusal.message() }),
                };
                (refusal.status(), body)
            }
        };
        let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                let path = request.uri().path().trim_end_matches('/');
                let allow = if path.ends_with("/replay") || path == "/plugins/reload" {
                    "POST"
                } else {
                    "GET"
                };
                headers.insert(header::ALLOW, header::HeaderValue::from_static(allow));
            }
            _ => {}
        }
        response
    }
}

/// A successful answer.
enum Answer {
    Json(Value),
    /// `GET /metrics`: text, not JSON.
    Metrics(String),
}

/// Why an admin request got no answer body.
enum Refusal {
    Unauthorized,
    NotFound(String),
    Method(&'static str),
    BadRequest(String),
    Conflict(String),
    Store(String),
    NotReady(String),
    /// The plugin folder could not be listed.
    Reload(String),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
            Refusal::NotFound(_) => StatusCode::NOT_FOUND,
            Refusal::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Conflict(_) => StatusCode::CONFLICT,
            Refusal::Store(_) | Refusal::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Reload(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::Unauthorized => "missing or wrong bearer token".into(),
            Refusal::Method(allowed) => format!("use {allowed}"),
            Refusal::Store(_) => "the inbox store failed; see the host log".into(),
            Refusal::Reload(_) => "the plugin folder could not be read; see the host log".into(),
            Refusal::NotFound(message)
            | Refusal::NotReady(message)
            | Refusal::BadRequest(message)
            | Refusal::Conflict(message) => message.clone(),
        }
    }
}

fn key(id: &str, query: &Query) -> Result<EventKey, Refusal> {
    Ok(EventKey {
        id: percent_decode(id, false).ok_or_else(|| {
            Refusal::BadRequest("the event id is not valid percent-encoding".into())
        })?,
        route: query.get("route").map(str::to_owned),
    })
}

/// Decoded query parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(text: &str) -> Result<Self, Refusal> {
        let mut pairs = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s| {
                percent_decode(s, true).ok_or_else(|| {
                    Refusal::BadRequest("the query is not valid percent-encoding".into())
                })
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Self(pairs))
    }

    /// The last non-empty value of `name` (`?status=` means no filter).
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes `%XX` escapes (and `+` as a space in a query); `None` if malformed
/// or not UTF-8.
fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn error_json(error: &LoadError) -> Value {
    json!({
        "file": error.file.display().to_string(),
        "reason": error.reason,
        "at": humantime::format_rfc3339_millis(error.at).to_string(),
    })
}

fn time(ms: Millis) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or_default());
    humantime::format_rfc3339_millis(at).to_string()
}

/// Headers whose values let someone impersonate the sender or a user:
/// credentials, cookies, signatures and tokens.
fn is_secret_header(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "authorization",
        "cookie",
        "signature",
        "token",
        "secret",
        "hmac",
        "api-key",
        "apikey",
        "password",
    ];
    let name = name.to_ascii_lowercase();
    WORDS.iter().any(|word| name.contains(word))
}

/// An event as JSON. The request (only from a single-event lookup) shows
/// secret-bearing header values as `[redacted]`, and the body as text when it
/// is UTF-8, else as base64.
fn event_json(event: &Event) -> Value {
    let mut value = json!({
        "id": event.id,
        "seq": event.seq,
        "route": event.route,
        "status": event.status.as_str(),
        "attempts": event.attempts,
        "replays": event.replays,
        "received_at": time(event.received_at),
        "next_attempt_at": event.next_attempt_at.map(time),
        "claimed_until": event.claimed_until.map(time),
        "done_at": event.done_at.map(time),
        "dead_at": event.dead_at.map(time),
        "last_error": event.last_error,
    });
    if let Some(request) = &event.request {
        let headers: Vec<[&str; 2]> = request
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if is_secret_header(name) {
                    "[redacted]"
                } else {
                    value.as_str()
                };
                [name.as_str(), value]
            })
            .collect();
        let (body, body_base64) = match std::str::from_utf8(&request.body) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&request.body)),
            ),
        };
        value["request"] = json!({
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "verified_by": request.verified_by,
            "headers": headers,
            "body": body,
            "body_base64": body_base64,
            "body_len": request.body.len(),
        });
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_needs_the_bearer_scheme_and_the_exact_bytes() {
        let token = Token::new("s3cret");
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(!token.admits(Some(b"Bearer s3cre")));
        assert!(!token.admits(Some(b"Bearer s3cret ")));
        assert!(!token.admits(Some(b"bearer s3cret")));
        assert!(!token.admits(Some(b"s3cret")));
        assert!(!token.admits(None));
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    }

    #[test]
    fn token_is_read_from_env_or_file_never_inline() {
        let err = Token::resolve("s3cret").unwrap_err();
        assert!(err.contains("env:VAR"), "{err}");
        let err = Token::resolve("env:HOOKHOST_TEST_SURELY_UNSET_TOKEN").unwrap_err();
        assert!(err.contains("HOOKHOST_TEST_SURELY_UNSET_TOKEN"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let token = Token::resolve(&format!("file:{}", path.display())).unwrap();
        assert!(token.admits(Some(b"Bearer from-file")));
        std::fs::write(&path, "\n").unwrap();
        assert!(Token::resolve(&format!("file:{}", path.display())).is_err());
    }

    #[test]
    fn only_loopback_without_a_token() {
        let token = Token::new("t");
        assert!(check_bind("127.0.0.1:9000".parse().unwrap(), None).is_ok());
        assert!(check_bind("[::1]:9000".parse().unwrap(), None).is_ok());
        let err = check_bind("0.0.0.0:9000".parse().unwrap(), None).unwrap_err();
        assert!(err.to_string().contains("--admin-token"), "{err}");
        assert!(check_bind("0.0.0.0:9000".parse().unwrap(), Some(&token)).is_ok());
    }

    #[test]
    fn query_and_ids_are_percent_decoded() {
        let query = Query::parse("route=%2Fhooks%2Fa+b&status=&status=dead&limit=5")
            .ok()
            .unwrap();
        assert_eq!(query.get("route"), Some("/hooks/a b"));
        assert_eq!(query.get("status"), Some("dead"));
        assert_eq!(query.get("limit"), Some("5"));
        assert_eq!(query.get("before"), None);
        assert_eq!(
            percent_decode("evt%5F1+2", false).as_deref(),
            Some("evt_1+2")
        );
        assert_eq!(percent_decode("bad%2", false), None);
        assert_eq!(percent_decode("bad%zz", false), None);
        assert_eq!(percent_decode("%ff", false), None);
    }

    #[test]
    fn secret_headers_are_recognised() {
        for name in [
            "authorization",
            "Proxy-Authorization",
            "cookie",
            "x-hub-signature-256",
            "stripe-signature",
            "webhook-signature",
            "x-gitlab-token",
            "x-shopify-hmac-sha256",
            "x-api-key",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in ["content-type", "x-github-event", "webhook-id", "user-agent"] {
            assert!(!is_secret_header(name), "{name}");
        }
    }
}
