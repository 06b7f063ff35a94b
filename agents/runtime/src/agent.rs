//! The contract between an agent and the runtime (after Arroyo's operator contract):
//! an agent names its topics and its per-key state and implements one step, `handle`.
//! Everything else — Kafka, the registry, changelogs, offsets, metrics — is the
//! runtime's, so an agent crate reads like its domain.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apache_avro::Schema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Decoder, Encoder, leak};
use crate::config::AgentSettings;
use crate::error::{Rejection, RejectionKind};
use crate::metrics::{Event, Metrics};

/// A reference table entry, decoded once when it is loaded.
pub type TableValue = Arc<dyn Any + Send + Sync>;

/// A topic read whole by every instance (`docs/architecture.md#reference-tables`).
#[derive(Clone, Copy)]
pub struct TableSpec {
    pub topic: &'static str,
    /// Decode and validate one record; a rejection sends it to the DLQ and keeps the
    /// previous value of the key.
    pub decode: fn(&Input<'_>) -> Result<TableValue, Rejection>,
    /// Processing waits until the table holds at least one valid record (e.g. a fitted
    /// model the agent cannot work without); the agent is not ready before.
    pub required: bool,
}

impl std::fmt::Debug for TableSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSpec")
            .field("topic", &self.topic)
            .finish()
    }
}

/// Decode a reference-table record that names its own key and can list its problems
/// (a program, a model fit): a record whose id differs from its key, or that has any
/// problem, is rejected with all of them — the DLQ says why, the table keeps the old value.
pub fn decode_checked<T: DeserializeOwned + Send + Sync + 'static>(
    input: &Input<'_>,
    what: &str,
    id: fn(&T) -> &str,
    problems: fn(&T) -> Vec<String>,
) -> Result<TableValue, Rejection> {
    let value: T = input.decode()?;
    let mut found = problems(&value);
    if id(&value) != input.key {
        found.push(format!(
            "id {} differs from the record key {}",
            id(&value),
            input.key
        ));
    }
    if !found.is_empty() {
        return Err(Rejection::contract(format!(
            "{what} {}: {}",
            id(&value),
            found.join("; ")
        )));
    }
    Ok(Arc::new(value))
}

/// A topic the agent writes, with the schema its values are written in.
#[derive(Debug, Clone, Copy)]
pub struct OutputSpec {
    pub topic: &'static str,
    pub schema: fn() -> Schema,
    /// A compacted topic keeps only the newest value per key, so within one batch only a
    /// key's last record is produced (Kafka Streams' record cache): the same final
    /// topic with fewer writes. Stream outputs keep every record.
    pub compacted: bool,
}

/// One agent kind.
pub trait Agent: Send + Sync + 'static {
    /// Per-key (per-member) state, written through to the changelog.
    /// `Clone` because `handle` works on a copy: a rejected record must leave no trace.
    /// `PartialEq` so a refresh that changes nothing writes nothing to the changelog.
    type State: Serialize + DeserializeOwned + Clone + PartialEq + Send + 'static;
    /// The agent's own settings, under `[agent]` in its config file.
    type Settings: AgentSettings;

    /// Binary, consumer-group and DLQ name.
    const NAME: &'static str;
    /// Name of the state store; the changelog is `<NAME>.<STORE>-changelog`.
    const STORE: &'static str = "state";

    /// A summary of one partition's state that every instance sees: quantile sketches,
    /// calibration counts — whatever a population-wide quantity is merged from. Kept per
    /// partition and changelogged with its keys, published after every batch to the
    /// compacted topic `<NAME>.<STORE>-summaries` (key = partition) and read whole by every
    /// instance, so population views do not depend on how partitions are spread. `()` for
    /// agents without one.
    type Summary: Serialize + DeserializeOwned + Clone + Default + PartialEq + Send + Sync + 'static;
    /// Whether this agent keeps and shares a [`Agent::Summary`].
    const SHARES_SUMMARY: bool = false;

    /// Whether `handle` may hand records to another key with [`Context::rekey`]. The
    /// runtime then keeps the repartition topic `<NAME>.rekey-repartition` (co-partitioned
    /// with the inputs) and reads it as one more input.
    const REKEYS: bool = false;

    /// Member-keyed, co-partitioned input topics.
    fn inputs(&self) -> Vec<&'static str>;

    /// Topics read whole by every instance.
    fn tables(&self) -> Vec<TableSpec> {
        Vec::new()
    }

    /// Topics `handle` may emit to.
    fn outputs(&self) -> Vec<OutputSpec>;

    /// Apply one input record to the state of its key and emit what follows from it.
    /// Outputs must be a deterministic function of state and input (event time, never the
    /// wall clock) so that a replay emits the same bytes.
    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<Self::State>,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandleError>;

    /// Called for every key of every owned partition when the population view or a
    /// reference table changed (at most every `refresh_interval_ms`), so outputs derived
    /// from them follow: a key's
    /// output is then a function of its own state and the final population, however the
    /// partitions were spread. Like `handle`, it must be deterministic.
    fn refresh(
        &self,
        _key: &str,
        _state: &mut Option<Self::State>,
        _ctx: &mut Context<'_>,
    ) -> Result<(), HandleError> {
        Ok(())
    }

    /// Population-level outputs (statistics over every partition's summary), called after
    /// each refresh on the one instance that owns partition 0, so they are written once.
    fn publish(&self, _ctx: &mut Context<'_>) -> Result<(), HandleError> {
        Ok(())
    }
}

/// Every partition's [`Agent::Summary`] as this instance last saw it: its own partitions
/// as of the start of the current batch, the others as last published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Population<S> {
    pub partitions: BTreeMap<i32, S>,
    /// Bumped whenever any partition's summary changes; lets an agent cache what it
    /// derives from the population (boundaries, calibrators).
    pub generation: u64,
}

/// Why `handle` stopped.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Bad data: the record goes to the DLQ, its state changes are discarded.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A bug or an impossible situation: the agent stops rather than guess.
    #[error("fatal: {0}")]
    Fatal(String),
}

/// One consumed record, not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp in milliseconds, if the producer set one.
    pub timestamp: Option<i64>,
    pub key: &'a str,
    /// Decoder for the writer schema, and the Avro body; `None` for a tombstone.
    pub value: Option<(&'a Decoder, &'a [u8])>,
}

impl Input<'_> {
    /// Decode the value into the topic's contract type.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Rejection> {
        match self.value {
            Some((decoder, body)) => decoder.decode(body),
            None => Err(Rejection::new(
                RejectionKind::Undecodable,
                "tombstone where a value was expected",
            )),
        }
    }

    /// Decode a value that names its own key (a member id, say): a value whose `field`
    /// differs from the record key breaks the contract (co-partitioning depends on it).
    pub fn decode_keyed<T: DeserializeOwned>(
        &self,
        field: &str,
        id: fn(&T) -> &str,
    ) -> Result<T, Rejection> {
        let value: T = self.decode()?;
        if id(&value) != self.key {
            return Err(Rejection::contract(format!(
                "{field} {:?} differs from the record key {:?}",
                id(&value),
                self.key
            )));
        }
        Ok(value)
    }

    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// A record `handle` emitted, encoded and waiting for the end of the batch.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub topic: &'static str,
    pub key: String,
    /// `None` is a tombstone.
    pub payload: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
}

/// What `handle` can see and do besides its own state.
pub struct Context<'a> {
    pub(crate) tables: &'a TableView,
    pub(crate) encoders: &'a HashMap<&'static str, Encoder>,
    pub(crate) emitted: &'a mut Vec<Emitted>,
    pub(crate) summary: Option<&'a mut (dyn Any + Send)>,
    pub(crate) population: Option<&'a (dyn Any + Send + Sync)>,
    pub(crate) metrics: Option<&'a Metrics>,
    pub(crate) rekey: Option<String>,
    /// `max_event_time_ahead_ms`, for [`Context::check_event_time`].
    pub(crate) max_event_time_ahead_ms: u64,
}

impl<'a> Context<'a> {
    /// The current value of a reference-table key.
    pub fn table<T: Any + Send + Sync>(&self, topic: &str, key: &str) -> Option<Arc<T>> {
        self.tables
            .get(topic, key)
            .and_then(|v| v.downcast::<T>().ok())
    }

    /// This partition's summary, to update. The runtime cannot undo summary changes of a
    /// record that is then rejected, so update it only after every check has passed.
    pub fn summary<T: Any>(&mut self) -> Option<&mut T> {
        self.summary.as_deref_mut()?.downcast_mut::<T>()
    }

    /// Every partition's summary.
    pub fn population<T: Any>(&self) -> Option<&Population<T>> {
        self.population?.downcast_ref::<Population<T>>()
    }

    /// Check the time an event says it happened (milliseconds since the epoch) against
    /// the record that carries it: before 1970 (where Kafka timestamps start) or more
    /// than `max_event_time_ahead_ms` after the record's log timestamp, it breaks the
    /// contract. Decided from the record alone, so a replay decides the same; with the
    /// broker bounding log timestamps (`log.message.timestamp.after.max.ms`, or
    /// LogAppendTime), no single record can carry a member, or the population's stream
    /// time, into the future. A record without a log timestamp (no Kafka client writes
    /// one) is checked against the epoch only.
    pub fn check_event_time(
        &self,
        input: &Input<'_>,
        what: &str,
        at_ms: i64,
    ) -> Result<(), Rejection> {
        if at_ms < 0 {
            return Err(Rejection::contract(format!(
                "{what} {at_ms} ms is before 1970-01-01"
            )));
        }
        let ahead = i64::try_from(self.max_event_time_ahead_ms).unwrap_or(i64::MAX);
        if let Some(logged) = input.timestamp.filter(|t| *t >= 0)
            && at_ms.saturating_sub(logged) > ahead
        {
            return Err(Rejection::contract(format!(
                "{what} {at_ms} ms is {} ms after its record's log timestamp {logged} ms \
                 (at most {ahead} ms, max_event_time_ahead_ms)",
                at_ms.saturating_sub(logged)
            )));
        }
        Ok(())
    }

    /// Record a domain metric (its name and meaning are defined in the runtime's metrics).
    pub fn record(&self, event: Event<'_>) {
        if let Some(metrics) = self.metrics {
            metrics.emit(event);
        }
    }

    /// Emit `value` to `topic` under `key`, stamped with `timestamp` (event time).
    pub fn emit<T: Serialize>(
        &mut self,
        topic: &'static str,
        key: &str,
        value: &T,
        timestamp: i64,
    ) -> Result<(), HandleError> {
        let encoder = self.encoders.get(topic).ok_or_else(|| {
            HandleError::Fatal(format!("{topic} is not among the agent's declared outputs"))
        })?;
        let payload = encoder.encode(value).map_err(|e| {
            HandleError::Fatal(format!("value for {topic} does not fit its schema: {e}"))
        })?;
        self.emitted.push(Emitted {
            topic,
            key: key.to_owned(),
            payload: Some(payload),
            timestamp: Some(timestamp),
        });
        Ok(())
    }

    /// Hand the record being handled to `key`: it belongs to that key's state, not to the
    /// record key's (an event a source system keyed by its own id, say). Call it before
    /// touching state, and return. The runtime forwards the record unchanged through the
    /// repartition topic to the task that owns `key`, where `handle` sees it again with
    /// `key` as its key; the state changes and outputs of this call are discarded (Kafka
    /// Streams' `selectKey` followed by a repartition), summary changes are not, so re-key
    /// before touching the summary. Needs [`Agent::REKEYS`].
    pub fn rekey(&mut self, key: &str) -> Result<(), HandleError> {
        if key.is_empty() {
            return Err(Rejection::new(RejectionKind::BadKey, "re-keyed to an empty key").into());
        }
        self.rekey = Some(key.to_owned());
        Ok(())
    }

    /// The key the record was handed to with [`Context::rekey`], if any.
    pub fn rekeyed(&self) -> Option<&str> {
        self.rekey.as_deref()
    }

    /// Emit a tombstone for `key` on a compacted output.
    pub fn tombstone(&mut self, topic: &'static str, key: &str) {
        self.emitted.push(Emitted {
            topic,
            key: key.to_owned(),
            payload: None,
            timestamp: None,
        });
    }
}

/// Read access to the loaded reference tables.
#[derive(Default, Debug)]
pub struct TableView {
    pub(crate) tables: std::sync::RwLock<HashMap<String, HashMap<String, TableValue>>>,
    /// Bumped on every change, so a refresh can follow reference data as well as the
    /// population (a newly published model re-scores every member).
    generation: std::sync::atomic::AtomicU64,
}

impl TableView {
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn get(&self, topic: &str, key: &str) -> Option<TableValue> {
        self.tables.read().ok()?.get(topic)?.get(key).cloned()
    }

    pub(crate) fn put(&self, topic: &str, key: &str, value: Option<TableValue>) {
        if let Ok(mut tables) = self.tables.write() {
            let table = tables.entry(topic.to_owned()).or_default();
            match value {
                Some(v) => table.insert(key.to_owned(), v),
                None => table.remove(key),
            };
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

/// A `Context` for exercising `handle` outside the runtime (unit tests, benchmarks).
pub struct Harness {
    pub tables: TableView,
    pub encoders: HashMap<&'static str, Encoder>,
    pub emitted: Vec<Emitted>,
    /// The partition summary `handle` sees, when the agent keeps one.
    pub summary: Option<Box<dyn Any + Send>>,
    /// The population `handle` sees (a `Population<Summary>`).
    pub population: Option<Box<dyn Any + Send + Sync>>,
}

impl Harness {
    /// Encoders for `outputs` with made-up schema ids (nothing is registered).
    pub fn new(outputs: &[OutputSpec]) -> Result<Self, apache_avro::Error> {
        let mut encoders = HashMap::new();
        for (i, o) in outputs.iter().enumerate() {
            encoders.insert(o.topic, Encoder::new(i as u32 + 1, leak((o.schema)()))?);
        }
        Ok(Harness {
            tables: TableView::default(),
            encoders,
            emitted: Vec::new(),
            summary: None,
            population: None,
        })
    }

    pub fn put_table<T: Any + Send + Sync>(&self, topic: &str, key: &str, value: T) {
        self.tables.put(topic, key, Some(Arc::new(value)));
    }

    pub fn context(&mut self) -> Context<'_> {
        Context {
            tables: &self.tables,
            encoders: &self.encoders,
            emitted: &mut self.emitted,
            summary: self.summary.as_deref_mut(),
            population: self.population.as_deref(),
            metrics: None,
            rekey: None,
            max_event_time_ahead_ms: crate::config::RuntimeSettings::default()
                .max_event_time_ahead_ms,
        }
    }
}
