//! customer-graph killed with SIGKILL again and again mid-replay ends with member-state
//! identical, byte for byte per member, to an uninterrupted run of the same fold: no
//! double counting, no loss.

use crate::common;

use std::time::Duration;

use common::*;

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_replay_changes_nothing() {
    let file = data("CDNOW_sample.txt");
    let reference = reference_bodies(&file);
    let stack = start_stack().await;
    let replay = spawn_replay(&stack, &file);
    // The fold's own event-id check is narrowed to the last event, so what keeps a
    // replayed record from counting twice is the runtime's: input positions, and the
    // origins of re-keyed records (store-card holders' events are forwarded, and a
    // replay forwards them again).
    let args = [
        "--set",
        "batch_max_records=200",
        "--set",
        "agent.dedupe_window=1",
    ];
    let mut agent = AgentProcess::spawn("customer-graph", &stack, &args);
    let mut kills = 0;
    for pause_ms in [1500, 900, 1200, 700, 1000] {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        agent.kill9();
        kills += 1;
        agent = AgentProcess::spawn("customer-graph", &stack, &args);
    }
    replay.await.unwrap().unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(600)).await;

    assert_eq!(kills, 5);
    assert_matches_reference(&stack, &reference).await;
    drop(agent);
    stack.shutdown().await;
}
