//! Bandit quality: each policy's cumulative pseudo-regret over 100,000 rounds, on the
//! environments and protocol of `bench/peers/bandits/README.md`, against the Python peers'
//! results in `bench/peers/bandits/results.json` (mabwiser for Thompson sampling, UCB1,
//! LinUCB and LinTS; a numpy reference for EXP3, which mabwiser lacks).
//!
//! The two sides draw from different generators (ChaCha here, numpy there), so the runs
//! are compared as samples of ten seeds each: ours is "no worse" when its mean is below
//! the peer's mean plus two standard errors of the difference (a one-sided test at about
//! 2%: the same algorithm on both sides passes, a worse one does not).

use std::path::Path;

use loyalty_contracts::BanditPolicy;
use save_offer::bandit::simulate::{self, Environment};
use serde_json::Value;

const ROUNDS: usize = 100_000;
const BATCH: usize = 100;
const SEEDS: [u64; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

fn mean_and_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

fn peer(results: &Value, env: &str, policy: &str) -> (String, Vec<f64>) {
    let row = results["results"]
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["env"] == env && r["policy"] == policy)
        })
        .unwrap_or_else(|| panic!("results.json has no {env} {policy}"));
    let finals = row["final_regret"]
        .as_array()
        .expect("final_regret")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    (
        row["implementation"].as_str().unwrap_or("").to_owned(),
        finals,
    )
}

#[test]
fn every_policy_is_no_worse_than_its_python_peer() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers/bandits/results.json");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("peer results")).expect("JSON");
    let cases = [
        (
            Environment::retention_5(),
            BanditPolicy::ThompsonSampling,
            "thompson_sampling",
        ),
        (Environment::retention_5(), BanditPolicy::Ucb1, "ucb1"),
        (Environment::retention_5(), BanditPolicy::Exp3, "exp3"),
        (
            Environment::retention_ctx(),
            BanditPolicy::LinUcb,
            "lin_ucb",
        ),
        (
            Environment::retention_ctx(),
            BanditPolicy::LinThompson,
            "lin_thompson",
        ),
    ];
    let mut table = vec![format!(
        "| environment | policy | loyalty-swarm | peer | peer implementation |\n|---|---|---:|---:|---|"
    )];
    let mut worse = Vec::new();
    for (env, policy, name) in cases {
        let ours: Vec<f64> = SEEDS
            .iter()
            .map(|&seed| simulate::run(&env, policy, ROUNDS, BATCH, seed, 10_000).regret)
            .collect();
        let (implementation, theirs) = peer(&results, env.name, name);
        assert_eq!(theirs.len(), SEEDS.len(), "the peer ran other seeds");
        let (ours_mean, ours_se) = mean_and_se(&ours);
        let (peer_mean, peer_se) = mean_and_se(&theirs);
        table.push(format!(
            "| {} | {name} | {ours_mean:.0} ± {ours_se:.0} | {peer_mean:.0} ± {peer_se:.0} | {implementation} |",
            env.name
        ));
        let margin = 2.0 * (ours_se.powi(2) + peer_se.powi(2)).sqrt();
        if ours_mean > peer_mean + margin {
            worse.push(format!(
                "{} {name}: ours {ours_mean:.0}, peer {peer_mean:.0} (+{margin:.0} allowed)",
                env.name
            ));
        }
    }
    println!("{}", table.join("\n"));
    assert!(
        worse.is_empty(),
        "worse than the peer:\n{}\n{}",
        worse.join("\n"),
        table.join("\n")
    );
}

#[test]
fn a_run_is_the_same_for_the_same_seed() {
    let env = Environment::retention_ctx();
    let a = simulate::run(&env, BanditPolicy::LinThompson, 5_000, BATCH, 7, 1_000);
    let b = simulate::run(&env, BanditPolicy::LinThompson, 5_000, BATCH, 7, 1_000);
    assert_eq!(a, b);
    assert_eq!(a.checkpoints.len(), 5);
}
