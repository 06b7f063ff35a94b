//! Bandit quality: each policy's cumulative pseudo-regret over 100,000 rounds, on the
//! environments and protocol of `bench/peers/bandits/README.md`, against the Python peers'
//! results in `bench/peers/bandits/results.json` (mabwiser for Thompson sampling, UCB1,
//! LinUCB and LinTS; a numpy reference for EXP3, which mabwiser lacks, and for textbook
//! LinTS, which mabwiser's shared draws are not).
//!
//! The two sides draw from different generators (ChaCha here, numpy there), so the runs
//! are compared as samples of ten seeds each: ours is "no worse" when its mean is below
//! the peer's mean plus two standard errors of the difference (a one-sided test at about
//! 2%: the same algorithm on both sides passes, a worse one does not — a second test
//! shows a policy blind to the context failing it).

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

/// Two samples of final regrets, side by side.
struct Comparison {
    ours: (f64, f64),
    peer: (f64, f64),
    /// How far above the peer's mean ours may be: two standard errors of the difference.
    margin: f64,
}

impl Comparison {
    fn of(ours: &[f64], theirs: &[f64]) -> Self {
        let (ours, peer) = (mean_and_se(ours), mean_and_se(theirs));
        Comparison {
            ours,
            peer,
            margin: 2.0 * (ours.1.powi(2) + peer.1.powi(2)).sqrt(),
        }
    }

    fn worse(&self) -> bool {
        self.ours.0 > self.peer.0 + self.margin
    }
}

/// Final regrets of ours over [`SEEDS`].
fn ours(env: &Environment, policy: BanditPolicy, linear_alpha: f64) -> Vec<f64> {
    SEEDS
        .iter()
        .map(|&seed| {
            simulate::run_with_alpha(env, policy, ROUNDS, BATCH, seed, 10_000, linear_alpha).regret
        })
        .collect()
}

fn results() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers/bandits/results.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("peer results")).expect("JSON")
}

/// Environment, policy, α, the peers ours must be no worse than, and peers only shown.
type Case = (
    Environment,
    BanditPolicy,
    f64,
    &'static [&'static str],
    &'static [&'static str],
);

#[test]
fn every_policy_is_no_worse_than_its_python_peer() {
    let results = results();
    let ctx = Environment::retention_ctx;
    let cases: [Case; 7] = [
        (
            Environment::retention_5(),
            BanditPolicy::ThompsonSampling,
            1.0,
            &["thompson_sampling"],
            &[],
        ),
        (
            Environment::retention_5(),
            BanditPolicy::Ucb1,
            1.0,
            &["ucb1"],
            &[],
        ),
        (
            Environment::retention_5(),
            BanditPolicy::Exp3,
            1.0,
            &["exp3"],
            &[],
        ),
        (ctx(), BanditPolicy::LinUcb, 1.0, &["lin_ucb"], &[]),
        (
            ctx(),
            BanditPolicy::LinThompson,
            1.0,
            &["lin_thompson", "lin_thompson_reference"],
            &[],
        ),
        // At α = 1 the linear policies sometimes starve an arm for good (on both sides),
        // so their regrets are bimodal and the comparison is loose; at α = 10 they
        // explore enough to learn every arm, and the comparison is tight.
        (ctx(), BanditPolicy::LinUcb, 10.0, &["lin_ucb_alpha10"], &[]),
        // mabwiser's LinTS shares its random draws between arms (its models are fitted
        // on deep copies that copy the generator too), a different policy that explores
        // less and does better at α = 10; ours is held to the textbook reference, and
        // mabwiser's figure is shown (bench/peers/bandits/README.md).
        (
            ctx(),
            BanditPolicy::LinThompson,
            10.0,
            &["lin_thompson_alpha10_reference"],
            &["lin_thompson_alpha10"],
        ),
    ];
    let mut table = vec![format!(
        "| environment | policy | α | loyalty-swarm | peer | peer implementation |\n|---|---|---:|---:|---:|---|"
    )];
    let mut worse = Vec::new();
    for (env, policy, alpha, held_to, shown) in cases {
        let ours = ours(&env, policy, alpha);
        for (name, asserted) in held_to
            .iter()
            .map(|n| (n, true))
            .chain(shown.iter().map(|n| (n, false)))
        {
            let (implementation, theirs) = peer(&results, env.name, name);
            assert_eq!(theirs.len(), SEEDS.len(), "the peer ran other seeds");
            let c = Comparison::of(&ours, &theirs);
            table.push(format!(
                "| {} | {policy:?} | {alpha} | {:.0} ± {:.0} | {:.0} ± {:.0} | {implementation}{} |",
                env.name,
                c.ours.0,
                c.ours.1,
                c.peer.0,
                c.peer.1,
                if asserted { "" } else { " (shown, not asserted)" }
            ));
            if asserted && c.worse() {
                worse.push(format!(
                    "{} {name}: ours {:.0}, peer {:.0} (+{:.0} allowed)",
                    env.name, c.ours.0, c.peer.0, c.margin
                ));
            }
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

/// The comparison above can fail: a policy that ignores the member's context (Thompson
/// sampling, run context-free on the contextual environment) is judged worse than
/// either linear peer, as an implementation whose linear model learned nothing would be.
#[test]
fn the_comparison_flags_a_policy_that_ignores_the_context() {
    let results = results();
    let env = Environment::retention_ctx();
    let blind = ours(&env, BanditPolicy::ThompsonSampling, 1.0);
    for name in [
        "lin_ucb",
        "lin_thompson",
        "lin_ucb_alpha10",
        "lin_thompson_alpha10",
    ] {
        let (_, theirs) = peer(&results, env.name, name);
        let c = Comparison::of(&blind, &theirs);
        assert!(
            c.worse(),
            "context-free {:.0} passed against {name} {:.0} (+{:.0})",
            c.ours.0,
            c.peer.0,
            c.margin
        );
    }
}

#[test]
fn a_run_is_the_same_for_the_same_seed() {
    let env = Environment::retention_ctx();
    let a = simulate::run(&env, BanditPolicy::LinThompson, 5_000, BATCH, 7, 1_000);
    let b = simulate::run(&env, BanditPolicy::LinThompson, 5_000, BATCH, 7, 1_000);
    assert_eq!(a, b);
    assert_eq!(a.checkpoints.len(), 5);
}
