//! Google Cloud Pub/Sub push: `Authorization: Bearer <JWT>`, an OIDC token
//! signed RS256 by Google, checked against the keys of a JWKS (`jwks_url`,
//! default Google's). `aud` must equal the configured `audience`, `iss` be
//! Google's, `exp` not be past (60 s leeway, against the `now` given, not
//! the clock); with `email` configured, the token's verified `email` must
//! be that service account.
//!
//! The JWKS is a fetched key: absent from [`Input::keys`], or lacking the
//! token's `kid` (Google rotates its keys), the scheme answers
//! [`Refusal::KeyUnavailable`] so the host fetches (or refreshes) it.
//!
//! The token authenticates the sender, not the body: Pub/Sub does not sign
//! the message. Use a dedicated push subscription and audience per route.

use std::collections::HashSet;

use http::HeaderName;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{Input, Outgoing, Refusal, Scheme, SignError, Signed, Verdict, required_header};

pub(crate) const NAME: &str = "pubsub";
const AUTHORIZATION: HeaderName = http::header::AUTHORIZATION;
/// Google's OAuth 2 signing keys.
pub const DEFAULT_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
const ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];
/// Clock skew allowed on `exp` and `iat`, as Google's libraries allow.
const LEEWAY: i64 = 60;

#[derive(Debug)]
pub struct Pubsub {
    jwks_url: String,
    audience: String,
    email: Option<String>,
}

impl Pubsub {
    pub fn new(jwks_url: String, audience: String, email: Option<String>) -> Self {
        Pubsub {
            jwks_url,
            audience,
            email,
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

impl Scheme for Pubsub {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let value = required_header(
            input.headers,
            &AUTHORIZATION,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?;
        let token = value
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("bearer "))
            .map(|_| value[7..].trim())
            .ok_or(Refusal::MalformedSignature(AUTHORIZATION))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Refusal::MalformedSignature(AUTHORIZATION))?;
        if header.alg != Algorithm::RS256 {
            return Err(Refusal::MalformedSignature(AUTHORIZATION));
        }
        let kid = header
            .kid
            .ok_or(Refusal::MalformedSignature(AUTHORIZATION))?;
        let unavailable = || Refusal::KeyUnavailable {
            url: self.jwks_url.clone(),
        };
        let jwks = input
            .keys
            .get(&self.jwks_url, input.now)
            .ok_or_else(unavailable)?;
        let set: JwkSet = serde_json::from_slice(&jwks).map_err(|_| unavailable())?;
        let jwk = set.find(&kid).ok_or_else(unavailable)?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| Refusal::BadSignature)?;

        // Only the signature is checked by the library: every time check
        // uses the `now` given, so verification stays a pure function.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => Refusal::BadSignature,
                _ => Refusal::MalformedSignature(AUTHORIZATION),
            })?
            .claims;
        if claims.aud != self.audience {
            return Err(Refusal::BadClaim("aud"));
        }
        if !ISSUERS.contains(&claims.iss.as_str()) {
            return Err(Refusal::BadClaim("iss"));
        }
        if claims.exp.saturating_add(LEEWAY) < input.now {
            return Err(Refusal::BadClaim("exp"));
        }
        if claims
            .iat
            .is_some_and(|iat| iat.saturating_sub(LEEWAY) > input.now)
        {
            return Err(Refusal::BadClaim("iat"));
        }
        if let Some(email) = &self.email
            && (claims.email.as_deref() != Some(email) || claims.email_verified != Some(true))
        {
            return Err(Refusal::BadClaim("email"));
        }
        Ok(Verdict::deliver())
    }

    /// A token signed RS256 with an RSA key (kid `hookhost-test`), valid
    /// for an hour from `out.now`, for `audience` and `email`.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let key = out.private_key()?.rsa()?;
        let der = key
            .to_pkcs1_der()
            .map_err(|_| SignError::Unsupported("the RSA key cannot be encoded"))?;
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(TEST_KID.into());
        let claims = serde_json::json!({
            "aud": self.audience,
            "iss": "https://accounts.google.com",
            "iat": out.now,
            "exp": out.now.saturating_add(3600),
            "email": self.email.as_deref().unwrap_or("pusher@project.iam.gserviceaccount.com"),
            "email_verified": true,
            "sub": "113774264463038321964",
        });
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
        )
        .map_err(|_| SignError::Unsupported("the token cannot be signed"))?;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            super::header_value(&format!("Bearer {token}"))?,
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Signed::post(out, headers)
    }
}

/// The `kid` [`Pubsub::sign_request`] puts in its tokens.
pub const TEST_KID: &str = "hookhost-test";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use bytes::Bytes;
    use rsa::traits::PublicKeyParts as _;

    use super::super::{KeyCache, PrivateKey};
    use super::*;

    const KEY: &str = include_str!("testdata/sns-test-key.pem");
    const NOW: i64 = 1_800_000_000;
    const JWKS: &str = "https://www.googleapis.com/oauth2/v3/certs";

    fn jwks(kid: &str) -> String {
        let key = PrivateKey::from_pem(KEY).unwrap();
        let public = key.rsa().unwrap().to_public_key();
        serde_json::json!({"keys": [{
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n_bytes()),
            "e": URL_SAFE_NO_PAD.encode(public.e_bytes()),
        }]})
        .to_string()
    }

    fn pubsub(email: Option<&str>) -> Pubsub {
        Pubsub::new(
            JWKS.into(),
            "https://hooks.example.com/hooks/push".into(),
            email.map(str::to_owned),
        )
    }

    fn token_for(scheme: &Pubsub, at: i64) -> http::HeaderMap {
        let key = PrivateKey::from_pem(KEY).unwrap();
        let uri = "https://hooks.example.com/hooks/push".parse().unwrap();
        scheme
            .sign_request(&Outgoing::new(b"{}", &uri, at).with_key(&key))
            .unwrap()
            .headers
    }

    fn verify(
        scheme: &Pubsub,
        headers: &http::HeaderMap,
        keys: &KeyCache,
        now: i64,
    ) -> Result<Verdict, Refusal> {
        let uri: http::Uri = "/hooks/push".parse().unwrap();
        scheme.verify(&Input {
            method: &http::Method::POST,
            headers,
            body: b"{}",
            uri: &uri,
            now,
            keys,
        })
    }

    fn cache(kid: &str) -> KeyCache {
        let cache = KeyCache::new(4, Duration::from_secs(86_400));
        cache.insert(JWKS, Bytes::from(jwks(kid)), NOW);
        cache
    }

    #[test]
    fn a_google_signed_token_for_the_audience_verifies() {
        let scheme = pubsub(Some("pusher@project.iam.gserviceaccount.com"));
        let headers = token_for(&scheme, NOW);
        assert_eq!(
            verify(&scheme, &headers, &cache(TEST_KID), NOW),
            Ok(Verdict::deliver())
        );
    }

    #[test]
    fn a_missing_jwks_or_unknown_kid_asks_the_host_to_fetch() {
        let scheme = pubsub(None);
        let headers = token_for(&scheme, NOW);
        let want = Err(Refusal::KeyUnavailable { url: JWKS.into() });
        assert_eq!(
            verify(
                &scheme,
                &headers,
                &KeyCache::new(4, Duration::from_secs(60)),
                NOW
            ),
            want
        );
        assert_eq!(verify(&scheme, &headers, &cache("rotated-away"), NOW), want);
    }

    #[test]
    fn wrong_audience_email_expiry_and_signature_are_refused() {
        let scheme = pubsub(Some("pusher@project.iam.gserviceaccount.com"));
        let headers = token_for(&scheme, NOW);
        let other_aud = Pubsub::new(JWKS.into(), "https://other.example.com".into(), None);
        assert_eq!(
            verify(&other_aud, &headers, &cache(TEST_KID), NOW),
            Err(Refusal::BadClaim("aud"))
        );
        let other_email = pubsub(Some("someone@else.iam.gserviceaccount.com"));
        assert_eq!(
            verify(&other_email, &headers, &cache(TEST_KID), NOW),
            Err(Refusal::BadClaim("email"))
        );
        assert_eq!(
            verify(&scheme, &headers, &cache(TEST_KID), NOW + 3600 + 61),
            Err(Refusal::BadClaim("exp"))
        );
        let text = headers["authorization"].to_str().unwrap();
        let (rest, sig) = text.rsplit_once('.').unwrap();
        let mut forged = http::HeaderMap::new();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        forged.insert(
            "authorization",
            format!("{rest}.{flipped}{}", &sig[1..]).parse().unwrap(),
        );
        assert_eq!(
            verify(&scheme, &forged, &cache(TEST_KID), NOW),
            Err(Refusal::BadSignature)
        );
        let mut basic = http::HeaderMap::new();
        basic.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(
            verify(&scheme, &basic, &cache(TEST_KID), NOW),
            Err(Refusal::MalformedSignature(AUTHORIZATION))
        );
    }
}
