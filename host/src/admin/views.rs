//! How the admin API shows plugins' load errors and events as JSON:
//! timestamps in RFC 3339, secret-bearing header values redacted, bodies as
//! text when they are UTF-8, else base64.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use http::HeaderName;
use serde_json::{Value, json};

use crate::inbox::{Attempt, Event, Millis};
use crate::registry::LoadError;

pub(super) fn error_json(error: &LoadError) -> Value {
    json!({
        "file": error.file.display().to_string(),
        "reason": error.reason,
        "at": humantime::format_rfc3339_millis(error.at).to_string(),
    })
}

pub(super) fn time(ms: Millis) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or_default());
    humantime::format_rfc3339_millis(at).to_string()
}

/// One recorded attempt of an event.
pub(super) fn attempt_json(attempt: &Attempt) -> Value {
    json!({
        "replay": attempt.replay,
        "attempt": attempt.attempt,
        "at": time(attempt.at),
        "outcome": attempt.outcome,
        "error": attempt.error,
        "host": attempt.host,
    })
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
/// secret-bearing header values as `[redacted]`: those whose names say so,
/// and those in `secret_headers` (what verification schemes read, whatever
/// the name); the body as text when it is UTF-8, else as base64.
pub(super) fn event_json(event: &Event, secret_headers: &[HeaderName]) -> Value {
    let mut value = json!({
        "id": event.id,
        "seq": event.seq,
        "route": event.route,
        "order_key": event.order_key,
        "status": event.status.as_str(),
        "attempts": event.attempts,
        "replays": event.replays,
        "received_at": time(event.received_at),
        "next_attempt_at": event.next_attempt_at.map(time),
        "claimed_until": event.claimed_until.map(time),
        "done_at": event.done_at.map(time),
        "dead_at": event.dead_at.map(time),
        "last_error": event.last_error,
        "host": event.host,
    });
    if let Some(request) = &event.request {
        let headers: Vec<[&str; 2]> = request
            .headers
            .iter()
            .map(|(name, value)| {
                let named = secret_headers
                    .iter()
                    .any(|secret| secret.as_str().eq_ignore_ascii_case(name));
                let value = if named || is_secret_header(name) {
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
