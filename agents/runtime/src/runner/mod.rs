//! The processing loop (`docs/architecture.md#the-processing-loop`), split by concern:
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | [`run`]: start-up, the loop, drain and teardown |
//! | `startup.rs` | schemas registered, producer, own topics, co-partitioning check |
//! | `task.rs` | [`StreamTasks`](task::StreamTasks): the loop's state and its steps |
//! | `dispatch.rs` | one record: key, replay check, decode, `handle`, re-key, DLQ |
//! | `call.rs` | one call of the agent's code on a key, on a copy, panics caught |
//! | `erase.rs` | an erasure request carried out; records of erased members dropped |
//! | `writes.rs` | a batch's outputs and changed state, produced in order |
//! | `offsets.rs` | committing input offsets |
//! | `transactions.rs` | the same writes as one Kafka transaction (exactly_once) |
//! | `rebalance.rs` | assignment, revocation, consumer lag |
//! | `restore.rs` | a partition's state rebuilt from its changelog |
//! | `tables.rs` | reference tables and shared partition summaries, followed |
//! | `refresh.rs` | every key re-derived when the population or a table changes |
//! | `timers.rs` | keys' timers fired on stream time and wall clock |
//! | `topics.rs` | topic names, the agent's own topics, its consumer group |
//!
//! Per batch: consume, decode, `handle`, then produce outputs (and DLQ records) and wait
//! for their acknowledgement, then write the changed state to the changelog and wait,
//! then commit input offsets. A crash anywhere leaves state behind or equal to outputs,
//! never ahead; the positions recorded in state make the replay idempotent. No Kafka
//! transactions are needed, so this holds on every broker. With `processing_guarantee =
//! exactly_once` the same three writes go in one Kafka transaction instead, so a replay
//! leaves no duplicate for read_committed consumers either.
//!
//! Writing a batch (those three steps) runs while the next batch is consumed and
//! handled in memory, one batch at a time: a batch's writes start only once the previous
//! batch's are done, so the order above holds across batches, and a revocation waits for
//! the writes in flight before the partitions leave (Kafka Streams commits in
//! `onPartitionsRevoked` for the same reason), so a new owner never restores a changelog
//! that is still being written.

mod call;
mod dispatch;
mod erase;
mod offsets;
mod rebalance;
mod refresh;
mod restore;
mod startup;
mod tables;
mod task;
mod timers;
mod topics;
mod transactions;
mod writes;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::agent::{Agent, shares_summary};
use crate::codec::{Decoder, Encoder};
use crate::config::Config;
use crate::context::TableView;
use crate::error::RuntimeError;
use crate::http::{self, Health};
use crate::metrics::Metrics;
use crate::purge::RepartitionPurge;
use crate::registry::RegistryClient;
use crate::retry::Backoff;
use crate::store::PartitionStore;
use crate::trace::Tracing;

pub use topics::{
    changelog_topic, consumed_topics, dlq_headers, dlq_topic, origin_headers, repartition_topic,
    summaries_topic,
};

/// One partition's store for agent `A`.
type Store<A> = PartitionStore<<A as Agent>::State, <A as Agent>::Summary>;

/// Everything the loop shares.
struct Shared<A: Agent> {
    agent: A,
    config: Config<A::Settings>,
    metrics: Metrics,
    registry: RegistryClient,
    backoff: Backoff,
    producer: FutureProducer,
    /// Whether each batch's writes go in one Kafka transaction (exactly_once).
    transactional: bool,
    tables: Arc<TableView>,
    encoders: HashMap<&'static str, Encoder>,
    /// One decoder per writer schema id met so far.
    decoders: std::sync::RwLock<HashMap<u32, Arc<Decoder>>>,
    /// Subscribed topics: the agent's inputs, then its repartition topic if it re-keys.
    inputs: Vec<&'static str>,
    /// The repartition topic, when the agent re-keys.
    repartition: Option<&'static str>,
    /// Deletes the repartition records the group has committed past.
    purge: Option<RepartitionPurge>,
    changelog: String,
    dlq: String,
    tracing: Tracing,
    /// Output topics that are compacted: only a key's last record per batch is produced.
    compacted: Vec<&'static str>,
    /// Compacted outputs keyed by member: an erasure tombstones the member's key there.
    member_compacted: Vec<&'static str>,
    /// Output topics that are streams (delete policy): their records are stamped when
    /// written, not with event time (see `writes::stamp_when_written`).
    streams: Vec<&'static str>,
    /// The erased ids, when the agent reads erasure requests.
    erasure: Option<crate::erasure::Registry>,
    /// This instance's name on receipts: its transactional id or `<group>.<host>.<port>`.
    instance: String,
    summaries: String,
    /// Every partition's summary as last published (the summaries topic, followed).
    published: std::sync::RwLock<BTreeMap<i32, A::Summary>>,
}

/// Run `agent` until `shutdown` resolves. The batch in flight is finished and committed
/// before returning (within `drain_timeout_ms`), and the consumer leaves its group.
pub async fn run<A: Agent>(
    agent: A,
    config: Config<A::Settings>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RuntimeError> {
    let metrics = Metrics::new(A::NAME).map_err(|e| RuntimeError::Other(e.to_string()))?;
    let health = Arc::new(Health::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let listen = config.runtime.http_listen.parse().map_err(|_| {
        RuntimeError::Other(format!("bad http_listen {}", config.runtime.http_listen))
    })?;
    let (addr, http_task) = http::serve(
        listen,
        metrics.clone(),
        health.clone(),
        stopped(stop_rx.clone()),
    )
    .await?;
    info!(agent = A::NAME, http = %addr, config = ?config.runtime, settings = ?config.agent, "starting");

    let result = match startup::start(agent, config, metrics, stop_rx.clone()).await {
        Ok(shared) => {
            let shared = Arc::new(shared);
            let result = serve(shared.clone(), health.clone(), stop_rx.clone()).await;
            health.set_ready(false);
            // Leave nothing queued: every acknowledged output was already awaited per
            // batch; what is left after an abandoned drain is not committed either.
            let _ = crate::kafka::blocking(|| shared.producer.flush(Duration::from_secs(1)));
            shared.tracing.shutdown();
            result
        }
        Err(e) => Err(e),
    };
    http_task.abort();
    let _ = http_task.await;
    // A retry that shutdown ended, or a drain that ran out of time, is a clean stop:
    // nothing was committed that was not written, and the next owner resumes from the
    // last commit.
    let result = match result {
        Err(RuntimeError::ShutDown { operation }) => {
            warn!(
                agent = A::NAME,
                operation,
                "stopped before the last batch was committed (broker or registry away, or the \
                 drain timed out); its records are handled again by the next owner"
            );
            Ok(())
        }
        other => other,
    };
    info!(agent = A::NAME, ok = result.is_ok(), "stopped");
    result
}

/// Load the reference tables, then run the loop until shutdown; the tables keep being
/// followed meanwhile, and if following them fails the agent stops rather than decide
/// with stale rules. Once shutdown is asked for, the loop has `drain_timeout_ms` to
/// write and commit the batch in flight.
async fn serve<A: Agent>(
    shared: Arc<Shared<A>>,
    health: Arc<Health>,
    stop_rx: watch::Receiver<bool>,
) -> Result<(), RuntimeError> {
    let specs = shared.agent.tables();
    let mut tables = if specs.is_empty() && !shares_summary::<A>() && shared.erasure.is_none() {
        None
    } else {
        let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(tables::follow_tables(shared.clone(), specs, loaded_tx));
        tokio::select! {
            loaded = loaded_rx => if loaded.is_err() {
                return match task.await {
                    Ok(Err(e)) => Err(e),
                    _ => Err(RuntimeError::Other("reference table loader ended before loading".into())),
                };
            },
            _ = stopped(stop_rx.clone()) => {}
        }
        Some(task)
    };
    // The loop runs on its own task so the drain deadline holds even while it waits
    // on a blocking client call.
    let mut processing = tokio::spawn(task::process(shared.clone(), health, stop_rx.clone()));
    let drain = Duration::from_millis(shared.config.runtime.drain_timeout_ms);
    let deadline = async {
        stopped(stop_rx).await;
        tokio::time::sleep(drain).await;
    };
    let table_failure = async {
        match tables.as_mut() {
            Some(task) => match task.await {
                // Shutdown ended one of the follower's retries: the drain goes on.
                Ok(Err(RuntimeError::ShutDown { .. })) => std::future::pending().await,
                Ok(Err(e)) => e,
                _ => RuntimeError::Other("reference table follower stopped".into()),
            },
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        ended = &mut processing => ended
            .map_err(|e| RuntimeError::Other(format!("processing loop: {e}")))
            .and_then(|result| result),
        error = table_failure => Err(error),
        _ = deadline => {
            warn!(agent = A::NAME, drain_timeout_ms = drain.as_millis() as u64, "the batch in flight was not committed within the drain timeout");
            Err(RuntimeError::ShutDown { operation: "drain" })
        }
    };
    processing.abort();
    if let Some(task) = tables {
        task.abort();
    }
    result
}

/// Resolves once `rx` turns true (or its sender is gone): the shutdown future handed
/// to servers and tasks.
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
