//! Stripe: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 of
//! `"{t}.{body}"` keyed with the whole `whsec_…` string.
//!
//! Stripe attaches one `v1` per active secret while an endpoint secret is
//! being rolled, so any `v1` may match. Other schemes (such as `v0`) are
//! ignored, as Stripe advises, so a sender cannot downgrade to a weaker one.
//! Timestamps more than the tolerance away from now are refused both ways:
//! a captured request cannot be replayed later, nor pre-dated to outlive
//! the window. The event's `id` (inside the signed body) is the delivery id.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use super::mac::{self, Algorithm};
use super::{
    Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, Window,
    body_string_field, check_timestamp, decode_hex, header_value, parse_unix_seconds,
    required_header, tolerance_secs,
};

pub(crate) const NAME: &str = "stripe";
const SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");

#[derive(Debug)]
pub struct Stripe {
    secrets: Vec<Secret>,
    tolerance: i64,
}

impl Stripe {
    /// `secrets` are used as given, `whsec_` prefix included: that is the key
    /// Stripe signs with.
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Self {
        Stripe {
            secrets,
            tolerance: tolerance_secs(tolerance),
        }
    }
}

/// The signed message; the timestamp is signed as sent, not reformatted.
fn signed_parts<'a>(timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 3] {
    [timestamp.as_bytes(), b".", body]
}

impl Scheme for Stripe {
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
        let mut v1 = Vec::new();
        for item in value.split(',') {
            let (key, val) = item
                .trim()
                .split_once('=')
                .ok_or(Refusal::MalformedSignature(SIGNATURE))?;
            match key {
                // A second `t` would make "which one was signed" ambiguous.
                "t" if timestamp.is_some() => return Err(Refusal::MalformedTimestamp(SIGNATURE)),
                "t" => timestamp = Some(val),
                "v1" => v1.push(val),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(Refusal::MissingTimestamp(SIGNATURE))?;
        let ts = parse_unix_seconds(timestamp).ok_or(Refusal::MalformedTimestamp(SIGNATURE))?;
        if v1.is_empty() {
            return Err(Refusal::MissingSignature(SIGNATURE));
        }
        // Undecodable entries simply cannot match; refuse as malformed only if
        // nothing usable is left.
        let candidates: Vec<Vec<u8>> = v1.iter().filter_map(|h| decode_hex(h)).collect();
        if candidates.is_empty() {
            return Err(Refusal::MalformedSignature(SIGNATURE));
        }
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        if mac::any_key_matches(
            Algorithm::Sha256,
            &self.secrets,
            &signed_parts(timestamp, input.body),
            &candidates,
        ) {
            // Stripe's event id (`evt_…`) is inside the signed body: a
            // captured request re-sent with a new `Idempotency-Key` or any
            // other header is still the same event.
            Ok(Verdict::Deliver {
                signed_id: body_string_field(input.body, "id"),
                replay: None,
            })
        } else {
            Err(Refusal::BadSignature)
        }
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let (body, _uri, now) = (out.body, out.uri, out.now);
        let key = self.secrets.first().ok_or(SignError::NoSecret)?;
        let timestamp = now.to_string();
        let tag = mac::compute(Algorithm::Sha256, key, &signed_parts(&timestamp, body));
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE,
            header_value(&format!("t={timestamp},v1={}", hex::encode(tag.as_bytes())))?,
        );
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verify_at};
    use super::*;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    fn stripe(secrets: Vec<Secret>) -> Stripe {
        Stripe::new(secrets, FIVE_MINUTES)
    }

    testutil::scheme_contract!(stripe, ["whsec_first", "whsec_second"], covers_body);

    fn header_for(secret: &str, t: &str, body: &[u8]) -> String {
        let tag = mac::compute(
            Algorithm::Sha256,
            &Secret::from(secret),
            &signed_parts(t, body),
        );
        hex::encode(tag.as_bytes())
    }

    #[test]
    fn key_is_the_whole_whsec_string() {
        // Computed outside this crate (Python's hmac module):
        // HMAC-SHA256(key = "whsec_test", msg = "1700000000.{}").
        let scheme = stripe(vec![Secret::from("whsec_test")]);
        let sig = "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91";
        let headers = signed_with(
            &scheme,
            b"{}",
            "stripe-signature",
            Some(&format!("t=1700000000,v1={sig}")),
        );
        assert_eq!(verify_at(&scheme, &headers, b"{}", NOW), Ok(()));
        let stripped = Stripe::new(vec![Secret::from("test")], FIVE_MINUTES);
        assert_eq!(
            verify_at(&stripped, &headers, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let scheme = stripe(vec![Secret::from("whsec_b")]);
        let t = NOW.to_string();
        let value = format!(
            "t={t},v0={},v1={},v1={}",
            header_for("whsec_b", &t, b"{}"),
            header_for("whsec_a", &t, b"{}"),
            header_for("whsec_b", &t, b"{}")
        );
        let headers = signed_with(&scheme, b"{}", "stripe-signature", Some(&value));
        assert_eq!(verify_at(&scheme, &headers, b"{}", NOW), Ok(()));
    }

    #[test]
    fn only_v0_is_missing_signature() {
        let scheme = stripe(vec![Secret::from("whsec_a")]);
        let t = NOW.to_string();
        let value = format!("t={t},v0={}", header_for("whsec_a", &t, b"{}"));
        let headers = signed_with(&scheme, b"{}", "stripe-signature", Some(&value));
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MissingSignature(name("stripe-signature")))
        );
    }

    #[test]
    fn missing_header_is_missing_signature() {
        let scheme = stripe(vec![Secret::from("whsec_a")]);
        let headers = signed_with(&scheme, b"{}", "stripe-signature", None);
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MissingSignature(name("stripe-signature")))
        );
    }

    #[test]
    fn header_refusals() {
        let scheme = stripe(vec![Secret::from("whsec_a")]);
        let h = || name("stripe-signature");
        let cases = [
            ("garbage", Refusal::MalformedSignature(h())),
            ("v1=abcd", Refusal::MissingTimestamp(h())),
            ("t=abc,v1=abcd", Refusal::MalformedTimestamp(h())),
            ("t=-5,v1=abcd", Refusal::MalformedTimestamp(h())),
            (
                "t=1700000000,t=1700000001,v1=abcd",
                Refusal::MalformedTimestamp(h()),
            ),
            ("t=1700000000,v1=not-hex", Refusal::MalformedSignature(h())),
            ("t=1700000000,v1=abcd", Refusal::BadSignature),
        ];
        for (value, want) in cases {
            let headers = signed_with(&scheme, b"{}", "stripe-signature", Some(value));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(want),
                "{value:?}"
            );
        }
    }

    #[test]
    fn stale_timestamp_is_refused() {
        let scheme = stripe(vec![Secret::from("whsec_a")]);
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
        let scheme = stripe(vec![Secret::from("whsec_a")]);
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW + 900, &scheme, b"{}", NOW),
            Err(Refusal::TimestampOutsideTolerance {
                age: -900,
                tolerance: 300
            })
        );
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW + 300, &scheme, b"{}", NOW),
            Ok(())
        );
    }

    #[test]
    fn the_signed_event_id_is_the_delivery_id() {
        let scheme = stripe(vec![Secret::from("whsec_a")]);
        let body = br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event"}"#;
        let headers = scheme
            .sign(body, &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        assert_eq!(
            testutil::verdict_at(&scheme, &headers, body, NOW),
            Ok(Verdict::Deliver {
                signed_id: Some("evt_1NG8Du2eZvKYlo2CUI79vXWy".into()),
                replay: None
            })
        );
        // A body without an id (or not JSON) still verifies, with no id.
        let headers = scheme
            .sign(b"[1]", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        assert_eq!(
            testutil::verdict_at(&scheme, &headers, b"[1]", NOW),
            Ok(Verdict::deliver())
        );
    }

    #[test]
    fn timestamp_is_signed() {
        let scheme = stripe(vec![Secret::from("whsec_a")]);
        let signed = scheme
            .sign(b"{}", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        let moved = signed[&SIGNATURE]
            .to_str()
            .unwrap()
            .replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        let headers = signed_with(&scheme, b"{}", "stripe-signature", Some(&moved));
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
    }
}
