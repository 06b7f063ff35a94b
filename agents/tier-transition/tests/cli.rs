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

#[test]
fn defaults_check_out_and_bad_arguments_print_usage() {
    let out = binary().arg("--check-config").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = binary().arg("--horizon").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage:"));
}

#[test]
fn the_shipped_example_config_checks_out() {
    let file = format!(
        "{}/../../deploy/tier-transition.toml",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let out = binary()
        .args(["--config", &file, "--check-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
