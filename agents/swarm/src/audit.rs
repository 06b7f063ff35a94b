//! `swarm audit verify`: walk compliance-gate's audit log partition by partition and
//! either prove every chain intact and every checkpoint signed by the gate's key, or
//! name the first record that is altered, missing, reordered, forged or forked in each
//! partition, with its offset. A record that cannot even be read as an audit record is
//! a break at its offset too.

use std::collections::BTreeMap;

use compliance_gate::audit::{self, Break, Link};
use compliance_gate::audit_record::{self, Canonical};
use loyalty_contracts::AuditRecord;
use loyalty_runtime::codec::decode;
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::signing::key_id;
use loyalty_runtime::wire;
use serde::Serialize;

use crate::inspect;

/// One partition's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionAudit {
    pub partition: i32,
    pub records: usize,
    /// Set when the chain verified.
    pub intact: Option<Intact>,
    /// Set at the first record that breaks it.
    pub broken: Option<Broken>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Intact {
    pub decisions: u64,
    pub checkpoints: u64,
    /// Decisions after the partition's last checkpoint (chained, not yet sealed).
    pub unsealed: u64,
    /// Links a replay wrote again, identical.
    pub replayed: u64,
    /// Erasure receipts chained.
    pub receipts: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub offset: i64,
    /// The record's sequence, when it could be read.
    pub sequence: Option<u64>,
    pub reason: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub topic: String,
    pub key_id: String,
    pub partitions: Vec<PartitionAudit>,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.partitions.iter().all(|p| p.broken.is_none())
    }
}

/// The audit log did not verify: `swarm` exits with status 3 on it, distinct from a
/// log it could not read (1).
#[derive(Debug, thiserror::Error)]
#[error("the audit log does not verify: {0} partition(s) broken")]
pub struct ChainBroken(pub usize);

impl std::fmt::Display for AuditReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} (checkpoint key {})", self.topic, self.key_id)?;
        for p in &self.partitions {
            match (&p.intact, &p.broken) {
                (Some(i), _) => writeln!(
                    f,
                    "  partition {}: intact, {} decisions, {} checkpoints, {} unsealed{}{}",
                    p.partition,
                    i.decisions,
                    i.checkpoints,
                    i.unsealed,
                    if i.receipts > 0 {
                        format!(", {} erasure receipts", i.receipts)
                    } else {
                        String::new()
                    },
                    if i.replayed > 0 {
                        format!(", {} replayed", i.replayed)
                    } else {
                        String::new()
                    }
                )?,
                (_, Some(b)) => writeln!(
                    f,
                    "  partition {}: BROKEN at offset {}{}: {}",
                    p.partition,
                    b.offset,
                    b.sequence
                        .map_or(String::new(), |s| format!(" (sequence {s})")),
                    b.reason
                )?,
                _ => {}
            }
        }
        Ok(())
    }
}

fn reason(b: &Break) -> String {
    match b {
        Break::Altered => "altered: its content does not hash to its hash".into(),
        Break::Missing { expected } => format!("missing: sequence {expected} was deleted"),
        Break::Reordered { expected } => {
            format!("reordered: sequence {expected} should come here")
        }
        Break::BrokenLink => {
            "broken link: it does not commit to the record before it (inserted or replaced)".into()
        }
        Break::ForgedCheckpoint => {
            "forged checkpoint: the signature does not verify under the key".into()
        }
        Break::Rewritten => {
            "rewritten: a signed checkpoint names another head or count than the chain has".into()
        }
        Break::WrongPartition { found } => format!("filed under partition {found}"),
        Break::Forked => "forked: a sequence already read, with other content".into(),
    }
}

pub async fn verify_topic(
    bootstrap_servers: &str,
    registry: &RegistryClient,
    topic: &str,
    key: &ed25519_dalek::VerifyingKey,
) -> anyhow::Result<AuditReport> {
    let canonical = Canonical::new()?;
    let mut by_partition: BTreeMap<i32, Vec<inspect::Positioned>> = BTreeMap::new();
    for record in inspect::positioned_records(bootstrap_servers, topic).await? {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    let mut partitions = Vec::new();
    for (partition, records) in by_partition {
        let mut links: Vec<Link> = Vec::with_capacity(records.len());
        let mut unreadable = None;
        for record in &records {
            match read(registry, &canonical, record).await {
                Ok(link) => links.push(link),
                Err(reason) => {
                    unreadable = Some(Broken {
                        offset: record.offset,
                        sequence: None,
                        reason,
                    });
                    break;
                }
            }
        }
        // A break among the readable links comes first if it is before the unreadable one.
        let verdict = audit::verify(partition, &links, key);
        let (intact, broken) = match (verdict, unreadable) {
            (Err(at), _) => (
                None,
                Some(Broken {
                    offset: records[at.index].offset,
                    sequence: Some(at.sequence),
                    reason: reason(&at.reason),
                }),
            ),
            (Ok(_), Some(b)) => (None, Some(b)),
            (Ok(v), None) => (
                Some(Intact {
                    decisions: v.decisions,
                    checkpoints: v.checkpoints,
                    unsealed: v.unsealed,
                    replayed: v.replayed,
                    receipts: v.receipts,
                }),
                None,
            ),
        };
        partitions.push(PartitionAudit {
            partition,
            records: records.len(),
            intact,
            broken,
        });
    }
    Ok(AuditReport {
        topic: topic.to_owned(),
        key_id: key_id(key),
        partitions,
    })
}

/// One record as a link, or why it is not one.
async fn read(
    registry: &RegistryClient,
    canonical: &Canonical,
    record: &inspect::Positioned,
) -> Result<Link, String> {
    let bytes = record
        .value
        .as_deref()
        .ok_or("a tombstone: audit records are never deleted")?;
    let (id, body) =
        wire::split(bytes).map_err(|r| format!("not in the Confluent wire format: {r}"))?;
    let schema = registry
        .schema(id)
        .await
        .map_err(|e| format!("writer schema {id} not in the registry: {e}"))?;
    let audit: AuditRecord =
        decode(&schema, body).map_err(|e| format!("not an audit record: {e}"))?;
    audit_record::link(&audit, canonical).map_err(|e| e.to_string())
}
