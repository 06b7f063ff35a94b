//! What `handle`, `on_timer`, `refresh` and `publish` can see and do besides the key's
//! own state: reference tables, the partition summary and the population, emitting,
//! tombstones, re-keying and timers — each typed by the agent, so a wrong type is a
//! compile error, not a `None`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::agent::{Agent, HandleError, Population, Rekeys};
use crate::codec::Encoder;
use crate::error::{Rejection, RejectionKind};
use crate::input::Input;
use crate::metrics::Metrics;
use crate::store::{Clock, Timer};
use crate::topic::{Table, TableValue, Topic};

/// A record `handle` emitted, encoded and waiting for the end of the batch.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub topic: &'static str,
    pub key: String,
    /// `None` is a tombstone.
    pub payload: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    /// Set by [`Context::emit_here`]: the task's own partition, whatever the key.
    pub partition: Option<i32>,
}

/// What agent `A`'s code can see and do besides its own state.
pub struct Context<'a, A: Agent> {
    pub(crate) tables: &'a TableView,
    pub(crate) encoders: &'a HashMap<&'static str, Encoder>,
    pub(crate) emitted: &'a mut Vec<Emitted>,
    /// This partition's summary; `None` in `publish`, which speaks for the population.
    pub(crate) summary: Option<&'a mut A::Summary>,
    pub(crate) population: &'a Population<A::Summary>,
    pub(crate) metrics: Option<&'a Metrics>,
    pub(crate) rekey: Option<String>,
    /// `max_event_time_ahead_ms`, for [`Context::check_event_time`].
    pub(crate) max_event_time_ahead_ms: u64,
    /// The key's timers as this call leaves them; `None` in `publish`, which has no key.
    pub(crate) timers: Option<Vec<Timer>>,
    /// The partition's stream time when the call was made; -1 when unknown.
    pub(crate) stream_time: i64,
    /// The partition of the key being handled; `None` in `publish`.
    pub(crate) partition: Option<i32>,
    /// The erased ids, when the agent reads erasure requests.
    pub(crate) erased: Option<&'a crate::erasure::Registry>,
}

impl<'a, A: Agent> Context<'a, A> {
    /// The current value of `key` in a reference table the agent declared.
    pub fn table<T: Send + Sync + 'static>(&self, table: &Table<T>, key: &str) -> Option<Arc<T>> {
        // The runtime loads a topic's values with the decode of the one handle the agent
        // declared for it, so the value is a `T`.
        self.tables
            .get(table.topic, key)
            .and_then(|v| v.downcast::<T>().ok())
    }

    /// Every value of a reference table the agent declared, by key in key order: for an
    /// agent that chooses among all of them (save-offer's catalog). Cache what is derived
    /// from it by [`Context::tables_generation`]; copying the handles costs a pointer each.
    pub fn table_values<T: Send + Sync + 'static>(
        &self,
        table: &Table<T>,
    ) -> Vec<(String, Arc<T>)> {
        let mut values: Vec<(String, Arc<T>)> = self
            .tables
            .all(table.topic)
            .into_iter()
            .filter_map(|(key, v)| v.downcast::<T>().ok().map(|v| (key, v)))
            .collect();
        values.sort_by(|a, b| a.0.cmp(&b.0));
        values
    }

    /// Changes whenever any reference table does.
    pub fn tables_generation(&self) -> u64 {
        self.tables.generation()
    }

    /// This partition's summary, to update; `None` only in `publish`. The runtime cannot
    /// undo summary changes of a record that is then rejected, so update it only after
    /// every check has passed.
    pub fn summary(&mut self) -> Option<&mut A::Summary> {
        self.summary.as_deref_mut()
    }

    /// Every partition's summary.
    pub fn population(&self) -> &Population<A::Summary> {
        self.population
    }

    /// The agent's metric registry, where its own metrics were registered
    /// ([`Agent::register_metrics`]); `None` outside the runtime.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics
    }

    /// Emit `value` to `topic` under `key`, stamped with `timestamp` (event time).
    pub fn emit<T: Serialize>(
        &mut self,
        topic: &Topic<T>,
        key: &str,
        value: &T,
        timestamp: i64,
    ) -> Result<(), HandleError> {
        self.emit_to(topic, key, value, timestamp, None)
    }

    /// Emit `value` to this task's own partition of `topic` (the partition of the key
    /// being handled, which must exist in `topic`), under a `key` that is not the
    /// member's: a log kept in the task's order whose keys must not name the member,
    /// such as compliance-gate's audit chain keyed by pseudonym. Not in `publish`.
    pub fn emit_here<T: Serialize>(
        &mut self,
        topic: &Topic<T>,
        key: &str,
        value: &T,
        timestamp: i64,
    ) -> Result<(), HandleError> {
        let partition = self.partition.ok_or_else(|| {
            HandleError::Fatal("emit_here needs a key's partition; publish has none".into())
        })?;
        self.emit_to(topic, key, value, timestamp, Some(partition))
    }

    /// The partition of the key being handled; `None` in `publish`.
    pub fn partition(&self) -> Option<i32> {
        self.partition
    }

    /// Whether `id` (a member id, or an id linked to one) was erased. The runtime drops
    /// records of erased members by their key; this is for records keyed otherwise that
    /// carry a member (a budget ledger's claims carry proposals).
    pub fn is_erased(&self, id: &str) -> bool {
        self.erased.is_some_and(|registry| registry.is_erased(id))
    }

    fn emit_to<T: Serialize>(
        &mut self,
        topic: &Topic<T>,
        key: &str,
        value: &T,
        timestamp: i64,
        partition: Option<i32>,
    ) -> Result<(), HandleError> {
        let encoder = self.encoders.get(topic.name).ok_or_else(|| {
            HandleError::Fatal(format!(
                "{} is not among the agent's declared outputs",
                topic.name
            ))
        })?;
        let payload = encoder.encode(value).map_err(|e| {
            HandleError::Fatal(format!(
                "value for {} does not fit its schema: {e}",
                topic.name
            ))
        })?;
        self.emitted.push(Emitted {
            topic: topic.name,
            key: key.to_owned(),
            payload: Some(payload),
            timestamp: Some(timestamp),
            partition,
        });
        Ok(())
    }

    /// Emit a tombstone for `key` on a compacted output.
    pub fn tombstone<T>(&mut self, topic: &Topic<T>, key: &str) {
        self.emitted.push(Emitted {
            topic: topic.name,
            key: key.to_owned(),
            payload: None,
            timestamp: None,
            partition: None,
        });
    }

    /// Schedule the timer `name` of this key for `at` (milliseconds since the epoch) on
    /// `clock`, replacing one of the same name. When the clock reaches `at` the runtime
    /// calls [`crate::Agent::on_timer`] once for it. Timers are the key's state: written
    /// to the changelog with it, restored wherever the key's partition goes, and gone
    /// with it when the state is deleted. `at` must come from state and input, never the
    /// wall clock, so a replay schedules the same.
    pub fn schedule(&mut self, name: &str, clock: Clock, at: i64) -> Result<(), HandleError> {
        let timers = self
            .timers
            .as_mut()
            .ok_or_else(|| HandleError::Fatal("timers belong to a key; publish has none".into()))?;
        timers.retain(|t| t.name != name);
        timers.push(Timer {
            name: name.to_owned(),
            clock,
            at,
        });
        Ok(())
    }

    /// Cancel this key's timer `name`, if it is scheduled.
    pub fn cancel(&mut self, name: &str) {
        if let Some(timers) = self.timers.as_mut() {
            timers.retain(|t| t.name != name);
        }
    }

    /// The partition's stream time when this call was made: the newest timestamp of the
    /// records taken before it, or -1 before any. For a record and for a stream-time
    /// timer it is the same on every replay; a wall-clock timer fires between batches,
    /// so there it says only how far input had got.
    pub fn stream_time(&self) -> i64 {
        self.stream_time
    }

    /// This key's timer `name`, if it is scheduled.
    pub fn timer(&self, name: &str) -> Option<&Timer> {
        self.timers.as_ref()?.iter().find(|t| t.name == name)
    }

    /// The key the record was handed to with [`Context::rekey`], if any.
    pub fn rekeyed(&self) -> Option<&str> {
        self.rekey.as_deref()
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
}

impl<A: Agent<Rekeying = Rekeys>> Context<'_, A> {
    /// Hand the record being handled to `key`: it belongs to that key's state, not to the
    /// record key's (an event a source system keyed by its own id, say). Call it before
    /// touching state, and return. The runtime forwards the record unchanged through the
    /// repartition topic to the task that owns `key`, where `handle` sees it again with
    /// `key` as its key; the state changes and outputs of this call are discarded (Kafka
    /// Streams' `selectKey` followed by a repartition), summary changes are not, so re-key
    /// before touching the summary.
    pub fn rekey(&mut self, key: &str) -> Result<(), HandleError> {
        if key.is_empty() {
            return Err(Rejection::new(RejectionKind::BadKey, "re-keyed to an empty key").into());
        }
        self.rekey = Some(key.to_owned());
        Ok(())
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

    pub(crate) fn get(&self, topic: &str, key: &str) -> Option<TableValue> {
        self.tables.read().ok()?.get(topic)?.get(key).cloned()
    }

    pub(crate) fn all(&self, topic: &str) -> Vec<(String, TableValue)> {
        self.tables
            .read()
            .ok()
            .and_then(|tables| {
                tables
                    .get(topic)
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            })
            .unwrap_or_default()
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
