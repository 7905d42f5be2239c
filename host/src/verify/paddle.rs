//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>…]`,
//! HMAC-SHA256 of `"{ts}:{body}"` keyed with the notification destination's
//! secret key. Any `h1` may match (Paddle sends one per secret while one
//! is rotated). The default tolerance is Paddle SDK's 5 seconds, both ways;
//! the event's `event_id` (inside the signed body) is the delivery id.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use super::{
    Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, Window,
    body_string_field, check_timestamp, decode_hex, header_value, hex_hmac_sha256, mac,
    parse_unix_seconds, required_header, tolerance_secs,
};

pub(crate) const NAME: &str = "paddle";
const SIGNATURE: HeaderName = HeaderName::from_static("paddle-signature");
/// `@paddle/paddle-node-sdk`'s `Webhooks.unmarshal` default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Paddle {
    secrets: Vec<Secret>,
    tolerance: i64,
}

impl Paddle {
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Self {
        Paddle {
            secrets,
            tolerance: tolerance_secs(tolerance),
        }
    }
}

fn signed_parts<'a>(ts: &'a str, body: &'a [u8]) -> [&'a [u8]; 3] {
    [ts.as_bytes(), b":", body]
}

impl Scheme for Paddle {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let value = required_header(
            input.headers,
            &SIGNATURE,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?;
        let mut timestamp = None;
        let mut h1 = Vec::new();
        for item in value.split(';') {
            let (key, val) = item
                .trim()
                .split_once('=')
                .ok_or(Refusal::MalformedSignature(SIGNATURE))?;
            match key {
                "ts" if timestamp.is_some() => return Err(Refusal::MalformedTimestamp(SIGNATURE)),
                "ts" => timestamp = Some(val),
                "h1" => h1.extend(decode_hex(val)),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(Refusal::MissingTimestamp(SIGNATURE))?;
        let ts = parse_unix_seconds(timestamp).ok_or(Refusal::MalformedTimestamp(SIGNATURE))?;
        if h1.is_empty() {
            return Err(Refusal::MalformedSignature(SIGNATURE));
        }
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        if !mac::any_key_matches(
            mac::Algorithm::Sha256,
            &self.secrets,
            &signed_parts(timestamp, input.body),
            &h1,
        ) {
            return Err(Refusal::BadSignature);
        }
        Ok(Verdict::Deliver {
            signed_id: body_string_field(input.body, "event_id"),
            replay: None,
        })
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let ts = out.now.to_string();
        let h1 = hex_hmac_sha256(&self.secrets, &signed_parts(&ts, out.body))?;
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, header_value(&format!("ts={ts};h1={h1}"))?);
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verdict_at, verify_at};
    use super::*;

    fn paddle(secrets: Vec<Secret>) -> Paddle {
        Paddle::new(secrets, DEFAULT_TOLERANCE)
    }

    testutil::scheme_contract!(
        paddle,
        ["pdl_ntfset_01gkpjp8bkh3ug1dcxbwzbfy2j", "pdl_ntfset_second"],
        covers_body
    );

    #[test]
    fn event_id_is_the_delivery_id_and_any_h1_may_match() {
        let scheme = paddle(vec![Secret::from("new")]);
        let body =
            br#"{"event_id":"evt_01h8bzakzx3hm2fmen703n5q45","event_type":"transaction.paid"}"#;
        let ts = NOW.to_string();
        let good = hex_hmac_sha256(&[Secret::from("new")], &signed_parts(&ts, body)).unwrap();
        let old = hex_hmac_sha256(&[Secret::from("old")], &signed_parts(&ts, body)).unwrap();
        let headers = signed_with(
            &scheme,
            body,
            "paddle-signature",
            Some(&format!("ts={ts};h1={old};h1={good}")),
        );
        assert_eq!(
            verdict_at(&scheme, &headers, body, NOW),
            Ok(Verdict::Deliver {
                signed_id: Some("evt_01h8bzakzx3hm2fmen703n5q45".into()),
                replay: None
            })
        );
    }

    #[test]
    fn the_window_is_five_seconds_by_default() {
        let scheme = paddle(vec![Secret::from("s")]);
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW - 5, &scheme, b"{}", NOW),
            Ok(())
        );
        assert!(matches!(
            testutil::deliver(&scheme, b"{}", NOW - 6, &scheme, b"{}", NOW),
            Err(Refusal::TimestampOutsideTolerance { age: 6, .. })
        ));
        let headers = signed_with(&scheme, b"{}", "paddle-signature", Some("h1=abcd"));
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MissingTimestamp(name("paddle-signature")))
        );
    }
}
