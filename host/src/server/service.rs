//! One request, start to finish: route, method, body, plugin call.
//!
//! Cheap checks come first and refuse early (unknown route, wrong method, a
//! declared body over the limit) so no work is spent on traffic that will be
//! refused anyway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use ipnet::IpNet;
use tracing::Instrument;

use super::response::{Failure, plugin_response};
use crate::ingress;
use crate::registry::Registry;
use crate::runtime::{Delivery, Header, Runtime};

/// Headers in which senders put their own delivery id, most specific first.
/// Using the sender's id keeps the id stable across the sender's retries.
const DELIVERY_ID_HEADERS: &[&str] = &[
    "x-github-delivery",
    "webhook-id",
    "svix-id",
    "x-shopify-webhook-id",
    "x-gitlab-event-uuid",
    "idempotency-key",
];

/// Longest sender-provided delivery id we accept; longer ones are replaced by
/// a host-made id so logs and (later) storage keys stay bounded.
const MAX_DELIVERY_ID: usize = 200;

/// Request-level limits that apply to every route.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body when the route's manifest sets none.
    pub max_body: u64,
    /// How long a client may take to send the whole body (408 after).
    pub body_timeout: Duration,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// Everything a request needs: shared, immutable, cheap to clone behind an Arc.
pub struct App {
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    limits: Limits,
}

impl App {
    /// Binds the pieces a request goes through.
    pub fn new(registry: Arc<Registry>, runtime: Arc<Runtime>, limits: Limits) -> Self {
        Self {
            registry,
            runtime,
            limits,
        }
    }

    /// Answers one request. Never fails: every outcome is an HTTP response.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> http::Response<Full<Bytes>> {
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        let delivery_id = delivery_id(request.headers());
        let span = tracing::info_span!(
            "delivery",
            route = %path,
            plugin = tracing::field::Empty,
            id = %delivery_id,
            client = tracing::field::Empty,
        );
        async move {
            let response = match self.run(request, peer, &delivery_id).await {
                Ok(response) => response,
                Err(failure) => failure.into_response(&path, &delivery_id),
            };
            let status = response.status().as_u16();
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            if response.status().is_server_error() {
                tracing::warn!(%peer, status, elapsed_ms, "answered");
            } else {
                tracing::info!(%peer, status, elapsed_ms, "answered");
            }
            response
        }
        .instrument(span)
        .await
    }

    async fn run(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        id: &str,
    ) -> Result<http::Response<Full<Bytes>>, Failure> {
        let received_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let plugin = self
            .registry
            .lookup(request.uri().path())
            .ok_or(Failure::NoRoute)?;
        tracing::Span::current().record("plugin", tracing::field::display(&plugin.name));
        // Who is asking comes before anything that costs work: refused and
        // flooding clients never get to the body, let alone verification.
        let client = ingress::client_ip(peer.ip(), request.headers(), &self.limits.trusted_proxies);
        tracing::Span::current().record("client", tracing::field::display(client));
        plugin
            .manifest
            .ingress
            .admit(client)
            .map_err(Failure::Ingress)?;
        if request.method() != Method::POST {
            return Err(Failure::MethodNotAllowed);
        }
        let max_body = plugin.manifest.max_body.unwrap_or(self.limits.max_body);
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max_body) {
            return Err(Failure::BodyTooLarge(max_body));
        }

        let (parts, body) = request.into_parts();
        let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
        let collected = tokio::time::timeout(
            self.limits.body_timeout,
            Limited::new(body, limit).collect(),
        )
        .await
        .map_err(|_| Failure::BodyTimeout(self.limits.body_timeout))?;
        let body = match collected {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                return Err(Failure::BodyTooLarge(max_body));
            }
            Err(err) => return Err(Failure::BodyRead(err.to_string())),
        };

        let verified_by = match &plugin.manifest.verify {
            Some(scheme) => {
                let input = crate::verify::Input {
                    headers: &parts.headers,
                    body: &body,
                    uri: &parts.uri,
                    now: (received_at / 1000) as i64,
                };
                if let Err(refusal) = scheme.verify(&input) {
                    return Err(Failure::Unverified(refusal));
                }
                Some(scheme.name().to_owned())
            }
            None => None,
        };

        let delivery = Delivery {
            id: id.to_owned(),
            route: plugin.manifest.route.clone(),
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.as_str().to_owned(),
                    value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                })
                .collect(),
            body: Vec::from(body),
            received_at,
            attempt: 1,
            verified_by,
        };
        let response = self
            .runtime
            .call(&plugin.prepared, &delivery, plugin.limits())
            .await
            .map_err(Failure::Plugin)?;
        Ok(plugin_response(response, id))
    }
}

/// The sender's delivery id if it gave a usable one, else a new UUIDv7 (time
/// ordered, so ids sort by arrival in logs).
fn delivery_id(headers: &http::HeaderMap) -> String {
    DELIVERY_ID_HEADERS
        .iter()
        .filter_map(|name| headers.get(*name))
        .filter_map(|value| value.to_str().ok())
        .map(str::trim)
        .find(|id| !id.is_empty() && id.len() <= MAX_DELIVERY_ID)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_id_prefers_sender_ids() {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("x-github-delivery", "gh-1".parse().unwrap());
        assert_eq!(delivery_id(&headers), "gh-1");
        headers.remove("x-github-delivery");
        assert_eq!(delivery_id(&headers), "msg_1");
    }

    #[test]
    fn delivery_id_made_when_missing_or_unusable() {
        let mut headers = http::HeaderMap::new();
        headers.insert("idempotency-key", "x".repeat(500).parse().unwrap());
        let id = delivery_id(&headers);
        assert_eq!(id.len(), 36, "{id}");
        assert_ne!(delivery_id(&headers), id, "made ids are unique");
    }
}
