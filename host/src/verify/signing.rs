//! The sender's side of every scheme: what [`super::Scheme::sign_request`]
//! is given ([`Outgoing`]) and builds ([`Signed`]), and the private keys of
//! key-pair schemes ([`PrivateKey`]), so `hookhost send` and tests can sign
//! every scheme, handshakes included.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

use super::SignError;

/// What to sign.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    /// The body to deliver; ignored when building a handshake, whose body
    /// the scheme writes.
    pub body: &'a [u8],
    /// Where the request goes; schemes that sign the URL (Twilio, Square,
    /// HubSpot) sign this one.
    pub uri: &'a Uri,
    /// Unix seconds to sign as the send time.
    pub now: i64,
    /// `Some(kind)`: build this handshake (one of the scheme's
    /// [`super::Scheme::handshakes`]) instead of a delivery.
    pub handshake: Option<&'a str>,
    /// The private key of key-pair schemes (Ed25519, ECDSA P-256, RSA).
    pub key: Option<&'a PrivateKey>,
}

impl<'a> Outgoing<'a> {
    /// A delivery of `body` to `uri` at `now`, without a private key.
    pub fn new(body: &'a [u8], uri: &'a Uri, now: i64) -> Self {
        Outgoing {
            body,
            uri,
            now,
            handshake: None,
            key: None,
        }
    }

    /// The same request signed with `key`.
    pub fn with_key(self, key: &'a PrivateKey) -> Self {
        Outgoing {
            key: Some(key),
            ..self
        }
    }

    /// The handshake `kind` instead of a delivery.
    pub fn with_handshake(self, kind: &'a str) -> Self {
        Outgoing {
            handshake: Some(kind),
            ..self
        }
    }

    /// The private key, or the error that says to pass one.
    pub fn private_key(&self) -> Result<&'a PrivateKey, SignError> {
        self.key.ok_or(SignError::NeedsPrivateKey)
    }
}

impl fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("body_len", &self.body.len())
            .field("uri", self.uri)
            .field("now", &self.now)
            .field("handshake", &self.handshake)
            .field("key", &self.key.map(PrivateKey::kind))
            .finish()
    }
}

/// A request as its sender would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub method: Method,
    /// `Outgoing::uri`, with a query added for handshakes that use one
    /// (Meta's `hub.challenge`, Graph's `validationToken`).
    pub uri: Uri,
    /// The headers the sender adds (signature, timestamp, id, content type).
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Signed {
    /// A `POST` of `out.body` with `headers`; refuses a handshake, for
    /// schemes that have none.
    pub(crate) fn post(out: &Outgoing<'_>, headers: HeaderMap) -> Result<Self, SignError> {
        if let Some(kind) = out.handshake {
            return Err(unknown_handshake(kind, &[]));
        }
        Ok(Signed::post_body(
            out,
            headers,
            Bytes::copy_from_slice(out.body),
        ))
    }

    /// A `POST` of `body` (a handshake's) to `out.uri`.
    pub(crate) fn post_body(out: &Outgoing<'_>, headers: HeaderMap, body: Bytes) -> Self {
        Signed {
            method: Method::POST,
            uri: out.uri.clone(),
            headers,
            body,
        }
    }
}

/// The error for a handshake kind the scheme does not have.
pub(crate) fn unknown_handshake(given: &str, known: &[&str]) -> SignError {
    SignError::UnknownHandshake {
        given: given.to_owned(),
        known: if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        },
    }
}

/// A private key for a key-pair scheme, read from PKCS#8 PEM
/// (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey` and
/// `hookhost keygen` write).
#[derive(Clone)]
pub enum PrivateKey {
    /// `discord`, `standard-webhooks` (`v1a`).
    Ed25519(ed25519_dalek::SigningKey),
    /// `sendgrid`.
    P256(p256::ecdsa::SigningKey),
    /// `pubsub` (RS256 tokens) and `sns` (SHA-256/SHA-1 with RSA).
    Rsa(Box<rsa::PrivateKey>),
}

/// Why a private key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a PKCS#8 PEM private key of type Ed25519, ECDSA P-256 or RSA (expected `-----BEGIN PRIVATE KEY-----`)"
)]
pub struct KeyError;

impl PrivateKey {
    /// Reads a PKCS#8 PEM private key of any supported type.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        use p256::pkcs8::DecodePrivateKey as _;
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::Ed25519(key));
        }
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::P256(key));
        }
        if let Ok(key) = rsa::PrivateKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::Rsa(Box::new(key)));
        }
        Err(KeyError)
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        let pem = match self {
            PrivateKey::Ed25519(key) => return ed25519_pem(key),
            PrivateKey::P256(key) => key.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::Rsa(key) => key.to_pkcs8_pem(LineEnding::LF),
        };
        pem.expect("an in-memory key encodes").to_string()
    }

    /// `ed25519`, `p256` or `rsa`: for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            PrivateKey::Ed25519(_) => "ed25519",
            PrivateKey::P256(_) => "p256",
            PrivateKey::Rsa(_) => "rsa",
        }
    }

    pub fn ed25519(&self) -> Result<&ed25519_dalek::SigningKey, SignError> {
        match self {
            PrivateKey::Ed25519(key) => Ok(key),
            other => Err(SignError::WrongKeyType {
                given: other.kind(),
                wanted: "ed25519",
            }),
        }
    }

    pub fn p256(&self) -> Result<&p256::ecdsa::SigningKey, SignError> {
        match self {
            PrivateKey::P256(key) => Ok(key),
            other => Err(SignError::WrongKeyType {
                given: other.kind(),
                wanted: "p256",
            }),
        }
    }

    pub fn rsa(&self) -> Result<&rsa::PrivateKey, SignError> {
        match self {
            PrivateKey::Rsa(key) => Ok(key),
            other => Err(SignError::WrongKeyType {
                given: other.kind(),
                wanted: "rsa",
            }),
        }
    }
}

/// RFC 8410's PKCS#8 v1 form of an Ed25519 key: a fixed DER header, then
/// the 32-byte seed. Written out here because the enabled ed25519-dalek
/// features decode PKCS#8 but do not encode it.
fn ed25519_pem(key: &ed25519_dalek::SigningKey) -> String {
    use base64::Engine as _;
    const HEADER: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let der = [&HEADER[..], key.as_bytes()].concat();
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{encoded}\n-----END PRIVATE KEY-----\n")
}

/// Names the key type only.
impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_and_debug_hides_the_key() {
        let key = PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let back = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(back.kind(), "ed25519");
        assert_eq!(format!("{back:?}"), "PrivateKey(ed25519, <redacted>)");

        let p256 = PrivateKey::P256(p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap());
        assert_eq!(PrivateKey::from_pem(&p256.to_pem()).unwrap().kind(), "p256");
        assert_eq!(PrivateKey::from_pem("not a key").unwrap_err(), KeyError);
    }

    #[test]
    fn a_key_of_the_wrong_type_says_which_is_wanted() {
        let key = PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
        assert_eq!(
            key.p256().unwrap_err(),
            SignError::WrongKeyType {
                given: "ed25519",
                wanted: "p256"
            }
        );
    }
}
