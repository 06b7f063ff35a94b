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
