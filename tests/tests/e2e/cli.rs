//! Every agent binary, the example's included, behaves the same at its edges: `--help`
//! says what that agent does (its own package's description, not the runtime's), a bad
//! argument prints usage and exits 2, bad runtime configuration is listed whole and exits
//! 2, `--check-config` redacts secrets, and the shipped example config checks out. Each
//! agent's own settings are checked in its crate (`agents/*/tests/cli.rs`).

use std::process::{Command, Output};

use crate::common::binary;

/// Each binary and how its `--help` begins.
fn agents() -> [(&'static str, &'static str); 8] {
    [
        ("customer-graph", "Folds member events"),
        ("cohort", "Population-relative RFM"),
        ("tier-transition", "Forecasts the twelve tier transitions"),
        ("ltv", "Per-member lifetime value"),
        ("save-offer", "Turns intervention opportunities"),
        ("save-offer-catalog", "Normalises vendor offers"),
        ("compliance-gate", "Checks every proposal"),
        ("examples/order_totals", "Keeps each member's order count"),
    ]
}

/// Run `name` with `args`; ltv's and compliance-gate's keys, and the erasure registry
/// key, come from their environment variables.
fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .env("LTV_SIGNING_KEY", "ab".repeat(32))
        .env("GATE_SIGNING_KEY", "cd".repeat(32))
        .env("GATE_PSEUDONYM_KEY", "ef".repeat(32))
        .env(loyalty_runtime::erasure::KEY_ENV, "e5".repeat(32))
        .output()
        .unwrap()
}

#[test]
fn help_says_what_each_agent_does() {
    for (name, description) in agents() {
        let out = run(name, &["--help"]);
        assert!(out.status.success(), "{name}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with(description), "{name} --help:\n{stdout}");
        assert!(stdout.contains("--bootstrap-servers"), "{name}");
    }
}

#[test]
fn a_bad_argument_prints_usage_and_exits_2() {
    for (name, _) in agents() {
        for args in [&["--no-such-flag"][..], &["extra"], &["--http-listen"]] {
            let out = run(name, args);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("Usage:"), "{name} {args:?}:\n{stderr}");
        }
    }
}

#[test]
fn bad_runtime_configuration_is_listed_whole_and_exits_2() {
    for (name, _) in agents() {
        let out = run(
            name,
            &[
                "--check-config",
                "--set",
                "partitions=0",
                "--set",
                "batch_max_records=0",
                "--set",
                "no_such_setting=1",
                "--set",
                "librdkafka.enable.auto.commit=true",
                "--http-listen",
                "not-an-address",
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for problem in [
            "partitions: 0",
            "batch_max_records",
            "no_such_setting",
            "librdkafka.enable.auto.commit",
            "http_listen",
        ] {
            assert!(
                stderr.contains(problem),
                "{name}: no {problem:?} in\n{stderr}"
            );
        }
    }
}

#[test]
fn check_config_redacts_secrets_and_the_shipped_configs_check_out() {
    for (name, _) in agents() {
        let out = run(
            name,
            &[
                "--check-config",
                "--set",
                "librdkafka.sasl.password=hunter2",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("sasl.password") && !stdout.contains("hunter2"),
            "{name}: {stdout}"
        );
        if name.starts_with("examples/") {
            continue;
        }
        // From the repository root, as the configs name their files (ltv's key).
        let file = format!("deploy/{name}.toml");
        let out = Command::new(binary(name))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env_remove(loyalty_runtime::erasure::KEY_ENV)
            .args(["--config", &file, "--check-config"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
