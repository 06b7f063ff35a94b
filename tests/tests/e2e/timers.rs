//! Timers are state: a wall-clock timer scheduled before a SIGKILL fires after the
//! restart, on the instance that took the partition over; a stream-time timer fires after
//! the same record however often the agent is killed, so a replay re-emits the same
//! reminder (same id, same position). The agent is the runtime's example of timers,
//! `agents/runtime/examples/reminders.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use loyalty_contracts::topics;
use loyalty_runtime::kafka::{self, OutRecord};
use loyalty_runtime::registry::RegistryClient;
use serde::Deserialize;

use crate::common::*;

const AGENT: &str = "examples/reminders";

/// A reminder, read back by field name.
#[derive(Debug, Clone, Deserialize, PartialEq)]
struct Reminder {
    id: String,
    member_id: String,
    kind: String,
    due_at: i64,
    stream_time: i64,
    orders: i64,
}

async fn stack_with_reminders() -> Stack {
    let stack = start_stack().await;
    kafka::ensure_topics(
        &stack.bootstrap_servers,
        &BTreeMap::new(),
        &[kafka::TopicSpec {
            name: "example.reminders.v1".into(),
            partitions: PARTITIONS,
            replication: -1,
            compacted: false,
            retention_ms: None,
        }],
    )
    .await
    .unwrap();
    stack
}

/// Every reminder written, duplicates included, in topic order.
async fn reminders(stack: &Stack) -> Vec<Reminder> {
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let mut out = Vec::new();
    for (value, _) in swarm::inspect::all_records(&stack.bootstrap_servers, "example.reminders.v1")
        .await
        .unwrap()
    {
        let bytes = value.unwrap();
        let (id, body) = loyalty_runtime::wire::split(&bytes).unwrap();
        let schema = registry.schema(id).await.unwrap();
        out.push(loyalty_runtime::codec::decode(&schema, body).unwrap());
    }
    out
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wall_clock_timer_fires_after_a_sigkill_on_the_next_instance() {
    let stack = stack_with_reminders().await;
    let events = member_event_encoder(&stack).await;
    let args = [
        "--set",
        "agent.delay_ms=8000",
        "--set",
        "agent.lapse_ms=3600000",
    ];
    let mut first = AgentProcess::spawn(AGENT, &stack, &args);
    first.wait_ready(Duration::from_secs(60)).await;
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let written = now_ms();
    kafka::produce_all(
        &producer,
        &[OutRecord {
            timestamp: Some(written),
            ..record(
                topics::MEMBER_EVENTS,
                "m1",
                events.encode(&order_event("o1", "m1", 100)).unwrap(),
            )
        }],
    )
    .await
    .unwrap();
    wait_caught_up_on(
        &stack,
        "reminders",
        &[topics::MEMBER_EVENTS],
        Duration::from_secs(30),
    )
    .await;
    assert!(reminders(&stack).await.is_empty(), "not due yet");
    first.kill9();

    let second = AgentProcess::spawn(AGENT, &stack, &args);
    second.wait_ready(Duration::from_secs(60)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let fired = loop {
        let fired = reminders(&stack).await;
        if !fired.is_empty() {
            break fired;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the thank-you never fired:\n{}",
            second.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let timer = loyalty_runtime::Timer {
        name: "thank-you".into(),
        clock: loyalty_runtime::Clock::WallClock,
        at: written + 8_000,
    };
    // The stream time a task resumes from comes from its commits' metadata, which
    // tansu 0.6.0 does not give back (vendor/README.md); on Kafka it is `written`.
    assert!([written, -1].contains(&fired[0].stream_time), "{fired:?}");
    assert_eq!(
        fired,
        [Reminder {
            id: timer.id("m1"),
            member_id: "m1".into(),
            kind: "thank-you".into(),
            due_at: written + 8_000,
            stream_time: fired[0].stream_time,
            orders: 1,
        }]
    );
    assert!(now_ms() >= written + 8_000, "not before it was due");
    let (_, metrics) = second.get("/metrics").await.unwrap();
    assert_eq!(
        metric(
            &metrics,
            "loyalty_swarm_timers_fired_total",
            &[("clock", "wall_clock"), ("outcome", "fired")]
        ),
        Some(1.0),
        "fired by the instance that took over"
    );
    drop(second);
    stack.shutdown().await;
}

/// Orders of 24 members, ten seconds of log time apart, members taking turns: each
/// member's lapse (30 s after its last order) fires after some later record of its
/// partition.
fn orders(events: &loyalty_runtime::codec::Encoder, start: i64) -> Vec<OutRecord> {
    (0..400)
        .map(|i| {
            let member = format!("m{}", i % 24);
            OutRecord {
                timestamp: Some(start + i * 10_000),
                ..record(
                    topics::MEMBER_EVENTS,
                    &member,
                    events
                        .encode(&order_event(&format!("o{i}"), &member, 100))
                        .unwrap(),
                )
            }
        })
        .collect()
}

/// Run the reminders agent over `orders`, SIGKILLing it `kills` times on the way; every
/// lapse reminder by id (a replay may write one twice, byte for byte the same).
async fn lapses(kills: usize) -> BTreeMap<String, Reminder> {
    let stack = stack_with_reminders().await;
    let events = member_event_encoder(&stack).await;
    let args = [
        "--set",
        "agent.delay_ms=86400000",
        "--set",
        "agent.lapse_ms=30000",
        "--set",
        "batch_max_records=20",
    ];
    let mut agent = AgentProcess::spawn(AGENT, &stack, &args);
    agent.wait_ready(Duration::from_secs(60)).await;
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let all = orders(&events, now_ms() - 3_600_000);
    for (i, chunk) in all.chunks(all.len() / (kills + 1) + 1).enumerate() {
        kafka::produce_all(&producer, chunk).await.unwrap();
        if i < kills {
            tokio::time::sleep(Duration::from_millis(700)).await;
            agent.kill9();
            agent = AgentProcess::spawn(AGENT, &stack, &args);
            agent.wait_ready(Duration::from_secs(60)).await;
        }
    }
    wait_caught_up_on(
        &stack,
        "reminders",
        &[topics::MEMBER_EVENTS],
        Duration::from_secs(120),
    )
    .await;
    let mut by_id: BTreeMap<String, Reminder> = BTreeMap::new();
    for r in reminders(&stack)
        .await
        .into_iter()
        .filter(|r| r.kind == "lapse")
    {
        if let Some(seen) = by_id.get(&r.id) {
            assert_eq!(seen, &r, "a second copy is the same reminder");
        }
        by_id.insert(r.id.clone(), r);
    }
    drop(agent);
    stack.shutdown().await;
    by_id
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_time_timer_fires_after_the_same_record_on_replay() {
    let uninterrupted = lapses(0).await;
    assert!(
        uninterrupted.len() > 24,
        "lapses fired: {}",
        uninterrupted.len()
    );
    for r in uninterrupted.values() {
        assert!(
            r.stream_time >= r.due_at,
            "fired only once stream time passed it: {r:?}"
        );
    }
    let killed = lapses(3).await;
    // Ids carry the due time, and the log times are the same in both runs relative to
    // their start; compare what identifies a firing's place: member, order count, and
    // how far past the due time the stream was.
    let places = |m: &BTreeMap<String, Reminder>| -> Vec<(String, i64, i64)> {
        let mut v: Vec<_> = m
            .values()
            .map(|r| (r.member_id.clone(), r.orders, r.stream_time - r.due_at))
            .collect();
        v.sort();
        v
    };
    assert_eq!(places(&killed), places(&uninterrupted));
}
