//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body.
//!
//! The legacy SHA-1 `X-Hub-Signature` header is ignored on purpose: GitHub
//! sends both, and accepting SHA-1 would only weaken the check.

use http::{HeaderMap, HeaderName};

use super::mac::{self, Algorithm};
use super::{
    Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, decode_hex, header_value,
    required_header,
};

pub(crate) const NAME: &str = "github";
const SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
const PREFIX: &str = "sha256=";

#[derive(Debug)]
pub struct Github {
    secrets: Vec<Secret>,
}

impl Github {
    pub fn new(secrets: Vec<Secret>) -> Self {
        Github { secrets }
    }
}

impl Scheme for Github {
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
        let tag = value
            .strip_prefix(PREFIX)
            .and_then(decode_hex)
            .ok_or(Refusal::MalformedSignature(SIGNATURE))?;
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
        headers.insert(
            SIGNATURE,
            header_value(&format!("{PREFIX}{}", hex::encode(tag.as_bytes())))?,
        );
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verify_at};
    use super::*;

    testutil::scheme_contract!(
        Github::new,
        ["It's a Secret to Everybody", "another secret"],
        covers_body
    );

    #[test]
    fn published_vector_verifies() {
        for v in testutil::vectors(NAME) {
            let scheme = Github::new(vec![Secret::from(v["secret"].as_str().unwrap())]);
            let body = v["body"].as_str().unwrap().as_bytes();
            assert_eq!(
                verify_at(&scheme, &testutil::vector_headers(&v), body, NOW),
                Ok(())
            );
        }
    }

    #[test]
    fn published_vector_is_what_sign_produces() {
        for v in testutil::vectors(NAME) {
            let scheme = Github::new(vec![Secret::from(v["secret"].as_str().unwrap())]);
            let body = v["body"].as_str().unwrap().as_bytes();
            let signed = scheme
                .sign(body, &testutil::URI.parse().unwrap(), NOW)
                .unwrap();
            assert_eq!(signed, testutil::vector_headers(&v));
        }
    }

    #[test]
    fn missing_header_is_missing_signature() {
        let scheme = Github::new(vec![Secret::from("s")]);
        let headers = signed_with(&scheme, b"{}", "x-hub-signature-256", None);
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MissingSignature(name("x-hub-signature-256")))
        );
    }

    #[test]
    fn malformed_headers_are_malformed_signature() {
        let scheme = Github::new(vec![Secret::from("s")]);
        let good = hex::encode([7u8; 32]);
        for bad in [
            good.clone(),
            format!("sha1={good}"),
            "sha256=zz".into(),
            "sha256=".into(),
            "".into(),
        ] {
            let headers = signed_with(&scheme, b"{}", "x-hub-signature-256", Some(&bad));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(Refusal::MalformedSignature(name("x-hub-signature-256"))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn truncated_signature_is_refused() {
        let scheme = Github::new(vec![Secret::from("s")]);
        let signed = scheme
            .sign(b"{}", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        let full = signed[&SIGNATURE].to_str().unwrap();
        let headers = signed_with(
            &scheme,
            b"{}",
            "x-hub-signature-256",
            Some(&full[..full.len() - 2]),
        );
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let scheme = Github::new(vec![Secret::from("s")]);
        let signed = scheme
            .sign(b"{}", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        let upper = signed[&SIGNATURE]
            .to_str()
            .unwrap()
            .replace(PREFIX, "")
            .to_uppercase();
        let headers = signed_with(
            &scheme,
            b"{}",
            "x-hub-signature-256",
            Some(&format!("{PREFIX}{upper}")),
        );
        assert_eq!(verify_at(&scheme, &headers, b"{}", NOW), Ok(()));
    }
}
