//! Ed25519 public keys as manifests give them, and the check every Ed25519
//! scheme shares (Discord, Standard Webhooks `v1a`).

use ed25519_dalek::{Signature, VerifyingKey};

/// Why a configured public key is unusable. `index` is its position in the
/// list given to the scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 public key (expected {expected})")]
pub struct InvalidPublicKey {
    pub index: usize,
    pub expected: &'static str,
}

/// Decodes each key with `decode` (hex, `whpk_` base64, ...) into 32 bytes.
pub(crate) fn parse_keys(
    keys: &[String],
    decode: fn(&str) -> Option<Vec<u8>>,
    expected: &'static str,
) -> Result<Vec<VerifyingKey>, InvalidPublicKey> {
    keys.iter()
        .enumerate()
        .map(|(index, text)| {
            decode(text.trim())
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
                .ok_or(InvalidPublicKey { index, expected })
        })
        .collect()
}

/// Whether any key signed the concatenation of `parts` to `signature`.
/// Strict verification: refuses non-canonical encodings and weak keys, which
/// no honest signer produces.
pub(crate) fn any_key_verifies(
    keys: &[VerifyingKey],
    parts: &[&[u8]],
    signature: &[u8; 64],
) -> bool {
    let signature = Signature::from_bytes(signature);
    let message = parts.concat();
    keys.iter()
        .any(|key| key.verify_strict(&message, &signature).is_ok())
}

/// Signs the concatenation of `parts`.
pub(crate) fn sign(key: &ed25519_dalek::SigningKey, parts: &[&[u8]]) -> [u8; 64] {
    use ed25519_dalek::Signer as _;
    key.sign(&parts.concat()).to_bytes()
}
