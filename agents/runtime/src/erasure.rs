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
}

pub const REQUESTS_TOPIC: Topic<ErasureRequest> = Topic::stream(REQUESTS).member_keyed();
pub const RECEIPTS_TOPIC: Topic<ErasureReceipt> = Topic::stream(RECEIPTS);
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

/// The erased ids, by keyed hash: those read from the registry topic and those this
/// instance erased since.
#[derive(Debug)]
pub struct Registry {
    key: [u8; 32],
    erased: RwLock<HashMap<String, i64>>,
}

impl Registry {
    pub fn new(key: [u8; 32]) -> Self {
        Registry {
            key,
            erased: RwLock::new(HashMap::new()),
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

    /// Whether `id` was erased. Costs one hash once anything was erased, nothing before.
    pub fn is_erased(&self, id: &str) -> bool {
        let Ok(erased) = self.erased.read() else {
            return false;
        };
        !erased.is_empty() && erased.contains_key(&self.hash(id))
    }

    /// Register `id` as erased at `erased_at`; returns its hash.
    pub fn register(&self, id: &str, erased_at: i64) -> String {
        let hash = self.hash(id);
        self.set(&hash, Some(erased_at));
        hash
    }

    /// Record an erased id by its hash; `None` takes it out (a registry tombstone).
    pub fn set(&self, hash: &str, erased_at: Option<i64>) {
        if let Ok(mut erased) = self.erased.write() {
            match erased_at {
                Some(at) => erased.insert(hash.to_owned(), at),
                None => erased.remove(hash),
            };
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

    #[test]
    fn the_registry_holds_keyed_hashes_not_ids() {
        let registry = Registry::new([7; 32]);
        assert!(!registry.is_erased("member-1"));
        let hash = registry.hash("member-1");
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("member-1"));
        // Another deployment key hashes the same id otherwise.
        assert_ne!(hash, Registry::new([8; 32]).hash("member-1"));
        registry.set(&hash, Some(1_000));
        assert!(registry.is_erased("member-1"));
        assert!(!registry.is_erased("member-2"));
        registry.set(&hash, None);
        assert!(!registry.is_erased("member-1"));
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
