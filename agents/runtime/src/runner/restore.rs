//! Restore: a partition's state rebuilt from its compacted changelog before any of its
//! records is handled (Kafka Streams' restoration), with progress in metrics.

use std::collections::BTreeMap;
use std::time::Instant;

use rdkafka::consumer::StreamConsumer;
use tracing::{debug, info, warn};

use super::topics::consumer_config;
use super::{Shared, Store};
use crate::agent::Agent;
use crate::error::RuntimeError;
use crate::kafka;
use crate::metrics::Event;
use crate::store::PartitionStore;

/// A partition's state, restored from its changelog on first use.
pub(super) async fn store_for<'s, A: Agent>(
    shared: &Shared<A>,
    stores: &'s mut BTreeMap<i32, Store<A>>,
    partition: i32,
) -> Result<&'s mut Store<A>, RuntimeError> {
    Ok(match stores.entry(partition) {
        std::collections::btree_map::Entry::Occupied(slot) => slot.into_mut(),
        std::collections::btree_map::Entry::Vacant(slot) => {
            let store = restore_partition(shared, partition).await?;
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
