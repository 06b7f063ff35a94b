//! Bad configuration stops save-offer at start-up with every problem listed; a bad
//! argument prints usage. (Also makes `cargo test --workspace` build both binaries for
//! the end-to-end tests.)

use std::process::Command;

#[test]
fn bad_settings_are_all_listed() {
    let out = Command::new(env!("CARGO_BIN_EXE_save-offer"))
        .args([
            "--check-config",
            "--set",
            "agent.reward_scale_minor=0",
            "--set",
            "agent.ridge=-1",
            "--set",
            "agent.linear_alpha=-2",
            "--set",
            "agent.remembered_claims=0",
            "--set",
            "refresh_interval_ms=0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "reward_scale_minor",
        "ridge",
        "linear_alpha",
        "remembered_claims",
        "refresh_interval_ms",
    ] {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
}

#[test]
fn the_catalog_binary_prints_usage_on_a_bad_argument() {
    let out = Command::new(env!("CARGO_BIN_EXE_save-offer-catalog"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
