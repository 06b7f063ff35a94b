//! Decay: a member's expected value month by month from their own purchase process —
//! BG/NBD for how many purchases (and whether they are still alive), Gamma-Gamma for what
//! each is worth — and the baseline horizons summed from it.
//!
//! Time runs from the member-state's `as_of` (event time), so a replay scores alike.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use btyd::params::Published;
use btyd::{Spend, Summary};
use loyalty_contracts::{BtydSummary, DecayPoint, ValueHorizons};

/// Days per month: a Julian year over twelve.
pub const MONTH_DAYS: f64 = 365.25 / 12.0;
/// Months in the published decay curve.
pub const CURVE_MONTHS: usize = 36;

/// How far and how steeply value is counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Horizon {
    /// Months the discounted lifetime value runs over (at least 36).
    pub lifetime_months: usize,
    /// Annual discount rate for the lifetime value (0.1 = 10%).
    pub annual_discount_rate: f64,
}

/// The few numbers of a valuation that adjustments and reconciliation read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Worth {
    pub revenue_12m: f64,
    pub lifetime_revenue: f64,
    pub lifetime_margin: f64,
    /// Discounted expected alive months over the lifetime horizon (0 if not computed).
    pub alive_months: f64,
}

/// What a record shows of the baseline valuation, kept so that a change on another side
/// of the join does not repeat it.
#[derive(Debug, Clone, PartialEq)]
pub struct Valued {
    pub p_alive: f64,
    pub order_value_minor: f64,
    pub horizons: ValueHorizons,
    pub decay_curve: Vec<DecayPoint>,
    pub worth: Worth,
}

/// A stretch of the future: a month within the curve, a year beyond it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    pub months: usize,
    /// P(alive) at the period's end.
    pub alive_at_end: f64,
    /// Expected transactions within the period.
    pub transactions: f64,
    /// Discount factor at the period's middle.
    pub discount: f64,
}

/// A member's expected purchases period by period under one fit: the expensive part of a
/// valuation (Gauss hypergeometric series), shared by every member with the same summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub p_alive: f64,
    /// Monthly periods over the first 36 months (with a curve), yearly after that, to the
    /// lifetime horizon.
    pub periods: Vec<Period>,
}

impl Schedule {
    /// With `curve`, monthly periods over the first 36 months and P(alive) at each
    /// period's end (what a record shows); without, yearly periods and no P(alive) (left
    /// 0) — enough for the 12-month, 36-month and lifetime sums at a quarter of the cost.
    pub fn of(
        model: &Published,
        x: i32,
        t_x_days: i32,
        t_days: i32,
        horizon: Horizon,
        curve: bool,
    ) -> Option<Schedule> {
        let unit = model.unit_days;
        let summary = Summary::new(
            f64::from(x),
            f64::from(t_x_days) / unit,
            f64::from(t_days.max(t_x_days)) / unit,
        );
        if summary.problem().is_some() {
            return None;
        }
        let purchases = &model.purchases;
        let p_alive = purchases.p_alive(&summary);
        let posterior = purchases.posterior(&summary);
        let monthly_discount = (1.0 + horizon.annual_discount_rate).powf(-1.0 / 12.0);
        let months_total = horizon.lifetime_months.max(CURVE_MONTHS);
        // Monthly over the published curve, then by year (later years change slowly): the
        // last period may be shorter than a year.
        let first = if curve { CURVE_MONTHS } else { 0 };
        let mut ends: Vec<usize> = (1..=first).collect();
        let mut end = first;
        while end < months_total {
            end = (end + 12).min(months_total);
            ends.push(end);
        }
        let mut periods = Vec::with_capacity(ends.len());
        let (mut cumulative, mut previous) = (0.0, 0);
        for m in ends {
            let t = m as f64 * MONTH_DAYS / unit;
            let expected = p_alive * posterior.expected_purchases(t)?;
            periods.push(Period {
                months: m - previous,
                alive_at_end: if curve {
                    p_alive * posterior.p_alive_after(t)
                } else {
                    0.0
                },
                transactions: (expected - cumulative).max(0.0),
                // Discounted at the period's middle month.
                discount: monthly_discount.powf((previous + m + 1) as f64 / 2.0),
            });
            cumulative = expected;
            previous = m;
        }
        Some(Schedule { p_alive, periods })
    }
}

/// Schedules by fit version and summary. Bounded: cleared when it outgrows its capacity
/// (a new fit makes the old entries useless anyway).
#[derive(Debug, Default)]
pub struct ScheduleCache {
    entries: Mutex<HashMap<ScheduleKey, Arc<Schedule>>>,
}

/// Fit version, x, t_x days, T days, with the monthly curve.
type ScheduleKey = (String, i32, i32, i32, bool);

const SCHEDULE_CACHE_CAPACITY: usize = 200_000;

impl ScheduleCache {
    pub fn get(
        &self,
        model: &Published,
        x: i32,
        t_x_days: i32,
        t_days: i32,
        horizon: Horizon,
        curve: bool,
    ) -> Option<Arc<Schedule>> {
        let key = (model.version.clone(), x, t_x_days, t_days, curve);
        if let Some(hit) = self.entries.lock().ok().and_then(|e| e.get(&key).cloned()) {
            return Some(hit);
        }
        let schedule = Arc::new(Schedule::of(model, x, t_x_days, t_days, horizon, curve)?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= SCHEDULE_CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(key, schedule.clone());
        }
        Some(schedule)
    }
}

/// One member valued under one population model.
#[derive(Debug, Clone, PartialEq)]
pub struct Valuation {
    pub p_alive: f64,
    pub order_value_minor: f64,
    pub schedule: Arc<Schedule>,
    pub revenue_12m: f64,
    pub revenue_36m: f64,
    pub lifetime_revenue: f64,
    pub margin_ratio: f64,
}

impl Valuation {
    /// The member's value under `model` at `t_days` after their first purchase, if they
    /// have bought at all (see [`Schedule::of`] for `curve`).
    #[allow(clippy::too_many_arguments)]
    pub fn of(
        model: &Published,
        btyd: &BtydSummary,
        t_days: i32,
        own_mean_value_minor: f64,
        margin_ratio: f64,
        horizon: Horizon,
        curve: bool,
        cache: &ScheduleCache,
    ) -> Option<Valuation> {
        let schedule = cache.get(model, btyd.x, btyd.t_x_days, t_days, horizon, curve)?;
        // Without a spend model, the member's own mean transaction value.
        let order_value_minor = match &model.spend {
            Some(spend) if btyd.x > 0 => spend.conditional_expected_value(&Spend {
                x: f64::from(btyd.x),
                mean_value: btyd.mean_repeat_value_minor,
            }),
            Some(spend) => spend.conditional_expected_value(&Spend {
                x: 0.0,
                mean_value: 0.0,
            }),
            None => own_mean_value_minor,
        };
        let months_total: usize = schedule.periods.iter().map(|p| p.months).sum();
        let sum = |n: usize, discounted: bool| -> f64 {
            let mut covered = 0;
            schedule
                .periods
                .iter()
                .take_while(|p| {
                    covered += p.months;
                    covered <= n
                })
                .map(|p| {
                    p.transactions * order_value_minor * if discounted { p.discount } else { 1.0 }
                })
                .sum()
        };
        Some(Valuation {
            p_alive: schedule.p_alive,
            order_value_minor,
            revenue_12m: sum(12, false),
            revenue_36m: sum(36, false),
            lifetime_revenue: sum(months_total, true),
            margin_ratio,
            schedule,
        })
    }

    pub fn lifetime_margin(&self) -> f64 {
        self.lifetime_revenue * self.margin_ratio
    }

    pub fn worth(&self) -> Worth {
        Worth {
            revenue_12m: self.revenue_12m,
            lifetime_revenue: self.lifetime_revenue,
            lifetime_margin: self.lifetime_margin(),
            alive_months: self.discounted_alive_months(),
        }
    }

    pub fn valued(&self) -> Valued {
        Valued {
            p_alive: self.p_alive,
            order_value_minor: self.order_value_minor,
            horizons: self.horizons(),
            decay_curve: self.decay_curve(),
            worth: self.worth(),
        }
    }

    /// Σ over the lifetime horizon of P(alive) × discount, in months: how long, in
    /// today's money, the member is expected to stay.
    pub fn discounted_alive_months(&self) -> f64 {
        self.schedule
            .periods
            .iter()
            .map(|p| p.months as f64 * p.alive_at_end * p.discount)
            .sum()
    }

    pub fn horizons(&self) -> ValueHorizons {
        let m = self.margin_ratio;
        ValueHorizons {
            revenue_12m_minor: minor(self.revenue_12m),
            margin_12m_minor: minor(self.revenue_12m * m),
            revenue_36m_minor: minor(self.revenue_36m),
            margin_36m_minor: minor(self.revenue_36m * m),
            lifetime_revenue_minor: minor(self.lifetime_revenue),
            lifetime_margin_minor: minor(self.lifetime_revenue * m),
        }
    }

    pub fn decay_curve(&self) -> Vec<DecayPoint> {
        self.schedule
            .periods
            .iter()
            .take(CURVE_MONTHS)
            .enumerate()
            .map(|(i, p)| DecayPoint {
                month: i as i32 + 1,
                p_alive: p.alive_at_end,
                expected_transactions: p.transactions,
                revenue_minor: minor(p.transactions * self.order_value_minor),
                margin_minor: minor(p.transactions * self.order_value_minor * self.margin_ratio),
            })
            .collect()
    }
}

/// An amount in minor units, rounded to the nearest unit.
pub fn minor(value: f64) -> i64 {
    if value.is_finite() {
        value.round() as i64
    } else {
        0
    }
}

/// Zero value, for members with no purchase or no usable model.
pub fn zero_horizons() -> ValueHorizons {
    ValueHorizons {
        revenue_12m_minor: 0,
        margin_12m_minor: 0,
        revenue_36m_minor: 0,
        margin_36m_minor: 0,
        lifetime_revenue_minor: 0,
        lifetime_margin_minor: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_contracts::Date;

    fn cdnow() -> Published {
        crate::testkit::cdnow_model("cdnow")
    }

    fn member(x: i32, t_x_weeks: f64, t_weeks: f64, mean: f64) -> BtydSummary {
        BtydSummary {
            x,
            t_x_days: (t_x_weeks * 7.0).round() as i32,
            t_days: (t_weeks * 7.0).round() as i32,
            first_purchase: Date(9862),
            last_purchase: Date(9862 + (t_x_weeks * 7.0).round() as i32),
            mean_repeat_value_minor: mean,
        }
    }

    const HORIZON: Horizon = Horizon {
        lifetime_months: 120,
        annual_discount_rate: 0.1,
    };

    #[test]
    fn monthly_transactions_add_up_to_the_conditional_expectation() {
        let model = cdnow();
        let b = member(2, 30.43, 38.86, 30.0);
        let v = Valuation::of(
            &model,
            &b,
            b.t_days,
            30.0,
            0.3,
            HORIZON,
            true,
            &ScheduleCache::default(),
        )
        .unwrap();
        let summary = Summary::new(2.0, 213.0 / 7.0, 272.0 / 7.0);
        let twelve: f64 = v
            .schedule
            .periods
            .iter()
            .take(12)
            .map(|m| m.transactions)
            .sum();
        let direct = model
            .purchases
            .conditional_expected_purchases(&summary, 12.0 * MONTH_DAYS / 7.0)
            .unwrap();
        assert!((twelve - direct).abs() < 1e-9, "{twelve} vs {direct}");
        // 36 months, then the remaining 84 by year.
        assert_eq!(v.schedule.periods.len(), 36 + 7);
        assert_eq!(
            v.schedule.periods.iter().map(|p| p.months).sum::<usize>(),
            120
        );
        // The periods' transactions add up to the expectation over the whole horizon.
        let all: f64 = v.schedule.periods.iter().map(|m| m.transactions).sum();
        let direct = model
            .purchases
            .conditional_expected_purchases(&summary, 120.0 * MONTH_DAYS / 7.0)
            .unwrap();
        assert!((all - direct).abs() < 1e-9, "{all} vs {direct}");
        // Discounting makes the lifetime less than the undiscounted sum, more than 36 months'.
        let undiscounted = all * v.order_value_minor;
        assert!(v.lifetime_revenue < undiscounted && v.lifetime_revenue > v.revenue_36m * 0.8);
        // P(alive) falls period by period.
        assert!(
            v.schedule
                .periods
                .windows(2)
                .all(|w| w[1].alive_at_end <= w[0].alive_at_end + 1e-12)
        );
        assert!(v.schedule.periods[0].alive_at_end <= v.p_alive + 1e-12);
    }

    #[test]
    fn yearly_periods_give_the_same_sums_as_the_monthly_curve() {
        let model = cdnow();
        let b = member(5, 30.0, 38.0, 45.0);
        let cache = ScheduleCache::default();
        let curve = Valuation::of(&model, &b, b.t_days, 45.0, 0.3, HORIZON, true, &cache).unwrap();
        let yearly =
            Valuation::of(&model, &b, b.t_days, 45.0, 0.3, HORIZON, false, &cache).unwrap();
        assert_eq!(yearly.schedule.periods.len(), 10);
        assert!((curve.revenue_12m - yearly.revenue_12m).abs() < 1e-6);
        assert!((curve.revenue_36m - yearly.revenue_36m).abs() < 1e-6);
        // Discounting at mid-year instead of mid-month moves the lifetime a little.
        let relative = (curve.lifetime_revenue - yearly.lifetime_revenue) / curve.lifetime_revenue;
        assert!(relative.abs() < 0.01, "{relative}");
    }

    #[test]
    fn a_lapsed_member_is_worth_less_than_an_active_one_with_the_same_history() {
        let model = cdnow();
        let (a, l) = (member(4, 37.0, 38.0, 40.0), member(4, 5.0, 38.0, 40.0));
        let cache = ScheduleCache::default();
        let active = Valuation::of(&model, &a, a.t_days, 40.0, 0.3, HORIZON, true, &cache);
        let lapsed = Valuation::of(&model, &l, l.t_days, 40.0, 0.3, HORIZON, true, &cache);
        let (active, lapsed) = (active.unwrap(), lapsed.unwrap());
        assert!(lapsed.p_alive < active.p_alive);
        assert!(lapsed.lifetime_revenue < active.lifetime_revenue);
        let h = active.horizons();
        assert!(h.revenue_12m_minor <= h.revenue_36m_minor);
        assert!(h.margin_36m_minor < h.revenue_36m_minor);
        assert_eq!(active.decay_curve().len(), CURVE_MONTHS);
    }
}
