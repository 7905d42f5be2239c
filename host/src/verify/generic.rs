//! Scheme `hmac`: for senders without a scheme of their own (internal
//! services, smaller SaaS). One header carries an optional prefix and the
//! hex or base64 HMAC of the raw body, with SHA-1, SHA-256 or SHA-512.
//!
//! There is no timestamp, so a captured request can be replayed; prefer a
//! timestamped scheme (`standard-webhooks`) when the sender can be changed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName};

use super::mac::{self, Algorithm};
use super::{
    Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, decode_base64,
    decode_hex, header_value, required_header,
};

pub(crate) const NAME: &str = "hmac";

/// How the MAC is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Either case is accepted; lowercase is sent.
    Hex,
    /// Standard alphabet, padded.
    Base64,
}

impl Encoding {
    pub const NAMES: &'static [&'static str] = &["hex", "base64"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hex" => Some(Encoding::Hex),
            "base64" => Some(Encoding::Base64),
            _ => None,
        }
    }

    fn encode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Hex => hex::encode(bytes),
            Encoding::Base64 => STANDARD.encode(bytes),
        }
    }

    fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Hex => decode_hex(text),
            Encoding::Base64 => decode_base64(text),
        }
    }
}

#[derive(Debug)]
pub struct GenericHmac {
    header: HeaderName,
    algorithm: Algorithm,
    encoding: Encoding,
    prefix: String,
    secrets: Vec<Secret>,
}

impl GenericHmac {
    /// `prefix` (e.g. `sha256=`) is matched ignoring ASCII case.
    pub fn new(
        secrets: Vec<Secret>,
        header: HeaderName,
        algorithm: Algorithm,
        encoding: Encoding,
        prefix: String,
    ) -> Self {
        GenericHmac {
            header,
            algorithm,
            encoding,
            prefix,
            secrets,
        }
    }
}

impl Scheme for GenericHmac {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let value = required_header(
            input.headers,
            &self.header,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?;
        let encoded = value
            .get(..self.prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(&self.prefix))
            .map(|_| &value[self.prefix.len()..]);
        let tag = encoded
            .and_then(|e| self.encoding.decode(e))
            .ok_or_else(|| Refusal::MalformedSignature(self.header.clone()))?;
        if mac::any_key_matches(self.algorithm, &self.secrets, &[input.body], &[tag]) {
            Ok(Verdict::deliver())
        } else {
            Err(Refusal::BadSignature)
        }
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let (body, _uri, _now) = (out.body, out.uri, out.now);
        let key = self.secrets.first().ok_or(SignError::NoSecret)?;
        let tag = mac::compute(self.algorithm, key, &[body]);
        let mut headers = HeaderMap::new();
        headers.insert(
            self.header.clone(),
            header_value(&format!(
                "{}{}",
                self.prefix,
                self.encoding.encode(tag.as_bytes())
            ))?,
        );
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verify_at};
    use super::*;

    fn sha1_hex(secrets: Vec<Secret>) -> GenericHmac {
        GenericHmac::new(
            secrets,
            HeaderName::from_static("x-signature"),
            Algorithm::Sha1,
            Encoding::Hex,
            "sha1=".into(),
        )
    }

    testutil::scheme_contract!(sha1_hex, ["first", "second"], covers_body);

    mod sha256_base64 {
        use super::super::super::testutil;
        use super::*;

        fn make(secrets: Vec<Secret>) -> GenericHmac {
            GenericHmac::new(
                secrets,
                HeaderName::from_static("x-sig"),
                Algorithm::Sha256,
                Encoding::Base64,
                String::new(),
            )
        }

        testutil::scheme_contract!(make, ["first", "second"], covers_body);
    }

    mod sha512_hex {
        use super::super::super::testutil;
        use super::*;

        fn make(secrets: Vec<Secret>) -> GenericHmac {
            GenericHmac::new(
                secrets,
                HeaderName::from_static("x-sig"),
                Algorithm::Sha512,
                Encoding::Hex,
                String::new(),
            )
        }

        testutil::scheme_contract!(make, ["first", "second"], covers_body);
    }

    #[test]
    fn github_style_configuration_verifies_the_github_vector() {
        let v = &testutil::vectors("github")[0];
        let scheme = GenericHmac::new(
            vec![Secret::from(v["secret"].as_str().unwrap())],
            HeaderName::from_static("x-hub-signature-256"),
            Algorithm::Sha256,
            Encoding::Hex,
            "sha256=".into(),
        );
        let body = v["body"].as_str().unwrap().as_bytes();
        assert_eq!(
            verify_at(&scheme, &testutil::vector_headers(v), body, NOW),
            Ok(())
        );
    }

    #[test]
    fn missing_header_is_missing_signature() {
        let scheme = sha1_hex(vec![Secret::from("s")]);
        let headers = signed_with(&scheme, b"{}", "x-signature", None);
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MissingSignature(name("x-signature")))
        );
    }

    #[test]
    fn malformed_headers_are_malformed_signature() {
        let scheme = sha1_hex(vec![Secret::from("s")]);
        for bad in ["", "sha1", "sha256=abcd", "sha1=xyz", "abcd"] {
            let headers = signed_with(&scheme, b"{}", "x-signature", Some(bad));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(Refusal::MalformedSignature(name("x-signature"))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefix_is_case_insensitive() {
        let scheme = sha1_hex(vec![Secret::from("s")]);
        let signed = scheme
            .sign(b"{}", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        let upper = signed["x-signature"]
            .to_str()
            .unwrap()
            .replace("sha1=", "SHA1=");
        let headers = signed_with(&scheme, b"{}", "x-signature", Some(&upper));
        assert_eq!(verify_at(&scheme, &headers, b"{}", NOW), Ok(()));
    }

    #[test]
    fn algorithm_is_part_of_the_check() {
        let sha1 = sha1_hex(vec![Secret::from("s")]);
        let sha256 = GenericHmac::new(
            vec![Secret::from("s")],
            HeaderName::from_static("x-signature"),
            Algorithm::Sha256,
            Encoding::Hex,
            "sha1=".into(),
        );
        assert_eq!(
            testutil::deliver(&sha256, b"{}", NOW, &sha1, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
    }
}
