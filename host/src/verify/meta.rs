//! Meta (Facebook, WhatsApp, Instagram, Messenger): `X-Hub-Signature-256:
//! sha256=<hex>`, HMAC-SHA256 of the body keyed with the app secret.
//!
//! Before any event, Meta checks the callback URL with a `GET`
//! `?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C`: answered 200
//! `text/plain` with `C` when `T` equals the manifest's `verify_token`
//! (compared in constant time; handshake `meta-subscribe`), refused
//! [`Refusal::BadVerifyToken`] (403) otherwise. This is the one scheme whose
//! routes answer `GET`.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Uri};

use super::signing::unknown_handshake;
use super::token::SecretToken;
use super::{
    Handshake, Input, Outgoing, Refusal, Scheme, Secret, SignError, Signed, Verdict, decode_hex,
    header_value, hex_hmac_sha256, mac, query_param, required_header,
};

pub(crate) const NAME: &str = "meta";
const SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
const SUBSCRIBE: &str = "meta-subscribe";

pub struct Meta {
    secrets: Vec<Secret>,
    verify_token: SecretToken,
}

/// The verify token is left out (`..`): it is a secret too.
impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Meta {
    /// `secrets` are app secrets; `verify_token` is the token typed into
    /// the app dashboard next to the callback URL.
    pub fn new(secrets: Vec<Secret>, verify_token: Secret) -> Self {
        Meta {
            secrets,
            verify_token: SecretToken::new(verify_token),
        }
    }

    fn subscribe(&self, uri: &Uri) -> Result<Verdict, Refusal> {
        let mode = query_param(uri, "hub.mode");
        let token = query_param(uri, "hub.verify_token").ok_or(Refusal::BadVerifyToken)?;
        let challenge = query_param(uri, "hub.challenge").ok_or(Refusal::BadVerifyToken)?;
        if mode.as_deref() != Some("subscribe") || !self.verify_token.matches(token.as_bytes()) {
            return Err(Refusal::BadVerifyToken);
        }
        Ok(Verdict::Answer(Handshake::text(SUBSCRIBE, challenge)))
    }
}

impl Scheme for Meta {
    fn name(&self) -> &'static str {
        NAME
    }

    fn accepts_get(&self) -> bool {
        true
    }

    fn handshakes(&self) -> &'static [&'static str] {
        &[SUBSCRIBE]
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        if input.method == Method::GET {
            return self.subscribe(input.uri);
        }
        if input.method != Method::POST {
            return Err(Refusal::MethodNotAllowed);
        }
        let value = required_header(
            input.headers,
            &SIGNATURE,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?;
        let tag = value
            .strip_prefix("sha256=")
            .and_then(decode_hex)
            .ok_or(Refusal::MalformedSignature(SIGNATURE))?;
        if mac::any_key_matches(mac::Algorithm::Sha256, &self.secrets, &[input.body], &[tag]) {
            Ok(Verdict::deliver())
        } else {
            Err(Refusal::BadSignature)
        }
    }

    /// Handshake `meta-subscribe` is the `GET` with the configured token.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        match out.handshake {
            None => {}
            Some(SUBSCRIBE) => {
                let token = String::from_utf8_lossy(self.verify_token.expose()).into_owned();
                let query = format!(
                    "hub.mode=subscribe&hub.verify_token={}&hub.challenge={}",
                    form_encode(&token),
                    1_158_201_444 + out.now.rem_euclid(1000)
                );
                let path = out.uri.path();
                let target = match (out.uri.scheme_str(), out.uri.authority()) {
                    (Some(scheme), Some(authority)) => {
                        format!("{scheme}://{authority}{path}?{query}")
                    }
                    _ => format!("{path}?{query}"),
                };
                return Ok(Signed {
                    method: Method::GET,
                    uri: target.parse().map_err(|_| SignError::InvalidHeaderValue)?,
                    headers: HeaderMap::new(),
                    body: Bytes::new(),
                });
            }
            Some(other) => return Err(unknown_handshake(other, self.handshakes())),
        }
        let signature = hex_hmac_sha256(&self.secrets, &[out.body])?;
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, header_value(&format!("sha256={signature}"))?);
        Signed::post(out, headers)
    }
}

/// Percent-encodes everything but unreserved characters.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, verdict_at};
    use super::super::{Input, NoKeys};
    use super::*;

    fn meta(secrets: Vec<Secret>) -> Meta {
        Meta::new(secrets, Secret::from("my verify token"))
    }

    testutil::scheme_contract!(meta, ["app-secret-1", "app-secret-2"], covers_body);

    fn get(scheme: &Meta, target: &str) -> Result<Verdict, Refusal> {
        let uri: Uri = target.parse().unwrap();
        scheme.verify(&Input {
            method: &Method::GET,
            headers: &HeaderMap::new(),
            body: b"",
            uri: &uri,
            now: NOW,
            keys: &NoKeys,
        })
    }

    #[test]
    fn subscription_get_with_the_token_is_answered_with_the_challenge() {
        let scheme = meta(vec![Secret::from("s")]);
        assert!(scheme.accepts_get());
        let got = get(
            &scheme,
            "/hooks/wa?hub.mode=subscribe&hub.verify_token=my+verify%20token&hub.challenge=1158201444",
        );
        let Ok(Verdict::Answer(answer)) = got else {
            panic!("answered: {got:?}");
        };
        assert_eq!(
            (answer.kind, answer.status, answer.content_type),
            ("meta-subscribe", 200, "text/plain")
        );
        assert_eq!(answer.body, "1158201444");
    }

    #[test]
    fn subscription_get_with_a_wrong_or_missing_token_is_refused() {
        let scheme = meta(vec![Secret::from("s")]);
        for target in [
            "/h?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
            "/h?hub.mode=subscribe&hub.challenge=1",
            "/h?hub.mode=unsubscribe&hub.verify_token=my+verify+token&hub.challenge=1",
            "/h",
        ] {
            assert_eq!(
                get(&scheme, target),
                Err(Refusal::BadVerifyToken),
                "{target}"
            );
        }
        assert_eq!(Refusal::BadVerifyToken.reason(), "bad verify token");
    }

    #[test]
    fn the_signed_subscribe_handshake_is_accepted() {
        let scheme = meta(vec![Secret::from("s")]);
        let uri: Uri = testutil::URI.parse().unwrap();
        let request = scheme
            .sign_request(&Outgoing::new(b"", &uri, NOW).with_handshake(SUBSCRIBE))
            .unwrap();
        assert_eq!(request.method, Method::GET);
        assert!(matches!(
            get(&scheme, &request.uri.to_string()),
            Ok(Verdict::Answer(_))
        ));
    }

    #[test]
    fn a_post_is_an_event_checked_with_the_app_secret() {
        let scheme = meta(vec![Secret::from("It's a Secret to Everybody")]);
        // The same HMAC as GitHub's published vector: Meta signs identically.
        let headers = testutil::headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert_eq!(
            verdict_at(&scheme, &headers, b"Hello, World!", NOW),
            Ok(Verdict::deliver())
        );
    }
}
