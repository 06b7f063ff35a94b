//! What compliance-gate decided in the demo: decisions by outcome, the policies that
//! decided most often, deferred sends and their releases, triggers per channel, reviews,
//! and the audit chain verified against the gate's key.

use std::collections::{BTreeMap, HashSet};

use compliance_gate::ComplianceGate;
use compliance_gate::agent::{TRIGGER_CHANNELS, trigger_topic};
use loyalty_contracts::{AuditRecord, topics};
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::{Agent, codec, runner, wire};
use serde::Serialize;

use super::summary::counts;
use crate::inspect;

/// What the gate produced.
#[derive(Debug, Clone, Serialize, Default)]
pub struct GateReport {
    /// Decisions by outcome (a deferred send decided again counts again).
    pub decisions: BTreeMap<String, usize>,
    /// The policies named as deciding most often, with their count.
    pub top_policies: Vec<(String, usize)>,
    pub deferred: usize,
    /// Deferred sends decided again at their release time.
    pub released: usize,
    pub triggers: BTreeMap<String, i64>,
    pub reviews: i64,
    /// Partitions whose chain verified, of all partitions with audit records.
    pub chains_intact: usize,
    pub chains: usize,
    pub checkpoints: u64,
    /// Erasure receipts chained in the audit log.
    pub receipts_chained: u64,
    pub public_key: String,
    pub dead_lettered: i64,
}

pub(super) async fn summarise(
    bootstrap_servers: &str,
    registry: &RegistryClient,
    public_key: &str,
) -> anyhow::Result<GateReport> {
    let mut report = GateReport {
        public_key: public_key.to_owned(),
        reviews: inspect::record_count(bootstrap_servers, topics::COMPLIANCE_REVIEWS)?,
        dead_lettered: inspect::record_count(
            bootstrap_servers,
            &runner::dlq_topic(ComplianceGate::NAME),
        )?,
        ..GateReport::default()
    };
    for channel in TRIGGER_CHANNELS {
        let Some(topic) = trigger_topic(channel) else {
            continue;
        };
        report.triggers.insert(
            channel.label().to_owned(),
            inspect::record_count(bootstrap_servers, topic.name)?,
        );
    }
    let mut seen = HashSet::new();
    let mut policies: BTreeMap<String, usize> = BTreeMap::new();
    for (value, _) in inspect::all_records(bootstrap_servers, topics::AUDIT_LOG).await? {
        let Some(bytes) = value else { continue };
        let (id, body) = wire::split(&bytes).map_err(|r| anyhow::anyhow!("audit record: {r}"))?;
        let record: AuditRecord = codec::decode(registry.schema(id).await?.as_ref(), body)
            .map_err(|r| anyhow::anyhow!("audit record: {r}"))?;
        let Some(d) = record.decision else { continue };
        // A replayed batch may repeat a decision; its id is unique.
        if !seen.insert(d.decision_id.clone()) {
            continue;
        }
        *report
            .decisions
            .entry(d.outcome.label().to_owned())
            .or_default() += 1;
        if d.release_at.is_some() {
            report.deferred += 1;
        }
        if d.attempt > 0 {
            report.released += 1;
        }
        for p in d.deciding {
            *policies.entry(p.policy_id).or_default() += 1;
        }
    }
    let mut top: Vec<(String, usize)> = policies.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(6);
    report.top_policies = top;
    let key = crate::verify::public_key(public_key)?;
    let audit =
        crate::audit::verify_topic(bootstrap_servers, registry, topics::AUDIT_LOG, &key).await?;
    report.chains = audit.partitions.len();
    report.chains_intact = audit
        .partitions
        .iter()
        .filter(|p| p.broken.is_none())
        .count();
    report.checkpoints = audit
        .partitions
        .iter()
        .filter_map(|p| p.intact.as_ref())
        .map(|i| i.checkpoints)
        .sum();
    report.receipts_chained = audit
        .partitions
        .iter()
        .filter_map(|p| p.intact.as_ref())
        .map(|i| i.receipts)
        .sum();
    Ok(report)
}

impl std::fmt::Display for GateReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "compliance-gate")?;
        writeln!(f, "  decisions     {}", counts(&self.decisions))?;
        writeln!(
            f,
            "  deferred      {} (quiet hours, frequency caps); {} decided again at release",
            self.deferred, self.released
        )?;
        let triggers: Vec<String> = self
            .triggers
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        writeln!(
            f,
            "  triggers      {}; {} sent to review",
            triggers.join(", "),
            self.reviews
        )?;
        writeln!(f, "  deciding      (policies named most often)")?;
        for (policy, n) in &self.top_policies {
            writeln!(f, "    {policy:<40} {n:>8}")?;
        }
        writeln!(
            f,
            "  audit log     {} of {} partition chains intact, {} signed checkpoints, {} erasure receipts chained; public key {}",
            self.chains_intact,
            self.chains,
            self.checkpoints,
            self.receipts_chained,
            self.public_key
        )?;
        write!(f, "  dead-lettered {}", self.dead_lettered)
    }
}
