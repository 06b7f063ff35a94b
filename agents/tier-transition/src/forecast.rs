//! The forecasts themselves: for each transition type, the probability that it happens by
//! the horizon, from the member's own purchase process (the BG/NBD posterior's
//! P(X(t) = n) and the Gamma-Gamma spend posterior) played against the program's
//! thresholds, window and grace rules.
//!
//! A tier move is a first-passage event of qualifying amount = what is still in the
//! window + what the member adds. The window drops old amounts on known days, so the
//! amount is checked where it matters (just before and after each drop, weekly, at the
//! horizon); the probability of the union is bounded below by its most likely member,
//! and calibration (see `calibrate`) maps that bound onto observed frequencies. Every
//! approximation here is named in the README ("Tier transitions").

use btyd::{BgNbd, GammaGamma, Spend, Summary};
use loyalty_contracts::{
    Date, MILLIS_PER_DAY, MemberState, Program, QualifyingMetric, Tier, TierHold, TierWindow,
    TransitionType,
};
use serde::{Deserialize, Serialize};

/// The population models forecasts are drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    pub purchases: BgNbd,
    /// Fitted on order values in minor units.
    pub spend: GammaGamma,
    /// Days per model time unit (7: the models are fitted in weeks).
    pub unit_days: f64,
    pub version: String,
}

/// One raw (uncalibrated) forecast.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    NotApplicable(String),
    Forecast {
        probability: f64,
        /// 10th percentile, median and 90th percentile day of the transition, given it
        /// happens by the horizon.
        dates: Option<[i32; 3]>,
        target_tier: Option<String>,
        gap: Option<i64>,
    },
}

/// Where a member's tier stands on a day: the hold and the qualifying amounts still in
/// the window, by day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standing {
    pub day: i32,
    pub hold: TierHold,
    pub amounts: Vec<(i32, i64)>,
}

/// Transitions seen while walking a standing forward.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Walk {
    pub up: Option<i32>,
    pub down: Option<i32>,
    pub grace_entry: Option<i32>,
    pub reinstated: Option<i32>,
    /// Highest qualifying amount on any day walked.
    pub peak: i64,
    /// A purchase was added on some day walked.
    pub purchased: bool,
}

impl Standing {
    /// The standing a member-state describes; `None` without a tier or a purchase.
    pub fn of(state: &MemberState, program: &Program) -> Option<Standing> {
        let tier = state.tier.as_ref()?;
        let day = state.as_of.day().0;
        let amounts = match &tier.qualifying_days {
            Some(days) => days.iter().map(|d| (d.day.0, d.amount)).collect(),
            // Producers before member-state v2: the whole amount leaves with the oldest day.
            None => vec![(
                tier.window_end.day().0 - program.window_days,
                tier.qualifying_amount,
            )],
        };
        Some(Standing {
            day,
            hold: TierHold {
                tier_id: tier.tier_id.clone(),
                rank: tier.tier_rank,
                since: tier.tier_since.0,
                grace_until: tier.grace_until.map(|t| t.0),
                manual: tier.manual_override,
            },
            amounts,
        })
    }

    /// Qualifying amount on `day` from what is already recorded.
    pub fn amount_on(&self, program: &Program, day: i32) -> i64 {
        let from = program.window_start(day);
        self.amounts
            .iter()
            .filter(|(d, _)| *d >= from && *d <= day)
            .map(|(_, a)| a)
            .sum::<i64>()
            .max(0)
    }

    /// Walk day by day to `to`, adding `purchases` (day, qualifying amount) on their days
    /// and applying the program's rule each day, as if the member were evaluated daily.
    /// Returns the first day of each kind of transition.
    pub fn walk(&mut self, program: &Program, to: i32, purchases: &[(i32, i64)]) -> Walk {
        let mut seen = Walk::default();
        while self.day < to {
            self.day += 1;
            for &(day, amount) in purchases.iter().filter(|(d, _)| *d == self.day) {
                self.amounts.push((day, amount));
                seen.purchased = true;
            }
            let from = program.window_start(self.day);
            self.amounts.retain(|(d, _)| *d >= from);
            let amount = self.amount_on(program, self.day);
            seen.peak = seen.peak.max(amount);
            let now = i64::from(self.day) * MILLIS_PER_DAY;
            let Some(next) = program.evaluate_hold(Some(self.hold.clone()), amount, now) else {
                break;
            };
            let day = Some(self.day);
            if next.rank > self.hold.rank {
                seen.up = seen.up.or(day);
            } else if next.rank < self.hold.rank {
                seen.down = seen.down.or(day);
            } else if next.grace_until.is_some() && self.hold.grace_until.is_none() {
                seen.grace_entry = seen.grace_entry.or(day);
            } else if next.grace_until.is_none() && self.hold.grace_until.is_some() {
                seen.reinstated = seen.reinstated.or(day);
            }
            self.hold = next;
        }
        seen
    }
}

/// The member's purchase process from `now` on, with the conditional P(X = n) cached per
/// horizon length.
struct Outlook<'a> {
    population: &'a Population,
    p_alive: f64,
    posterior: BgNbd,
    spend: Spend,
    pmfs: Vec<(i32, Vec<f64>)>,
    /// P(n orders total at least the amount), n = 0.., per amount: the same gaps recur on
    /// every checked day between two window drops, and each is an incomplete beta.
    tails: Vec<(f64, Vec<f64>)>,
}

impl<'a> Outlook<'a> {
    fn new(population: &'a Population, state: &MemberState, now: i32) -> Option<Self> {
        let b = state.btyd.as_ref()?;
        let unit = population.unit_days;
        let t_days = now - b.first_purchase.0;
        let summary = Summary::new(
            f64::from(b.x),
            f64::from(b.t_x_days) / unit,
            f64::from(t_days.max(b.t_x_days)) / unit,
        );
        Some(Outlook {
            population,
            p_alive: population.purchases.p_alive(&summary),
            posterior: population.purchases.posterior(&summary),
            spend: Spend {
                x: f64::from(b.x),
                mean_value: b.mean_repeat_value_minor,
            },
            pmfs: Vec::new(),
            tails: Vec::new(),
        })
    }

    /// P(n purchases in the next `days`), n = 0.. until the tail is below 1e-9.
    fn pmf(&mut self, days: i32) -> &[f64] {
        let index = match self.pmfs.iter().position(|(d, _)| *d == days) {
            Some(i) => i,
            None => {
                let t = f64::from(days.max(0)) / self.population.unit_days;
                let mut len = 16;
                let pmf = loop {
                    let mut pmf = self.posterior.purchases_pmf_all(t, len);
                    for p in pmf.iter_mut() {
                        *p *= self.p_alive;
                    }
                    pmf[0] += 1.0 - self.p_alive;
                    if pmf.iter().sum::<f64>() >= 1.0 - 1e-9 || len >= 4096 {
                        break pmf;
                    }
                    len *= 2;
                };
                self.pmfs.push((days, pmf));
                self.pmfs.len() - 1
            }
        };
        &self.pmfs[index].1
    }

    /// P(the member spends at least `amount` (minor units) in the next `days`).
    fn p_spend_at_least(&mut self, days: i32, amount: f64) -> f64 {
        if amount <= 0.0 {
            return 1.0;
        }
        let len = self.pmf(days).len();
        let (spend, model) = (self.spend, self.population.spend);
        let index = match self.tails.iter().position(|(a, _)| *a == amount) {
            Some(i) => i,
            None => {
                self.tails.push((amount, Vec::new()));
                self.tails.len() - 1
            }
        };
        let tail = &mut self.tails[index].1;
        while tail.len() < len {
            let n = tail.len() as u32;
            tail.push(model.p_total_at_least(&spend, n, amount));
        }
        let tail = &self.tails[index].1;
        let pmf = self.pmf_cached(days);
        pmf.iter()
            .zip(tail)
            .skip(1)
            .map(|(p, t)| p * t)
            .sum::<f64>()
            .clamp(0.0, 1.0)
    }

    /// The PMF for `days`, already computed by [`Outlook::pmf`].
    fn pmf_cached(&self, days: i32) -> &[f64] {
        self.pmfs
            .iter()
            .find(|(d, _)| *d == days)
            .map_or(&[], |(_, p)| p.as_slice())
    }
}

/// Forecasts of every transition type for one member, in [`TransitionType::ALL`] order.
pub struct Forecaster<'a> {
    pub population: &'a Population,
    pub program: &'a Program,
    /// Bridge mark as a fraction of the next tier's threshold.
    pub bridge_fraction: f64,
}

/// A curve of (day, cumulative probability) and what it decides.
struct Curve(Vec<(i32, f64)>);

impl Curve {
    fn probability(&self) -> f64 {
        self.0.last().map_or(0.0, |&(_, p)| p)
    }

    /// The 10th, 50th and 90th percentile days of the first-passage time, given passage
    /// by the horizon, interpolated between the checked days.
    fn dates(&self, from: i32) -> Option<[i32; 3]> {
        let total = self.probability();
        if total <= 0.0 {
            return None;
        }
        let at = |q: f64| {
            let target = q * total;
            let mut previous = (from, 0.0);
            for &(day, p) in &self.0 {
                if p >= target {
                    let (d0, p0) = previous;
                    let w = if p > p0 {
                        (target - p0) / (p - p0)
                    } else {
                        1.0
                    };
                    return d0 + (w * f64::from(day - d0)).round() as i32;
                }
                previous = (day, p);
            }
            previous.0
        };
        Some([at(0.1), at(0.5), at(0.9)])
    }
}

impl Forecaster<'_> {
    /// Forecast from `state` as of day `now` (≥ its as_of) to day `horizon`.
    pub fn forecast(
        &self,
        state: &MemberState,
        now: i32,
        horizon: i32,
    ) -> Vec<(TransitionType, Raw)> {
        let na = |reason: &str| Raw::NotApplicable(reason.to_owned());
        let standing = Standing::of(state, self.program).map(|mut s| {
            s.walk(self.program, now, &[]);
            s
        });
        let mut outlook = Outlook::new(self.population, state, now);
        TransitionType::ALL
            .iter()
            .map(|&kind| {
                let raw = match (kind, &standing, &mut outlook) {
                    (TransitionType::CrossBanner, _, _) => na(
                        "member-state carries the brands a member bought from but no per-brand purchase history to forecast a first purchase at another banner",
                    ),
                    (TransitionType::CrossLocation, _, _) => {
                        na("member-state v1 carries no per-location purchases")
                    }
                    (TransitionType::CrossVertical, _, _) => {
                        na("member-state v1 carries no per-vertical purchases")
                    }
                    (TransitionType::CrossProduct, _, _) => {
                        na("member-state v1 carries no per-product-line purchases")
                    }
                    (_, _, None) => na("no purchase yet: there is no purchase process to project"),
                    (TransitionType::Stagnation, _, Some(o)) => {
                        let p = o.pmf(horizon - now)[0];
                        Raw::Forecast {
                            probability: p,
                            dates: None,
                            target_tier: None,
                            gap: None,
                        }
                    }
                    (_, None, _) => na("the member's program or tier is not known yet"),
                    (kind, Some(s), Some(o)) => self.tier_move(kind, s, o, now, horizon),
                };
                (kind, raw)
            })
            .collect()
    }

    fn tier_move(
        &self,
        kind: TransitionType,
        s: &Standing,
        o: &mut Outlook<'_>,
        now: i32,
        horizon: i32,
    ) -> Raw {
        let program = self.program;
        let tiers = program.tiers_by_rank();
        let Some(held) = tiers.iter().find(|t| t.tier_id == s.hold.tier_id).copied() else {
            return Raw::NotApplicable(format!(
                "tier {} is not in program {}",
                s.hold.tier_id, program.program_id
            ));
        };
        let next = tiers.iter().find(|t| t.rank > held.rank).copied();
        let lower = tiers.iter().rev().find(|t| t.rank < held.rank).copied();
        let grace = s
            .hold
            .grace_until
            .map(|g| g.div_euclid(MILLIS_PER_DAY) as i32);
        let amount_now = s.amount_on(program, now);
        let grid = self.grid(s, now, horizon, grace);
        let forecast = |curve: Curve, target: Option<&Tier>, gap: i64| Raw::Forecast {
            probability: curve.probability(),
            dates: curve.dates(now),
            target_tier: target.map(|t| t.tier_id.clone()),
            gap: Some(gap.max(0)),
        };
        match kind {
            TransitionType::UpTier | TransitionType::BridgeCrossing => {
                let Some(next) = next else {
                    return Raw::NotApplicable("already in the top tier".into());
                };
                let mark = if kind == TransitionType::UpTier {
                    next.threshold
                } else {
                    (self.bridge_fraction * next.threshold as f64).round() as i64
                };
                if kind == TransitionType::BridgeCrossing && amount_now >= mark {
                    return Raw::NotApplicable(format!(
                        "already past the bridge mark ({amount_now} of {mark})"
                    ));
                }
                let curve = self.reach(s, o, &grid, mark, next, horizon);
                forecast(curve, Some(next), mark - amount_now)
            }
            TransitionType::Reinstatement => match grace {
                None => Raw::NotApplicable("not in a grace period".into()),
                Some(until) => {
                    let curve = self.reach(s, o, &grid, held.threshold, held, until.min(horizon));
                    forecast(curve, Some(held), held.threshold - amount_now)
                }
            },
            TransitionType::DownTier | TransitionType::GracePeriodEntry => {
                let Some(lower) = lower else {
                    return Raw::NotApplicable(
                        "holds the entry tier: there is nothing to drop from".into(),
                    );
                };
                let lag = if kind == TransitionType::DownTier {
                    program.grace_days
                } else {
                    0
                };
                let curve = match (kind, grace) {
                    (TransitionType::GracePeriodEntry, Some(until)) => {
                        return Raw::NotApplicable(format!(
                            "already in a grace period until {}",
                            Date(until)
                        ));
                    }
                    // In grace: demoted the day after it ends unless requalified by then.
                    (_, Some(until)) if until < horizon => {
                        let p = self.p_below(s, o, until, until, held);
                        Curve(vec![(until + 1, p)])
                    }
                    (_, Some(_)) => Curve(Vec::new()),
                    (_, None) => self.fall(s, o, &grid, held, lag, now),
                };
                forecast(curve, Some(lower), held.threshold - amount_now)
            }
            TransitionType::Renewal | TransitionType::Expiration => {
                let Some(fee) = program.auto_renew_fee_minor else {
                    return Raw::NotApplicable(format!(
                        "program {} has no auto-renewing fee",
                        program.program_id
                    ));
                };
                if lower.is_none() {
                    return Raw::NotApplicable("the entry tier carries no fee to renew".into());
                }
                let since = s.hold.since.div_euclid(MILLIS_PER_DAY) as i32;
                let years = (now - since).div_euclid(365) + 1;
                let renewal = since + 365 * years;
                if renewal > horizon {
                    return Raw::NotApplicable(format!(
                        "the next renewal, on {}, is after the horizon",
                        Date(renewal)
                    ));
                }
                let t = f64::from(renewal - now) / self.population.unit_days;
                let alive = o.p_alive * o.posterior.p_alive_after(t);
                let probability = if kind == TransitionType::Renewal {
                    alive
                } else {
                    1.0 - alive
                };
                Raw::Forecast {
                    probability: probability.clamp(0.0, 1.0),
                    dates: Some([renewal; 3]),
                    target_tier: Some(held.tier_id.clone()),
                    gap: Some(fee),
                }
            }
            _ => Raw::NotApplicable("not a tier move".into()),
        }
    }

    /// Days where a first passage is decided: weekly, the horizon, and either side of each
    /// day the window drops an amount (and of grace expiry).
    fn grid(&self, s: &Standing, now: i32, horizon: i32, grace: Option<i32>) -> Vec<i32> {
        let program = self.program;
        let mut days: Vec<i32> = (1..)
            .map(|w| now + 7 * w)
            .take_while(|d| *d < horizon)
            .collect();
        days.push(horizon);
        let mut edges: Vec<i32> = match program.window {
            TierWindow::Rolling => s
                .amounts
                .iter()
                .map(|(d, _)| d + program.window_days)
                .collect(),
            TierWindow::CalendarYear => {
                let (year, _, _) = Date(now).ymd();
                Date::from_ymd(year + 1, 1, 1)
                    .map(|d| d.0)
                    .into_iter()
                    .collect()
            }
        };
        edges.extend(grace);
        edges.push(horizon - program.grace_days);
        for e in edges {
            days.extend([e - 1, e, e + program.grace_days]);
        }
        days.retain(|d| *d > now && *d <= horizon);
        days.sort_unstable();
        days.dedup();
        days
    }

    /// Days of future spend that still count on `day`.
    fn counted_days(&self, now: i32, day: i32) -> i32 {
        day - now.max(self.program.window_start(day) - 1)
    }

    /// Future spend (minor units) needed to add `amount` of the program's metric.
    fn spend_for(&self, tier: &Tier, amount: i64) -> f64 {
        match self.program.qualifying_metric {
            QualifyingMetric::Spend => amount as f64,
            QualifyingMetric::Points => {
                let per_minor = self.program.points_per_minor(tier.earn_multiplier);
                if per_minor > 0.0 {
                    amount as f64 / per_minor
                } else {
                    f64::INFINITY
                }
            }
        }
    }

    /// P(the amount reaches `mark` on some day up to `until`), as a running maximum.
    fn reach(
        &self,
        s: &Standing,
        o: &mut Outlook<'_>,
        grid: &[i32],
        mark: i64,
        tier: &Tier,
        until: i32,
    ) -> Curve {
        let now = s.day;
        let mut best: f64 = 0.0;
        let mut curve = Vec::new();
        for &day in grid.iter().filter(|d| **d <= until) {
            let needed = mark - s.amount_on(self.program, day);
            let p = o.p_spend_at_least(self.counted_days(now, day), self.spend_for(tier, needed));
            best = best.max(p);
            curve.push((day, best));
        }
        Curve(curve)
    }

    /// P(the amount is below `held`'s threshold on `check` and what is added through `day`
    /// does not lift it): implies being below throughout.
    fn p_below(&self, s: &Standing, o: &mut Outlook<'_>, check: i32, day: i32, held: &Tier) -> f64 {
        let needed = held.threshold - s.amount_on(self.program, check);
        if needed <= 0 {
            return 0.0;
        }
        let days = self.counted_days(s.day, day);
        1.0 - o.p_spend_at_least(days, self.spend_for(held, needed))
    }

    /// P(the amount falls below `held`'s threshold and stays there for `lag` days, by each
    /// grid day), as a running maximum.
    fn fall(
        &self,
        s: &Standing,
        o: &mut Outlook<'_>,
        grid: &[i32],
        held: &Tier,
        lag: i32,
        now: i32,
    ) -> Curve {
        let mut best: f64 = 0.0;
        let mut curve = Vec::new();
        for &day in grid.iter().filter(|d| **d - lag >= now) {
            best = best.max(self.p_below(s, o, day - lag, day, held));
            curve.push((day, best));
        }
        Curve(curve)
    }
}
