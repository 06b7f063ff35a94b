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
//! A second scenario: an event of the member in flight in the repartition topic when
//! the erasure is carried out is dropped; a request too big to receipt is
//! dead-lettered; a profile flagged as a re-enrolment brings the member back fresh,
//! and a replay from empty state brings back only what followed it.
//!
//! Both run on each broker.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::AvroSchema;
use common::*;
use loyalty_contracts::{
    ErasedId, ErasureReceipt, ErasureRequest, MemberEvent, MemberProfile, Removal, Timestamp,
    topics,
};
use loyalty_runtime::codec::Encoder;
use loyalty_runtime::kafka::{self, OutRecord};
use loyalty_runtime::registry::RegistryClient;
use rdkafka::admin::AdminOptions;

const CHANGELOG: &str = "customer-graph.members-changelog";
const REPARTITION: &str = "customer-graph.rekey-repartition";

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
    dropped_from(agent, topics::MEMBER_EVENTS).await
}

async fn dropped_from(agent: &AgentProcess, topic: &str) -> f64 {
    let (_, metrics) = agent.get("/metrics").await.unwrap();
    metric(
        &metrics,
        "loyalty_swarm_erased_dropped_total",
        &[("topic", topic)],
    )
    .unwrap_or(0.0)
}

/// The registry client, and encoders for member events and erasure requests.
async fn encoders(stack: &Stack) -> (RegistryClient, Encoder, Encoder) {
    let events = member_event_encoder(stack).await;
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let requests = swarm::replay::encoder(
        &registry,
        topics::ERASURE_REQUESTS,
        ErasureRequest::get_schema(),
    )
    .await
    .unwrap();
    (registry, events, requests)
}

/// Stop `agent` (customer-graph), delete its changelog and start it again in a new
/// group, which reads every input from the start with no state; returns it caught up.
async fn from_empty_state(stack: &Stack, mut agent: AgentProcess) -> AgentProcess {
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
        stack,
        &["--set", "group_id=loyalty-swarm.customer-graph-replay"],
    );
    replay.wait_ready(Duration::from_secs(60)).await;
    wait_caught_up(stack, "customer-graph-replay", Duration::from_secs(120)).await;
    replay
}

fn erasure_request(request_id: &str, member: &str) -> ErasureRequest {
    ErasureRequest {
        request_id: request_id.into(),
        member_id: member.into(),
        basis: "gdpr_art17".into(),
        requested_at: Timestamp(1_700_000_000_000),
        requested_by: Some("member".into()),
    }
}

on_each_broker!(an_erased_member_leaves_nothing_and_stays_erased_through_a_replay);

async fn an_erased_member_leaves_nothing_and_stays_erased_through_a_replay(broker: Broker) {
    let stack = start_stack_on(broker).await;
    let (registry, events, requests) = encoders(&stack).await;
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

    let request = erasure_request("r-1", "m1");
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
    let replay = from_empty_state(&stack, agent).await;
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

on_each_broker!(an_event_in_flight_stays_dropped_and_a_reenrolled_member_starts_fresh);

async fn an_event_in_flight_stays_dropped_and_a_reenrolled_member_starts_fresh(broker: Broker) {
    let stack = start_stack_on(broker).await;
    let (registry, events, requests) = encoders(&stack).await;
    let profiles = swarm::replay::encoder(
        &registry,
        topics::MEMBER_PROFILES,
        MemberProfile::get_schema(),
    )
    .await
    .unwrap();
    // Forwarded records are kept (no purge), so the test can write one again.
    let agent = AgentProcess::spawn(
        "customer-graph",
        &stack,
        &["--set", "repartition_purge_interval_ms=0"],
    );
    agent.wait_ready(Duration::from_secs(60)).await;
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let event =
        |key: &str, e: &MemberEvent| record(topics::MEMBER_EVENTS, key, events.encode(e).unwrap());
    let request = |r: &ErasureRequest| {
        record(
            topics::ERASURE_REQUESTS,
            &r.member_id,
            requests.encode(r).unwrap(),
        )
    };
    kafka::produce_all(
        &producer,
        &[
            event("card-1", &card_order("e1", 3)),
            event("m2", &order_event("e2", "m2", 500)),
        ],
    )
    .await
    .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    assert!(member_state_bodies(&stack).await.contains_key("m1"));
    let forwarded = swarm::inspect::all_records(&stack.bootstrap_servers, REPARTITION)
        .await
        .unwrap();
    let [(payload, headers)] = forwarded.as_slice() else {
        panic!("e1 forwarded once, not {forwarded:?}");
    };

    // m1 is erased; then the forward of e1 arrives (written before the erasure, read
    // after it: in flight, or written again by an origin's replay). It is dropped.
    kafka::produce_all(&producer, &[request(&erasure_request("r-1", "m1"))])
        .await
        .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    assert!(!member_state_bodies(&stack).await.contains_key("m1"));
    let in_flight = OutRecord {
        topic: REPARTITION.into(),
        partition: None,
        key: "m1".into(),
        payload: payload.clone(),
        timestamp: None,
        headers: headers.clone(),
    };
    kafka::produce_all(&producer, &[in_flight]).await.unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    assert!(
        !member_state_bodies(&stack).await.contains_key("m1"),
        "the forward in flight brought m1 back"
    );
    assert_eq!(dropped_from(&agent, REPARTITION).await, 1.0);

    // A request whose id could not key a receipt is dead-lettered, naming why; m2 stays.
    let oversized = ErasureRequest {
        request_id: "r".repeat(300),
        ..erasure_request("unused", "m2")
    };
    kafka::produce_all(&producer, &[request(&oversized)])
        .await
        .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    let dead = swarm::inspect::all_records(&stack.bootstrap_servers, "customer-graph.dlq")
        .await
        .unwrap();
    let reasons: Vec<&str> = dead
        .iter()
        .flat_map(|(_, h)| h.iter().filter(|(k, _)| k == "dlq.error.reason"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        reasons,
        ["erasure request: request_id is 300 bytes long (at most 256)"]
    );
    assert!(member_state_bodies(&stack).await.contains_key("m2"));
    assert_eq!(receipts(&stack, &registry).await.len(), 1);

    // A re-enrolling profile that is itself rejected (dated two hours after it was
    // logged) changes nothing, as any rejected record: m1 stays erased, so their next
    // order is dropped, and the registry does not say they came back.
    let early = now_ms();
    let rejected_return = MemberProfile {
        reenrolled_at: Some(Timestamp(early)),
        updated_at: Timestamp(early + 7_200_000),
        ..swarm::cdnow::profile("m1", loyalty_contracts::Date(9_862))
    };
    kafka::produce_all(
        &producer,
        &[record(
            topics::MEMBER_PROFILES,
            "m1",
            profiles.encode(&rejected_return).unwrap(),
        )],
    )
    .await
    .unwrap();
    let dropped_before = dropped(&agent).await;
    kafka::produce_all(
        &producer,
        &[event(
            "m1",
            &MemberEvent {
                occurred_at: Timestamp(early),
                ..order_event("e2b", "m1", 700)
            },
        )],
    )
    .await
    .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    assert!(!member_state_bodies(&stack).await.contains_key("m1"));
    assert_eq!(dropped(&agent).await, dropped_before + 1.0);
    let dead = swarm::inspect::all_records(&stack.bootstrap_servers, "customer-graph.dlq")
        .await
        .unwrap();
    assert_eq!(
        dead.len(),
        2,
        "the oversized request and the rejected profile"
    );

    // m1 comes back: a profile flagged as a re-enrolment, then a new order. Their state
    // holds only what followed; e1, under the still-erased store card, stays out.
    let now = now_ms();
    let returning = MemberProfile {
        reenrolled_at: Some(Timestamp(now)),
        ..swarm::cdnow::profile("m1", loyalty_contracts::Date(9_862))
    };
    let fresh_order = MemberEvent {
        occurred_at: Timestamp(now),
        ..order_event("e3", "m1", 4_000)
    };
    kafka::produce_all(
        &producer,
        &[record(
            topics::MEMBER_PROFILES,
            "m1",
            profiles.encode(&returning).unwrap(),
        )],
    )
    .await
    .unwrap();
    kafka::produce_all(
        &producer,
        &[
            event("m1", &fresh_order),
            event("card-1", &card_order("e4", 5)),
        ],
    )
    .await
    .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    let fresh = |states: &BTreeMap<String, Vec<u8>>, agent: &AgentProcess| {
        let Some(state) = states.get("m1") else {
            panic!("m1 is not back; log:\n{}", agent.log_tail());
        };
        decode_state(state).spend_minor
    };
    assert_eq!(fresh(&member_state_bodies(&stack).await, &agent), 4_000);
    let erased = swarm::inspect::latest_values(&stack.bootstrap_servers, topics::ERASURE_REGISTRY)
        .await
        .unwrap();
    let entries: Vec<ErasedId> = erased
        .values()
        .map(|bytes| {
            let (_, body) = loyalty_runtime::wire::split(bytes).unwrap();
            loyalty_runtime::codec::decode(&ErasedId::get_schema(), body).unwrap()
        })
        .collect();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.reenrolled_at == Some(Timestamp(now)))
            .count(),
        1,
        "m1's entry says when they came back, the card's does not: {entries:?}"
    );

    // From empty state, every input from the start: m1's history before the erasure
    // stays out, what followed the re-enrolment comes back, and the erasure request,
    // replayed, does not erase the member who came back.
    let replay = from_empty_state(&stack, agent).await;
    assert_eq!(fresh(&member_state_bodies(&stack).await, &replay), 4_000);
    stack.shutdown().await;
}
