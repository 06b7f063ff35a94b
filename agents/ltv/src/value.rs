//! Decay: a member's expected value month by month from their own purchase process —
//! BG/NBD for how many purchases (and whether they are still alive), Gamma-Gamma for what
//! each is worth — and the baseline horizons summed from it.
//!
//! Time runs from the member-state's `as_of` (event time), so a replay scores alike.

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

/// One member valued under one population model.
#[derive(Debug, Clone, PartialEq)]
pub struct Valuation {
    pub p_alive: f64,
    pub order_value_minor: f64,
    /// Per month over the lifetime horizon: (P(alive) at its end, expected transactions,
    /// discount factor at its end).
    pub months: Vec<(f64, f64, f64)>,
    pub revenue_12m: f64,
    pub revenue_36m: f64,
    pub lifetime_revenue: f64,
    pub margin_ratio: f64,
}

impl Valuation {
    /// The member's value under `model`, if the member has bought at all.
    pub fn of(
        model: &Published,
        btyd: &BtydSummary,
        own_mean_value_minor: f64,
        margin_ratio: f64,
        horizon: Horizon,
    ) -> Option<Valuation> {
        let unit = model.unit_days;
        let summary = Summary::new(
            f64::from(btyd.x),
            f64::from(btyd.t_x_days) / unit,
            f64::from(btyd.t_days.max(btyd.t_x_days)) / unit,
        );
        if summary.problem().is_some() {
            return None;
        }
        let purchases = &model.purchases;
        let p_alive = purchases.p_alive(&summary);
        let posterior = purchases.posterior(&summary);
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
        let monthly_discount = (1.0 + horizon.annual_discount_rate).powf(-1.0 / 12.0);
        let months_total = horizon.lifetime_months.max(CURVE_MONTHS);
        let mut months = Vec::with_capacity(months_total);
        let mut cumulative = 0.0;
        let mut discount = 1.0;
        for m in 1..=months_total {
            let t = m as f64 * MONTH_DAYS / unit;
            let expected = p_alive * posterior.expected_purchases(t)?;
            discount *= monthly_discount;
            months.push((
                p_alive * posterior.p_alive_after(t),
                (expected - cumulative).max(0.0),
                discount,
            ));
            cumulative = expected;
        }
        let sum = |n: usize, discounted: bool| -> f64 {
            months
                .iter()
                .take(n)
                .map(|(_, tx, d)| tx * order_value_minor * if discounted { *d } else { 1.0 })
                .sum()
        };
        Some(Valuation {
            p_alive,
            order_value_minor,
            revenue_12m: sum(12, false),
            revenue_36m: sum(36, false),
            lifetime_revenue: sum(months_total, true),
            margin_ratio,
            months,
        })
    }

    pub fn lifetime_margin(&self) -> f64 {
        self.lifetime_revenue * self.margin_ratio
    }

    /// Σ over the lifetime horizon of P(alive) × discount, in months: how long, in
    /// today's money, the member is expected to stay.
    pub fn discounted_alive_months(&self) -> f64 {
        self.months.iter().map(|(alive, _, d)| alive * d).sum()
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
        self.months
            .iter()
            .take(CURVE_MONTHS)
            .enumerate()
            .map(|(i, (alive, tx, _))| DecayPoint {
                month: i as i32 + 1,
                p_alive: *alive,
                expected_transactions: *tx,
                revenue_minor: minor(tx * self.order_value_minor),
                margin_minor: minor(tx * self.order_value_minor * self.margin_ratio),
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
    use btyd::{BgNbd, GammaGamma};
    use loyalty_contracts::Date;

    fn cdnow() -> Published {
        Published {
            purchases: BgNbd {
                r: 0.2426,
                alpha: 4.4136,
                a: 0.7929,
                b: 2.4259,
            },
            spend: Some(GammaGamma {
                p: 6.2496,
                q: 3.7442,
                gamma: 15.4435,
            }),
            unit_days: 7.0,
            version: "cdnow".into(),
        }
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
        let v = Valuation::of(&model, &b, 30.0, 0.3, HORIZON).unwrap();
        let summary = Summary::new(2.0, 213.0 / 7.0, 272.0 / 7.0);
        let twelve: f64 = v.months.iter().take(12).map(|m| m.1).sum();
        let direct = model
            .purchases
            .conditional_expected_purchases(&summary, 12.0 * MONTH_DAYS / 7.0)
            .unwrap();
        assert!((twelve - direct).abs() < 1e-9, "{twelve} vs {direct}");
        assert_eq!(v.months.len(), 120);
        // Discounting makes the lifetime less than the undiscounted sum, more than 36 months'.
        let undiscounted: f64 = v.months.iter().map(|m| m.1 * v.order_value_minor).sum();
        assert!(v.lifetime_revenue < undiscounted && v.lifetime_revenue > v.revenue_36m * 0.8);
        // P(alive) falls month by month.
        assert!(v.months.windows(2).all(|w| w[1].0 <= w[0].0 + 1e-12));
        assert!(v.months[0].0 <= v.p_alive + 1e-12);
    }

    #[test]
    fn a_lapsed_member_is_worth_less_than_an_active_one_with_the_same_history() {
        let model = cdnow();
        let active = Valuation::of(&model, &member(4, 37.0, 38.0, 40.0), 40.0, 0.3, HORIZON);
        let lapsed = Valuation::of(&model, &member(4, 5.0, 38.0, 40.0), 40.0, 0.3, HORIZON);
        let (active, lapsed) = (active.unwrap(), lapsed.unwrap());
        assert!(lapsed.p_alive < active.p_alive);
        assert!(lapsed.lifetime_revenue < active.lifetime_revenue);
        let h = active.horizons();
        assert!(h.revenue_12m_minor <= h.revenue_36m_minor);
        assert!(h.margin_36m_minor < h.revenue_36m_minor);
        assert_eq!(active.decay_curve().len(), CURVE_MONTHS);
    }
}
