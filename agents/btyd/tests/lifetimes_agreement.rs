//! Agreement with the Python `lifetimes` package (the reference implementation most
//! data teams know): on every CDNOW sample customer, P(alive), expected purchases and
//! expected order value from our formulas equal lifetimes' given the same parameters,
//! and both fitters find the same maximum. Needs `pip install lifetimes` (`.ci/run`).

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use btyd::cdnow::{read_purchases, summarise};
use btyd::{BgNbd, GammaGamma, group};
use loyalty_contracts::Date;

const SCRIPT: &str = r#"
import json, sys
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
rows = pd.read_csv(sys.argv[1])
ours = json.loads(sys.argv[2])
bg = BetaGeoFitter().fit(rows["x"], rows["t_x"], rows["T"])
repeat = rows[(rows["x"] > 0) & (rows["m"] > 0)]
gg = GammaGammaFitter().fit(repeat["x"], repeat["m"])
fitted = {"bg": bg.params_.to_dict(), "gg": gg.params_.to_dict()}
bg.params_ = pd.Series(ours["bg"])
gg.params_ = pd.Series(ours["gg"])
alive = bg.conditional_probability_alive(rows["x"], rows["t_x"], rows["T"])
expected = bg.conditional_expected_number_of_purchases_up_to_time(39.0, rows["x"], rows["t_x"], rows["T"])
value = gg.conditional_expected_average_profit(repeat["x"], repeat["m"])
print(json.dumps({"fitted": fitted, "alive": list(alive), "expected": list(expected), "value": list(value)}))
"#;

#[test]
fn formulas_and_fits_agree_with_lifetimes() {
    let file = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../../data/cdnow/CDNOW_sample.txt");
    let end = Date::from_ymd(1997, 9, 30).unwrap();
    let customers = summarise(&read_purchases(&file).unwrap(), end, 7.0);
    let bg = BgNbd::fit(&group(customers.iter().map(|c| c.summary)))
        .unwrap()
        .model;
    let gg = GammaGamma::fit(&group(customers.iter().map(|c| c.spend)))
        .unwrap()
        .model;

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("summaries.csv");
    let mut out = std::fs::File::create(&csv).unwrap();
    writeln!(out, "x,t_x,T,m").unwrap();
    for c in &customers {
        let s = c.summary;
        // {:?} prints a float that parses back to the same bits.
        writeln!(
            out,
            "{:?},{:?},{:?},{:?}",
            s.x, s.t_x, s.t, c.spend.mean_value
        )
        .unwrap();
    }
    drop(out);
    let params = serde_json::json!({
        "bg": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b},
        "gg": {"p": gg.p, "q": gg.q, "v": gg.gamma},
    });
    let run = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&csv)
        .arg(params.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        run.status.success(),
        "lifetimes failed (pip install lifetimes): {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let number = |v: &serde_json::Value| v.as_f64().unwrap();
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * b.abs().max(1.0);

    // Same maximum: lifetimes' optimiser stops a little earlier than ours.
    let fitted = &theirs["fitted"];
    for (name, ours) in [("r", bg.r), ("alpha", bg.alpha), ("a", bg.a), ("b", bg.b)] {
        let t = number(&fitted["bg"][name]);
        assert!(
            close(ours, t, 1e-3),
            "BG/NBD {name}: ours {ours}, lifetimes {t}"
        );
    }
    for (name, ours) in [("p", gg.p), ("q", gg.q), ("v", gg.gamma)] {
        let t = number(&fitted["gg"][name]);
        assert!(
            close(ours, t, 1e-3),
            "Gamma-Gamma {name}: ours {ours}, lifetimes {t}"
        );
    }

    // Same formulas, customer by customer.
    let alive = theirs["alive"].as_array().unwrap();
    let expected = theirs["expected"].as_array().unwrap();
    assert_eq!(alive.len(), customers.len());
    for (i, c) in customers.iter().enumerate() {
        let (a, t) = (bg.p_alive(&c.summary), number(&alive[i]));
        assert!(close(a, t, 1e-4), "{} P(alive) {a} vs {t}", c.customer);
        let e = bg.conditional_expected_purchases(&c.summary, 39.0).unwrap();
        let t = number(&expected[i]);
        assert!(close(e, t, 1e-4), "{} E[X(39)] {e} vs {t}", c.customer);
    }
    let value = theirs["value"].as_array().unwrap();
    let repeaters: Vec<_> = customers
        .iter()
        .filter(|c| c.spend.x > 0.0 && c.spend.mean_value > 0.0)
        .collect();
    assert_eq!(value.len(), repeaters.len());
    for (c, t) in repeaters.iter().zip(value) {
        let v = gg.conditional_expected_value(&c.spend);
        assert!(
            close(v, number(t), 1e-4),
            "{} E[value] {v} vs {t}",
            c.customer
        );
    }
}
