//! Attestation: every member-ltv record says which model and which input records it was
//! computed from, and carries an Ed25519 signature over its canonical encoding — the
//! Avro binary of the record with `output_hash` and `signature` left empty — so anyone
//! holding the public key can prove the record is what the agent wrote.
//! Ed25519 signatures are deterministic (RFC 8032), so a replay signs byte-identically.

use std::path::Path;

use apache_avro::AvroSchema;
use btyd::params::Published;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use loyalty_contracts::MemberLtv;
use loyalty_runtime::codec::{Encoder, decode, leak};

/// Environment variable holding the signing key (64 hex digits: the Ed25519 seed). Not
/// under the `LOYALTY_` prefix, which the configuration layer reads as settings.
pub const SIGNING_KEY_ENV: &str = "LTV_SIGNING_KEY";

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("signing key: {0}")]
    Key(String),
    #[error("cannot encode the record canonically: {0}")]
    Encode(String),
}

pub use loyalty_runtime::signing::{from_hex, key_id, parse_verifying_key, sha256_hex, to_hex};

/// ltv's signing key from `file` if set, else from [`SIGNING_KEY_ENV`].
pub fn load_signing_key(file: Option<&Path>) -> Result<SigningKey, AttestError> {
    loyalty_runtime::signing::load_signing_key(file, SIGNING_KEY_ENV)
        .map_err(|e| AttestError::Key(e.0))
}

/// SHA-256 of the model's parameters in a canonical text form (shortest round-trip
/// decimal of every number), "" without a model.
pub fn parameter_hash(model: Option<&Published>) -> String {
    match model {
        None => String::new(),
        Some(m) => sha256_hex(
            format!(
                "bgnbd:{:?};gamma_gamma:{:?};unit_days:{:?}",
                m.purchases.params(),
                m.spend.map(|s| s.params()),
                m.unit_days
            )
            .as_bytes(),
        ),
    }
}

/// Encodes member-ltv records canonically (the contract's own schema).
#[derive(Debug)]
pub struct Canonical {
    encoder: Encoder,
}

impl Canonical {
    pub fn new() -> Result<Self, AttestError> {
        Encoder::new(0, leak(MemberLtv::get_schema()))
            .map(|encoder| Canonical { encoder })
            .map_err(|e| AttestError::Encode(e.to_string()))
    }

    /// The bytes that are hashed and signed: the record with output_hash and signature empty.
    pub fn signed_bytes(&self, record: &MemberLtv) -> Result<Vec<u8>, AttestError> {
        let mut blank = record.clone();
        blank.attestation.output_hash.clear();
        blank.attestation.signature.clear();
        self.body(&blank)
    }

    pub fn body(&self, record: &MemberLtv) -> Result<Vec<u8>, AttestError> {
        self.encoder
            .encode_body(record)
            .map_err(|e| AttestError::Encode(e.to_string()))
    }
}

/// The agent's signing identity.
pub struct Attestor {
    key: SigningKey,
    pub key_id: String,
    pub attestor: String,
    canonical: Canonical,
}

impl std::fmt::Debug for Attestor {
    // The key stays out of Debug output, and so out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attestor")
            .field("key_id", &self.key_id)
            .field("attestor", &self.attestor)
            .finish()
    }
}

impl Attestor {
    pub fn new(key: SigningKey, attestor: &str) -> Result<Self, AttestError> {
        Ok(Attestor {
            key_id: key_id(&key.verifying_key()),
            key,
            attestor: attestor.to_owned(),
            canonical: Canonical::new()?,
        })
    }

    /// Fill in the key id, output hash and signature of `record`.
    pub fn sign(&self, record: &mut MemberLtv) -> Result<(), AttestError> {
        record.attestation.attestor = self.attestor.clone();
        record.attestation.key_id = self.key_id.clone();
        let bytes = self.canonical.signed_bytes(record)?;
        record.attestation.output_hash = sha256_hex(&bytes);
        record.attestation.signature = to_hex(&self.key.sign(&bytes).to_bytes());
        Ok(())
    }
}

/// Every reason the Avro body `body` (as read from the topic, written with `writer`) is not
/// a record `key` signed; empty when it verifies. Besides hash and signature, the body must
/// be exactly the canonical encoding of what it decodes to, so no byte can change unseen.
pub fn verify_body(
    writer: &apache_avro::Schema,
    body: &[u8],
    key: &VerifyingKey,
    canonical: &Canonical,
) -> Vec<String> {
    let record: MemberLtv = match decode(writer, body) {
        Ok(r) => r,
        Err(e) => return vec![format!("undecodable: {}", e.reason)],
    };
    let mut problems = Vec::new();
    match canonical.body(&record) {
        Ok(bytes) if bytes == body => {}
        Ok(_) => problems.push("the bytes are not the canonical encoding of the record".into()),
        Err(e) => problems.push(e.to_string()),
    }
    problems.extend(verify(&record, key, canonical));
    problems
}

/// Every reason `record` is not what `key` signed; empty when it verifies.
pub fn verify(record: &MemberLtv, key: &VerifyingKey, canonical: &Canonical) -> Vec<String> {
    let mut problems = Vec::new();
    let a = &record.attestation;
    if a.key_id != key_id(key) {
        problems.push(format!(
            "signed with key {} rather than {}",
            a.key_id,
            key_id(key)
        ));
    }
    let bytes = match canonical.signed_bytes(record) {
        Ok(bytes) => bytes,
        Err(e) => {
            problems.push(e.to_string());
            return problems;
        }
    };
    if sha256_hex(&bytes) != a.output_hash {
        problems.push("output hash does not match the record".into());
    }
    match from_hex(&a.signature).and_then(|b| <[u8; 64]>::try_from(b).ok()) {
        None => problems.push("signature is not 128 hex digits".into()),
        Some(sig) => {
            if key.verify(&bytes, &Signature::from_bytes(&sig)).is_err() {
                problems.push("signature does not verify".into());
            }
        }
    }
    problems
}
