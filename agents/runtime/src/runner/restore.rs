//! Restore: a partition's state rebuilt from its compacted changelog before any of its
//! records is handled (Kafka Streams' restoration), with progress in metrics.

use std::collections::BTreeMap;
use std::time::Instant;

use rdkafka::consumer::StreamConsumer;
use tracing::{debug, info, warn};

use super::call::count_panic;
use super::dispatch::{caught, decoder_for};
use super::topics::consumer_config;
use super::{Shared, Store};
use crate::agent::{Agent, HandleError};
use crate::error::RuntimeError;
use crate::input::Input;
use crate::kafka;
use crate::metrics::Event;
use crate::store::PartitionStore;
use crate::wire;

/// A partition's state, restored from its changelog on first use.
pub(super) async fn store_for<'s, A: Agent>(
    shared: &Shared<A>,
    stores: &'s mut BTreeMap<i32, Store<A>>,
    partition: i32,
) -> Result<&'s mut Store<A>, RuntimeError> {
    Ok(match stores.entry(partition) {
        std::collections::btree_map::Entry::Occupied(slot) => slot.into_mut(),
        std::collections::btree_map::Entry::Vacant(slot) => {
            let mut store = restore_partition(shared, partition).await?;
            resume(shared, partition, &mut store).await?;
            // The previous owner may have erased a member moments ago: its changelog
            // tombstone is restored, and the registry record it wrote with it must be
            // known too before the member's next record, in flight, is handled.
            super::erase::caught_up(shared).await?;
            slot.insert(store)
        }
    })
}

/// Rebuild one partition's state from its changelog.
pub(super) async fn restore_partition<A: Agent>(
    shared: &Shared<A>,
    partition: i32,
) -> Result<Store<A>, RuntimeError> {
    let topic = shared.changelog.as_str();
    let restorer: StreamConsumer = consumer_config(shared, ".restore").create()?;
    let started = Instant::now();
    let mut delays = shared.backoff.delays();
    // A failed read starts over from an empty store: half a changelog is not a state.
    let (store, read) = loop {
        let mut store = PartitionStore::new(shared.inputs.len()).in_partition(partition);
        let mut pending = 0u64;
        let result =
            kafka::read_to_end(&restorer, topic, partition, |key, payload, offset, last| {
                store.restore(&String::from_utf8_lossy(key.unwrap_or_default()), payload)?;
                pending += 1;
                if pending == 10_000 {
                    shared.metrics.emit(Event::RestoreProgress {
                        store: A::STORE,
                        partition,
                        restored: pending,
                        remaining: last - offset,
                    });
                    pending = 0;
                }
                Ok(())
            })
            .await;
        match result {
            Ok(read) => {
                shared.metrics.emit(Event::RestoreProgress {
                    store: A::STORE,
                    partition,
                    restored: pending,
                    remaining: 0,
                });
                break (store, read);
            }
            Err(e) if e.is_transient() => {
                warn!(partition, "restore failed, starting over");
                delays.wait("restore", &shared.metrics, &e).await?;
            }
            Err(e) => return Err(e),
        }
    };
    debug!(partition, read, "changelog read");
    info!(
        partition,
        keys = store.keys(),
        bytes = store.bytes(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "partition state restored"
    );
    Ok(store)
}

/// A partition starting with the default summary rebuilds it from the output the agent
/// continues (`Agent::resumes_from`), if that output holds anything. Records that do
/// not frame or decode are not the agent's history and are left out; the agent decides
/// what a gap means.
async fn resume<A: Agent>(
    shared: &Shared<A>,
    partition: i32,
    store: &mut Store<A>,
) -> Result<(), RuntimeError> {
    let Some(topic) = shared.agent.resumes_from() else {
        return Ok(());
    };
    if *store.summary() != A::Summary::default() {
        return Ok(());
    }
    let reader: StreamConsumer = consumer_config(shared, ".resume").create()?;
    let mut raw: Vec<(String, Vec<u8>, i64)> = Vec::new();
    kafka::read_to_end(&reader, topic, partition, |key, payload, offset, _| {
        if let Some(bytes) = payload {
            let key = String::from_utf8_lossy(key.unwrap_or_default()).into_owned();
            raw.push((key, bytes.to_vec(), offset));
        }
        Ok(())
    })
    .await?;
    if raw.is_empty() {
        return Ok(());
    }
    let mut framed = Vec::with_capacity(raw.len());
    for (key, bytes, offset) in &raw {
        let Ok((id, body)) = wire::split(bytes) else {
            continue;
        };
        if let Ok(decoder) = decoder_for(shared, id).await? {
            framed.push((key.as_str(), decoder, body, *offset));
        }
    }
    let log: Vec<Input<'_>> = framed
        .iter()
        .map(|(key, decoder, body, offset)| Input {
            topic,
            partition,
            offset: *offset,
            timestamp: None,
            key,
            value: Some((decoder.as_ref(), body)),
        })
        .collect();
    match caught(|| shared.agent.resume(partition, &log)) {
        Ok(Some(summary)) => {
            info!(
                partition,
                topic,
                records = log.len(),
                "partition summary resumed"
            );
            *store.summary_mut() = summary;
        }
        Ok(None) => {}
        Err(HandleError::Rejected(rejection)) => {
            count_panic(shared, &rejection, "resume");
            warn!(partition, topic, reason = %rejection.reason, "partition summary not resumed");
        }
        Err(HandleError::Fatal(reason)) => {
            return Err(RuntimeError::Other(format!(
                "{} resuming partition {partition} from {topic}: {reason}",
                A::NAME
            )));
        }
    }
    Ok(())
}
