//! Square: `x-square-hmacsha256-signature: <base64>`, HMAC-SHA256 of the
//! notification URL followed by the body, keyed with the subscription's
//! signature key, as Square's SDK `WebhooksHelper` checks it. The
//! notification URL is the one configured in Square's dashboard, so the
//! manifest must give it (`url`), query included if it has one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName};

use super::{
    Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, decode_base64,
    header_value, mac, required_header,
};

pub(crate) const NAME: &str = "square";
const SIGNATURE: HeaderName = HeaderName::from_static("x-square-hmacsha256-signature");

#[derive(Debug)]
pub struct Square {
    secrets: Vec<Secret>,
    url: String,
}

impl Square {
    /// `url` is the notification URL exactly as configured in Square.
    pub fn new(secrets: Vec<Secret>, url: String) -> Self {
        Square { secrets, url }
    }
}

impl Scheme for Square {
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
        let tag = decode_base64(value).ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        if mac::any_key_matches(
            mac::Algorithm::Sha256,
            &self.secrets,
            &[self.url.as_bytes(), input.body],
            &[tag],
        ) {
            // Square's body `event_id` is signed: the delivery id.
            Ok(Verdict::Deliver {
                signed_id: super::body_string_field(input.body, "event_id"),
                replay: None,
            })
        } else {
            Err(Refusal::BadSignature)
        }
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let key = self.secrets.first().ok_or(SignError::NoSecret)?;
        let tag = mac::compute(
            mac::Algorithm::Sha256,
            key,
            &[self.url.as_bytes(), out.body],
        );
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, header_value(&STANDARD.encode(tag.as_bytes()))?);
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, verdict_at};
    use super::*;

    const URL: &str = "https://example.com/webhooks/square";

    fn square(secrets: Vec<Secret>) -> Square {
        Square::new(secrets, URL.into())
    }

    testutil::scheme_contract!(
        square,
        ["Ibxx_5AKakO-3qeNVR61Dw", "second-key"],
        covers_body
    );

    #[test]
    fn the_url_is_signed_and_event_id_is_the_delivery_id() {
        let scheme = square(vec![Secret::from("k")]);
        let body = br#"{"merchant_id":"MLEFBHHSJGVHD","type":"payment.updated","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f"}"#;
        let headers = scheme
            .sign(body, &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        assert_eq!(
            verdict_at(&scheme, &headers, body, NOW),
            Ok(Verdict::Deliver {
                signed_id: Some("ac3ac95b-f97d-458c-a6e6-18981597e05f".into()),
                replay: None
            })
        );
        let elsewhere = Square::new(vec![Secret::from("k")], "https://example.com/other".into());
        assert_eq!(
            verdict_at(&elsewhere, &headers, body, NOW),
            Err(Refusal::BadSignature)
        );
    }
}
