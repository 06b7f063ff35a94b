//! Hot-path benchmarks: Avro decode and encode of one member event, and customer-graph's
//! `handle` per event in process (no broker). Run with `cargo bench -p customer-graph`.

use std::hint::black_box;

use apache_avro::AvroSchema;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use customer_graph::{CustomerGraph, MemberFold, Settings};
use loyalty_contracts::{MemberEvent, OrderPlaced, Payload, Timestamp, topics};
use loyalty_runtime::codec::{Decoder, Encoder, leak};
use loyalty_runtime::{Agent, Harness, Input};

fn event(i: i64) -> MemberEvent {
    MemberEvent {
        event_id: format!("cdnow-{i}"),
        member_id: format!("{:05}", i % 23_570),
        brand_id: "cdnow".into(),
        occurred_at: Timestamp(852_076_800_000 + (i % 540) * 86_400_000),
        source: "cdnow".into(),
        source_member_id: None,
        payload: Payload::OrderPlaced(OrderPlaced {
            order_id: format!("o-{i}"),
            amount_minor: 2_999 + i % 1000,
            currency: "USD".into(),
            margin_minor: None,
            items: 2,
            location_id: None,
            product_line: Some("music".into()),
        }),
    }
}

fn codec(c: &mut Criterion) {
    let encoder = Encoder::new(1, leak(MemberEvent::get_schema())).unwrap();
    let decoder = Decoder::new(encoder.schema()).unwrap();
    let value = event(42);
    let bytes = encoder.encode(&value).unwrap();
    let mut group = c.benchmark_group("member_event_avro");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode", |b| {
        b.iter(|| {
            decoder
                .decode::<MemberEvent>(black_box(&bytes[5..]))
                .unwrap()
        })
    });
    group.bench_function("encode", |b| {
        b.iter(|| encoder.encode(black_box(&value)).unwrap())
    });
    group.finish();
}

fn handle(c: &mut Criterion) {
    let agent = CustomerGraph::new(&Settings::default());
    let mut harness = Harness::new(&agent.outputs()).unwrap();
    let encoder = Encoder::new(1, leak(MemberEvent::get_schema())).unwrap();
    let decoder = Decoder::new(encoder.schema()).unwrap();
    let events: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| (event(i).member_id, encoder.encode(&event(i)).unwrap()))
        .collect();
    let mut states: Vec<Option<MemberFold>> = vec![None; 23_570];
    let mut group = c.benchmark_group("customer_graph");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("handle", |b| {
        b.iter(|| {
            let (key, bytes) = &events[i % events.len()];
            i += 1;
            let input = Input {
                topic: topics::MEMBER_EVENTS,
                partition: 0,
                offset: i as i64,
                timestamp: None,
                key,
                value: Some((&decoder, &bytes[5..])),
            };
            let slot = &mut states[key.parse::<usize>().unwrap()];
            let mut ctx = harness.context();
            agent.handle(&input, slot, &mut ctx).unwrap();
            harness.emitted.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, codec, handle);
criterion_main!(benches);
