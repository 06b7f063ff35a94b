//! Reference tables (Kafka Streams' global tables): topics every instance reads whole —
//! programs, model fits — decoded once per record, dead-lettered when invalid, and
//! followed for as long as the agent runs. The agent's shared partition summaries are
//! followed the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tracing::info;

use super::Shared;
use super::dispatch::{Source, caught, dead_letter, decoder_for};
use super::task::consumed;
use super::topics::consumer_config;
use crate::agent::{Agent, HandleError, shares_summary};
use crate::erasure::{Erased, ErasedId};
use crate::error::{Rejection, RejectionKind, RuntimeError};
use crate::input::Input;
use crate::kafka;
use crate::metrics::Event;
use crate::topic::TableSpec;
use crate::wire;

/// Load every reference table to its high watermark, report that, then keep following.
pub(super) async fn follow_tables<A: Agent>(
    shared: Arc<Shared<A>>,
    specs: Vec<TableSpec>,
    loaded: tokio::sync::oneshot::Sender<()>,
) -> Result<(), RuntimeError> {
    // Outside the consumer group: every instance reads every partition.
    let consumer: StreamConsumer = consumer_config(&shared, ".tables").create()?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut followed: Vec<&str> = specs.iter().map(|s| s.topic).collect();
    if shares_summary::<A>() {
        followed.push(&shared.summaries);
    }
    if shared.erasure.is_some() {
        followed.push(crate::erasure::REGISTRY);
    }
    for name in followed {
        // A table topic created moments ago (by set-up, or by another instance) may not
        // have elected its partition leaders yet: Kafka answers NOT_LEADER_OR_FOLLOWER
        // until it has, which is worth waiting out, not stopping for.
        let watermarks = shared
            .backoff
            .retry("table_metadata", &shared.metrics, || async {
                kafka::blocking(|| {
                    let metadata = consumer.fetch_metadata(Some(name), Duration::from_secs(10))?;
                    let mut watermarks = Vec::new();
                    for topic in metadata.topics() {
                        for p in topic.partitions() {
                            let (low, high) =
                                consumer.fetch_watermarks(name, p.id(), Duration::from_secs(10))?;
                            watermarks.push((p.id(), low, high));
                        }
                    }
                    Ok::<_, RuntimeError>(watermarks)
                })
            })
            .await?;
        for (partition, low, high) in watermarks {
            if name == crate::erasure::REGISTRY
                && let Some(registry) = &shared.erasure
            {
                registry.read_to(partition, low);
            }
            tpl.add_partition_offset(name, partition, Offset::Beginning)?;
            if high > low {
                remaining.insert((name.to_owned(), partition), high - 1);
            }
        }
    }
    consumer.assign(&tpl)?;
    let mut loaded = Some(loaded);
    let mut positions_checked = std::time::Instant::now();
    let mut missing: BTreeSet<&str> = specs
        .iter()
        .filter(|s| s.required)
        .map(|s| s.topic)
        .collect();
    if !missing.is_empty() {
        info!(tables = ?missing, "waiting for required reference tables");
    }
    if remaining.is_empty() && missing.is_empty() {
        loaded.take().map(|tx| tx.send(()));
    }
    loop {
        // Runs until aborted when processing ends; it only returns on failure.
        let received = match tokio::time::timeout(IDLE, consumer.recv()).await {
            Ok(received) => received,
            Err(_) => {
                registry_read_to_position(&shared, &consumer)?;
                // Nothing new. A partition written in transactions ends with a commit
                // or abort marker that is never delivered, so its last offset never
                // arrives: it is loaded once the position has passed it.
                if loaded.is_some() {
                    passed_markers(&consumer, &mut remaining)?;
                    if remaining.is_empty() && missing.is_empty() {
                        info!(tables = specs.len(), "reference tables loaded");
                        loaded.take().map(|tx| tx.send(()));
                    }
                }
                continue;
            }
        };
        let Some(message) = consumed(&shared.backoff, &shared.metrics, received).await? else {
            continue;
        };
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        if message.topic() == shared.summaries
            && let Err(rejection) = follow_summary(&shared, &key, message.payload())
        {
            dead_letter_now(&shared, &message, &rejection).await?;
        }
        if message.topic() == crate::erasure::REGISTRY {
            follow_registry(&shared, &key, &message).await?;
        }
        if let Some(spec) = specs.iter().find(|s| s.topic == message.topic()) {
            follow_table(&shared, spec, &key, &message).await?;
            if shared.tables.get(spec.topic, &key).is_some() {
                missing.remove(spec.topic);
            }
        }
        if positions_checked.elapsed() >= IDLE {
            // The registry's position, also while other topics keep the follower busy:
            // a task waiting for the registry must not wait for a quiet moment.
            registry_read_to_position(&shared, &consumer)?;
            positions_checked = std::time::Instant::now();
        }
        let position = (message.topic().to_owned(), message.partition());
        if remaining
            .get(&position)
            .is_some_and(|&last| message.offset() >= last)
        {
            remaining.remove(&position);
        }
        if remaining.is_empty() && missing.is_empty() && loaded.is_some() {
            info!(tables = specs.len(), "reference tables loaded");
            loaded.take().map(|tx| tx.send(()));
        }
    }
}

/// One record of the erasure registry. Presence is the fact: a record whose value does
/// not decode still keeps the id erased (as of the record's time), and is dead-lettered
/// (it holds a hash, never an id).
async fn follow_registry<A: Agent>(
    shared: &Shared<A>,
    hash: &str,
    message: &OwnedMessage,
) -> Result<(), RuntimeError> {
    let Some(registry) = &shared.erasure else {
        return Ok(());
    };
    let entry = match message.payload() {
        None => None,
        Some(bytes) => {
            let decoded = match wire::split(bytes) {
                Ok((id, body)) => match decoder_for(shared, id).await? {
                    Ok(decoder) => decoder.decode::<ErasedId>(body),
                    Err(rejection) => Err(rejection),
                },
                Err(rejection) => Err(rejection),
            };
            Some(match decoded {
                Ok(record) => Erased::of(&record),
                Err(rejection) => {
                    dead_letter_now(shared, message, &rejection).await?;
                    Erased {
                        request_id: String::new(),
                        erased_at: message.timestamp().to_millis().unwrap_or(0),
                        reenrolled_at: None,
                    }
                }
            })
        }
    };
    registry.set(hash, entry);
    registry.read_to(message.partition(), message.offset() + 1);
    Ok(())
}

/// The registry read as far as the follower's position: past transaction markers,
/// which are never delivered as records.
fn registry_read_to_position<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer,
) -> Result<(), RuntimeError> {
    let Some(registry) = &shared.erasure else {
        return Ok(());
    };
    for p in consumer
        .position()?
        .elements_for_topic(crate::erasure::REGISTRY)
    {
        if let Offset::Offset(next) = p.offset() {
            registry.read_to(p.partition(), next);
        }
    }
    Ok(())
}

/// How long the loader waits for a record before checking its positions.
const IDLE: Duration = Duration::from_millis(200);

/// Forget the partitions whose position is past their last offset at start-up.
fn passed_markers(
    consumer: &StreamConsumer,
    remaining: &mut BTreeMap<(String, i32), i64>,
) -> Result<(), RuntimeError> {
    let position = consumer.position()?;
    remaining.retain(|(topic, partition), last| {
        !position
            .find_partition(topic, *partition)
            .is_some_and(|p| matches!(p.offset(), Offset::Offset(next) if next > *last))
    });
    Ok(())
}

/// One record of the summaries topic: another (or an earlier) instance's partition
/// summary. One that does not decode is rejected, and the partition keeps the summary
/// it had.
fn follow_summary<A: Agent>(
    shared: &Shared<A>,
    key: &str,
    payload: Option<&[u8]>,
) -> Result<(), Rejection> {
    let partition = key.parse::<i32>().map_err(|_| {
        Rejection::new(
            RejectionKind::BadKey,
            format!("summary record keyed {key:?}, not by a partition"),
        )
    })?;
    let summary = match payload {
        Some(bytes) => Some(postcard::from_bytes::<A::Summary>(bytes).map_err(|e| {
            Rejection::new(
                RejectionKind::Undecodable,
                format!("partition summary does not decode: {e}"),
            )
        })?),
        None => None,
    };
    if let Ok(mut published) = shared.published.write() {
        match summary {
            Some(s) => published.insert(partition, s),
            None => published.remove(&partition),
        };
    }
    Ok(())
}

/// One record of a reference table: decoded and stored, or dead-lettered.
pub(super) async fn follow_table<A: Agent>(
    shared: &Shared<A>,
    spec: &TableSpec,
    key: &str,
    message: &OwnedMessage,
) -> Result<(), RuntimeError> {
    {
        let outcome = match message.payload() {
            None => Ok(None),
            Some(bytes) => match wire::split(bytes) {
                Err(r) => Err(r),
                Ok((id, body)) => match decoder_for(shared, id).await? {
                    Err(r) => Err(r),
                    Ok(decoder) => {
                        let input = Input {
                            topic: spec.topic,
                            partition: message.partition(),
                            offset: message.offset(),
                            timestamp: message.timestamp().to_millis(),
                            key,
                            value: Some((decoder.as_ref(), body)),
                        };
                        caught(|| Ok((spec.decode)(&input)?))
                            .map(Some)
                            .map_err(|e| match e {
                                HandleError::Rejected(rejection) => {
                                    if rejection.kind == RejectionKind::Panic {
                                        shared.metrics.emit(Event::Panicked { during: "table" });
                                    }
                                    rejection
                                }
                                HandleError::Fatal(reason) => Rejection::contract(reason),
                            })
                    }
                },
            },
        };
        match outcome {
            Ok(value) => {
                shared.tables.put(spec.topic, key, value);
                shared.metrics.emit(Event::TableLoaded {
                    topic: spec.topic,
                    count: 1,
                });
            }
            Err(rejection) => dead_letter_now(shared, message, &rejection).await?,
        }
    }
    Ok(())
}

/// Dead-letter a table or summary record at once: it is no input of a batch.
async fn dead_letter_now<A: Agent>(
    shared: &Shared<A>,
    message: &OwnedMessage,
    rejection: &Rejection,
) -> Result<(), RuntimeError> {
    let trace = shared.tracing.record(
        message.topic(),
        message.partition(),
        message.offset(),
        message.headers(),
    );
    let record = dead_letter(shared, message, Source::of(message), rejection, &trace);
    shared
        .backoff
        .retry("produce_dlq", &shared.metrics, || {
            kafka::produce_all(&shared.producer, std::slice::from_ref(&record))
        })
        .await
}
