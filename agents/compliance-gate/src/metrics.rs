//! compliance-gate's own metrics, registered in the agent's registry at start-up:
//! decisions by outcome and channel, the policies that decided them, and deferred sends
//! released.

use loyalty_contracts::{DecidingPolicy, GateOutcome};
use loyalty_runtime::metrics::{MetricDef, Metrics};
use loyalty_runtime::prometheus::{self, IntCounterVec};

pub const DECISIONS: MetricDef = MetricDef::counter(
    "gate_decisions_total",
    &["outcome", "channel"],
    "sends decided, by outcome (approved, denied, deferred, needs_review) and channel (none: the proposal had no offer to send)",
);
pub const DECIDING: MetricDef = MetricDef::counter(
    "gate_deciding_policies_total",
    &["policy"],
    "decisions each policy decided (named in the decision as deciding), by its @id",
);
pub const RELEASED: MetricDef = MetricDef::counter(
    "gate_deferred_released_total",
    &["outcome"],
    "deferred sends released and decided again, by the new outcome",
);

/// Every metric of compliance-gate's own, for the reference table.
pub const ALL: &[MetricDef] = &[DECISIONS, DECIDING, RELEASED];

/// The registered series.
#[derive(Debug, Clone)]
pub struct GateMetrics {
    decisions: IntCounterVec,
    deciding: IntCounterVec,
    released: IntCounterVec,
}

impl GateMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        Ok(GateMetrics {
            decisions: metrics.counter(&DECISIONS)?,
            deciding: metrics.counter(&DECIDING)?,
            released: metrics.counter(&RELEASED)?,
        })
    }

    pub fn decided(&self, outcome: GateOutcome, channel: &str, deciding: &[DecidingPolicy]) {
        self.decisions
            .with_label_values(&[outcome.label(), channel])
            .inc();
        for d in deciding {
            self.deciding
                .with_label_values(&[d.policy_id.as_str()])
                .inc();
        }
    }

    pub fn released(&self, outcome: GateOutcome) {
        self.released.with_label_values(&[outcome.label()]).inc();
    }
}
