//! Members scored per second on one core: one member-state through `handle` — the join,
//! baseline and 36-month decay curve under the population fit and three segment fits
//! (120-month discounted lifetime), the eight adjustments, six counterfactuals, the
//! reconciliation, and the Ed25519-signed attestation. Each measurement starts from a fresh
//! agent, so the purchase schedules shared by members with equal summaries are computed,
//! not found in the cache: the cold cost, an upper bound for a population.

use btyd::params::MODEL_PARAMS;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use loyalty_contracts::{MemberState, catalog, tables};
use loyalty_runtime::{Agent, Harness, Input, Record};
use ltv::testkit::{cdnow_model, member, program};
use ltv::{Ltv, Settings};

fn score(c: &mut Criterion) {
    let key_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(key_file.path(), "11".repeat(32)).expect("key written");
    let settings = Settings {
        signing_key_file: Some(key_file.path().to_owned()),
        ..Settings::default()
    };
    let agent = Ltv::new(&settings);
    let mut harness = Harness::new(&agent).expect("encoders");
    for segment in ["all", "tier:silver", "redemption:redeemer", "tenure:365d+"] {
        harness.put_table(&MODEL_PARAMS, segment, cdnow_model(segment));
    }
    harness.put_table(&tables::PROGRAMS, "p", program());
    // The CDNOW mix: most members buy once; a few are frequent.
    let members: Vec<MemberState> = vec![
        member("a", 0, 1, 200, 3_000, "member"),
        member("b", 1, 40, 100, 4_000, "member"),
        member("c", 3, 30, 60, 4_000, "silver"),
        member("d", 12, 20, 10, 3_000, "gold"),
    ];
    let records: Vec<Record> = members
        .iter()
        .map(|m| Record::new(&catalog::MEMBER_STATE, &m.member_id, m).expect("encoded"))
        .collect();
    let mut group = c.benchmark_group("ltv");
    group.throughput(Throughput::Elements(members.len() as u64));
    let mut offset = 0;
    group.bench_function("score_member", |b| {
        b.iter_batched(
            || Ltv::new(&settings),
            |agent| {
                for record in &records {
                    offset += 1;
                    let mut state = None;
                    let mut ctx = harness.context();
                    let input = Input {
                        offset,
                        ..record.input()
                    };
                    agent.handle(&input, &mut state, &mut ctx).expect("scored");
                }
                harness.emitted.clear();
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, score);
criterion_main!(benches);
