//! The admin API: a small JSON HTTP service on its own listener (`--admin
//! ADDR`, off by default) for operators to see and replay queued events.
//!
//! Owns the admin routes ([`routes`]), their authentication ([`auth`]), and
//! how plugins and events are shown ([`views`]: timestamps in RFC 3339,
//! secret-bearing headers redacted). Does not own the events (the inbox) or
//! the accept loop (it reuses [`crate::server::serve`]).
//!
//! Access: without `--admin-token` the API is served only on a loopback
//! address and asks for no credential (whoever can reach it is on the
//! machine), but answers only requests whose `Host` is loopback and that no
//! web page of another site sent (`Origin`, `Sec-Fetch-Site`); others get 403.
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
//! | `PUT /plugins/{name}` | deploys a new version (JSON `{"component_base64","manifest"}`): `201` new, `200` the live version's bytes, `422` would not load (nothing stored), `409` a plugin-folder name, `413` too large ([`crate::deploy`]) |
//! | `GET /plugins/{name}/versions` | the deployed versions, newest first (`404` none) |
//! | `POST /plugins/{name}/rollback[?to=V]` | makes an older version live (default: the newest older than the live one; `409` nothing older) |
//! | `DELETE /plugins/{name}` | undeploys (`404` not deployed); the versions stay |
//! | `GET /metrics` | Prometheus text format (see [`crate::telemetry`]) |
//! | `GET /events/{id}[?route=R]` | the newest event with that delivery id, with its request |
//! | `GET /events?status=&route=&since=&until=&limit=&before=` | events newest first, without requests (`since`/`until`: RFC 3339 receive times) |
//! | `POST /events/{id}/replay[?route=R]` | a done or dead event back to pending, due now |
//! | `GET /stats` | the last hour per route in ten-second buckets ([`crate::series`]) |
//! | `GET /ui/` | the dashboard ([`ui`]) |

mod auth;
mod deploy;
mod routes;
mod ui;
mod views;

#[doc(hidden)]
pub(crate) use routes::fuzz_query;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Value, json};

pub use auth::check_bind;
pub use routes::{DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};

use crate::deploy::Deploy;
use crate::inbox::Inbox;
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::secret::Token;
use crate::telemetry::Metrics;

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
    /// Deploys, lists versions, rolls back and undeploys plugins.
    pub deploy: Arc<Deploy>,
    /// Largest `PUT /plugins/{name}` body, in bytes.
    pub max_deploy_body: u64,
}

/// The admin API's request handler.
pub struct Admin {
    inbox: Arc<Inbox>,
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    plugins_dir: PathBuf,
    metrics: Arc<Metrics>,
    deploy: Arc<Deploy>,
    max_deploy_body: u64,
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
            deploy,
            max_deploy_body,
        } = parts;
        Self {
            inbox,
            registry,
            runtime,
            plugins_dir,
            metrics,
            deploy,
            max_deploy_body,
            token,
        }
    }
}

impl Admin {
    /// Feeds the dashboard's queue charts until `stop` resolves; run beside
    /// the admin listener.
    pub async fn sample(&self, stop: impl std::future::Future<Output = ()>) {
        self.sample_queues(stop).await;
    }
}

impl crate::server::Handler for Admin {
    async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> http::Response<Full<Bytes>> {
        let mut response = self.answer(request, peer).await;
        // Every answer, JSON or page: a browser must take each for what its
        // Content-Type says, never sniff a script out of an event body.
        response.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            header::HeaderValue::from_static("nosniff"),
        );
        response
    }
}

impl Admin {
    async fn answer(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> http::Response<Full<Bytes>> {
        if ui::is_ui(request.uri().path()) {
            // Without a token, the same loopback and cross-site checks as
            // the API; with one, the assets need none (see `ui`).
            let checked = match &self.token {
                Some(_) => Ok(()),
                None => auth::authorize(None, request.headers(), request.uri()),
            };
            if checked.is_ok() {
                return ui::serve(request.uri().path(), request.method());
            }
        }
        let path = request.uri().path().to_owned();
        let (status, body) = match self.route(request).await {
            Ok(Answer::Json(body)) => (StatusCode::OK, body),
            Ok(Answer::Created(body)) => (StatusCode::CREATED, body),
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
                    tracing::warn!(%peer, path = %path, "admin request without a valid token");
                }
                if let Refusal::Forbidden(why) = &refusal {
                    tracing::warn!(%peer, path = %path, reason = %why, "admin request refused");
                }
                let body = match &refusal {
                    Refusal::NotReady(reason) => json!({ "status": "not ready", "reason": reason }),
                    Refusal::Unprocessable(body) => body.clone(),
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
                let path = path.trim_end_matches('/');
                let segments = path.split('/').count();
                let allow = if path.ends_with("/replay")
                    || path.ends_with("/rollback")
                    || path == "/plugins/reload"
                {
                    "POST"
                } else if path.starts_with("/plugins/") && segments == 3 {
                    "PUT, DELETE"
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
    /// `201 Created`, with JSON.
    Created(Value),
    /// `GET /metrics`: text, not JSON.
    Metrics(String),
}

/// Why an admin request got no answer body.
enum Refusal {
    Unauthorized,
    /// Without a token: not for a loopback host, or cross-site.
    Forbidden(String),
    NotFound(String),
    Method(&'static str),
    BadRequest(String),
    Conflict(String),
    /// 413: the body is larger than allowed.
    TooLarge(String),
    /// 415: not a body type this endpoint reads.
    Unsupported(String),
    /// 422: a deploy that would not load; the body says why.
    Unprocessable(Value),
    Store(String),
    NotReady(String),
    /// The plugin folder could not be listed.
    Reload(String),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::NotFound(_) => StatusCode::NOT_FOUND,
            Refusal::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Conflict(_) => StatusCode::CONFLICT,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
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
            | Refusal::Forbidden(message)
            | Refusal::BadRequest(message)
            | Refusal::TooLarge(message)
            | Refusal::Unsupported(message)
            | Refusal::Conflict(message) => message.clone(),
            Refusal::Unprocessable(body) => body["error"].as_str().unwrap_or_default().to_owned(),
        }
    }
}
