//! The processing loop of DESIGN section 3.
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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::agent::Population;
use crate::agent::{Agent, Context, HandleError, Input, TableSpec, TableView};
use crate::codec::{Decoder, Encoder, leak};
use crate::config::{Config, ProcessingGuarantee, RuntimeSettings};
use crate::error::{Rejection, RejectionKind, RuntimeError};
use crate::http::{self, Health};
use crate::kafka::{self, OutRecord, TopicSpec};
use crate::metrics::{Event, Metrics};
use crate::purge::RepartitionPurge;
use crate::registry::{RegistryClient, RegistryError};
use crate::retry::{Backoff, retry};
use crate::store::{Origin, PartitionStore, SUMMARY_KEY};

/// One partition's store for agent `A`.
type Store<A> = PartitionStore<<A as Agent>::State, <A as Agent>::Summary>;
use crate::trace::{RecordTrace, Tracing};
use crate::wire;

/// Name of an agent's changelog topic.
pub fn changelog_topic<A: Agent>() -> String {
    format!("{}.{}-changelog", A::NAME, A::STORE)
}

/// Name of the compacted topic an agent's partition summaries are shared on.
pub fn summaries_topic<A: Agent>() -> String {
    format!("{}.{}-summaries", A::NAME, A::STORE)
}

/// Name of the topic an agent re-keys records through (see [`Agent::REKEYS`]).
pub fn repartition_topic<A: Agent>() -> String {
    format!("{}.rekey-repartition", A::NAME)
}

/// Every topic an agent's consumer group reads: its inputs, then its repartition topic.
/// The group has caught up when it has committed all of them.
pub fn consumed_topics<A: Agent>(agent: &A) -> Vec<String> {
    agent
        .inputs()
        .into_iter()
        .map(String::from)
        .chain(A::REKEYS.then(repartition_topic::<A>))
        .collect()
}

/// Headers of a re-keyed record naming where it came from, defined once.
pub mod origin_headers {
    pub const TOPIC: &str = "loyalty.origin.topic";
    pub const PARTITION: &str = "loyalty.origin.partition";
    pub const OFFSET: &str = "loyalty.origin.offset";
    /// Every record of the origin partition below this offset that was forwarded had
    /// been acknowledged before this one was written (see `store::Forwarded`).
    pub const FLOOR: &str = "loyalty.origin.floor";
}

/// Name of an agent's dead-letter topic.
pub fn dlq_topic(agent: &str) -> String {
    format!("{agent}.dlq")
}

/// DLQ header names, defined once.
pub mod dlq_headers {
    pub const KIND: &str = "dlq.error.kind";
    pub const REASON: &str = "dlq.error.reason";
    pub const TOPIC: &str = "dlq.source.topic";
    pub const PARTITION: &str = "dlq.source.partition";
    pub const OFFSET: &str = "dlq.source.offset";
    pub const AGENT: &str = "dlq.agent";
    pub const VERSION: &str = "dlq.agent.version";
}

/// Counts assignments so readiness can wait for the first one, and turns librdkafka's
/// statistics into the consumer-lag gauge (librdkafka already tracks the high watermark
/// of every fetched partition, so lag costs no extra requests).
struct AssignmentTracker {
    assignments: AtomicU64,
    metrics: Metrics,
    writing: Arc<WriteGate>,
}

/// Whether a batch's writes are in flight, so a revocation can wait for them.
#[derive(Debug, Default)]
struct WriteGate {
    busy: std::sync::Mutex<bool>,
    idle: std::sync::Condvar,
}

/// Held by a batch's writes while they run; dropping it (done, failed or panicked) opens
/// the gate.
struct Writing(Arc<WriteGate>);

impl WriteGate {
    fn begin(self: &Arc<Self>) -> Writing {
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
    summaries: String,
    /// Every partition's summary as last published (the summaries topic, followed).
    published: std::sync::RwLock<BTreeMap<i32, A::Summary>>,
}

/// Run `agent` until `shutdown` resolves. The batch in flight is finished and committed
/// before returning, and the consumer leaves its group.
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

    let rt = &config.runtime;
    let backoff = Backoff {
        initial: Duration::from_millis(rt.retry_initial_ms),
        max: Duration::from_millis(rt.retry_max_ms),
    };
    let registry = RegistryClient::new(&rt.schema_registry_url)?;
    let mut encoders = HashMap::new();
    let compacted = agent
        .outputs()
        .iter()
        .filter(|o| o.compacted)
        .map(|o| o.topic)
        .collect();
    for output in agent.outputs() {
        let schema = (output.schema)();
        let subject = format!("{}-value", output.topic);
        let id = retry("register_schema", backoff, &metrics, || async {
            Ok(registry.register(&subject, &schema).await?)
        })
        .await?;
        encoders.insert(output.topic, Encoder::new(id, leak(schema))?);
    }
    let transactional = rt.processing_guarantee == ProcessingGuarantee::ExactlyOnce;
    let producer = if transactional {
        transactional_producer::<A>(rt, backoff, &metrics).await?
    } else {
        kafka::producer(&rt.bootstrap_servers, &rt.librdkafka)?
    };
    let changelog = changelog_topic::<A>();
    let dlq = dlq_topic(A::NAME);
    let summaries = summaries_topic::<A>();
    let mut own_topics = vec![
        TopicSpec {
            name: changelog.clone(),
            partitions: rt.partitions,
            replication: -1,
            compacted: true,
            retention_ms: None,
        },
        TopicSpec {
            name: dlq.clone(),
            partitions: 1,
            replication: -1,
            compacted: false,
            retention_ms: None,
        },
    ];
    if A::SHARES_SUMMARY {
        own_topics.push(TopicSpec {
            name: summaries.clone(),
            partitions: 1,
            replication: -1,
            compacted: true,
            retention_ms: None,
        });
    }
    // Named once per process and subscribed to like the agent's own inputs.
    let repartition: Option<&'static str> =
        A::REKEYS.then(|| &*Box::leak(repartition_topic::<A>().into_boxed_str()));
    if let Some(name) = repartition {
        own_topics.push(TopicSpec {
            name: name.to_owned(),
            partitions: rt.partitions,
            replication: -1,
            compacted: false,
            // Every forwarded record must survive however long the instance that reads
            // it is down, as Kafka Streams keeps its repartition topics.
            retention_ms: Some(-1),
        });
    }
    retry("create_topics", backoff, &metrics, || {
        kafka::ensure_topics(&rt.bootstrap_servers, &rt.librdkafka, &own_topics)
    })
    .await?;

    let mut inputs = agent.inputs();
    inputs.extend(repartition);
    let co_partitioned: Vec<&str> = inputs.iter().copied().chain([changelog.as_str()]).collect();
    let problems = retry("check_co_partitioning", backoff, &metrics, || async {
        co_partitioning_problems(rt, &co_partitioned)
    })
    .await?;
    if !problems.is_empty() {
        return Err(RuntimeError::Other(format!(
            "{} needs partition p of every member-keyed input, its changelog and its \
             repartition topic together; their partition counts differ: {}",
            A::NAME,
            problems.join(", ")
        )));
    }
    let table_specs = agent.tables();
    let shared = Arc::new(Shared {
        agent,
        config: config.clone(),
        metrics,
        registry,
        backoff,
        producer,
        transactional,
        tables: Arc::new(TableView::default()),
        encoders,
        decoders: Default::default(),
        inputs,
        repartition,
        purge: match repartition {
            Some(topic) => RepartitionPurge::new(rt, topic)?,
            None => None,
        },
        changelog,
        dlq,
        tracing: Tracing::new(A::NAME, &config.runtime)?,
        compacted,
        summaries,
        published: Default::default(),
    });

    let tables_task = if table_specs.is_empty() && !A::SHARES_SUMMARY {
        None
    } else {
        let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(follow_tables(shared.clone(), table_specs, loaded_tx));
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

    // The tables keep following after the initial load; if that fails, the agent stops
    // rather than decide with stale rules.
    let result = match tables_task {
        None => process(shared.clone(), health.clone(), stop_rx.clone()).await,
        Some(mut tables) => tokio::select! {
            result = process(shared.clone(), health.clone(), stop_rx.clone()) => {
                tables.abort();
                result
            }
            ended = &mut tables => match ended {
                Ok(Err(e)) => Err(e),
                _ => Err(RuntimeError::Other("reference table follower stopped".into())),
            },
        },
    };
    health.set_ready(false);
    // Leave nothing queued: every acknowledged output was already awaited per batch.
    let _ = shared.producer.flush(Duration::from_secs(10));
    shared.tracing.shutdown();
    drop(shared);
    http_task.abort();
    let _ = http_task.await;
    info!(agent = A::NAME, ok = result.is_ok(), "stopped");
    result
}

/// The partition counts of `topics` when they are not all the same (topics the broker
/// does not know yet are left out), or nothing.
fn co_partitioning_problems(
    rt: &RuntimeSettings,
    topics: &[&str],
) -> Result<Vec<String>, RuntimeError> {
    let consumer: rdkafka::consumer::BaseConsumer =
        kafka::base_config(&rt.bootstrap_servers, &rt.librdkafka).create()?;
    let mut counts = Vec::new();
    for topic in topics {
        let partitions = kafka::partition_ids(&consumer, topic)?.len();
        if partitions > 0 {
            counts.push((*topic, partitions));
        }
    }
    let distinct: BTreeSet<usize> = counts.iter().map(|(_, n)| *n).collect();
    Ok(if distinct.len() > 1 {
        counts
            .iter()
            .map(|(topic, n)| format!("{topic} has {n}"))
            .collect()
    } else {
        Vec::new()
    })
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

/// The agent's consumer group.
fn group_id<A: Agent>(rt: &RuntimeSettings) -> String {
    rt.group_id
        .clone()
        .unwrap_or_else(|| format!("loyalty-swarm.{}", A::NAME))
}

fn consumer_config<A: Agent>(shared: &Shared<A>, group_suffix: &str) -> rdkafka::ClientConfig {
    let rt = &shared.config.runtime;
    let group = group_id::<A>(rt);
    let mut config = kafka::base_config(&rt.bootstrap_servers, &rt.librdkafka);
    config
        .set("group.id", format!("{group}{group_suffix}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Inputs, changelogs and tables written in transactions (by this swarm under
        // exactly_once, or by the operator) are read as committed, aborted records never.
        .set("isolation.level", "read_committed")
        // Range keeps partition p of every co-partitioned input on one instance;
        // cooperative-sticky does not.
        .set("partition.assignment.strategy", "range");
    config
}

/// The main consume/handle/produce/commit loop.
async fn process<A: Agent>(
    shared: Arc<Shared<A>>,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RuntimeError> {
    let rt = &shared.config.runtime;
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
    // The previous batch's writes, running while this batch is consumed and handled.
    let mut in_flight: Option<InFlight> = None;
    let mut stores: BTreeMap<i32, Store<A>> = BTreeMap::new();
    let max_wait = Duration::from_millis(rt.batch_max_wait_ms);
    let refresh_interval = Duration::from_millis(rt.refresh_interval_ms);
    let mut population: Population<A::Summary> = Population::default();
    // The population and table generations last refreshed for, and when.
    let mut refreshed = ((0u64, 0u64), Instant::now());
    // Offsets committed for the assigned partitions, and the assignment they were read for.
    let mut committed: HashMap<(String, i32), i64> = HashMap::new();
    let mut committed_for = 0u64;

    loop {
        if *stop.borrow() {
            break;
        }
        let mut batch: Vec<OwnedMessage> = Vec::new();
        tokio::select! {
            message = consumer.recv() => batch.extend(consumed(&shared.metrics, shared.backoff, message).await?),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => {}
        }
        if !batch.is_empty() {
            let deadline = tokio::time::Instant::now() + max_wait;
            while batch.len() < rt.batch_max_records {
                match tokio::time::timeout_at(deadline, consumer.recv()).await {
                    Ok(message) => {
                        match consumed(&shared.metrics, shared.backoff, message).await? {
                            Some(message) => batch.push(message),
                            // Process what we have; the broker trouble is librdkafka's to ride out.
                            None => break,
                        }
                    }
                    Err(_) => break,
                }
            }
        }

        let assigned = sync_assignment(&shared, &consumer, &mut stores).await?;
        // A rebalance inside `recv` may have taken partitions whose records are already
        // in this batch. Their new owner reads them from the last commit; handling them
        // here too would restore and write a state that is no longer this instance's,
        // and commit (and purge) offsets it does not own — Kafka Streams drops a closed
        // task's buffered records likewise.
        let received = batch.len();
        batch.retain(|m| assigned.contains(&(m.topic(), m.partition())));
        if batch.len() < received {
            debug!(
                dropped = received - batch.len(),
                "records of revoked partitions left to their new owner"
            );
        }
        let assignments = consumer.context().assignments.load(Ordering::Acquire);
        health.set_ready(assignments > 0);
        if assignments != committed_for {
            // Only saves commits that would change nothing: without it every position is
            // committed once more. A read_committed lookup can wait out another
            // instance's open transaction, so a failure is no reason to stop.
            committed = committed_offsets(&consumer).unwrap_or_else(|e| {
                warn!(error = %e, "committed offsets not read; positions are committed again");
                HashMap::new()
            });
            committed_for = assignments;
        }
        if A::SHARES_SUMMARY {
            observe_population(&shared, &stores, &mut population);
        }
        let started = Instant::now();
        let mut outputs: Vec<OutRecord> = Vec::new();
        let mut commits: BTreeMap<(String, i32), i64> = BTreeMap::new();
        // Each input partition's first offset in this batch: every record before it
        // was written in an earlier batch, whose writes are acknowledged before this
        // batch's begin, so it is the floor of the records this batch re-keys.
        let mut floors: HashMap<(&str, i32), i64> = HashMap::new();
        for message in &batch {
            let partition = message.partition();
            let floor = *floors
                .entry((message.topic(), partition))
                .or_insert(message.offset());
            let store = store_for(&shared, &mut stores, partition).await?;
            handle_message(&shared, message, floor, store, &population, &mut outputs).await?;
            commits.insert(
                (message.topic().to_owned(), partition),
                message.offset() + 1,
            );
        }
        positions_past_markers(&consumer, &committed, &mut commits)?;
        if !batch.is_empty() || !commits.is_empty() {
            committed.extend(commits.iter().map(|(tp, &offset)| (tp.clone(), offset)));
            let writes = prepare_writes(&shared, &mut stores, outputs, commits)?;
            finish(&mut in_flight).await?;
            let gate = writing.begin();
            let (shared, consumer, records) = (shared.clone(), consumer.clone(), batch.len());
            in_flight = Some(tokio::spawn(async move {
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
        }
        if let Some(due) = shared.purge.as_ref().and_then(|p| p.due(&assigned)) {
            // In its own task: a slow or unreachable broker must not hold up the loop.
            let shared = shared.clone();
            tokio::spawn(async move {
                if let Some(purge) = &shared.purge {
                    purge.delete(due, &shared.metrics).await;
                }
            });
        }
        // A full batch means input is waiting: re-deriving every key now would be redone
        // by the next refresh anyway (catching up moves the population on), so it waits —
        // but never longer than REFRESH_DEFERRAL intervals, so a stream that never lets up
        // still gets refreshed.
        let behind = batch.len() >= rt.batch_max_records;
        maybe_refresh(
            &shared,
            &consumer,
            &mut in_flight,
            &mut stores,
            &mut population,
            &mut refreshed,
            if behind {
                refresh_interval * REFRESH_DEFERRAL
            } else {
                refresh_interval
            },
        )
        .await?;
    }
    finish(&mut in_flight).await?;
    info!(
        agent = A::NAME,
        "draining: last batch committed, leaving the group"
    );
    consumer.unsubscribe();
    Ok(())
}

/// The population as this instance sees it now: published summaries, overridden by the
/// current summaries of its own partitions. Bumps the generation when anything changed.
fn observe_population<A: Agent>(
    shared: &Shared<A>,
    stores: &BTreeMap<i32, Store<A>>,
    population: &mut Population<A::Summary>,
) {
    let Ok(published) = shared.published.read() else {
        return;
    };
    // Runs every loop turn: compare in place and clone only when something changed
    // (cloning every partition's sketches each turn was ~3% of an idle agent's CPU).
    let current = |partition: &i32| {
        stores
            .get(partition)
            .map(|store| store.summary())
            .or_else(|| published.get(partition))
    };
    let seen = published.keys().chain(stores.keys());
    let unchanged = seen
        .clone()
        .all(|p| population.partitions.get(p) == current(p))
        && population
            .partitions
            .keys()
            .all(|p| published.contains_key(p) || stores.contains_key(p));
    if unchanged {
        return;
    }
    population.partitions = seen
        .filter_map(|p| current(p).map(|summary| (*p, summary.clone())))
        .collect();
    population.generation += 1;
}

/// How many refresh intervals a refresh may be put off while input is waiting.
const REFRESH_DEFERRAL: u32 = 10;

/// Refresh every key when the population or a reference table changed since the last
/// refresh and the refresh interval has passed: often enough to follow them, rarely enough
/// that a busy stream is not spent re-deriving outputs.
async fn maybe_refresh<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    in_flight: &mut Option<InFlight>,
    stores: &mut BTreeMap<i32, Store<A>>,
    population: &mut Population<A::Summary>,
    refreshed: &mut ((u64, u64), Instant),
    interval: Duration,
) -> Result<(), RuntimeError> {
    if !A::SHARES_SUMMARY || refreshed.1.elapsed() < interval {
        return Ok(());
    }
    observe_population(shared, stores, population);
    let generations = (population.generation, shared.tables.generation());
    if generations == refreshed.0 {
        return Ok(());
    }
    let started = Instant::now();
    let outputs = refresh_all(shared, stores, population)?;
    let writes = prepare_writes(shared, stores, outputs, BTreeMap::new())?;
    finish(in_flight).await?;
    write(shared, consumer, writes).await?;
    shared.metrics.emit(Event::Refreshed {
        elapsed: started.elapsed(),
    });
    *refreshed = (generations, Instant::now());
    Ok(())
}

/// What `handle`, `refresh` and `publish` see: the tables, the encoders, and the summary
/// and population of agents that share one.
fn context<'a, A: Agent>(
    shared: &'a Shared<A>,
    emitted: &'a mut Vec<crate::agent::Emitted>,
    summary: Option<&'a mut (dyn std::any::Any + Send)>,
    population: Option<&'a (dyn std::any::Any + Send + Sync)>,
) -> Context<'a> {
    Context {
        tables: &shared.tables,
        encoders: &shared.encoders,
        emitted,
        summary,
        population,
        metrics: Some(&shared.metrics),
        rekey: None,
    }
}

/// Call the agent's `refresh` for every key of every owned partition; state that changed
/// is marked for the changelog, outputs are returned for producing.
fn refresh_all<A: Agent>(
    shared: &Shared<A>,
    stores: &mut BTreeMap<i32, Store<A>>,
    population: &Population<A::Summary>,
) -> Result<Vec<OutRecord>, RuntimeError> {
    let mut outputs = Vec::new();
    for store in stores.values_mut() {
        let keys: Vec<String> = store.iter().map(|(k, _)| k.clone()).collect();
        for key in keys {
            let mut state = store.entry(&key).state.clone();
            let mut emitted = Vec::new();
            let result = {
                let mut ctx = context(
                    shared,
                    &mut emitted,
                    Some(store.summary_mut()),
                    Some(population),
                );
                shared.agent.refresh(&key, &mut state, &mut ctx)
            };
            let entry = store.entry(&key);
            match result {
                Ok(()) => {
                    if state != entry.state {
                        entry.state = state;
                        store.mark_dirty(&key);
                    }
                    outputs.extend(out_records(emitted, &[]));
                }
                // No input record to dead-letter: the key keeps its previous outputs.
                Err(HandleError::Rejected(rejection)) => {
                    warn!(key, reason = %rejection.reason, "refresh rejected a key's state");
                }
                Err(HandleError::Fatal(reason)) => {
                    return Err(RuntimeError::Other(format!(
                        "{} refreshing {key}: {reason}",
                        A::NAME
                    )));
                }
            }
        }
    }
    if stores.contains_key(&0) {
        let mut emitted = Vec::new();
        let result = {
            let mut ctx = context(shared, &mut emitted, None, Some(population));
            shared.agent.publish(&mut ctx)
        };
        match result {
            Ok(()) => outputs.extend(out_records(emitted, &[])),
            Err(HandleError::Rejected(rejection)) => {
                warn!(reason = %rejection.reason, "population outputs not published");
            }
            Err(HandleError::Fatal(reason)) => {
                return Err(RuntimeError::Other(format!(
                    "{} publishing population outputs: {reason}",
                    A::NAME
                )));
            }
        }
    }
    Ok(outputs)
}

/// One batch's writes, in the order they must be acknowledged.
struct Writes {
    /// Outputs and DLQ records.
    outputs: Vec<OutRecord>,
    /// Changed state (and partition summaries).
    changes: Vec<OutRecord>,
    /// Input offsets to commit last.
    commits: BTreeMap<(String, i32), i64>,
}

/// A batch's writes running on their own task.
type InFlight = tokio::task::JoinHandle<Result<(), RuntimeError>>;

/// Wait for the writes in flight, if any, and pass on their failure.
async fn finish(in_flight: &mut Option<InFlight>) -> Result<(), RuntimeError> {
    match in_flight.take() {
        None => Ok(()),
        Some(handle) => handle
            .await
            .map_err(|e| RuntimeError::Other(format!("batch writes: {e}")))?,
    }
}

/// Take what a batch changed out of the stores: its outputs, then its changed state.
fn prepare_writes<A: Agent>(
    shared: &Shared<A>,
    stores: &mut BTreeMap<i32, Store<A>>,
    outputs: Vec<OutRecord>,
    commits: BTreeMap<(String, i32), i64>,
) -> Result<Writes, RuntimeError> {
    let outputs = newest_per_compacted_key(outputs, &shared.compacted);
    let mut changes = Vec::new();
    for (&partition, store) in stores.iter_mut() {
        for (key, payload) in store.drain_changes()? {
            if A::SHARES_SUMMARY && key == SUMMARY_KEY {
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
    })
}

/// Outputs acknowledged, then changed state acknowledged, then input offsets committed;
/// under exactly_once, all three in one transaction.
async fn write<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    writes: Writes,
) -> Result<(), RuntimeError> {
    if shared.transactional {
        return write_transaction(shared, consumer, &writes).await;
    }
    let Writes {
        outputs,
        changes,
        commits,
    } = writes;
    if !outputs.is_empty() {
        retry("produce_outputs", shared.backoff, &shared.metrics, || {
            kafka::produce_all(&shared.producer, &outputs)
        })
        .await?;
        count_produced(&shared.metrics, &outputs);
    }
    if !changes.is_empty() {
        retry("produce_changelog", shared.backoff, &shared.metrics, || {
            kafka::produce_all(&shared.producer, &changes)
        })
        .await?;
        count_produced(&shared.metrics, &changes);
    }
    if !commits.is_empty()
        && commit(shared, consumer, &commits).await?
        && let Some(purge) = &shared.purge
    {
        purge.committed(&commits);
    }
    Ok(())
}

/// Longest a transaction call (send offsets, commit, abort) may block.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The transactional producer of exactly_once, its transactions initialised: any
/// transaction a crashed predecessor with the same transactional id left open is aborted
/// here, and that predecessor is fenced. A broker without transactions stops the agent
/// at start-up.
async fn transactional_producer<A: Agent>(
    rt: &RuntimeSettings,
    backoff: Backoff,
    metrics: &Metrics,
) -> Result<FutureProducer, RuntimeError> {
    let transactional_id = match &rt.transactional_id {
        Some(id) => id.clone(),
        None => default_transactional_id(&group_id::<A>(rt), &rt.http_listen),
    };
    let producer =
        kafka::transactional_producer(&rt.bootstrap_servers, &rt.librdkafka, &transactional_id)?;
    retry("init_transactions", backoff, metrics, || async {
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
fn default_transactional_id(group: &str, http_listen: &str) -> String {
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
async fn write_transaction<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    writes: &Writes,
) -> Result<(), RuntimeError> {
    let mut delay = shared.backoff.initial;
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
                shared.metrics.emit(Event::Retried {
                    operation: "transaction",
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(shared.backoff.max);
            }
        }
    }
}

async fn transaction_attempt<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    writes: &Writes,
) -> Result<(), RuntimeError> {
    let producer = &shared.producer;
    producer.begin_transaction()?;
    kafka::produce_all(producer, &writes.outputs).await?;
    kafka::produce_all(producer, &writes.changes).await?;
    if !writes.commits.is_empty() {
        let offsets = offsets_to_commit(&writes.commits)?;
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
async fn transaction_call<A: Agent>(
    shared: &Shared<A>,
    operation: &'static str,
    call: impl Fn(&FutureProducer) -> rdkafka::error::KafkaResult<()>,
) -> Result<(), RuntimeError> {
    let mut delay = shared.backoff.initial;
    loop {
        match kafka::blocking(|| call(&shared.producer)) {
            Ok(()) => return Ok(()),
            Err(rdkafka::error::KafkaError::Transaction(e)) if e.is_retriable() => {
                shared.metrics.emit(Event::Retried { operation });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(shared.backoff.max);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_fatal_transaction_error(error: &RuntimeError) -> bool {
    matches!(error, RuntimeError::Kafka(rdkafka::error::KafkaError::Transaction(e)) if e.is_fatal())
}

fn offsets_to_commit(
    commits: &BTreeMap<(String, i32), i64>,
) -> Result<TopicPartitionList, RuntimeError> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in commits {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    Ok(tpl)
}

/// What `handle`, `refresh` or `publish` emitted, as records to produce.
fn out_records(
    emitted: Vec<crate::agent::Emitted>,
    headers: &[(String, String)],
) -> impl Iterator<Item = OutRecord> {
    emitted.into_iter().map(move |e| OutRecord {
        topic: e.topic.to_owned(),
        partition: None,
        key: e.key,
        payload: e.payload,
        timestamp: e.timestamp,
        headers: headers.to_vec(),
    })
}

/// Drop every record of a compacted topic that a later record of the same batch
/// supersedes (same topic and key); the order of what stays is kept.
fn newest_per_compacted_key(outputs: Vec<OutRecord>, compacted: &[&str]) -> Vec<OutRecord> {
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

/// librdkafka reports broker trouble (all brokers down, transport failures) through the
/// consumer as errors while it keeps reconnecting by itself: a transient one is counted,
/// logged and waited out for the first retry delay; anything else is fatal.
async fn consumed(
    metrics: &Metrics,
    backoff: Backoff,
    received: rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>,
) -> Result<Option<OwnedMessage>, RuntimeError> {
    match received {
        Ok(message) => Ok(Some(message.detach())),
        Err(e) => {
            let error = RuntimeError::from(e);
            if !error.is_transient() {
                return Err(error);
            }
            metrics.emit(Event::Retried {
                operation: "consume",
            });
            warn!(error = %error, "consume failed, librdkafka reconnects");
            tokio::time::sleep(backoff.initial).await;
            Ok(None)
        }
    }
}

fn count_produced(metrics: &Metrics, records: &[OutRecord]) {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for r in records {
        *counts.entry(r.topic.as_str()).or_default() += 1;
    }
    for (topic, count) in counts {
        metrics.emit(Event::RecordsProduced { topic, count });
    }
}

/// Commit input offsets; false when the partitions moved away first and nothing was
/// committed.
async fn commit<A: Agent>(
    shared: &Shared<A>,
    consumer: &StreamConsumer<AssignmentTracker>,
    commits: &BTreeMap<(String, i32), i64>,
) -> Result<bool, RuntimeError> {
    let tpl = offsets_to_commit(commits)?;
    let mut delay = shared.backoff.initial;
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
                shared.metrics.emit(Event::Retried {
                    operation: "commit",
                });
                warn!(error = %error, "commit failed, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(shared.backoff.max);
            }
        }
    }
}

/// The group's committed offsets for the current assignment.
fn committed_offsets(
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
fn positions_past_markers(
    consumer: &StreamConsumer<AssignmentTracker>,
    committed: &HashMap<(String, i32), i64>,
    commits: &mut BTreeMap<(String, i32), i64>,
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

/// Restore newly assigned partitions and drop the state of revoked ones; the topic
/// partitions assigned now (named by the subscribed topics, so a batch is checked
/// against them without allocating).
async fn sync_assignment<A: Agent>(
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

/// A partition's state, restored from its changelog on first use.
async fn store_for<'s, A: Agent>(
    shared: &Shared<A>,
    stores: &'s mut BTreeMap<i32, Store<A>>,
    partition: i32,
) -> Result<&'s mut Store<A>, RuntimeError> {
    Ok(match stores.entry(partition) {
        std::collections::btree_map::Entry::Occupied(slot) => slot.into_mut(),
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(restore_partition(shared, partition).await?)
        }
    })
}

/// Rebuild one partition's state from its changelog.
async fn restore_partition<A: Agent>(
    shared: &Shared<A>,
    partition: i32,
) -> Result<Store<A>, RuntimeError> {
    let topic = shared.changelog.as_str();
    let restorer: StreamConsumer = consumer_config(shared, ".restore").create()?;
    let started = Instant::now();
    let mut delay = shared.backoff.initial;
    // A failed read starts over from an empty store: half a changelog is not a state.
    let (store, read) = loop {
        let mut store = PartitionStore::new(shared.inputs.len());
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
                warn!(partition, error = %e, "restore failed, starting over");
                shared.metrics.emit(Event::Retried {
                    operation: "restore",
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(shared.backoff.max);
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

/// The decoder for a record's writer schema, or the reason it has none.
async fn decoder_for<A: Agent>(
    shared: &Shared<A>,
    id: u32,
) -> Result<Result<Arc<Decoder>, Rejection>, RuntimeError> {
    if let Some(decoder) = shared
        .decoders
        .read()
        .ok()
        .and_then(|d| d.get(&id).cloned())
    {
        return Ok(Ok(decoder));
    }
    let fetched = retry("fetch_schema", shared.backoff, &shared.metrics, || async {
        match shared.registry.schema(id).await {
            Err(RegistryError::UnknownId(_)) => Ok(None),
            other => Ok(Some(other?)),
        }
    })
    .await?;
    let Some(schema) = fetched else {
        return Ok(Err(Rejection::new(
            RejectionKind::UnknownSchemaId,
            format!("schema id {id} is not registered"),
        )));
    };
    let decoder = Arc::new(Decoder::new(leak(schema.as_ref().clone()))?);
    if let Ok(mut decoders) = shared.decoders.write() {
        decoders.insert(id, decoder.clone());
    }
    Ok(Ok(decoder))
}

async fn handle_message<A: Agent>(
    shared: &Shared<A>,
    message: &OwnedMessage,
    floor: i64,
    store: &mut Store<A>,
    population: &Population<A::Summary>,
    outputs: &mut Vec<OutRecord>,
) -> Result<(), RuntimeError> {
    let topic = message.topic();
    shared.metrics.emit(Event::RecordsConsumed {
        topic,
        partition: message.partition(),
        count: 1,
    });
    let input_index = shared.inputs.iter().position(|t| *t == topic).unwrap_or(0);
    let trace = shared.tracing.record(
        topic,
        message.partition(),
        message.offset(),
        message.headers(),
    );
    // Where the record entered the agent: a re-keyed record is handled, and
    // dead-lettered, as the record it was at its origin.
    let mut source = Source::of(message);

    let key = match message.key().map(std::str::from_utf8) {
        Some(Ok(key)) if !key.is_empty() => key,
        _ => {
            let rejection =
                Rejection::new(RejectionKind::BadKey, "record key is missing or not UTF-8");
            outputs.push(dead_letter(shared, message, source, &rejection, &trace));
            return Ok(());
        }
    };
    if store
        .get(key)
        .is_some_and(|e| e.reflects(input_index, message.offset()))
    {
        shared
            .metrics
            .emit(Event::ReplaySkipped { topic, count: 1 });
        return Ok(());
    }
    let origin = if shared.repartition == Some(topic) {
        match origin_of(shared, message) {
            Ok((origin, origin_topic)) => {
                source = Source {
                    topic: origin_topic,
                    partition: origin.partition,
                    offset: origin.offset,
                };
                Some(origin)
            }
            Err(rejection) => {
                outputs.push(dead_letter(shared, message, source, &rejection, &trace));
                return Ok(());
            }
        }
    } else {
        None
    };
    if let Some(origin) = &origin
        && (origin.offset < origin.floor
            || store.get(key).is_some_and(|e| e.reflects_origin(origin)))
    {
        // A second copy, forwarded again when its origin replayed.
        shared
            .metrics
            .emit(Event::ReplaySkipped { topic, count: 1 });
        return Ok(());
    }
    let value = match message.payload() {
        None => None,
        Some(bytes) => {
            let framed = match wire::split(bytes) {
                Ok(framed) => framed,
                Err(rejection) => {
                    outputs.push(dead_letter(shared, message, source, &rejection, &trace));
                    return Ok(());
                }
            };
            match decoder_for(shared, framed.0).await? {
                Ok(decoder) => Some((decoder, framed.1)),
                Err(rejection) => {
                    outputs.push(dead_letter(shared, message, source, &rejection, &trace));
                    return Ok(());
                }
            }
        }
    };
    let input = Input {
        topic: source.topic,
        partition: source.partition,
        offset: source.offset,
        timestamp: message.timestamp().to_millis(),
        key,
        value: value
            .as_ref()
            .map(|(schema, body)| (schema.as_ref(), *body)),
    };

    // Work on a copy so a rejected (or re-keyed) record leaves no trace in state.
    let mut state = store.get(key).and_then(|e| e.state.clone());
    let mut emitted = Vec::new();
    let started = Instant::now();
    let (result, rekey) = {
        let summary: Option<&mut (dyn std::any::Any + Send)> = if A::SHARES_SUMMARY {
            Some(store.summary_mut())
        } else {
            None
        };
        let population =
            A::SHARES_SUMMARY.then_some(population as &(dyn std::any::Any + Send + Sync));
        let mut ctx = context(shared, &mut emitted, summary, population);
        let result = shared.agent.handle(&input, &mut state, &mut ctx);
        (result, ctx.rekey)
    };
    shared.metrics.emit(Event::RecordHandled {
        topic,
        elapsed: started.elapsed(),
    });
    let rejected = |rejection: Rejection, outputs: &mut Vec<OutRecord>| {
        outputs.push(dead_letter(shared, message, source, &rejection, &trace));
        Ok(())
    };
    match (result, rekey) {
        (Ok(()), None) => {
            let entry = store.entry(key);
            entry.state = state;
            if let Some(p) = entry.positions.get_mut(input_index) {
                *p = message.offset();
            }
            if let Some(origin) = &origin {
                entry.record_origin(origin);
            }
            store.mark_dirty(key);
            outputs.extend(out_records(emitted, &trace.headers));
            Ok(())
        }
        (Ok(()), Some(to)) => {
            let Some(repartition) = shared.repartition else {
                return Err(RuntimeError::Other(format!(
                    "{} re-keyed a record but does not declare REKEYS",
                    A::NAME
                )));
            };
            if to == key {
                return rejected(
                    Rejection::contract(format!("re-keyed to its own key {key:?}")),
                    outputs,
                );
            }
            if origin.is_some() {
                // Forwarding again could go round in circles.
                return rejected(
                    Rejection::contract(format!(
                        "re-keyed again, from {key:?} to {to:?}, after being re-keyed once"
                    )),
                    outputs,
                );
            }
            shared.metrics.emit(Event::Rekeyed { topic, count: 1 });
            outputs.push(OutRecord {
                topic: repartition.to_owned(),
                partition: None,
                key: to,
                payload: message.payload().map(<[u8]>::to_vec),
                timestamp: message.timestamp().to_millis(),
                headers: [
                    (origin_headers::TOPIC, topic.to_owned()),
                    (origin_headers::PARTITION, message.partition().to_string()),
                    (origin_headers::OFFSET, message.offset().to_string()),
                    (origin_headers::FLOOR, floor.to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .chain(trace.headers.iter().cloned())
                .collect(),
            });
            Ok(())
        }
        (Err(HandleError::Rejected(rejection)), _) => rejected(rejection, outputs),
        (Err(HandleError::Fatal(reason)), _) => Err(RuntimeError::Other(format!(
            "{} at {}/{}/{}: {reason}",
            A::NAME,
            source.topic,
            source.partition,
            source.offset
        ))),
    }
}

/// A record's position where it entered the agent.
#[derive(Debug, Clone, Copy)]
struct Source<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
}

impl<'a> Source<'a> {
    fn of(message: &'a OwnedMessage) -> Self {
        Source {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
        }
    }
}

/// The origin a re-keyed record's headers name, and its input topic.
fn origin_of<'m, A: Agent>(
    shared: &Shared<A>,
    message: &'m OwnedMessage,
) -> Result<(Origin, &'static str), Rejection> {
    let header = |name: &str| -> Result<&'m str, Rejection> {
        message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == name))
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .ok_or_else(|| Rejection::contract(format!("re-keyed record without {name}")))
    };
    let number = |name: &str| -> Result<i64, Rejection> {
        header(name)?
            .parse()
            .map_err(|_| Rejection::contract(format!("re-keyed record with a bad {name}")))
    };
    let topic = header(origin_headers::TOPIC)?;
    let input = shared
        .inputs
        .iter()
        .position(|t| *t == topic && Some(*t) != shared.repartition)
        .ok_or_else(|| {
            Rejection::contract(format!(
                "re-keyed from {topic}, not an input of {}",
                A::NAME
            ))
        })?;
    let partition = i32::try_from(number(origin_headers::PARTITION)?)
        .map_err(|_| Rejection::contract("re-keyed record with a bad partition"))?;
    Ok((
        Origin {
            input: input as u32,
            partition,
            offset: number(origin_headers::OFFSET)?,
            floor: number(origin_headers::FLOOR)?,
        },
        shared.inputs[input],
    ))
}

/// The DLQ record for a rejected input: original key and bytes, reason in headers.
fn dead_letter<A: Agent>(
    shared: &Shared<A>,
    message: &OwnedMessage,
    source: Source<'_>,
    rejection: &Rejection,
    trace: &RecordTrace,
) -> OutRecord {
    trace.rejected(&rejection.reason);
    shared.metrics.emit(Event::DeadLettered {
        kind: rejection.kind,
    });
    warn!(
        topic = source.topic,
        partition = source.partition,
        offset = source.offset,
        kind = %rejection.kind,
        reason = %rejection.reason,
        "record sent to the DLQ"
    );
    OutRecord {
        topic: shared.dlq.clone(),
        partition: None,
        key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
        payload: message.payload().map(<[u8]>::to_vec),
        timestamp: message.timestamp().to_millis(),
        headers: vec![
            (dlq_headers::KIND.into(), rejection.kind.as_str().into()),
            (dlq_headers::REASON.into(), rejection.reason.clone()),
            (dlq_headers::TOPIC.into(), source.topic.into()),
            (dlq_headers::PARTITION.into(), source.partition.to_string()),
            (dlq_headers::OFFSET.into(), source.offset.to_string()),
            (dlq_headers::AGENT.into(), A::NAME.into()),
            (
                dlq_headers::VERSION.into(),
                env!("CARGO_PKG_VERSION").into(),
            ),
        ]
        .into_iter()
        .chain(trace.headers.iter().cloned())
        .collect(),
    }
}

/// Load every reference table to its high watermark, report that, then keep following.
async fn follow_tables<A: Agent>(
    shared: Arc<Shared<A>>,
    specs: Vec<TableSpec>,
    loaded: tokio::sync::oneshot::Sender<()>,
) -> Result<(), RuntimeError> {
    // Outside the consumer group: every instance reads every partition.
    let consumer: StreamConsumer = consumer_config(&shared, ".tables").create()?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut followed: Vec<&str> = specs.iter().map(|s| s.topic).collect();
    if A::SHARES_SUMMARY {
        followed.push(&shared.summaries);
    }
    for name in followed {
        let metadata = retry(
            "table_metadata",
            shared.backoff,
            &shared.metrics,
            || async {
                Ok(kafka::blocking(|| {
                    consumer.fetch_metadata(Some(name), Duration::from_secs(10))
                })?)
            },
        )
        .await?;
        for topic in metadata.topics() {
            for p in topic.partitions() {
                tpl.add_partition_offset(name, p.id(), Offset::Beginning)?;
                let (low, high) = kafka::blocking(|| {
                    consumer.fetch_watermarks(name, p.id(), Duration::from_secs(10))
                })?;
                if high > low {
                    remaining.insert((name.to_owned(), p.id()), high - 1);
                }
            }
        }
    }
    consumer.assign(&tpl)?;
    let mut loaded = Some(loaded);
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
        let Some(message) =
            consumed(&shared.metrics, shared.backoff, consumer.recv().await).await?
        else {
            continue;
        };
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        if message.topic() == shared.summaries {
            follow_summary(&shared, &key, message.payload())?;
        }
        if let Some(spec) = specs.iter().find(|s| s.topic == message.topic()) {
            follow_table(&shared, spec, &key, &message).await?;
            if shared.tables.get(spec.topic, &key).is_some() {
                missing.remove(spec.topic);
            }
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

/// One record of the summaries topic: another (or an earlier) instance's partition summary.
fn follow_summary<A: Agent>(
    shared: &Shared<A>,
    key: &str,
    payload: Option<&[u8]>,
) -> Result<(), RuntimeError> {
    let Ok(partition) = key.parse::<i32>() else {
        warn!(key, "summary record without a partition key ignored");
        return Ok(());
    };
    let summary = match payload {
        Some(bytes) => Some(
            postcard::from_bytes::<A::Summary>(bytes)
                .map_err(|e| RuntimeError::StateCodec(e.to_string()))?,
        ),
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
async fn follow_table<A: Agent>(
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
                        (spec.decode)(&input).map(Some)
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
            Err(rejection) => {
                let trace = shared.tracing.record(
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    message.headers(),
                );
                let record = dead_letter(shared, message, Source::of(message), &rejection, &trace);
                retry("produce_dlq", shared.backoff, &shared.metrics, || {
                    kafka::produce_all(&shared.producer, std::slice::from_ref(&record))
                })
                .await?;
            }
        }
    }
    Ok(())
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
