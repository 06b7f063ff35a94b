//! save-offer's own metrics, registered in the agent's registry at start-up: proposals by
//! trigger and offer type, offers ruled out by stage, and ledger decisions.

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

/// Every metric of save-offer's own, for the reference table.
pub const ALL: &[MetricDef] = &[PROPOSALS, REJECTIONS, LEDGER];

/// The registered series.
#[derive(Debug, Clone)]
pub struct SaveOfferMetrics {
    proposals: IntCounterVec,
    rejections: IntCounterVec,
    ledger: IntCounterVec,
}

impl SaveOfferMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        Ok(SaveOfferMetrics {
            proposals: metrics.counter(&PROPOSALS)?,
            rejections: metrics.counter(&REJECTIONS)?,
            ledger: metrics.counter(&LEDGER)?,
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
}
