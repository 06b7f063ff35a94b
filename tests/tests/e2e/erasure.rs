//! Erasure as the runtime carries it out, shown on customer-graph. An erasure request
//! removes the member's state and the member-state record, and registers the member and
//! their store card as keyed hashes. Then:
//! - a later event under either id is dropped;
//! - a repeated request removes nothing and is receipted again;
//! - after the changelog is deleted and every input replayed from the start by a new
//!   group, the member does not come back;
//! - `swarm erasure request` and `swarm erasure status` write and follow a request;
//! - Confluent's Python client reads the receipts.
//!
//! Runs on each broker.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::AvroSchema;
use common::*;
use loyalty_contracts::{ErasureReceipt, ErasureRequest, MemberEvent, Removal, Timestamp, topics};
use loyalty_runtime::kafka;
use loyalty_runtime::registry::RegistryClient;
use rdkafka::admin::AdminOptions;

const CHANGELOG: &str = "customer-graph.members-changelog";

/// An order of m1 that the store's point-of-sale reports under its card.
fn card_order(event_id: &str, day: i64) -> MemberEvent {
    MemberEvent {
        occurred_at: Timestamp(870_000_000_000 + day * 86_400_000),
        source: "pos".into(),
        source_member_id: Some("card-1".into()),
        ..order_event(event_id, "m1", 2_000)
    }
}

async fn receipts(stack: &Stack, registry: &RegistryClient) -> Vec<ErasureReceipt> {
    let mut out = Vec::new();
    for (value, _) in
        swarm::inspect::all_records(&stack.bootstrap_servers, topics::ERASURE_RECEIPTS)
            .await
            .unwrap()
    {
        let bytes = value.expect("a receipt");
        let (id, body) = loyalty_runtime::wire::split(&bytes).unwrap();
        let schema = registry.schema(id).await.unwrap();
        out.push(loyalty_runtime::codec::decode(schema.as_ref(), body).unwrap());
    }
    out
}

async fn dropped(agent: &AgentProcess) -> f64 {
    let (_, metrics) = agent.get("/metrics").await.unwrap();
    metric(
        &metrics,
        "loyalty_swarm_erased_dropped_total",
        &[("topic", topics::MEMBER_EVENTS)],
    )
    .unwrap_or(0.0)
}

on_each_broker!(an_erased_member_leaves_nothing_and_stays_erased_through_a_replay);

async fn an_erased_member_leaves_nothing_and_stays_erased_through_a_replay(broker: Broker) {
    let stack = start_stack_on(broker).await;
    let events = member_event_encoder(&stack).await;
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let requests = swarm::replay::encoder(
        &registry,
        topics::ERASURE_REQUESTS,
        ErasureRequest::get_schema(),
    )
    .await
    .unwrap();
    let agent = AgentProcess::spawn("customer-graph", &stack, &[]);
    agent.wait_ready(Duration::from_secs(60)).await;
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let event =
        |key: &str, e: &MemberEvent| record(topics::MEMBER_EVENTS, key, events.encode(e).unwrap());
    kafka::produce_all(
        &producer,
        &[
            event("m1", &order_event("e1", "m1", 1_000)),
            event("card-1", &card_order("e2", 3)),
            event("m2", &order_event("e3", "m2", 500)),
        ],
    )
    .await
    .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    let states = member_state_bodies(&stack).await;
    assert!(states.contains_key("m1") && states.contains_key("m2"));

    let request = ErasureRequest {
        request_id: "r-1".into(),
        member_id: "m1".into(),
        basis: "gdpr_art17".into(),
        requested_at: Timestamp(1_700_000_000_000),
        requested_by: Some("member".into()),
    };
    let erase = record(
        topics::ERASURE_REQUESTS,
        "m1",
        requests.encode(&request).unwrap(),
    );
    kafka::produce_all(&producer, std::slice::from_ref(&erase))
        .await
        .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;

    let receipts_now = receipts(&stack, &registry).await;
    let [receipt] = receipts_now.as_slice() else {
        panic!("one receipt, not {receipts_now:?}");
    };
    assert_eq!(
        (
            receipt.request_id.as_str(),
            receipt.agent.as_str(),
            receipt.erased_ids
        ),
        ("r-1", "customer-graph", 2),
        "the member and their store card"
    );
    for place in ["state:members", &format!("topic:{}", topics::MEMBER_STATE)] {
        assert!(
            receipt.removed.contains(&Removal {
                place: place.to_owned(),
                count: 1
            }),
            "{place} missing from {:?}",
            receipt.removed
        );
    }
    // An outside consumer reads the receipts: Confluent's Python client.
    let read = python_read(&stack, &[topics::ERASURE_RECEIPTS]);
    assert_eq!(
        read[topics::ERASURE_RECEIPTS],
        serde_json::json!({"records": 1, "requests": ["r-1"], "agents": ["customer-graph"]})
    );
    let states = member_state_bodies(&stack).await;
    assert!(
        !states.contains_key("m1"),
        "m1's member-state is tombstoned"
    );
    assert!(states.contains_key("m2"), "m2 is untouched");
    // The registry names neither id in the clear.
    let erased = swarm::inspect::latest_values(&stack.bootstrap_servers, topics::ERASURE_REGISTRY)
        .await
        .unwrap();
    assert_eq!(erased.len(), 2, "{:?}", erased.keys());
    for (key, value) in &erased {
        assert!(key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()));
        let text = String::from_utf8_lossy(value);
        assert!(!text.contains("m1") && !text.contains("card-1"));
    }

    // Later events under either id are dropped, and counted.
    kafka::produce_all(
        &producer,
        &[
            event("m1", &order_event("e4", "m1", 700)),
            event("card-1", &card_order("e5", 9)),
        ],
    )
    .await
    .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    assert!(!member_state_bodies(&stack).await.contains_key("m1"));
    assert_eq!(dropped(&agent).await, 2.0);

    // The same request again: nothing left to remove, receipted again.
    kafka::produce_all(&producer, std::slice::from_ref(&erase))
        .await
        .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    let again = receipts(&stack, &registry).await;
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(again[1].removed.is_empty(), "{:?}", again[1].removed);

    // From empty state: the changelog deleted, and a new group reads every input from
    // the start. The registry, read before the first record, keeps m1 out.
    let mut agent = agent;
    assert!(agent.terminate(Duration::from_secs(30)).success());
    let admin = kafka::admin_client(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    for result in admin
        .delete_topics(&[CHANGELOG], &AdminOptions::new())
        .await
        .unwrap()
    {
        result.unwrap();
    }
    let replay = AgentProcess::spawn(
        "customer-graph",
        &stack,
        &["--set", "group_id=loyalty-swarm.customer-graph-replay"],
    );
    replay.wait_ready(Duration::from_secs(60)).await;
    wait_caught_up(&stack, "customer-graph-replay", Duration::from_secs(120)).await;
    assert!(
        !member_state_bodies(&stack).await.contains_key("m1"),
        "m1 came back on a replay; log:\n{}",
        replay.log_tail()
    );
    // e1, e2 (under the card), e4 and e5: every event of m1 ever written.
    assert_eq!(dropped(&replay).await, 4.0, "{}", replay.log_tail());
    let changelog = swarm::inspect::latest_values(&stack.bootstrap_servers, CHANGELOG)
        .await
        .unwrap();
    assert!(!changelog.contains_key("m1") && changelog.contains_key("m2"));

    // The CLI: only customer-graph runs, so the request stays pending (exit 3) and says
    // which agents are missing and which streams may still hold the member's records.
    let (code, out) = swarm_cli(&stack, &["erasure", "status", "r-1"]);
    assert_eq!(code, 3, "{out}");
    for line in [
        "customer-graph: at",
        "cohort: not confirmed yet",
        "compliance-gate: not confirmed yet",
        topics::OFFER_PROPOSALS,
        "customer-graph.dlq",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    let (code, out) = swarm_cli(
        &stack,
        &["erasure", "request", "m2", "--requested-by", "member"],
    );
    assert_eq!(code, 0, "{out}");
    let request_id = out.trim().to_owned();
    assert!(request_id.starts_with("erasure-") && !request_id.contains("m2"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) = swarm_cli(&stack, &["erasure", "status", &request_id, "--json"]);
        if status.contains("\"agent\": \"customer-graph\"") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!member_state_bodies(&stack).await.contains_key("m2"));
    stack.shutdown().await;
}
