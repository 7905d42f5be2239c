//! Discord interactions: `X-Signature-Ed25519: <hex>` over
//! `X-Signature-Timestamp` followed by the body, verified with the
//! application's public key (hex, from the developer portal).
//!
//! A verified `{"type":1}` PING is answered `200 {"type":1}` by the host
//! (handshake `discord-ping`): Discord sends it when the endpoint URL is
//! saved, and again at random to check that bad signatures are refused.
//! Everything else is an interaction whose `id` (inside the signed body) is
//! the delivery id. Timestamps outside the tolerance are refused both ways.

use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use http::{HeaderMap, HeaderName};
use serde_json::json;

use super::ed25519;
use super::signing::unknown_handshake;
use super::{
    Handshake, Input, Outgoing, Refusal, Scheme, SignError, Signed, Verdict, Window,
    body_string_field, check_timestamp, decode_hex, header_value, signature_and_timestamp,
    tolerance_secs,
};

pub(crate) const NAME: &str = "discord";
const SIGNATURE: HeaderName = HeaderName::from_static("x-signature-ed25519");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-signature-timestamp");
const PING: &str = "discord-ping";
/// What `public_key` must look like, for configuration errors.
pub(crate) const KEY_FORMAT: &str = "64 hex digits, the application's public key";

#[derive(Debug)]
pub struct Discord {
    keys: Vec<VerifyingKey>,
    tolerance: i64,
}

impl Discord {
    /// `public_keys` are hex, as the developer portal shows them.
    pub fn new(
        public_keys: &[String],
        tolerance: Duration,
    ) -> Result<Self, ed25519::InvalidPublicKey> {
        Ok(Discord {
            keys: ed25519::parse_keys(public_keys, |t| hex::decode(t).ok(), KEY_FORMAT)?,
            tolerance: tolerance_secs(tolerance),
        })
    }
}

/// Whether a body is an interaction of type 1 (PING).
fn is_ping(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("type").and_then(serde_json::Value::as_u64) == Some(1))
}

impl Scheme for Discord {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handshakes(&self) -> &'static [&'static str] {
        &[PING]
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let (signature, timestamp, ts) =
            signature_and_timestamp(input.headers, &SIGNATURE, &TIMESTAMP)?;
        let signature: [u8; 64] = decode_hex(signature)
            .and_then(|s| s.try_into().ok())
            .ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        if !ed25519::any_key_verifies(&self.keys, &[timestamp.as_bytes(), input.body], &signature) {
            return Err(Refusal::BadSignature);
        }
        if is_ping(input.body) {
            return Ok(Verdict::Answer(Handshake::json(PING, &json!({"type": 1}))));
        }
        Ok(Verdict::Deliver {
            signed_id: body_string_field(input.body, "id"),
            replay: None,
        })
    }

    /// Handshake `discord-ping` sends `{"type":1}`.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let body: &[u8] = match out.handshake {
            None => out.body,
            Some(PING) => br#"{"type":1}"#,
            Some(other) => return Err(unknown_handshake(other, self.handshakes())),
        };
        let key = out.private_key()?.ed25519()?;
        let timestamp = out.now.to_string();
        let signature = ed25519::sign(key, &[timestamp.as_bytes(), body]);
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, header_value(&hex::encode(signature))?);
        headers.insert(TIMESTAMP, header_value(&timestamp)?);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
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
    use super::super::PrivateKey;
    use super::super::testutil::{self, NOW, name, verdict_at};
    use super::*;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    fn public_hex(key: &PrivateKey) -> String {
        hex::encode(key.ed25519().unwrap().verifying_key().as_bytes())
    }

    fn discord(keys: &[&PrivateKey]) -> Discord {
        let hex: Vec<String> = keys.iter().map(|k| public_hex(k)).collect();
        Discord::new(&hex, FIVE_MINUTES).unwrap()
    }

    fn signed(key: &PrivateKey, body: &[u8], at: i64, handshake: Option<&str>) -> Signed {
        let uri = testutil::URI.parse().unwrap();
        let mut out = Outgoing::new(body, &uri, at).with_key(key);
        out.handshake = handshake;
        discord(&[key]).sign_request(&out).unwrap()
    }

    fn verdict(scheme: &Discord, request: &Signed, now: i64) -> Result<Verdict, Refusal> {
        verdict_at(scheme, &request.headers, &request.body, now)
    }

    const INTERACTION: &[u8] = br#"{"id":"1234567890","type":2,"data":{"name":"hi"}}"#;

    #[test]
    fn signed_interaction_is_delivered_with_its_id() {
        let k = key(1);
        let request = signed(&k, INTERACTION, NOW, None);
        assert_eq!(
            verdict(&discord(&[&k]), &request, NOW),
            Ok(Verdict::Deliver {
                signed_id: Some("1234567890".into()),
                replay: None
            })
        );
    }

    #[test]
    fn ping_is_answered_with_type_1() {
        let k = key(1);
        let request = signed(&k, b"", NOW, Some(PING));
        assert_eq!(&request.body[..], br#"{"type":1}"#);
        let Ok(Verdict::Answer(answer)) = verdict(&discord(&[&k]), &request, NOW) else {
            panic!("a PING is answered");
        };
        assert_eq!(
            (answer.kind, answer.status, answer.content_type),
            ("discord-ping", 200, "application/json")
        );
        assert_eq!(&answer.body[..], br#"{"type":1}"#);
    }

    #[test]
    fn a_ping_with_a_bad_signature_is_refused_not_answered() {
        let request = signed(&key(2), b"", NOW, Some(PING));
        assert_eq!(
            verdict(&discord(&[&key(1)]), &request, NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn tampered_body_wrong_key_and_stale_timestamp_are_refused() {
        let k = key(1);
        let scheme = discord(&[&k]);
        let request = signed(&k, INTERACTION, NOW, None);
        assert_eq!(
            verdict_at(&scheme, &request.headers, b"{\"id\":\"1\"}", NOW),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verdict(&discord(&[&key(9)]), &request, NOW),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verdict(&scheme, &request, NOW + 301),
            Err(Refusal::TimestampOutsideTolerance {
                age: 301,
                tolerance: 300
            })
        );
        let mut moved = request.clone();
        moved
            .headers
            .insert(TIMESTAMP, (NOW + 1).to_string().parse().unwrap());
        assert_eq!(verdict(&scheme, &moved, NOW), Err(Refusal::BadSignature));
    }

    #[test]
    fn any_configured_key_may_match() {
        let (old, new) = (key(1), key(2));
        let request = signed(&old, INTERACTION, NOW, None);
        assert!(verdict(&discord(&[&new, &old]), &request, NOW).is_ok());
    }

    #[test]
    fn header_refusals() {
        let k = key(1);
        let scheme = discord(&[&k]);
        let good = signed(&k, INTERACTION, NOW, None);
        let cases = [
            (
                SIGNATURE,
                None,
                Refusal::MissingSignature(name("x-signature-ed25519")),
            ),
            (
                TIMESTAMP,
                None,
                Refusal::MissingTimestamp(name("x-signature-timestamp")),
            ),
            (
                SIGNATURE,
                Some("abcd"),
                Refusal::MalformedSignature(name("x-signature-ed25519")),
            ),
            (
                TIMESTAMP,
                Some("soon"),
                Refusal::MalformedTimestamp(name("x-signature-timestamp")),
            ),
        ];
        for (header, value, want) in cases {
            let mut request = good.clone();
            match value {
                Some(v) => {
                    request.headers.insert(header.clone(), v.parse().unwrap());
                }
                None => {
                    request.headers.remove(&header);
                }
            }
            assert_eq!(
                verdict(&scheme, &request, NOW),
                Err(want),
                "{header}: {value:?}"
            );
        }
    }

    #[test]
    fn signing_needs_an_ed25519_key() {
        let uri = testutil::URI.parse().unwrap();
        let scheme = discord(&[&key(1)]);
        assert_eq!(
            scheme.sign_request(&Outgoing::new(b"{}", &uri, NOW)),
            Err(SignError::NeedsPrivateKey)
        );
        let p256 = PrivateKey::P256(p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap());
        assert!(matches!(
            scheme.sign_request(&Outgoing::new(b"{}", &uri, NOW).with_key(&p256)),
            Err(SignError::WrongKeyType { .. })
        ));
        assert!(matches!(
            scheme.sign_request(
                &Outgoing::new(b"{}", &uri, NOW)
                    .with_key(&key(1))
                    .with_handshake("nope")
            ),
            Err(SignError::UnknownHandshake { .. })
        ));
    }

    #[test]
    fn bad_public_keys_are_refused_with_their_index() {
        let good = public_hex(&key(1));
        let err = Discord::new(&[good, "zz".into()], FIVE_MINUTES).unwrap_err();
        assert_eq!(err.index, 1);
    }
}
