//! Webhook signature verification: one submodule per sender scheme behind
//! one trait, [`Scheme`].
//!
//! This module owns:
//! - how each sender signs a delivery, both ways: [`Scheme::verify`] for the
//!   server and [`Scheme::sign_request`] (and its shorthand [`Scheme::sign`])
//!   for `hookhost send` and tests, sharing the code that builds the signed
//!   message and computes the signature;
//! - which handshakes a sender performs and the exact answer each gets
//!   ([`Verdict::Answer`] with a [`Handshake`]);
//! - the `[verify]` table of a plugin manifest ([`RawVerify`]) and its
//!   one-time validation into a ready scheme ([`build`]);
//! - the short, stable refusal reasons the server puts in its 401 body
//!   ([`Refusal::reason`]).
//!
//! It does no I/O and reads no clock: a scheme is a function of method,
//! headers, body, URI, secrets, fetched keys and the `now` it is given, so
//! vectors and fuzzers can drive it. The one exception is [`build`], which
//! reads the `env:` and `file:` secret references of a manifest once, when
//! it is loaded (through [`crate::secret`]).
//!
//! It does not own: reading or limiting the body, choosing the status code,
//! logging, deduplicating deliveries, the replay cache, or fetching keys;
//! those belong to the server.
//!
//! # The contract with the server
//!
//! - The server builds an [`Input`] (`method`, `headers`, raw `body`, `uri`,
//!   `now`, and `keys`, its [`KeyCache`] of fetched keys) and calls
//!   [`Scheme::verify`]. `GET` reaches a scheme only when
//!   [`Scheme::accepts_get`] is true; every other `GET` stays 405.
//! - `Ok(Verdict::Deliver { signed_id, replay })`: run the delivery. Dedupe
//!   on `signed_id` when it is set (no unsigned header overrides it); else,
//!   when `replay` is set, refuse a second delivery with the same
//!   [`ReplayKey`] before [`ReplayKey::expires`] as [`Refusal::Replayed`].
//! - `Ok(Verdict::Answer(handshake))`: answer `handshake.status`,
//!   `content_type` and `body` as they are; call no plugin, store no event,
//!   count it by `handshake.kind`; then perform `follow_up` if any.
//! - `Err(Refusal::KeyUnavailable { url })`: fetch `url` (already checked
//!   by the scheme), insert it into the key cache and verify again; a second
//!   `KeyUnavailable` right after a fetch is final. `Err(BadVerifyToken)`
//!   is a 403; every other refusal is a 401 with [`Refusal::reason`].
//!
//! | scheme              | signature                                                  | window    |
//! |---------------------|------------------------------------------------------------|-----------|
//! | `github`            | `X-Hub-Signature-256: sha256=HEX`, HMAC-SHA256(body)       | none      |
//! | `gitlab`            | `X-Gitlab-Token` equals the secret                         | none      |
//! | `stripe`            | `Stripe-Signature: t=TS,v1=HEX…`, of `TS.body`             | both ways |
//! | `slack`             | `X-Slack-Signature: v0=HEX`, of `v0:TS:body`               | both ways |
//! | `shopify`           | `X-Shopify-Hmac-Sha256: BASE64`, of the body               | none      |
//! | `standard-webhooks` | `webhook-signature: v1,B64 v1a,B64…`, of `ID.TS.body`      | both ways |
//! | `token`             | a header equals prefix + secret                            | none      |
//! | `hmac`              | a header carries the MAC of the body or of a template      | optional  |
//! | `twilio`            | `X-Twilio-Signature: BASE64`, HMAC-SHA1(URL+params)        | none      |
//! | `discord`           | `X-Signature-Ed25519`, Ed25519 of `TS` + body              | both ways |
//! | `twitch`            | `…-Message-Signature: sha256=HEX`, of id + TS + body       | both ways |
//! | `zoom`              | `x-zm-signature: v0=HEX`, of `v0:TS:body`                  | both ways |
//! | `meta`              | `X-Hub-Signature-256`; GET `hub.challenge` check           | none      |
//! | `graph`             | every `value[].clientState` equals the secret              | none      |
//! | `sendgrid`          | ECDSA P-256 (base64 DER) of `TS` + body                    | both ways |
//! | `square`            | `x-square-hmacsha256-signature`, of URL + body             | none      |
//! | `hubspot`           | `X-HubSpot-Signature-v3`, of method + URI + body + TS      | both ways |
//! | `linear`            | `Linear-Signature: HEX` of the body, TS inside it          | both ways |
//! | `paddle`            | `Paddle-Signature: ts=…;h1=HEX`, of `TS:body`              | both ways |
//! | `mailgun`           | `signature` object in the body, of TS + token              | both ways |
//! | `sns`               | RSA (SHA1/SHA256) of the canonical string, fetched cert    | none      |
//! | `pubsub`            | `Authorization: Bearer` RS256 JWT, fetched JWKS            | `exp`     |
//!
//! docs/verification.md has the full table, handshakes and keys included.
//! Every scheme accepts a list of secrets or public keys (rotation: any may
//! match) and signs with the first secret. Signatures are compared in
//! constant time.

mod config;
mod discord;
mod ed25519;
mod generic;
mod github;
mod gitlab;
mod graph;
mod hubspot;
mod keys;
mod linear;
mod mac;
mod mailgun;
mod meta;
mod paddle;
mod pubsub;
mod sendgrid;
mod shopify;
mod signing;
mod slack;
mod sns;
mod square;
mod standard_webhooks;
mod stripe;
mod token;
mod twilio;
mod twitch;
mod zoom;

#[cfg(test)]
mod sdk;
#[cfg(test)]
mod testutil;

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Uri};

/// Schemes hold their keys as [`Secret`]s; the type is the `secret` module's.
pub use crate::secret::Secret;
pub use config::{ConfigError, DEFAULT_TOLERANCE, RawVerify, build};
pub use discord::Discord;
pub use ed25519::InvalidPublicKey;
pub use generic::{Encoding, GenericHmac};
pub use github::Github;
pub use gitlab::Gitlab;
pub use graph::Graph;
pub use hubspot::Hubspot;
pub use keys::{KeyCache, KeySource, NoKeys};
pub use linear::Linear;
pub use mac::Algorithm;
pub use mailgun::Mailgun;
pub use meta::Meta;
pub use paddle::Paddle;
pub use pubsub::{DEFAULT_JWKS_URL, Pubsub, TEST_KID};
pub use sendgrid::Sendgrid;
pub use shopify::Shopify;
pub use signing::{KeyError, Outgoing, PrivateKey, Signed};
pub use slack::Slack;
pub use sns::{Sns, TEST_CERT_PATH, TEST_CERT_URL};
pub use square::Square;
pub use standard_webhooks::{InvalidKey, StandardWebhooks};
pub use stripe::Stripe;
pub use token::Token;
#[doc(hidden)]
pub(crate) use twilio::fuzz_form;
pub use twilio::{InvalidUrl, Twilio};
pub use twitch::Twitch;
pub use zoom::Zoom;

/// What a scheme sees of a request.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// `POST` for deliveries; `GET` only reaches schemes whose
    /// [`Scheme::accepts_get`] is true (Meta's subscription check).
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The raw body bytes, exactly as received: every sender signs these.
    pub body: &'a [u8],
    /// The request target as received (path and query; absolute for HTTP/2).
    pub uri: &'a Uri,
    /// Unix seconds, read by the caller.
    pub now: i64,
    /// Keys the host fetched for schemes that sign with a published key
    /// (SNS certificates, JWKS). A scheme that needs one it cannot find here
    /// answers [`Refusal::KeyUnavailable`].
    pub keys: &'a dyn KeySource,
}

impl<'a> Input<'a> {
    /// A `POST` with no fetched keys: the common case, and what tests use.
    pub fn post(headers: &'a HeaderMap, body: &'a [u8], uri: &'a Uri, now: i64) -> Self {
        Input {
            method: &Method::POST,
            headers,
            body,
            uri,
            now,
            keys: &NoKeys,
        }
    }
}

/// Shows header names and the body's length only: header values may be
/// tokens, and bodies are payloads.
impl fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("method", self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("uri", self.uri)
            .field("now", &self.now)
            .finish()
    }
}

/// What a verified request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An event for the plugin.
    Deliver {
        /// The delivery id the signature covers (Stripe's body `id`,
        /// Standard Webhooks' `webhook-id`, Twitch's message id, SNS's
        /// `MessageId`, ...). When set, the host dedupes on it and no
        /// unsigned id header may override it.
        signed_id: Option<String>,
        /// For timestamped schemes with no signed id: what a byte-identical
        /// replay would repeat. The host keeps it in a bounded cache until
        /// [`ReplayKey::expires`] and refuses a second delivery with the same
        /// key as [`Refusal::Replayed`] (reason `replayed`).
        replay: Option<ReplayKey>,
    },
    /// A handshake the host answers itself: no plugin call, no stored event.
    Answer(Handshake),
}

impl Verdict {
    /// A delivery that carries neither a signed id nor a replay key.
    pub const fn deliver() -> Self {
        Verdict::Deliver {
            signed_id: None,
            replay: None,
        }
    }
}

/// A digest of what makes a delivery unique to its sender (signature and
/// timestamp), scoped by scheme name so two routes never collide by accident.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    /// SHA-256 of the scheme name, the signature and the signed timestamp.
    pub digest: [u8; 32],
    /// Unix seconds after which the scheme's own window refuses the request
    /// anyway, so the cache entry can go.
    pub expires: i64,
}

impl ReplayKey {
    /// A key from the parts that identify one signed request.
    pub fn new(scheme: &str, parts: &[&[u8]], expires: i64) -> Self {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(scheme.as_bytes());
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        ReplayKey {
            digest: hasher.finalize().into(),
            expires,
        }
    }
}

/// The host's answer to a sender's handshake, exactly as the provider
/// documents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// One of the scheme's [`Scheme::handshakes`], e.g. `discord-ping`: for
    /// the log and the `/metrics` label.
    pub kind: &'static str,
    pub status: u16,
    /// Empty when the answer has no body (204).
    pub content_type: &'static str,
    pub body: Bytes,
    /// Something the host must do after answering (SNS: confirm the
    /// subscription).
    pub follow_up: Option<FollowUp>,
}

impl Handshake {
    pub fn new(kind: &'static str, status: u16, content_type: &'static str, body: Bytes) -> Self {
        Handshake {
            kind,
            status,
            content_type,
            body,
            follow_up: None,
        }
    }

    pub fn json(kind: &'static str, value: &serde_json::Value) -> Self {
        Handshake::new(
            kind,
            200,
            "application/json",
            Bytes::from(value.to_string()),
        )
    }

    pub fn text(kind: &'static str, text: impl Into<Bytes>) -> Self {
        Handshake::new(kind, 200, "text/plain", text.into())
    }
}

/// Work the host does after a handshake's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// `GET` this URL (SNS's `SubscribeURL`). Already checked by the scheme:
    /// `https`, and a host the manifest trusts (`cert_hosts`).
    Get { url: String },
}

/// A webhook signature scheme, configured with its secrets or keys.
pub trait Scheme: Send + Sync + fmt::Debug {
    /// The scheme's name in manifests, e.g. `github`.
    fn name(&self) -> &'static str;

    /// Accepts the request (as a delivery or a handshake to answer), or
    /// says why not. Pure: no I/O, no clock.
    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal>;

    /// Whether the route answers `GET` (Meta's subscription check); every
    /// other scheme's routes keep answering 405 to it.
    fn accepts_get(&self) -> bool {
        false
    }

    /// The handshake kinds [`Scheme::verify`] may answer, and that
    /// [`Scheme::sign_request`] can build with [`Outgoing::handshake`].
    fn handshakes(&self) -> &'static [&'static str] {
        &[]
    }

    /// The request a sender would make: `out.body` signed at `out.now`, or
    /// the handshake `out.handshake` names. Key-pair schemes need
    /// `out.key`; shared-secret schemes sign with their first secret.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError>;

    /// The headers a sender would add to deliver `body` to `uri` at `now`,
    /// signed with the first secret.
    fn sign(&self, body: &[u8], uri: &Uri, now: i64) -> Result<HeaderMap, SignError> {
        Ok(self.sign_request(&Outgoing::new(body, uri, now))?.headers)
    }

    /// The headers this scheme reads that carry its secret, or a value
    /// made from it, whatever they are named: views of stored requests (the
    /// admin API) redact them. Schemes whose header names say so already
    /// (`...-Signature`, `...-Token`) need not list them.
    fn secret_headers(&self) -> Vec<HeaderName> {
        Vec::new()
    }
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
    /// The same signed request was seen inside its window. Returned by the
    /// host's replay cache (see [`Verdict::Deliver::replay`]) and by schemes
    /// that can tell themselves.
    #[error("a byte-identical signed request was already accepted inside its window")]
    Replayed,
    /// The scheme needs a key published at `url` (an SNS signing
    /// certificate, a JWKS) that [`Input::keys`] does not hold. The URL is
    /// already checked against the manifest (`https`, `cert_hosts`): the
    /// host may fetch it, put it in its [`KeyCache`] and verify again. If
    /// the key is still missing after a fresh fetch, the refusal is final.
    #[error("the signing key at {url} is not fetched yet")]
    KeyUnavailable { url: String },
    /// A key URL the manifest does not trust (SNS `SigningCertURL` or
    /// `SubscribeURL` outside `cert_hosts`, or not `https`).
    #[error("key or confirmation URL `{0}` is not https on a trusted host")]
    UntrustedUrl(String),
    /// Meta's subscription `GET` with a `hub.verify_token` that is not the
    /// configured one: the host answers 403.
    #[error("`hub.verify_token` does not match `verify_token`")]
    BadVerifyToken,
    /// A signature or token carried in the body (Mailgun, Linear, SNS,
    /// Graph, Pub/Sub) could not be read.
    #[error("the body is not what the scheme expects: {0}")]
    MalformedBody(&'static str),
    /// A signed token (Pub/Sub's JWT) verified, but one of its claims is not
    /// the configured one or has expired.
    #[error("token claim `{0}` is missing, expired or not the configured value")]
    BadClaim(&'static str),
    /// A method the scheme does not take (a `GET` that is not a Meta
    /// subscription check).
    #[error("method not accepted by this scheme")]
    MethodNotAllowed,
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
            Refusal::Replayed => "replayed",
            Refusal::KeyUnavailable { .. } => "key unavailable",
            Refusal::UntrustedUrl(_) => "untrusted url",
            Refusal::BadVerifyToken => "bad verify token",
            Refusal::MalformedBody(_) => "malformed body",
            Refusal::BadClaim(_) => "bad token claim",
            Refusal::MethodNotAllowed => "method not allowed",
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
    #[error("this scheme signs with a private key: pass one (`--key file:PATH`, PKCS#8 PEM)")]
    NeedsPrivateKey,
    #[error("the private key is a {given} key; this scheme signs with {wanted}")]
    WrongKeyType {
        given: &'static str,
        wanted: &'static str,
    },
    #[error("unknown handshake `{given}` (this scheme has: {known})")]
    UnknownHandshake { given: String, known: String },
    #[error("this scheme cannot sign: {0}")]
    Unsupported(&'static str),
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
        discord::NAME,
        twitch::NAME,
        zoom::NAME,
        meta::NAME,
        graph::NAME,
        sendgrid::NAME,
        square::NAME,
        hubspot::NAME,
        linear::NAME,
        paddle::NAME,
        mailgun::NAME,
        sns::NAME,
        pubsub::NAME,
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

/// The signature header's text, the timestamp header's text (which the
/// signed string quotes) and its Unix seconds, for the schemes that send the two side by side (Slack, Zoom, Discord,
/// SendGrid, HubSpot): refusals in the order a sender would fix them.
fn signature_and_timestamp<'a>(
    headers: &'a HeaderMap,
    signature: &HeaderName,
    timestamp: &HeaderName,
) -> Result<(&'a str, &'a str, i64), Refusal> {
    let text = required_header(
        headers,
        signature,
        Refusal::MissingSignature,
        Refusal::MalformedSignature,
    )?;
    let stamp = required_header(
        headers,
        timestamp,
        Refusal::MissingTimestamp,
        Refusal::MalformedTimestamp,
    )?;
    let seconds =
        parse_unix_seconds(stamp).ok_or_else(|| Refusal::MalformedTimestamp(timestamp.clone()))?;
    Ok((text, stamp, seconds))
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
    /// Both stale and future timestamps are refused: every timestamped
    /// scheme does (a future timestamp would outlive the window).
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
    let too_new = match window {
        Window::BothWays => age < -tolerance,
    };
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

/// The string field `field` of a JSON object body, if it is one: for the
/// delivery ids that senders put inside the signed body.
fn body_string_field(body: &[u8], field: &str) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        serde_json::Value::Object(mut map) => match map.remove(field)? {
            serde_json::Value::String(text) if !text.is_empty() => Some(text),
            _ => None,
        },
        _ => None,
    }
}

/// The first value of query parameter `name`, percent-decoded as a form
/// (`+` is a space). `None` when absent or not UTF-8.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (twilio::percent_decode(key.as_bytes()) == name.as_bytes())
                .then(|| twilio::percent_decode(value.as_bytes()))
        })
        .next()
        .and_then(|value| String::from_utf8(value).ok())
}

/// HMAC-SHA256 under the first of `keys`, as lowercase hex: what the
/// `sha256=`/`v0=` schemes send.
fn hex_hmac_sha256(keys: &[Secret], parts: &[&[u8]]) -> Result<String, SignError> {
    let key = keys.first().ok_or(SignError::NoSecret)?;
    Ok(hex::encode(
        mac::compute(mac::Algorithm::Sha256, key, parts).as_bytes(),
    ))
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
            (Refusal::Replayed, "replayed"),
            (
                Refusal::KeyUnavailable {
                    url: "https://example.com/k".into(),
                },
                "key unavailable",
            ),
            (Refusal::UntrustedUrl("http://x".into()), "untrusted url"),
            (Refusal::BadVerifyToken, "bad verify token"),
            (Refusal::MalformedBody("json"), "malformed body"),
            (Refusal::BadClaim("aud"), "bad token claim"),
            (Refusal::MethodNotAllowed, "method not allowed"),
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
        assert!(check_timestamp(i64::MAX, 1000, 300, Window::BothWays).is_err());
        assert!(check_timestamp(0, i64::MAX, 300, Window::BothWays).is_err());
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
        let input = Input::post(&headers, b"payload", &uri, 0);
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
