//! SendGrid (Twilio) signed Event Webhook: ECDSA P-256 with SHA-256,
//! `X-Twilio-Email-Event-Webhook-Signature: <base64 DER>` over
//! `X-Twilio-Email-Event-Webhook-Timestamp` followed by the body.
//!
//! `public_key` is the verification key as SendGrid's settings page shows
//! it: base64 of the DER SubjectPublicKeyInfo (a PEM block is accepted
//! too). Timestamps outside the tolerance are refused both ways; SendGrid
//! batches carry no single delivery id, so a delivery returns a replay key.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

use super::ed25519::InvalidPublicKey;
use super::{
    Input, Outgoing, Refusal, ReplayKey, Scheme, SignError, Signed, Verdict, Window,
    check_timestamp, decode_base64, header_value, signature_and_timestamp, tolerance_secs,
};

pub(crate) const NAME: &str = "sendgrid";
const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-timestamp");
pub(crate) const KEY_FORMAT: &str =
    "the base64 ECDSA verification key from SendGrid's signed Event Webhook settings";

#[derive(Debug)]
pub struct Sendgrid {
    keys: Vec<VerifyingKey>,
    tolerance: i64,
}

fn parse_key(text: &str) -> Option<VerifyingKey> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text).ok();
    }
    let der = STANDARD.decode(text).ok()?;
    VerifyingKey::from_public_key_der(&der).ok()
}

impl Sendgrid {
    pub fn new(public_keys: &[String], tolerance: Duration) -> Result<Self, InvalidPublicKey> {
        let keys = public_keys
            .iter()
            .enumerate()
            .map(|(index, text)| {
                parse_key(text).ok_or(InvalidPublicKey {
                    index,
                    expected: KEY_FORMAT,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Sendgrid {
            keys,
            tolerance: tolerance_secs(tolerance),
        })
    }
}

impl Scheme for Sendgrid {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let (signature, timestamp, ts) =
            signature_and_timestamp(input.headers, &SIGNATURE, &TIMESTAMP)?;
        let der = decode_base64(signature)
            .and_then(|der| DerSignature::from_bytes(&der).ok())
            .ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        let message = [timestamp.as_bytes(), input.body].concat();
        if !self
            .keys
            .iter()
            .any(|key| key.verify(&message, &der).is_ok())
        {
            return Err(Refusal::BadSignature);
        }
        Ok(Verdict::Deliver {
            signed_id: None,
            replay: Some(ReplayKey::new(
                NAME,
                &[timestamp.as_bytes(), signature.as_bytes()],
                ts.saturating_add(self.tolerance),
            )),
        })
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let key = out.private_key()?.p256()?;
        let timestamp = out.now.to_string();
        let message = [timestamp.as_bytes(), out.body].concat();
        let signature: p256::ecdsa::Signature = key.sign(&message);
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE,
            header_value(&STANDARD.encode(signature.to_der().as_bytes()))?,
        );
        headers.insert(TIMESTAMP, header_value(&timestamp)?);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::PrivateKey;
    use super::super::testutil::{self, NOW, verify_at};
    use super::*;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn published_vector_verifies_and_the_wrong_key_does_not() {
        for v in testutil::vectors(NAME) {
            let body = v["body"].as_str().unwrap().as_bytes();
            let now = v["now"].as_i64().unwrap();
            let headers = testutil::vector_headers(&v);
            let good =
                Sendgrid::new(&[v["public_key"].as_str().unwrap().into()], FIVE_MINUTES).unwrap();
            assert_eq!(verify_at(&good, &headers, body, now), Ok(()));
            let wrong = Sendgrid::new(
                &[v["wrong_public_key"].as_str().unwrap().into()],
                FIVE_MINUTES,
            )
            .unwrap();
            assert_eq!(
                verify_at(&wrong, &headers, body, now),
                Err(Refusal::BadSignature)
            );
            let mut tampered = body.to_vec();
            tampered[2] ^= 1;
            assert_eq!(
                verify_at(&good, &headers, &tampered, now),
                Err(Refusal::BadSignature)
            );
            assert!(matches!(
                verify_at(&good, &headers, body, now + 301),
                Err(Refusal::TimestampOutsideTolerance { .. })
            ));
        }
    }

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::P256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap())
    }

    fn public(key: &PrivateKey) -> String {
        use p256::pkcs8::EncodePublicKey as _;
        let verifying = key.p256().unwrap().verifying_key();
        STANDARD.encode(verifying.to_public_key_der().unwrap().as_bytes())
    }

    #[test]
    fn what_it_signs_verifies_with_rotation() {
        let (old, new) = (key(1), key(2));
        let scheme = Sendgrid::new(&[public(&new), public(&old)], FIVE_MINUTES).unwrap();
        let uri = testutil::URI.parse().unwrap();
        let body = br#"[{"email":"a@example.com","event":"processed"}]"#;
        let request = scheme
            .sign_request(&Outgoing::new(body, &uri, NOW).with_key(&old))
            .unwrap();
        assert_eq!(verify_at(&scheme, &request.headers, body, NOW), Ok(()));
        let only_new = Sendgrid::new(&[public(&new)], FIVE_MINUTES).unwrap();
        assert_eq!(
            verify_at(&only_new, &request.headers, body, NOW),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            scheme.sign_request(&Outgoing::new(body, &uri, NOW)),
            Err(SignError::NeedsPrivateKey)
        );
    }

    #[test]
    fn bad_keys_and_signatures_are_refused() {
        assert_eq!(
            Sendgrid::new(&["bm90IGEga2V5".into()], FIVE_MINUTES)
                .unwrap_err()
                .index,
            0
        );
        let scheme = Sendgrid::new(&[public(&key(1))], FIVE_MINUTES).unwrap();
        let headers = testutil::headers(&[
            ("x-twilio-email-event-webhook-signature", "AAAA"),
            ("x-twilio-email-event-webhook-timestamp", &NOW.to_string()),
        ]);
        assert_eq!(
            verify_at(&scheme, &headers, b"[]", NOW),
            Err(Refusal::MalformedSignature(SIGNATURE))
        );
    }
}
