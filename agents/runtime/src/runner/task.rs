//! The loop's state and its steps: [`StreamTasks`] holds every partition this instance
//! owns (a Kafka Streams task per partition: its state store, its place in the
//! population) and the batch whose writes are in flight, so [`process`] reads as the
//! steps of `docs/architecture.md#the-processing-loop`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::dispatch::{Outcome, handle_message};
use super::offsets::{committed_offsets, positions_past_markers};
use super::rebalance::{AssignmentTracker, WriteGate};
use super::refresh::observe_population;
use super::restore::store_for;
use super::timers::{fire_due, wall_clock_now};
use super::topics::consumer_config;
use super::writes::{InFlight, finish, prepare_writes, write};
use super::{Shared, Store};
use crate::agent::{Agent, Population, shares_summary};
use crate::error::RuntimeError;
use crate::http::Health;
use crate::kafka::OutRecord;
use crate::metrics::Event;
use crate::retry::Backoff;
use crate::store::Clock;

/// Offsets per topic partition.
pub(super) type Offsets = BTreeMap<(String, i32), i64>;

/// The tasks this instance runs, one per assigned partition, and what the loop carries
/// from one batch to the next.
pub(super) struct StreamTasks<A: Agent> {
    pub(super) shared: Arc<Shared<A>>,
    pub(super) consumer: Arc<StreamConsumer<AssignmentTracker>>,
    /// Open while a batch's writes run, so a revocation can wait for them.
    pub(super) writing: Arc<WriteGate>,
    /// Each owned partition's state, restored from its changelog on assignment.
    pub(super) stores: BTreeMap<i32, Store<A>>,
    /// Every partition's summary as this instance sees it (agents that share one).
    pub(super) population: Population<A::Summary>,
    /// The previous batch's writes, running while this batch is consumed and handled.
    pub(super) in_flight: Option<InFlight>,
    /// The population and table generations last refreshed for, and when.
    pub(super) refreshed: ((u64, u64), Instant),
    /// Offsets committed for the assigned partitions, and the assignment they were read
    /// for: saves commits that would change nothing.
    committed: HashMap<(String, i32), i64>,
    committed_for: u64,
}

/// One batch, handled in memory and ready to write.
pub(super) struct Handled {
    /// Records consumed.
    records: usize,
    /// Timers fired.
    fired: usize,
    /// Outputs and DLQ records, in the order they were emitted.
    outputs: Vec<OutRecord>,
    /// The input offsets to commit once outputs and state are written.
    commits: Offsets,
    started: Instant,
}

/// The main consume/handle/produce/commit loop, until `stop` turns true.
pub(super) async fn process<A: Agent>(
    shared: Arc<Shared<A>>,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RuntimeError> {
    let mut tasks = StreamTasks::subscribe(shared)?;
    let result = run_batches(&mut tasks, &health, &mut stop).await;
    // Whatever ended the loop, the writes in flight finish (or fail) before the group is
    // left, rather than being cut off with the task.
    let finished = finish(&mut tasks.in_flight).await;
    info!(
        agent = A::NAME,
        "draining: last batch written, leaving the group"
    );
    tasks.consumer.unsubscribe();
    result.and(finished)
}

/// Batch after batch until shutdown.
async fn run_batches<A: Agent>(
    tasks: &mut StreamTasks<A>,
    health: &Health,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), RuntimeError> {
    while !*stop.borrow() {
        // 1. Consume a batch (and restore any partition a rebalance just assigned).
        let batch = tasks.poll(stop).await?;
        let (batch, assigned) = tasks.sync_assignment(batch).await?;
        health.set_ready(tasks.assignments() > 0);
        let behind = batch.len() >= tasks.shared.config.runtime.batch_max_records;
        // 2. Decode and handle every record on a copy of its key's state.
        let handled = tasks.handle(&batch).await?;
        // 3–5. Produce outputs, write changed state, commit offsets — while the next
        // batch is consumed.
        tasks.write(handled).await?;
        tasks.purge(&assigned);
        tasks.maybe_refresh(behind).await?;
    }
    Ok(())
}

impl<A: Agent> StreamTasks<A> {
    /// Join the agent's group on its inputs (and its repartition topic).
    fn subscribe(shared: Arc<Shared<A>>) -> Result<Self, RuntimeError> {
        let mut config = consumer_config(&shared, "");
        config.set("statistics.interval.ms", "5000");
        let writing = Arc::new(WriteGate::default());
        let consumer: Arc<StreamConsumer<AssignmentTracker>> =
            Arc::new(config.create_with_context(AssignmentTracker {
                assignments: AtomicU64::new(0),
                metrics: shared.metrics.clone(),
                writing: writing.clone(),
            })?);
        consumer.subscribe(&shared.inputs)?;
        Ok(StreamTasks {
            shared,
            consumer,
            writing,
            stores: BTreeMap::new(),
            population: Population::default(),
            in_flight: None,
            refreshed: ((0, 0), Instant::now()),
            committed: HashMap::new(),
            committed_for: 0,
        })
    }

    /// Assignments seen so far; readiness waits for the first.
    fn assignments(&self) -> u64 {
        self.consumer.context().assignments.load(Ordering::Acquire)
    }

    /// Up to `batch_max_records` records, waiting at most `batch_max_wait_ms` once the
    /// first has come; an empty batch after 200 ms without input or on shutdown.
    async fn poll(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Vec<OwnedMessage>, RuntimeError> {
        let rt = &self.shared.config.runtime;
        let backoff = &self.shared.backoff;
        let metrics = &self.shared.metrics;
        let mut batch: Vec<OwnedMessage> = Vec::new();
        tokio::select! {
            message = self.consumer.recv() => batch.extend(consumed(backoff, metrics, message).await?),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => {}
        }
        if batch.is_empty() {
            return Ok(batch);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(rt.batch_max_wait_ms);
        while batch.len() < rt.batch_max_records {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(message) => match consumed(backoff, metrics, message).await? {
                    Some(message) => batch.push(message),
                    // Process what we have; the broker trouble is librdkafka's to ride out.
                    None => break,
                },
                Err(_) => break,
            }
        }
        Ok(batch)
    }

    /// Restore newly assigned partitions, drop revoked ones, and keep only the records
    /// of partitions still assigned. A rebalance inside `recv` may have taken partitions
    /// whose records are already in the batch; their new owner reads them from the last
    /// commit, and handling them here too would restore and write a state that is no
    /// longer this instance's and commit (and purge) offsets it does not own — Kafka
    /// Streams drops a closed task's buffered records likewise.
    async fn sync_assignment(
        &mut self,
        mut batch: Vec<OwnedMessage>,
    ) -> Result<(Vec<OwnedMessage>, HashSet<(&'static str, i32)>), RuntimeError> {
        let assigned =
            super::rebalance::sync_assignment(&self.shared, &self.consumer, &mut self.stores)
                .await?;
        let received = batch.len();
        batch.retain(|m| assigned.contains(&(m.topic(), m.partition())));
        if batch.len() < received {
            debug!(
                dropped = received - batch.len(),
                "records of revoked partitions left to their new owner"
            );
        }
        let assignments = self.assignments();
        if assignments != self.committed_for {
            // A read_committed lookup can wait out another instance's open transaction,
            // so a failure is no reason to stop: every position is committed once more.
            let committed = committed_offsets(&self.consumer).unwrap_or_else(|e| {
                warn!(error = %e, "committed offsets not read; positions are committed again");
                Default::default()
            });
            // A task taken over starts from the stream time its last commit carried.
            for (partition, time) in &committed.stream_times {
                if let Some(store) = self.stores.get_mut(partition) {
                    store.advance_stream_time(Some(*time));
                }
            }
            self.committed = committed.offsets;
            self.committed_for = assignments;
        }
        if shares_summary::<A>() {
            observe_population(&self.shared, &self.stores, &mut self.population);
        }
        Ok((batch, assigned))
    }

    /// Handle every record of the batch, in order, against its partition's store.
    async fn handle(&mut self, batch: &[OwnedMessage]) -> Result<Handled, RuntimeError> {
        let started = Instant::now();
        let mut outputs: Vec<OutRecord> = Vec::new();
        let mut commits = Offsets::new();
        // Each input partition's first offset in this batch: every record before it was
        // written in an earlier batch, whose writes are acknowledged before this batch's
        // begin, so it is the floor of the records this batch re-keys.
        let mut floors: HashMap<(&str, i32), i64> = HashMap::new();
        let mut fired = 0;
        for message in batch {
            let partition = message.partition();
            let floor = *floors
                .entry((message.topic(), partition))
                .or_insert(message.offset());
            let store = store_for(&self.shared, &mut self.stores, partition).await?;
            let outcome = handle_message(
                &self.shared,
                message,
                floor,
                started,
                store,
                &self.population,
                &mut outputs,
            )
            .await?;
            // Every record the agent took moves stream time, a replayed one too, so the
            // timers it makes due fire after the same record on every run; one it
            // dead-lettered does not, so a bad timestamp cannot fire them all.
            let stream_time = if outcome == Outcome::DeadLettered {
                store.stream_time()
            } else {
                store.advance_stream_time(message.timestamp().to_millis())
            };
            fired += fire_due(
                &self.shared,
                store,
                Clock::StreamTime,
                stream_time,
                &self.population,
                &mut outputs,
            )?;
            commits.insert(
                (message.topic().to_owned(), partition),
                message.offset() + 1,
            );
        }
        let now = wall_clock_now();
        for store in self.stores.values_mut() {
            fired += fire_due(
                &self.shared,
                store,
                Clock::WallClock,
                now,
                &self.population,
                &mut outputs,
            )?;
        }
        positions_past_markers(&self.consumer, &self.committed, &mut commits)?;
        Ok(Handled {
            records: batch.len(),
            fired,
            outputs,
            commits,
            started,
        })
    }

    /// Start the batch's writes once the previous batch's are done, on their own task.
    async fn write(&mut self, handled: Handled) -> Result<(), RuntimeError> {
        let Handled {
            records,
            fired,
            outputs,
            commits,
            started,
        } = handled;
        if records == 0 && fired == 0 && commits.is_empty() {
            return Ok(());
        }
        self.committed
            .extend(commits.iter().map(|(tp, &offset)| (tp.clone(), offset)));
        let writes = prepare_writes(&self.shared, &mut self.stores, outputs, commits)?;
        finish(&mut self.in_flight).await?;
        let gate = self.writing.begin();
        let (shared, consumer) = (self.shared.clone(), self.consumer.clone());
        self.in_flight = Some(tokio::spawn(async move {
            let _gate = gate;
            write(&shared, &consumer, writes).await?;
            if records > 0 {
                shared.metrics.emit(Event::BatchCommitted {
                    records: records as u64,
                    elapsed: started.elapsed(),
                });
            }
            Ok(())
        }));
        // A task spawned from a worker waits in that worker's own slot, which other
        // workers do not steal from; without a yield the writes would start only when
        // this loop next waits, after handling the whole next batch.
        tokio::task::yield_now().await;
        Ok(())
    }

    /// Delete the repartition records the group has committed past, when due, in a task
    /// of its own: a slow or unreachable broker must not hold up the loop.
    fn purge(&self, assigned: &HashSet<(&'static str, i32)>) {
        let Some(due) = self.shared.purge.as_ref().and_then(|p| p.due(assigned)) else {
            return;
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            if let Some(purge) = &shared.purge {
                purge.delete(due, &shared.metrics).await;
            }
        });
    }
}

/// librdkafka reports broker trouble (all brokers down, transport failures) through the
/// consumer as errors while it keeps reconnecting by itself: a transient one is counted,
/// logged and waited out for the first retry delay; anything else is fatal.
pub(super) async fn consumed(
    backoff: &Backoff,
    metrics: &crate::metrics::Metrics,
    received: rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>,
) -> Result<Option<OwnedMessage>, RuntimeError> {
    match received {
        Ok(message) => Ok(Some(message.detach())),
        Err(e) => {
            let error = RuntimeError::from(e);
            if !error.is_transient() {
                return Err(error);
            }
            // One delay of a fresh sequence: librdkafka does the reconnecting.
            backoff.delays().wait("consume", metrics, &error).await?;
            Ok(None)
        }
    }
}
