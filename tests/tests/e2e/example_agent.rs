//! The example agent of the README's "Write an agent" (`agents/runtime/examples/
//! order_totals.rs`) runs on the embedded broker like any agent: it keeps each member's
//! order totals and publishes them, and dead-letters what it cannot use.

use std::collections::BTreeMap;
use std::time::Duration;

use loyalty_contracts::{PointsEarned, topics};
use loyalty_runtime::kafka;
use loyalty_runtime::registry::RegistryClient;
use serde::Deserialize;

use crate::common::{self, *};

/// What the example publishes, read back by field name.
#[derive(Debug, Deserialize, PartialEq)]
struct OrderTotals {
    member_id: String,
    orders: i64,
    spend_minor: i64,
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_example_agent_keeps_order_totals_on_the_embedded_broker() {
    let stack = start_stack().await;
    let events = member_event_encoder(&stack).await;
    // Like every output topic, the example's is created before the agent writes to it
    // (`swarm setup` does this for the contract's topics).
    kafka::ensure_topics(
        &stack.bootstrap_servers,
        &BTreeMap::new(),
        &[kafka::TopicSpec {
            name: "example.order-totals.v1".into(),
            partitions: PARTITIONS,
            replication: -1,
            compacted: true,
            retention_ms: None,
        }],
    )
    .await
    .unwrap();
    let agent = AgentProcess::spawn("examples/order_totals", &stack, &[]);
    agent.wait_ready(Duration::from_secs(60)).await;

    let mut points = order_event("p1", "m1", 0);
    points.payload = loyalty_contracts::Payload::PointsEarned(PointsEarned {
        points: 10,
        reason: "purchase".into(),
        qualifying: false,
    });
    let records = [
        order_event("o1", "m1", 1_000),
        order_event("o2", "m1", 2_500),
        points,
        order_event("o3", "m2", 700),
        order_event("o4", "m2", -5),
    ]
    .iter()
    .map(|e| {
        record(
            topics::MEMBER_EVENTS,
            &e.member_id,
            events.encode(e).unwrap(),
        )
    })
    .collect::<Vec<_>>();
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    kafka::produce_all(&producer, &records).await.unwrap();
    common::wait_caught_up_on(
        &stack,
        "order-totals",
        &[topics::MEMBER_EVENTS],
        Duration::from_secs(60),
    )
    .await;

    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let totals: BTreeMap<String, OrderTotals> = swarm::demo::decode_latest(
        &stack.bootstrap_servers,
        &registry,
        "example.order-totals.v1",
    )
    .await
    .unwrap();
    assert_eq!(
        totals.values().collect::<Vec<_>>(),
        [
            &OrderTotals {
                member_id: "m1".into(),
                orders: 2,
                spend_minor: 3_500,
            },
            &OrderTotals {
                member_id: "m2".into(),
                orders: 1,
                spend_minor: 700,
            },
        ]
    );
    let dead = swarm::inspect::all_records(&stack.bootstrap_servers, "order-totals.dlq")
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "the negative order, and only it");
    drop(agent);
    stack.shutdown().await;
}
