//! Forecast quality on real data (issue 3): the whole CDNOW history through the real
//! customer-graph fold up to 1997-09-30 with the demo tier program, population models
//! fitted on that calibration period, up-tier and down-tier forecast for 1998-06-30 and
//! resolved against what the members really bought.
//!
//! Calibrators are fitted on the resolved forecasts of half the members (split by a hash
//! of the member id) and every score is reported on the other half. The model must beat
//! a naive baseline (each member's calibration-period spend rate extrapolated linearly,
//! through the same tier rules) on Brier score, and calibration must lower the expected
//! calibration error.

use crate::common;

use std::collections::HashMap;

use loyalty_contracts::{Date, TransitionType};
use swarm::cdnow;
use tier_transition::calibrate::{Resolved, Scores, choose, score};
use tier_transition::forecast::{Forecaster, Population, Raw, Standing};

struct Case {
    evaluation: bool,
    model: f64,
    baseline: f64,
    happened: bool,
}

fn show(name: &str, s: &Scores) {
    eprintln!(
        "  {name:<22} n={:>5} positives={:>4} brier={:.4} log_loss={:.4} ece={:.4} auc={:.3}",
        s.count, s.positives, s.brier, s.log_loss, s.ece, s.auc
    );
}

#[serial_test::serial]
#[test]
fn up_and_down_tier_forecasts_beat_the_baseline_and_calibration_helps() {
    let file = common::data("CDNOW_master.txt");
    let calibration_end = Date::from_ymd(1997, 9, 30).unwrap();
    let horizon = Date::from_ymd(1998, 6, 30).unwrap();
    let program = cdnow::demo_program();

    let states: Vec<_> = common::reference_bodies_until(&file, Some(calibration_end))
        .values()
        .map(|body| common::decode_state(body))
        .collect();
    assert_eq!(states.len(), 23_570);

    // Population fits on the calibration period, in weeks and minor units.
    let (purchases, spend) = btyd::params::fit_member_states(&states, calibration_end).unwrap();
    let spend = spend.unwrap();
    assert!(
        purchases.converged && spend.converged,
        "{purchases:?} {spend:?}"
    );
    let population = Population {
        purchases: purchases.model,
        spend: spend.model,
        unit_days: btyd::params::WEEK,
        version: "cdnow-1997-09-30".into(),
    };
    let forecaster = Forecaster {
        population: &population,
        program: &program,
        bridge_fraction: 0.8,
    };

    // What really happened after the calibration end, per member.
    let mut holdout: HashMap<String, Vec<(i32, i64)>> = HashMap::new();
    for p in cdnow::read_purchases(&file).unwrap() {
        if p.day > calibration_end && p.day <= horizon {
            holdout
                .entry(p.customer.clone())
                .or_default()
                .push((p.day.0, p.amount_minor));
        }
    }

    let mut cases: HashMap<TransitionType, Vec<Case>> = HashMap::new();
    for state in &states {
        let forecasts = forecaster.forecast(state, calibration_end.0, horizon.0);
        let Some(mut standing) = Standing::of(state, &program) else {
            continue;
        };
        standing.walk(&program, calibration_end.0, &[]);
        let start = standing.clone();
        let real = standing.walk(
            &program,
            horizon.0,
            holdout.get(&state.member_id).map_or(&[], Vec::as_slice),
        );
        // The naive baseline: the calibration-period spend rate, every day, through the
        // same tier rules; a yes/no forecast.
        let b = state.btyd.as_ref().unwrap();
        let rate = state.spend_minor / i64::from((calibration_end.0 - b.first_purchase.0).max(1));
        let projected: Vec<(i32, i64)> = (calibration_end.0 + 1..=horizon.0)
            .map(|d| (d, rate))
            .collect();
        let naive = start.clone().walk(&program, horizon.0, &projected);
        for (kind, raw) in forecasts {
            let (happened, baseline) = match kind {
                TransitionType::UpTier => (real.up.is_some(), naive.up.is_some()),
                TransitionType::DownTier => (real.down.is_some(), naive.down.is_some()),
                _ => continue,
            };
            if let Raw::Forecast { probability, .. } = raw {
                assert!((0.0..=1.0).contains(&probability), "{probability}");
                cases.entry(kind).or_default().push(Case {
                    evaluation: loyalty_contracts::fnv1a(&state.member_id) % 2 == 1,
                    model: probability,
                    baseline: if baseline { 1.0 } else { 0.0 },
                    happened,
                });
            }
        }
    }

    for kind in [TransitionType::UpTier, TransitionType::DownTier] {
        let cases = &cases[&kind];
        let fit: Vec<Resolved> = cases
            .iter()
            .filter(|c| !c.evaluation)
            .map(|c| Resolved::one(c.model, c.happened))
            .collect();
        let choice = choose(&fit);
        let evaluation: Vec<&Case> = cases.iter().filter(|c| c.evaluation).collect();
        let pairs = |f: &dyn Fn(&Case) -> f64| -> Vec<(f64, bool)> {
            evaluation.iter().map(|c| (f(c), c.happened)).collect()
        };
        let raw = score(&pairs(&|c| c.model));
        let calibrated = score(&pairs(&|c| choice.calibrator.apply(c.model)));
        let baseline = score(&pairs(&|c| c.baseline));
        eprintln!(
            "{}: calibrator {} (held-out log loss {:?})",
            kind.label(),
            choice.calibrator.name(),
            choice.held_out_log_loss
        );
        show("model, raw", &raw);
        show("model, calibrated", &calibrated);
        show("linear baseline", &baseline);
        assert!(
            raw.positives > 20,
            "{}: too few transitions to judge",
            kind.label()
        );
        assert!(
            calibrated.brier < baseline.brier,
            "{}: model Brier {} does not beat the baseline's {}",
            kind.label(),
            calibrated.brier,
            baseline.brier
        );
        assert!(
            calibrated.ece < raw.ece,
            "{}: calibration did not lower ECE ({} → {})",
            kind.label(),
            raw.ece,
            calibrated.ece
        );
        assert!(
            calibrated.auc > 0.7,
            "{}: AUC {}",
            kind.label(),
            calibrated.auc
        );
    }
}
