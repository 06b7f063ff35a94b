//! `loyalty.audit-log.v1` and `loyalty.compliance-reviews.v1`: what compliance-gate
//! decided about every send, in a form a regulator can verify, and the decisions a
//! person must take (GDPR Art. 22).
//!
//! The audit log holds, per partition, one hash chain: each record carries its
//! sequence, the previous record's hash and its own, and now and then a checkpoint
//! signed with Ed25519 seals the chain's head. Members appear only by pseudonym, a
//! keyed hash under a per-member secret the gate holds, so destroying the secret (an
//! erasure) leaves the chain verifiable and the person unidentifiable. The record key
//! is the pseudonym (a checkpoint's: `checkpoint`); the gate writes each record to the
//! partition of the member it decided for, so one gate task owns one chain.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::{Channel, ErasureReceipt, LocalisedContent, Timestamp};

/// What the gate decided about one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
pub enum GateOutcome {
    Approved,
    Denied,
    // Not now: quiet hours or a frequency cap; released and decided again later.
    Deferred,
    // A person decides (GDPR Art. 22, unregistered sweepstakes, reseller pricing).
    NeedsReview,
}

impl GateOutcome {
    /// Label for metrics, logs and reports.
    pub fn label(self) -> &'static str {
        match self {
            GateOutcome::Approved => "approved",
            GateOutcome::Denied => "denied",
            GateOutcome::Deferred => "deferred",
            GateOutcome::NeedsReview => "needs_review",
        }
    }
}

/// A policy that decided, and the law it implements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct DecidingPolicy {
    /// The policy's `@id`.
    pub policy_id: String,
    /// What a satisfied policy does: permit, deny, defer or review.
    pub effect: String,
    /// The statute or rule the policy implements (`@statute`).
    pub statute: String,
    /// The jurisdiction table row the policy read, with its own citation.
    pub table_rule: Option<String>,
}

/// An input the decision relied on, pinned by what identifies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Reliance {
    /// `offer_proposal`, `member_ltv`, `opportunity`, `cancellation`.
    pub kind: String,
    /// What pins the record without naming the member: a keyed hash of its id under the
    /// member's secret, or (member-ltv) its event time, pinned by the attestation hash.
    pub reference: String,
    /// The record's attestation hash where it carries one (member-ltv's output hash).
    pub attestation_hash: Option<String>,
    /// The value relied on, minor units (expected incremental LTV), where there is one.
    pub value_minor: Option<i64>,
}

/// One decision as the audit chain records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct AuditedDecision {
    /// A keyed hash, under the member's secret, of `<proposal id>:<channel>:<attempt>`:
    /// unique, and traceable to the proposal only while the secret exists (proposal ids
    /// name the member). Triggers and reviews carry it too.
    pub decision_id: String,
    /// The member, pseudonymous: a keyed hash under the member's own secret.
    pub member_pseudonym: String,
    /// The proposal, as a keyed hash of its id under the member's secret.
    pub proposal_ref: String,
    /// 0 for the first decision on a send, one more for each release of a deferral.
    pub attempt: i32,
    pub offer_id: Option<String>,
    pub offer_version_id: Option<i64>,
    pub relied_on: Vec<Reliance>,
    /// Null when no channel could be chosen (no consent anywhere).
    pub channel: Option<Channel>,
    pub outcome: GateOutcome,
    /// For a deferral: when the send is decided again.
    pub release_at: Option<Timestamp>,
    pub deciding: Vec<DecidingPolicy>,
    /// Policies that failed to evaluate (the decision then fails closed).
    pub errors: Vec<String>,
    /// SHA-256 of the policy set (schema and files) that decided.
    pub policy_set_hash: String,
    /// Event time of the decision: the proposal's, or the release time.
    pub decided_at: Timestamp,
}

/// A signed statement that the partition's chain had `decisions` decisions ending at
/// `head_hash`, the hash of the record at `head_sequence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct AuditCheckpoint {
    pub head_sequence: i64,
    pub head_hash: String,
    pub decisions: i64,
    /// SHA-256 (hex) of the Ed25519 public key that signed.
    pub key_id: String,
    /// Ed25519 signature (hex).
    pub signature: String,
}

/// One link of a partition's chain: a decision, a checkpoint or an erasure receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct AuditRecord {
    /// The partition whose chain this is (the gate task's).
    pub partition: i32,
    /// 0, 1, 2, … per partition, checkpoints included.
    pub sequence: i64,
    /// SHA-256 (hex) of the previous record; 64 zeros for the first.
    pub previous_hash: String,
    /// SHA-256 (hex) of this record's canonical encoding.
    pub hash: String,
    /// Exactly one of `decision`, `checkpoint` and `erasure_receipt` is set.
    pub decision: Option<AuditedDecision>,
    pub checkpoint: Option<AuditCheckpoint>,
    /// An agent's receipt for an erasure request, chained as it was written (v2): the
    /// receipts are audited like the decisions. It names no member.
    pub erasure_receipt: Option<ErasureReceipt>,
}

/// A decision a person must take; key = member id. What the member is owed under
/// GDPR Art. 22(3) and Art. 15(1)(h): that a decision about them is being reviewed,
/// the logic involved, and what it would mean for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct ComplianceReview {
    /// The audited decision's id.
    pub decision_id: String,
    pub member_id: String,
    pub proposal_id: String,
    pub channel: Channel,
    pub offer_id: Option<String>,
    pub offer_version_id: Option<i64>,
    /// The policies that sent it to review.
    pub deciding: Vec<DecidingPolicy>,
    /// In words, for the reviewer and the member.
    pub explanation: String,
    /// The message as it would go out.
    pub content: Option<LocalisedContent>,
    pub policy_set_hash: String,
    pub decided_at: Timestamp,
}
