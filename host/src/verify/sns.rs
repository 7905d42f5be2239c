//! Amazon SNS: the message is a JSON body signed with RSA by a certificate
//! that AWS publishes at `SigningCertURL`. `SignatureVersion` 1 is
//! SHA1withRSA, 2 is SHA256withRSA, over SNS's canonical string (the
//! message's fields as `Name\nvalue\n`, in AWS's documented order).
//!
//! Strategy: the certificate URL comes from the sender, so it is checked
//! before anything else: `https`, a host matching `cert_hosts` (default
//! `sns.*.amazonaws.com`, `*` being one DNS label; an entry may end in
//! `:PORT`, and then only that port matches, else only the default one) and
//! a `.pem` path.
//! Only then is it looked up in [`Input::keys`]; when absent the scheme
//! answers [`Refusal::KeyUnavailable`] and the host fetches it. The
//! certificate must be valid at `now`.
//!
//! By `Type`:
//! - `Notification`: a delivery; the signed `MessageId` is its id.
//! - `SubscriptionConfirmation`: answered 200 (handshake
//!   `sns-subscription-confirmation`); with `confirm = true` the answer's
//!   follow-up is a `GET` of `SubscribeURL` (held to the same host rule).
//! - `UnsubscribeConfirmation`: answered 200 (`sns-unsubscribe-confirmation`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use rsa::pkcs1v15;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};

use super::signing::unknown_handshake;
use super::{FollowUp, Handshake, Input, Outgoing, Refusal, Scheme, SignError, Signed, Verdict};

pub(crate) const NAME: &str = "sns";
const MESSAGE_TYPE: HeaderName = HeaderName::from_static("x-amz-sns-message-type");
const CONFIRMATION: &str = "sns-subscription-confirmation";
const UNSUBSCRIBE: &str = "sns-unsubscribe-confirmation";
/// The hosts SNS serves its certificates and confirmation URLs from.
pub const DEFAULT_CERT_HOSTS: &[&str] = &["sns.*.amazonaws.com"];

#[derive(Debug)]
pub struct Sns {
    cert_hosts: Vec<HostPattern>,
    confirm: bool,
}

/// One `cert_hosts` entry: a host pattern, and the port it names, if any.
#[derive(Debug)]
struct HostPattern {
    host: String,
    /// `None`: the URL must not name a port (AWS's never do).
    port: Option<u16>,
}

/// A `cert_hosts` entry that is not a host pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a host name pattern (e.g. `sns.*.amazonaws.com`; `*` stands for one DNS label; \
     `:PORT` at the end allows that port only)"
)]
pub struct InvalidHostPattern {
    pub index: usize,
}

impl Sns {
    pub fn new(cert_hosts: &[String], confirm: bool) -> Result<Self, InvalidHostPattern> {
        let mut patterns = Vec::with_capacity(cert_hosts.len());
        for (index, entry) in cert_hosts.iter().enumerate() {
            let (host, port) = match entry.rsplit_once(':') {
                // `:0443`-style spellings parse to a port but are no one's.
                Some((host, text)) => match text.parse::<u16>() {
                    Ok(port) if port > 0 && port.to_string() == text => (host, Some(port)),
                    _ => return Err(InvalidHostPattern { index }),
                },
                None => (entry.as_str(), None),
            };
            let ok = !host.is_empty()
                && host.split('.').all(|label| {
                    label == "*"
                        || (!label.is_empty()
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
                });
            if !ok {
                return Err(InvalidHostPattern { index });
            }
            patterns.push(HostPattern {
                host: host.to_ascii_lowercase(),
                port,
            });
        }
        Ok(Sns {
            cert_hosts: patterns,
            confirm,
        })
    }

    /// Whether `url` is `https` on a trusted host, on the port its pattern
    /// names (none: no port), without user info.
    fn trusted(&self, url: &str) -> bool {
        let Ok(uri) = url.parse::<http::Uri>() else {
            return false;
        };
        let Some(authority) = uri.authority() else {
            return false;
        };
        if uri.scheme_str() != Some("https") || authority.as_str().contains('@') {
            return false;
        }
        // `host:` with an empty port parses; it is no port anyone meant.
        if authority.as_str().ends_with(':') {
            return false;
        }
        let host = authority.host().to_ascii_lowercase();
        let port = authority.port_u16();
        self.cert_hosts
            .iter()
            .any(|pattern| pattern.port == port && host_matches(&pattern.host, &host))
    }

    /// The authority [`Sns::sign_request`] names in its URLs: the first
    /// `cert_hosts` entry, each `*` label written `us-east-1`, so a
    /// request signed for a route carries URLs that route trusts.
    fn signing_authority(&self) -> String {
        let Some(first) = self.cert_hosts.first() else {
            return "sns.us-east-1.amazonaws.com".to_owned();
        };
        let host: Vec<&str> = first
            .host
            .split('.')
            .map(|label| if label == "*" { "us-east-1" } else { label })
            .collect();
        match first.port {
            Some(port) => format!("{}:{port}", host.join(".")),
            None => host.join("."),
        }
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len()
        && p.iter().zip(&h).all(|(p, h)| {
            !h.is_empty()
                && (*p == "*" && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    || p == h)
        })
}

/// The fields of an SNS message that matter here.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    message: String,
    timestamp: String,
    signature_version: String,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "SubscribeURL", skip_serializing_if = "Option::is_none")]
    subscribe_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl Message {
    /// AWS's canonical string: fixed field order, `Subject` only when
    /// present, `SubscribeURL`/`Token` only for confirmations.
    fn canonical(&self) -> Result<String, Refusal> {
        let mut out = String::new();
        let mut field = |name: &str, value: &str| {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        };
        match self.kind.as_str() {
            "Notification" => {
                field("Message", &self.message);
                field("MessageId", &self.message_id);
                if let Some(subject) = &self.subject {
                    field("Subject", subject);
                }
                field("Timestamp", &self.timestamp);
                field("TopicArn", &self.topic_arn);
                field("Type", &self.kind);
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                let missing = Refusal::MalformedBody("a confirmation without SubscribeURL/Token");
                field("Message", &self.message);
                field("MessageId", &self.message_id);
                field(
                    "SubscribeURL",
                    self.subscribe_url.as_deref().ok_or(missing.clone())?,
                );
                field("Timestamp", &self.timestamp);
                field("Token", self.token.as_deref().ok_or(missing)?);
                field("TopicArn", &self.topic_arn);
                field("Type", &self.kind);
            }
            _ => return Err(Refusal::MalformedBody("unknown SNS message `Type`")),
        }
        Ok(out)
    }
}

/// The RSA public key of a PEM certificate valid at `now`.
fn certificate_key(pem: &[u8], now: i64) -> Option<rsa::PublicKey> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let at = x509_parser::time::ASN1Time::from_timestamp(now).ok()?;
    if !cert.validity().is_valid_at(at) {
        return None;
    }
    rsa::PublicKey::from_public_key_der(cert.public_key().raw).ok()
}

impl Scheme for Sns {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handshakes(&self) -> &'static [&'static str] {
        &[CONFIRMATION, UNSUBSCRIBE]
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let message: Message = serde_json::from_slice(input.body)
            .map_err(|_| Refusal::MalformedBody("not an SNS message"))?;
        if let Some(header) = input.headers.get(MESSAGE_TYPE)
            && header.as_bytes() != message.kind.as_bytes()
        {
            return Err(Refusal::MalformedBody(
                "`x-amz-sns-message-type` and `Type` differ",
            ));
        }
        if !self.trusted(&message.signing_cert_url) || !message.signing_cert_url.ends_with(".pem") {
            return Err(Refusal::UntrustedUrl(message.signing_cert_url));
        }
        let canonical = message.canonical()?;
        let signature = STANDARD
            .decode(&message.signature)
            .ok()
            .and_then(|bytes| pkcs1v15::Signature::try_from(bytes.as_slice()).ok())
            .ok_or(Refusal::MalformedBody("`Signature` is not base64"))?;
        let Some(pem) = input.keys.get(&message.signing_cert_url, input.now) else {
            return Err(Refusal::KeyUnavailable {
                url: message.signing_cert_url,
            });
        };
        let key = certificate_key(&pem, input.now).ok_or(Refusal::BadSignature)?;
        let verified = match message.signature_version.as_str() {
            "1" => pkcs1v15::VerifyingKey::<sha1::Sha1>::new(key)
                .verify(canonical.as_bytes(), &signature)
                .is_ok(),
            "2" => pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(canonical.as_bytes(), &signature)
                .is_ok(),
            _ => return Err(Refusal::MalformedBody("`SignatureVersion` is not 1 or 2")),
        };
        if !verified {
            return Err(Refusal::BadSignature);
        }
        match message.kind.as_str() {
            "Notification" => Ok(Verdict::Deliver {
                signed_id: Some(message.message_id),
                replay: None,
            }),
            "SubscriptionConfirmation" => {
                let url = message.subscribe_url.unwrap_or_default();
                if !self.trusted(&url) {
                    return Err(Refusal::UntrustedUrl(url));
                }
                let mut answer = Handshake::new(CONFIRMATION, 200, "text/plain", Bytes::new());
                if self.confirm {
                    answer.follow_up = Some(FollowUp::Get { url });
                }
                Ok(Verdict::Answer(answer))
            }
            _ => Ok(Verdict::Answer(Handshake::new(
                UNSUBSCRIBE,
                200,
                "text/plain",
                Bytes::new(),
            ))),
        }
    }

    /// Signs with `SignatureVersion` 2 and an RSA key. The certificate is
    /// said to be at `/SimpleNotificationService-hookhost-test.pem` and the
    /// `SubscribeURL` at `/?Action=ConfirmSubscription…`, both on the first
    /// `cert_hosts` entry ([`TEST_CERT_URL`] with the default), where the
    /// test serves or caches them.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let key = out.private_key()?.rsa()?;
        let (kind, body) = match out.handshake {
            None => ("Notification", String::from_utf8_lossy(out.body).into_owned()),
            Some(CONFIRMATION) => ("SubscriptionConfirmation", "You have chosen to subscribe to the topic arn:aws:sns:us-east-1:123456789012:hookhost.\nTo confirm the subscription, visit the SubscribeURL included in this message.".to_owned()),
            Some(UNSUBSCRIBE) => ("UnsubscribeConfirmation", "You have chosen to deactivate subscription.".to_owned()),
            Some(other) => return Err(unknown_handshake(other, self.handshakes())),
        };
        let id = {
            use sha2::{Digest, Sha256};
            let d = Sha256::new()
                .chain_update(out.now.to_string())
                .chain_update(&body)
                .finalize();
            let h = hex::encode(&d[..16]);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        };
        let timestamp = humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(out.now).unwrap_or(0)),
        )
        .to_string();
        let confirmation = kind != "Notification";
        let authority = self.signing_authority();
        let mut message = Message {
            kind: kind.to_owned(),
            message_id: id,
            topic_arn: "arn:aws:sns:us-east-1:123456789012:hookhost".into(),
            subject: None,
            message: body,
            timestamp,
            signature_version: "2".into(),
            signature: String::new(),
            signing_cert_url: format!("https://{authority}{TEST_CERT_PATH}"),
            subscribe_url: confirmation.then(|| format!("https://{authority}/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:hookhost&Token=2336412f37fb687f5d51e6e2425")),
            token: confirmation.then(|| "2336412f37fb687f5d51e6e2425".into()),
        };
        let canonical = message
            .canonical()
            .map_err(|_| SignError::Unsupported("message type"))?;
        let signature: pkcs1v15::Signature =
            pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone()).sign(canonical.as_bytes());
        message.signature = STANDARD.encode(Box::<[u8]>::from(signature));
        let mut headers = HeaderMap::new();
        headers.insert(
            MESSAGE_TYPE,
            HeaderValue::from_str(kind).map_err(|_| SignError::InvalidHeaderValue)?,
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        let body = serde_json::to_vec(&message).map_err(|_| SignError::Unsupported("json"))?;
        Ok(Signed::post_body(out, headers, Bytes::from(body)))
    }
}

/// Where [`Sns::sign_request`] says its certificate is, with the default
/// `cert_hosts`.
pub const TEST_CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-hookhost-test.pem";
/// The path of that certificate, on whichever host signs.
pub const TEST_CERT_PATH: &str = "/SimpleNotificationService-hookhost-test.pem";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{KeyCache, PrivateKey};
    use super::*;

    const KEY: &str = include_str!("testdata/sns-test-key.pem");
    const CERT: &str = include_str!("testdata/sns-test-cert.pem");
    /// After the test certificate's notBefore (2026-12-02).
    const NOW: i64 = 1_800_000_000;

    fn sns(confirm: bool) -> Sns {
        let hosts: Vec<String> = DEFAULT_CERT_HOSTS.iter().map(|h| h.to_string()).collect();
        Sns::new(&hosts, confirm).unwrap()
    }

    fn keys() -> KeyCache {
        let cache = KeyCache::new(8, Duration::from_secs(3600));
        cache.insert(TEST_CERT_URL, Bytes::from_static(CERT.as_bytes()), NOW);
        cache
    }

    fn signed(body: &[u8], handshake: Option<&str>) -> Signed {
        let key = PrivateKey::from_pem(KEY).unwrap();
        let uri = "https://hooks.example.com/hooks/sns".parse().unwrap();
        let mut out = Outgoing::new(body, &uri, NOW).with_key(&key);
        out.handshake = handshake;
        sns(false).sign_request(&out).unwrap()
    }

    fn verify(scheme: &Sns, request: &Signed, keys: &KeyCache) -> Result<Verdict, Refusal> {
        let uri: http::Uri = "/hooks/sns".parse().unwrap();
        scheme.verify(&Input {
            method: &http::Method::POST,
            headers: &request.headers,
            body: &request.body,
            uri: &uri,
            now: NOW,
            keys,
        })
    }

    #[test]
    fn a_notification_needs_the_certificate_then_verifies_with_its_message_id() {
        let request = signed(b"hello", None);
        let empty = KeyCache::new(8, Duration::from_secs(3600));
        assert_eq!(
            verify(&sns(false), &request, &empty),
            Err(Refusal::KeyUnavailable {
                url: TEST_CERT_URL.into()
            })
        );
        let message: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            verify(&sns(false), &request, &keys()),
            Ok(Verdict::Deliver {
                signed_id: Some(message["MessageId"].as_str().unwrap().into()),
                replay: None
            })
        );
    }

    #[test]
    fn tampered_fields_and_untrusted_urls_are_refused() {
        let request = signed(b"hello", None);
        let mut message: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        message["Message"] = "hellO".into();
        let tampered = Signed {
            body: Bytes::from(message.to_string()),
            ..request.clone()
        };
        assert_eq!(
            verify(&sns(false), &tampered, &keys()),
            Err(Refusal::BadSignature)
        );
        for url in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
            "https://evil.com/sns.us-east-1.amazonaws.com.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.txt",
            "https://a.b.amazonaws.com/x.pem",
        ] {
            let mut message: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            message["SigningCertURL"] = url.into();
            let moved = Signed {
                body: Bytes::from(message.to_string()),
                ..request.clone()
            };
            assert_eq!(
                verify(&sns(false), &moved, &keys()),
                Err(Refusal::UntrustedUrl(url.into())),
                "{url}"
            );
        }
        // SignatureVersion 1 over the same string is SHA-1: a v2 signature
        // relabelled v1 does not verify.
        let mut message: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        message["SignatureVersion"] = "1".into();
        let relabelled = Signed {
            body: Bytes::from(message.to_string()),
            ..request.clone()
        };
        assert_eq!(
            verify(&sns(false), &relabelled, &keys()),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn signature_version_1_is_sha1_with_rsa() {
        let request = signed(b"hello", None);
        let mut message: Message = serde_json::from_slice(&request.body).unwrap();
        message.signature_version = "1".into();
        let key = PrivateKey::from_pem(KEY).unwrap();
        let sig: pkcs1v15::Signature =
            pkcs1v15::SigningKey::<sha1::Sha1>::new(key.rsa().unwrap().clone())
                .sign(message.canonical().unwrap().as_bytes());
        message.signature = STANDARD.encode(Box::<[u8]>::from(sig));
        let v1 = Signed {
            body: Bytes::from(serde_json::to_vec(&message).unwrap()),
            ..request
        };
        assert!(matches!(
            verify(&sns(false), &v1, &keys()),
            Ok(Verdict::Deliver { .. })
        ));
    }

    #[test]
    fn a_subscription_confirmation_is_answered_and_confirmed_only_when_asked() {
        let request = signed(b"", Some(CONFIRMATION));
        let Ok(Verdict::Answer(answer)) = verify(&sns(true), &request, &keys()) else {
            panic!("answered");
        };
        assert_eq!((answer.kind, answer.status), (CONFIRMATION, 200));
        let Some(FollowUp::Get { url }) = answer.follow_up else {
            panic!("confirm = true follows up");
        };
        assert!(url.starts_with("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"));
        let Ok(Verdict::Answer(answer)) = verify(&sns(false), &request, &keys()) else {
            panic!("answered");
        };
        assert_eq!(answer.follow_up, None);
        let request = signed(b"", Some(UNSUBSCRIBE));
        assert!(matches!(
            verify(&sns(true), &request, &keys()),
            Ok(Verdict::Answer(Handshake {
                kind: UNSUBSCRIBE,
                follow_up: None,
                ..
            }))
        ));
    }

    #[test]
    fn an_expired_certificate_verifies_nothing() {
        let request = signed(b"hello", None);
        let uri: http::Uri = "/hooks/sns".parse().unwrap();
        let cache = KeyCache::new(8, Duration::from_secs(u64::MAX / 4));
        cache.insert(TEST_CERT_URL, Bytes::from_static(CERT.as_bytes()), 0);
        let early = sns(false).verify(&Input {
            method: &http::Method::POST,
            headers: &request.headers,
            body: &request.body,
            uri: &uri,
            now: 1_700_000_000,
            keys: &cache,
        });
        assert_eq!(early, Err(Refusal::BadSignature));
    }

    #[test]
    fn a_cert_hosts_entry_with_a_port_trusts_that_port_only_and_signs_for_it() {
        let local = Sns::new(&["127.0.0.1:8443".into()], false).unwrap();
        assert!(local.trusted("https://127.0.0.1:8443/c.pem"));
        for url in [
            "https://127.0.0.1/c.pem",
            "https://127.0.0.1:9443/c.pem",
            "https://127.0.0.1:/c.pem",
            "http://127.0.0.1:8443/c.pem",
        ] {
            assert!(!local.trusted(url), "{url}");
        }
        assert!(!sns(false).trusted("https://sns.us-east-1.amazonaws.com:443/c.pem"));
        for bad in [
            "127.0.0.1:",
            "127.0.0.1:0",
            "127.0.0.1:0443",
            "127.0.0.1:99999",
            ":8443",
        ] {
            assert_eq!(
                Sns::new(&[bad.into()], false).unwrap_err().index,
                0,
                "{bad}"
            );
        }

        let key = PrivateKey::from_pem(KEY).unwrap();
        let uri = "https://hooks.example.com/hooks/sns".parse().unwrap();
        let out = Outgoing::new(b"", &uri, NOW).with_key(&key);
        let signed = local
            .sign_request(&out.with_handshake(CONFIRMATION))
            .unwrap();
        let message: serde_json::Value = serde_json::from_slice(&signed.body).unwrap();
        assert_eq!(
            message["SigningCertURL"],
            format!("https://127.0.0.1:8443{TEST_CERT_PATH}")
        );
        assert!(
            message["SubscribeURL"]
                .as_str()
                .unwrap()
                .starts_with("https://127.0.0.1:8443/?Action=ConfirmSubscription"),
            "{message}"
        );
        let signed = sns(false).sign_request(&out).unwrap();
        let message: serde_json::Value = serde_json::from_slice(&signed.body).unwrap();
        assert_eq!(message["SigningCertURL"], TEST_CERT_URL);
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches(
            "sns.*.amazonaws.com",
            "sns.eu-west-1.amazonaws.com"
        ));
        assert!(!host_matches("sns.*.amazonaws.com", "sns.amazonaws.com"));
        assert!(!host_matches(
            "sns.*.amazonaws.com",
            "sns.a.b.amazonaws.com"
        ));
        assert_eq!(
            Sns::new(&["sns.*.amazon aws.com".into()], false)
                .unwrap_err()
                .index,
            0
        );
    }
}
