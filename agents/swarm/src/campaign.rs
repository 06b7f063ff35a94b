//! A past retention campaign for the demo, with uplifts set in advance: the outcomes an
//! operator's earlier interventions would have left, treated and hold-out, for every
//! intervention type ltv prices. Without any outcome ltv's counterfactuals are its prior
//! (no uplift), every incremental LTV is zero, and save-offer can only rank offers by
//! cost. From these, ltv learns each type's uplift (the demo prints what it learned
//! beside what was set), and save-offer weighs value against cost.
//!
//! Synthetic, and named so: CDNOW has no intervention history. Values are drawn
//! deterministically from the member id, so every run publishes the same outcomes.

use std::collections::BTreeMap;

use loyalty_contracts::{
    InterventionOutcome, InterventionResult, InterventionType, MemberEvent, Payload, Timestamp,
    fnv1a,
};

use crate::cdnow::{BRAND, mix};
use crate::offers::publish_member_events;

/// The relative uplift the campaign's treated members show over its hold-out, per type.
pub const UPLIFTS: [(InterventionType, f64); 6] = [
    (InterventionType::Offer, 0.12),
    (InterventionType::TierPromotion, 0.04),
    (InterventionType::TierBridge, 0.08),
    (InterventionType::Redemption, 0.03),
    (InterventionType::StreakProtection, 0.10),
    (InterventionType::SurpriseAndDelight, 0.06),
];

/// Mean converted value of a hold-out member, minor units (about CDNOW's mean order).
const HOLDOUT_VALUE_MINOR: f64 = 3_500.0;

/// A uniform draw in [0, 1) from `parts`: the same inputs give the same draw, on every
/// platform (FNV-1a, the contracts' hash for hold-out splits, mixed by SplitMix64).
fn draw(parts: &[&str]) -> f64 {
    (mix(fnv1a(&parts.join("\u{1f}"))) >> 11) as f64 / (1u64 << 53) as f64
}

/// One member's outcome of the campaign's intervention of type `kind`: hold-out for half
/// the members (by a draw), converted with a value uniform within ±50% of the hold-out
/// mean, raised by the type's uplift for the treated.
pub fn outcome(member: &str, kind: InterventionType, uplift: f64) -> InterventionOutcome {
    let label = kind.label();
    let holdout = draw(&[member, label, "arm"]) < 0.5;
    let base = HOLDOUT_VALUE_MINOR * (0.5 + draw(&[member, label, "value"]));
    let value = if holdout { base } else { base * (1.0 + uplift) };
    InterventionOutcome {
        intervention_id: format!("demo-campaign-{label}-{member}"),
        intervention_type: label.to_owned(),
        result: InterventionResult::Converted,
        value_minor: Some(value.round() as i64),
        holdout: Some(holdout),
    }
}

/// Publish the campaign's outcomes for every member, one per intervention type, each at
/// the member's own newest event time (`members`: member id → member-state's `as_of`):
/// an outcome stamped later would move the member's clock, and with it their recency,
/// tenure and tier windows, downstream. The number of events written.
pub async fn publish_outcomes(
    bootstrap_servers: &str,
    registry_url: &str,
    members: &BTreeMap<String, Timestamp>,
) -> anyhow::Result<usize> {
    let mut events = Vec::with_capacity(members.len() * UPLIFTS.len());
    for (member, &at) in members {
        for (kind, uplift) in UPLIFTS {
            let outcome = outcome(member, kind, uplift);
            events.push(MemberEvent {
                event_id: outcome.intervention_id.clone(),
                member_id: member.clone(),
                brand_id: BRAND.into(),
                occurred_at: at,
                source: "campaign".into(),
                source_member_id: None,
                payload: Payload::InterventionOutcome(outcome),
            });
        }
    }
    publish_member_events(bootstrap_servers, registry_url, &events, "campaign outcome").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_campaign_is_the_same_on_every_run() {
        // Pinned: a change to the hash or its input changes the demo's figures.
        let o = outcome("m1", InterventionType::Offer, 0.12);
        assert_eq!((o.holdout, o.value_minor), (Some(false), Some(3_853)));
    }

    #[test]
    fn the_campaign_shows_each_types_uplift() {
        let members: Vec<String> = (0..4_000).map(|i| format!("m{i}")).collect();
        for (kind, uplift) in UPLIFTS {
            let (mut treated, mut holdout) = (Vec::new(), Vec::new());
            for m in &members {
                let o = outcome(m, kind, uplift);
                let value = o.value_minor.unwrap_or_default() as f64;
                if o.holdout == Some(true) {
                    holdout.push(value);
                } else {
                    treated.push(value);
                }
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let measured = mean(&treated) / mean(&holdout) - 1.0;
            // ±50% uniform values: the ratio's standard error is about 0.9% here.
            assert!(
                (measured - uplift).abs() < 0.03,
                "{kind:?}: measured {measured:.3}, set {uplift}"
            );
        }
    }
}
