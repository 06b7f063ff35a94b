//! Every metric the runtime exports, defined once ([`MetricDef`]) and emitted through
//! one typed event (after Vector's internal events): call sites say what happened, this
//! module decides which series move. An agent's own metrics are defined the same way in
//! its own crate and registered in the same registry at start-up
//! ([`crate::Agent::register_metrics`]); the README's reference table is generated from
//! the definitions ([`reference_table`]). Names follow Prometheus conventions under
//! `loyalty_swarm_`.

use std::time::Duration;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Registry,
    TextEncoder,
};

use crate::error::RejectionKind;

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric: its name under `loyalty_swarm_`, kind, labels (besides `agent`) and what
/// it means — the help text Prometheus shows and the README's reference row.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: MetricKind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

impl MetricDef {
    pub const fn counter(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        MetricDef {
            name,
            kind: MetricKind::Counter,
            labels,
            help,
        }
    }

    pub const fn gauge(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        MetricDef {
            name,
            kind: MetricKind::Gauge,
            labels,
            help,
        }
    }

    pub const fn histogram(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        MetricDef {
            name,
            kind: MetricKind::Histogram,
            labels,
            help,
        }
    }

    /// The full name as scraped.
    pub fn full_name(&self) -> String {
        format!("{PREFIX}_{}", self.name)
    }
}

/// The runtime's metrics, in the order of the reference table.
pub mod defs {
    use super::MetricDef;

    pub const CONSUMED: MetricDef = MetricDef::counter(
        "records_consumed_total",
        &["topic", "partition"],
        "input records read",
    );
    pub const PRODUCED: MetricDef = MetricDef::counter(
        "records_produced_total",
        &["topic"],
        "records acknowledged (outputs, changelog, DLQ)",
    );
    pub const PROCESSING: MetricDef = MetricDef::histogram(
        "processing_seconds",
        &["topic"],
        "time in `handle` per record",
    );
    pub const REPLAY_SKIPPED: MetricDef = MetricDef::counter(
        "replay_skipped_total",
        &["topic"],
        "records skipped because state already reflects them (replay after a crash; on a repartition topic, second copies of forwarded records)",
    );
    pub const ERASED_DROPPED: MetricDef = MetricDef::counter(
        "erased_dropped_total",
        &["topic"],
        "records of an erased member (or of an id linked to one) dropped before any state was made of them: replays of old input, events in flight when the erasure came",
    );
    pub const ERASURES: MetricDef = MetricDef::counter(
        "erasures_total",
        &["outcome"],
        "erasure requests carried out: `erased` (something was removed), `nothing_held` (a repeated request, or a member this agent never held), `before_reenrolment` (a request the member came back after, replayed: nothing removed); each writes a receipt. `reenrolled`: an erased member enrolled again",
    );
    pub const REKEYED: MetricDef = MetricDef::counter(
        "records_rekeyed_total",
        &["topic"],
        "records handed to another key through the agent's repartition topic",
    );
    pub const REPARTITION_PURGES: MetricDef = MetricDef::counter(
        "repartition_purges_total",
        &["outcome"],
        "DeleteRecords calls on the agent's repartition topic: `purged`, or `failed` (tried again at the next interval; nothing is lost)",
    );
    pub const DEAD_LETTERED: MetricDef = MetricDef::counter(
        "dlq_records_total",
        &["reason"],
        "dead-lettered records by kind: `not_wire_format`, `unknown_schema_id`, `undecodable`, `contract_violation`, `bad_key`, `panic`",
    );
    pub const PANICS: MetricDef = MetricDef::counter(
        "panics_total",
        &["during"],
        "panics in the agent's code, caught: `handle` (record dead-lettered), `table` (table record dead-lettered), `refresh` and `on_timer` (the key kept its state), `publish`, `forget` (the erasure request dead-lettered), `reenrolment` (the record taken as not re-enrolling), `resume` (the partition summary not resumed)",
    );
    pub const BATCHES: MetricDef = MetricDef::counter(
        "batches_committed_total",
        &[],
        "batches produced, written through and committed",
    );
    pub const BATCH_SECONDS: MetricDef =
        MetricDef::histogram("batch_seconds", &[], "wall time of a batch, poll to commit");
    pub const WRITE_SECONDS: MetricDef = MetricDef::histogram(
        "write_seconds",
        &["step"],
        "wall time of each step of a batch's writes, retries included: `outputs` (outputs and DLQ records acknowledged), `changelog` (changed state acknowledged), `commit` (input offsets), `transaction` (all three under exactly_once)",
    );
    pub const LAG: MetricDef = MetricDef::gauge(
        "consumer_lag",
        &["topic", "partition"],
        "high watermark minus committed position",
    );
    pub const STATE_KEYS: MetricDef = MetricDef::gauge(
        "state_keys",
        &["store", "partition"],
        "keys in a partition's state",
    );
    pub const STATE_BYTES: MetricDef = MetricDef::gauge(
        "state_bytes",
        &["store", "partition"],
        "encoded bytes of a partition's state",
    );
    pub const RESTORED: MetricDef = MetricDef::counter(
        "restore_records_total",
        &["store", "partition"],
        "changelog records read while restoring",
    );
    pub const RESTORE_REMAINING: MetricDef = MetricDef::gauge(
        "restore_remaining_records",
        &["store", "partition"],
        "changelog records still to restore",
    );
    pub const RETRIES: MetricDef = MetricDef::counter(
        "retries_total",
        &["operation"],
        "transient failures retried",
    );
    pub const TRANSACTIONS: MetricDef = MetricDef::counter(
        "transactions_total",
        &["outcome"],
        "Kafka transactions ended, `committed` or `aborted` (`exactly_once` only; an aborted batch is written again)",
    );
    pub const TABLE_RECORDS: MetricDef = MetricDef::counter(
        "table_records_total",
        &["topic"],
        "reference-table records loaded",
    );
    pub const REFRESHES: MetricDef = MetricDef::counter(
        "refreshes_total",
        &[],
        "re-scorings of every key after the shared population changed",
    );
    pub const REFRESH_SECONDS: MetricDef =
        MetricDef::histogram("refresh_seconds", &[], "wall time of one refresh");
    pub const TIMERS: MetricDef = MetricDef::counter(
        "timers_fired_total",
        &["clock", "outcome"],
        "key timers fired, by clock (`stream_time`, `wall_clock`) and outcome (`fired`, or `rejected`: the key kept its state)",
    );

    /// Every runtime metric.
    pub const ALL: &[MetricDef] = &[
        CONSUMED,
        PRODUCED,
        PROCESSING,
        REPLAY_SKIPPED,
        ERASED_DROPPED,
        ERASURES,
        REKEYED,
        REPARTITION_PURGES,
        DEAD_LETTERED,
        PANICS,
        BATCHES,
        BATCH_SECONDS,
        WRITE_SECONDS,
        LAG,
        STATE_KEYS,
        STATE_BYTES,
        RESTORED,
        RESTORE_REMAINING,
        RETRIES,
        TRANSACTIONS,
        TABLE_RECORDS,
        REFRESHES,
        REFRESH_SECONDS,
        TIMERS,
    ];
}

/// The metrics reference as a Markdown table: the runtime's metrics (every agent has
/// them), then each agent's own, named by agent.
pub fn reference_table(agents: &[(&str, &[MetricDef])]) -> String {
    let mut table = String::from("| metric | type | labels | meaning |\n|---|---|---|---|\n");
    let rows = defs::ALL.iter().map(|d| (None, d)).chain(
        agents
            .iter()
            .flat_map(|(agent, defs)| defs.iter().map(move |d| (Some(*agent), d))),
    );
    for (agent, def) in rows {
        let owner = agent.map(|a| format!(" ({a})")).unwrap_or_default();
        table.push_str(&format!(
            "| `{}` | {} | {} | {}{owner} |\n",
            def.full_name(),
            def.kind.as_str(),
            def.labels.join(", "),
            def.help
        ));
    }
    table
}

/// Something worth counting.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Records read from an input topic partition.
    RecordsConsumed {
        topic: &'a str,
        partition: i32,
        count: u64,
    },
    /// Records written to a topic (outputs, changelogs, DLQ).
    RecordsProduced { topic: &'a str, count: u64 },
    /// One record went through `handle`.
    RecordHandled { topic: &'a str, elapsed: Duration },
    /// A record was ignored because state already reflects its position (a replay).
    ReplaySkipped { topic: &'a str, count: u64 },
    /// A record of an erased member dropped before it made any state.
    ErasedDropped { topic: &'a str },
    /// An erasure request carried out (`erased`, `nothing_held`, `before_reenrolment`), or
    /// an erased member enrolled again (`reenrolled`).
    Erasure { outcome: &'a str },
    /// Records handed to another key through the repartition topic.
    Rekeyed { topic: &'a str, count: u64 },
    /// A DeleteRecords call on the repartition topic ended; `outcome` is purged or
    /// failed (a failed purge is tried again at the next interval; nothing is lost).
    RepartitionPurged { outcome: &'a str },
    /// A record was sent to the DLQ.
    DeadLettered { kind: RejectionKind },
    /// The agent's code panicked `during` handle (the record was dead-lettered), refresh
    /// (the key kept its state) or publish; the agent kept running.
    Panicked { during: &'a str },
    /// A batch was produced, written through and committed.
    BatchCommitted { records: u64, elapsed: Duration },
    /// One step of a batch's writes (`outputs`, `changelog`, `commit`, `transaction`)
    /// finished.
    WriteStep { step: &'a str, elapsed: Duration },
    /// Consumer lag of an assigned partition after a batch.
    ConsumerLag {
        topic: &'a str,
        partition: i32,
        lag: i64,
    },
    /// Size of one partition's state store.
    StateSize {
        store: &'a str,
        partition: i32,
        keys: i64,
        bytes: i64,
    },
    /// Changelog records read while restoring a partition, and how many remain.
    RestoreProgress {
        store: &'a str,
        partition: i32,
        restored: u64,
        remaining: i64,
    },
    /// A transient failure that will be retried.
    Retried { operation: &'a str },
    /// A Kafka transaction ended (`processing_guarantee = exactly_once`); `outcome` is
    /// committed or aborted (an aborted batch is written again in a new transaction).
    TransactionEnded { outcome: &'a str },
    /// A reference table record was loaded.
    TableLoaded { topic: &'a str, count: u64 },
    /// Every key was refreshed after the population view changed.
    Refreshed { elapsed: Duration },
    /// A key's timer fired on `clock`; `outcome` is fired or rejected.
    TimerFired { clock: &'a str, outcome: &'a str },
}

/// The agent's metric registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    consumed: IntCounterVec,
    produced: IntCounterVec,
    processing: HistogramVec,
    replay_skipped: IntCounterVec,
    erased_dropped: IntCounterVec,
    erasures: IntCounterVec,
    rekeyed: IntCounterVec,
    repartition_purges: IntCounterVec,
    dead_lettered: IntCounterVec,
    panics: IntCounterVec,
    batches: IntCounter,
    batch_seconds: Histogram,
    write_seconds: HistogramVec,
    lag: IntGaugeVec,
    state_keys: IntGaugeVec,
    state_bytes: IntGaugeVec,
    restored: IntCounterVec,
    restore_remaining: IntGaugeVec,
    retries: IntCounterVec,
    transactions: IntCounterVec,
    table_records: IntCounterVec,
    refreshes: IntCounter,
    refresh_seconds: Histogram,
    timers: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

const PREFIX: &str = "loyalty_swarm";

impl Metrics {
    /// A registry whose series all carry the `agent` label.
    pub fn new(agent: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(
            Some(PREFIX.to_owned()),
            Some(
                [("agent".to_owned(), agent.to_owned())]
                    .into_iter()
                    .collect(),
            ),
        )?;
        let micro = prometheus::exponential_buckets(1e-6, 4.0, 12)?;
        let milli = prometheus::exponential_buckets(1e-3, 2.5, 12)?;
        use defs::*;
        let r = &registry;
        let metrics = Metrics {
            consumed: register::counter(r, &CONSUMED)?,
            produced: register::counter(r, &PRODUCED)?,
            processing: register::histogram(r, &PROCESSING, micro)?,
            replay_skipped: register::counter(r, &REPLAY_SKIPPED)?,
            erased_dropped: register::counter(r, &ERASED_DROPPED)?,
            erasures: register::counter(r, &ERASURES)?,
            rekeyed: register::counter(r, &REKEYED)?,
            repartition_purges: register::counter(r, &REPARTITION_PURGES)?,
            dead_lettered: register::counter(r, &DEAD_LETTERED)?,
            panics: register::counter(r, &PANICS)?,
            batches: register::plain_counter(r, &BATCHES)?,
            batch_seconds: register::plain_histogram(r, &BATCH_SECONDS, milli.clone())?,
            write_seconds: register::histogram(r, &WRITE_SECONDS, milli.clone())?,
            lag: register::int_gauge(r, &LAG)?,
            state_keys: register::int_gauge(r, &STATE_KEYS)?,
            state_bytes: register::int_gauge(r, &STATE_BYTES)?,
            restored: register::counter(r, &RESTORED)?,
            restore_remaining: register::int_gauge(r, &RESTORE_REMAINING)?,
            retries: register::counter(r, &RETRIES)?,
            transactions: register::counter(r, &TRANSACTIONS)?,
            table_records: register::counter(r, &TABLE_RECORDS)?,
            refreshes: register::plain_counter(r, &REFRESHES)?,
            refresh_seconds: register::plain_histogram(r, &REFRESH_SECONDS, milli)?,
            timers: register::counter(r, &TIMERS)?,
            registry,
        };
        for kind in RejectionKind::ALL {
            metrics.dead_lettered.with_label_values(&[kind.as_str()]);
        }
        Ok(metrics)
    }

    pub fn emit(&self, event: Event<'_>) {
        match event {
            Event::RecordsConsumed {
                topic,
                partition,
                count,
            } => self
                .consumed
                .with_label_values(&[topic, &partition.to_string()])
                .inc_by(count),
            Event::RecordsProduced { topic, count } => {
                self.produced.with_label_values(&[topic]).inc_by(count)
            }
            Event::RecordHandled { topic, elapsed } => self
                .processing
                .with_label_values(&[topic])
                .observe(elapsed.as_secs_f64()),
            Event::ReplaySkipped { topic, count } => self
                .replay_skipped
                .with_label_values(&[topic])
                .inc_by(count),
            Event::ErasedDropped { topic } => self.erased_dropped.with_label_values(&[topic]).inc(),
            Event::Erasure { outcome } => self.erasures.with_label_values(&[outcome]).inc(),
            Event::Rekeyed { topic, count } => {
                self.rekeyed.with_label_values(&[topic]).inc_by(count)
            }
            Event::RepartitionPurged { outcome } => {
                self.repartition_purges.with_label_values(&[outcome]).inc()
            }
            Event::DeadLettered { kind } => {
                self.dead_lettered.with_label_values(&[kind.as_str()]).inc()
            }
            Event::Panicked { during } => self.panics.with_label_values(&[during]).inc(),
            Event::BatchCommitted {
                records: _,
                elapsed,
            } => {
                self.batches.inc();
                self.batch_seconds.observe(elapsed.as_secs_f64());
            }
            Event::WriteStep { step, elapsed } => self
                .write_seconds
                .with_label_values(&[step])
                .observe(elapsed.as_secs_f64()),
            Event::ConsumerLag {
                topic,
                partition,
                lag,
            } => self
                .lag
                .with_label_values(&[topic, &partition.to_string()])
                .set(lag),
            Event::StateSize {
                store,
                partition,
                keys,
                bytes,
            } => {
                let p = partition.to_string();
                self.state_keys.with_label_values(&[store, &p]).set(keys);
                self.state_bytes.with_label_values(&[store, &p]).set(bytes);
            }
            Event::RestoreProgress {
                store,
                partition,
                restored,
                remaining,
            } => {
                let p = partition.to_string();
                self.restored
                    .with_label_values(&[store, &p])
                    .inc_by(restored);
                self.restore_remaining
                    .with_label_values(&[store, &p])
                    .set(remaining);
            }
            Event::Retried { operation } => self.retries.with_label_values(&[operation]).inc(),
            Event::TransactionEnded { outcome } => {
                self.transactions.with_label_values(&[outcome]).inc()
            }
            Event::TableLoaded { topic, count } => {
                self.table_records.with_label_values(&[topic]).inc_by(count)
            }
            Event::Refreshed { elapsed } => {
                self.refreshes.inc();
                self.refresh_seconds.observe(elapsed.as_secs_f64());
            }
            Event::TimerFired { clock, outcome } => {
                self.timers.with_label_values(&[clock, outcome]).inc()
            }
        }
    }

    /// Register a counter defined by `def` (an agent's own, say) in this registry.
    pub fn counter(&self, def: &MetricDef) -> Result<IntCounterVec, prometheus::Error> {
        register::counter(&self.registry, def)
    }

    /// Register an integer gauge.
    pub fn int_gauge(&self, def: &MetricDef) -> Result<IntGaugeVec, prometheus::Error> {
        register::int_gauge(&self.registry, def)
    }

    /// Register a floating-point gauge.
    pub fn gauge(&self, def: &MetricDef) -> Result<GaugeVec, prometheus::Error> {
        register::gauge(&self.registry, def)
    }

    /// Register a histogram with `buckets` (upper bounds, in the metric's unit).
    pub fn histogram(
        &self,
        def: &MetricDef,
        buckets: Vec<f64>,
    ) -> Result<HistogramVec, prometheus::Error> {
        register::histogram(&self.registry, def, buckets)
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a metric family that fails to encode is
        // left out rather than taking the endpoint down.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Series made from definitions and registered, one function per kind.
mod register {
    use prometheus::{
        GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec,
        Opts, Registry,
    };

    use super::MetricDef;

    pub fn counter(r: &Registry, def: &MetricDef) -> Result<IntCounterVec, prometheus::Error> {
        let c = IntCounterVec::new(Opts::new(def.name, def.help), def.labels)?;
        r.register(Box::new(c.clone()))?;
        Ok(c)
    }

    pub fn plain_counter(r: &Registry, def: &MetricDef) -> Result<IntCounter, prometheus::Error> {
        let c = IntCounter::new(def.name, def.help)?;
        r.register(Box::new(c.clone()))?;
        Ok(c)
    }

    pub fn int_gauge(r: &Registry, def: &MetricDef) -> Result<IntGaugeVec, prometheus::Error> {
        let g = IntGaugeVec::new(Opts::new(def.name, def.help), def.labels)?;
        r.register(Box::new(g.clone()))?;
        Ok(g)
    }

    pub fn gauge(r: &Registry, def: &MetricDef) -> Result<GaugeVec, prometheus::Error> {
        let g = GaugeVec::new(Opts::new(def.name, def.help), def.labels)?;
        r.register(Box::new(g.clone()))?;
        Ok(g)
    }

    pub fn histogram(
        r: &Registry,
        def: &MetricDef,
        buckets: Vec<f64>,
    ) -> Result<HistogramVec, prometheus::Error> {
        let h = HistogramVec::new(
            HistogramOpts::new(def.name, def.help).buckets(buckets),
            def.labels,
        )?;
        r.register(Box::new(h.clone()))?;
        Ok(h)
    }

    pub fn plain_histogram(
        r: &Registry,
        def: &MetricDef,
        buckets: Vec<f64>,
    ) -> Result<Histogram, prometheus::Error> {
        let h = Histogram::with_opts(HistogramOpts::new(def.name, def.help).buckets(buckets))?;
        r.register(Box::new(h.clone()))?;
        Ok(h)
    }
}
