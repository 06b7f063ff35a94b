//! The topics an agent owns and how they are named, its consumer group, and the
//! co-partitioning check: task *p* is partition *p* of every member-keyed input, of the
//! changelog and of the repartition topic, so their partition counts must agree.

use std::collections::BTreeSet;

use super::Shared;
use crate::agent::{Agent, rekeys, shares_summary};
use crate::config::RuntimeSettings;
use crate::error::RuntimeError;
use crate::kafka::{self, TopicSpec};

/// Name of an agent's changelog topic.
pub fn changelog_topic<A: Agent>() -> String {
    format!("{}.{}-changelog", A::NAME, A::STORE)
}

/// Name of the compacted topic an agent's partition summaries are shared on.
pub fn summaries_topic<A: Agent>() -> String {
    format!("{}.{}-summaries", A::NAME, A::STORE)
}

/// Name of the topic an agent re-keys records through (see [`crate::Rekeys`]).
pub fn repartition_topic<A: Agent>() -> String {
    format!("{}.rekey-repartition", A::NAME)
}

/// Every topic an agent's consumer group reads: its inputs, then its repartition topic.
/// The group has caught up when it has committed all of them.
pub fn consumed_topics<A: Agent>(agent: &A) -> Vec<String> {
    agent
        .inputs()
        .into_iter()
        .map(String::from)
        .chain(rekeys::<A>().then(repartition_topic::<A>))
        .chain(agent.internal_topics().iter().map(|t| t.topic().to_owned()))
        .collect()
}

/// Headers of a re-keyed record naming where it came from, defined once.
pub mod origin_headers {
    pub const TOPIC: &str = "loyalty.origin.topic";
    pub const PARTITION: &str = "loyalty.origin.partition";
    pub const OFFSET: &str = "loyalty.origin.offset";
    /// Every record of the origin partition below this offset that was forwarded had
    /// been acknowledged before this one was written (see `store::Forwarded`).
    pub const FLOOR: &str = "loyalty.origin.floor";
}

/// Name of an agent's dead-letter topic.
pub fn dlq_topic(agent: &str) -> String {
    format!("{agent}.dlq")
}

/// DLQ header names, defined once.
pub mod dlq_headers {
    pub const KIND: &str = "dlq.error.kind";
    pub const REASON: &str = "dlq.error.reason";
    pub const TOPIC: &str = "dlq.source.topic";
    pub const PARTITION: &str = "dlq.source.partition";
    pub const OFFSET: &str = "dlq.source.offset";
    /// The source record's log timestamp (ms); the DLQ record's own is when it was
    /// dead-lettered.
    pub const TIMESTAMP: &str = "dlq.source.timestamp";
    pub const AGENT: &str = "dlq.agent";
    pub const VERSION: &str = "dlq.agent.version";
    /// Present when the original key and value were too big to carry: their sizes. The
    /// source position names the record, which stays in its topic.
    pub const OMITTED: &str = "dlq.payload.omitted";
}

/// The partition counts of `topics` when they are not all the same (topics the broker
/// does not know yet are left out), or nothing.
pub(super) fn co_partitioning_problems(
    rt: &RuntimeSettings,
    topics: &[&str],
) -> Result<Vec<String>, RuntimeError> {
    let consumer: rdkafka::consumer::BaseConsumer =
        kafka::base_config(&rt.bootstrap_servers, &rt.librdkafka).create()?;
    let mut counts = Vec::new();
    for topic in topics {
        let partitions = kafka::partition_ids(&consumer, topic)?.len();
        if partitions > 0 {
            counts.push((*topic, partitions));
        }
    }
    let distinct: BTreeSet<usize> = counts.iter().map(|(_, n)| *n).collect();
    Ok(if distinct.len() > 1 {
        counts
            .iter()
            .map(|(topic, n)| format!("{topic} has {n}"))
            .collect()
    } else {
        Vec::new()
    })
}

/// The partition count the agent's existing inputs agree on, if they exist and agree:
/// an agent whose inputs have one partition (save-offer's catalog) gets a one-partition
/// changelog, not the configured `partitions`. Disagreeing inputs are the
/// co-partitioning check's to report.
pub(super) fn input_partitions(
    rt: &RuntimeSettings,
    inputs: &[&str],
) -> Result<Option<i32>, RuntimeError> {
    let consumer: rdkafka::consumer::BaseConsumer =
        kafka::base_config(&rt.bootstrap_servers, &rt.librdkafka).create()?;
    let mut counts = BTreeSet::new();
    for topic in inputs {
        let partitions = kafka::partition_ids(&consumer, topic)?.len();
        if partitions > 0 {
            counts.insert(partitions);
        }
    }
    Ok(match (counts.len(), counts.first()) {
        (1, Some(&n)) => i32::try_from(n).ok(),
        _ => None,
    })
}

/// The agent's consumer group.
pub(super) fn group_id<A: Agent>(rt: &RuntimeSettings) -> String {
    rt.group_id
        .clone()
        .unwrap_or_else(|| format!("loyalty-swarm.{}", A::NAME))
}

pub(super) fn consumer_config<A: Agent>(
    shared: &Shared<A>,
    group_suffix: &str,
) -> rdkafka::ClientConfig {
    let rt = &shared.config.runtime;
    let group = group_id::<A>(rt);
    let mut config = kafka::base_config(&rt.bootstrap_servers, &rt.librdkafka);
    config
        .set("group.id", format!("{group}{group_suffix}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Inputs, changelogs and tables written in transactions (by this swarm under
        // exactly_once, or by the operator) are read as committed, aborted records never.
        .set("isolation.level", "read_committed")
        // Range keeps partition p of every co-partitioned input on one instance;
        // cooperative-sticky does not.
        .set("partition.assignment.strategy", "range");
    config
}

/// The internal topics an agent creates at start-up when missing, as Kafka Streams
/// creates its internal topics: changelog, DLQ, summaries (agents that share one) and
/// repartition topic (agents that re-key).
/// Partitioned ones follow the agent's inputs, as Kafka Streams' do its source topics:
/// `partitions` is the inputs' count where they exist (see [`input_partitions`]). The
/// DLQ keeps records `dlq_retention_ms`.
pub(super) fn own_topics<A: Agent>(
    agent: &A,
    partitions: i32,
    dlq_retention_ms: i64,
) -> Vec<TopicSpec> {
    let topic = |name: String, partitions: i32, compacted: bool| TopicSpec {
        name,
        partitions,
        replication: -1,
        compacted,
        retention_ms: None,
    };
    let mut own = vec![
        topic(changelog_topic::<A>(), partitions, true),
        TopicSpec {
            retention_ms: Some(dlq_retention_ms),
            ..topic(dlq_topic(A::NAME), 1, false)
        },
    ];
    if shares_summary::<A>() {
        own.push(topic(summaries_topic::<A>(), 1, true));
    }
    if rekeys::<A>() {
        own.push(TopicSpec {
            // Every forwarded record must survive however long the instance that reads
            // it is down, as Kafka Streams keeps its repartition topics.
            retention_ms: Some(-1),
            ..topic(repartition_topic::<A>(), partitions, false)
        });
    }
    for internal in agent.internal_topics() {
        own.push(TopicSpec {
            retention_ms: Some(-1),
            ..topic(internal.topic().to_owned(), partitions, false)
        });
    }
    own
}
