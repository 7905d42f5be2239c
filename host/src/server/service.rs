//! One request, start to finish, in named stages: route ([`App::handle`]),
//! admit (ingress, method), read the body, verify (fetching a key the scheme
//! names, once), then either the handshake (answered by the host: no
//! plugin, no event) or identify (the delivery id), the replay check, and
//! the plugin call (sync mode, through [`crate::delivery`]) or the durable
//! inbox (queue mode).
//!
//! Cheap checks come first and refuse early (unknown route, wrong method, a
//! declared body over the limit) so no work is spent on traffic that will be
//! refused anyway.
//!
//! After verification, a delivery whose sender gave an id is deduplicated:
//! in queue mode the inbox refuses an id it accepted on the route within the
//! dedupe window (atomically, in the same transaction as the append) unless
//! that event is dead, which the redelivery revives (202); in sync
//! mode a delivery whose earlier call succeeded (2xx) is not run again. Both
//! answer `200 {"id": …, "duplicate": true}`. On a verified route whose
//! scheme signs a message id, that id is the delivery id whatever id headers
//! say; a scheme that signs none gives a replay key instead, and the replay
//! cache ([`super::replay`]) refuses a byte-identical replay `401 replayed`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use ipnet::IpNet;
use tracing::Instrument;

use super::budget::{BodyBudget, Share};
use super::keys::Keys;
use super::replay::{Claim, ReplayCache};
use super::response::{self, Failure, accepted, duplicate, plugin_response};
use crate::config::Mode;
use crate::delivery::{self, Deliverer};
use crate::inbox::{Admission, Appended, Inbox, NewEvent, StoredRequest};
use crate::ingress;
use crate::registry::{Plugin, Registry};
use crate::telemetry::Outcome;
use crate::trace;
use crate::verify::{Handshake, Refusal, ReplayKey, Verdict};

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
    /// Most body bytes buffered at once across all requests.
    pub max_buffered: u64,
}

/// Everything a request needs: shared, immutable, cheap to clone behind an Arc.
pub struct App {
    registry: Arc<Registry>,
    deliverer: Arc<Deliverer>,
    inbox: Arc<Inbox>,
    limits: Limits,
    budget: Arc<BodyBudget>,
    keys: Keys,
    replays: ReplayCache,
}

/// A delivery's id and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeliveryId {
    value: String,
    /// The sender gave it (header or Stripe event id): stable across the
    /// sender's retries, so worth deduplicating. Host-made ids are unique.
    from_sender: bool,
}

/// A request that passed every check: admitted, read whole, verified.
struct Received {
    /// What the sender sent, as it is stored and delivered.
    request: StoredRequest,
    /// Unix milliseconds at arrival.
    received_at: u64,
    /// The body's share of the host's body budget, held until the delivery
    /// is handled or stored (dropped with the rest of this).
    _budget: Share,
    /// The message id the signature covers, if the scheme signs one.
    signed_id: Option<String>,
    /// What identifies this exact request to the replay cache, for
    /// schemes that sign no message id.
    replay: Option<ReplayKey>,
}

/// What a request turned out to be once verified.
enum Arrival {
    /// A delivery for the plugin.
    Delivery(Received),
    /// A handshake the host answers itself.
    Handshake(Handshake),
}

impl App {
    /// Binds the pieces a request goes through.
    pub fn new(
        registry: Arc<Registry>,
        deliverer: Arc<Deliverer>,
        inbox: Arc<Inbox>,
        limits: Limits,
        keys: Keys,
    ) -> Self {
        let budget = BodyBudget::new(limits.max_buffered, deliverer.metrics().body_meters());
        Self {
            registry,
            deliverer,
            inbox,
            limits,
            budget,
            keys,
            replays: ReplayCache::default(),
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
        let id = delivery_id(request.headers());
        // The fields after `client` are recorded only with traces on (they
        // are span attributes; the log has them already, or does not need them).
        let span = tracing::info_span!(
            "delivery",
            route = %path,
            plugin = tracing::field::Empty,
            id = %id.value,
            client = tracing::field::Empty,
            version = tracing::field::Empty,
            scheme = tracing::field::Empty,
            mode = tracing::field::Empty,
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let traced = trace::enabled();
        if traced {
            // Before the span starts: it joins the sender's trace.
            trace::join(&span, request.headers());
            span.record("otel.kind", "server");
        }
        async move {
            let (route, id, answer) = match self.registry.lookup(&path) {
                None => (None, id.value, Err(Failure::NoRoute)),
                Some(plugin) => {
                    let span = tracing::Span::current();
                    span.record("plugin", tracing::field::display(&plugin.name));
                    if traced {
                        delivery::record_plugin(&span, &plugin, 1);
                    }
                    let (id, answer) = self.deliver(&plugin, request, peer, id).await;
                    (Some(plugin.manifest.route.clone()), id, answer)
                }
            };
            let response = answer.unwrap_or_else(|failure| failure.into_response(&path, &id));
            let status = response.status().as_u16();
            if traced {
                let span = tracing::Span::current();
                span.record("status", status);
                if response.status().is_server_error() {
                    span.record("otel.status_code", "ERROR");
                }
            }
            let metrics = self.deliverer.metrics();
            metrics.request(route.as_deref(), status);
            let elapsed = started.elapsed();
            if let Some(route) = &route {
                metrics
                    .series()
                    .request(route, status, elapsed, std::time::SystemTime::now());
            }
            let elapsed_us = elapsed.as_micros() as u64;
            if response.status().is_server_error() {
                tracing::warn!(%peer, status, elapsed_us, "answered");
            } else {
                tracing::info!(%peer, status, elapsed_us, "answered");
            }
            response
        }
        .instrument(span)
        .await
    }

    /// A request for `plugin`'s route, through every stage: received
    /// (admitted, read, verified), identified, then queued or called.
    /// Returns the delivery id the answer names, and the answer.
    async fn deliver(
        &self,
        plugin: &Plugin,
        request: Request<Incoming>,
        peer: SocketAddr,
        id: DeliveryId,
    ) -> (String, Result<http::Response<Full<Bytes>>, Failure>) {
        let received = match self.receive(plugin, request, peer).await {
            Ok(Arrival::Delivery(received)) => received,
            Ok(Arrival::Handshake(handshake)) => {
                let answer = self.handshake(plugin, handshake, &id.value).await;
                return (id.value, answer);
            }
            Err(failure) => return (id.value, Err(failure)),
        };
        let id = identify(id, &received);
        let replay = received.replay.clone();
        if let Err(failure) = self.claim(plugin, replay.as_ref(), received.received_at) {
            return (id.value, Err(failure));
        }
        let answer = match plugin.manifest.mode {
            Mode::Queue => self.enqueue(plugin, &id, received).await,
            Mode::Sync => self.call(plugin, &id, received).await,
        };
        if let Some(replay) = &replay {
            let accepted = answer.as_ref().is_ok_and(|r| r.status().is_success());
            if !accepted {
                // Not accepted: the sender's retry (the same bytes) must
                // get through.
                self.replays.release(&plugin.manifest.route, &replay.digest);
            }
        }
        (id.value, answer)
    }

    /// The handshake stage: answers a handshake the scheme recognised, as
    /// its provider documents, without the plugin and without an event.
    /// An SNS subscription the route confirms is confirmed first, so a
    /// failed confirmation is a 503 that SNS retries.
    async fn handshake(
        &self,
        plugin: &Plugin,
        handshake: Handshake,
        id: &str,
    ) -> Result<http::Response<Full<Bytes>>, Failure> {
        let route = &plugin.manifest.route;
        if let Some(follow_up) = &handshake.follow_up {
            self.keys
                .confirm(route, follow_up, self.deliverer.metrics())
                .await
                .map_err(Failure::Fetch)?;
        }
        self.deliverer.metrics().handshake(route, handshake.kind);
        tracing::info!(kind = handshake.kind, "handshake answered by the host");
        Ok(response::handshake(&handshake, id))
    }

    /// The replay stage: refuses a request whose signature was seen on this
    /// route within the scheme's window, and remembers this one.
    fn claim(
        &self,
        plugin: &Plugin,
        replay: Option<&ReplayKey>,
        received_at: u64,
    ) -> Result<(), Failure> {
        let Some(replay) = replay else {
            return Ok(());
        };
        let route = &plugin.manifest.route;
        let now = (received_at / 1000) as i64;
        match self
            .replays
            .claim(route, &replay.digest, replay.expires, now)
        {
            Claim::Fresh => Ok(()),
            Claim::Replayed => {
                plugin.stats.record(Outcome::Refused);
                let refusal = Refusal::Replayed;
                self.deliverer
                    .metrics()
                    .verification_failed(route, refusal.reason());
                Err(Failure::Unverified(refusal))
            }
        }
    }

    /// Admits the client, reads the body and verifies the request.
    async fn receive(
        &self,
        plugin: &Plugin,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Arrival, Failure> {
        let received_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        self.admit(plugin, &request, peer)?;
        let (parts, body, budget) = self.read_body(plugin, request).await?;
        let verified = self
            .verify(plugin, &parts, &body, received_at, peer)
            .instrument(trace::span(|| tracing::info_span!("verify")))
            .await?;
        let (verified_by, signed_id, replay) = match verified {
            None => (None, None, None),
            Some((_, Verdict::Answer(handshake))) => return Ok(Arrival::Handshake(handshake)),
            Some((name, Verdict::Deliver { signed_id, replay })) => (Some(name), signed_id, replay),
        };
        let request = StoredRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: delivery::header_pairs(&parts.headers),
            body: Vec::from(body),
            verified_by,
        };
        Ok(Arrival::Delivery(Received {
            request,
            received_at,
            _budget: budget,
            signed_id,
            replay,
        }))
    }

    /// Who is asking, and how: before anything that costs work, so refused
    /// and flooding clients never get to the body, let alone verification.
    fn admit(
        &self,
        plugin: &Plugin,
        request: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<(), Failure> {
        let client = ingress::client_ip(peer.ip(), request.headers(), &self.limits.trusted_proxies);
        tracing::Span::current().record("client", tracing::field::display(client));
        plugin.manifest.ingress.admit(client).map_err(|refused| {
            if let ingress::Refused::RateLimited { .. } = refused {
                self.deliverer
                    .metrics()
                    .rate_limited(&plugin.manifest.route);
            }
            Failure::Ingress(refused)
        })?;
        // GET only where the scheme has a GET handshake (Meta's
        // subscription check); everything else delivers with POST.
        let get_allowed = plugin
            .manifest
            .verify
            .as_ref()
            .is_some_and(|scheme| scheme.accepts_get());
        let allowed =
            request.method() == Method::POST || (request.method() == Method::GET && get_allowed);
        if !allowed {
            return Err(Failure::MethodNotAllowed);
        }
        Ok(())
    }

    /// The whole body, within the route's size limit, the body timeout and
    /// the host's body budget. A declared length over the limit is refused
    /// before reading a byte; a declared length takes its whole share of the
    /// budget before reading, a body of unknown length grows its share as
    /// chunks arrive.
    async fn read_body(
        &self,
        plugin: &Plugin,
        request: Request<Incoming>,
    ) -> Result<(http::request::Parts, Bytes, Share), Failure> {
        // A body larger than the whole budget could never be read: 413, not
        // a 503 its sender would retry for ever.
        let max_body = plugin
            .manifest
            .max_body
            .unwrap_or(self.limits.max_body)
            .min(self.limits.max_buffered);
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max_body) {
            return Err(Failure::BodyTooLarge(max_body));
        }
        let mut share = self
            .budget
            .take(declared.unwrap_or(0))
            .map_err(Failure::BodyBudget)?;
        let (parts, mut body) = request.into_parts();
        let collect = async {
            let mut buffer = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|err| Failure::BodyRead(err.to_string()))?;
                let Ok(data) = frame.into_data() else {
                    continue; // trailers: not part of what was signed
                };
                let total = (buffer.len() + data.len()) as u64;
                if total > max_body {
                    return Err(Failure::BodyTooLarge(max_body));
                }
                // More than declared (hyper refuses that for HTTP/1) or no
                // length declared: take the rest of the share now.
                if total > share.bytes() {
                    share
                        .grow(total - share.bytes())
                        .map_err(Failure::BodyBudget)?;
                }
                buffer.extend_from_slice(&data);
            }
            Ok(Bytes::from(buffer))
        };
        let body = tokio::time::timeout(self.limits.body_timeout, collect)
            .await
            .map_err(|_| Failure::BodyTimeout(self.limits.body_timeout))??;
        Ok((parts, body, share))
    }

    /// The route's scheme over the request: the scheme's name and its
    /// verdict, or `None` on an unverified route. A refusal runs nothing
    /// else. A key the scheme names but does not have yet (an SNS
    /// certificate, a JWKS) is fetched once and the request verified again;
    /// a failed fetch is a 503 the sender retries, never an acceptance.
    async fn verify(
        &self,
        plugin: &Plugin,
        parts: &http::request::Parts,
        body: &[u8],
        received_at: u64,
        peer: SocketAddr,
    ) -> Result<Option<(String, Verdict)>, Failure> {
        let Some(scheme) = &plugin.manifest.verify else {
            return Ok(None);
        };
        // Twilio rebuilds the URL it signs from `X-Forwarded-Proto`: from
        // anyone but a trusted proxy that header is the client's own say.
        let stripped = ingress::forwarded_for_verification(
            peer.ip(),
            &parts.headers,
            &self.limits.trusted_proxies,
        );
        let headers = stripped.as_ref().unwrap_or(&parts.headers);
        let mut fetched = false;
        loop {
            let input = crate::verify::Input {
                method: &parts.method,
                headers,
                body,
                uri: &parts.uri,
                now: (received_at / 1000) as i64,
                keys: self.keys.cache(),
            };
            let refusal = match scheme.verify(&input) {
                Ok(verdict) => return Ok(Some((scheme.name().to_owned(), verdict))),
                Err(Refusal::KeyUnavailable { url }) if !fetched => {
                    self.keys
                        .fetch(&plugin.manifest.route, &url, self.deliverer.metrics())
                        .await
                        .map_err(Failure::Fetch)?;
                    fetched = true;
                    continue;
                }
                Err(refusal) => refusal,
            };
            plugin.stats.record(Outcome::Refused);
            self.deliverer
                .metrics()
                .verification_failed(&plugin.manifest.route, refusal.reason());
            return Err(Failure::Unverified(refusal));
        }
    }

    /// Queue mode: stores the delivery durably (or finds it is a duplicate)
    /// before answering 202; a route with `[queue] max_pending` events
    /// pending stores nothing and answers 429 with `Retry-After`.
    async fn enqueue(
        &self,
        plugin: &Plugin,
        id: &DeliveryId,
        received: Received,
    ) -> Result<http::Response<Full<Bytes>>, Failure> {
        let mut request = received.request;
        // The acceptance span (this delivery's), for the attempts to link
        // to; a sender cannot supply one, even while tracing is off (the
        // event may be attempted after a restart with tracing on).
        trace::strip(&mut request.headers);
        if trace::enabled()
            && let Some(parent) = trace::traceparent(&tracing::Span::current())
        {
            request
                .headers
                .push((trace::ACCEPTED_HEADER.to_owned(), parent));
        }
        let event = NewEvent {
            id: id.value.clone(),
            dedupe: id.from_sender,
            route: plugin.manifest.route.clone(),
            received_at: received.received_at as i64,
            order_key: plugin
                .manifest
                .order_key
                .as_ref()
                .map(|key| key.read(&request)),
            request,
        };
        let route = &plugin.manifest.route;
        let max_pending = plugin.manifest.max_pending;
        let write = trace::span(|| tracing::info_span!("inbox.write"));
        match self
            .inbox
            .append_within(event, max_pending)
            .instrument(write)
            .await
        {
            Ok(Admission::Full {
                pending,
                retry_after,
            }) => {
                self.deliverer.metrics().queue_refused(route, "max_pending");
                tracing::warn!(
                    pending,
                    max_pending,
                    retry_after_s = retry_after.as_secs(),
                    "route is full: delivery refused 429, nothing stored"
                );
                Err(Failure::QueueFull { retry_after })
            }
            Ok(Admission::Stored(appended)) => Ok(self.appended(appended, id)),
            Err(err) => Err(Failure::Store(err)),
        }
    }

    /// The sender's answer to what the inbox made of its delivery.
    fn appended(&self, appended: Appended, id: &DeliveryId) -> http::Response<Full<Bytes>> {
        match appended {
            Appended::Accepted { .. } => accepted(&id.value),
            Appended::Revived { seq } => {
                tracing::info!(
                    seq,
                    "redelivery of a dead event: pending again with a fresh retry budget"
                );
                accepted(&id.value)
            }
            Appended::Duplicate => {
                tracing::info!("duplicate delivery: already accepted, not queued again");
                duplicate(&id.value)
            }
        }
    }

    /// Sync mode: runs the plugin (unless the sender's id was handled
    /// already) and answers with its response.
    async fn call(
        &self,
        plugin: &Plugin,
        id: &DeliveryId,
        received: Received,
    ) -> Result<http::Response<Full<Bytes>>, Failure> {
        let route = &plugin.manifest.route;
        if id.from_sender {
            match self.inbox.seen(route, &id.value).await {
                Ok(true) => {
                    tracing::info!("duplicate delivery: already handled, not run again");
                    return Ok(duplicate(&id.value));
                }
                Ok(false) => {}
                // Dedupe is a courtesy in sync mode: without the store the
                // plugin still runs.
                Err(err) => tracing::warn!(error = %err, "cannot check for a duplicate delivery"),
            }
        }
        let delivery = delivery::build(
            id.value.clone(),
            route.clone(),
            received.request,
            received.received_at as i64,
            1,
        );
        let response = self
            .deliverer
            .call(plugin, &delivery)
            .await
            .result
            .map_err(Failure::Plugin)?;
        if id.from_sender && (200..300).contains(&response.status) {
            // Not awaited: the sender's answer does not wait for this write.
            let inbox = self.inbox.clone();
            let (route, id) = (route.clone(), id.value.clone());
            tokio::spawn(
                async move {
                    if let Err(err) = inbox.remember(&route, &id).await {
                        tracing::warn!(error = %err, "cannot record the delivery for dedupe");
                    }
                }
                .in_current_span(),
            );
        }
        Ok(plugin_response(response, &id.value))
    }
}

/// The delivery id, once the request is verified. A scheme that signs its
/// message id decides it (Stripe's event id, Standard Webhooks'
/// `webhook-id`, Twitch's message id, ...): any id header is unsigned, and
/// preferring it would let a replayed request (within the timestamp window)
/// dodge dedupe with a fresh one. On an unverified route a Stripe event's
/// own id stands in for a missing sender id.
fn identify(id: DeliveryId, received: &Received) -> DeliveryId {
    let better = match &received.signed_id {
        Some(signed) => Some(signed_delivery_id(signed)),
        None if received.request.verified_by.is_none() && !id.from_sender => {
            stripe_event_id(&received.request.body)
        }
        None => None,
    };
    match better {
        Some(better) => {
            tracing::Span::current().record("id", tracing::field::display(&better.value));
            better
        }
        None => id,
    }
}

/// A signed message id as a delivery id. Ids of any length are signed
/// (Standard Webhooks sets no limit), so one too long to store as is
/// becomes its SHA-256: still stable across the sender's retries, still
/// bounded.
fn signed_delivery_id(signed: &str) -> DeliveryId {
    use sha2::{Digest as _, Sha256};
    let value = if usable_id(signed) {
        signed.to_owned()
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(signed.as_bytes())))
    };
    DeliveryId {
        value,
        from_sender: true,
    }
}

/// The sender's delivery id if it gave a usable one, else a new UUIDv7 (time
/// ordered, so ids sort by arrival in logs).
fn delivery_id(headers: &http::HeaderMap) -> DeliveryId {
    DELIVERY_ID_HEADERS
        .iter()
        .filter_map(|name| headers.get(*name))
        .filter_map(|value| value.to_str().ok())
        .map(str::trim)
        .find(|id| usable_id(id))
        .map(|id| DeliveryId {
            value: id.to_owned(),
            from_sender: true,
        })
        .unwrap_or_else(|| DeliveryId {
            value: uuid::Uuid::now_v7().to_string(),
            from_sender: false,
        })
}

fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_DELIVERY_ID
}

/// A Stripe event's own id (`"id": "evt_…"` at the top level of the JSON
/// body), for unverified routes: Stripe sends no delivery-id header, and
/// retries an event with the same id. (A route verified as Stripe's gets
/// the id from the scheme, which reads it from the signed body.)
fn stripe_event_id(body: &[u8]) -> Option<DeliveryId> {
    #[derive(serde::Deserialize)]
    struct TopLevel {
        id: Option<serde_json::Value>,
    }
    // Cheap checks first: most bodies are not Stripe events. `str::contains`
    // is a fast substring search; the byte-window scan (kept for bodies that
    // are not UTF-8) cost ~2 % of a whole request on a 1.5 KB body.
    let looks_like_event = match std::str::from_utf8(body) {
        Ok(text) => text.contains("\"evt_"),
        Err(_) => body.windows(5).any(|w| w == b"\"evt_"),
    };
    if !looks_like_event || body.first().is_none_or(|b| !b"{ \t\r\n".contains(b)) {
        return None;
    }
    let id = match serde_json::from_slice::<TopLevel>(body).ok()?.id? {
        serde_json::Value::String(id) => id,
        _ => return None,
    };
    (usable_id(&id) && id.starts_with("evt_")).then_some(DeliveryId {
        value: id,
        from_sender: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_id_of_any_length_is_the_delivery_id() {
        assert_eq!(signed_delivery_id("msg_1").value, "msg_1");
        let long = "m".repeat(5000);
        let id = signed_delivery_id(&long);
        assert!(id.from_sender);
        assert_eq!(id.value.len(), "sha256:".len() + 64, "{id:?}");
        assert_eq!(id, signed_delivery_id(&long), "stable across retries");
    }

    #[test]
    fn delivery_id_prefers_sender_ids() {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("x-github-delivery", "gh-1".parse().unwrap());
        assert_eq!(delivery_id(&headers).value, "gh-1");
        assert!(delivery_id(&headers).from_sender);
        headers.remove("x-github-delivery");
        assert_eq!(delivery_id(&headers).value, "msg_1");
    }

    #[test]
    fn delivery_id_made_when_missing_or_unusable() {
        let mut headers = http::HeaderMap::new();
        headers.insert("idempotency-key", "x".repeat(500).parse().unwrap());
        let id = delivery_id(&headers);
        assert_eq!(id.value.len(), 36, "{id:?}");
        assert!(!id.from_sender);
        assert_ne!(delivery_id(&headers), id, "made ids are unique");
    }

    #[test]
    fn stripe_event_id_from_the_body() {
        let id = |body: &str| stripe_event_id(body.as_bytes()).map(|id| id.value);
        let event = r#"{"id": "evt_1Nx", "object": "event", "data": {"object": {"id": "pi_3"}}}"#;
        assert_eq!(id(event).as_deref(), Some("evt_1Nx"));
        // Only `evt_` ids, at the top level, as strings, of JSON objects.
        assert_eq!(id(r#"{"id":"abc"}"#), None);
        assert_eq!(id(r#"{"id":"abc","x":"evt_"}"#), None);
        assert_eq!(id(r#"{"data":{"id":"evt_1"}}"#), None);
        assert_eq!(id(r#"{"id":7,"x":"evt_"}"#), None);
        assert_eq!(id(r#"evt_1"#), None);
        assert_eq!(id(r#"{"id":"evt_1""#), None);
        assert_eq!(id(&format!(r#"{{"id":"evt_{}"}}"#, "x".repeat(300))), None);
    }
}
