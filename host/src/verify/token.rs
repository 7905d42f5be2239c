//! A shared token in a header (default `Authorization: Bearer <secret>`);
//! the body is not signed.

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, required_header,
};

pub(crate) const NAME: &str = "token";
pub(crate) const DEFAULT_HEADER: HeaderName = http::header::AUTHORIZATION;
pub(crate) const DEFAULT_PREFIX: &str = "Bearer ";

/// A secret compared by digest: hashing both sides first makes the
/// comparison's timing independent of the secret's length as well as its
/// content.
pub(crate) struct SecretToken {
    secret: Secret,
    digest: [u8; 32],
}

impl SecretToken {
    pub(crate) fn new(secret: Secret) -> Self {
        let digest = Sha256::digest(secret.expose()).into();
        SecretToken { secret, digest }
    }

    pub(crate) fn expose(&self) -> &[u8] {
        self.secret.expose()
    }

    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        presented.ct_eq(&self.digest).into()
    }

    /// `prefix` + secret, marked sensitive so HTTP/2 never indexes it and
    /// `Debug` hides it.
    pub(crate) fn header_value(&self, prefix: &[u8]) -> Result<HeaderValue, SignError> {
        let mut value = HeaderValue::from_bytes(&[prefix, self.secret.expose()].concat())
            .map_err(|_| SignError::InvalidHeaderValue)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.secret.fmt(f)
    }
}

#[derive(Debug)]
pub struct Token {
    header: HeaderName,
    prefix: String,
    tokens: Vec<SecretToken>,
}

impl Token {
    /// `prefix` is matched ignoring ASCII case: `Authorization` schemes
    /// such as `Bearer` are case-insensitive (RFC 9110, section 11.1).
    pub fn new(secrets: Vec<Secret>, header: HeaderName, prefix: String) -> Self {
        Token {
            header,
            prefix,
            tokens: secrets.into_iter().map(SecretToken::new).collect(),
        }
    }
}

impl Scheme for Token {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let value = required_header(
            input.headers,
            &self.header,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?
        .as_bytes();
        let prefix = self.prefix.as_bytes();
        if value.len() < prefix.len() || !value[..prefix.len()].eq_ignore_ascii_case(prefix) {
            return Err(Refusal::MalformedSignature(self.header.clone()));
        }
        let presented = &value[prefix.len()..];
        if self.tokens.iter().any(|t| t.matches(presented)) {
            Ok(Verdict::deliver())
        } else {
            Err(Refusal::BadSignature)
        }
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let (_body, _uri, _now) = (out.body, out.uri, out.now);
        let token = self.tokens.first().ok_or(SignError::NoSecret)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            self.header.clone(),
            token.header_value(self.prefix.as_bytes())?,
        );
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verify_at};
    use super::*;

    fn bearer(secrets: Vec<Secret>) -> Token {
        Token::new(secrets, DEFAULT_HEADER, DEFAULT_PREFIX.into())
    }

    testutil::scheme_contract!(bearer, ["first-token", "second-token"]);

    mod custom_header_without_prefix {
        use super::super::super::testutil;
        use super::*;

        fn api_key(secrets: Vec<Secret>) -> Token {
            Token::new(secrets, HeaderName::from_static("x-api-key"), String::new())
        }

        testutil::scheme_contract!(api_key, ["first-key", "second-key"]);
    }

    #[test]
    fn missing_header_is_missing_signature() {
        let scheme = bearer(vec![Secret::from("t")]);
        let headers = signed_with(&scheme, b"{}", "authorization", None);
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MissingSignature(name("authorization")))
        );
    }

    #[test]
    fn wrong_auth_scheme_is_malformed_signature() {
        let scheme = bearer(vec![Secret::from("t")]);
        for bad in ["Basic dDp0", "t", "Bearer"] {
            let headers = signed_with(&scheme, b"{}", "authorization", Some(bad));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(Refusal::MalformedSignature(name("authorization"))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn auth_scheme_is_case_insensitive_but_token_is_not() {
        let scheme = bearer(vec![Secret::from("Token")]);
        let ok = signed_with(&scheme, b"{}", "authorization", Some("bearer Token"));
        assert_eq!(verify_at(&scheme, &ok, b"{}", NOW), Ok(()));
        let bad = signed_with(&scheme, b"{}", "authorization", Some("Bearer token"));
        assert_eq!(
            verify_at(&scheme, &bad, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn body_is_not_covered() {
        let scheme = bearer(vec![Secret::from("t")]);
        assert_eq!(
            testutil::deliver(&scheme, b"a", NOW, &scheme, b"b", NOW),
            Ok(())
        );
    }

    #[test]
    fn signed_header_is_marked_sensitive() {
        let scheme = bearer(vec![Secret::from("t")]);
        let headers = scheme
            .sign(b"", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        assert!(headers[&DEFAULT_HEADER].is_sensitive());
        assert!(!format!("{headers:?}").contains("Bearer t"));
    }

    #[test]
    fn secret_that_cannot_be_a_header_cannot_sign() {
        let scheme = bearer(vec![Secret::from("a\nb")]);
        assert_eq!(
            scheme.sign(b"", &testutil::URI.parse().unwrap(), NOW),
            Err(SignError::InvalidHeaderValue)
        );
    }
}
