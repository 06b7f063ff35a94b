//! What tier-transition remembers: per member, the forecasts last published (raw
//! probabilities kept, so a new calibration can be applied without recomputing) and one
//! set of forecasts waiting to be resolved; per partition, counts of resolved forecasts by
//! type and raw-probability bin — the summary every instance merges to fit calibrators.

use std::collections::BTreeMap;

use loyalty_contracts::{Program, TierForecasts, TransitionType};
use serde::{Deserialize, Serialize};

use crate::calibrate::Resolved;
use crate::forecast::{Standing, Walk};

/// Raw-probability bins of the calibration counts.
pub const BINS: usize = 50;

/// A set of forecasts made together, waiting for their outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The member's standing when the forecasts were made.
    pub standing: Standing,
    pub horizon: i32,
    /// (transition index in `TransitionType::ALL`, raw probability, amount mark for bridges).
    pub forecasts: Vec<(u8, f64, Option<i64>)>,
}

/// tier-transition's state for one member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberForecasts {
    pub last: Option<TierForecasts>,
    pub pending: Option<Pending>,
    /// What this member's resolved forecasts added to the partition's calibration
    /// counts, (transition index, bin) → [forecasts, happened]: taken back out if the
    /// member is erased.
    pub counted: BTreeMap<(u8, u8), [u32; 2]>,
}

/// Resolved-forecast counts of one partition. `held` rows (one member in five, by id) are
/// kept apart to choose between calibrators on data they were not fitted on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibrationCounts {
    /// Newest member-state day seen in the partition (its stream time).
    pub stream_day: i32,
    /// (transition index, held out) → per bin [forecasts, transitions that happened].
    pub bins: BTreeMap<(u8, bool), Vec<[u32; 2]>>,
}

impl CalibrationCounts {
    /// Count one resolved forecast; returns its bin.
    pub fn add(&mut self, transition: u8, held: bool, raw: f64, happened: bool) -> u8 {
        let bins = self
            .bins
            .entry((transition, held))
            .or_insert_with(|| vec![[0, 0]; BINS]);
        let bin = ((raw * BINS as f64) as usize).min(BINS - 1);
        bins[bin][0] += 1;
        bins[bin][1] += u32::from(happened);
        bin as u8
    }

    /// Take one member's tally (`MemberForecasts::counted`) back out, on erasure;
    /// returns how many forecasts it held.
    pub fn withdraw(&mut self, held: bool, counted: &BTreeMap<(u8, u8), [u32; 2]>) -> i64 {
        let mut withdrawn = 0;
        for (&(transition, bin), tally) in counted {
            if let Some(b) = self
                .bins
                .get_mut(&(transition, held))
                .and_then(|bins| bins.get_mut(usize::from(bin)))
            {
                b[0] = b[0].saturating_sub(tally[0]);
                b[1] = b[1].saturating_sub(tally[1]);
                withdrawn += i64::from(tally[0]);
            }
        }
        // A transition no one is counted for any more is as if never seen.
        self.bins.retain(|_, bins| bins.iter().any(|b| b[0] > 0));
        withdrawn
    }
}

/// Merged counts of every partition for one transition as weighted rows at bin centres:
/// (fitting rows, held-out rows).
pub fn merged_rows<'a>(
    partitions: impl IntoIterator<Item = &'a CalibrationCounts>,
    transition: u8,
) -> (Vec<Resolved>, Vec<Resolved>) {
    let mut totals: BTreeMap<bool, Vec<[u64; 2]>> = BTreeMap::new();
    for counts in partitions {
        for held in [false, true] {
            if let Some(bins) = counts.bins.get(&(transition, held)) {
                let total = totals.entry(held).or_insert_with(|| vec![[0, 0]; BINS]);
                for (t, b) in total.iter_mut().zip(bins) {
                    t[0] += u64::from(b[0]);
                    t[1] += u64::from(b[1]);
                }
            }
        }
    }
    let rows = |held: bool| -> Vec<Resolved> {
        let Some(bins) = totals.get(&held) else {
            return Vec::new();
        };
        bins.iter()
            .enumerate()
            .flat_map(|(i, [n, yes])| {
                let centre = (i as f64 + 0.5) / BINS as f64;
                [
                    Resolved {
                        probability: centre,
                        happened: true,
                        weight: *yes as f64,
                    },
                    Resolved {
                        probability: centre,
                        happened: false,
                        weight: (n - yes) as f64,
                    },
                ]
            })
            .filter(|r| r.weight > 0.0)
            .collect()
    };
    (rows(false), rows(true))
}

/// Outcome of one pending forecast once the member's path up to `day` is known: `Some`
/// when it resolved (happened, or the horizon passed without it), `None` while open.
/// Renewal and expiration resolve from renewal events, which member-state does not carry.
pub fn outcome(
    transition: TransitionType,
    walk: &Walk,
    mark: Option<i64>,
    horizon_passed: bool,
) -> Option<bool> {
    let happened = match transition {
        TransitionType::UpTier => walk.up.is_some(),
        TransitionType::DownTier => walk.down.is_some(),
        TransitionType::GracePeriodEntry => walk.grace_entry.is_some(),
        TransitionType::Reinstatement => walk.reinstated.is_some(),
        TransitionType::BridgeCrossing => mark.is_some_and(|m| walk.peak >= m),
        // Stagnation "happens" only by getting to the horizon without a purchase.
        TransitionType::Stagnation => {
            return if walk.purchased {
                Some(false)
            } else if horizon_passed {
                Some(true)
            } else {
                None
            };
        }
        _ => return None,
    };
    if happened {
        Some(true)
    } else if horizon_passed {
        Some(false)
    } else {
        None
    }
}

/// Walk a pending standing forward to `day` (at most its horizon) through `purchases`.
pub fn walk_pending(
    pending: &Pending,
    program: &Program,
    day: i32,
    purchases: &[(i32, i64)],
) -> Walk {
    let mut standing = pending.standing.clone();
    let to = day.min(pending.horizon);
    let new: Vec<(i32, i64)> = purchases
        .iter()
        .copied()
        .filter(|(d, _)| *d > standing.day && *d <= to)
        .collect();
    standing.walk(program, to, &new)
}
