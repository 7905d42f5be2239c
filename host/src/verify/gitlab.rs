//! GitLab: `X-Gitlab-Token` carries the secret itself; the body is not signed.

use http::{HeaderMap, HeaderName};

use super::token::SecretToken;
use super::{
    Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, required_header,
};

pub(crate) const NAME: &str = "gitlab";
const TOKEN: HeaderName = HeaderName::from_static("x-gitlab-token");

#[derive(Debug)]
pub struct Gitlab {
    tokens: Vec<SecretToken>,
}

impl Gitlab {
    pub fn new(secrets: Vec<Secret>) -> Self {
        Gitlab {
            tokens: secrets.into_iter().map(SecretToken::new).collect(),
        }
    }
}

impl Scheme for Gitlab {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let value = required_header(
            input.headers,
            &TOKEN,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?;
        if self.tokens.iter().any(|t| t.matches(value.as_bytes())) {
            Ok(Verdict::deliver())
        } else {
            Err(Refusal::BadSignature)
        }
    }

    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let (_body, _uri, _now) = (out.body, out.uri, out.now);
        let token = self.tokens.first().ok_or(SignError::NoSecret)?;
        let mut headers = HeaderMap::new();
        headers.insert(TOKEN, token.header_value(b"")?);
        Signed::post(out, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verify_at};
    use super::*;

    testutil::scheme_contract!(Gitlab::new, ["glpat-first-token", "glpat-second-token"]);

    #[test]
    fn body_is_not_covered() {
        let scheme = Gitlab::new(vec![Secret::from("t")]);
        assert_eq!(
            testutil::deliver(&scheme, b"a", NOW, &scheme, b"b", NOW),
            Ok(())
        );
    }

    #[test]
    fn missing_header_is_missing_signature() {
        let scheme = Gitlab::new(vec![Secret::from("t")]);
        let headers = signed_with(&scheme, b"{}", "x-gitlab-token", None);
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MissingSignature(name("x-gitlab-token")))
        );
    }

    #[test]
    fn non_text_header_is_malformed_signature() {
        let scheme = Gitlab::new(vec![Secret::from("t")]);
        let mut headers = HeaderMap::new();
        headers.insert(TOKEN, http::HeaderValue::from_bytes(b"t\xff").unwrap());
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::MalformedSignature(name("x-gitlab-token")))
        );
    }

    #[test]
    fn prefix_and_extension_of_token_are_refused() {
        let scheme = Gitlab::new(vec![Secret::from("token")]);
        for bad in ["toke", "token2", "", "TOKEN"] {
            let headers = signed_with(&scheme, b"{}", "x-gitlab-token", Some(bad));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(Refusal::BadSignature),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn signed_header_is_marked_sensitive() {
        let scheme = Gitlab::new(vec![Secret::from("t")]);
        let headers = scheme
            .sign(b"", &testutil::URI.parse().unwrap(), NOW)
            .unwrap();
        assert!(headers[&TOKEN].is_sensitive());
    }
}
