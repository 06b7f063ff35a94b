//! Bad configuration stops compliance-gate at start-up with every problem listed (an
//! invalid policy set with each of its errors, missing keys); a bad argument prints
//! usage. (Also makes `cargo test --workspace` build the binary for the end-to-end
//! tests.)

use std::process::Command;

use compliance_gate::settings::{PSEUDONYM_KEY_ENV, SIGNING_KEY_ENV};

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_compliance-gate"));
    command
        .env_remove(SIGNING_KEY_ENV)
        .env_remove(PSEUDONYM_KEY_ENV);
    command
}

#[test]
fn an_invalid_policy_set_and_missing_keys_are_all_listed() {
    let dir = std::env::temp_dir().join(format!("gate-cli-policies-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("gate.cedarschema"),
        compliance_gate::policy::SHIPPED_SCHEMA,
    )
    .unwrap();
    // One policy that does not parse, one without its annotations, one that names an
    // attribute the schema does not have.
    std::fs::write(
        dir.join("broken.cedar"),
        "permit (principal, action, resource) when {",
    )
    .unwrap();
    std::fs::write(
        dir.join("unannotated.cedar"),
        "permit (principal, action == Gate::Action::\"send\", resource);",
    )
    .unwrap();
    std::fs::write(
        dir.join("unknown.cedar"),
        "@id(\"x\")\n@statute(\"s\")\n@effect(\"deny\")\nforbid (principal, action == Gate::Action::\"send\", resource) when { principal.shoe_size > 3 };",
    )
    .unwrap();
    let out = binary()
        .args([
            "--check-config",
            "--set",
            &format!("agent.policies_dir={}", dir.display()),
            "--set",
            "agent.checkpoint_every=0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "broken.cedar",
        "unannotated.cedar",
        "shoe_size",
        SIGNING_KEY_ENV,
        PSEUDONYM_KEY_ENV,
        "checkpoint_every",
    ] {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn keys_come_from_the_environment_and_bad_arguments_print_usage() {
    let with_keys = |erasure: bool| {
        let mut command = binary();
        command
            .env(SIGNING_KEY_ENV, "ab".repeat(32))
            .env(PSEUDONYM_KEY_ENV, "cd".repeat(32))
            .env_remove(loyalty_runtime::erasure::KEY_ENV)
            .arg("--check-config");
        if erasure {
            command.env(loyalty_runtime::erasure::KEY_ENV, "ef".repeat(32));
        }
        command.output().unwrap()
    };
    let out = with_keys(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for key in ["ab", "cd", "ef"] {
        assert!(!stdout.contains(&key.repeat(32)), "{key} printed");
    }
    // The gate reads erasure requests, so it needs the registry key too.
    let out = with_keys(false);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("erasure_key_file") && stderr.contains(loyalty_runtime::erasure::KEY_ENV),
        "{stderr}"
    );
    let out = binary().arg("--channel-order").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage:"));
}
