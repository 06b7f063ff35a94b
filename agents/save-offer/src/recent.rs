//! The ids of the newest events, triggers or claims a key has seen, as hashes in a
//! bounded window: what lets a record delivered twice (a replayed batch writes again at a
//! new offset) count once, without the key's entry growing with every record. Hashes
//! keep the entry small; the runtime copies it for every record.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Hashes of recent ids, oldest first.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecentIds(VecDeque<u64>);

impl RecentIds {
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains(&loyalty_contracts::fnv1a(id))
    }

    /// Remember `id`, keeping the newest `keep`; false if it was there already.
    pub fn insert(&mut self, id: &str, keep: usize) -> bool {
        if self.contains(id) {
            return false;
        }
        self.0.push_back(loyalty_contracts::fnv1a(id));
        while self.0.len() > keep {
            self.0.pop_front();
        }
        true
    }
}
