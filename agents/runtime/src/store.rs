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
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_the_changelog() {
        let mut store: PartitionStore<u64> = PartitionStore::new(2);
        let e = store.entry("m1");
        e.state = Some(42);
        e.positions[1] = 7;
        store.mark_dirty("m1");
        let changes = store.drain_changes().unwrap();
        assert_eq!(changes.len(), 1);
        assert!(store.bytes() > 0);

        let mut restored: PartitionStore<u64> = PartitionStore::new(2);
        restored.restore("m1", changes[0].1.as_deref()).unwrap();
        let entry = restored.get("m1").unwrap();
        assert_eq!(entry.state, Some(42));
        assert!(entry.reflects(1, 7) && !entry.reflects(1, 8) && !entry.reflects(0, 0));
        assert_eq!(restored.bytes(), store.bytes());
    }

    #[test]
    fn the_summary_travels_with_the_changelog() {
        let mut store: PartitionStore<u64, Vec<u32>> = PartitionStore::new(1);
        store.entry("m1").state = Some(1);
        store.mark_dirty("m1");
        store.summary_mut().push(7);
        let changes = store.drain_changes().unwrap();
        assert_eq!(changes.len(), 2);
        assert!(!store.summary_changed());
        let mut restored: PartitionStore<u64, Vec<u32>> = PartitionStore::new(1);
        for (key, value) in &changes {
            restored.restore(key, value.as_deref()).unwrap();
        }
        assert_eq!(restored.summary(), &vec![7]);
        assert_eq!((restored.keys(), restored.bytes()), (1, store.bytes()));
    }

    #[test]
    fn second_copies_of_forwarded_records_are_recognised() {
        let mut entry: Entry<u64> = Entry::new(1);
        let origin = |offset, floor| Origin {
            input: 0,
            partition: 3,
            offset,
            floor,
        };
        // A batch starting at 50 forwards 50 and 52; 51 failed and is sent again after.
        entry.record_origin(&origin(50, 50));
        entry.record_origin(&origin(52, 50));
        assert!(entry.reflects_origin(&origin(50, 50)));
        assert!(!entry.reflects_origin(&origin(51, 50)));
        entry.record_origin(&origin(51, 50));
        assert!(entry.reflects_origin(&origin(52, 50)));
        // The next batch starts at 60: everything below is a second copy, and the set shrinks.
        entry.record_origin(&origin(61, 60));
        assert!(entry.reflects_origin(&origin(55, 50)));
        assert!(!entry.reflects_origin(&origin(62, 60)));
        assert_eq!(entry.forwarded[0].applied, vec![61]);
        // Another origin partition is tracked on its own.
        assert!(!entry.reflects_origin(&Origin {
            partition: 4,
            ..origin(50, 50)
        }));
    }

    #[test]
    fn entries_written_before_forwarding_existed_are_still_read() {
        #[derive(Serialize)]
        struct Old {
            positions: Vec<i64>,
            state: Option<u64>,
        }
        let old = postcard::to_stdvec(&Old {
            positions: vec![7, 3],
            state: Some(42),
        })
        .unwrap();
        // One more input since (the repartition topic): its position starts empty.
        let mut store: PartitionStore<u64> = PartitionStore::new(3);
        store.restore("m1", Some(&old)).unwrap();
        let entry = store.get("m1").unwrap();
        assert_eq!(
            (entry.positions.clone(), entry.state, entry.forwarded.len()),
            (vec![7, 3, -1], Some(42), 0)
        );
    }

    #[test]
    fn timers_fire_in_order_once_and_travel_with_the_changelog() {
        let timer = |name: &str, clock, at| Timer {
            name: name.into(),
            clock,
            at,
        };
        let mut store: PartitionStore<u64> = PartitionStore::new(1);
        for key in ["a", "b"] {
            store.entry(key).state = Some(1);
        }
        store.set_timers(
            "a",
            vec![
                timer("late", Clock::StreamTime, 300),
                timer("wall", Clock::WallClock, 100),
            ],
        );
        store.set_timers("b", vec![timer("early", Clock::StreamTime, 200)]);
        assert_eq!(store.pending_timers(), 3);
        let changes = store.drain_changes().unwrap();

        // Restored elsewhere, the timers are due as before.
        let mut restored: PartitionStore<u64> = PartitionStore::new(1);
        for (key, value) in &changes {
            restored.restore(key, value.as_deref()).unwrap();
        }
        assert!(restored.take_due(Clock::StreamTime, 199).is_empty());
        let due = restored.take_due(Clock::StreamTime, 300);
        assert_eq!(
            due.iter()
                .map(|(k, t)| (k.as_str(), t.name.as_str()))
                .collect::<Vec<_>>(),
            [("b", "early"), ("a", "late")]
        );
        assert!(
            restored.take_due(Clock::StreamTime, i64::MAX).is_empty(),
            "once"
        );
        assert_eq!(restored.take_due(Clock::WallClock, 100).len(), 1);
        assert_eq!(restored.pending_timers(), 0);
        // Firing changed the keys: their entries go to the changelog without the timers.
        let fired = restored.drain_changes().unwrap();
        assert_eq!(fired.len(), 2);

        // Deleting a key's state cancels its timers.
        store.set_timers("b", vec![timer("again", Clock::StreamTime, 1)]);
        store.entry("b").state = None;
        store.mark_dirty("b");
        store.drain_changes().unwrap();
        assert!(
            store
                .take_due(Clock::StreamTime, i64::MAX)
                .iter()
                .all(|(k, _)| k != "b")
        );
        assert_eq!(
            Timer {
                name: "x".into(),
                clock: Clock::WallClock,
                at: 5
            }
            .id("m"),
            timer("x", Clock::WallClock, 5).id("m"),
            "ids are deterministic"
        );
    }

    #[test]
    fn entries_written_before_timers_existed_are_still_read() {
        #[derive(Serialize)]
        struct Old {
            positions: Vec<i64>,
            forwarded: Vec<Forwarded>,
            state: Option<u64>,
        }
        let old = postcard::to_extend(
            &Old {
                positions: vec![4],
                forwarded: Vec::new(),
                state: Some(9),
            },
            vec![ENTRY_FORMAT_WITHOUT_TIMERS],
        )
        .unwrap();
        let mut store: PartitionStore<u64> = PartitionStore::new(1);
        store.restore("m1", Some(&old)).unwrap();
        let entry = store.get("m1").unwrap();
        assert_eq!((entry.state, entry.timers.len()), (Some(9), 0));
    }

    #[test]
    fn deleted_state_becomes_a_tombstone() {
        let mut store: PartitionStore<u64> = PartitionStore::new(1);
        store.entry("m1").state = Some(1);
        store.mark_dirty("m1");
        store.drain_changes().unwrap();
        store.entry("m1").state = None;
        store.mark_dirty("m1");
        let changes = store.drain_changes().unwrap();
        assert_eq!(changes, vec![("m1".to_owned(), None)]);
        assert_eq!((store.keys(), store.bytes()), (0, 0));
        assert!(store.get("m1").is_none());
    }
}
