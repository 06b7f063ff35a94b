//! The join state of one member: what ltv keeps of each side (member-state, tier
//! forecasts, cohort) and of its interventions, where each was read, and the last
//! valuations while they still apply.

use std::collections::BTreeMap;

use loyalty_contracts::{MemberState, TierForecasts, TransitionType};
use loyalty_runtime::Rejection;
use serde::{Deserialize, Serialize};

use crate::population::Contribution;
use crate::value;

/// Where a joined record was read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// What the join keeps of a member's tier forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastSide {
    pub at: Position,
    pub as_of: i64,
    pub tier_id: String,
    /// Probability and target tier of an up-tier and a down-tier transition.
    pub up: Option<(f64, String)>,
    pub down: Option<(f64, String)>,
}

/// What the join keeps of a member's cohort record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortSide {
    pub at: Position,
    pub as_of: i64,
    pub segment: String,
}

/// One intervention the member was part of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervention {
    pub kind: String,
    pub holdout: bool,
    /// Converted value so far (the newest Converted outcome's).
    pub value: i64,
}

/// The join state of one member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberJoin {
    pub member: Option<(Position, MemberState)>,
    pub forecasts: Option<ForecastSide>,
    pub cohort: Option<CohortSide>,
    pub interventions: BTreeMap<String, Intervention>,
    /// What the member adds to the partition summary now.
    pub contribution: Contribution,
    /// SHA-256 of the last record's content (attestation aside), so a refresh that changes
    /// nothing writes nothing.
    pub content_hash: String,
    /// Fingerprint of the population inputs the last record used (model versions, the
    /// population day, group means and uplift posteriors to two significant digits): a
    /// refresh re-scores only members whose fingerprint moved.
    pub dependencies: u64,
    /// The last valuations, in memory only (not in the changelog): derived data, rebuilt
    /// after a restore.
    #[serde(skip)]
    pub cache: Option<Valuations>,
}

/// A member valued under the current fits, and what it was valued from.
#[derive(Debug, Clone, PartialEq)]
pub struct Valuations {
    pub(crate) basis: u64,
    pub(crate) baseline: Option<value::Valued>,
    /// Per segment (tier, redemption, tenure): its name and the member's worth under its fit.
    pub(crate) segments: Vec<(String, Option<value::Worth>)>,
}

/// Interventions remembered per member; older ones keep their counts in the population.
pub(crate) const MAX_INTERVENTIONS: usize = 256;

pub(crate) fn forecast_side(at: Position, f: &TierForecasts) -> Result<ForecastSide, Rejection> {
    let pick = |kind: TransitionType| -> Result<Option<(f64, String)>, Rejection> {
        let Some(t) = f.forecasts.iter().find(|t| t.transition == kind) else {
            return Ok(None);
        };
        match (t.probability, &t.target_tier_id) {
            (Some(p), _) if !(0.0..=1.0).contains(&p) => Err(Rejection::contract(format!(
                "{} probability {p} is outside [0, 1]",
                kind.label()
            ))),
            (Some(p), Some(tier)) => Ok(Some((p, tier.clone()))),
            _ => Ok(None),
        }
    };
    Ok(ForecastSide {
        at,
        as_of: f.as_of.0,
        tier_id: f.tier_id.clone(),
        up: pick(TransitionType::UpTier)?,
        down: pick(TransitionType::DownTier)?,
    })
}
