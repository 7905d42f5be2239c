//! Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>`,
//! HMAC-SHA256 of message id + timestamp + body, keyed with the
//! subscription's secret. The timestamp is RFC 3339 and must be within the
//! tolerance (default 10 minutes, Twitch's own advice) both ways.
//!
//! By `Twitch-Eventsub-Message-Type`:
//! - `notification`: a delivery; the signed message id is its id.
//! - `webhook_callback_verification`: answered `200 text/plain` with the
//!   body's `challenge` (handshake `twitch-verification`).
//! - `revocation`: answered `204` (handshake `twitch-revocation`): Twitch
//!   has ended the subscription; the host logs and counts it.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use super::signing::unknown_handshake;
use super::{
    Handshake, Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, Window,
    check_timestamp, decode_hex, header_value, hex_hmac_sha256, mac, required_header,
    tolerance_secs,
};

pub(crate) const NAME: &str = "twitch";
const ID: HeaderName = HeaderName::from_static("twitch-eventsub-message-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("twitch-eventsub-message-timestamp");
const SIGNATURE: HeaderName = HeaderName::from_static("twitch-eventsub-message-signature");
const TYPE: HeaderName = HeaderName::from_static("twitch-eventsub-message-type");
const VERIFICATION: &str = "twitch-verification";
const REVOCATION: &str = "twitch-revocation";
/// Twitch: "make sure the message isn't more than 10 minutes old".
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(10 * 60);

#[derive(Debug)]
pub struct Twitch {
    secrets: Vec<Secret>,
    tolerance: i64,
}

impl Twitch {
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Self {
        Twitch {
            secrets,
            tolerance: tolerance_secs(tolerance),
        }
    }
}

/// RFC 3339 (`2019-11-16T10:11:12.634234626Z`) to Unix seconds.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339(text).ok()?;
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

fn signed_parts<'a>(id: &'a str, timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 3] {
    [id.as_bytes(), timestamp.as_bytes(), body]
}

impl Scheme for Twitch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handshakes(&self) -> &'static [&'static str] {
        &[VERIFICATION, REVOCATION]
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let h = input.headers;
        let signature = required_header(
            h,
            &SIGNATURE,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?;
        let id = required_header(h, &ID, Refusal::MissingMessageId, Refusal::MissingMessageId)?;
        if id.is_empty() {
            return Err(Refusal::MissingMessageId(ID));
        }
        let timestamp = required_header(
            h,
            &TIMESTAMP,
            Refusal::MissingTimestamp,
            Refusal::MalformedTimestamp,
        )?;
        let ts = parse_rfc3339(timestamp).ok_or(Refusal::MalformedTimestamp(TIMESTAMP))?;
        let tag = signature
            .strip_prefix("sha256=")
            .and_then(decode_hex)
            .ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        if !mac::any_key_matches(
            mac::Algorithm::Sha256,
            &self.secrets,
            &signed_parts(id, timestamp, input.body),
            &[tag],
        ) {
            return Err(Refusal::BadSignature);
        }
        let kind = h.get(TYPE).and_then(|v| v.to_str().ok());
        match kind {
            Some("webhook_callback_verification") => {
                let challenge = super::body_string_field(input.body, "challenge")
                    .ok_or(Refusal::MalformedBody("a verification without `challenge`"))?;
                Ok(Verdict::Answer(Handshake::text(VERIFICATION, challenge)))
            }
            Some("revocation") => Ok(Verdict::Answer(Handshake::new(
                REVOCATION,
                204,
                "",
                Bytes::new(),
            ))),
            _ => Ok(Verdict::Deliver {
                signed_id: Some(id.to_owned()),
                replay: None,
            }),
        }
    }

    /// The message id is derived from the body and time, as
    /// Standard Webhooks' is; handshakes send Twitch's documented bodies.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let (kind, body) = match out.handshake {
            None => ("notification", Bytes::copy_from_slice(out.body)),
            Some(VERIFICATION) => (
                "webhook_callback_verification",
                Bytes::from(
                    json!({
                        "challenge": format!("pogchamp-kappa-{}", out.now),
                        "subscription": {"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
                                         "status": "webhook_callback_verification_pending",
                                         "type": "channel.follow", "version": "2"}
                    })
                    .to_string(),
                ),
            ),
            Some(REVOCATION) => (
                "revocation",
                Bytes::from(
                    json!({"subscription": {"id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
                                            "status": "authorization_revoked",
                                            "type": "channel.follow", "version": "2"}})
                    .to_string(),
                ),
            ),
            Some(other) => return Err(unknown_handshake(other, self.handshakes())),
        };
        let timestamp = humantime::format_rfc3339_seconds(
            UNIX_EPOCH + Duration::from_secs(u64::try_from(out.now).unwrap_or(0)),
        )
        .to_string();
        let id = {
            use sha2::{Digest, Sha256};
            let digest = Sha256::new()
                .chain_update(timestamp.as_bytes())
                .chain_update(&body)
                .finalize();
            let h = hex::encode(&digest[..16]);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        };
        let signature = hex_hmac_sha256(&self.secrets, &signed_parts(&id, &timestamp, &body))?;
        let mut headers = HeaderMap::new();
        headers.insert(ID, header_value(&id)?);
        headers.insert(TIMESTAMP, header_value(&timestamp)?);
        headers.insert(SIGNATURE, header_value(&format!("sha256={signature}"))?);
        headers.insert(TYPE, HeaderValue::from_static(kind));
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(Signed::post_body(out, headers, body))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verdict_at, verify_at};
    use super::*;

    fn twitch(secrets: Vec<Secret>) -> Twitch {
        Twitch::new(secrets, DEFAULT_TOLERANCE)
    }

    testutil::scheme_contract!(twitch, ["s3cre7-first", "s3cre7-second"], covers_body);

    fn handshake(scheme: &Twitch, kind: &str) -> Signed {
        let uri = testutil::URI.parse().unwrap();
        scheme
            .sign_request(&Outgoing::new(b"", &uri, NOW).with_handshake(kind))
            .unwrap()
    }

    #[test]
    fn a_notification_is_delivered_with_its_signed_message_id() {
        let scheme = twitch(vec![Secret::from("s")]);
        let headers = scheme
            .sign(b"{}", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        let id = headers[&ID].to_str().unwrap().to_owned();
        assert_eq!(
            verdict_at(&scheme, &headers, b"{}", NOW),
            Ok(Verdict::Deliver {
                signed_id: Some(id),
                replay: None
            })
        );
        let other = signed_with(&scheme, b"{}", "twitch-eventsub-message-id", Some("other"));
        assert_eq!(
            verify_at(&scheme, &other, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn verification_is_answered_with_the_challenge_as_text() {
        let scheme = twitch(vec![Secret::from("s")]);
        let request = handshake(&scheme, VERIFICATION);
        let Ok(Verdict::Answer(answer)) = verdict_at(&scheme, &request.headers, &request.body, NOW)
        else {
            panic!("answered");
        };
        assert_eq!(
            (answer.kind, answer.status, answer.content_type),
            ("twitch-verification", 200, "text/plain")
        );
        assert_eq!(answer.body, format!("pogchamp-kappa-{NOW}"));
        // An unsigned challenge is not answered.
        let forged = twitch(vec![Secret::from("other")]);
        assert_eq!(
            verdict_at(&forged, &request.headers, &request.body, NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn revocation_is_answered_204() {
        let scheme = twitch(vec![Secret::from("s")]);
        let request = handshake(&scheme, REVOCATION);
        let Ok(Verdict::Answer(answer)) = verdict_at(&scheme, &request.headers, &request.body, NOW)
        else {
            panic!("answered");
        };
        assert_eq!((answer.kind, answer.status), ("twitch-revocation", 204));
        assert!(answer.body.is_empty());
    }

    #[test]
    fn the_window_is_ten_minutes_both_ways() {
        let scheme = twitch(vec![Secret::from("s")]);
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW - 600, &scheme, b"{}", NOW),
            Ok(())
        );
        assert!(matches!(
            testutil::deliver(&scheme, b"{}", NOW - 601, &scheme, b"{}", NOW),
            Err(Refusal::TimestampOutsideTolerance { age: 601, .. })
        ));
        assert!(matches!(
            testutil::deliver(&scheme, b"{}", NOW + 601, &scheme, b"{}", NOW),
            Err(Refusal::TimestampOutsideTolerance { age: -601, .. })
        ));
    }

    // Twitch's docs ("Verifying the event message") build the message from
    // the three headers and the raw body; this vector was computed with
    // Python's hmac module over the strings below, nanosecond timestamp
    // included, as Twitch sends it.
    #[test]
    fn nanosecond_timestamps_are_signed_as_sent() {
        let scheme = twitch(vec![Secret::from("5f1a6e7cd2e1f7b1b8d3")]);
        let ts = "2023-11-14T22:13:20.634234626Z";
        let id = "e76c6bd4-55c9-4987-8304-da1588d8988b";
        let body = br#"{"event":{}}"#;
        let sig = hex::encode(
            mac::compute(
                mac::Algorithm::Sha256,
                &Secret::from("5f1a6e7cd2e1f7b1b8d3"),
                &[id.as_bytes(), ts.as_bytes(), body],
            )
            .as_bytes(),
        );
        let headers = testutil::headers(&[
            ("twitch-eventsub-message-id", id),
            ("twitch-eventsub-message-timestamp", ts),
            (
                "twitch-eventsub-message-signature",
                &format!("sha256={sig}"),
            ),
            ("twitch-eventsub-message-type", "notification"),
        ]);
        assert_eq!(verify_at(&scheme, &headers, body, NOW), Ok(()));
        let bad = testutil::headers(&[
            ("twitch-eventsub-message-id", id),
            ("twitch-eventsub-message-timestamp", "yesterday"),
            (
                "twitch-eventsub-message-signature",
                &format!("sha256={sig}"),
            ),
        ]);
        assert_eq!(
            verify_at(&scheme, &bad, body, NOW),
            Err(Refusal::MalformedTimestamp(name(
                "twitch-eventsub-message-timestamp"
            )))
        );
    }
}
