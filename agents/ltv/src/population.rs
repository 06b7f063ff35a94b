//! What the ltv agent needs to know about everyone, kept per partition and merged by the
//! runtime: the buy-till-you-die sufficient statistics per model segment (what the
//! population fitter fits), members' mean values per tier and RFM segment (what the
//! reconciliation compares against) and intervention outcomes per type and arm (what
//! uplift is learned from).
//!
//! Everything is a count or an integer sum, so a member's contribution can be taken out
//! exactly when it changes and partitions merge in any order to the same numbers.

use std::collections::BTreeMap;
use std::time::Instant;

use btyd::params::{WEEK, model_params};
use btyd::{BgNbd, GammaGamma, Spend, Summary};
use loyalty_contracts::{BtydSummary, Date, ModelParams};
use serde::{Deserialize, Serialize};

/// The segment every member belongs to.
pub const ALL: &str = "all";

/// Relative width of the buckets mean order values are kept in: 1%, so the spend model is
/// fitted on values within ±0.5% of the members' own.
const VALUE_BUCKET: f64 = 1.01;
/// The value bucket of a member without a repeat purchase of positive value.
pub const NO_SPEND: i32 = i32::MIN;

/// One member's buy-till-you-die statistics as the fitter keeps them. T is not stored: it
/// is measured from `first_day` to the calibration end when the population is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FitRow {
    pub x: i32,
    pub t_x_days: i32,
    pub first_day: i32,
    /// log-1.01 bucket of the mean repeat order value; [`NO_SPEND`] without a repeat purchase.
    pub value_bucket: i32,
}

impl FitRow {
    pub fn of(b: &BtydSummary) -> FitRow {
        let value_bucket = if b.x > 0 && b.mean_repeat_value_minor > 0.0 {
            (b.mean_repeat_value_minor.ln() / VALUE_BUCKET.ln()).round() as i32
        } else {
            NO_SPEND
        };
        FitRow {
            x: b.x,
            t_x_days: b.t_x_days,
            first_day: b.first_purchase.0,
            value_bucket,
        }
    }

    fn mean_value(&self) -> f64 {
        VALUE_BUCKET.powi(self.value_bucket)
    }
}

/// One segment's fit rows with how many members have each.
pub type SegmentRows = BTreeMap<FitRow, i64>;

/// Members and integer value sums of one group (a tier, an RFM segment, everyone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueSum {
    pub members: i64,
    pub revenue_12m_minor: i64,
    pub lifetime_margin_minor: i64,
}

impl ValueSum {
    pub fn mean_revenue_12m(&self) -> Option<f64> {
        (self.members > 0).then(|| self.revenue_12m_minor as f64 / self.members as f64)
    }

    pub fn mean_lifetime_margin(&self) -> Option<f64> {
        (self.members > 0).then(|| self.lifetime_margin_minor as f64 / self.members as f64)
    }
}

/// Outcomes of one intervention type in one arm: interventions, and the sum and sum of
/// squares of their converted value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmStats {
    pub n: i64,
    pub sum: i64,
    pub sum_sq: i128,
}

/// Treated and hold-out arms of one intervention type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Arms {
    pub treated: ArmStats,
    pub holdout: ArmStats,
}

/// One partition's share of the population.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PopulationSummary {
    /// Newest member-state day seen: the calibration end of the next fit.
    pub stream_day: i32,
    /// Per model segment, the members' fit rows with their counts.
    pub fit_rows: BTreeMap<String, SegmentRows>,
    /// Per value group ("all", "tier:<id>", "segment:<rfm segment>").
    pub values: BTreeMap<String, ValueSum>,
    /// Per intervention type label.
    pub outcomes: BTreeMap<String, Arms>,
}

/// What one member adds to the summary, kept in its state so it can be taken out again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub fit_rows: Vec<(String, FitRow)>,
    pub values: Vec<(String, i64, i64)>,
}

impl PopulationSummary {
    /// Replace `old` by `new` (a member's contribution changed).
    pub fn replace(&mut self, old: &Contribution, new: &Contribution) {
        for (segment, row) in &old.fit_rows {
            if let Some(rows) = self.fit_rows.get_mut(segment) {
                if let Some(count) = rows.get_mut(row) {
                    *count -= 1;
                    if *count <= 0 {
                        rows.remove(row);
                    }
                }
                if rows.is_empty() {
                    self.fit_rows.remove(segment);
                }
            }
        }
        for (segment, row) in &new.fit_rows {
            *self
                .fit_rows
                .entry(segment.clone())
                .or_default()
                .entry(*row)
                .or_default() += 1;
        }
        for (group, revenue, margin) in &old.values {
            if let Some(sum) = self.values.get_mut(group) {
                sum.members -= 1;
                sum.revenue_12m_minor -= revenue;
                sum.lifetime_margin_minor -= margin;
                if sum.members <= 0 {
                    self.values.remove(group);
                }
            }
        }
        for (group, revenue, margin) in &new.values {
            let sum = self.values.entry(group.clone()).or_default();
            sum.members += 1;
            sum.revenue_12m_minor += revenue;
            sum.lifetime_margin_minor += margin;
        }
    }
}

/// Every partition's summaries merged: the population view all instances share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    pub stream_day: i32,
    pub fit_rows: BTreeMap<String, SegmentRows>,
    pub values: BTreeMap<String, ValueSum>,
    pub outcomes: BTreeMap<String, Arms>,
}

impl Merged {
    /// Merge every partition; the fit rows (a row per member and segment) only when
    /// `with_fit_rows`, since only the fitter needs them and scoring merges on every batch.
    pub fn of<'a>(
        partitions: impl IntoIterator<Item = &'a PopulationSummary>,
        with_fit_rows: bool,
    ) -> Merged {
        let mut merged = Merged {
            stream_day: i32::MIN,
            ..Merged::default()
        };
        for p in partitions {
            merged.stream_day = merged.stream_day.max(p.stream_day);
            for (segment, rows) in p.fit_rows.iter().filter(|_| with_fit_rows) {
                let into = merged.fit_rows.entry(segment.clone()).or_default();
                for (row, count) in rows {
                    *into.entry(*row).or_default() += count;
                }
            }
            for (group, sum) in &p.values {
                let into = merged.values.entry(group.clone()).or_default();
                into.members += sum.members;
                into.revenue_12m_minor += sum.revenue_12m_minor;
                into.lifetime_margin_minor += sum.lifetime_margin_minor;
            }
            for (kind, arms) in &p.outcomes {
                let into = merged.outcomes.entry(kind.clone()).or_default();
                for (to, from) in [
                    (&mut into.treated, &arms.treated),
                    (&mut into.holdout, &arms.holdout),
                ] {
                    to.n += from.n;
                    to.sum += from.sum;
                    to.sum_sq += from.sum_sq;
                }
            }
        }
        merged
    }
}

/// Why a segment was not published.
#[derive(Debug, Clone, PartialEq)]
pub enum FitOutcome {
    Fitted(Box<ModelParams>),
    TooSmall(i64),
    NotConverged,
    Failed(String),
}

impl FitOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            FitOutcome::Fitted(_) => "fitted",
            FitOutcome::TooSmall(_) => "too_small",
            FitOutcome::NotConverged => "not_converged",
            FitOutcome::Failed(_) => "failed",
        }
    }
}

/// Fit one segment's rows with T measured to `calibration_end`, weeks as the unit.
pub fn fit_segment(
    segment: &str,
    rows: &SegmentRows,
    calibration_end: i32,
    min_members: i64,
) -> FitOutcome {
    let started = Instant::now();
    let members: i64 = rows.values().sum();
    if members < min_members {
        return FitOutcome::TooSmall(members);
    }
    // Rows that differ only in their value bucket are one purchase summary.
    let mut purchases: BTreeMap<(i32, i32, i32), f64> = BTreeMap::new();
    let mut spend: BTreeMap<(i32, i32), f64> = BTreeMap::new();
    for (row, &count) in rows {
        let t_days = (calibration_end - row.first_day).max(row.t_x_days);
        *purchases.entry((row.x, row.t_x_days, t_days)).or_default() += count as f64;
        if row.x > 0 && row.value_bucket != NO_SPEND {
            *spend.entry((row.x, row.value_bucket)).or_default() += count as f64;
        }
    }
    let purchases: Vec<(Summary, f64)> = purchases
        .into_iter()
        .map(|((x, t_x, t), w)| {
            (
                Summary::new(f64::from(x), f64::from(t_x) / WEEK, f64::from(t) / WEEK),
                w,
            )
        })
        .collect();
    let spend: Vec<(Spend, f64)> = spend
        .into_iter()
        .map(|((x, bucket), w)| {
            let row = FitRow {
                x,
                t_x_days: 0,
                first_day: 0,
                value_bucket: bucket,
            };
            (
                Spend {
                    x: f64::from(x),
                    mean_value: row.mean_value(),
                },
                w,
            )
        })
        .collect();
    let fit = match BgNbd::fit(&purchases) {
        Ok(fit) if fit.converged => fit,
        Ok(_) => return FitOutcome::NotConverged,
        Err(e) => return FitOutcome::Failed(e.to_string()),
    };
    // A spend model that does not converge is left out rather than published unusable.
    let spend_fit = GammaGamma::fit(&spend).ok().filter(|f| f.converged);
    let end = Date(calibration_end);
    FitOutcome::Fitted(Box::new(model_params(
        segment,
        &fit,
        spend_fit.as_ref(),
        end,
        WEEK,
        end.start(),
        started.elapsed().as_millis() as i64,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(x: i32, t_x: i32, first: i32, value: f64) -> BtydSummary {
        BtydSummary {
            x,
            t_x_days: t_x,
            t_days: t_x + 10,
            first_purchase: Date(first),
            last_purchase: Date(first + t_x),
            mean_repeat_value_minor: value,
        }
    }

    #[test]
    fn contributions_come_out_exactly_as_they_went_in() {
        let mut summary = PopulationSummary::default();
        let a = Contribution {
            fit_rows: vec![
                (ALL.into(), FitRow::of(&row(2, 30, 100, 2500.0))),
                ("tier:gold".into(), FitRow::of(&row(2, 30, 100, 2500.0))),
            ],
            values: vec![("all".into(), 1000, 300)],
        };
        let b = Contribution {
            fit_rows: vec![(ALL.into(), FitRow::of(&row(3, 40, 100, 2600.0)))],
            values: vec![("all".into(), 1200, 360)],
        };
        summary.replace(&Contribution::default(), &a);
        summary.replace(&a, &b);
        summary.replace(&b, &Contribution::default());
        assert_eq!(summary, PopulationSummary::default());
    }

    #[test]
    fn value_buckets_stay_within_half_a_percent() {
        for v in [1.0, 37.5, 2999.0, 123_456.0] {
            let r = FitRow::of(&row(1, 5, 0, v));
            assert!((r.mean_value() / v - 1.0).abs() < 0.005, "{v}");
        }
    }
}
