//! Mailgun: the signature is inside the JSON body,
//! `{"signature": {"timestamp", "token", "signature"}, "event-data": …}`,
//! where `signature` is the hex HMAC-SHA256 of `timestamp + token` keyed
//! with the HTTP webhook signing key. The body itself is not signed, so the
//! token is what identifies a delivery: a delivery returns it as its
//! replay key and the host refuses a second use inside the window.
//! Timestamps outside the tolerance are refused both ways.

use std::time::Duration;

use serde::Deserialize;

use super::{
    Input, Outgoing, Refusal, ReplayKey, Scheme, Secret, SignError, Signed, Verdict, Window,
    check_timestamp, decode_hex, hex_hmac_sha256, mac, parse_unix_seconds, tolerance_secs,
};

pub(crate) const NAME: &str = "mailgun";

#[derive(Debug)]
pub struct Mailgun {
    secrets: Vec<Secret>,
    tolerance: i64,
}

impl Mailgun {
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Self {
        Mailgun {
            secrets,
            tolerance: tolerance_secs(tolerance),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    signature: Signature,
}

#[derive(Deserialize)]
struct Signature {
    timestamp: String,
    token: String,
    signature: String,
}

impl Scheme for Mailgun {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let envelope: Envelope = serde_json::from_slice(input.body).map_err(|_| {
            Refusal::MalformedBody("no `signature` object with timestamp, token and signature")
        })?;
        let sig = envelope.signature;
        let ts = parse_unix_seconds(&sig.timestamp).ok_or(Refusal::MalformedBody(
            "`signature.timestamp` is not Unix seconds",
        ))?;
        let tag = decode_hex(&sig.signature)
            .ok_or(Refusal::MalformedBody("`signature.signature` is not hex"))?;
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        if !mac::any_key_matches(
            mac::Algorithm::Sha256,
            &self.secrets,
            &[sig.timestamp.as_bytes(), sig.token.as_bytes()],
            &[tag],
        ) {
            return Err(Refusal::BadSignature);
        }
        Ok(Verdict::Deliver {
            signed_id: None,
            replay: Some(ReplayKey::new(
                NAME,
                &[sig.token.as_bytes()],
                ts.saturating_add(self.tolerance),
            )),
        })
    }

    /// Wraps `body` (the `event-data`, JSON) in a signed envelope; the
    /// token is derived from the time and body.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        use sha2::{Digest, Sha256};
        if let Some(kind) = out.handshake {
            return Err(super::signing::unknown_handshake(kind, &[]));
        }
        let timestamp = out.now.to_string();
        let token = hex::encode(
            &Sha256::new()
                .chain_update(&timestamp)
                .chain_update(out.body)
                .finalize()[..25],
        );
        let signature = hex_hmac_sha256(&self.secrets, &[timestamp.as_bytes(), token.as_bytes()])?;
        let event: serde_json::Value =
            serde_json::from_slice(out.body).unwrap_or(serde_json::Value::Null);
        let envelope = serde_json::json!({
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": event,
        });
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(Signed::post_body(out, headers, envelope.to_string().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, verdict_at};
    use super::*;

    fn mailgun(key: &str) -> Mailgun {
        Mailgun::new(vec![Secret::from(key)], Duration::from_secs(300))
    }

    fn envelope(ts: &str, token: &str, signature: &str) -> Vec<u8> {
        serde_json::json!({
            "signature": {"timestamp": ts, "token": token, "signature": signature},
            "event-data": {"event": "delivered"}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_signed_envelope_verifies_and_its_token_is_the_replay_key() {
        let scheme = mailgun("key-3ax6xnjp29jd6fds4gc373sgvjxteol0");
        let uri = testutil::URI.parse().unwrap();
        let signed = scheme
            .sign_request(&Outgoing::new(br#"{"event":"delivered"}"#, &uri, NOW))
            .unwrap();
        let verdict = verdict_at(&scheme, &signed.headers, &signed.body, NOW).unwrap();
        let Verdict::Deliver {
            signed_id: None,
            replay: Some(key),
        } = verdict
        else {
            panic!("{verdict:?}");
        };
        // A different event-data with the same token is the same replay key:
        // the body is not what Mailgun signs.
        let mut other: serde_json::Value = serde_json::from_slice(&signed.body).unwrap();
        other["event-data"] = serde_json::json!({"event": "failed"});
        let again =
            verdict_at(&scheme, &signed.headers, other.to_string().as_bytes(), NOW).unwrap();
        assert_eq!(
            again,
            Verdict::Deliver {
                signed_id: None,
                replay: Some(key)
            }
        );
    }

    #[test]
    fn wrong_key_stale_and_malformed_are_refused() {
        let ts = NOW.to_string();
        let sig = hex_hmac_sha256(&[Secret::from("k")], &[ts.as_bytes(), b"tok"]).unwrap();
        let body = envelope(&ts, "tok", &sig);
        let h = http::HeaderMap::new();
        assert!(verdict_at(&mailgun("k"), &h, &body, NOW).is_ok());
        assert_eq!(
            verdict_at(&mailgun("other"), &h, &body, NOW),
            Err(Refusal::BadSignature)
        );
        assert!(matches!(
            verdict_at(&mailgun("k"), &h, &body, NOW + 301),
            Err(Refusal::TimestampOutsideTolerance { .. })
        ));
        assert_eq!(
            verdict_at(&mailgun("k"), &h, &envelope(&ts, "tok2", &sig), NOW),
            Err(Refusal::BadSignature)
        );
        for bad in [&b"{}"[..], b"[]", &envelope("soon", "tok", &sig)] {
            assert!(matches!(
                verdict_at(&mailgun("k"), &h, bad, NOW),
                Err(Refusal::MalformedBody(_))
            ));
        }
    }
}
