//! exactly_once: a batch's outputs, changed state and input offsets written as one Kafka
//! transaction (Kafka Streams' `exactly_once_v2`), aborted and written again on an
//! abortable failure; the transactional producer and its default id.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, Producer};
use tracing::{info, warn};

use super::Shared;
use super::offsets::offsets_to_commit;
use super::rebalance::AssignmentTracker;
use super::topics::group_id;
use super::writes::{Writes, count_produced};
use crate::agent::Agent;
use crate::config::RuntimeSettings;
use crate::error::RuntimeError;
use crate::kafka;
use crate::metrics::{Event, Metrics};
use crate::retry::Backoff;

/// Longest a transaction call (send offsets, commit, abort) may block.
pub(super) const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The transactional producer of exactly_once, its transactions initialised: any
/// transaction a crashed predecessor with the same transactional id left open is aborted
/// here, and that predecessor is fenced. A broker without transactions stops the agent
/// at start-up.
pub(super) async fn transactional_producer<A: Agent>(
    rt: &RuntimeSettings,
    backoff: &Backoff,
    metrics: &Metrics,
) -> Result<FutureProducer, RuntimeError> {
    let transactional_id = match &rt.transactional_id {
        Some(id) => id.clone(),
        None => default_transactional_id(&group_id::<A>(rt), &rt.http_listen),
    };
    let producer = kafka::transactional_producer(
        &rt.bootstrap_servers,
        &kafka::awaited_batch_settings(&rt.librdkafka),
        &transactional_id,
    )?;
    backoff.retry("init_transactions", metrics, || async {
        kafka::blocking(|| producer.init_transactions(TRANSACTION_TIMEOUT)).map_err(|e| {
            let error = RuntimeError::from(e);
            if error.is_transient() {
                error
            } else {
                RuntimeError::Other(format!(
                    "processing_guarantee = \"exactly_once\": {} could not start Kafka transactions \
                     for transactional id {transactional_id:?} ({error}); use a broker with transactions \
                     or processing_guarantee = \"effectively_once\"",
                    rt.bootstrap_servers
                ))
            }
        })
    })
    .await?;
    info!(transactional_id, "transactions initialised");
    Ok(producer)
}

/// `<group>.<host name>.<port>`: distinct for instances on one host (their HTTP ports
/// differ) and for pods (their host names differ), and the same across an instance's
/// restarts where the host name is stable (a StatefulSet, one machine).
pub(super) fn default_transactional_id(group: &str, http_listen: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let port = http_listen.rsplit(':').next().unwrap_or(http_listen);
    format!("{group}.{host}.{port}")
}

/// One batch's writes as one transaction: outputs, changed state, then the input offsets
/// (sent to the group coordinator inside the transaction), committed together. An
/// abortable failure aborts and writes the same records again in a new transaction; they
/// are still in memory and no read_committed consumer saw the aborted ones. A fatal
/// failure (fenced by a newer instance with the same transactional id) stops the agent,
/// as does losing the batch's partitions mid-transaction: the next owner resumes from
/// the last committed transaction.
pub(super) async fn write_transaction<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    writes: &Writes,
) -> Result<(), RuntimeError> {
    let mut delays = shared.backoff.delays();
    loop {
        match transaction_attempt(shared, consumer, writes).await {
            Ok(()) => {
                if let Some(purge) = &shared.purge {
                    purge.committed(&writes.commits);
                }
                count_produced(&shared.metrics, &writes.outputs);
                count_produced(&shared.metrics, &writes.changes);
                shared.metrics.emit(Event::TransactionEnded {
                    outcome: "committed",
                });
                return Ok(());
            }
            Err(error) if is_fatal_transaction_error(&error) => return Err(error),
            Err(error) => {
                warn!(error = %error, "transaction failed, aborting and writing the batch again");
                transaction_call(shared, "abort_transaction", |p| {
                    p.abort_transaction(TRANSACTION_TIMEOUT)
                })
                .await?;
                shared
                    .metrics
                    .emit(Event::TransactionEnded { outcome: "aborted" });
                let assignment = consumer.assignment()?;
                if let Some((topic, partition)) = writes
                    .commits
                    .keys()
                    .find(|(t, p)| assignment.find_partition(t, *p).is_none())
                {
                    return Err(RuntimeError::Other(format!(
                        "{topic} [{partition}] was revoked during a transaction ({error}); \
                         the next owner resumes from the last committed transaction"
                    )));
                }
                delays.wait("transaction", &shared.metrics, &error).await?;
            }
        }
    }
}

pub(super) async fn transaction_attempt<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    writes: &Writes,
) -> Result<(), RuntimeError> {
    let producer = &shared.producer;
    producer.begin_transaction()?;
    kafka::produce_all(producer, &writes.outputs).await?;
    kafka::produce_all(producer, &writes.changes).await?;
    if !writes.commits.is_empty() {
        let offsets = offsets_to_commit(&writes.commits, &writes.stream_times)?;
        let group = consumer
            .group_metadata()
            .ok_or_else(|| RuntimeError::Other("consumer has no group metadata".into()))?;
        kafka::blocking(|| {
            producer.send_offsets_to_transaction(&offsets, &group, TRANSACTION_TIMEOUT)
        })?;
    }
    transaction_call(shared, "commit_transaction", |p| {
        p.commit_transaction(TRANSACTION_TIMEOUT)
    })
    .await
}

/// Run a blocking transaction call (commit, abort) until it succeeds or fails for good:
/// librdkafka lets one that timed out be repeated as it is.
pub(super) async fn transaction_call<A: Agent>(
    shared: &Shared<A>,
    operation: &'static str,
    call: impl Fn(&FutureProducer) -> rdkafka::error::KafkaResult<()>,
) -> Result<(), RuntimeError> {
    let mut delays = shared.backoff.delays();
    loop {
        match kafka::blocking(|| call(&shared.producer)) {
            Ok(()) => return Ok(()),
            Err(rdkafka::error::KafkaError::Transaction(e)) if e.is_retriable() => {
                delays.wait(operation, &shared.metrics, &e).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub(super) fn is_fatal_transaction_error(error: &RuntimeError) -> bool {
    matches!(error, RuntimeError::Kafka(rdkafka::error::KafkaError::Transaction(e)) if e.is_fatal())
}
