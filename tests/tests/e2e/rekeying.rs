//! Identity re-keying: an event its source system keyed by its own id reaches the
//! member's state through customer-graph's repartition topic, and a second copy of a
//! forwarded record (what an origin's replay after a crash writes) changes nothing.
//! The first two tests run on each broker (the second is the repartition purge).

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use loyalty_contracts::{MemberEvent, Timestamp, topics};
use loyalty_runtime::kafka::{self, OutRecord};

const REPARTITION: &str = "customer-graph.rekey-repartition";

/// An order of member m1 that the store's point-of-sale reports under its card.
fn store_order(event_id: &str, amount_minor: i64, day: i64) -> MemberEvent {
    MemberEvent {
        occurred_at: Timestamp(870_000_000_000 + day * 86_400_000),
        source: "pos".into(),
        source_member_id: Some("card-1".into()),
        ..order_event(event_id, "m1", amount_minor)
    }
}

on_each_broker!(events_keyed_by_a_source_id_are_applied_once_under_their_member);

async fn events_keyed_by_a_source_id_are_applied_once_under_their_member(broker: Broker) {
    let stack = start_stack_on(broker).await;
    let events = member_event_encoder(&stack).await;
    // The fold's own event-id check remembers only the last event, so only the
    // runtime's record of applied origins can recognise the second copies below. The
    // forwarded records are kept (no purge) so the test can send them again.
    let agent = AgentProcess::spawn(
        "customer-graph",
        &stack,
        &[
            "--set",
            "agent.dedupe_window=1",
            "--set",
            "repartition_purge_interval_ms=0",
        ],
    );
    agent.wait_ready(Duration::from_secs(60)).await;
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let by_card = |event: &MemberEvent| {
        record(
            topics::MEMBER_EVENTS,
            "card-1",
            events.encode(event).unwrap(),
        )
    };
    kafka::produce_all(
        &producer,
        &[
            by_card(&store_order("e1", 1_000, 0)),
            by_card(&store_order("e2", 2_000, 3)),
        ],
    )
    .await
    .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;

    let forwarded = swarm::inspect::all_records(&stack.bootstrap_servers, REPARTITION)
        .await
        .unwrap();
    assert_eq!(forwarded.len(), 2, "both events were forwarded");
    let origin = |headers: &Vec<(String, String)>, name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    for (_, headers) in &forwarded {
        assert_eq!(
            origin(headers, "loyalty.origin.topic"),
            topics::MEMBER_EVENTS
        );
    }
    let state = decode_state(&member_state_bodies(&stack).await["m1"]);
    assert_eq!(
        (state.spend_minor, state.btyd.as_ref().unwrap().x),
        (3_000, 1)
    );
    assert_eq!(state.identity_links, vec!["pos:card-1".to_owned()]);
    assert!(
        !member_state_bodies(&stack).await.contains_key("card-1"),
        "no state under the source id"
    );

    // A forwarded record again, with its origin headers (as an origin that replayed it
    // after a crash writes it), or with its floor header replaced.
    let copy = |(payload, headers): &(Option<Vec<u8>>, Vec<(String, String)>),
                floor: Option<String>| OutRecord {
        topic: REPARTITION.into(),
        partition: None,
        key: "m1".into(),
        payload: payload.clone(),
        timestamp: None,
        headers: headers
            .iter()
            .map(|(k, v)| match (&floor, k.as_str()) {
                (Some(f), "loyalty.origin.floor") => (k.clone(), f.clone()),
                _ => (k.clone(), v.clone()),
            })
            .collect(),
    };
    let skipped = || async {
        let (_, metrics) = agent.get("/metrics").await.unwrap();
        metric(
            &metrics,
            "loyalty_swarm_replay_skipped_total",
            &[("topic", REPARTITION)],
        )
    };
    // Copies at or above the floor: recognised by the offsets applied.
    let copies: Vec<OutRecord> = forwarded.iter().map(|r| copy(r, None)).collect();
    kafka::produce_all(&producer, &copies).await.unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    let again = decode_state(&member_state_bodies(&stack).await["m1"]);
    assert_eq!(again, state, "second copies change nothing");
    assert_eq!(skipped().await, Some(2.0));

    // A later batch raises the floor; copies below it are recognised by the floor alone
    // (the set of applied offsets has been pruned), and a copy below its own floor too.
    kafka::produce_all(&producer, &[by_card(&store_order("e3", 4_000, 9))])
        .await
        .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    let third = decode_state(&member_state_bodies(&stack).await["m1"]);
    assert_eq!(third.spend_minor, 7_000);
    let all = swarm::inspect::all_records(&stack.bootstrap_servers, REPARTITION)
        .await
        .unwrap();
    let e3 = all
        .iter()
        .find(|(_, h)| origin(h, "loyalty.origin.floor") != "0")
        .expect("e3 was forwarded from a later batch");
    let e3_offset: i64 = origin(&e3.1, "loyalty.origin.offset").parse().unwrap();
    let mut copies: Vec<OutRecord> = forwarded.iter().map(|r| copy(r, None)).collect();
    copies.push(copy(e3, Some((e3_offset + 1).to_string())));
    kafka::produce_all(&producer, &copies).await.unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    let again = decode_state(&member_state_bodies(&stack).await["m1"]);
    assert_eq!(again, third, "second copies change nothing");
    assert_eq!(skipped().await, Some(5.0));

    let (_, metrics) = agent.get("/metrics").await.unwrap();
    assert_eq!(
        metric(
            &metrics,
            "loyalty_swarm_records_rekeyed_total",
            &[("topic", topics::MEMBER_EVENTS)]
        ),
        Some(3.0),
        "{metrics}"
    );
    drop(agent);
    stack.shutdown().await;
}

on_each_broker!(forwarded_records_are_purged_once_committed);

/// The repartition topic's records are deleted once the group has committed past them
/// (Kafka Streams' repartition purge), also when no further input comes, after the
/// member's state has them.
async fn forwarded_records_are_purged_once_committed(broker: Broker) {
    let stack = start_stack_on(broker).await;
    let events = member_event_encoder(&stack).await;
    let agent = AgentProcess::spawn(
        "customer-graph",
        &stack,
        &["--set", "repartition_purge_interval_ms=200"],
    );
    agent.wait_ready(Duration::from_secs(60)).await;
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let purged = || async {
        let ranges = wait_emptied(&stack, REPARTITION, Duration::from_secs(30)).await;
        assert!(
            ranges.values().all(|(low, high)| low == high),
            "not purged: {ranges:?}\n{}",
            agent.log_tail()
        );
        ranges.values().map(|(_, high)| high).sum::<i64>()
    };
    for (round, (event_id, day)) in [("e1", 0), ("e2", 3)].into_iter().enumerate() {
        let event = events.encode(&store_order(event_id, 1_000, day)).unwrap();
        kafka::produce_all(&producer, &[record(topics::MEMBER_EVENTS, "card-1", event)])
            .await
            .unwrap();
        wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
        assert_eq!(purged().await, round as i64 + 1, "forwarded, then purged");
    }
    let state = decode_state(&member_state_bodies(&stack).await["m1"]);
    assert_eq!(
        (state.spend_minor, state.btyd.as_ref().unwrap().x),
        (2_000, 1),
        "both events applied before their forwards were purged"
    );
    let (_, metrics) = agent.get("/metrics").await.unwrap();
    assert!(
        metric(
            &metrics,
            "loyalty_swarm_repartition_purges_total",
            &[("outcome", "purged")]
        )
        .is_some_and(|n| n >= 2.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "loyalty_swarm_repartition_purges_total",
            &[("outcome", "failed")]
        ),
        None
    );
    drop(agent);
    stack.shutdown().await;
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repartition_topic_with_another_partition_count_stops_the_agent_at_start_up() {
    let stack = start_stack().await;
    kafka::ensure_topics(
        &stack.bootstrap_servers,
        &BTreeMap::new(),
        &[kafka::TopicSpec {
            name: REPARTITION.into(),
            partitions: 3,
            replication: 1,
            compacted: false,
            retention_ms: None,
        }],
    )
    .await
    .unwrap();
    let mut agent = AgentProcess::spawn("customer-graph", &stack, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = agent.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent kept running:\n{}",
            agent.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success(), "{status:?}");
    let log = agent.log_tail();
    assert!(
        log.contains("partition counts differ") && log.contains(&format!("{REPARTITION} has 3")),
        "{log}"
    );
    stack.shutdown().await;
}
