//! Bad input goes to `customer-graph.dlq` with headers naming the reason and the source
//! position, and the partition keeps flowing: a good record behind the bad ones is still
//! processed.
//! Run on each broker.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::AvroSchema;
use common::*;
use loyalty_contracts::{Date, Payload, PointsEarned, Program, TierChanged, topics};
use loyalty_runtime::codec::{Encoder, leak};
use loyalty_runtime::kafka::{self, OutRecord};
use loyalty_runtime::registry::RegistryClient;

/// A record on partition 0, so the DLQ's source offsets are predictable.
fn raw(topic: &str, key: &str, payload: Vec<u8>) -> OutRecord {
    OutRecord {
        partition: Some(0),
        ..record(topic, key, payload)
    }
}

on_each_broker!(bad_records_are_dead_lettered_with_reasons_and_the_partition_keeps_flowing);

async fn bad_records_are_dead_lettered_with_reasons_and_the_partition_keeps_flowing(
    broker: Broker,
) {
    let stack = start_stack_on(broker).await;
    let started = now_ms();
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let events = member_event_encoder(&stack).await;
    let program_schema = Program::get_schema();
    let program_id = registry
        .register(&format!("{}-value", topics::PROGRAMS), &program_schema)
        .await
        .unwrap();
    let programs = Encoder::new(program_id, leak(program_schema)).unwrap();

    let mut overlapping = swarm::cdnow::demo_program();
    overlapping.program_id = "overlapping".into();
    overlapping.tiers[2].threshold = 5_000; // gold below silver
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let demo = swarm::cdnow::demo_program();
    kafka::produce_all(
        &producer,
        &[
            raw(
                topics::PROGRAMS,
                &demo.program_id,
                programs.encode(&demo).unwrap(),
            ),
            raw(
                topics::PROGRAMS,
                "overlapping",
                programs.encode(&overlapping).unwrap(),
            ),
        ],
    )
    .await
    .unwrap();

    let agent = AgentProcess::spawn("customer-graph", &stack, &[]);
    agent.wait_ready(Duration::from_secs(60)).await;

    let mut unknown_id = events
        .encode(&order_event("e-unknown", "m-bad", 100))
        .unwrap();
    unknown_id[1..5].copy_from_slice(&9999u32.to_be_bytes());
    // An id above i32::MAX, as random bytes starting with 0x00 name: the registry cannot
    // hold it, which is the record's problem, not an outage.
    let mut beyond_i32 = events
        .encode(&order_event("e-beyond", "m-bad", 100))
        .unwrap();
    beyond_i32[1..5].copy_from_slice(&2_453_133_971u32.to_be_bytes());
    let earn = |id: &str, points: i64| {
        let mut e = order_event(id, "m-big", 0);
        e.payload = Payload::PointsEarned(PointsEarned {
            points,
            reason: "hostile".into(),
            qualifying: false,
        });
        e
    };
    let dated = |id: &str, year: i32| {
        let mut e = order_event(id, "m-bad", 100);
        e.occurred_at = Date::from_ymd(year, 12, 31).unwrap().start();
        e
    };
    let mut unknown_tier = order_event("e-tier", "m-bad", 0);
    unknown_tier.payload = Payload::TierChanged(TierChanged {
        program_id: swarm::cdnow::PROGRAM_ID.into(),
        from_tier: None,
        to_tier: "platinum".into(),
        reason: "manual".into(),
    });
    // Accepted first, so the second earning of i64::MAX would overflow the balance.
    let first_earning = raw(
        topics::MEMBER_EVENTS,
        "m-big",
        events.encode(&earn("e-big-1", i64::MAX)).unwrap(),
    );
    let bad = [
        (
            "not_wire_format",
            raw(
                topics::MEMBER_EVENTS,
                "m-bad",
                b"definitely not avro".to_vec(),
            ),
        ),
        (
            "unknown_schema_id",
            raw(topics::MEMBER_EVENTS, "m-bad", unknown_id),
        ),
        (
            "unknown_schema_id",
            raw(topics::MEMBER_EVENTS, "m-bad", beyond_i32),
        ),
        (
            "contract_violation",
            raw(
                topics::MEMBER_EVENTS,
                "m-big",
                events.encode(&earn("e-big-2", i64::MAX)).unwrap(),
            ),
        ),
        (
            "contract_violation",
            raw(
                topics::MEMBER_EVENTS,
                "m-bad",
                events.encode(&dated("e-9999", 9999)).unwrap(),
            ),
        ),
        (
            "contract_violation",
            raw(
                topics::MEMBER_EVENTS,
                "m-bad",
                events.encode(&dated("e-0001", 1)).unwrap(),
            ),
        ),
        (
            "undecodable",
            raw(topics::MEMBER_EVENTS, "m-bad", {
                let mut b = events.encode(&order_event("e-trunc", "m-bad", 1)).unwrap();
                b.truncate(12);
                b
            }),
        ),
        (
            "contract_violation",
            raw(
                topics::MEMBER_EVENTS,
                "m-bad",
                events.encode(&order_event("e-nomember", "", 100)).unwrap(),
            ),
        ),
        (
            "contract_violation",
            raw(
                topics::MEMBER_EVENTS,
                "m-bad",
                events
                    .encode(&order_event("e-negative", "m-bad", -5))
                    .unwrap(),
            ),
        ),
        (
            "contract_violation",
            raw(
                topics::MEMBER_EVENTS,
                "m-bad",
                events.encode(&unknown_tier).unwrap(),
            ),
        ),
    ];
    let mut records = vec![first_earning];
    records.extend(bad.iter().map(|(_, r)| r.clone()));
    // Records on the repartition topic that no agent forwarded: one without origin
    // headers, and one whose key is not its member (it would be forwarded again).
    records.push(raw(
        "customer-graph.rekey-repartition",
        "m-forged",
        events
            .encode(&order_event("e-forged", "m-forged", 1))
            .unwrap(),
    ));
    records.push(OutRecord {
        headers: [
            ("loyalty.origin.topic", topics::MEMBER_EVENTS),
            ("loyalty.origin.partition", "7"),
            ("loyalty.origin.offset", "42"),
            ("loyalty.origin.floor", "40"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
        ..raw(
            "customer-graph.rekey-repartition",
            "m-loop",
            events
                .encode(&order_event("e-loop", "m-elsewhere", 1))
                .unwrap(),
        )
    });
    records.push(raw(
        topics::MEMBER_EVENTS,
        "m-good",
        events
            .encode(&order_event("e-good", "m-good", 1234))
            .unwrap(),
    ));
    kafka::produce_all(&producer, &records).await.unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;

    let dead = swarm::inspect::all_records(&stack.bootstrap_servers, "customer-graph.dlq")
        .await
        .unwrap();
    let header = |headers: &Vec<(String, String)>, name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} header"))
    };
    // The overlapping program is rejected from the reference table the same way.
    let program_letter = dead
        .iter()
        .find(|(_, h)| header(h, "dlq.source.topic") == topics::PROGRAMS)
        .expect("the overlapping program is dead-lettered");
    assert!(
        header(&program_letter.1, "dlq.error.reason").contains("overlap"),
        "{:?}",
        program_letter.1
    );

    let event_letters: Vec<_> = dead
        .iter()
        .filter(|(_, h)| {
            header(h, "dlq.source.topic") == topics::MEMBER_EVENTS
                && !header(h, "dlq.error.reason").contains("re-keyed again")
        })
        .collect();
    assert_eq!(
        event_letters.len(),
        bad.len(),
        "every bad event and only those: {event_letters:?}"
    );
    for (i, (kind, record)) in bad.iter().enumerate() {
        let (payload, headers) = event_letters[i];
        assert_eq!(
            &header(headers, "dlq.error.kind"),
            kind,
            "record {i}: {headers:?}"
        );
        assert_eq!(header(headers, "dlq.source.partition"), "0");
        assert_eq!(header(headers, "dlq.source.offset"), (i + 1).to_string());
        assert_eq!(header(headers, "dlq.agent"), "customer-graph");
        assert!(!header(headers, "dlq.agent.version").is_empty());
        // The source record's log timestamp (the producer's, here), kept as a header.
        let logged: i64 = header(headers, "dlq.source.timestamp").parse().unwrap();
        assert!(
            (started..=now_ms()).contains(&logged),
            "record {i} logged at {logged}"
        );
        assert!(!header(headers, "dlq.error.reason").is_empty());
        assert_eq!(
            payload.as_deref(),
            record.payload.as_deref(),
            "the original bytes are kept"
        );
    }
    let reasons: Vec<String> = event_letters
        .iter()
        .map(|(_, h)| header(h, "dlq.error.reason"))
        .collect();
    assert!(reasons[2].contains("2453133971"), "{}", reasons[2]);
    assert!(reasons[3].contains("overflows"), "{}", reasons[3]);
    assert!(reasons[4].contains("log timestamp"), "{}", reasons[4]);
    assert!(reasons[5].contains("before 1970"), "{}", reasons[5]);
    assert!(reasons[7].contains("member_id"), "{}", reasons[7]);
    assert!(reasons[8].contains("negative"), "{}", reasons[8]);
    assert!(reasons[9].contains("unknown tier"), "{}", reasons[9]);

    let forged: Vec<String> = dead
        .iter()
        .filter(|(_, h)| header(h, "dlq.source.topic") == "customer-graph.rekey-repartition")
        .map(|(_, h)| header(h, "dlq.error.reason"))
        .collect();
    assert_eq!(forged.len(), 1, "{forged:?}");
    assert!(forged[0].contains("loyalty.origin.topic"), "{forged:?}");
    // The other names its origin, so the DLQ names that position.
    let looped = dead
        .iter()
        .find(|(_, h)| header(h, "dlq.error.reason").contains("re-keyed again"))
        .expect("a record re-keyed twice is dead-lettered");
    assert_eq!(
        [
            header(&looped.1, "dlq.source.topic"),
            header(&looped.1, "dlq.source.partition"),
            header(&looped.1, "dlq.source.offset"),
        ],
        [topics::MEMBER_EVENTS.to_owned(), "7".into(), "42".into()]
    );

    let states = member_state_bodies(&stack).await;
    assert_eq!(
        states.keys().collect::<Vec<_>>(),
        vec!["m-big", "m-good"],
        "the partition kept flowing past the bad records"
    );
    assert_eq!(decode_state(&states["m-good"]).spend_minor, 1234);
    let big = decode_state(&states["m-big"]);
    assert_eq!(
        (big.points.balance, big.points.earned),
        (i64::MAX, i64::MAX),
        "the overflowing earning left no trace"
    );
    assert!(
        big.as_of.0 < 4_102_444_800_000,
        "no event moved the member past 2100"
    );
    let (_, metrics) = agent.get("/metrics").await.unwrap();
    assert_eq!(
        metric(
            &metrics,
            "loyalty_swarm_dlq_records_total",
            &[("reason", "contract_violation")]
        ),
        Some(9.0),
        "{metrics}"
    );
    drop(agent);
    stack.shutdown().await;
}
