//! cohort has no settings of its own: any `[agent]` key is an error, listed with the
//! runtime's problems; a bad argument prints usage. (Also makes `cargo test --workspace`
//! build the binary for the end-to-end tests.)

use std::process::Command;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cohort"))
}

#[test]
fn unknown_settings_and_bad_values_are_all_listed() {
    let out = binary()
        .args([
            "--check-config",
            "--set",
            "agent.quintiles=10",
            "--set",
            "partitions=0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("quintiles") && stderr.contains("partitions"),
        "{stderr}"
    );
}

#[test]
fn defaults_check_out_and_bad_arguments_print_usage() {
    let out = binary().arg("--check-config").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = binary().arg("extra").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage:"));
}

#[test]
fn the_shipped_example_config_checks_out() {
    let file = format!(
        "{}/../../deploy/cohort.toml",
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
