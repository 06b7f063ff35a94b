//! Reconciliation: the member's 12-month revenue as three independent views imply it —
//! their own purchase history (the baseline), the tier forecast (the mean value of members
//! in each tier the member may hold by the horizon, weighted by its probability) and the
//! cohort (the mean value of members in the same RFM segment). The views are combined
//! into one value, scored for coherence, and every pair further apart than the tolerance
//! is named, so an analyst sees which view disagrees and by how much.

use loyalty_contracts::{Discrepancy, Reconciliation};

use crate::value::minor;

/// How much each view counts in the reconciled value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub own_history: f64,
    pub tier_forecast: f64,
    pub cohort: f64,
}

/// The three views, each absent when its input has not arrived.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Views {
    pub own_history: Option<f64>,
    pub tier_forecast: Option<f64>,
    pub cohort: Option<f64>,
}

/// |a - b| relative to the larger magnitude; 0 when both are 0.
pub fn relative_difference(a: f64, b: f64) -> f64 {
    let scale = a.abs().max(b.abs());
    if scale == 0.0 {
        0.0
    } else {
        (a - b).abs() / scale
    }
}

pub fn reconcile(views: Views, weights: Weights, tolerance: f64) -> Reconciliation {
    let named = [
        ("own_history", views.own_history, weights.own_history),
        ("tier_forecast", views.tier_forecast, weights.tier_forecast),
        ("cohort", views.cohort, weights.cohort),
    ];
    let present: Vec<(&str, f64, f64)> = named
        .iter()
        .filter_map(|(name, v, w)| v.map(|v| (*name, v, *w)))
        .collect();
    let total_weight: f64 = present.iter().map(|(_, _, w)| w).sum();
    let reconciled = if total_weight > 0.0 {
        present.iter().map(|(_, v, w)| v * w).sum::<f64>() / total_weight
    } else {
        0.0
    };
    let coherence = if present.len() < 2 || total_weight <= 0.0 {
        1.0
    } else {
        let deviation = present
            .iter()
            .map(|(_, v, w)| w * relative_difference(*v, reconciled))
            .sum::<f64>()
            / total_weight;
        (1.0 - deviation).clamp(0.0, 1.0)
    };
    let mut discrepancies = Vec::new();
    for i in 0..present.len() {
        for j in i + 1..present.len() {
            let ((left, a, _), (right, b, _)) = (present[i], present[j]);
            let difference = relative_difference(a, b);
            if difference > tolerance {
                discrepancies.push(Discrepancy {
                    between: format!("{left}_vs_{right}"),
                    left_minor: minor(a),
                    right_minor: minor(b),
                    relative_difference: difference,
                });
            }
        }
    }
    Reconciliation {
        own_history_minor: views.own_history.map(minor),
        tier_forecast_minor: views.tier_forecast.map(minor),
        cohort_minor: views.cohort.map(minor),
        reconciled_minor: minor(reconciled),
        coherence,
        discrepancies,
        tolerance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEIGHTS: Weights = Weights {
        own_history: 0.6,
        tier_forecast: 0.2,
        cohort: 0.2,
    };

    fn views(own: f64, tier: f64, cohort: f64) -> Views {
        Views {
            own_history: Some(own),
            tier_forecast: Some(tier),
            cohort: Some(cohort),
        }
    }

    #[test]
    fn agreeing_members_are_not_flagged() {
        let r = reconcile(views(10_000.0, 10_400.0, 9_700.0), WEIGHTS, 0.5);
        assert!(r.discrepancies.is_empty(), "{r:?}");
        assert!(r.coherence > 0.97);
        assert_eq!(r.reconciled_minor, 10_020);
    }

    #[test]
    fn the_source_that_disagrees_is_named() {
        // The cohort says this member is worth far less than their own history and tier do.
        let r = reconcile(views(10_000.0, 9_000.0, 1_000.0), WEIGHTS, 0.5);
        let pairs: Vec<&str> = r.discrepancies.iter().map(|d| d.between.as_str()).collect();
        assert_eq!(pairs, ["own_history_vs_cohort", "tier_forecast_vs_cohort"]);
        assert_eq!(r.discrepancies[0].left_minor, 10_000);
        assert_eq!(r.discrepancies[0].right_minor, 1_000);
        assert!((r.discrepancies[0].relative_difference - 0.9).abs() < 1e-12);
        assert!(r.coherence < 0.8);
        // Own history against the tier forecast alone.
        let r = reconcile(views(10_000.0, 30_000.0, 11_000.0), WEIGHTS, 0.5);
        let pairs: Vec<&str> = r.discrepancies.iter().map(|d| d.between.as_str()).collect();
        assert_eq!(
            pairs,
            ["own_history_vs_tier_forecast", "tier_forecast_vs_cohort"]
        );
    }

    #[test]
    fn missing_views_are_left_out_not_counted_as_zero() {
        let r = reconcile(
            Views {
                own_history: Some(5_000.0),
                tier_forecast: None,
                cohort: None,
            },
            WEIGHTS,
            0.5,
        );
        assert_eq!((r.reconciled_minor, r.coherence), (5_000, 1.0));
        assert!(r.discrepancies.is_empty() && r.cohort_minor.is_none());
    }
}
