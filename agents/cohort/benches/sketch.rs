//! The cost of a population refresh at 1M members: merging twelve partitions' sketches
//! into boundaries, and scoring every member against them.

use cohort::sketch::{Cdf, Histogram, log_bucket, quintile};
use criterion::{Criterion, criterion_group, criterion_main};

/// Deterministic pseudo-random numbers in [0, 1).
fn uniform(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

fn sketches(c: &mut Criterion) {
    const MEMBERS: u64 = 1_000_000;
    const PARTITIONS: u64 = 12;
    // Per partition: last purchase day (545 days), frequency (1..~60), monetary (log).
    let mut parts = vec![
        (
            Histogram::default(),
            Histogram::default(),
            Histogram::default()
        );
        12
    ];
    let mut members = Vec::with_capacity(MEMBERS as usize);
    for i in 0..MEMBERS {
        let day = (uniform(3 * i) * 545.0) as i32;
        let frequency = 1 + (-(1.0 - uniform(3 * i + 1)).ln() * 2.0) as i32;
        let monetary = log_bucket(500.0 + uniform(3 * i + 2) * 20_000.0);
        let p = &mut parts[(i % PARTITIONS) as usize];
        p.0.add(day);
        p.1.add(frequency);
        p.2.add(monetary);
        members.push((day, frequency, monetary));
    }
    let merge = || {
        let mut merged = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for p in &parts {
            merged.0.merge(&p.0);
            merged.1.merge(&p.1);
            merged.2.merge(&p.2);
        }
        merged
    };
    let mut group = c.benchmark_group("cohort_refresh_1m_members");
    group.sample_size(10);
    group.bench_function("merge_12_partitions", |b| {
        b.iter(|| std::hint::black_box(merge()))
    });
    let merged = merge();
    let merged = (Cdf::of(&merged.0), Cdf::of(&merged.1), Cdf::of(&merged.2));
    group.bench_function("score_every_member", |b| {
        b.iter(|| {
            let mut total = 0i64;
            for &(day, frequency, monetary) in &members {
                total += i64::from(quintile(merged.0.position(day)))
                    + i64::from(quintile(merged.1.position(frequency)))
                    + i64::from(quintile(merged.2.position(monetary)));
            }
            std::hint::black_box(total)
        })
    });
    group.finish();
}

criterion_group!(benches, sketches);
criterion_main!(benches);
