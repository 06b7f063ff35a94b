//! Topics as types: a [`Topic<T>`] names a topic, its cleanup policy and the type of its
//! values, so emitting takes exactly that type and an agent's [`OutputSpec`] (schema,
//! compaction) comes from the topic's contract instead of being restated beside it. A
//! [`Table<T>`] is a topic read whole by every instance, decoded into `T`; looking a key
//! up through the same handle gives back a `T`.

use std::marker::PhantomData;
use std::sync::Arc;

use apache_avro::{AvroSchema, Schema};
use serde::de::DeserializeOwned;

use crate::error::Rejection;
use crate::input::Input;

/// How a topic is cleaned up; compacted topics keep the newest value per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    Delete,
    Compact,
}

/// A topic whose values are `T`.
#[derive(Debug)]
pub struct Topic<T> {
    pub name: &'static str,
    pub cleanup: Cleanup,
    /// Has the member-keyed topics' partition count: keyed by member id (and so
    /// co-partitioned with every other member-keyed topic), or written to the partition
    /// of the member's task under another key ([`Topic::task_partitioned`]).
    pub co_partitioned: bool,
    /// Keyed by member id: an erasure tombstones the member's key on it if compacted.
    pub keyed_by_member: bool,
    value: PhantomData<fn() -> T>,
}

// Derived impls would ask `T: Clone`; a topic handle is copyable whatever its values.
impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Topic<T> {}

impl<T> Topic<T> {
    /// A topic that keeps every record (retention by time).
    pub const fn stream(name: &'static str) -> Self {
        Topic {
            name,
            cleanup: Cleanup::Delete,
            co_partitioned: false,
            keyed_by_member: false,
            value: PhantomData,
        }
    }

    /// A topic that keeps the newest value per key.
    pub const fn compacted(name: &'static str) -> Self {
        Topic {
            cleanup: Cleanup::Compact,
            ..Topic::stream(name)
        }
    }

    /// The same topic, keyed by member id.
    pub const fn member_keyed(self) -> Self {
        Topic {
            co_partitioned: true,
            keyed_by_member: true,
            ..self
        }
    }

    /// The same topic, partitioned like the member-keyed ones but keyed otherwise: each
    /// task writes its own partition with [`crate::Context::emit_here`] (compliance-gate's
    /// audit chain, keyed by pseudonym).
    pub const fn task_partitioned(self) -> Self {
        Topic {
            co_partitioned: true,
            ..self
        }
    }

    pub fn is_compacted(&self) -> bool {
        self.cleanup == Cleanup::Compact
    }

    /// The registry subject under TopicNameStrategy.
    pub fn subject(&self) -> String {
        format!("{}-value", self.name)
    }
}

impl<T: AvroSchema> Topic<T> {
    /// This topic as an output of an agent: its values' schema and its compaction.
    pub fn output(&self) -> OutputSpec {
        OutputSpec {
            topic: self.name,
            schema: T::get_schema,
            compacted: self.is_compacted(),
            keyed_by_member: self.keyed_by_member,
        }
    }

    /// The Avro schema of the values.
    pub fn schema(&self) -> Schema {
        T::get_schema()
    }
}

/// A topic an agent writes, with the schema its values are written in; made only by
/// [`Topic::output`], so it always agrees with the topic's contract.
#[derive(Debug, Clone, Copy)]
pub struct OutputSpec {
    topic: &'static str,
    schema: fn() -> Schema,
    compacted: bool,
    keyed_by_member: bool,
}

impl OutputSpec {
    pub fn topic(&self) -> &'static str {
        self.topic
    }

    pub fn schema(&self) -> Schema {
        (self.schema)()
    }

    /// A compacted topic keeps only the newest value per key, so within one batch only a
    /// key's last record is produced (Kafka Streams' record cache): the same final topic
    /// with fewer writes. Stream outputs keep every record.
    pub fn compacted(&self) -> bool {
        self.compacted
    }

    /// Keyed by member id, so an erasure tombstones the member's key here if compacted.
    pub fn keyed_by_member(&self) -> bool {
        self.keyed_by_member
    }
}

/// A reference table value made from the record that carries it: every instance reads
/// the table whole, so a record that is not a valid `Self` for its key is dead-lettered
/// and the table keeps the key's previous value.
pub trait TableRecord: Sized + Send + Sync + 'static {
    /// What the topic carries.
    type Value: DeserializeOwned;
    /// What one record is, for the DLQ reason ("program", "model fit").
    const WHAT: &'static str;
    /// The table value for `key`, or every problem with the record.
    fn from_record(value: Self::Value, key: &str) -> Result<Self, Vec<String>>;
}

/// A topic read whole by every instance (Kafka Streams' global table), its records
/// decoded into `T` once, when they are loaded (`docs/architecture.md#reference-tables`).
pub struct Table<T> {
    pub topic: &'static str,
    decode: fn(&Input<'_>) -> Result<T, Rejection>,
    required: bool,
}

impl<T> std::fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("topic", &self.topic)
            .field("required", &self.required)
            .finish()
    }
}

impl<T: Send + Sync + 'static> Table<T> {
    /// A table whose records `decode` turns into values.
    pub const fn new(topic: &'static str, decode: fn(&Input<'_>) -> Result<T, Rejection>) -> Self {
        Table {
            topic,
            decode,
            required: false,
        }
    }

    /// Processing waits until the table holds at least one valid record (e.g. a fitted
    /// model the agent cannot work without); the agent is not ready before.
    pub const fn required(self) -> Self {
        Table {
            required: true,
            ..self
        }
    }

    /// The table as the runtime loads it, its values' type erased.
    pub fn spec(&self) -> TableSpec {
        let decode = self.decode;
        TableSpec {
            topic: self.topic,
            decode: Arc::new(move |input| decode(input).map(|v| Arc::new(v) as TableValue)),
            required: self.required,
        }
    }
}

impl<T: TableRecord> Table<T> {
    /// A table of records that check themselves against their key ([`TableRecord`]).
    pub const fn checked(topic: &'static str) -> Self {
        Table::new(topic, decode_record::<T>)
    }
}

fn decode_record<T: TableRecord>(input: &Input<'_>) -> Result<T, Rejection> {
    let value: T::Value = input.decode()?;
    T::from_record(value, input.key).map_err(|problems| {
        Rejection::contract(format!(
            "{} {}: {}",
            T::WHAT,
            input.key,
            problems.join("; ")
        ))
    })
}

/// A reference table entry, decoded once when it is loaded.
pub(crate) type TableValue = Arc<dyn std::any::Any + Send + Sync>;

/// A table's decode with its values' type erased.
type ErasedDecode = Arc<dyn Fn(&Input<'_>) -> Result<TableValue, Rejection> + Send + Sync>;

/// A [`Table`] as the runtime loads it.
#[derive(Clone)]
pub struct TableSpec {
    pub topic: &'static str,
    pub(crate) decode: ErasedDecode,
    pub required: bool,
}

impl std::fmt::Debug for TableSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSpec")
            .field("topic", &self.topic)
            .field("required", &self.required)
            .finish()
    }
}
