//! Per-partition keyed state, written through to a compacted changelog (the Kafka
//! Streams model) and restored from it when a partition is assigned.
//!
//! Each entry records, per input topic, the offset of the newest record it reflects. A
//! record at or below that position has already changed the state, so a replay after a
//! crash (between changelog write and offset commit) does not count it twice.
//!
//! A record re-keyed through the agent's repartition topic can arrive twice with two
//! different repartition offsets (its origin was replayed), so an entry also remembers
//! which origin offsets it applied; see [`Forwarded`].

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// One key's state, the input positions it reflects and its timers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry<S> {
    /// Offset of the newest applied record, per input topic index; -1 = none yet.
    pub positions: Vec<i64>,
    /// Re-keyed records applied, per origin partition (empty for most keys).
    pub forwarded: Vec<Forwarded>,
    /// Timers scheduled and not yet fired: state like the rest, so they are changelogged
    /// and restored with the key (empty for most keys).
    pub timers: Vec<Timer>,
    pub state: Option<S>,
}

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Clock {
    /// The partition's stream time: the newest record timestamp read from it (Kafka
    /// Streams' `STREAM_TIME`). Moves only with input, so a replay fires the timer after
    /// the same record.
    StreamTime,
    /// The machine's clock, checked between batches (Kafka Streams' `WALL_CLOCK_TIME`).
    WallClock,
}

impl Clock {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Clock::StreamTime => "stream_time",
            Clock::WallClock => "wall_clock",
        }
    }
}

/// A timer of one key (per-key punctuation): it fires once, when its clock reaches
/// `at` (milliseconds since the epoch), and calls the agent's `on_timer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    pub name: String,
    pub clock: Clock,
    pub at: i64,
}

/// A timer's place in a partition's firing order: clock, time, key, name.
type TimerIndexKey = (Clock, i64, String, String);

impl Timer {
    fn index_key(&self, key: &str) -> TimerIndexKey {
        (self.clock, self.at, key.to_owned(), self.name.clone())
    }
    /// An id for what this firing emits: the same key, name and time give the same id,
    /// so a replay that fires it again emits the same bytes and consumers can drop the
    /// second copy.
    pub fn id(&self, key: &str) -> String {
        let clock = match self.clock {
            Clock::StreamTime => "stream",
            Clock::WallClock => "wall",
        };
        let text = format!("{key}\u{1f}{}\u{1f}{clock}\u{1f}{}", self.name, self.at);
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        format!("{hash:016x}")
    }
}

/// The records of one origin partition (input index and partition) that reached this key
/// through the repartition topic.
///
/// An origin forwards a record again only when it replays from its committed offset, and
/// every record it forwarded below that offset was acknowledged before the commit, so
/// its first copy is already ahead in the repartition topic. Each forwarded record
/// carries that offset as its floor: below the highest floor seen (or below its own),
/// any record is a second copy; at or above it, only the exact offsets applied are. So the set stays as
/// small as one uncommitted batch, and neither retries nor a replay that re-sends
/// records out of order can make it skip a first copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forwarded {
    pub input: u32,
    pub partition: i32,
    pub floor: i64,
    /// Origin offsets applied at or above `floor`.
    pub applied: Vec<i64>,
}

/// Where a re-keyed record came from: its input, partition and offset there, and the
/// origin's floor when it was forwarded (see [`Forwarded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub input: u32,
    pub partition: i32,
    pub offset: i64,
    pub floor: i64,
}

impl<S> Entry<S> {
    fn new(inputs: usize) -> Self {
        Entry {
            positions: vec![-1; inputs],
            forwarded: Vec::new(),
            timers: Vec::new(),
            state: None,
        }
    }

    /// Whether the record at `offset` of input `input` is already reflected.
    pub fn reflects(&self, input: usize, offset: i64) -> bool {
        self.positions.get(input).is_some_and(|&p| offset <= p)
    }

    /// Whether the re-keyed record from `origin` is already reflected.
    pub fn reflects_origin(&self, origin: &Origin) -> bool {
        self.forwarded
            .iter()
            .find(|f| f.input == origin.input && f.partition == origin.partition)
            .is_some_and(|f| origin.offset < f.floor || f.applied.contains(&origin.offset))
    }

    /// Remember that the re-keyed record from `origin` changed this key.
    pub fn record_origin(&mut self, origin: &Origin) {
        let index = match self
            .forwarded
            .iter()
            .position(|f| f.input == origin.input && f.partition == origin.partition)
        {
            Some(index) => index,
            None => {
                self.forwarded.push(Forwarded {
                    input: origin.input,
                    partition: origin.partition,
                    floor: origin.floor,
                    applied: Vec::new(),
                });
                self.forwarded.len() - 1
            }
        };
        let f = &mut self.forwarded[index];
        f.floor = f.floor.max(origin.floor);
        let floor = f.floor;
        f.applied.retain(|&o| o >= floor);
        f.applied.push(origin.offset);
    }
}

/// One changelog record: the key and its encoded entry, or `None` for a tombstone.
pub type Change = (String, Option<Vec<u8>>);

/// Changelog key of the partition summary: record keys are never empty (the runtime
/// dead-letters records without a key), so it cannot collide with one.
pub const SUMMARY_KEY: &str = "";

/// The state of one partition index, and its summary (see `Agent::Summary`).
#[derive(Debug)]
pub struct PartitionStore<S, M = ()> {
    /// The partition index this store holds (0 unless [`PartitionStore::in_partition`]).
    partition: i32,
    inputs: usize,
    entries: HashMap<String, Entry<S>>,
    /// Encoded size per key, for the state-bytes metric and the memory budget.
    sizes: HashMap<String, usize>,
    bytes: usize,
    dirty: HashSet<String>,
    summary: M,
    summary_dirty: bool,
    /// Every key's timers in firing order, so due ones are found without walking keys.
    timers: BTreeSet<TimerIndexKey>,
    /// The newest timestamp of the records the agent took from this partition; -1 before
    /// any. Committed with the task's offsets and resumed from there after a rebalance.
    stream_time: i64,
}

impl<S: Serialize + DeserializeOwned, M: Serialize + DeserializeOwned + Default>
    PartitionStore<S, M>
{
    pub fn new(inputs: usize) -> Self {
        PartitionStore {
            partition: 0,
            inputs,
            entries: HashMap::new(),
            sizes: HashMap::new(),
            bytes: 0,
            dirty: HashSet::new(),
            summary: M::default(),
            summary_dirty: false,
            timers: BTreeSet::new(),
            stream_time: -1,
        }
    }

    /// The store of partition `partition`.
    pub fn in_partition(mut self, partition: i32) -> Self {
        self.partition = partition;
        self
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The partition's stream time, moved on by a record's timestamp.
    pub fn advance_stream_time(&mut self, timestamp: Option<i64>) -> i64 {
        if let Some(t) = timestamp {
            self.stream_time = self.stream_time.max(t);
        }
        self.stream_time
    }

    pub fn stream_time(&self) -> i64 {
        self.stream_time
    }

    /// Replace `key`'s timers (an existing key: timers live with state).
    pub fn set_timers(&mut self, key: &str, timers: Vec<Timer>) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        for t in &entry.timers {
            self.timers.remove(&t.index_key(key));
        }
        for t in &timers {
            self.timers.insert(t.index_key(key));
        }
        entry.timers = timers;
        self.mark_dirty(key);
    }

    /// The timers of `clock` due at `now`, in firing order, taken out of their keys.
    pub fn take_due(&mut self, clock: Clock, now: i64) -> Vec<(String, Timer)> {
        let due: Vec<TimerIndexKey> = self
            .timers
            .range((clock, i64::MIN, String::new(), String::new())..)
            .take_while(|(c, at, _, _)| *c == clock && *at <= now)
            .cloned()
            .collect();
        let mut fired = Vec::with_capacity(due.len());
        for item in due {
            self.timers.remove(&item);
            let (_, _, key, name) = item;
            if let Some(entry) = self.entries.get_mut(&key)
                && let Some(i) = entry.timers.iter().position(|t| t.name == name)
            {
                fired.push((key.clone(), entry.timers.remove(i)));
                self.mark_dirty(&key);
            }
        }
        fired
    }

    /// Timers not yet fired, across the partition.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    pub fn summary(&self) -> &M {
        &self.summary
    }

    /// The summary, to change; it is written to the changelog with the next changes.
    pub fn summary_mut(&mut self) -> &mut M {
        self.summary_dirty = true;
        &mut self.summary
    }

    /// Whether the summary changed since the last [`PartitionStore::drain_changes`].
    pub fn summary_changed(&self) -> bool {
        self.summary_dirty
    }

    /// Both the entries and the summary, for a refresh that walks every key.
    pub fn parts_mut(&mut self) -> (&mut HashMap<String, Entry<S>>, &mut M) {
        (&mut self.entries, &mut self.summary)
    }

    pub fn entry(&mut self, key: &str) -> &mut Entry<S> {
        let inputs = self.inputs;
        self.entries
            .entry(key.to_owned())
            .or_insert_with(|| Entry::new(inputs))
    }

    pub fn get(&self, key: &str) -> Option<&Entry<S>> {
        self.entries.get(key)
    }

    pub fn mark_dirty(&mut self, key: &str) {
        if !self.dirty.contains(key) {
            self.dirty.insert(key.to_owned());
        }
    }

    /// The changelog records for every key changed since the last call: the encoded entry,
    /// or `None` (a tombstone) for a key whose state was deleted.
    pub fn drain_changes(&mut self) -> Result<Vec<Change>, RuntimeError> {
        let mut out = Vec::with_capacity(self.dirty.len() + 1);
        if std::mem::take(&mut self.summary_dirty) {
            let encoded = postcard::to_stdvec(&self.summary)
                .map_err(|e| RuntimeError::StateCodec(e.to_string()))?;
            self.account(SUMMARY_KEY, encoded.len());
            out.push((SUMMARY_KEY.to_owned(), Some(encoded)));
        }
        for key in std::mem::take(&mut self.dirty) {
            let encoded = match self.entries.get(&key) {
                Some(entry) if entry.state.is_some() => Some(encode_entry(entry)?),
                _ => None,
            };
            self.account(&key, encoded.as_ref().map_or(0, Vec::len));
            if encoded.is_none() {
                // Deleted state keeps no entry (erasure must leave nothing behind), and
                // its timers go with it.
                if let Some(entry) = self.entries.remove(&key) {
                    for t in entry.timers {
                        self.timers.remove(&t.index_key(&key));
                    }
                }
            }
            out.push((key, encoded));
        }
        Ok(out)
    }

    /// Apply one changelog record during restore.
    pub fn restore(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), RuntimeError> {
        if key == SUMMARY_KEY {
            if let Some(bytes) = value {
                self.summary = postcard::from_bytes(bytes)
                    .map_err(|e| RuntimeError::StateCodec(e.to_string()))?;
                self.account(key, bytes.len());
            }
            return Ok(());
        }
        match value {
            Some(bytes) => {
                let mut entry = decode_entry::<S>(bytes)?;
                // An entry written before an input was added has no position for it yet.
                if entry.positions.len() < self.inputs {
                    entry.positions.resize(self.inputs, -1);
                }
                self.account(key, bytes.len());
                for t in &entry.timers {
                    self.timers.insert(t.index_key(key));
                }
                if let Some(old) = self.entries.insert(key.to_owned(), entry) {
                    self.unindex(key, &old.timers);
                }
            }
            None => {
                self.account(key, 0);
                if let Some(old) = self.entries.remove(key) {
                    self.unindex(key, &old.timers);
                }
            }
        }
        Ok(())
    }

    /// Take `timers` of `key` out of the index, unless the key holds them still.
    fn unindex(&mut self, key: &str, timers: &[Timer]) {
        let current = self.entries.get(key).map(|e| e.timers.as_slice());
        for t in timers {
            if current.is_some_and(|c| c.contains(t)) {
                continue;
            }
            self.timers.remove(&t.index_key(key));
        }
    }

    fn account(&mut self, key: &str, size: usize) {
        let old = if size == 0 {
            self.sizes.remove(key)
        } else {
            self.sizes.insert(key.to_owned(), size)
        };
        self.bytes = self.bytes + size - old.unwrap_or(0);
    }

    pub fn keys(&self) -> usize {
        self.sizes.len() - usize::from(self.sizes.contains_key(SUMMARY_KEY))
    }

    /// Encoded bytes of all entries (the changelog's compacted size).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry<S>)> {
        self.entries.iter()
    }
}

/// First byte of an entry in the current changelog encoding. postcard is positional, so
/// each layout has its marker: entries written before `forwarded` existed start with
/// their positions' length, a varint below 0x80 (an agent has a handful of inputs);
/// 0xF2 marks the layout before `timers`, 0xF3 the current one.
const ENTRY_FORMAT: u8 = 0xF3;

/// The marker of entries written before timers existed.
const ENTRY_FORMAT_WITHOUT_TIMERS: u8 = 0xF2;

/// An entry as changelogs held it before timers.
#[derive(Deserialize)]
struct EntryWithoutTimers<S> {
    positions: Vec<i64>,
    forwarded: Vec<Forwarded>,
    state: Option<S>,
}

/// An entry as changelogs held it before re-keying (no `forwarded`).
#[derive(Deserialize)]
struct EntryWithoutForwarded<S> {
    positions: Vec<i64>,
    state: Option<S>,
}

/// The changelog encoding of an entry: the format marker, then postcard (compact, fast,
/// serde-driven).
pub fn encode_entry<S: Serialize>(entry: &Entry<S>) -> Result<Vec<u8>, RuntimeError> {
    postcard::to_extend(entry, vec![ENTRY_FORMAT])
        .map_err(|e| RuntimeError::StateCodec(e.to_string()))
}

/// Decode an entry in either changelog encoding.
fn decode_entry<S: DeserializeOwned>(bytes: &[u8]) -> Result<Entry<S>, RuntimeError> {
    let codec = |e: postcard::Error| RuntimeError::StateCodec(e.to_string());
    match bytes.split_first() {
        Some((&ENTRY_FORMAT, rest)) => postcard::from_bytes(rest).map_err(codec),
        Some((&ENTRY_FORMAT_WITHOUT_TIMERS, rest)) => {
            let old: EntryWithoutTimers<S> = postcard::from_bytes(rest).map_err(codec)?;
            Ok(Entry {
                positions: old.positions,
                forwarded: old.forwarded,
                timers: Vec::new(),
                state: old.state,
            })
        }
        _ => {
            let old: EntryWithoutForwarded<S> = postcard::from_bytes(bytes).map_err(codec)?;
            Ok(Entry {
                positions: old.positions,
                forwarded: Vec::new(),
                timers: Vec::new(),
                state: old.state,
            })
        }
    }
}

#[cfg(test)]
mod tests;
