//! Shopify: `X-Shopify-Hmac-Sha256: <base64>`, HMAC-SHA256 of the raw body
//! keyed with the app's client secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName};

use super::mac::{self, Algorithm};
use super::{
    Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, decode_base64,
    header_value, required_header,
};

pub(crate) const NAME: &str = "shopify";
const SIGNATURE: HeaderName = HeaderName::from_static("x-shopify-hmac-sha256");

#[derive(Debug)]
pub struct Shopify {
    secrets: Vec<Secret>,
}

impl Shopify {
    pub fn new(secrets: Vec<Secret>) -> Self {
        Shopify { secrets }
    }
}

impl Scheme for Shopify {
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
        if mac::any_key_matches(Algorithm::Sha256, &self.secrets, &[input.body], &[tag]) {
            Ok(Verdict::deliver())
        } else {
            Err(Refusal::BadSignature)
        }
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let (body, _uri, _now) = (out.body, out.uri, out.now);
        let key = self.secrets.first().ok_or(SignError::NoSecret)?;
        let tag = mac::compute(Algorithm::Sha256, key, &[body]);
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, header_value(&STANDARD.encode(tag.as_bytes()))?);
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verify_at};
    use super::*;

    testutil::scheme_contract!(Shopify::new, ["shpss_first", "shpss_second"], covers_body);

    #[test]
    fn matches_an_independently_computed_signature() {
        // Computed outside this crate (Python's hmac module):
        // base64(HMAC-SHA256(key = "hush", msg = '{"id":1}')).
        let signature = "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY=";
        let scheme = Shopify::new(vec![Secret::from("hush")]);
        let headers = testutil::headers(&[("X-Shopify-Hmac-Sha256", signature)]);
        assert_eq!(verify_at(&scheme, &headers, b"{\"id\":1}", NOW), Ok(()));
    }

    #[test]
    fn missing_header_is_missing_signature() {
        let scheme = Shopify::new(vec![Secret::from("s")]);
        let headers = signed_with(&scheme, b"{}", "x-shopify-hmac-sha256", None);
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MissingSignature(name("x-shopify-hmac-sha256")))
        );
    }

    #[test]
    fn non_base64_is_malformed_signature() {
        let scheme = Shopify::new(vec![Secret::from("s")]);
        for bad in ["not base64!", "abc", "sha256=AAAA"] {
            let headers = signed_with(&scheme, b"{}", "x-shopify-hmac-sha256", Some(bad));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(Refusal::MalformedSignature(name("x-shopify-hmac-sha256"))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hex_instead_of_base64_is_refused() {
        let scheme = Shopify::new(vec![Secret::from("s")]);
        let hex =
            hex::encode(mac::compute(Algorithm::Sha256, &Secret::from("s"), &[b"{}"]).as_bytes());
        let headers = signed_with(&scheme, b"{}", "x-shopify-hmac-sha256", Some(&hex));
        assert!(verify_at(&scheme, &headers, b"{}", NOW).is_err());
    }
}
