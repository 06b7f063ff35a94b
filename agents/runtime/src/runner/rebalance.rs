//! Rebalances: partitions assigned are restored before their records are handled,
//! partitions revoked leave only once the batch writing them is committed, and
//! librdkafka's statistics become the consumer-lag gauge.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use tracing::debug;

use super::restore::store_for;
use super::{Shared, Store};
use crate::agent::Agent;
use crate::error::RuntimeError;
use crate::kafka;
use crate::metrics::{Event, Metrics};

/// Counts assignments so readiness can wait for the first one, and turns librdkafka's
/// statistics into the consumer-lag gauge (librdkafka already tracks the high watermark
/// of every fetched partition, so lag costs no extra requests).
pub(super) struct AssignmentTracker {
    pub(super) assignments: AtomicU64,
    pub(super) metrics: Metrics,
    pub(super) writing: Arc<WriteGate>,
}

/// Whether a batch's writes are in flight, so a revocation can wait for them.
#[derive(Debug, Default)]
pub(super) struct WriteGate {
    busy: std::sync::Mutex<bool>,
    idle: std::sync::Condvar,
}

/// Held by a batch's writes while they run; dropping it (done, failed or panicked) opens
/// the gate.
pub(super) struct Writing(Arc<WriteGate>);

impl WriteGate {
    pub(super) fn begin(self: &Arc<Self>) -> Writing {
        if let Ok(mut busy) = self.busy.lock() {
            *busy = true;
        }
        Writing(self.clone())
    }

    /// Block until no batch's writes are in flight.
    fn wait_idle(&self) {
        let Ok(mut busy) = self.busy.lock() else {
            return;
        };
        while *busy {
            busy = match self.idle.wait(busy) {
                Ok(guard) => guard,
                Err(_) => return,
            };
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.0.busy.lock() {
            *busy = false;
        }
        self.0.idle.notify_all();
    }
}

impl ClientContext for AssignmentTracker {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (&partition, p) in &t.partitions {
                // Partition -1 is librdkafka's internal UA partition; lag -1 means unknown.
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics.emit(Event::ConsumerLag {
                        topic,
                        partition,
                        lag: p.consumer_lag,
                    });
                }
            }
        }
    }
}

impl ConsumerContext for AssignmentTracker {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Revoke(_)) {
            // The partitions' last batch must be in the changelog and committed before
            // another instance may restore them.
            kafka::blocking(|| self.writing.wait_idle());
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.assignments.fetch_add(1, Ordering::AcqRel);
            debug!(partitions = tpl.count(), "partitions assigned");
        }
    }
}

/// Restore newly assigned partitions and drop the state of revoked ones; the topic
/// partitions assigned now (named by the subscribed topics, so a batch is checked
/// against them without allocating).
pub(super) async fn sync_assignment<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    stores: &mut BTreeMap<i32, Store<A>>,
) -> Result<HashSet<(&'static str, i32)>, RuntimeError> {
    let assigned: HashSet<(&'static str, i32)> = consumer
        .assignment()?
        .elements()
        .iter()
        .filter_map(|e| {
            let topic = shared.inputs.iter().find(|t| **t == e.topic())?;
            Some((*topic, e.partition()))
        })
        .collect();
    let tasks: BTreeSet<i32> = assigned.iter().map(|(_, p)| *p).collect();
    stores.retain(|p, _| tasks.contains(p));
    for partition in tasks {
        store_for(shared, stores, partition).await?;
    }
    Ok(assigned)
}
