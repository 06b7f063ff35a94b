//! Holdout sanity on the full CDNOW master file (23,570 customers): fit BG/NBD on the
//! 39-week calibration period ending 1997-09-30, forecast each customer's repeat
//! transactions for weeks 40–78 (1997-10-01..1998-06-30) and compare with what they did.
//! `cargo test -p btyd --test holdout -- --nocapture` prints the report quoted in the
//! README.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use btyd::cdnow::{read_purchases, summarise};
use btyd::{BgNbd, group};
use loyalty_contracts::Date;

#[test]
fn weeks_40_to_78_forecast_against_what_happened() {
    let file = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../../data/cdnow/CDNOW_master.txt");
    let purchases = read_purchases(&file).unwrap();
    let calibration_end = Date::from_ymd(1997, 9, 30).unwrap();
    let holdout_end = Date::from_ymd(1998, 6, 30).unwrap();
    let holdout_weeks = f64::from(holdout_end.0 - calibration_end.0) / 7.0;
    let customers = summarise(&purchases, calibration_end, 7.0);
    assert_eq!(customers.len(), 23_570);
    let fit = BgNbd::fit(&group(customers.iter().map(|c| c.summary))).unwrap();
    assert!(fit.converged);

    // Transactions in the holdout: distinct purchase days after the calibration end.
    let mut days: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for p in purchases
        .iter()
        .filter(|p| p.day > calibration_end && p.day <= holdout_end)
    {
        days.entry(&p.customer).or_default().insert(p.day.0);
    }
    // Per calibration frequency x (7+ together): customers, forecast and actual totals.
    let mut by_x: BTreeMap<usize, (usize, f64, f64)> = BTreeMap::new();
    let (mut forecast, mut actual, mut abs_error) = (0.0, 0.0, 0.0);
    for c in &customers {
        let f = fit
            .model
            .conditional_expected_purchases(&c.summary, holdout_weeks)
            .unwrap();
        let a = days.get(c.customer.as_str()).map_or(0, BTreeSet::len) as f64;
        forecast += f;
        actual += a;
        abs_error += (f - a).abs();
        let row = by_x.entry((c.summary.x as usize).min(7)).or_default();
        row.0 += 1;
        row.1 += f;
        row.2 += a;
    }
    let relative = (forecast - actual) / actual;
    println!(
        "BG/NBD r {:.4} alpha {:.4} a {:.4} b {:.4}; holdout {holdout_weeks:.1} weeks",
        fit.model.r, fit.model.alpha, fit.model.a, fit.model.b
    );
    println!(
        "repeat transactions weeks 40-78: forecast {forecast:.0}, actual {actual:.0}, error {:+.1}%; mean absolute error per customer {:.3}",
        relative * 100.0,
        abs_error / customers.len() as f64
    );
    println!("x in calibration | customers | forecast mean | actual mean");
    for (x, (n, f, a)) in &by_x {
        let label = if *x == 7 {
            "7+".to_owned()
        } else {
            x.to_string()
        };
        println!(
            "{label:>16} | {n:>9} | {:>13.3} | {:>11.3}",
            f / *n as f64,
            a / *n as f64
        );
    }
    // The model is a forecast, not a fit to these weeks. On the master file it
    // under-forecasts: 16,874 against 19,684 (-14.3%), the same sum Python's `lifetimes`
    // gives for its own fit of this file (README, "Holdout"). Guard the size of the error,
    // and that conditional expectations rise with past frequency as the actuals do.
    assert!(
        (-0.2..0.05).contains(&relative),
        "aggregate error {relative}"
    );
    let means: Vec<f64> = by_x.values().map(|(n, f, _)| f / *n as f64).collect();
    assert!(means.windows(2).all(|w| w[1] > w[0]), "{means:?}");
}
