//! Bad configuration stops ltv at start-up with every problem listed (a missing signing
//! key among them); a bad argument prints usage. (Also makes `cargo test --workspace`
//! build the binary for the end-to-end tests.)

use std::process::Command;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ltv"));
    command.env_remove(ltv::attest::SIGNING_KEY_ENV);
    command
}

#[test]
fn bad_settings_are_all_listed() {
    let out = binary()
        .args([
            "--check-config",
            "--set",
            "agent.lifetime_months=12",
            "--set",
            "agent.annual_discount_rate=1.5",
            "--set",
            "agent.uplift_prior_sd=0",
            "--set",
            "agent.reconciliation_tolerance=0",
            "--set",
            "agent.tenure_bands_days=[365, 180]",
            "--set",
            "agent.signing_key_file=/nonexistent/ltv.key",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "lifetime_months",
        "annual_discount_rate",
        "uplift_prior_sd",
        "reconciliation_tolerance",
        "tenure_bands_days",
        "cannot read /nonexistent/ltv.key",
    ] {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
}

#[test]
fn a_key_comes_from_the_environment_and_bad_arguments_print_usage() {
    let out = binary().arg("--check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no key anywhere is a problem");
    assert!(String::from_utf8_lossy(&out.stderr).contains(ltv::attest::SIGNING_KEY_ENV));
    let out = binary()
        .env(ltv::attest::SIGNING_KEY_ENV, "ab".repeat(32))
        .env(loyalty_runtime::erasure::KEY_ENV, "e5".repeat(32))
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The key never appears in what the agent prints.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&"ab".repeat(32)));
    let out = binary().arg("--lifetime").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage:"));
}
