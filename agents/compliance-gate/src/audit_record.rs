//! The audit chain on `loyalty.audit-log.v1`: links (`audit`) as the contract's
//! `AuditRecord` and back, the canonical bytes a decision is chained by, and the
//! members' pseudonyms.
//!
//! A decision is chained by its Avro binary encoding under the `AuditedDecision`
//! schema of this contract version: the same value always encodes to the same bytes, so
//! a verifier that decodes a record and encodes its decision again gets what the gate
//! hashed. A pseudonym is a keyed hash under the member's own secret; the secret is
//! derived once, when the gate first sees the member, from the deployment's pseudonym
//! key and where it saw them, and kept in the member's state. Erasure deletes that
//! secret: the chain still verifies, and the pseudonym no longer leads back to anyone
//! without the deployment's key and the input position the secret came from.

use apache_avro::AvroSchema;
use loyalty_contracts::{AuditCheckpoint, AuditRecord, AuditedDecision, ErasureReceipt};
use loyalty_runtime::codec::{Encoder, leak};
use loyalty_runtime::signing::{from_hex, to_hex};

use crate::audit::{Body, Checkpoint, Hash, Link};

/// The key an audit checkpoint is written under.
pub const CHECKPOINT_KEY: &str = "checkpoint";

/// The key a chained erasure receipt is written under.
pub const RECEIPT_KEY: &str = "erasure-receipt";

/// Why an audit record cannot be read as a link.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("{field} is not {bytes} bytes of hex")]
    Hex { field: &'static str, bytes: usize },
    #[error("a record must hold exactly one of decision, checkpoint and erasure receipt")]
    Body,
    #[error("negative sequence or count")]
    Negative,
    #[error("the decision cannot be encoded canonically: {0}")]
    Encode(String),
}

/// Encodes decisions and erasure receipts canonically.
#[derive(Debug)]
pub struct Canonical {
    decisions: Encoder,
    receipts: Encoder,
}

impl Canonical {
    pub fn new() -> Result<Self, RecordError> {
        let encoder =
            |schema| Encoder::new(0, leak(schema)).map_err(|e| RecordError::Encode(e.to_string()));
        Ok(Canonical {
            decisions: encoder(AuditedDecision::get_schema())?,
            receipts: encoder(ErasureReceipt::get_schema())?,
        })
    }

    pub fn bytes(&self, decision: &AuditedDecision) -> Result<Vec<u8>, RecordError> {
        self.decisions
            .encode_body(decision)
            .map_err(|e| RecordError::Encode(e.to_string()))
    }

    pub fn receipt_bytes(&self, receipt: &ErasureReceipt) -> Result<Vec<u8>, RecordError> {
        self.receipts
            .encode_body(receipt)
            .map_err(|e| RecordError::Encode(e.to_string()))
    }
}

/// The record that carries `link`: its decision or receipt as given (it encodes to the
/// link's body), or its checkpoint, signed by the key named `key_id`.
pub fn record(link: &Link, content: Content, key_id: &str) -> AuditRecord {
    let (decision, erasure_receipt) = match content {
        Content::Decision(d) => (Some(d), None),
        Content::Receipt(r) => (None, Some(r)),
        Content::Checkpoint => (None, None),
    };
    let checkpoint = match &link.body {
        Body::Decision(_) | Body::Receipt(_) => None,
        Body::Checkpoint(c) => Some(AuditCheckpoint {
            head_sequence: c.head_sequence as i64,
            head_hash: to_hex(&c.head),
            decisions: c.count as i64,
            key_id: key_id.to_owned(),
            signature: to_hex(&c.signature),
        }),
    };
    AuditRecord {
        partition: link.partition,
        sequence: link.sequence as i64,
        previous_hash: to_hex(&link.previous),
        hash: to_hex(&link.hash),
        decision,
        checkpoint,
        erasure_receipt,
    }
}

/// What a record carries besides the link's position and hashes.
#[derive(Debug, Clone)]
pub enum Content {
    Decision(AuditedDecision),
    Receipt(ErasureReceipt),
    /// The checkpoint itself is in the link.
    Checkpoint,
}

/// The link a record carries, for verification.
pub fn link(record: &AuditRecord, canonical: &Canonical) -> Result<Link, RecordError> {
    let body = match (
        &record.decision,
        &record.checkpoint,
        &record.erasure_receipt,
    ) {
        (Some(decision), None, None) => Body::Decision(canonical.bytes(decision)?),
        (None, None, Some(receipt)) => Body::Receipt(canonical.receipt_bytes(receipt)?),
        (None, Some(c), None) => Body::Checkpoint(Checkpoint {
            head_sequence: u64::try_from(c.head_sequence).map_err(|_| RecordError::Negative)?,
            head: hash(&c.head_hash, "checkpoint.head_hash")?,
            count: u64::try_from(c.decisions).map_err(|_| RecordError::Negative)?,
            signature: from_hex(&c.signature)
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .ok_or(RecordError::Hex {
                    field: "checkpoint.signature",
                    bytes: 64,
                })?,
        }),
        _ => return Err(RecordError::Body),
    };
    Ok(Link {
        partition: record.partition,
        sequence: u64::try_from(record.sequence).map_err(|_| RecordError::Negative)?,
        previous: hash(&record.previous_hash, "previous_hash")?,
        body,
        hash: hash(&record.hash, "hash")?,
    })
}

fn hash(text: &str, field: &'static str) -> Result<Hash, RecordError> {
    from_hex(text)
        .and_then(|b| Hash::try_from(b).ok())
        .ok_or(RecordError::Hex { field, bytes: 32 })
}

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    loyalty_runtime::signing::hmac_sha256(key, parts)
}

/// A member's pseudonym secret: derived from the deployment's key, the member id and
/// the input position where the gate first saw the member (so a member erased and
/// enrolled again gets another).
pub fn member_secret(pseudonym_key: &[u8; 32], member_id: &str, first_seen: &str) -> [u8; 32] {
    hmac(
        pseudonym_key,
        &[
            b"member-secret",
            member_id.as_bytes(),
            first_seen.as_bytes(),
        ],
    )
}

/// The member's pseudonym in the audit log: 128 bits of a keyed hash under their secret.
pub fn pseudonym(secret: &[u8; 32]) -> String {
    to_hex(&hmac(secret, &[b"audit-pseudonym"])[..16])
}

/// An id that names the member (a proposal id, a decision id) as the audit log carries
/// it: 128 bits of a keyed hash under the member's secret. The operator, holding the
/// secret, can match it to the id; once the secret is erased, nobody can.
pub fn keyed_ref(secret: &[u8; 32], id: &str) -> String {
    to_hex(&hmac(secret, &[b"audit-ref", id.as_bytes()])[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Chain;
    use ed25519_dalek::SigningKey;
    use loyalty_contracts::{GateOutcome, Timestamp};

    fn decision(id: &str) -> AuditedDecision {
        AuditedDecision {
            decision_id: id.into(),
            member_pseudonym: "p".into(),
            proposal_ref: "proposal".into(),
            attempt: 0,
            offer_id: None,
            offer_version_id: None,
            relied_on: vec![],
            channel: None,
            outcome: GateOutcome::Denied,
            release_at: None,
            deciding: vec![],
            errors: vec![],
            policy_set_hash: "h".into(),
            decided_at: Timestamp(1),
        }
    }

    #[test]
    fn a_record_reads_back_as_the_link_it_carries() {
        let canonical = Canonical::new().unwrap();
        let mut chain = Chain::new(2);
        let d = decision("a");
        let link1 = chain.decision(canonical.bytes(&d).unwrap());
        let link2 = chain.checkpoint(&SigningKey::from_bytes(&[1; 32]));
        let r = loyalty_contracts::ErasureReceipt {
            request_id: "r-1".into(),
            agent: "cohort".into(),
            instance: "i".into(),
            partition: 2,
            erased_ids: 1,
            removed: vec![],
            requested_at: loyalty_contracts::Timestamp(1),
            completed_at: loyalty_contracts::Timestamp(2),
        };
        let link3 = chain.receipt(canonical.receipt_bytes(&r).unwrap());
        assert_eq!(
            link(&record(&link1, Content::Decision(d), "k"), &canonical),
            Ok(link1)
        );
        assert_eq!(
            link(&record(&link2, Content::Checkpoint, "k"), &canonical),
            Ok(link2)
        );
        assert_eq!(
            link(&record(&link3, Content::Receipt(r), "k"), &canonical),
            Ok(link3)
        );
    }

    #[test]
    fn pseudonyms_differ_per_member_and_enrolment_and_do_not_contain_the_id() {
        let key = [3; 32];
        let a = pseudonym(&member_secret(&key, "member-1", "profiles/0/5"));
        assert_eq!(
            a,
            pseudonym(&member_secret(&key, "member-1", "profiles/0/5"))
        );
        assert_ne!(
            a,
            pseudonym(&member_secret(&key, "member-2", "profiles/0/5"))
        );
        assert_ne!(
            a,
            pseudonym(&member_secret(&key, "member-1", "profiles/0/9"))
        );
        assert_eq!(a.len(), 32);
        assert!(!a.contains("member"));
    }
}
