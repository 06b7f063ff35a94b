//! Erasure across the whole swarm, on the embedded stack: `swarm demo` on the CDNOW
//! sample with every agent running erases ten members mid-run, then restarts every
//! agent from empty state (state topics deleted, new consumer groups reading from the
//! earliest offset), so the full history is replayed. Then:
//! - every agent has receipted every request, and no compacted member topic holds a
//!   live record of the ten, before and after the restart;
//! - no topic the swarm writes got a record keyed by one of them since the restart;
//! - the population figures exclude them: member-state, the cohort segments and the
//!   ltv population fit's sample size all count the replayed members but the ten;
//! - the gate's audit chains, continued from the log by the restarted gate, verify, and
//!   hold every agent's erasure receipts.

use std::process::Command;

use crate::common::*;

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erased_members_stay_out_of_every_agent_through_a_restart_from_empty_state() {
    let stack = start_stack().await;
    let port = swarm::stack::free_port().unwrap();
    let out = Command::new(binary("swarm"))
        .args(["demo", "--json", "--restart-from-empty"])
        .args(["--file", data("CDNOW_sample.txt").to_str().unwrap()])
        .args(["--http-listen", &format!("127.0.0.1:{port}")])
        .args(["--bootstrap-servers", &stack.bootstrap_servers])
        .args(["--schema-registry-url", &stack.registry_url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "swarm demo failed:\n{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let erasure = &summary["erasure"];
    assert_eq!(erasure["members"], 10, "{erasure}");
    assert_eq!(erasure["receipted"], erasure["expected"], "{erasure}");
    assert_eq!(erasure["expected"], 60);
    assert_eq!(erasure["live_records_left"], 0);
    let restart = &erasure["restart"];
    assert_eq!(restart["settled"], true, "{restart}");
    assert_eq!(restart["live_records_left"], 0, "{restart}");
    assert_eq!(restart["reappeared"], serde_json::json!({}), "{restart}");

    // (d) the population without them.
    let replayed = summary["replay"]["members"].as_u64().unwrap();
    let members = summary["member_states"].as_u64().unwrap();
    assert_eq!(members, replayed - 10, "{summary}");
    let downstream = &summary["downstream"];
    let segmented: u64 = downstream["segments"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(
        segmented, members,
        "cohort segments: {}",
        downstream["segments"]
    );
    assert_eq!(
        downstream["ltv"]["fits"]["all"].as_u64(),
        Some(members),
        "the population fit's sample size: {}",
        downstream["ltv"]["fits"]
    );
    // (e) the audit chains verify, and they hold the receipts: the 60 of the requests,
    // and the 60 the restarted agents wrote for them again, read by the restarted gate.
    let gate = &downstream["gate"];
    assert!(gate["chains"].as_u64().unwrap() > 0, "{gate}");
    assert_eq!(gate["chains_intact"], gate["chains"], "{gate}");
    assert!(gate["receipts_chained"].as_u64().unwrap() >= 120, "{gate}");
    stack.shutdown().await;
}
