//! Standard Webhooks (and Svix, which it grew from): `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64> [v1,<base64> …]`,
//! HMAC-SHA256 of `"{id}.{ts}.{body}"`.
//!
//! The secret is `whsec_<base64 key>`: the key is the decoded bytes, not the
//! string (unlike Stripe). A secret without the prefix is taken as the base64
//! key. `svix-*` headers are accepted where a `webhook-*` one is absent.
//! With `public_key = "whpk_<base64>"` (or `public_keys`), `v1a,<base64>`
//! Ed25519 signatures over the same message are accepted too; `v1` and
//! `v1a` entries may share one header, and any one that verifies is
//! enough. Other versions are ignored, and timestamps too far in the past
//! or the future are refused. The signed `webhook-id` is the delivery id.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

use ed25519_dalek::VerifyingKey;

use super::ed25519::{self, InvalidPublicKey};
use super::mac::{self, Algorithm};
use super::{
    Input, Outgoing, PrivateKey, Refusal, Scheme, Secret, SignError, Signed, Verdict, Window,
    check_timestamp, decode_base64, header_value, parse_unix_seconds, required_header,
    tolerance_secs,
};

pub(crate) const NAME: &str = "standard-webhooks";
const ID: HeaderName = HeaderName::from_static("webhook-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const SVIX_ID: HeaderName = HeaderName::from_static("svix-id");
const SVIX_TIMESTAMP: HeaderName = HeaderName::from_static("svix-timestamp");
const SVIX_SIGNATURE: HeaderName = HeaderName::from_static("svix-signature");
const SECRET_PREFIX: &[u8] = b"whsec_";

/// A configured secret that is not `whsec_` followed by base64. `index` is
/// its position in the list given to [`StandardWebhooks::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Standard Webhooks secret (expected `whsec_` followed by base64)")]
pub struct InvalidKey {
    pub index: usize,
}

#[derive(Debug)]
pub struct StandardWebhooks {
    keys: Vec<Secret>,
    public_keys: Vec<VerifyingKey>,
    tolerance: i64,
}

/// What `public_key` must look like, for configuration errors.
pub(crate) const PUBLIC_KEY_FORMAT: &str = "`whpk_` followed by the base64 Ed25519 public key";

fn decode_public_key(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.strip_prefix("whpk_")?).ok()
}

impl StandardWebhooks {
    /// Decodes each `whsec_…` secret into its key.
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Result<Self, InvalidKey> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| decode_key(secret.expose()).ok_or(InvalidKey { index }))
            .collect::<Result<_, _>>()?;
        Ok(StandardWebhooks {
            keys,
            public_keys: Vec::new(),
            tolerance: tolerance_secs(tolerance),
        })
    }

    /// Also accepts `v1a` signatures by any of these `whpk_…` keys.
    pub fn with_public_keys(mut self, keys: &[String]) -> Result<Self, InvalidPublicKey> {
        self.public_keys = ed25519::parse_keys(keys, decode_public_key, PUBLIC_KEY_FORMAT)?;
        Ok(self)
    }

    /// Like [`Scheme::sign`], with the message id chosen by the caller.
    pub fn sign_with_id(&self, id: &str, body: &[u8], now: i64) -> Result<HeaderMap, SignError> {
        self.sign_id_with(id, body, now, None)
    }

    /// Signs `v1` with the first secret, or `v1a` with `key` when given.
    fn sign_id_with(
        &self,
        id: &str,
        body: &[u8],
        now: i64,
        key: Option<&PrivateKey>,
    ) -> Result<HeaderMap, SignError> {
        let timestamp = now.to_string();
        let parts = signed_parts(id, &timestamp, body);
        let signature = match key {
            Some(key) => format!(
                "v1a,{}",
                STANDARD.encode(ed25519::sign(key.ed25519()?, &parts))
            ),
            None => {
                let key = self.keys.first().ok_or(SignError::NoSecret)?;
                let tag = mac::compute(Algorithm::Sha256, key, &parts);
                format!("v1,{}", STANDARD.encode(tag.as_bytes()))
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(ID, header_value(id)?);
        headers.insert(TIMESTAMP, header_value(&timestamp)?);
        headers.insert(SIGNATURE, header_value(&signature)?);
        Ok(headers)
    }
}

fn decode_key(secret: &[u8]) -> Option<Secret> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .ok()
        .filter(|key| !key.is_empty())
        .map(Secret::new)
}

/// The signed message. The timestamp is the parsed integer written back
/// out, as the reference libraries sign it.
fn signed_parts<'a>(id: &'a str, timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 5] {
    [id.as_bytes(), b".", timestamp.as_bytes(), b".", body]
}

/// A `webhook-*` header, or its `svix-*` twin when it is absent, with the
/// name it was found under.
fn header_or_svix(
    headers: &HeaderMap,
    name: HeaderName,
    svix: HeaderName,
    missing: fn(HeaderName) -> Refusal,
    malformed: fn(HeaderName) -> Refusal,
) -> Result<(HeaderName, &str), Refusal> {
    let which = if headers.contains_key(&name) || !headers.contains_key(&svix) {
        name
    } else {
        svix
    };
    let value = required_header(headers, &which, missing, malformed)?;
    Ok((which, value))
}

impl Scheme for StandardWebhooks {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, input: &Input<'_>) -> Result<Verdict, Refusal> {
        let h = input.headers;
        let (sig_name, signature) = header_or_svix(
            h,
            SIGNATURE,
            SVIX_SIGNATURE,
            Refusal::MissingSignature,
            Refusal::MalformedSignature,
        )?;
        // An id that is not text cannot be signed text either: treat it as absent.
        let (id_name, id) = header_or_svix(
            h,
            ID,
            SVIX_ID,
            Refusal::MissingMessageId,
            Refusal::MissingMessageId,
        )?;
        if id.is_empty() {
            return Err(Refusal::MissingMessageId(id_name));
        }
        let (ts_name, timestamp) = header_or_svix(
            h,
            TIMESTAMP,
            SVIX_TIMESTAMP,
            Refusal::MissingTimestamp,
            Refusal::MalformedTimestamp,
        )?;
        let ts = parse_unix_seconds(timestamp).ok_or(Refusal::MalformedTimestamp(ts_name))?;

        let mut v1 = Vec::new();
        let mut v1a = Vec::new();
        for entry in signature.split(' ').filter(|e| !e.is_empty()) {
            let (version, value) = entry
                .split_once(',')
                .ok_or_else(|| Refusal::MalformedSignature(sig_name.clone()))?;
            match version {
                "v1" if !self.keys.is_empty() => v1.push(value),
                "v1a" if !self.public_keys.is_empty() => v1a.push(value),
                _ => {}
            }
        }
        if v1.is_empty() && v1a.is_empty() {
            return Err(Refusal::MissingSignature(sig_name));
        }
        // An undecodable entry cannot match; malformed only if none is usable.
        let candidates: Vec<Vec<u8>> = v1.iter().filter_map(|s| decode_base64(s)).collect();
        let asymmetric: Vec<[u8; 64]> = v1a
            .iter()
            .filter_map(|s| decode_base64(s)?.try_into().ok())
            .collect();
        if candidates.is_empty() && asymmetric.is_empty() {
            return Err(Refusal::MalformedSignature(sig_name));
        }
        check_timestamp(ts, input.now, self.tolerance, Window::BothWays)?;
        let timestamp = ts.to_string();
        let parts = signed_parts(id, &timestamp, input.body);
        let matched = mac::any_key_matches(Algorithm::Sha256, &self.keys, &parts, &candidates)
            || asymmetric
                .iter()
                .any(|sig| ed25519::any_key_verifies(&self.public_keys, &parts, sig));
        if matched {
            // The id is signed: the host dedupes on it, whatever its length.
            Ok(Verdict::Deliver {
                signed_id: Some(id.to_owned()),
                replay: None,
            })
        } else {
            Err(Refusal::BadSignature)
        }
    }

    /// The message id is derived from the timestamp and body
    /// (`msg_` + 32 hex digits of their SHA-256): the same body sent in the
    /// same second gets the same id, a resend a second later is a new
    /// message. Use [`StandardWebhooks::sign_with_id`] to choose the id.
    fn sign_request(&self, out: &Outgoing<'_>) -> Result<Signed, SignError> {
        let (body, _uri, now) = (out.body, out.uri, out.now);
        let digest = Sha256::new()
            .chain_update(now.to_string())
            .chain_update(b".")
            .chain_update(body)
            .finalize();
        let id = format!("msg_{}", hex::encode(&digest[..16]));
        Signed::post(out, self.sign_id_with(&id, body, now, out.key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, NOW, name, signed_with, verify_at};
    use super::*;
    use http::Uri;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn standard(secrets: Vec<Secret>) -> StandardWebhooks {
        StandardWebhooks::new(secrets, FIVE_MINUTES).expect("valid test secrets")
    }

    testutil::scheme_contract!(
        standard,
        [SECRET, "whsec_c2Vjb25kIHNlY3JldCBrZXk="],
        covers_body
    );

    #[test]
    fn published_vector_verifies_at_its_time() {
        for v in testutil::vectors(NAME) {
            let scheme = standard(vec![Secret::from(v["secret"].as_str().unwrap())]);
            let body = v["body"].as_str().unwrap().as_bytes();
            let now = v["now"].as_i64().unwrap();
            let headers = testutil::vector_headers(&v);
            assert_eq!(verify_at(&scheme, &headers, body, now), Ok(()));
            let id = headers["webhook-id"].to_str().unwrap();
            assert_eq!(scheme.sign_with_id(id, body, now).unwrap(), headers);
        }
    }

    #[test]
    fn published_vector_verifies_under_svix_names() {
        for v in testutil::vectors(NAME) {
            let scheme = standard(vec![Secret::from(v["secret"].as_str().unwrap())]);
            let mut headers = HeaderMap::new();
            for (k, val) in testutil::vector_headers(&v) {
                let k = k.unwrap().as_str().replace("webhook-", "svix-");
                headers.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), val);
            }
            let body = v["body"].as_str().unwrap().as_bytes();
            assert_eq!(
                verify_at(&scheme, &headers, body, v["now"].as_i64().unwrap()),
                Ok(())
            );
        }
    }

    #[test]
    fn secret_without_prefix_is_the_base64_key() {
        let bare = standard(vec![Secret::from(&SECRET["whsec_".len()..])]);
        let prefixed = standard(vec![Secret::from(SECRET)]);
        assert_eq!(
            testutil::deliver(&prefixed, b"{}", NOW, &bare, b"{}", NOW),
            Ok(())
        );
    }

    #[test]
    fn secret_that_is_not_base64_is_rejected_with_its_index() {
        let got = StandardWebhooks::new(
            vec![Secret::from(SECRET), Secret::from("whsec_not base64!")],
            FIVE_MINUTES,
        );
        assert_eq!(got.unwrap_err(), InvalidKey { index: 1 });
        assert!(StandardWebhooks::new(vec![Secret::from("whsec_")], FIVE_MINUTES).is_err());
    }

    #[test]
    fn any_v1_may_match_and_other_versions_are_ignored() {
        let scheme = standard(vec![Secret::from(SECRET)]);
        let signed = scheme.sign_with_id("msg_1", b"{}", NOW).unwrap();
        let good = signed["webhook-signature"].to_str().unwrap();
        let value = format!(
            "v1a,AAAA v1,{} {good} v2,whatever",
            STANDARD.encode([0u8; 32])
        );
        let headers = signed_with(&scheme, b"{}", "webhook-signature", Some(&value));
        let headers = with(headers, "webhook-id", "msg_1");
        assert_eq!(verify_at(&scheme, &headers, b"{}", NOW), Ok(()));
    }

    fn with(mut headers: HeaderMap, name: &'static str, value: &str) -> HeaderMap {
        headers.insert(name, value.parse().unwrap());
        headers
    }

    #[test]
    fn missing_headers() {
        let scheme = standard(vec![Secret::from(SECRET)]);
        let cases = [
            (
                "webhook-signature",
                Refusal::MissingSignature(name("webhook-signature")),
            ),
            ("webhook-id", Refusal::MissingMessageId(name("webhook-id"))),
            (
                "webhook-timestamp",
                Refusal::MissingTimestamp(name("webhook-timestamp")),
            ),
        ];
        for (header, want) in cases {
            let headers = signed_with(&scheme, b"{}", header, None);
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(want),
                "{header}"
            );
        }
    }

    #[test]
    fn malformed_headers() {
        let scheme = standard(vec![Secret::from(SECRET)]);
        let sig = || Refusal::MalformedSignature(name("webhook-signature"));
        let cases = [
            ("webhook-signature", "garbage", sig()),
            ("webhook-signature", "v1,@@@@", sig()),
            (
                "webhook-signature",
                "v1a,AAAA",
                Refusal::MissingSignature(name("webhook-signature")),
            ),
            (
                "webhook-timestamp",
                "later",
                Refusal::MalformedTimestamp(name("webhook-timestamp")),
            ),
            (
                "webhook-id",
                "",
                Refusal::MissingMessageId(name("webhook-id")),
            ),
        ];
        for (header, value, want) in cases {
            let headers = signed_with(&scheme, b"{}", header, Some(value));
            assert_eq!(
                verify_at(&scheme, &headers, b"{}", NOW),
                Err(want),
                "{header}: {value:?}"
            );
        }
    }

    #[test]
    fn stale_timestamp_is_refused() {
        let scheme = standard(vec![Secret::from(SECRET)]);
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW - 900, &scheme, b"{}", NOW),
            Err(Refusal::TimestampOutsideTolerance {
                age: 900,
                tolerance: 300
            })
        );
    }

    #[test]
    fn future_timestamp_is_refused() {
        let scheme = standard(vec![Secret::from(SECRET)]);
        assert_eq!(
            testutil::deliver(&scheme, b"{}", NOW + 900, &scheme, b"{}", NOW),
            Err(Refusal::TimestampOutsideTolerance {
                age: -900,
                tolerance: 300
            })
        );
    }

    fn ed_key(seed: u8) -> PrivateKey {
        PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    fn whpk(key: &PrivateKey) -> String {
        let public = key.ed25519().unwrap().verifying_key();
        format!("whpk_{}", STANDARD.encode(public.as_bytes()))
    }

    fn signed_v1a(key: &PrivateKey, body: &[u8], at: i64) -> HeaderMap {
        let uri: Uri = testutil::URI.parse().unwrap();
        let scheme = standard(vec![]);
        scheme
            .sign_request(&Outgoing::new(body, &uri, at).with_key(key))
            .unwrap()
            .headers
    }

    #[test]
    fn v1a_ed25519_signatures_verify_with_the_public_key() {
        let key = ed_key(3);
        let scheme = standard(vec![]).with_public_keys(&[whpk(&key)]).unwrap();
        let headers = signed_v1a(&key, b"{}", NOW);
        assert!(
            headers["webhook-signature"]
                .to_str()
                .unwrap()
                .starts_with("v1a,")
        );
        assert_eq!(verify_at(&scheme, &headers, b"{}", NOW), Ok(()));
        assert_eq!(
            verify_at(&scheme, &headers, b"{ }", NOW),
            Err(Refusal::BadSignature)
        );
        let other = standard(vec![])
            .with_public_keys(&[whpk(&ed_key(4))])
            .unwrap();
        assert_eq!(
            verify_at(&other, &headers, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
        assert!(matches!(
            verify_at(&scheme, &headers, b"{}", NOW + 301),
            Err(Refusal::TimestampOutsideTolerance { .. })
        ));
        // Without a public key, a v1a-only header has nothing to check.
        assert_eq!(
            verify_at(&standard(vec![Secret::from(SECRET)]), &headers, b"{}", NOW),
            Err(Refusal::MissingSignature(name("webhook-signature")))
        );
    }

    #[test]
    fn v1_and_v1a_may_share_one_header() {
        let key = ed_key(3);
        let both = standard(vec![Secret::from(SECRET)])
            .with_public_keys(&[whpk(&key)])
            .unwrap();
        let hmac = both.sign_with_id("msg_1", b"{}", NOW).unwrap();
        let uri: Uri = testutil::URI.parse().unwrap();
        let ed = both
            .sign_request(&Outgoing::new(b"{}", &uri, NOW).with_key(&key))
            .unwrap()
            .headers;
        let ed = ed["webhook-signature"].to_str().unwrap().to_owned();
        let v1 = hmac["webhook-signature"].to_str().unwrap().to_owned();
        // Each entry verifies alone in the shared header; a wrong v1 beside
        // a good v1a is still accepted, as the reference libraries do.
        let ed_id = both
            .sign_request(&Outgoing::new(b"{}", &uri, NOW).with_key(&key))
            .unwrap()
            .headers["webhook-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let bad_v1 = format!("v1,{}", STANDARD.encode([0u8; 32]));
        let headers = with(
            signed_with(
                &both,
                b"{}",
                "webhook-signature",
                Some(&format!("{bad_v1} {ed}")),
            ),
            "webhook-id",
            &ed_id,
        );
        assert_eq!(verify_at(&both, &headers, b"{}", NOW), Ok(()));
        let headers = with(
            signed_with(
                &both,
                b"{}",
                "webhook-signature",
                Some(&format!("{ed} {v1}")),
            ),
            "webhook-id",
            "msg_1",
        );
        // The v1a was signed for another id, the v1 for msg_1: v1 matches.
        assert_eq!(verify_at(&both, &headers, b"{}", NOW), Ok(()));
        assert!(
            standard(vec![])
                .with_public_keys(&["whsec_abc".into()])
                .is_err()
        );
    }

    #[test]
    fn the_signed_message_id_is_the_delivery_id() {
        let scheme = standard(vec![Secret::from(SECRET)]);
        let long = "msg_".to_owned() + &"x".repeat(300);
        let headers = scheme.sign_with_id(&long, b"{}", NOW).unwrap();
        assert_eq!(
            testutil::verdict_at(&scheme, &headers, b"{}", NOW),
            Ok(Verdict::Deliver {
                signed_id: Some(long),
                replay: None
            })
        );
    }

    #[test]
    fn message_id_is_signed() {
        let scheme = standard(vec![Secret::from(SECRET)]);
        let headers = signed_with(&scheme, b"{}", "webhook-id", Some("msg_other"));
        assert_eq!(
            verify_at(&scheme, &headers, b"{}", NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn derived_ids_differ_by_body_and_time() {
        let scheme = standard(vec![Secret::from(SECRET)]);
        let uri: Uri = testutil::URI.parse().unwrap();
        let id = |body: &[u8], now| scheme.sign(body, &uri, now).unwrap()["webhook-id"].clone();
        assert_eq!(id(b"a", NOW), id(b"a", NOW));
        assert_ne!(id(b"a", NOW), id(b"b", NOW));
        assert_ne!(id(b"a", NOW), id(b"a", NOW + 1));
    }
}
