//! The swarm's Confluent wire format and registry as the Rust ecosystem's Confluent
//! client, `schema_registry_converter`, sees them: a member event it encodes (registering
//! the schema under TopicNameStrategy, as a producer service would) is folded by
//! customer-graph, and it decodes the member-state customer-graph writes, fetching the
//! writer schema by id.
//! Run on each broker.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::AvroSchema;
use apache_avro::types::Value;
use common::*;
use loyalty_contracts::{MemberEvent, MemberState, topics};
use loyalty_runtime::codec::{Encoder, leak};
use loyalty_runtime::kafka;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

fn field<'v>(record: &'v Value, name: &str) -> &'v Value {
    match record {
        Value::Record(fields) => fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no field {name}")),
        other => panic!("not a record: {other:?}"),
    }
}

on_each_broker!(schema_registry_converter_writes_input_and_reads_output);

async fn schema_registry_converter_writes_input_and_reads_output(broker: Broker) {
    let stack = start_stack_on(broker).await;
    let agent = AgentProcess::spawn("customer-graph", &stack, &[]);
    agent.wait_ready(Duration::from_secs(60)).await;
    // The client's reqwest needs a crypto provider installed, even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = SrSettings::new(stack.registry_url.clone());

    // The event as an Avro value (the client encodes values, not our types).
    let event = MemberEvent {
        source: "shopify".into(),
        ..order_event("rust-1", "m-rust", 4_200)
    };
    let schema = MemberEvent::get_schema();
    let ours = Encoder::new(0, leak(schema.clone()))
        .unwrap()
        .encode(&event)
        .unwrap();
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
        .build()
        .unwrap();
    let Value::Record(fields) = reader.read_value(&mut &ours[5..]).unwrap() else {
        panic!("a member event is a record")
    };
    let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
        topics::MEMBER_EVENTS.into(),
        false,
        SuppliedSchema::new(
            None,
            SchemaType::Avro,
            loyalty_contracts::schema_json(&schema).unwrap(),
        ),
    );
    let bytes = AvroEncoder::new(settings.clone())
        .encode(
            fields
                .iter()
                .map(|(n, v)| (n.as_str(), v.clone()))
                .collect(),
            strategy,
        )
        .await
        .unwrap();
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    assert_eq!(
        &bytes[5..],
        &ours[5..],
        "the same Avro body under the registered id"
    );
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    kafka::produce_all(&producer, &[record(topics::MEMBER_EVENTS, "m-rust", bytes)])
        .await
        .unwrap();
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;

    let written = swarm::inspect::latest_values(&stack.bootstrap_servers, topics::MEMBER_STATE)
        .await
        .unwrap();
    let decoded = AvroDecoder::new(settings)
        .decode(Some(&written["m-rust"]))
        .await
        .unwrap();
    assert_eq!(
        decoded.name.map(|n| n.fullname(None)).as_deref(),
        Some("io.loyaltyswarm.MemberState")
    );
    assert_eq!(
        field(&decoded.value, "member_id"),
        &Value::String("m-rust".into())
    );
    assert_eq!(field(&decoded.value, "spend_minor"), &Value::Long(4_200));
    let state: MemberState = decode_state(&written["m-rust"][5..]);
    assert_eq!(state.events_applied, 1);
    drop(agent);
    stack.shutdown().await;
}
