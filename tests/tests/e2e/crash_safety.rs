//! customer-graph killed with SIGKILL again and again mid-replay ends with member-state
//! identical, byte for byte per member, to an uninterrupted run of the same fold: no
//! double counting, no loss. Each kill is shown to land mid-processing: input was still
//! waiting when it struck, and the next instance restored state the killed one wrote.
//! Run on each broker.

use crate::common;

use std::time::Duration;

use common::*;

on_each_broker!(sigkill_mid_replay_changes_nothing);

async fn sigkill_mid_replay_changes_nothing(broker: Broker) {
    let file = data("CDNOW_sample.txt");
    let reference = reference_bodies(&file);
    let stack = start_stack_on(broker).await;
    let replay = spawn_replay(&stack, &file);
    // The fold's own event-id check is narrowed to the last event, so what keeps a
    // replayed record from counting twice is the runtime's: input positions, and the
    // origins of re-keyed records (store-card holders' events are forwarded, and a
    // replay forwards them again).
    let args = [
        "--set",
        // Small batches: processing outlasts five kills and restores (20 was enough
        // until agents' producers stopped lingering 5 ms per awaited write).
        "batch_max_records=5",
        "--set",
        "agent.dedupe_window=1",
    ];
    let mut agent = AgentProcess::spawn("customer-graph", &stack, &args);
    let lag = || {
        swarm::inspect::group_lag(
            &stack.bootstrap_servers,
            "loyalty-swarm.customer-graph",
            &[loyalty_contracts::topics::MEMBER_EVENTS],
        )
        .unwrap()
    };
    // Per kill: input still waiting when it struck, and what the next instance restored
    // and skipped as already reflected. Each instance is killed once it has made progress
    // of its own and input is still waiting, so every kill lands mid-processing.
    let mut kills: Vec<(i64, f64, f64)> = Vec::new();
    for _ in 0..5 {
        agent.wait_ready(Duration::from_secs(60)).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let mut peak = 0;
        let waiting = loop {
            let now = lag();
            peak = peak.max(now);
            if now > 0 && now + 200 <= peak {
                break now;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no progress to interrupt (lag {now}, peak {peak}):\n{}",
                agent.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        agent.kill9();
        agent = AgentProcess::spawn("customer-graph", &stack, &args);
        agent.wait_ready(Duration::from_secs(60)).await;
        let (_, metrics) = agent.get("/metrics").await.unwrap();
        kills.push((
            waiting,
            sum(&metrics, "loyalty_swarm_restore_records_total"),
            sum(&metrics, "loyalty_swarm_replay_skipped_total"),
        ));
    }
    replay.await.unwrap().unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(600)).await;

    println!("kills (input waiting, changelog records restored, records skipped): {kills:?}");
    assert_eq!(kills.len(), 5);
    for (i, (waiting, restored, _)) in kills.iter().enumerate() {
        assert!(
            *waiting > 0 && *restored > 0.0,
            "kill {i} did not land mid-processing: {kills:?}"
        );
    }
    assert_matches_reference(&stack, &reference).await;
    drop(agent);
    stack.shutdown().await;
}

/// The sum of every series of `name` in a Prometheus exposition.
fn sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |total, v| total + v)
}
