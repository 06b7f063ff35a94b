//! Operating an agent: it waits (and retries) while the registry is away and is not
//! ready until it has started up and restored; /metrics passes `promtool check metrics`;
//! an outside Python client (confluent-kafka + its Avro deserializer) reads the output;
//! SIGTERM drains, commits and exits cleanly.
//! The first test runs on each broker.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::*;
use customer_graph::CustomerGraph;
use loyalty_contracts::topics;
use loyalty_runtime::runner;

/// A loopback TCP forwarder started late, standing in for a registry that comes back.
async fn forward(listen: u16, to: String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", listen))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

on_each_broker!(registry_outage_readiness_metrics_outside_client_and_sigterm);

async fn registry_outage_readiness_metrics_outside_client_and_sigterm(broker: Broker) {
    let stack = start_stack_on(broker).await;
    let late_port = swarm::stack::free_port().unwrap();
    let late_registry = format!("http://127.0.0.1:{late_port}");
    let mut agent = AgentProcess::spawn_with_registry(
        "customer-graph",
        &stack.bootstrap_servers,
        &late_registry,
        &[],
    );

    // Registry away: alive, not ready, retrying.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        agent.get("/healthz").await.map(|r| r.0),
        Some(200),
        "{}",
        agent.log_tail()
    );
    assert_eq!(agent.get("/readyz").await.map(|r| r.0), Some(503));
    let (_, metrics) = agent.get("/metrics").await.unwrap();
    let retries = metric(
        &metrics,
        "loyalty_swarm_retries_total",
        &[("operation", "register_schema")],
    );
    assert!(retries.is_some_and(|n| n >= 1.0), "{metrics}");

    // Registry back: the agent carries on by itself.
    forward(
        late_port,
        stack.registry_url.trim_start_matches("http://").to_owned(),
    )
    .await;
    agent.wait_ready(Duration::from_secs(60)).await;
    let file = data("CDNOW_sample.txt");
    let replayed = swarm::replay::replay(
        &stack.bootstrap_servers,
        &stack.registry_url,
        Some(&file),
        false,
    )
    .await
    .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(600)).await;
    assert_eq!(
        member_state_bodies(&stack).await.len(),
        replayed.members,
        "nothing skipped during the outage"
    );

    // The exposition is valid Prometheus text.
    let (_, metrics) = agent.get("/metrics").await.unwrap();
    for name in [
        "loyalty_swarm_records_consumed_total",
        "loyalty_swarm_processing_seconds_bucket",
        "loyalty_swarm_consumer_lag",
        "loyalty_swarm_state_keys",
        "loyalty_swarm_state_bytes",
        "loyalty_swarm_restore_records_total",
        "loyalty_swarm_dlq_records_total",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }
    common::promtool_check_metrics(&metrics);

    // An outside client decodes the output with Confluent's own deserializer.
    let script = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("python/read_member_state.py");
    let python = Command::new("python3")
        .arg(script)
        .args([
            &stack.bootstrap_servers,
            &stack.registry_url,
            topics::MEMBER_STATE,
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&python.stdout);
    assert!(
        python.status.success(),
        "python client failed:\n{out}\n{}",
        String::from_utf8_lossy(&python.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        summary["members"].as_u64(),
        Some(replayed.members as u64),
        "{summary}"
    );
    // member-state is compacted: within a batch only a member's newest snapshot is
    // produced, so there is at least one record per member and at most one per event.
    let records = summary["records"].as_u64().unwrap();
    assert!(
        records >= replayed.members as u64 && records <= replayed.events as u64,
        "{summary}"
    );
    assert!(
        summary["with_btyd"].as_u64().unwrap() == replayed.members as u64,
        "{summary}"
    );

    // SIGTERM: clean exit, offsets committed, group left.
    let status = agent.terminate(Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", agent.log_tail());
    assert_eq!(
        swarm::inspect::group_lag(
            &stack.bootstrap_servers,
            "loyalty-swarm.customer-graph",
            &runner::consumed_topics(&CustomerGraph::new(&Default::default()))
        )
        .unwrap(),
        0
    );
    assert!(
        std::fs::read_to_string(&agent.log)
            .unwrap()
            .contains("leaving the group")
    );
    stack.shutdown().await;
}

/// SIGTERM while the registry is away ends the retry at once: the agent exits cleanly
/// within its drain timeout instead of waiting for a registry that may never come.
#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_registry_is_away_exits_within_the_drain_timeout() {
    let stack = start_stack().await;
    let away = format!("http://127.0.0.1:{}", swarm::stack::free_port().unwrap());
    let mut agent = AgentProcess::spawn_with_registry(
        "customer-graph",
        &stack.bootstrap_servers,
        &away,
        &[
            "--set",
            "retry_max_ms=60000",
            "--set",
            "drain_timeout_ms=2000",
        ],
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, metrics) = agent.get("/metrics").await.unwrap();
    assert!(
        metric(
            &metrics,
            "loyalty_swarm_retries_total",
            &[("operation", "register_schema")]
        )
        .is_some_and(|n| n >= 1.0),
        "retrying while the registry is away:\n{metrics}"
    );
    let asked = std::time::Instant::now();
    let status = agent.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status}:\n{}", agent.log_tail());
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "took {:?}; retries back off up to a minute here",
        asked.elapsed()
    );
    stack.shutdown().await;
}
