//! Ed25519 keys for the agents that sign what they write (ltv's attestations,
//! compliance-gate's audit checkpoints), and the hex and SHA-256 helpers around them:
//! one way to load a key, name it and print it, whichever agent signs.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// A key that cannot be had; the key itself never appears in the message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// HMAC-SHA256 under a 32-byte key over `parts`, each prefixed with its length so that
/// no two different lists of parts hash alike ("ab","c" vs "a","bc"): the keyed hash
/// behind pseudonyms and the erasure registry.
pub fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC pads a key shorter than the hash's block with zeros; padded here, the
    // fixed-size constructor cannot fail.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// 32 bytes from 64 hex digits.
pub fn key_bytes(text: &str, what: &str) -> Result<[u8; 32], KeyError> {
    from_hex(text)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| KeyError(format!("{what} is not 64 hex digits")))
}

/// A 32-byte key (64 hex digits) from `file` if set, else from the environment variable
/// `env`; `setting` names the file's setting in the error when neither is there.
pub fn load_key(file: Option<&Path>, setting: &str, env: &str) -> Result<[u8; 32], KeyError> {
    let (text, what) = match file {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| KeyError(format!("cannot read {}: {e}", path.display())))?,
            path.display().to_string(),
        ),
        None => (
            std::env::var(env)
                .map_err(|_| KeyError(format!("no {setting} configured and {env} is not set")))?,
            env.to_owned(),
        ),
    };
    key_bytes(&text, &what)
}

/// The signing key (64 hex digits: the Ed25519 seed) from `file` if set, else from the
/// environment variable `env`.
pub fn load_signing_key(file: Option<&Path>, env: &str) -> Result<SigningKey, KeyError> {
    load_key(file, "signing_key_file", env).map(|seed| SigningKey::from_bytes(&seed))
}

/// A public key from its 64 hex digits.
pub fn parse_verifying_key(text: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&key_bytes(text, "public key")?)
        .map_err(|e| KeyError(format!("not an Ed25519 public key: {e}")))
}

/// SHA-256 of the public key: names the key without being it.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_odd_or_foreign_digits() {
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 254, 255])),
            Some(vec![0, 1, 254, 255])
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert!(key_bytes(&"ab".repeat(31), "k").is_err());
    }
}
