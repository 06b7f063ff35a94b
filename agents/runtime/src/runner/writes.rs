//! A batch's writes, in the order the guarantees need: outputs and DLQ records
//! acknowledged, then changed state on the changelog (and partition summaries)
//! acknowledged, then input offsets committed. Compacted outputs keep only a key's last
//! record per batch (Kafka Streams' record cache); stream outputs are stamped when they
//! are written.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rdkafka::consumer::StreamConsumer;

use super::offsets::{StreamTimes, commit};
use super::rebalance::AssignmentTracker;
use super::task::Offsets;
use super::transactions::write_transaction;
use super::{Shared, Store};
use crate::agent::{Agent, shares_summary};
use crate::error::RuntimeError;
use crate::kafka::{self, OutRecord};
use crate::metrics::{Event, Metrics};
use crate::store::SUMMARY_KEY;

/// One batch's writes, in the order they must be acknowledged.
pub(super) struct Writes {
    /// Outputs and DLQ records.
    pub(super) outputs: Vec<OutRecord>,
    /// Changed state (and partition summaries).
    pub(super) changes: Vec<OutRecord>,
    /// Input offsets to commit last.
    pub(super) commits: Offsets,
    /// Each task's stream time, committed with its offsets.
    pub(super) stream_times: StreamTimes,
}

/// A batch's writes running on their own task.
pub(super) type InFlight = tokio::task::JoinHandle<Result<(), RuntimeError>>;

/// Wait for the writes in flight, if any, and pass on their failure.
pub(super) async fn finish(in_flight: &mut Option<InFlight>) -> Result<(), RuntimeError> {
    match in_flight.take() {
        None => Ok(()),
        Some(handle) => handle
            .await
            .map_err(|e| RuntimeError::Other(format!("batch writes: {e}")))?,
    }
}

/// Take what a batch changed out of the stores: its outputs, then its changed state.
pub(super) fn prepare_writes<A: Agent>(
    shared: &Shared<A>,
    stores: &mut BTreeMap<i32, Store<A>>,
    outputs: Vec<OutRecord>,
    commits: Offsets,
) -> Result<Writes, RuntimeError> {
    let outputs = stamp_when_written(
        newest_per_compacted_key(outputs, &shared.compacted),
        &shared.streams,
    );
    let mut changes = Vec::new();
    let mut stream_times = StreamTimes::new();
    for (&partition, store) in stores.iter_mut() {
        stream_times.insert(partition, store.stream_time());
        for (key, payload) in store.drain_changes()? {
            if shares_summary::<A>() && key == SUMMARY_KEY {
                changes.push(OutRecord {
                    topic: shared.summaries.clone(),
                    partition: Some(0),
                    key: partition.to_string(),
                    payload: payload.clone(),
                    timestamp: None,
                    headers: Vec::new(),
                });
            }
            changes.push(OutRecord {
                topic: shared.changelog.clone(),
                partition: Some(partition),
                key,
                payload,
                timestamp: None,
                headers: Vec::new(),
            });
        }
        shared.metrics.emit(Event::StateSize {
            store: A::STORE,
            partition,
            keys: store.keys() as i64,
            bytes: store.bytes() as i64,
        });
    }
    Ok(Writes {
        outputs,
        changes,
        commits,
        stream_times,
    })
}

/// Outputs acknowledged, then changed state acknowledged, then input offsets committed;
/// under exactly_once, all three in one transaction.
pub(super) async fn write<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    writes: Writes,
) -> Result<(), RuntimeError> {
    if shared.transactional {
        let started = Instant::now();
        write_transaction(shared, consumer, &writes).await?;
        step_done(&shared.metrics, "transaction", started);
        return Ok(());
    }
    let Writes {
        outputs,
        changes,
        commits,
        stream_times,
    } = writes;
    if !outputs.is_empty() {
        let started = Instant::now();
        shared
            .backoff
            .retry("produce_outputs", &shared.metrics, || {
                kafka::produce_all(&shared.producer, &outputs)
            })
            .await?;
        count_produced(&shared.metrics, &outputs);
        step_done(&shared.metrics, "outputs", started);
    }
    if !changes.is_empty() {
        let started = Instant::now();
        shared
            .backoff
            .retry("produce_changelog", &shared.metrics, || {
                kafka::produce_all(&shared.producer, &changes)
            })
            .await?;
        count_produced(&shared.metrics, &changes);
        step_done(&shared.metrics, "changelog", started);
    }
    if !commits.is_empty() {
        let started = Instant::now();
        let committed = commit(shared, consumer, &commits, &stream_times).await?;
        step_done(&shared.metrics, "commit", started);
        if committed && let Some(purge) = &shared.purge {
            purge.committed(&commits);
        }
    }
    Ok(())
}

fn step_done(metrics: &Metrics, step: &str, started: Instant) {
    metrics.emit(Event::WriteStep {
        step,
        elapsed: started.elapsed(),
    });
}

/// What `handle`, `refresh` or `publish` emitted, as records to produce.
pub(super) fn out_records(
    emitted: Vec<crate::context::Emitted>,
    headers: &[(String, String)],
) -> impl Iterator<Item = OutRecord> {
    emitted.into_iter().map(move |e| OutRecord {
        topic: e.topic.to_owned(),
        partition: e.partition,
        key: e.key,
        payload: e.payload,
        timestamp: e.timestamp,
        headers: headers.to_vec(),
    })
}

/// Records on `streams` (outputs with the delete policy) get the time they are written
/// as their log timestamp; event time stays in the payload. Kafka deletes a stream's
/// records by log timestamp (`retention.ms`, 7 days by default): an opportunity
/// computed during a replay of 1997 and stamped 1997 would be deleted within minutes of
/// being written, before save-offer or an ESP had read it, and the bound
/// `swarm erasure status` gives for a member's records would not hold. Compacted
/// outputs keep event time (compaction deletes by key, not age), as do internal topics,
/// where the task a record is forwarded to must see the log time its source had.
pub(super) fn stamp_when_written(mut outputs: Vec<OutRecord>, streams: &[&str]) -> Vec<OutRecord> {
    for record in &mut outputs {
        if streams.contains(&record.topic.as_str()) {
            // No timestamp: the producer stamps the record as it sends it.
            record.timestamp = None;
        }
    }
    outputs
}

/// Drop every record of a compacted topic that a later record of the same batch
/// supersedes (same topic and key); the order of what stays is kept.
pub(super) fn newest_per_compacted_key(
    outputs: Vec<OutRecord>,
    compacted: &[&str],
) -> Vec<OutRecord> {
    if compacted.is_empty() {
        return outputs;
    }
    let mut last: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, r) in outputs.iter().enumerate() {
        if compacted.contains(&r.topic.as_str()) {
            last.insert((r.topic.as_str(), r.key.as_str()), i);
        }
    }
    let keep: Vec<bool> = outputs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            last.get(&(r.topic.as_str(), r.key.as_str()))
                .is_none_or(|&newest| newest == i)
        })
        .collect();
    outputs
        .into_iter()
        .zip(keep)
        .filter_map(|(r, keep)| keep.then_some(r))
        .collect()
}

pub(super) fn count_produced(metrics: &Metrics, records: &[OutRecord]) {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for r in records {
        *counts.entry(r.topic.as_str()).or_default() += 1;
    }
    for (topic, count) in counts {
        metrics.emit(Event::RecordsProduced { topic, count });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, key: &str, value: u8) -> OutRecord {
        OutRecord {
            topic: topic.into(),
            partition: None,
            key: key.into(),
            payload: Some(vec![value]),
            timestamp: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn stream_outputs_are_stamped_when_written_the_others_keep_event_time() {
        let june_1997 = 865_123_200_000;
        let at = |topic: &str| OutRecord {
            timestamp: Some(june_1997),
            ..record(topic, "m1", 1)
        };
        let written = stamp_when_written(
            vec![
                at("opportunities"),
                at("state"),
                at("agent.rekey-repartition"),
            ],
            &["opportunities"],
        );
        let stamps: Vec<Option<i64>> = written.iter().map(|r| r.timestamp).collect();
        assert_eq!(stamps, [None, Some(june_1997), Some(june_1997)]);
    }

    #[test]
    fn compacted_outputs_keep_only_each_keys_newest_record() {
        let batch = vec![
            record("state", "m1", 1),
            record("events", "m1", 2),
            record("state", "m2", 3),
            record("state", "m1", 4),
            record("events", "m1", 5),
        ];
        let kept: Vec<(String, String, u8)> = newest_per_compacted_key(batch, &["state"])
            .into_iter()
            .map(|r| (r.topic, r.key, r.payload.unwrap()[0]))
            .collect();
        let expected = [
            ("events", "m1", 2),
            ("state", "m2", 3),
            ("state", "m1", 4),
            ("events", "m1", 5),
        ];
        assert_eq!(
            kept,
            expected.map(|(t, k, v)| (t.to_owned(), k.to_owned(), v))
        );
    }
}
