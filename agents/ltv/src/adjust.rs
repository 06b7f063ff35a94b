//! Loyalty adjustments: how the program changes what a member is worth, each shown on
//! its own so an operator can see (and dispute) every one. All are changes to the
//! discounted lifetime margin in minor units; points are priced at the program's point
//! value and count as a cost only in the share the member is expected to redeem.
//!
//! Three are learned from the population: the member valued under their tier's, their
//! redemption behaviour's and their tenure band's own fit, against the population fit
//! (so decay is modulated by loyalty as the data shows it). Three are points costs, and
//! two (streak, referral) apply operator-set coefficients to the member's own record.

use loyalty_contracts::{Adjustment, AdjustmentKind, MemberState, Program};

use crate::value::{MONTH_DAYS, Worth, minor};

/// Operator coefficients and fallbacks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficients {
    /// Share of earned points a member without a redemption record is expected to redeem.
    pub default_burn_ratio: f64,
    /// Lifetime margin added per month of current purchase streak (0.01 = +1%).
    pub streak_bonus_per_month: f64,
    /// Streak months beyond this add nothing.
    pub streak_bonus_cap_months: i32,
    /// Share of a referred member's value credited to the referrer.
    pub referral_credit: f64,
}

/// A member valued under a segment's own fit, with the segment's name.
#[derive(Debug, Clone, Copy)]
pub struct SegmentValue<'a> {
    pub segment: &'a str,
    pub worth: Option<&'a Worth>,
}

/// Everything the adjustments read.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub state: &'a MemberState,
    pub program: Option<&'a Program>,
    pub baseline: Option<&'a Worth>,
    pub tier: SegmentValue<'a>,
    pub redemption: SegmentValue<'a>,
    pub tenure: SegmentValue<'a>,
    /// Mean discounted lifetime margin of all members (the value of a referred member).
    pub population_mean_margin: Option<f64>,
}

/// The eight adjustments, in [`AdjustmentKind::ALL`] order, and the points liability at
/// face value.
pub fn adjustments(inputs: &Inputs<'_>, c: &Coefficients) -> (Vec<Adjustment>, i64) {
    let state = inputs.state;
    let points = &state.points;
    let burn_ratio = if points.earned > 0 {
        (points.redeemed as f64 / points.earned as f64).clamp(0.0, 1.0)
    } else {
        c.default_burn_ratio
    };
    let point_value = inputs.program.map(|p| p.point_value_minor);
    let liability = point_value.map_or(0, |v| minor(points.balance.max(0) as f64 * v));
    let baseline_margin = inputs.baseline.map_or(0.0, |b| b.lifetime_margin);
    let alive_months = inputs.baseline.map_or(0.0, |b| b.alive_months);

    let segment = |kind: AdjustmentKind, s: &SegmentValue<'_>| -> Adjustment {
        match (inputs.baseline, s.worth) {
            (Some(base), Some(seg)) if base.lifetime_margin > 0.0 => {
                let factor = seg.lifetime_margin / base.lifetime_margin;
                Adjustment {
                    kind,
                    value_minor: minor(seg.lifetime_margin - base.lifetime_margin),
                    factor,
                    basis: format!(
                        "lifetime margin under segment {}'s own fit / under the population fit = {factor:.4}",
                        s.segment
                    ),
                }
            }
            (None, _) => none(kind, "no baseline: no purchase or no population fit yet"),
            (_, None) => none(
                kind,
                &format!("no converged fit for segment {} yet", s.segment),
            ),
            _ => none(kind, "baseline lifetime margin is zero"),
        }
    };

    let burn = match point_value {
        Some(v) => Adjustment {
            kind: AdjustmentKind::RedemptionBurnRate,
            value_minor: -minor(points.balance.max(0) as f64 * burn_ratio * v),
            factor: burn_ratio,
            basis: format!(
                "balance {} points x burn ratio {burn_ratio:.4} x point value {v} minor",
                points.balance
            ),
        },
        None => none(AdjustmentKind::RedemptionBurnRate, PROGRAM_UNKNOWN),
    };

    // Points the member will earn at their own velocity while alive, in today's money.
    let velocity = match point_value {
        Some(v) => {
            let per_month = points.earn_velocity_30d * MONTH_DAYS / 30.0;
            Adjustment {
                kind: AdjustmentKind::PointVelocity,
                value_minor: -minor(per_month * alive_months * burn_ratio * v),
                factor: points.earn_velocity_30d,
                basis: format!(
                    "{:.2} points per 30 days x {alive_months:.2} discounted alive months x burn ratio {burn_ratio:.4} x point value {v} minor",
                    points.earn_velocity_30d
                ),
            }
        }
        None => none(AdjustmentKind::PointVelocity, PROGRAM_UNKNOWN),
    };

    let streak_months = state
        .current_streak_months
        .clamp(0, c.streak_bonus_cap_months);
    let streak_factor = c.streak_bonus_per_month * f64::from(streak_months);
    let streak = Adjustment {
        kind: AdjustmentKind::StreakBonus,
        value_minor: minor(baseline_margin * streak_factor),
        factor: streak_factor,
        basis: format!(
            "{streak_months} streak months (cap {}) x {} of the baseline lifetime margin per month",
            c.streak_bonus_cap_months, c.streak_bonus_per_month
        ),
    };

    let tenure_years = inputs
        .state
        .btyd
        .as_ref()
        .map_or(0.0, |b| f64::from(b.t_days.max(1)) / 365.25)
        .max(MONTH_DAYS / 365.25);
    let referrals_per_year = f64::from(state.referrals.max(0)) / tenure_years;
    let referral = match inputs.population_mean_margin {
        Some(mean) => {
            let value = referrals_per_year * alive_months / 12.0 * mean * c.referral_credit;
            Adjustment {
                kind: AdjustmentKind::ReferralMultiplier,
                value_minor: minor(value),
                factor: referrals_per_year,
                basis: format!(
                    "{referrals_per_year:.3} referrals per year x {:.2} discounted alive years x population mean lifetime margin {mean:.0} minor x credit {}",
                    alive_months / 12.0,
                    c.referral_credit
                ),
            }
        }
        None => none(
            AdjustmentKind::ReferralMultiplier,
            "no population value yet to price a referral",
        ),
    };

    // What the tier's earn multiplier costs beyond the base earn rate on expected revenue.
    let tier_multiplier = inputs.program.zip(state.tier.as_ref()).and_then(|(p, t)| {
        p.tiers
            .iter()
            .find(|tier| tier.tier_id == t.tier_id)
            .map(|tier| (p, tier.earn_multiplier))
    });
    let earn = match (tier_multiplier, inputs.baseline) {
        (Some((program, multiplier)), Some(base)) => {
            let extra_points = base.lifetime_revenue * program.points_per_minor(multiplier - 1.0);
            Adjustment {
                kind: AdjustmentKind::EarnRateMultiplier,
                value_minor: -minor(extra_points * burn_ratio * program.point_value_minor),
                factor: multiplier,
                basis: format!(
                    "({multiplier} - 1) x {} points per unit on {:.0} minor expected lifetime revenue x burn ratio {burn_ratio:.4} x point value {} minor",
                    program.points_per_unit, base.lifetime_revenue, program.point_value_minor
                ),
            }
        }
        (None, _) => none(
            AdjustmentKind::EarnRateMultiplier,
            "program or tier unknown",
        ),
        (_, None) => none(
            AdjustmentKind::EarnRateMultiplier,
            "no baseline: no purchase or no population fit yet",
        ),
    };

    let list = vec![
        segment(AdjustmentKind::TierMultiplier, &inputs.tier),
        burn,
        velocity,
        segment(AdjustmentKind::RedemptionVelocity, &inputs.redemption),
        segment(AdjustmentKind::TierTenureBonus, &inputs.tenure),
        streak,
        referral,
        earn,
    ];
    (list, liability)
}

const PROGRAM_UNKNOWN: &str = "the member's program is not in loyalty.programs.v1";

fn none(kind: AdjustmentKind, why: &str) -> Adjustment {
    Adjustment {
        kind,
        value_minor: 0,
        factor: 1.0,
        basis: why.to_owned(),
    }
}
