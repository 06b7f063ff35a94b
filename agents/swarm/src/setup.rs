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
}

/// The topics of the contract: member-keyed ones share one partition count so they stay
/// co-partitioned; reference tables have one partition.
pub fn topic_specs(target: &Target) -> Vec<TopicSpec> {
    contracts()
        .into_iter()
        .map(|c| TopicSpec {
            name: c.topic.to_owned(),
            partitions: if c.member_keyed { target.partitions } else { 1 },
            replication: target.replication,
            compacted: c.cleanup == Cleanup::Compact,
            retention_ms: None,
        })
        .collect()
}

/// Create every contract topic and register every schema; returns (subject, id) pairs.
pub async fn setup(target: &Target) -> Result<Vec<(String, u32)>, RuntimeError> {
    let specs = topic_specs(target);
    kafka::ensure_topics(&target.bootstrap_servers, &target.librdkafka, &specs).await?;
    // Kafka elects the new topics' leaders after answering; agents started right after
    // set-up must find them (see `kafka::topics_ready`). Up to 60 s.
    let names: Vec<&str> = specs.iter().map(|t| t.name.as_str()).collect();
    let mut attempts = 0;
    while let Err(e) = kafka::topics_ready(&target.bootstrap_servers, &target.librdkafka, &names) {
        attempts += 1;
        if !e.is_transient() || attempts > 300 {
            return Err(e);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let registry = RegistryClient::new(&target.registry_url)?;
    let mut ids = Vec::new();
    for contract in contracts() {
        let subject = contract.subject();
        let id = registry.register(&subject, &(contract.schema)()).await?;
        ids.push((subject, id));
    }
    Ok(ids)
}
