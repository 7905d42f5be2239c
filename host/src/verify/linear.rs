//! Linear: `Linear-Signature: <hex>`, HMAC-SHA256 of the body keyed with
//! the webhook's signing secret. The send time is `webhookTimestamp` (Unix
//! milliseconds) inside the signed JSON body; like `@linear/sdk`'s
//! `LinearWebhooks.verify`, it must be within the tolerance (default one
//! minute) both ways. Linear's delivery id header is not signed, so a
//! delivery returns a replay key.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use super::{
    Input, Outgoing, Refusal, ReplayKey, Scheme, Secret, SignError, Signed, Verdict, Window,
    check_timestamp, decode_hex, header_value, hex_hmac_sha256, mac, required_header,
    tolerance_secs,
};

pub(crate) const NAME: &str = "linear";
const SIGNATURE: HeaderName = HeaderName::from_static("linear-signature");
/// `@linear/sdk`: "the webhook timestamp is within a minute".
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Linear {
    secrets: Vec<Secret>,
    tolerance: i64,
}

impl Linear {
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Self {
        Linear {
            secrets,
            tolerance: tolerance_secs(tolerance),
        }
    }
}

/// `webhookTimestamp` in whole seconds.
fn body_timestamp(body: &[u8]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .get("webhookTimestamp")?
        .as_i64()
        .map(|ms| ms.div_euclid(1000))
}

impl Scheme for Linear {
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
        let tag = decode_hex(value).ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        if !mac::any_key_matches(mac::Algorithm::Sha256, &self.secrets, &[input.body], &[tag]) {
            return Err(Refusal::BadSignature);
        }
        // Checked after the signature: only a signed timestamp means anything.
        let ts = body_timestamp(input.body)
            .ok_or(Refusal::MalformedBody("no numeric `webhookTimestamp`"))?;
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        Ok(Verdict::Deliver {
            signed_id: None,
            replay: Some(ReplayKey::new(
                NAME,
                &[value.as_bytes()],
                ts.saturating_add(self.tolerance),
            )),
        })
    }

    /// Sends the body as given: it must carry `webhookTimestamp`, as
    /// Linear's do.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let signature = hex_hmac_sha256(&self.secrets, &[out.body])?;
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, header_value(&signature)?);
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, verify_at};
    use super::*;

    fn body(at: i64) -> Vec<u8> {
        format!(
            r#"{{"action":"create","type":"Issue","data":{{}},"webhookTimestamp":{}}}"#,
            at * 1000 + 123
        )
        .into_bytes()
    }

    #[test]
    fn signed_body_with_a_fresh_timestamp_verifies() {
        let scheme = Linear::new(vec![Secret::from("lin_wh_s")], DEFAULT_TOLERANCE);
        let uri = testutil::URI.parse().unwrap();
        let b = body(NOW);
        let headers = scheme.sign(&b, &uri, NOW).unwrap();
        assert_eq!(verify_at(&scheme, &headers, &b, NOW + 60), Ok(()));
        assert!(matches!(
            verify_at(&scheme, &headers, &b, NOW + 61),
            Err(Refusal::TimestampOutsideTolerance { .. })
        ));
        let mut tampered = b.clone();
        tampered[3] ^= 1;
        assert_eq!(
            verify_at(&scheme, &headers, &tampered, NOW),
            Err(Refusal::BadSignature)
        );
        let other = Linear::new(vec![Secret::from("other")], DEFAULT_TOLERANCE);
        assert_eq!(
            verify_at(&other, &headers, &b, NOW),
            Err(Refusal::BadSignature)
        );
        let untimed = b"{}";
        let headers = scheme.sign(untimed, &uri, NOW).unwrap();
        assert!(matches!(
            verify_at(&scheme, &headers, untimed, NOW),
            Err(Refusal::MalformedBody(_))
        ));
    }
}
