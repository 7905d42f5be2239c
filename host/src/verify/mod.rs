//! Webhook signature verification: one submodule per sender scheme behind
//! one trait, [`Scheme`].
//!
//! This module owns:
//! - how each sender signs a delivery, both ways: [`Scheme::verify`] for the
//!   server and [`Scheme::sign`] for `hookhost send` and tests, sharing the
//!   code that builds the signed message and computes the MAC;
//! - the `[verify]` table of a plugin manifest ([`RawVerify`]) and its
//!   one-time validation into a ready scheme ([`build`]);
//! - the short, stable refusal reasons the server puts in its 401 body
//!   ([`Refusal::reason`]).
//!
//! It does no I/O and reads no clock: a scheme is a function of headers, body,
//! URI, secrets and the `now` it is given, so vectors and fuzzers can drive it.
//! The one exception is [`build`], which reads the `env:` and `file:` secret
//! references of a manifest once, when it is loaded (through
//! [`crate::secret`]).
//!
//! It does not own: reading or limiting the body, choosing the status code,
//! logging, or deduplicating deliveries; those belong to the server.
//!
//! | scheme              | signature                                            | timestamp window |
//! |---------------------|------------------------------------------------------|------------------|
//! | `github`            | `X-Hub-Signature-256: sha256=HEX`, HMAC-SHA256(body) | none             |
//! | `gitlab`            | `X-Gitlab-Token` equals the secret                   | none             |
//! | `stripe`            | `Stripe-Signature: t=TS,v1=HEX…`, of `TS.body`       | past only        |
//! | `slack`             | `X-Slack-Signature: v0=HEX`, of `v0:TS:body`         | both ways        |
//! | `shopify`           | `X-Shopify-Hmac-Sha256: BASE64`, of the body         | none             |
//! | `standard-webhooks` | `webhook-signature: v1,BASE64…`, of `ID.TS.body`     | both ways        |
//! | `token`             | a header equals prefix + secret                      | none             |
//! | `hmac`              | a header carries prefix + HEX/BASE64 of the body     | none             |
//! | `twilio`            | `X-Twilio-Signature: BASE64`, HMAC-SHA1(URL+params)  | none             |
//!
//! Every scheme accepts a list of secrets (rotation: any may match) and signs
//! with the first. Signatures are compared in constant time.

mod config;
mod generic;
mod github;
mod gitlab;
mod mac;
mod shopify;
mod slack;
mod standard_webhooks;
mod stripe;
mod token;
mod twilio;

#[cfg(test)]
mod testutil;

use std::fmt;

use http::{HeaderMap, HeaderName, Uri};

/// Schemes hold their keys as [`Secret`]s; the type is the `secret` module's.
pub use crate::secret::Secret;
pub use config::{ConfigError, DEFAULT_TOLERANCE, RawVerify, build};
pub use generic::{Encoding, GenericHmac};
pub use github::Github;
pub use gitlab::Gitlab;
pub use mac::Algorithm;
pub use shopify::Shopify;
pub use slack::Slack;
pub use standard_webhooks::{InvalidKey, StandardWebhooks};
pub use stripe::Stripe;
pub use token::Token;
#[doc(hidden)]
pub(crate) use twilio::fuzz_form;
pub use twilio::{InvalidUrl, Twilio};

/// What a scheme sees of a request.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub headers: &'a HeaderMap,
    /// The raw body bytes, exactly as received: every sender signs these.
    pub body: &'a [u8],
    /// The request target as received (path and query; absolute for HTTP/2).
    pub uri: &'a Uri,
    /// Unix seconds, read by the caller.
    pub now: i64,
}

/// Shows header names and the body's length only: header values may be
/// tokens, and bodies are payloads.
impl fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("uri", self.uri)
            .field("now", &self.now)
            .finish()
    }
}

/// A webhook signature scheme, configured with its secrets.
pub trait Scheme: Send + Sync + fmt::Debug {
    /// The scheme's name in manifests, e.g. `github`.
    fn name(&self) -> &'static str;

    /// Accepts the request, or says why not.
    fn verify(&self, input: &Input<'_>) -> Result<(), Refusal>;

    /// The headers a sender would add to deliver `body` to `uri` at `now`,
    /// signed with the first secret.
    fn sign(&self, body: &[u8], uri: &Uri, now: i64) -> Result<HeaderMap, SignError>;
}

/// Why a request was refused. Carries header names for the log, never a
/// secret, a signature or the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("missing signature in `{0}`")]
    MissingSignature(HeaderName),
    #[error("malformed signature in `{0}`")]
    MalformedSignature(HeaderName),
    #[error("signature matches none of the configured secrets")]
    BadSignature,
    #[error("missing timestamp in `{0}`")]
    MissingTimestamp(HeaderName),
    #[error("malformed timestamp in `{0}`")]
    MalformedTimestamp(HeaderName),
    /// `age` is `now - timestamp`: negative when the timestamp is in the future.
    #[error("timestamp is {age}s old, outside the {tolerance}s tolerance")]
    TimestampOutsideTolerance { age: i64, tolerance: i64 },
    /// Standard Webhooks signs the message id, so without it nothing can match.
    #[error("missing message id in `{0}`")]
    MissingMessageId(HeaderName),
}

impl Refusal {
    /// A short, stable string for the 401 body; the `Display` form, with
    /// header names and ages, is for the log.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MissingSignature(_) => "missing signature",
            Refusal::MalformedSignature(_) => "malformed signature",
            Refusal::BadSignature => "bad signature",
            Refusal::MissingTimestamp(_) => "missing timestamp",
            Refusal::MalformedTimestamp(_) => "malformed timestamp",
            Refusal::TimestampOutsideTolerance { .. } => "timestamp outside tolerance",
            Refusal::MissingMessageId(_) => "missing message id",
        }
    }
}

/// Why [`Scheme::sign`] could not produce headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("no secret to sign with")]
    NoSecret,
    #[error("the signature cannot be sent as an HTTP header value")]
    InvalidHeaderValue,
    #[error("twilio signs the full public URL: pass an absolute URL or set `verify.url`")]
    NeedsAbsoluteUrl,
}

/// The names of all schemes, as written in manifests.
pub fn scheme_names() -> &'static [&'static str] {
    &[
        github::NAME,
        gitlab::NAME,
        stripe::NAME,
        slack::NAME,
        shopify::NAME,
        standard_webhooks::NAME,
        token::NAME,
        generic::NAME,
        twilio::NAME,
    ]
}

/// The one value of header `name` as text. A repeated header is malformed:
/// which copy a sender meant is a guess we refuse to make.
fn required_header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    missing: fn(HeaderName) -> Refusal,
    malformed: fn(HeaderName) -> Refusal,
) -> Result<&'a str, Refusal> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or_else(|| missing(name.clone()))?;
    if values.next().is_some() {
        return Err(malformed(name.clone()));
    }
    value.to_str().map_err(|_| malformed(name.clone()))
}

/// Unix seconds written as plain decimal digits (no sign, no fraction), as
/// every timestamped sender sends them.
fn parse_unix_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Which side of `now` a timestamp may stray from by up to the tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Only stale timestamps are refused (Stripe tolerates clock skew ahead).
    PastOnly,
    /// Both stale and future timestamps are refused (Slack, Standard Webhooks).
    BothWays,
}

fn check_timestamp(
    timestamp: i64,
    now: i64,
    tolerance: i64,
    window: Window,
) -> Result<(), Refusal> {
    let age = now.saturating_sub(timestamp);
    let too_old = age > tolerance;
    let too_new = window == Window::BothWays && age < -tolerance;
    if too_old || too_new {
        return Err(Refusal::TimestampOutsideTolerance { age, tolerance });
    }
    Ok(())
}

/// Tolerance in whole seconds, as schemes compare it.
fn tolerance_secs(tolerance: std::time::Duration) -> i64 {
    i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX)
}

/// A hex-encoded MAC; either case. An empty one is malformed, not merely wrong.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok().filter(|tag| !tag.is_empty())
}

/// A base64-encoded MAC (standard alphabet, padded). An empty one is malformed.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .filter(|tag| !tag.is_empty())
}

/// A header value for a signature we computed; hex and base64 always fit.
fn header_value(text: &str) -> Result<http::HeaderValue, SignError> {
    http::HeaderValue::from_str(text).map_err(|_| SignError::InvalidHeaderValue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_the_documented_strings() {
        let h = HeaderName::from_static("x-sig");
        let all = [
            (Refusal::MissingSignature(h.clone()), "missing signature"),
            (
                Refusal::MalformedSignature(h.clone()),
                "malformed signature",
            ),
            (Refusal::BadSignature, "bad signature"),
            (Refusal::MissingTimestamp(h.clone()), "missing timestamp"),
            (
                Refusal::MalformedTimestamp(h.clone()),
                "malformed timestamp",
            ),
            (
                Refusal::TimestampOutsideTolerance {
                    age: 900,
                    tolerance: 300,
                },
                "timestamp outside tolerance",
            ),
            (Refusal::MissingMessageId(h), "missing message id"),
        ];
        for (refusal, reason) in all {
            assert_eq!(refusal.reason(), reason);
        }
    }

    #[test]
    fn scheme_names_are_unique() {
        let mut names = scheme_names().to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), scheme_names().len());
    }

    #[test]
    fn timestamps_are_plain_digits() {
        assert_eq!(parse_unix_seconds("1531420618"), Some(1531420618));
        for bad in ["", "+1", "-1", "1.5", " 1", "1e9", "99999999999999999999"] {
            assert_eq!(parse_unix_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn window_edges_are_inclusive() {
        assert!(check_timestamp(700, 1000, 300, Window::BothWays).is_ok());
        assert!(check_timestamp(1300, 1000, 300, Window::BothWays).is_ok());
        assert!(check_timestamp(699, 1000, 300, Window::BothWays).is_err());
        assert!(check_timestamp(1301, 1000, 300, Window::BothWays).is_err());
        assert!(check_timestamp(i64::MAX, 1000, 300, Window::PastOnly).is_ok());
        assert!(check_timestamp(0, i64::MAX, 300, Window::PastOnly).is_err());
    }

    #[test]
    fn repeated_signature_header_is_malformed() {
        let name = HeaderName::from_static("x-sig");
        let mut headers = HeaderMap::new();
        headers.append(&name, "a".parse().unwrap());
        headers.append(&name, "b".parse().unwrap());
        let got = required_header(
            &headers,
            &name,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        );
        assert_eq!(got, Err(Refusal::MalformedSignature(name)));
    }

    #[test]
    fn input_debug_shows_no_header_values_or_body() {
        let mut headers = HeaderMap::new();
        headers.insert("x-gitlab-token", "hunter2".parse().unwrap());
        let uri: Uri = "/hooks/x".parse().unwrap();
        let input = Input {
            headers: &headers,
            body: b"payload",
            uri: &uri,
            now: 0,
        };
        let debug = format!("{input:?}");
        assert!(
            debug.contains("x-gitlab-token") && debug.contains("body_len: 7"),
            "{debug}"
        );
        assert!(
            !debug.contains("hunter2") && !debug.contains("payload"),
            "{debug}"
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Secret::from("hunter2")),
            "Secret(<redacted>)"
        );
    }
}
