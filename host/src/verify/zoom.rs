//! Zoom: `x-zm-signature: v0=<hex>`, HMAC-SHA256 of
//! `v0:{x-zm-request-timestamp}:{body}` keyed with the app's secret token;
//! timestamps outside the tolerance are refused both ways.
//!
//! A verified `endpoint.url_validation` event is answered
//! `200 {"plainToken": P, "encryptedToken": hex(HMAC-SHA256(secret, P))}`
//! (handshake `zoom-url-validation`), as Zoom documents. Zoom events carry
//! no delivery id, so a delivery returns a replay key instead.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use super::signing::unknown_handshake;
use super::{
    Handshake, Input, Outgoing, Refusal, ReplayKey, Scheme, Secret, SignError, Signed, Verdict,
    Window, check_timestamp, decode_hex, header_value, hex_hmac_sha256, mac,
    signature_and_timestamp, tolerance_secs,
};

pub(crate) const NAME: &str = "zoom";
const SIGNATURE: HeaderName = HeaderName::from_static("x-zm-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-zm-request-timestamp");
const VALIDATION: &str = "zoom-url-validation";

#[derive(Debug)]
pub struct Zoom {
    secrets: Vec<Secret>,
    tolerance: i64,
}

impl Zoom {
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Self {
        Zoom {
            secrets,
            tolerance: tolerance_secs(tolerance),
        }
    }
}

fn signed_parts<'a>(timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 4] {
    [b"v0:", timestamp.as_bytes(), b":", body]
}

/// The `plainToken` of an `endpoint.url_validation` event, if it is one.
fn plain_token(body: &[u8]) -> Option<Result<String, Refusal>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if value.get("event")?.as_str()? != "endpoint.url_validation" {
        return None;
    }
    Some(
        value
            .pointer("/payload/plainToken")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or(Refusal::MalformedBody(
                "a url_validation without `payload.plainToken`",
            )),
    )
}

impl Scheme for Zoom {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handshakes(&self) -> &'static [&'static str] {
        &[VALIDATION]
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let (signature, timestamp, ts) =
            signature_and_timestamp(input.headers, &SIGNATURE, &TIMESTAMP)?;
        let tag = signature
            .strip_prefix("v0=")
            .and_then(decode_hex)
            .ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        // Which secret matched is the one the validation answer is keyed with.
        let parts = signed_parts(timestamp, input.body);
        let matched = self
            .secrets
            .iter()
            .find(|key| mac::compute(mac::Algorithm::Sha256, key, &parts).matches(&tag));
        let Some(secret) = matched else {
            return Err(Refusal::BadSignature);
        };
        if let Some(token) = plain_token(input.body) {
            let token = token?;
            let encrypted = hex::encode(
                mac::compute(mac::Algorithm::Sha256, secret, &[token.as_bytes()]).as_bytes(),
            );
            return Ok(Verdict::Answer(Handshake::json(
                VALIDATION,
                &json!({"plainToken": token, "encryptedToken": encrypted}),
            )));
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
        let body = match out.handshake {
            None => Bytes::copy_from_slice(out.body),
            Some(VALIDATION) => Bytes::from(
                json!({
                    "payload": {"plainToken": format!("qgg8vlvZRS6UYooatFL8Aw{}", out.now)},
                    "event_ts": out.now.saturating_mul(1000),
                    "event": "endpoint.url_validation"
                })
                .to_string(),
            ),
            Some(other) => return Err(unknown_handshake(other, self.handshakes())),
        };
        let timestamp = out.now.to_string();
        let signature = hex_hmac_sha256(&self.secrets, &signed_parts(&timestamp, &body))?;
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP, header_value(&timestamp)?);
        headers.insert(SIGNATURE, header_value(&format!("v0={signature}"))?);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(Signed::post_body(out, headers, body))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, verdict_at};
    use super::*;

    fn zoom(secrets: Vec<Secret>) -> Zoom {
        Zoom::new(secrets, Duration::from_secs(300))
    }

    testutil::scheme_contract!(zoom, ["zoom-secret-token", "other-token"], covers_body);

    #[test]
    fn url_validation_is_answered_with_the_encrypted_token() {
        let scheme = zoom(vec![Secret::from("old"), Secret::from("ZOOM_SECRET")]);
        let signer = zoom(vec![Secret::from("ZOOM_SECRET")]);
        let uri = testutil::URI.parse().unwrap();
        let request = signer
            .sign_request(&Outgoing::new(b"", &uri, NOW).with_handshake(VALIDATION))
            .unwrap();
        let Ok(Verdict::Answer(answer)) = verdict_at(&scheme, &request.headers, &request.body, NOW)
        else {
            panic!("answered");
        };
        assert_eq!(
            (answer.kind, answer.status, answer.content_type),
            ("zoom-url-validation", 200, "application/json")
        );
        let plain = format!("qgg8vlvZRS6UYooatFL8Aw{NOW}");
        // Zoom's docs: crypto.createHmac('sha256', ZOOM_WEBHOOK_SECRET_TOKEN)
        // .update(plainToken).digest('hex'), keyed with the secret that
        // signed the request.
        let want = hex::encode(
            mac::compute(
                mac::Algorithm::Sha256,
                &Secret::from("ZOOM_SECRET"),
                &[plain.as_bytes()],
            )
            .as_bytes(),
        );
        let got: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(got, json!({"plainToken": plain, "encryptedToken": want}));
    }

    #[test]
    fn an_unsigned_validation_is_refused() {
        let scheme = zoom(vec![Secret::from("ZOOM_SECRET")]);
        let body = br#"{"event":"endpoint.url_validation","payload":{"plainToken":"x"}}"#;
        let headers = testutil::headers(&[
            ("x-zm-request-timestamp", &NOW.to_string()),
            ("x-zm-signature", &format!("v0={}", "00".repeat(32))),
        ]);
        assert_eq!(
            verdict_at(&scheme, &headers, body, NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn deliveries_carry_a_replay_key() {
        let scheme = zoom(vec![Secret::from("s")]);
        let headers = scheme
            .sign(b"{}", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        assert!(matches!(
            verdict_at(&scheme, &headers, b"{}", NOW),
            Ok(Verdict::Deliver {
                signed_id: None,
                replay: Some(ReplayKey { expires, .. })
            }) if expires == NOW + 300
        ));
    }
}
