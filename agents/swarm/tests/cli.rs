//! A bad `swarm` command line prints usage and exits 2 before touching any broker.

use std::process::Command;

#[test]
fn bad_arguments_print_usage() {
    for args in [
        vec!["demo", "--partitions", "0"],
        vec!["frobnicate"],
        vec![],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_swarm"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("Usage:"), "{args:?}:\n{stderr}");
    }
}
