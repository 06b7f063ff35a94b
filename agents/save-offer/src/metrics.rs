//! save-offer's own metrics, registered in the agent's registry at start-up: proposals by
//! trigger and offer type, offers ruled out by stage, ledger decisions, and triggers
//! whose wait for the member's value ran out.

use loyalty_contracts::{OfferType, ProposalTrigger, RejectionStage};
use loyalty_runtime::metrics::{MetricDef, Metrics};
use loyalty_runtime::prometheus::{self, IntCounterVec};

pub const PROPOSALS: MetricDef = MetricDef::counter(
    "offer_proposals_total",
    &["trigger", "offer_type"],
    "proposals written, by trigger (opportunity, cancellation) and offer type (none when nothing was eligible)",
);
pub const REJECTIONS: MetricDef = MetricDef::counter(
    "offer_rejections_total",
    &["stage"],
    "offers ruled out while deciding, by the stage that ruled them out",
);
pub const LEDGER: MetricDef = MetricDef::counter(
    "offer_ledger_decisions_total",
    &["outcome"],
    "budget and cap claims: `granted`, `refused`, `refused_as_published` (ruled out by the ledger's published standing, without a trip to it), `duplicate` (a claim sent again, ignored), `erased` (its member was erased while it travelled: nothing charged or proposed)",
);

pub const JOIN_WAIT_EXPIRED: MetricDef = MetricDef::counter(
    "offer_join_wait_expired_total",
    &["trigger", "ltv"],
    "triggers decided when `join_wait_ms` ran out before ltv valued the member, by trigger and by what ltv had written (`missing`: nothing, `unvalued`: a record without a baseline); their proposals rule out every offer priced on the member's orders or bounded by their value",
);

/// Every metric of save-offer's own, for the reference table.
pub const ALL: &[MetricDef] = &[PROPOSALS, REJECTIONS, LEDGER, JOIN_WAIT_EXPIRED];

/// The registered series.
#[derive(Debug, Clone)]
pub struct SaveOfferMetrics {
    proposals: IntCounterVec,
    rejections: IntCounterVec,
    ledger: IntCounterVec,
    join_wait_expired: IntCounterVec,
}

impl SaveOfferMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        Ok(SaveOfferMetrics {
            proposals: metrics.counter(&PROPOSALS)?,
            rejections: metrics.counter(&REJECTIONS)?,
            ledger: metrics.counter(&LEDGER)?,
            join_wait_expired: metrics.counter(&JOIN_WAIT_EXPIRED)?,
        })
    }

    pub fn proposed(&self, trigger: ProposalTrigger, offer: Option<OfferType>) {
        let trigger = trigger.label();
        self.proposals
            .with_label_values(&[trigger, offer.map_or("none", OfferType::label)])
            .inc();
    }

    pub fn rejected(&self, stage: RejectionStage) {
        let stage = format!("{stage:?}").to_lowercase();
        self.rejections.with_label_values(&[stage.as_str()]).inc();
    }

    pub fn ledger(&self, outcome: &str) {
        self.ledger.with_label_values(&[outcome]).inc();
    }

    /// A trigger decided once the join wait ran out; `ltv` is `missing` or `unvalued`.
    pub fn join_wait_expired(&self, trigger: ProposalTrigger, ltv: &str) {
        self.join_wait_expired
            .with_label_values(&[trigger.label(), ltv])
            .inc();
    }
}
