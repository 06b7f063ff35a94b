//! Hot-path benchmarks: Avro decode and encode of one member event, encode of one
//! member-state snapshot (the runtime's positional writer against apache-avro's), and
//! customer-graph's `handle` per event in process (no broker). Run with
//! `cargo bench -p customer-graph`.

use std::hint::black_box;

use apache_avro::AvroSchema;
use apache_avro::writer::datum::GenericDatumWriter;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use customer_graph::{CustomerGraph, MemberFold, Settings};
use loyalty_contracts::{
    MemberEvent, MemberState, OrderPlaced, Payload, Program, Timestamp, catalog,
};
use loyalty_runtime::codec::{Decoder, Encoder, leak};
use loyalty_runtime::{Agent, Harness, Input, Record};

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

/// A member-state snapshot as customer-graph emits it mid-replay: a dozen orders under a
/// three-tier spend program.
fn snapshot() -> MemberState {
    let program = Program::three_tier_spend("bench");
    let mut fold = MemberFold::default();
    for i in 0..12 {
        let mut e = event(i * 23_570 + 7);
        e.occurred_at = Timestamp(852_076_800_000 + i * 30 * 86_400_000);
        fold.apply_event(&e, &Settings::default()).unwrap();
    }
    fold.evaluate_tier(Some(&program));
    fold.snapshot("00007", Some(&program))
}

fn member_state_codec(c: &mut Criterion) {
    let encoder = Encoder::new(1, leak(MemberState::get_schema())).unwrap();
    let apache = GenericDatumWriter::builder(encoder.schema())
        .human_readable(false)
        .build()
        .unwrap();
    let value = snapshot();
    let mut group = c.benchmark_group("member_state_avro");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode", |b| {
        b.iter(|| encoder.encode(black_box(&value)).unwrap())
    });
    group.bench_function("encode_apache_avro", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(256);
            apache.write_ser(&mut out, black_box(&value)).unwrap();
            out
        })
    });
    group.finish();
}

fn handle(c: &mut Criterion) {
    let agent = CustomerGraph::new(&Settings::default());
    let mut harness = Harness::new(&agent).unwrap();
    let records: Vec<Record> = (0..10_000)
        .map(|i| Record::new(&catalog::MEMBER_EVENTS, &event(i).member_id, &event(i)).unwrap())
        .collect();
    let mut states: Vec<Option<MemberFold>> = vec![None; 23_570];
    let mut group = c.benchmark_group("customer_graph");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("handle", |b| {
        b.iter(|| {
            let record = &records[i % records.len()];
            i += 1;
            let input = Input {
                offset: i as i64,
                ..record.input()
            };
            let slot = &mut states[record.key.parse::<usize>().unwrap()];
            let mut ctx = harness.context();
            agent.handle(&input, slot, &mut ctx).unwrap();
            harness.emitted.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, codec, member_state_codec, handle);
criterion_main!(benches);
