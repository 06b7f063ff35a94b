//! Input offsets: committed last, after outputs and changed state are acknowledged; the
//! group's committed positions read back after a rebalance; and positions past the
//! transaction markers a consumer is never handed.

use std::collections::{BTreeMap, HashMap};
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

/// Commit metadata that carries a task's stream time, as Kafka Streams keeps partition
/// time in its commits: a task restored elsewhere starts from the stream time its
/// commits reached, so its timers fire where they would have.
const STREAM_TIME_METADATA: &str = "loyalty-swarm.stream-time=";

/// Stream time per partition index (task).
pub(super) type StreamTimes = BTreeMap<i32, i64>;

pub(super) fn offsets_to_commit(
    commits: &Offsets,
    stream_times: &StreamTimes,
) -> Result<TopicPartitionList, RuntimeError> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in commits {
        let mut element = tpl.add_partition(topic, *partition);
        element.set_offset(Offset::Offset(*offset))?;
        if let Some(time) = stream_times.get(partition).filter(|t| **t >= 0) {
            element.set_metadata(format!("{STREAM_TIME_METADATA}{time}"));
        }
    }
    Ok(tpl)
}

/// The group's committed positions for the current assignment, and the stream time each
/// task's commits carry.
#[derive(Debug, Default)]
pub(super) struct Committed {
    pub(super) offsets: HashMap<(String, i32), i64>,
    pub(super) stream_times: StreamTimes,
}

/// Commit input offsets; false when the partitions moved away first and nothing was
/// committed.
pub(super) async fn commit<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    commits: &Offsets,
    stream_times: &StreamTimes,
) -> Result<bool, RuntimeError> {
    let tpl = offsets_to_commit(commits, stream_times)?;
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
                if left_the_group(&error) {
                    // The coordinator no longer counts this instance in the generation
                    // (a coordinator failover outlasted the session, say). No retry of
                    // this commit can succeed: librdkafka rejoins only once the loop polls
                    // again and serves the rebalance, which revokes and restores the
                    // tasks from their changelogs. Kafka Streams does the same on a
                    // CommitFailedException (TaskMigratedException): give the commit up,
                    // rejoin, and replay from the last commit, idempotently.
                    warn!(error = %error, "commit skipped: the group moved on without this instance");
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

/// Whether a commit failed because this consumer is no longer a member of the group's
/// current generation.
fn left_the_group(error: &RuntimeError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    match error {
        RuntimeError::Kafka(e) => matches!(
            e.rdkafka_error_code(),
            Some(
                C::IllegalGeneration
                    | C::UnknownMemberId
                    | C::RebalanceInProgress
                    | C::FencedInstanceId
                    | C::State
            )
        ),
        _ => false,
    }
}

/// The group's committed offsets for the current assignment.
pub(super) fn committed_offsets(
    consumer: &StreamConsumer<AssignmentTracker>,
) -> Result<Committed, RuntimeError> {
    let committed = kafka::blocking(|| consumer.committed(Duration::from_secs(30)))?;
    let mut out = Committed::default();
    for e in committed.elements() {
        if let Offset::Offset(o) = e.offset() {
            out.offsets.insert((e.topic().to_owned(), e.partition()), o);
        }
        // rdkafka panics on metadata that is not UTF-8 (another client's): no stream
        // time then, never a stopped agent.
        let time = std::panic::catch_unwind(|| {
            e.metadata()
                .strip_prefix(STREAM_TIME_METADATA)
                .and_then(|t| t.parse::<i64>().ok())
        })
        .ok()
        .flatten();
        if let Some(time) = time {
            let task = out.stream_times.entry(e.partition()).or_insert(time);
            *task = (*task).max(time);
        }
    }
    Ok(out)
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
