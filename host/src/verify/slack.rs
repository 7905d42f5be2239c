//! Slack: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 of `"v0:{ts}:{body}"`
//! where `ts` is `X-Slack-Request-Timestamp`. Timestamps too far in the past
//! or the future are refused, as Slack's SDKs do.
//!
//! A verified Events API `url_verification` is answered
//! `200 {"challenge": …}` (handshake `slack-url-verification`). An event
//! callback's `event_id` (inside the signed body) is its delivery id; other
//! requests (slash commands, interactivity forms) carry a replay key.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use super::mac::{self, Algorithm};
use super::signing::unknown_handshake;
use super::{
    Handshake, Input, Outgoing, Refusal, ReplayKey, Scheme, Secret, SignError, Signed, Verdict,
    Window, body_string_field, check_timestamp, decode_hex, header_value, signature_and_timestamp,
    tolerance_secs,
};

pub(crate) const NAME: &str = "slack";
const SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");
const VERSION: &str = "v0";
const URL_VERIFICATION: &str = "slack-url-verification";

#[derive(Debug)]
pub struct Slack {
    secrets: Vec<Secret>,
    tolerance: i64,
}

impl Slack {
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Self {
        Slack {
            secrets,
            tolerance: tolerance_secs(tolerance),
        }
    }
}

/// The signed message; the timestamp is signed as sent, as Slack's SDKs do.
fn signed_parts<'a>(timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 5] {
    [VERSION.as_bytes(), b":", timestamp.as_bytes(), b":", body]
}

/// The answer to a `url_verification` body, if it is one.
fn url_verification(body: &[u8]) -> Option<Result<Verdict, Refusal>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if value.get("type")?.as_str()? != "url_verification" {
        return None;
    }
    Some(
        match value.get("challenge").and_then(serde_json::Value::as_str) {
            Some(challenge) => Ok(Verdict::Answer(Handshake::json(
                URL_VERIFICATION,
                &serde_json::json!({ "challenge": challenge }),
            ))),
            None => Err(Refusal::MalformedBody(
                "a url_verification without `challenge`",
            )),
        },
    )
}

impl Scheme for Slack {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handshakes(&self) -> &'static [&'static str] {
        &[URL_VERIFICATION]
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let (signature, timestamp, ts) =
            signature_and_timestamp(input.headers, &SIGNATURE, &TIMESTAMP)?;
        let tag = signature
            .strip_prefix("v0=")
            .and_then(decode_hex)
            .ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        if mac::any_key_matches(
            Algorithm::Sha256,
            &self.secrets,
            &signed_parts(timestamp, input.body),
            &[tag],
        ) {
            if let Some(answer) = url_verification(input.body) {
                return answer;
            }
            // Events carry a signed `event_id` (Slack keeps it across
            // retries); forms do not: for them a replay of the same
            // signature and timestamp is what the host's cache refuses.
            if let Some(id) = body_string_field(input.body, "event_id") {
                return Ok(Verdict::Deliver {
                    signed_id: Some(id),
                    replay: None,
                });
            }
            Ok(Verdict::Deliver {
                signed_id: None,
                replay: Some(ReplayKey::new(
                    NAME,
                    &[timestamp.as_bytes(), signature.as_bytes()],
                    ts.saturating_add(self.tolerance),
                )),
            })
        } else {
            Err(Refusal::BadSignature)
        }
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        // Slack's documented url_verification body.
        let handshake_body;
        let body = match out.handshake {
            None => out.body,
            Some(URL_VERIFICATION) => {
                handshake_body = serde_json::json!({
                    "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
                    "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                    "type": "url_verification"
                })
                .to_string();
                handshake_body.as_bytes()
            }
            Some(other) => return Err(unknown_handshake(other, self.handshakes())),
        };
        let now = out.now;
        let key = self.secrets.first().ok_or(SignError::NoSecret)?;
        let timestamp = now.to_string();
        let tag = mac::compute(Algorithm::Sha256, key, &signed_parts(&timestamp, body));
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP, header_value(&timestamp)?);
        headers.insert(
            SIGNATURE,
            header_value(&format!("{VERSION}={}", hex::encode(tag.as_bytes())))?,
        );
        Ok(Signed::post_body(
            out,
            headers,
            bytes::Bytes::copy_from_slice(body),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verify_at};
    use super::*;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    fn slack(secrets: Vec<Secret>) -> Slack {
        Slack::new(secrets, FIVE_MINUTES)
    }

    testutil::scheme_contract!(
        slack,
        ["8f742231b10e8888abcd99yyyzzz85a5", "another-signing-secret"],
        covers_body
    );

    #[test]
    fn published_vector_verifies_at_its_time() {
        for v in testutil::vectors(NAME) {
            let scheme = slack(vec![Secret::from(v["secret"].as_str().unwrap())]);
            let body = v["body"].as_str().unwrap().as_bytes();
            let now = v["now"].as_i64().unwrap();
            let headers = testutil::vector_headers(&v);
            assert_eq!(verify_at(&scheme, &headers, body, now), Ok(()));
            assert_eq!(
                scheme
                    .sign(body, &testutil::URI.parse().unwrap(), now)
                    .unwrap(),
                headers
            );
            // The same vector checked against the wall clock is long stale.
            assert_eq!(
                verify_at(&scheme, &headers, body, now + 900),
                Err(Refusal::TimestampOutsideTolerance {
                    age: 900,
                    tolerance: 300
                })
            );
        }
    }

    #[test]
    fn missing_headers() {
        let scheme = slack(vec![Secret::from("s")]);
        let no_sig = signed_with(&scheme, b"{}", "x-slack-signature", None);
        assert_eq!(
            verify_at(&scheme, &no_sig, b"{}", NOW),
            Err(Refusal::MissingSignature(name("x-slack-signature")))
        );
        let no_ts = signed_with(&scheme, b"{}", "x-slack-request-timestamp", None);
        assert_eq!(
            verify_at(&scheme, &no_ts, b"{}", NOW),
            Err(Refusal::MissingTimestamp(name("x-slack-request-timestamp")))
        );
    }

    #[test]
    fn malformed_headers() {
        let scheme = slack(vec![Secret::from("s")]);
        for bad in ["v1=abcd", "abcd", "v0=xyz", "v0="] {
            let headers = signed_with(&scheme, b"{}", "x-slack-signature", Some(bad));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(Refusal::MalformedSignature(name("x-slack-signature"))),
                "{bad:?}"
            );
        }
        for bad in ["", "soon", "1.5e9", "-1"] {
            let headers = signed_with(&scheme, b"{}", "x-slack-request-timestamp", Some(bad));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(Refusal::MalformedTimestamp(name(
                    "x-slack-request-timestamp"
                ))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stale_timestamp_is_refused() {
        let scheme = slack(vec![Secret::from("s")]);
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW - 900, &scheme, b"{}", NOW),
            Err(Refusal::TimestampOutsideTolerance {
                age: 900,
                tolerance: 300
            })
        );
    }

    #[test]
    fn future_timestamp_is_refused() {
        let scheme = slack(vec![Secret::from("s")]);
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW + 900, &scheme, b"{}", NOW),
            Err(Refusal::TimestampOutsideTolerance {
                age: -900,
                tolerance: 300
            })
        );
    }

    #[test]
    fn configured_tolerance_applies() {
        let scheme = Slack::new(vec![Secret::from("s")], Duration::from_secs(3600));
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW - 900, &scheme, b"{}", NOW),
            Ok(())
        );
    }

    #[test]
    fn a_delivery_carries_a_replay_key_that_expires_with_its_window() {
        let scheme = slack(vec![Secret::from("s")]);
        let uri = testutil::URI.parse().unwrap();
        let headers = scheme.sign(b"{}", &uri, NOW).unwrap();
        let Ok(Verdict::Deliver {
            signed_id: None,
            replay: Some(key),
        }) = testutil::verdict_at(&scheme, &headers, b"{}", NOW)
        else {
            panic!("expected a replay key");
        };
        assert_eq!(key.expires, NOW + 300);
        let again = testutil::verdict_at(&scheme, &headers, b"{}", NOW + 10).unwrap();
        let later = scheme.sign(b"{}", &uri, NOW + 1).unwrap();
        let other = testutil::verdict_at(&scheme, &later, b"{}", NOW + 1).unwrap();
        let key_of = |v: Verdict| match v {
            Verdict::Deliver { replay, .. } => replay,
            Verdict::Answer(_) => None,
        };
        assert_eq!(key_of(again), Some(key.clone()));
        assert_ne!(key_of(other), Some(key));
    }

    #[test]
    fn url_verification_is_answered_with_the_challenge() {
        let scheme = slack(vec![Secret::from("s")]);
        let uri = testutil::URI.parse().unwrap();
        let request = scheme
            .sign_request(&Outgoing::new(b"", &uri, NOW).with_handshake(URL_VERIFICATION))
            .unwrap();
        let Ok(Verdict::Answer(answer)) =
            testutil::verdict_at(&scheme, &request.headers, &request.body, NOW)
        else {
            panic!("answered");
        };
        assert_eq!(
            (answer.kind, answer.status, answer.content_type),
            ("slack-url-verification", 200, "application/json")
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&answer.body).unwrap(),
            serde_json::json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
        );
        let forged = slack(vec![Secret::from("other")]);
        assert_eq!(
            testutil::verdict_at(&forged, &request.headers, &request.body, NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn an_event_callback_is_delivered_with_its_signed_event_id() {
        let scheme = slack(vec![Secret::from("s")]);
        let body = br#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{}}"#;
        let headers = scheme
            .sign(body, &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        assert_eq!(
            testutil::verdict_at(&scheme, &headers, body, NOW),
            Ok(Verdict::Deliver {
                signed_id: Some("Ev08MFMKH6".into()),
                replay: None
            })
        );
    }

    #[test]
    fn timestamp_is_signed() {
        let scheme = slack(vec![Secret::from("s")]);
        let headers = signed_with(
            &scheme,
            b"{}",
            "x-slack-request-timestamp",
            Some(&(NOW - 1).to_string()),
        );
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
    }
}
