//! Input offsets: committed last, after outputs and changed state are acknowledged; the
//! group's committed positions read back after a rebalance; and positions past the
//! transaction markers a consumer is never handed.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use super::Shared;
use super::rebalance::AssignmentTracker;
use super::task::Offsets;
use crate::agent::Agent;
use crate::error::RuntimeError;
use crate::kafka;

pub(super) fn offsets_to_commit(commits: &Offsets) -> Result<TopicPartitionList, RuntimeError> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in commits {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    Ok(tpl)
}

/// Commit input offsets; false when the partitions moved away first and nothing was
/// committed.
pub(super) async fn commit<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    commits: &Offsets,
) -> Result<bool, RuntimeError> {
    let tpl = offsets_to_commit(commits)?;
    let mut delays = shared.backoff.delays();
    loop {
        match kafka::blocking(|| consumer.commit(&tpl, CommitMode::Sync)) {
            Ok(()) => return Ok(true),
            Err(e) => {
                let error = RuntimeError::from(e);
                let rebalanced = consumer.assignment().map(|a| {
                    commits
                        .keys()
                        .any(|(t, p)| a.find_partition(t, *p).is_none())
                });
                if matches!(rebalanced, Ok(true)) {
                    // The partitions moved to another instance, which resumes from the last
                    // commit; its replay is idempotent, so nothing is lost or doubled.
                    warn!(error = %error, "commit after rebalance skipped");
                    return Ok(false);
                }
                if !error.is_transient() {
                    return Err(error);
                }
                delays.wait("commit", &shared.metrics, &error).await?;
            }
        }
    }
}

/// The group's committed offsets for the current assignment.
pub(super) fn committed_offsets(
    consumer: &StreamConsumer<AssignmentTracker>,
) -> Result<HashMap<(String, i32), i64>, RuntimeError> {
    let committed = kafka::blocking(|| consumer.committed(Duration::from_secs(30)))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

/// Commit positions the consumer moved to without handing over a record. A partition
/// written in transactions ends with a commit marker, which is never delivered: without
/// this its committed offset stays one short of the end forever and the group never
/// shows zero lag (under exactly_once the agent's own repartition topic is such a
/// partition). Every record before the position has been handled, so committing it, as
/// Kafka Streams does, skips nothing.
pub(super) fn positions_past_markers(
    consumer: &StreamConsumer<AssignmentTracker>,
    committed: &HashMap<(String, i32), i64>,
    commits: &mut Offsets,
) -> Result<(), RuntimeError> {
    for e in consumer.position()?.elements() {
        let Offset::Offset(position) = e.offset() else {
            continue;
        };
        let key = (e.topic().to_owned(), e.partition());
        let done = commits
            .get(&key)
            .or_else(|| committed.get(&key))
            .copied()
            .unwrap_or(-1);
        if position > done {
            commits.insert(key, position);
        }
    }
    Ok(())
}
