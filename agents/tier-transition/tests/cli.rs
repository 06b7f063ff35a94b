//! Bad configuration stops tier-transition at start-up with every problem listed; a bad
//! argument prints usage. (Also makes `cargo test --workspace` build the binary for the
//! end-to-end tests.)

use std::process::Command;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tier-transition"))
}

#[test]
fn bad_settings_are_all_listed() {
    let out = binary()
        .args([
            "--check-config",
            "--set",
            "agent.horizon_days=0",
            "--set",
            "agent.bridge_fraction=1.5",
            "--set",
            "agent.thank_you_probability=2",
            "--set",
            "agent.model_segment=",
            "--set",
            "refresh_interval_ms=0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "horizon_days",
        "bridge_fraction",
        "thank_you_probability",
        "model_segment",
        "refresh_interval_ms",
    ] {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
}
