//! The one place where outcomes become HTTP responses.
//!
//! Sender-facing error bodies are short JSON naming the route and the delivery
//! id, never internals (trap messages, backtraces, paths): those go to the
//! log, where the delivery id finds them.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use http_body_util::Full;

use super::budget::BudgetFull;
use crate::inbox::StoreError;
use crate::ingress;
use crate::runtime::{CallError, Response};
use crate::verify::{Handshake, Refusal};

/// Response header carrying the delivery id on every answer, so a sender (or
/// an operator with curl) can find the delivery in the logs.
pub const DELIVERY_HEADER: &str = "x-hookhost-delivery";

/// Why a request did not get a plugin's response.
#[derive(Debug)]
pub enum Failure {
    /// No plugin serves this path.
    NoRoute,
    /// Only POST delivers webhooks.
    MethodNotAllowed,
    /// The body is over the limit (bytes).
    BodyTooLarge(u64),
    /// The client failed while sending the body.
    BodyRead(String),
    /// The request failed its route's signature verification.
    Unverified(Refusal),
    /// The client is not allowed, or is over a rate limit.
    Ingress(ingress::Refused),
    /// The client did not send the whole body in time.
    BodyTimeout(Duration),
    /// The host-wide budget of buffered body bytes has no room for this
    /// body; the body was not (or not wholly) read.
    BodyBudget(BudgetFull),
    /// The plugin call produced no response.
    Plugin(CallError),
    /// Queue mode: the delivery could not be stored durably, so it was not
    /// accepted.
    Store(StoreError),
    /// Queue mode: the route has `[queue] max_pending` events pending; the
    /// sender should try again after `retry_after`. Nothing was stored.
    QueueFull { retry_after: Duration },
    /// A key the scheme needs (or an SNS subscription confirmation) could
    /// not be fetched: the sender should retry, the request was not refused.
    Fetch(crate::fetch::FetchError),
}

pub(super) fn status_of(failure: &Failure) -> StatusCode {
    match failure {
        Failure::NoRoute => StatusCode::NOT_FOUND,
        Failure::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Failure::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Failure::BodyRead(_) => StatusCode::BAD_REQUEST,
        // A subscription GET with the wrong verify token (Meta) is refused
        // 403, as the provider documents; every other refusal is 401.
        Failure::Unverified(Refusal::BadVerifyToken) => StatusCode::FORBIDDEN,
        Failure::Unverified(_) => StatusCode::UNAUTHORIZED,
        Failure::Ingress(ingress::Refused::NotAllowed(_)) => StatusCode::FORBIDDEN,
        Failure::Ingress(ingress::Refused::RateLimited { .. }) | Failure::QueueFull { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        Failure::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        Failure::Store(_) | Failure::BodyBudget(_) | Failure::Fetch(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Failure::Plugin(err) => err.classify().status,
    }
}

impl Failure {
    /// The terse, sender-facing description.
    fn public_message(&self) -> String {
        match self {
            Failure::NoRoute => "no plugin serves this route".into(),
            Failure::MethodNotAllowed => "webhooks must be sent with POST".into(),
            Failure::BodyTooLarge(limit) => format!("body is larger than {limit} bytes"),
            Failure::BodyRead(_) => "could not read the request body".into(),
            // A stable, short reason; which header or how stale is in the log.
            Failure::Unverified(refusal) => refusal.reason().into(),
            Failure::Ingress(ingress::Refused::NotAllowed(_)) => {
                "client address is not allowed on this route".into()
            }
            Failure::Ingress(ingress::Refused::RateLimited { .. }) => "rate limit exceeded".into(),
            Failure::BodyTimeout(_) => "body not received in time".into(),
            Failure::BodyBudget(_) => "host is buffering too many request bodies, try again".into(),
            Failure::Store(_) => {
                "could not store the delivery; it was not accepted, try again".into()
            }
            Failure::QueueFull { .. } => {
                "too many deliveries waiting on this route; not accepted, retry after Retry-After"
                    .into()
            }
            Failure::Fetch(_) => "cannot fetch what verification needs, try again".into(),
            Failure::Plugin(err) => match err {
                // The plugin's own message is meant for the sender.
                CallError::Retry(message, _) => format!("plugin asked to retry: {message}"),
                CallError::Reject(message) => format!("plugin rejected the delivery: {message}"),
                CallError::Timeout(_) => "plugin timed out".into(),
                CallError::MemoryExceeded(_) => "plugin exceeded its memory limit".into(),
                CallError::Trap(_) => "plugin failed".into(),
                CallError::InvalidResponse(_) => "plugin returned an invalid response".into(),
                CallError::Capacity => "host is at capacity, try again".into(),
            },
        }
    }

    /// Logs the detail and builds the sender's answer.
    pub fn into_response(self, route: &str, delivery_id: &str) -> http::Response<Full<Bytes>> {
        let status = status_of(&self);
        match &self {
            Failure::Plugin(err) => tracing::warn!(error = %err, "plugin call failed"),
            Failure::BodyRead(err) => tracing::info!(error = %err, "body read failed"),
            // The refusal's Display names the header and the reason, never the
            // secret or the expected signature.
            Failure::Unverified(refusal) => {
                tracing::warn!(reason = %refusal, "verification refused")
            }
            Failure::Ingress(refused) => tracing::info!(reason = %refused, "refused at ingress"),
            Failure::BodyTimeout(limit) => tracing::info!(limit = ?limit, "body read timed out"),
            Failure::BodyBudget(full) => tracing::warn!(
                max_buffered = full.max,
                "body budget spent: request refused before its body was read"
            ),
            Failure::Store(err) => tracing::error!(error = %err, "delivery not accepted"),
            Failure::Fetch(err) => {
                tracing::warn!(error = %err, "fetch failed; sender told to retry")
            }
            _ => {}
        }
        let body = serde_json::json!({
            "error": self.public_message(),
            "route": route,
            "delivery": delivery_id,
        });
        let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(id) = HeaderValue::from_str(delivery_id) {
            headers.insert(DELIVERY_HEADER, id);
        }
        match self {
            Failure::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            Failure::Plugin(CallError::Retry(_, Some(after))) => {
                // The plugin's own hint (`queue.retry-after`), whole seconds
                // rounded up, capped like a queued retry's.
                let after = after.min(crate::config::DEFAULT_RETRY_MAX);
                let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            Failure::Plugin(CallError::Retry(_, None) | CallError::Capacity)
            | Failure::Store(_)
            | Failure::BodyBudget(_)
            | Failure::Fetch(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Failure::Ingress(ingress::Refused::RateLimited { retry_after, .. })
            | Failure::QueueFull { retry_after } => {
                // Whole seconds, rounded up: a client retrying early is refused again.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            _ => {}
        }
        response
    }
}

/// Queue mode: `202 {"id": …}`, sent only once the delivery is durable.
pub fn accepted(delivery_id: &str) -> http::Response<Full<Bytes>> {
    json_answer(
        StatusCode::ACCEPTED,
        serde_json::json!({ "id": delivery_id }),
        delivery_id,
    )
}

/// `200 {"id": …, "duplicate": true}`: this delivery id was already accepted
/// (queue mode) or handled (sync mode) within the dedupe window.
pub fn duplicate(delivery_id: &str) -> http::Response<Full<Bytes>> {
    json_answer(
        StatusCode::OK,
        serde_json::json!({ "id": delivery_id, "duplicate": true }),
        delivery_id,
    )
}

/// A handshake answered exactly as its provider documents: the scheme's
/// status, content type and body, and `nosniff` so a challenge echoed back
/// is never read as HTML by a browser.
pub fn handshake(handshake: &Handshake, delivery_id: &str) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(handshake.body.clone()));
    // Schemes answer with the provider's documented statuses (200, 204).
    *response.status_mut() = StatusCode::from_u16(handshake.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    if !handshake.content_type.is_empty() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(handshake.content_type),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(id) = HeaderValue::from_str(delivery_id) {
        headers.insert(DELIVERY_HEADER, id);
    }
    response
}

fn json_answer(
    status: StatusCode,
    body: serde_json::Value,
    delivery_id: &str,
) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(delivery_id) {
        headers.insert(DELIVERY_HEADER, id);
    }
    response
}

/// Hop-by-hop and framing headers are the host's business, not the plugin's.
pub(crate) const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "proxy-connection",
    "te",
    "trailer",
];

/// Turns a plugin's response into the sender's answer, dropping headers the
/// host controls or that are not valid HTTP (logged, not fatal).
pub fn plugin_response(response: Response, delivery_id: &str) -> http::Response<Full<Bytes>> {
    let mut answer = http::Response::new(Full::new(Bytes::from(response.body)));
    // Validated to be 100..=599 by the runtime.
    *answer.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = answer.headers_mut();
    for header in response.headers {
        let name = header.name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&header.value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => {
                tracing::warn!(header = %header.name, "plugin returned an invalid header; dropped")
            }
        }
    }
    if let Ok(id) = HeaderValue::from_str(delivery_id) {
        headers.insert(DELIVERY_HEADER, id);
    }
    answer
}
