//! Topic creation and schema registration for the swarm's contract, on any cluster.

use loyalty_contracts::{Cleanup, contracts};
use loyalty_runtime::RuntimeError;
use loyalty_runtime::kafka::{self, TopicSpec};
use loyalty_runtime::registry::RegistryClient;

/// Where to set up, and how.
#[derive(Debug, Clone)]
pub struct Target {
    pub bootstrap_servers: String,
    pub registry_url: String,
    pub partitions: i32,
    /// Replication factor for new topics; -1 = the broker's default.
    pub replication: i32,
    pub librdkafka: std::collections::BTreeMap<String, String>,
    /// `retention.ms` of the streams that carry member ids and are not compacted
    /// (opportunities, proposals, triggers, reviews, erasure requests): how long an erased
    /// member may stay there (`swarm erasure status` says until when). -1 keeps them.
    pub member_stream_retention_ms: i64,
}

/// The topics of the contract: member-keyed ones share one partition count so they stay
/// co-partitioned; reference tables have one partition.
pub fn topic_specs(target: &Target) -> Vec<TopicSpec> {
    contracts()
        .into_iter()
        .map(|c| TopicSpec {
            name: c.topic.to_owned(),
            partitions: if c.co_partitioned {
                target.partitions
            } else {
                1
            },
            replication: target.replication,
            compacted: c.cleanup == Cleanup::Compact,
            // The audit trail and the erasure receipts are kept for good (a regulator
            // may ask years later); neither names a member in the clear. The derived
            // streams that do are kept for a bounded time.
            retention_ms: if [
                loyalty_contracts::topics::AUDIT_LOG,
                loyalty_contracts::topics::ERASURE_RECEIPTS,
            ]
            .contains(&c.topic)
            {
                Some(-1)
            } else if crate::erasure::derived_member_streams().contains(&c.topic) {
                Some(target.member_stream_retention_ms)
            } else {
                None
            },
        })
        .collect()
}

/// Create every contract topic and register every schema; returns (subject, id) pairs.
pub async fn setup(target: &Target) -> Result<Vec<(String, u32)>, RuntimeError> {
    // Waits for the new topics' leaders too: agents started right after set-up must find
    // them.
    kafka::ensure_topics(
        &target.bootstrap_servers,
        &target.librdkafka,
        &topic_specs(target),
    )
    .await?;
    let registry = RegistryClient::new(&target.registry_url)?;
    let mut ids = Vec::new();
    for contract in contracts() {
        let subject = contract.subject();
        let id = registry.register(&subject, &(contract.schema)()).await?;
        ids.push((subject, id));
    }
    Ok(ids)
}
