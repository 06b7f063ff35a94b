//! What save-offer keeps per key and per partition.
//!
//! Two kinds of key share the store: members (the joined facts, held offers, pending
//! proposals) and ledgers (`ledger:…`, the budgets and caps one task owns). The partition
//! summary holds what is population-wide: every bandit arm's statistics and the sketch
//! of lifetime margins the LTV deciles are read from, both merged by addition, and the
//! standing of the partition's ledgers.

use std::collections::BTreeMap;

use cohort::sketch::Histogram;
use loyalty_runtime::PartitionSummary;
use serde::{Deserialize, Serialize};

use crate::bandit::{ArmKey, ArmStats};
use crate::ledger::{Ledger, LedgerStanding};
use crate::member::{CohortFacts, HeldOffer, LtvFacts, ProfileFacts, StateFacts};
use crate::recent::RecentIds;

/// The prefix of ledger keys; no member-keyed record may use it.
pub const LEDGER_PREFIX: &str = "ledger:";

/// One key's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    Member(Box<MemberEntry>),
    Ledger(Ledger),
}

/// A member as save-offer knows it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MemberEntry {
    pub profile: Option<ProfileFacts>,
    pub state: Option<StateFacts>,
    pub cohort: Option<CohortFacts>,
    pub ltv: Option<LtvFacts>,
    /// The member's bucket in the partition's lifetime-margin sketch, to take it out again.
    pub ltv_bucket: Option<i32>,
    /// Product lines the member ordered, newest last, at most [`PRODUCT_LINES`].
    pub product_lines: Vec<String>,
    pub prior_redemptions: i32,
    pub held: Vec<HeldOffer>,
    /// Proposals decided but not yet seen on `loyalty.offer-proposals.v1` (a ledger may
    /// still be deciding): each with every candidate it may end as. Stacking treats the
    /// first candidate as held meanwhile.
    pub pending: BTreeMap<String, Vec<HeldOffer>>,
    /// The newest event and trigger ids, so one delivered twice counts once.
    pub seen: RecentIds,
    /// Triggers that arrived before the member's value (member-ltv): decided when it
    /// arrives, or when `join_wait_ms` has passed.
    pub deferred: Vec<Deferred>,
    /// Experiment offers no longer held (expired, suppressed) whose outcome may still
    /// come: a conversion is often the very order that suppressed its offer.
    pub withdrawn: Vec<HeldOffer>,
    /// What this member added to each arm's statistics (pulls, rewards), so an erasure
    /// takes it back out of the partition's bandit statistics.
    pub arm_shares: BTreeMap<ArmKey, ArmStats>,
}

/// Offers one member holds at most; the oldest goes first.
pub const MAX_HELD: usize = 32;
/// Withdrawn experiment offers kept for their outcome, and for how long.
pub const MAX_WITHDRAWN: usize = 8;
const WITHDRAWN_FOR_MS: i64 = 30 * loyalty_contracts::MILLIS_PER_DAY;
/// A proposal pending a ledger for longer than this was lost (its claim dead-lettered).
const PENDING_FOR_MS: i64 = 7 * loyalty_contracts::MILLIS_PER_DAY;

/// A trigger waiting for the member's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deferred {
    pub kind: loyalty_contracts::ProposalTrigger,
    pub id: String,
    pub opportunity: Option<loyalty_contracts::OpportunityKind>,
    pub at: loyalty_contracts::Timestamp,
    pub reason: Option<loyalty_contracts::ReasonCluster>,
}

/// Triggers kept waiting per member at most; an older one is decided at once.
pub const MAX_DEFERRED: usize = 8;

/// Product lines remembered per member.
pub const PRODUCT_LINES: usize = 16;

impl MemberEntry {
    /// Remember `id`; false if it was seen already.
    pub fn first_sight(&mut self, id: &str, keep: usize) -> bool {
        self.seen.insert(id, keep)
    }

    /// Drop what no longer counts at `now`: held offers past their grace period (an
    /// experiment offer waits among the withdrawn for its outcome), withdrawn ones past
    /// their wait, proposals pending too long; and keep each list within its cap. Keeps
    /// a member's entry bounded however long it lives.
    pub fn prune(&mut self, now: loyalty_contracts::Timestamp) {
        let (still, ended): (Vec<HeldOffer>, Vec<HeldOffer>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.held_at(now));
        self.held = still;
        for h in ended {
            self.withdraw(h);
        }
        while self.held.len() > MAX_HELD {
            let oldest = self.held.remove(0);
            self.withdraw(oldest);
        }
        self.withdrawn
            .retain(|h| now.0.saturating_sub(h.held_since.0) <= WITHDRAWN_FOR_MS);
        self.pending.retain(|_, candidates| {
            candidates
                .first()
                .is_some_and(|c| now.0.saturating_sub(c.held_since.0) <= PENDING_FOR_MS)
        });
    }

    /// Keep an experiment offer whose outcome has not been learned.
    pub fn withdraw(&mut self, offer: HeldOffer) {
        if offer.arm_key.is_some() && !offer.rewarded {
            self.withdrawn.push(offer);
            if self.withdrawn.len() > MAX_WITHDRAWN {
                self.withdrawn.remove(0);
            }
        }
    }

    pub fn add_product_line(&mut self, line: &str) {
        self.product_lines.retain(|l| l != line);
        self.product_lines.push(line.to_owned());
        if self.product_lines.len() > PRODUCT_LINES {
            self.product_lines.remove(0);
        }
    }
}

/// A partition's share of the population.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OfferSummary {
    /// Bandit statistics per arm and stratum.
    pub arms: BTreeMap<ArmKey, ArmStats>,
    /// Lifetime margins of the partition's members (log buckets), for LTV deciles.
    pub lifetime_margin: Histogram,
    /// Event time of the newest proposal seen: the population's "now" for readouts.
    pub newest_ms: i64,
    /// What each ledger of the partition has given, so claims skip used-up ledgers.
    pub ledgers: BTreeMap<String, LedgerStanding>,
}

/// Shared between instances: bandits and deciles are population-wide.
impl PartitionSummary for OfferSummary {}
