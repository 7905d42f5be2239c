//! The HMAC computation every scheme shares, for signing and for verifying.

use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::Secret;

/// Hash function under an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub const NAMES: &'static [&'static str] = &["sha1", "sha256", "sha512"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(Algorithm::Sha1),
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// A MAC output; sized for the largest algorithm so computing one allocates nothing.
pub(crate) struct Tag {
    bytes: [u8; 64],
    len: usize,
}

impl Tag {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Constant time in the content; the length is public (fixed by the algorithm).
    pub(crate) fn matches(&self, candidate: &[u8]) -> bool {
        self.as_bytes().ct_eq(candidate).into()
    }
}

/// HMAC under `key` of the concatenation of `parts`. Taking parts lets
/// schemes sign `"{t}.{body}"` without copying a large body.
pub(crate) fn compute(algorithm: Algorithm, key: &Secret, parts: &[&[u8]]) -> Tag {
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

fn run<M: Mac + KeyInit>(key: &Secret, parts: &[&[u8]]) -> Tag {
    let mut mac =
        <M as KeyInit>::new_from_slice(key.expose()).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    let out = mac.finalize().into_bytes();
    let mut tag = Tag {
        bytes: [0; 64],
        len: out.len(),
    };
    tag.bytes[..out.len()].copy_from_slice(&out);
    tag
}

/// Whether any key signs `parts` to any of `candidates`. One MAC per key,
/// however many candidates a sender attached.
pub(crate) fn any_key_matches(
    algorithm: Algorithm,
    keys: &[Secret],
    parts: &[&[u8]],
    candidates: &[Vec<u8>],
) -> bool {
    keys.iter().any(|key| {
        let tag = compute(algorithm, key, parts);
        candidates.iter().any(|c| tag.matches(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2 and RFC 2202 test case 2.
    #[test]
    fn matches_published_hmac_vectors() {
        let key = Secret::from("Jefe");
        let msg: &[&[u8]] = &[b"what do ya want ", b"for nothing?"];
        assert_eq!(
            hex::encode(compute(Algorithm::Sha256, &key, msg).as_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(compute(Algorithm::Sha1, &key, msg).as_bytes()),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex::encode(compute(Algorithm::Sha512, &key, msg).as_bytes()),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn a_prefix_or_extension_of_the_tag_does_not_match() {
        let tag = compute(Algorithm::Sha256, &Secret::from("k"), &[b"body"]);
        let full = tag.as_bytes().to_vec();
        assert!(tag.matches(&full));
        assert!(!tag.matches(&full[..31]));
        assert!(!tag.matches(&[full.as_slice(), &[0]].concat()));
        assert!(!tag.matches(&[]));
    }
}
