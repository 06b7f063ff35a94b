//! Forecasts per second on one core: all twelve transition types for a member, from the
//! member-state to the raw forecasts, with the CDNOW population and the demo's program
//! shape (rolling 365-day window, 90 days grace, three tiers).

use btyd::{BgNbd, GammaGamma};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use loyalty_contracts::{
    BtydSummary, Date, MemberState, PointsLedger, Program, QualifyingDay, TierProgress, Timestamp,
};
use tier_transition::forecast::{Forecaster, Population};

fn program() -> Program {
    Program::three_tier_spend("p")
}

/// A member with `x` repeat purchases of `value` minor units every `gap` days.
fn member(x: i32, gap: i32, value: i64, tier: (&str, i32)) -> MemberState {
    let first = Date::from_ymd(1997, 1, 15).unwrap().0;
    let last = first + x * gap;
    let days: Vec<QualifyingDay> = (0..=x)
        .map(|i| QualifyingDay {
            day: Date(first + i * gap),
            amount: value,
        })
        .collect();
    MemberState {
        member_id: format!("m{x}"),
        as_of: Date(last).start(),
        events_applied: i64::from(x + 1),
        btyd: Some(BtydSummary {
            x,
            t_x_days: last - first,
            t_days: last - first,
            first_purchase: Date(first),
            last_purchase: Date(last),
            mean_repeat_value_minor: value as f64,
        }),
        rfm: None,
        spend_minor: value * i64::from(x + 1),
        margin_minor: 0,
        returns_minor: 0,
        returns_count: 0,
        currency: Some("USD".into()),
        tier: Some(TierProgress {
            program_id: "p".into(),
            tier_id: tier.0.into(),
            tier_rank: tier.1,
            tier_since: Date(first).start(),
            qualifying_amount: value * i64::from(x + 1),
            next_tier_id: None,
            amount_to_next_tier: None,
            window_end: Timestamp(Date(first + 365).start().0),
            grace_until: None,
            manual_override: false,
            qualifying_days: Some(days),
        }),
        points: PointsLedger {
            balance: 0,
            earned: 0,
            redeemed: 0,
            expired: 0,
            earn_velocity_30d: 0.0,
            burn_velocity_30d: 0.0,
            redemptions: 0,
        },
        current_streak_months: 0,
        longest_streak_months: 0,
        referrals: 0,
        engagements: 0,
        subscription_status: None,
        identity_links: Vec::new(),
        brands: Vec::new(),
        attributes: None,
    }
}

fn forecasts(c: &mut Criterion) {
    let population = Population {
        purchases: BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        },
        spend: GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 1544.0,
        },
        unit_days: 7.0,
        version: "bench".into(),
    };
    let program = program();
    let forecaster = Forecaster {
        population: &population,
        program: &program,
        bridge_fraction: 0.8,
    };
    // The CDNOW mix: most members buy once; a few are frequent.
    let members = [
        member(0, 1, 3_000, ("member", 0)),
        member(1, 40, 4_000, ("member", 0)),
        member(3, 30, 4_000, ("silver", 1)),
        member(12, 20, 3_000, ("gold", 2)),
    ];
    let mut group = c.benchmark_group("tier_transition");
    group.throughput(Throughput::Elements(members.len() as u64));
    group.bench_function("forecast_all_types", |b| {
        b.iter(|| {
            for m in &members {
                let day = m.as_of.day().0;
                std::hint::black_box(forecaster.forecast(m, day, day + 365));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, forecasts);
criterion_main!(benches);
