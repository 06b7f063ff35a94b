//! Two customer-graph instances share the partitions; stopping one moves its partitions
//! to the other, which restores their state from the changelog and finishes the job with
//! the same result as a single uninterrupted run.
//! Run on each broker.

use crate::common;

use std::time::Duration;

use common::*;

on_each_broker!(stopping_one_of_two_instances_moves_partitions_and_state);

async fn stopping_one_of_two_instances_moves_partitions_and_state(broker: Broker) {
    let file = data("CDNOW_sample.txt");
    let reference = reference_bodies(&file);
    let stack = start_stack_on(broker).await;
    let args = ["--set", "batch_max_records=200"];
    let first = AgentProcess::spawn("customer-graph", &stack, &args);
    let mut second = AgentProcess::spawn("customer-graph", &stack, &args);
    first.wait_ready(Duration::from_secs(60)).await;
    second.wait_ready(Duration::from_secs(60)).await;

    let replay = spawn_replay(&stack, &file);
    // Both instances hold partitions (and state) before one leaves. How soon the group
    // settles with two members varies; wait for it rather than guess.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = second
            .get("/metrics")
            .await
            .map(|(_, m)| m)
            .unwrap_or_default();
        if metrics.contains("loyalty_swarm_state_keys") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "second instance owned no partition:\n{metrics}\n{}",
            second.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = second.terminate(Duration::from_secs(60));
    assert!(
        status.success(),
        "SIGTERM exit: {status:?}\n{}",
        second.log_tail()
    );

    replay.await.unwrap().unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(600)).await;
    let log = std::fs::read_to_string(&first.log).unwrap();
    assert!(
        log.contains("partition state restored"),
        "the survivor restored moved partitions"
    );

    assert_matches_reference(&stack, &reference).await;
    drop(first);
    stack.shutdown().await;
}
