//! The broker (and the registry on it) goes away mid-processing and comes back on the
//! same durable storage: customer-graph waits and retries instead of exiting or
//! skipping; SIGTERM during the outage ends it within its drain timeout; and the next
//! instance ends with exactly the state of an uninterrupted run. On a three-node Apache
//! Kafka cluster, the broker leading an input partition is killed mid-replay and
//! restarted: the agent rides through the leader change and ends with the same exact
//! state, ready and caught up.

use crate::common;

use std::time::Duration;

use common::*;

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_outage_mid_processing_loses_and_doubles_nothing() {
    let file = data("CDNOW_sample.txt");
    let reference = reference_bodies(&file);
    let dir = std::env::temp_dir().join(format!("loyalty-outage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let options = free_ports(Some(format!(
        "sqlite://{}",
        dir.join("broker.db").display()
    )));
    let stack = start_stack_with(&options).await;
    swarm::replay::replay(
        &stack.bootstrap_servers,
        &stack.registry_url,
        Some(&file),
        false,
    )
    .await
    .unwrap();

    let mut agent = AgentProcess::spawn(
        "customer-graph",
        &stack,
        // Small batches keep the agent busy long enough for the outage to land mid-way.
        &[
            "--set",
            "batch_max_records=20",
            "--set",
            "drain_timeout_ms=3000",
        ],
    );
    agent.wait_ready(Duration::from_secs(60)).await;
    let lag = || {
        swarm::inspect::group_lag(
            &stack.bootstrap_servers,
            "loyalty-swarm.customer-graph",
            &[loyalty_contracts::topics::MEMBER_EVENTS],
        )
        .unwrap()
    };
    // The outage starts once the first commits have landed.
    let initial = lag();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut before = initial;
    while before == initial && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        before = lag();
    }
    assert!(
        before > 0 && before < initial,
        "the outage must hit mid-processing (lag {initial} -> {before})"
    );

    stack.shutdown().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent gave up during the outage:\n{}",
        agent.log_tail()
    );

    // Outages also meet shutdowns: SIGTERM ends the retries, and the agent exits within
    // its drain timeout, cleanly, having committed nothing it did not write (the next
    // instance's result below would show a skipped record).
    let asked = std::time::Instant::now();
    let status = agent.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}:\n{}", agent.log_tail());
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "exited {:?} after SIGTERM; the drain timeout is 3 s",
        asked.elapsed()
    );
    drop(agent);

    let stack = start_stack_with(&options).await;
    let agent = AgentProcess::spawn("customer-graph", &stack, &["--set", "batch_max_records=20"]);
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(300)).await;
    assert_matches_reference(&stack, &reference).await;
    drop(agent);
    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apache_kafka_leader_killed_mid_replay_loses_and_doubles_nothing() {
    let file = data("CDNOW_sample.txt");
    let reference = reference_bodies(&file);
    let mut stack = start_stack_on(Broker::KafkaThreeNodes).await;
    let agent = AgentProcess::spawn("customer-graph", &stack, &["--set", "batch_max_records=20"]);
    agent.wait_ready(Duration::from_secs(60)).await;
    let replay = spawn_replay(&stack, &file);
    let group_lag = |bootstrap: &str| {
        swarm::inspect::group_lag(
            bootstrap,
            "loyalty-swarm.customer-graph",
            &[loyalty_contracts::topics::MEMBER_EVENTS],
        )
    };
    // Mid-replay: the agent has committed some input (a batch at least) and more is
    // waiting; the kill follows at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let lag = group_lag(&stack.bootstrap_servers).unwrap_or(0);
        let (_, metrics) = agent.get("/metrics").await.unwrap_or_default();
        let committed = metric(&metrics, "loyalty_swarm_batches_committed_total", &[]);
        if lag >= 200 && committed.is_some_and(|n| n > 0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replay never got ahead"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let leader = stack
        .kafka()
        .leader_of(loyalty_contracts::topics::MEMBER_EVENTS, 0);
    // Moments after the loop above saw 200 records or more still to go.
    stack.kafka().kill(leader);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        matches!(agent.get("/healthz").await, Some((200, _))),
        "the agent stopped when broker {leader} died:\n{}",
        agent.log_tail()
    );
    tokio::task::block_in_place(|| stack.kafka().restart(leader));

    replay.await.unwrap().unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(300)).await;
    assert_matches_reference(&stack, &reference).await;
    agent.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(group_lag(&stack.bootstrap_servers).unwrap(), 0);
    let dead =
        swarm::inspect::record_count(&stack.bootstrap_servers, "customer-graph.dlq").unwrap();
    assert_eq!(dead, 0, "a leader change is not bad data");
    drop(agent);
    stack.shutdown().await;
}
