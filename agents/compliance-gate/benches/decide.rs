//! Decisions per second on one core with the full shipped policy set: the Cedar request
//! built from the facts (jurisdiction rows looked up), authorised, and the verdict
//! classified. `cargo bench -p compliance-gate --bench decide`.

use std::hint::black_box;

use chrono::NaiveDate;
use compliance_gate::{
    Channel, ConsentBasis, Consents, Facts, GatePolicies, Message, Moment, Recipient,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn facts(channel: Channel, region: &str) -> Facts {
    let day = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
    Facts {
        recipient: Recipient {
            birth_date: NaiveDate::from_ymd_opt(1980, 5, 1),
            country: "US".into(),
            region: region.into(),
            objects_to_profiling: false,
            parental_consent_verified: false,
            consents: Consents {
                email: ConsentBasis::OptIn,
                sms: ConsentBasis::ExpressWritten,
                push: ConsentBasis::OptIn,
                in_app: ConsentBasis::OptIn,
                direct_mail: ConsentBasis::Unknown,
            },
        },
        message: Message {
            channel,
            offer_type: "percent_off".into(),
            categories: vec!["alcohol".into()],
            advertised_minor: 1_500,
            map_floor_minor: Some(1_200),
            unsubstantiated_claims: 0,
            ai_drafted: true,
            ai_disclosed: true,
            reseller_channel: false,
            stored_value: None,
            sweepstakes_prize_usd_minor: Some(250_000),
            sweepstakes_registered: false,
            changes_auto_renewal: true,
            discloses_terms: true,
            cancellation_path: true,
            prop65_warning: false,
        },
        moment: Moment {
            local: day.and_hms_opt(20, 30, 0).expect("time"),
            sent_in_window: 1,
            cap_in_window: 3,
        },
    }
}

fn decide(c: &mut Criterion) {
    let policies = GatePolicies::shipped().expect("the shipped policies validate");
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    for (name, f) in [
        ("email_approved", facts(Channel::Email, "NY")),
        ("sms_deferred_in_florida", facts(Channel::Sms, "FL")),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(policies.decide(black_box(&f))))
        });
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
