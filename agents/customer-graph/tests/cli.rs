//! Bad configuration of customer-graph's own settings stops it at start-up with every
//! problem listed, beside the runtime's. What every agent binary shares (usage, help,
//! redaction, the shipped config) is checked once for all in `tests/tests/e2e/cli.rs`.
//!
//! Living in this package also makes `cargo test --workspace` build the agent binary
//! before any test runs, which the end-to-end tests in `tests/` rely on.

use std::process::Command;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_customer-graph"))
}

#[test]
fn bad_config_lists_every_problem_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("loyalty-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("customer-graph.toml");
    std::fs::write(
        &file,
        "bootstrap_server = \"typo:9092\"\npartitions = 0\nschema_registry_url = \"registry:8081\"\n\
         [agent]\ndedupe_window = 0\nunknown_knob = 1\n[librdkafka]\n\"enable.auto.commit\" = \"true\"\n",
    )
    .unwrap();
    let out = binary()
        .args([
            "--config",
            file.to_str().unwrap(),
            "--set",
            "batch_max_records=0",
        ])
        .env("LOYALTY_HTTP_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "bootstrap_server: unknown setting",
        "partitions: 0",
        "schema_registry_url",
        "http_listen",
        "batch_max_records",
        "librdkafka.enable.auto.commit",
        "agent.dedupe_window",
    ] {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
}

#[test]
fn unknown_agent_setting_is_an_error() {
    let out = binary()
        .args(["--set", "agent.unknown_knob=1", "--check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown_knob"));
}
