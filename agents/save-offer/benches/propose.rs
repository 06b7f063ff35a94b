//! Proposals per second on one core with a 10,000-offer catalog: save-offer's `handle` on
//! a cancellation request, from the encoded record to the encoded proposal, every offer
//! put through selection. The catalog mixes what a real library holds: offers for other
//! countries, states, tiers and plans, offers of other retention stages, expired
//! versions, budgeted offers and experiments, across the fourteen types.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use loyalty_contracts::{
    BanditPolicy, Budget, Date, Experiment, OfferType, RetentionStage, catalog,
};
use loyalty_runtime::{Agent, Harness, Record};
use save_offer::agent::state::Entry;
use save_offer::tables::{CATALOG, FX_RATES};
use save_offer::testkit::*;
use save_offer::{SaveOffer, Settings};

const OFFERS: usize = 10_000;

fn catalog_offer(i: usize) -> loyalty_contracts::CatalogOffer {
    let offer_type = OfferType::ALL[i % OfferType::ALL.len()];
    let vendor = [
        "stripe",
        "shopify",
        "recharge",
        "klaviyo",
        "tango_card",
        "voucherify",
    ][i % 6];
    let mut o = offer(vendor, &format!("o{i:05}"), offer_type, (5 + i % 30) as i32);
    o.value.fixed_cost_minor = (i % 7) as i64 * 100;
    match i % 10 {
        0 => o.eligibility.countries = vec!["GB".into(), "IE".into()],
        1 => o.eligibility.states = vec!["US-NY".into(), "US-TX".into()],
        2 => o.eligibility.loyalty_tiers = vec!["platinum".into()],
        3 => o.classification.retention_stages = vec![RetentionStage::Onboarding],
        4 => o.expiration.expires_on = Date::from_ymd(2024, 12, 31),
        5 => o.eligibility.plan_tiers = vec!["premium".into()],
        6 => {
            o.caps.budget = Some(Budget {
                budget_id: format!("b{}", i % 20),
                ceiling_minor: None,
                ceiling_redemptions: Some(1_000),
            });
        }
        7 => {
            o.experiment = Some(Experiment {
                experiment_id: format!("x{}", i % 50),
                variant_id: "v".into(),
                arm: format!("arm{i}"),
                traffic_allocation_bp: 10_000,
                stratification: vec!["segment".into()],
                readout_cadence_hours: 24,
                policy: BanditPolicy::ThompsonSampling,
            });
        }
        8 => o.caps.ltv_bound = true,
        _ => o.stacking.per_cart_cap_minor = Some(2_000),
    }
    o
}

fn bench(c: &mut Criterion) {
    let agent = SaveOffer::new(&Settings::default());
    let mut harness = Harness::new(&agent).expect("harness");
    for i in 0..OFFERS {
        let o = catalog_offer(i);
        harness.put_table(&CATALOG, &o.offer_id.clone(), o);
    }
    harness.put_table(&FX_RATES, "USD", fx("USD", 1.0));
    let mut state: Option<Entry> = None;
    let joined = [
        Record::new(&catalog::MEMBER_PROFILES, "m1", &profile("m1")).expect("profile"),
        Record::new(&catalog::COHORTS, "m1", &cohort("m1")).expect("cohort"),
        Record::new(
            &catalog::MEMBER_LTV,
            "m1",
            &member_ltv("m1", 5_000.0, 30_000, 90_000, 4_000),
        )
        .expect("ltv"),
    ];
    for r in &joined {
        let mut ctx = harness.context();
        agent
            .handle(&r.input(), &mut state, &mut ctx)
            .expect("joined");
    }
    // Distinct requests, so each is decided (a repeated event id is not).
    let requests: Vec<Record> = (0..64)
        .map(|i| {
            let e = cancellation(
                "m1",
                &format!("e{i}"),
                "too expensive",
                NOW + i64::from(i) * 1_000,
            );
            Record::new(&catalog::MEMBER_EVENTS, "m1", &e)
                .expect("request")
                .logged_at(NOW)
        })
        .collect();
    let mut group = c.benchmark_group("save_offer");
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function("cancellation_to_proposal_10k_offers", |b| {
        b.iter_batched(
            || {
                next = (next + 1) % requests.len();
                (state.clone(), next)
            },
            |(mut s, i)| {
                harness.emitted.clear();
                let mut ctx = harness.context();
                agent
                    .handle(&requests[i].input(), &mut s, &mut ctx)
                    .expect("decided");
                assert!(!harness.emitted.is_empty());
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
