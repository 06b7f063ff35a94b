//! The Java producer as an outside peer: member events keyed by member id with the Java
//! client's default partitioner land on the partition the swarm's own producer picks
//! for the same member's profile, so customer-graph's co-partitioned join sees both on
//! one task. murmur2 compatibility is proven here, not assumed: a member whose events
//! and profile met on different tasks would end with a profile snapshot that has none
//! of its spend. (The Java read_committed consumer is in `exactly_once`.)

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::AvroSchema;
use common::*;
use loyalty_contracts::{MemberProfile, Timestamp, topics};
use loyalty_runtime::codec::{Encoder, leak};
use loyalty_runtime::registry::RegistryClient;
use rdkafka::producer::FutureRecord;
use swarm::cdnow;

const MEMBERS: usize = 300;
const ORDERS_PER_MEMBER: usize = 3;
const AMOUNT_MINOR: i64 = 1_250;

on_each_broker!(a_java_producer_co_partitions_with_the_swarm);

async fn a_java_producer_co_partitions_with_the_swarm(broker: Broker) {
    let stack = start_stack_on(broker).await;
    let agent = AgentProcess::spawn("customer-graph", &stack, &[]);
    agent.wait_ready(Duration::from_secs(60)).await;
    let members: Vec<String> = (0..MEMBERS).map(|i| format!("java-member-{i}")).collect();

    // The Java producer writes every member's orders first.
    let events = member_event_encoder(&stack).await;
    let lines: Vec<String> = members
        .iter()
        .flat_map(|member| {
            let events = &events;
            (0..ORDERS_PER_MEMBER).map(move |n| {
                let event = order_event(&format!("{member}-order-{n}"), member, AMOUNT_MINOR);
                format!("{member}\t{}", kafka::hex(&events.encode(&event).unwrap()))
            })
        })
        .collect();
    let file = std::env::temp_dir().join(format!("loyalty-java-events-{}.tsv", std::process::id()));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let sent = kafka::java_clients(&[
        "produce",
        &stack.bootstrap_servers,
        topics::MEMBER_EVENTS,
        file.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(sent.len(), MEMBERS * ORDERS_PER_MEMBER);
    let java_partition: BTreeMap<String, i32> = sent
        .iter()
        .map(|line| (line[0].clone(), line[1].parse().unwrap()))
        .collect();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;

    // Then the swarm's producer writes each member's profile.
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let schema = MemberProfile::get_schema();
    let id = registry
        .register(&format!("{}-value", topics::MEMBER_PROFILES), &schema)
        .await
        .unwrap();
    let profiles = Encoder::new(id, leak(schema)).unwrap();
    let producer =
        loyalty_runtime::kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let mut swarm_partition = BTreeMap::new();
    for member in &members {
        let profile = MemberProfile {
            member_id: member.clone(),
            program_id: cdnow::PROGRAM_ID.into(),
            enrolled_at: Timestamp(860_000_000_000),
            birth_date: None,
            country: "US".into(),
            region: None,
            postal_code: None,
            time_zone: "America/New_York".into(),
            locale: "en-US".into(),
            currency: "USD".into(),
            objects_to_profiling: false,
            updated_at: Timestamp(870_000_000_000),
            acquisition_channel: None,
            payment_method: None,
            billing_frequency: None,
            borrower_status: None,
            vertical: None,
            plan_tier: None,
            reenrolled_at: None,
        };
        let payload = profiles.encode(&profile).unwrap();
        let delivery = producer
            .send(
                FutureRecord::to(topics::MEMBER_PROFILES)
                    .key(member.as_str())
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        swarm_partition.insert(member.clone(), delivery.partition);
    }

    for member in &members {
        assert_eq!(
            java_partition[member], swarm_partition[member],
            "{member}: the Java default partitioner and the swarm's disagree"
        );
    }
    let used: std::collections::BTreeSet<i32> = java_partition.values().copied().collect();
    assert!(
        used.len() > PARTITIONS as usize / 2,
        "{MEMBERS} members spread over only {} partitions",
        used.len()
    );

    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;
    let states = member_state_bodies(&stack).await;
    for member in &members {
        let state = decode_state(&states[member]);
        assert_eq!(
            state.spend_minor,
            AMOUNT_MINOR * ORDERS_PER_MEMBER as i64,
            "{member}: the profile's snapshot lacks the orders the Java producer wrote"
        );
        assert_eq!(state.currency.as_deref(), Some("USD"), "{member}");
    }
    drop(agent);
    stack.shutdown().await;
}
