//! Erasure (GDPR Art. 17, CCPA deletion) done the same way by every agent that holds
//! members (`docs/architecture.md#erasure`).
//!
//! An agent erases when it lists [`REQUESTS`] among its inputs. A request is keyed by
//! member id, so it reaches the task that holds the member. The runtime first asks the
//! agent what else to forget ([`crate::Agent::forget`]): the member's share of the
//! partition summary, and the ids linked to the member. Then it:
//! - deletes the key's state and timers (a changelog tombstone);
//! - tombstones the key on every compacted output keyed by member;
//! - registers the member and the linked ids in the erasure registry, as keyed hashes;
//! - writes a receipt.
//!
//! The registry is a compacted topic, read whole before the agent's first record. It
//! makes erasure survive replays: a record whose key holds no state and is registered
//! is dropped before any state is made of it. This holds for a replay from the earliest
//! offset, for a restore from an empty changelog, and for an event in flight in a
//! repartition topic. Ids are hashed under a deployment key (HMAC-SHA256), so the
//! registry never holds an id in the clear and cannot be reversed by hashing a list of
//! candidate ids.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::agent::Agent;
use crate::signing::{self, KeyError};
use crate::time::Timestamp;
use crate::topic::{OutputSpec, Topic};

/// Erasure requests, keyed by member id.
pub const REQUESTS: &str = "loyalty.erasure-requests.v1";
/// One receipt per agent and request, keyed by request id.
pub const RECEIPTS: &str = "loyalty.erasure-receipts.v1";
/// The erased ids, keyed by their keyed hash (compacted, kept forever).
pub const REGISTRY: &str = "loyalty.erasure-registry.v1";

/// Environment variable holding the registry key (64 hex digits) when
/// `erasure_key_file` is not set.
pub const KEY_ENV: &str = "SWARM_ERASURE_KEY";

/// A request to erase a member; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct ErasureRequest {
    /// Id of the request, quoted on every receipt.
    pub request_id: String,
    /// Member to erase.
    pub member_id: String,
    /// Legal basis: gdpr_art17, ccpa, ...
    pub basis: String,
    /// When the request was received.
    pub requested_at: Timestamp,
    /// Who asked: the member, an authorised agent, a regulator, an operator (v2).
    pub requested_by: Option<String>,
}

/// What one agent removed for one request; key = request id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct ErasureReceipt {
    pub request_id: String,
    /// The agent that carried the request out.
    pub agent: String,
    /// The instance that did: its transactional id, or `<group>.<host>.<port>`.
    pub instance: String,
    /// The task (member partition) that held the member.
    pub partition: i32,
    /// Ids registered as erased: the member's and those linked to it.
    pub erased_ids: i32,
    /// What was removed, per place; empty when the agent held nothing of the member (a
    /// repeated request, or a member it never saw).
    pub removed: Vec<Removal>,
    /// The request's `requested_at`, quoted.
    pub requested_at: Timestamp,
    /// When the agent carried it out (wall clock).
    pub completed_at: Timestamp,
}

/// A count of things removed from one place: `state:<store>`, `timers`,
/// `topic:<name>` (tombstones), `summary:<part>` (a summary the member counted in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct Removal {
    pub place: String,
    pub count: i64,
}

/// One erased id in the registry; key = the id's keyed hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct ErasedId {
    /// The request that erased it.
    pub request_id: String,
    /// The request's `requested_at`.
    pub erased_at: Timestamp,
    /// When the member enrolled again, after the erasure (v2): their records logged
    /// since are theirs anew, those logged before stay dropped.
    pub reenrolled_at: Option<Timestamp>,
}

/// Longest id or text an erasure request may carry, in bytes. The member id becomes the
/// key of tombstones and the request id the key of receipts: a request whose fields
/// could not be written on every replay must be dead-lettered, not carried out.
pub const MAX_FIELD_BYTES: usize = 256;

impl ErasureRequest {
    /// Every problem that keeps the request from being carried out.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut field = |name: &str, value: &str, required: bool| {
            if required && value.is_empty() {
                problems.push(format!("{name} is empty"));
            }
            if value.len() > MAX_FIELD_BYTES {
                problems.push(format!(
                    "{name} is {} bytes long (at most {MAX_FIELD_BYTES})",
                    value.len()
                ));
            }
        };
        field("request_id", &self.request_id, true);
        field("member_id", &self.member_id, true);
        field("basis", &self.basis, false);
        field(
            "requested_by",
            self.requested_by.as_deref().unwrap_or(""),
            false,
        );
        problems
    }
}

pub const REQUESTS_TOPIC: Topic<ErasureRequest> = Topic::stream(REQUESTS).member_keyed();
/// Receipts have the inputs' partition count (keyed by request id, not by member), so
/// compliance-gate can read them as an input and chain each into its audit log.
pub const RECEIPTS_TOPIC: Topic<ErasureReceipt> = Topic::stream(RECEIPTS).task_partitioned();
pub const REGISTRY_TOPIC: Topic<ErasedId> = Topic::compacted(REGISTRY);

/// Whether `agent` erases: it reads erasure requests.
pub fn erases<A: Agent>(agent: &A) -> bool {
    agent.inputs().contains(&REQUESTS)
}

/// The outputs an erasing agent writes besides its own: receipts and the registry.
pub fn outputs<A: Agent>(agent: &A) -> Vec<OutputSpec> {
    if erases(agent) {
        vec![RECEIPTS_TOPIC.output(), REGISTRY_TOPIC.output()]
    } else {
        Vec::new()
    }
}

/// What an agent's `forget` removed besides the key's own state, which the runtime
/// deletes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Forgotten {
    /// Other ids the member's records arrive under (store cards, ESP contact ids).
    /// They are registered too, so records keyed by them are dropped.
    pub linked_ids: Vec<String>,
    /// What was taken out of the summary or other keys, for the receipt.
    pub removed: Vec<Removal>,
}

impl Forgotten {
    /// What was removed, as (place, count) pairs: for logs and tests.
    pub fn counts(&self) -> Vec<(&str, i64)> {
        self.removed
            .iter()
            .map(|r| (r.place.as_str(), r.count))
            .collect()
    }

    /// Count `count` things removed from `place`.
    pub fn removed(&mut self, place: impl Into<String>, count: i64) {
        if count > 0 {
            self.removed.push(Removal {
                place: place.into(),
                count,
            });
        }
    }
}

/// What the registry knows of one erased id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The request that erased it.
    pub request_id: String,
    /// The erasure request's `requested_at`.
    pub erased_at: i64,
    /// When the member enrolled again, if they did after the erasure.
    pub reenrolled_at: Option<i64>,
}

impl Erased {
    /// The registry record saying so.
    pub fn record(&self) -> ErasedId {
        ErasedId {
            request_id: self.request_id.clone(),
            erased_at: Timestamp(self.erased_at),
            reenrolled_at: self.reenrolled_at.map(Timestamp),
        }
    }

    /// What a registry record says.
    pub fn of(record: &ErasedId) -> Self {
        Erased {
            request_id: record.request_id.clone(),
            erased_at: record.erased_at.0,
            reenrolled_at: record.reenrolled_at.map(|t| t.0),
        }
    }

    /// Whether a record logged at `logged_at` is of the erased member: any record
    /// unless the member re-enrolled, then those logged before the re-enrolment (a
    /// replay of their old history). A record with no log time counts as old.
    pub fn drops(&self, logged_at: Option<i64>) -> bool {
        match self.reenrolled_at {
            None => true,
            Some(at) => logged_at.is_none_or(|t| t < at),
        }
    }
}

/// The erased ids, by keyed hash: those read from the registry topic and those this
/// instance erased since. It also keeps how far the registry topic has been read, so a
/// task can wait until every erasure written before it started is known
/// ([`Registry::caught_up`]).
#[derive(Debug)]
pub struct Registry {
    key: [u8; 32],
    erased: RwLock<HashMap<String, Erased>>,
    /// How many erased ids enrolled again: while none did, a key holding state needs
    /// no look-up at all.
    reenrolled: AtomicUsize,
    /// Per registry partition, the next offset the follower will read.
    read: RwLock<HashMap<i32, i64>>,
    /// When the last completed wait for the follower began: records fetched before
    /// then need no other wait.
    synced: RwLock<Option<Instant>>,
}

impl Registry {
    pub fn new(key: [u8; 32]) -> Self {
        Registry {
            key,
            erased: RwLock::new(HashMap::new()),
            reenrolled: AtomicUsize::new(0),
            read: RwLock::new(HashMap::new()),
            synced: RwLock::new(None),
        }
    }

    /// The registry key from `file` if set, else from [`KEY_ENV`].
    pub fn load(file: Option<&Path>) -> Result<Self, KeyError> {
        signing::load_key(file, "erasure_key_file", KEY_ENV).map(Registry::new)
    }

    /// The id's keyed hash: what the registry holds instead of the id.
    pub fn hash(&self, id: &str) -> String {
        signing::to_hex(&signing::hmac_sha256(
            &self.key,
            &[b"erased-id", id.as_bytes()],
        ))
    }

    /// What the registry holds for `id`, if it was ever erased. Costs one hash once
    /// anything was erased, nothing before.
    pub fn get(&self, id: &str) -> Option<Erased> {
        let erased = self.erased.read().ok()?;
        if erased.is_empty() {
            return None;
        }
        erased.get(&self.hash(id)).cloned()
    }

    /// Whether `id` is erased and has not enrolled again.
    pub fn is_erased(&self, id: &str) -> bool {
        self.get(id).is_some_and(|e| e.reenrolled_at.is_none())
    }

    /// Register `id` as erased by `request`; returns its hash and the registry entry.
    /// Erased again, an id that had enrolled again is erased anew.
    pub fn register(&self, id: &str, request: &ErasureRequest) -> (String, Erased) {
        let hash = self.hash(id);
        let entry = Erased {
            request_id: request.request_id.clone(),
            erased_at: request.requested_at.0,
            reenrolled_at: None,
        };
        self.set(&hash, Some(entry.clone()));
        (hash, entry)
    }

    /// Record that `id`, erased, enrolled again at `reenrolled_at`; returns its hash
    /// and the registry entry now in force (`None` if `id` is not erased).
    pub fn reenrol(&self, id: &str, reenrolled_at: i64) -> Option<(String, Erased)> {
        let hash = self.hash(id);
        let mut erased = self.erased.write().ok()?;
        let entry = erased.get_mut(&hash)?;
        if entry.reenrolled_at.replace(reenrolled_at).is_none() {
            self.reenrolled.fetch_add(1, Ordering::Relaxed);
        }
        Some((hash, entry.clone()))
    }

    /// Record an erased id by its hash; `None` takes it out (a registry tombstone).
    pub fn set(&self, hash: &str, entry: Option<Erased>) {
        if let Ok(mut erased) = self.erased.write() {
            let came_back = entry.as_ref().is_some_and(|e| e.reenrolled_at.is_some());
            let had_come_back = match entry {
                Some(entry) => erased.insert(hash.to_owned(), entry),
                None => erased.remove(hash),
            }
            .is_some_and(|e| e.reenrolled_at.is_some());
            match (had_come_back, came_back) {
                (false, true) => self.reenrolled.fetch_add(1, Ordering::Relaxed),
                (true, false) => self.reenrolled.fetch_sub(1, Ordering::Relaxed),
                _ => 0,
            };
        }
    }

    /// Whether any erased id enrolled again.
    pub fn any_reenrolled(&self) -> bool {
        self.reenrolled.load(Ordering::Relaxed) > 0
    }

    /// The follower has read registry `partition` up to (not including) `next`.
    pub fn read_to(&self, partition: i32, next: i64) {
        if let Ok(mut read) = self.read.write() {
            let at = read.entry(partition).or_insert(next);
            *at = (*at).max(next);
        }
    }

    /// Whether the follower has read every registry partition up to `ends` (partition,
    /// end offset): every erasure written before those ends were taken is known.
    pub fn caught_up(&self, ends: &[(i32, i64)]) -> bool {
        let Ok(read) = self.read.read() else {
            return false;
        };
        ends.iter()
            .all(|(p, end)| read.get(p).is_some_and(|at| at >= end))
    }

    /// The registry partitions the follower reads.
    pub fn partitions(&self) -> Vec<i32> {
        self.read
            .read()
            .map_or_else(|_| Vec::new(), |r| r.keys().copied().collect())
    }

    /// Whether a wait for the follower began at or after `since` and completed.
    pub fn synced_since(&self, since: Instant) -> bool {
        self.synced
            .read()
            .is_ok_and(|s| s.is_some_and(|at| at >= since))
    }

    /// A wait for the follower that began at `began` completed.
    pub fn synced_at(&self, began: Instant) {
        if let Ok(mut synced) = self.synced.write() {
            *synced = Some(synced.map_or(began, |at| at.max(began)));
        }
    }

    pub fn len(&self) -> usize {
        self.erased.read().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(member_id: &str, at: i64) -> ErasureRequest {
        ErasureRequest {
            request_id: format!("r-{member_id}"),
            member_id: member_id.into(),
            basis: "gdpr_art17".into(),
            requested_at: Timestamp(at),
            requested_by: None,
        }
    }

    #[test]
    fn the_registry_holds_keyed_hashes_not_ids() {
        let registry = Registry::new([7; 32]);
        assert!(!registry.is_erased("member-1"));
        let hash = registry.hash("member-1");
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("member-1"));
        // Another deployment key hashes the same id otherwise.
        assert_ne!(hash, Registry::new([8; 32]).hash("member-1"));
        registry.register("member-1", &request("member-1", 1_000));
        assert!(registry.is_erased("member-1"));
        assert!(!registry.is_erased("member-2"));
        registry.set(&hash, None);
        assert!(!registry.is_erased("member-1"));
    }

    #[test]
    fn a_reenrolled_member_keeps_their_old_records_dropped_and_their_new_ones_not() {
        let registry = Registry::new([7; 32]);
        assert_eq!(registry.reenrol("member-1", 5_000), None);
        registry.register("member-1", &request("member-1", 1_000));
        let erased = registry.get("member-1").expect("registered");
        assert!(erased.drops(Some(9_000)));
        assert!(!registry.any_reenrolled());
        let (hash, entry) = registry.reenrol("member-1", 5_000).expect("erased before");
        assert_eq!(entry.reenrolled_at, Some(5_000));
        assert!(registry.any_reenrolled());
        registry.set(&hash, Some(entry.clone()));
        assert!(registry.any_reenrolled(), "the same entry, read back");
        assert!(!registry.is_erased("member-1"));
        let erased = registry.get("member-1").expect("still registered");
        assert!(erased.drops(Some(4_999)), "history before re-enrolment");
        assert!(erased.drops(None));
        assert!(!erased.drops(Some(5_000)));
        registry.register("member-1", &request("member-1", 6_000));
        assert!(!registry.any_reenrolled(), "erased anew");
    }

    #[test]
    fn caught_up_once_every_partition_is_read_to_its_end() {
        let registry = Registry::new([7; 32]);
        assert!(registry.caught_up(&[]));
        assert!(!registry.caught_up(&[(0, 3)]));
        registry.read_to(0, 3);
        registry.read_to(0, 2);
        assert!(registry.caught_up(&[(0, 3)]));
        assert!(!registry.caught_up(&[(0, 3), (1, 1)]));
        registry.read_to(1, 1);
        assert!(registry.caught_up(&[(0, 3), (1, 1)]));
    }

    #[test]
    fn a_request_too_big_to_receipt_lists_every_problem() {
        let request = ErasureRequest {
            request_id: String::new(),
            member_id: "m".repeat(MAX_FIELD_BYTES + 1),
            basis: "gdpr_art17".into(),
            requested_at: Timestamp(0),
            requested_by: Some("x".repeat(1 << 20)),
        };
        assert_eq!(
            request.problems(),
            vec![
                "request_id is empty".to_owned(),
                format!("member_id is 257 bytes long (at most {MAX_FIELD_BYTES})"),
                format!("requested_by is 1048576 bytes long (at most {MAX_FIELD_BYTES})"),
            ]
        );
        let fine = ErasureRequest {
            request_id: "r1".into(),
            member_id: "m1".into(),
            requested_by: None,
            ..request
        };
        assert!(fine.problems().is_empty());
    }

    #[test]
    fn removals_of_nothing_are_not_listed() {
        let mut forgotten = Forgotten::default();
        forgotten.removed("summary:sketch", 0);
        forgotten.removed("summary:counts", 2);
        assert_eq!(
            forgotten.removed,
            vec![Removal {
                place: "summary:counts".into(),
                count: 2
            }]
        );
    }
}
