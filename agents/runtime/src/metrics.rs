//! Every metric the swarm exports, defined once and emitted through one typed event
//! (after Vector's internal events): call sites say what happened, this module decides
//! which series move. Names follow Prometheus conventions under `loyalty_swarm_`.

use std::time::Duration;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::error::RejectionKind;

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
    /// Calibration quality of one forecast type over its resolved forecasts (calibrated
    /// probabilities, held-out half).
    ForecastQuality {
        transition: &'a str,
        resolved: u64,
        brier: f64,
        log_loss: f64,
        ece: f64,
    },
    /// An intervention opportunity was raised.
    OpportunityRaised { kind: &'a str },
    /// A population model was fitted for a segment; `outcome` is published, unchanged,
    /// not_converged, too_small or failed.
    ModelFitted {
        segment: &'a str,
        outcome: &'a str,
        elapsed: Duration,
    },
    /// A member's value sources disagreed beyond tolerance (`between` names the pair).
    ValueDiscrepancy { between: &'a str },
}

/// The agent's metric registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    consumed: IntCounterVec,
    produced: IntCounterVec,
    processing: HistogramVec,
    replay_skipped: IntCounterVec,
    rekeyed: IntCounterVec,
    repartition_purges: IntCounterVec,
    dead_lettered: IntCounterVec,
    panics: IntCounterVec,
    batches: IntCounter,
    batch_seconds: Histogram,
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
    forecast_resolved: IntGaugeVec,
    forecast_brier: GaugeVec,
    forecast_log_loss: GaugeVec,
    forecast_ece: GaugeVec,
    opportunities: IntCounterVec,
    model_fits: IntCounterVec,
    model_fit_seconds: HistogramVec,
    discrepancies: IntCounterVec,
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
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let gauge =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(g.clone()))?;
                Ok(g)
            };
        let float_gauge =
            |name: &str, help: &str, labels: &[&str]| -> Result<GaugeVec, prometheus::Error> {
                let g = GaugeVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(g.clone()))?;
                Ok(g)
            };
        let histogram = |name: &str,
                         help: &str,
                         labels: &[&str],
                         buckets: Vec<f64>|
         -> Result<HistogramVec, prometheus::Error> {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let micro = prometheus::exponential_buckets(1e-6, 4.0, 12)?;
        let milli = prometheus::exponential_buckets(1e-3, 2.5, 12)?;
        let metrics = Metrics {
            consumed: counter(
                "records_consumed_total",
                "Records read from input topics.",
                &["topic", "partition"],
            )?,
            produced: counter(
                "records_produced_total",
                "Records written and acknowledged.",
                &["topic"],
            )?,
            processing: histogram(
                "processing_seconds",
                "Time spent in handle per record.",
                &["topic"],
                micro,
            )?,
            replay_skipped: counter(
                "replay_skipped_total",
                "Records skipped because state already reflects their position.",
                &["topic"],
            )?,
            rekeyed: counter(
                "records_rekeyed_total",
                "Records handed to another key through the agent's repartition topic.",
                &["topic"],
            )?,
            repartition_purges: counter(
                "repartition_purges_total",
                "DeleteRecords calls on the agent's repartition topic, by outcome.",
                &["outcome"],
            )?,
            dead_lettered: counter(
                "dlq_records_total",
                "Records sent to the dead-letter queue.",
                &["reason"],
            )?,
            panics: counter(
                "panics_total",
                "Panics in the agent's code, caught; by where they happened.",
                &["during"],
            )?,
            batches: {
                let c = IntCounter::new(
                    "batches_committed_total",
                    "Batches produced, written through and committed.",
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            batch_seconds: {
                let h = Histogram::with_opts(
                    HistogramOpts::new("batch_seconds", "Wall time of one batch, poll to commit.")
                        .buckets(milli),
                )?;
                registry.register(Box::new(h.clone()))?;
                h
            },
            lag: gauge(
                "consumer_lag",
                "High watermark minus committed position.",
                &["topic", "partition"],
            )?,
            state_keys: gauge(
                "state_keys",
                "Keys held in a partition's state store.",
                &["store", "partition"],
            )?,
            state_bytes: gauge(
                "state_bytes",
                "Encoded size of a partition's state store.",
                &["store", "partition"],
            )?,
            restored: counter(
                "restore_records_total",
                "Changelog records read while restoring state.",
                &["store", "partition"],
            )?,
            restore_remaining: gauge(
                "restore_remaining_records",
                "Changelog records still to read before the partition is restored.",
                &["store", "partition"],
            )?,
            retries: counter(
                "retries_total",
                "Transient failures retried with backoff.",
                &["operation"],
            )?,
            transactions: counter(
                "transactions_total",
                "Kafka transactions ended, by outcome (exactly_once only).",
                &["outcome"],
            )?,
            table_records: counter(
                "table_records_total",
                "Reference table records loaded.",
                &["topic"],
            )?,
            refreshes: {
                let c = IntCounter::new(
                    "refreshes_total",
                    "Refreshes of every key after the population view changed.",
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            refresh_seconds: {
                let h = Histogram::with_opts(
                    HistogramOpts::new("refresh_seconds", "Wall time of one refresh of every key.")
                        .buckets(prometheus::exponential_buckets(1e-3, 2.5, 12)?),
                )?;
                registry.register(Box::new(h.clone()))?;
                h
            },
            forecast_resolved: gauge(
                "forecast_resolved",
                "Resolved forecasts the calibration is judged on.",
                &["transition"],
            )?,
            forecast_brier: float_gauge(
                "forecast_brier_score",
                "Brier score of calibrated forecasts on held-out resolved forecasts.",
                &["transition"],
            )?,
            forecast_log_loss: float_gauge(
                "forecast_log_loss",
                "Log loss of calibrated forecasts on held-out resolved forecasts.",
                &["transition"],
            )?,
            forecast_ece: float_gauge(
                "forecast_calibration_error",
                "Expected calibration error (ten bins) on held-out resolved forecasts.",
                &["transition"],
            )?,
            opportunities: counter(
                "opportunities_total",
                "Intervention opportunities raised.",
                &["kind"],
            )?,
            model_fits: counter(
                "model_fits_total",
                "Population model fits by segment and outcome.",
                &["segment", "outcome"],
            )?,
            model_fit_seconds: histogram(
                "model_fit_seconds",
                "Wall time of one segment's population fit.",
                &["segment"],
                prometheus::exponential_buckets(1e-3, 2.5, 12)?,
            )?,
            discrepancies: counter(
                "ltv_discrepancies_total",
                "Members whose value sources disagreed beyond tolerance, by source pair.",
                &["between"],
            )?,
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
            Event::ForecastQuality {
                transition,
                resolved,
                brier,
                log_loss,
                ece,
            } => {
                let labels = [transition];
                self.forecast_resolved
                    .with_label_values(&labels)
                    .set(resolved as i64);
                self.forecast_brier.with_label_values(&labels).set(brier);
                self.forecast_log_loss
                    .with_label_values(&labels)
                    .set(log_loss);
                self.forecast_ece.with_label_values(&labels).set(ece);
            }
            Event::OpportunityRaised { kind } => {
                self.opportunities.with_label_values(&[kind]).inc()
            }
            Event::ModelFitted {
                segment,
                outcome,
                elapsed,
            } => {
                self.model_fits.with_label_values(&[segment, outcome]).inc();
                self.model_fit_seconds
                    .with_label_values(&[segment])
                    .observe(elapsed.as_secs_f64());
            }
            Event::ValueDiscrepancy { between } => {
                self.discrepancies.with_label_values(&[between]).inc()
            }
        }
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
