//! `processing_guarantee = exactly_once`: customer-graph writes each batch (outputs,
//! changelog, input offsets) in one Kafka transaction, on each broker. Killed with
//! SIGKILL mid-replay and restarted under the same transactional id, it ends with the
//! member-state of an uninterrupted run, and a read_committed reader of its output sees
//! no replayed snapshot: what the killed instances had written in their open
//! transactions was aborted when the successor started. The Java consumer with
//! `isolation.level=read_committed` reads the same records, none aborted.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use loyalty_contracts::topics;

const ARGS: [&str; 6] = [
    "--set",
    "batch_max_records=200",
    "--set",
    "processing_guarantee=exactly_once",
    "--set",
    "transactional_id=customer-graph-test-0",
];

on_each_broker!(sigkill_under_transactions_leaves_no_duplicate_output);

async fn sigkill_under_transactions_leaves_no_duplicate_output(broker: Broker) {
    let file = data("CDNOW_sample.txt");
    let reference = reference_bodies(&file);
    let stack = start_stack_on(broker).await;
    let replay = spawn_replay(&stack, &file);

    let mut agent = AgentProcess::spawn("customer-graph", &stack, &ARGS);
    for pause_ms in [1500, 900, 1200] {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        agent.kill9();
        agent = AgentProcess::spawn("customer-graph", &stack, &ARGS);
    }
    replay.await.unwrap().unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(600)).await;
    assert_matches_reference(&stack, &reference).await;

    // A member's snapshot only goes out when something changed it, so two equal
    // snapshots in a row are a replayed batch's output that survived an abort.
    let records =
        swarm::inspect::positioned_records(&stack.bootstrap_servers, topics::MEMBER_STATE)
            .await
            .unwrap();
    let mut previous: HashMap<&str, &[u8]> = HashMap::new();
    for record in &records {
        let value = record.value.as_deref().unwrap();
        if let Some(before) = previous.insert(&record.key, value) {
            assert_ne!(
                before, value,
                "member {} snapshot at {}:{} repeats the one before it: a replayed output is \
                 visible to read_committed",
                record.key, record.partition, record.offset
            );
        }
    }
    assert_eq!(previous.len(), reference.len());

    // The Java consumer under read_committed reads exactly what librdkafka's did: the
    // same records at the same positions, none of the aborted ones.
    let java = kafka::java_clients(&[
        "read-committed",
        &stack.bootstrap_servers,
        topics::MEMBER_STATE,
    ]);
    let java: Vec<(i32, i64, &str, &str)> = java
        .iter()
        .map(|line| {
            (
                line[0].parse().unwrap(),
                line[1].parse().unwrap(),
                line[2].as_str(),
                line[3].as_str(),
            )
        })
        .collect();
    let expected: Vec<String> = records
        .iter()
        .map(|r| kafka::hex(r.value.as_deref().unwrap()))
        .collect();
    let expected: Vec<(i32, i64, &str, &str)> = records
        .iter()
        .zip(&expected)
        .map(|(r, value)| (r.partition, r.offset, r.key.as_str(), value.as_str()))
        .collect();
    let mut java_sorted = java.clone();
    java_sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(
        java_sorted.len(),
        expected_sorted.len(),
        "the Java read_committed consumer read a different number of member-state records"
    );
    assert_eq!(
        java_sorted, expected_sorted,
        "the Java read_committed consumer read other records than librdkafka's"
    );

    let log = std::fs::read_to_string(&agent.log).unwrap();
    assert!(
        log.contains("transactions initialised"),
        "the agent ran with transactions:\n{}",
        agent.log_tail()
    );
    drop(agent);
    stack.shutdown().await;
}
