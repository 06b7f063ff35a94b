//! Running an agent's code outside the runtime, for unit tests and benchmarks: a
//! [`Harness`] holds what a [`Context`] lends (tables, encoders, the summary and the
//! population) and collects what is emitted; a [`Record`] is an input built from a
//! typed value, framed and decoded as the runtime would.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::AvroSchema;
use serde::Serialize;

use crate::agent::{Agent, Population};
use crate::codec::{Decoder, Encoder, leak};
use crate::context::{Context, Emitted, TableView};
use crate::input::Input;
use crate::topic::{Table, Topic};

/// A `Context` for exercising `handle` outside the runtime.
pub struct Harness<A: Agent> {
    pub tables: TableView,
    pub encoders: HashMap<&'static str, Encoder>,
    pub emitted: Vec<Emitted>,
    /// The partition summary `handle` sees.
    pub summary: A::Summary,
    /// The population `handle` sees.
    pub population: Population<A::Summary>,
    /// The partition's stream time `handle` and `on_timer` see; -1 (none yet) at first.
    pub stream_time: i64,
    /// The partition `handle` runs in (0 unless set).
    pub partition: i32,
    /// The ids `Context::is_erased` names ([`Harness::erase`]).
    pub erased: crate::erasure::Registry,
}

impl<A: Agent> Harness<A> {
    /// Encoders for the agent's outputs with made-up schema ids (nothing is registered).
    pub fn new(agent: &A) -> Result<Self, apache_avro::Error> {
        let mut encoders = HashMap::new();
        for (i, o) in agent
            .outputs()
            .iter()
            .chain(&agent.internal_topics())
            .enumerate()
        {
            encoders.insert(o.topic(), Encoder::new(i as u32 + 1, leak(o.schema()))?);
        }
        Ok(Harness {
            tables: TableView::default(),
            encoders,
            emitted: Vec::new(),
            summary: A::Summary::default(),
            population: Population::default(),
            stream_time: -1,
            partition: 0,
            erased: crate::erasure::Registry::new([0x5a; 32]),
        })
    }

    /// Register `member` as erased at `at`, as an erasure request carried out would.
    pub fn erase(&self, member: &str, at: i64) {
        self.erased.register(
            member,
            &crate::erasure::ErasureRequest {
                request_id: format!("harness-{member}"),
                member_id: member.to_owned(),
                basis: "test".to_owned(),
                requested_at: crate::time::Timestamp(at),
                requested_by: None,
            },
        );
    }

    /// Set `key` of a reference table, as if its record had been loaded.
    pub fn put_table<T: Send + Sync + 'static>(&self, table: &Table<T>, key: &str, value: T) {
        self.tables.put(table.topic, key, Some(Arc::new(value)));
    }

    pub fn context(&mut self) -> Context<'_, A> {
        Context {
            tables: &self.tables,
            encoders: &self.encoders,
            emitted: &mut self.emitted,
            summary: Some(&mut self.summary),
            population: &self.population,
            metrics: None,
            rekey: None,
            max_event_time_ahead_ms: crate::config::DEFAULT_MAX_EVENT_TIME_AHEAD_MS,
            timers: Some(Vec::new()),
            stream_time: self.stream_time,
            partition: Some(self.partition),
            erased: Some(&self.erased),
        }
    }
}

/// An input record built from a value: Avro-encoded with its type's schema, as a
/// producer would write it, and decoded by `handle` as the runtime would.
pub struct Record {
    pub topic: &'static str,
    pub key: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's log timestamp.
    pub timestamp: Option<i64>,
    /// `None` is a tombstone.
    body: Option<(Arc<Decoder>, Vec<u8>)>,
}

impl Record {
    /// `value` under `key` on `topic`, at partition 0, offset 0, without a log timestamp.
    pub fn new<T: AvroSchema + Serialize + 'static>(
        topic: &Topic<T>,
        key: &str,
        value: &T,
    ) -> Result<Self, apache_avro::Error> {
        let decoder = decoder_for::<T>()?;
        // An encoder on the same schema writes exactly what a producer would; the body is
        // what follows the five-byte wire header.
        let body = Encoder::new(0, decoder.schema())?.encode_body(value)?;
        Ok(Record {
            topic: topic.name,
            key: key.to_owned(),
            partition: 0,
            offset: 0,
            timestamp: None,
            body: Some((decoder, body)),
        })
    }

    /// A tombstone for `key` on `topic`.
    pub fn tombstone<T>(topic: &Topic<T>, key: &str) -> Self {
        Record {
            topic: topic.name,
            key: key.to_owned(),
            partition: 0,
            offset: 0,
            timestamp: None,
            body: None,
        }
    }

    /// The same record at `offset`.
    pub fn at(mut self, offset: i64) -> Self {
        self.offset = offset;
        self
    }

    /// The same record on `partition`.
    pub fn on(mut self, partition: i32) -> Self {
        self.partition = partition;
        self
    }

    /// The same record with log timestamp `ms`.
    pub fn logged_at(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }

    /// The record as `handle` sees it.
    pub fn input(&self) -> Input<'_> {
        Input {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: &self.key,
            value: self
                .body
                .as_ref()
                .map(|(decoder, body)| (decoder.as_ref(), body.as_slice())),
        }
    }
}

/// One decoder per value type for the life of the process: schemas are leaked to build
/// decoders, so each is built once, not once per record.
fn decoder_for<T: AvroSchema + 'static>() -> Result<Arc<Decoder>, apache_avro::Error> {
    use std::any::TypeId;
    use std::sync::{Mutex, OnceLock};
    static DECODERS: OnceLock<Mutex<HashMap<TypeId, Arc<Decoder>>>> = OnceLock::new();
    let mut decoders = DECODERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(decoder) = decoders.get(&TypeId::of::<T>()) {
        return Ok(decoder.clone());
    }
    let decoder = Arc::new(Decoder::new(leak(T::get_schema()))?);
    decoders.insert(TypeId::of::<T>(), decoder.clone());
    Ok(decoder)
}
