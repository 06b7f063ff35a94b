//! The CDNOW purchase history as member events, with deterministic synthetic profiles,
//! consents and the demo tier program.
//!
//! CDNOW only records purchases; everything else a loyalty operator would have is made up
//! here from a hash of the customer id, so every run (and every machine) replays exactly
//! the same stream.

use loyalty_contracts::{
    Channel, ChannelConsent, ConsentStatus, Date, MemberConsents, MemberEvent, MemberProfile,
    OrderPlaced, Payload, PointsEarned, Program, Timestamp,
};

pub use btyd::cdnow::{CdnowError, Purchase, parse_purchases, read_purchases};

/// The CDNOW master file (23,570 customers, 69,659 purchases; provenance in
/// `data/cdnow/README.md`), built into the binary so an installed `swarm` replays it
/// without the repository beside it.
pub const MASTER: &str = include_str!("../../../data/cdnow/CDNOW_master.txt");

/// The purchases of `file`, or of the built-in master file when there is none.
pub fn purchases(file: Option<&std::path::Path>) -> Result<Vec<Purchase>, CdnowError> {
    match file {
        Some(path) => read_purchases(path),
        None => parse_purchases(MASTER, "the built-in CDNOW_master.txt"),
    }
}

pub const BRAND: &str = "cdnow";
pub const PROGRAM_ID: &str = "cdnow-rewards";

/// The demo's documented tier program (see README, "The demo tier program").
pub fn demo_program() -> Program {
    Program {
        name: "CDNOW Rewards (demo)".into(),
        ..Program::three_tier_spend(PROGRAM_ID)
    }
}

/// SplitMix64: a fixed, well-mixed hash so synthetic attributes never depend on the
/// platform or the standard library's randomised hasher.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn customer_hash(customer: &str) -> u64 {
    mix(customer
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))))
}

const REGIONS: [(&str, &str, &str); 6] = [
    ("US-NY", "100", "America/New_York"),
    ("US-CA", "941", "America/Los_Angeles"),
    ("US-IL", "606", "America/Chicago"),
    ("US-TX", "750", "America/Chicago"),
    ("US-CO", "802", "America/Denver"),
    ("US-FL", "331", "America/New_York"),
];

/// The member's event-time midpoint of a purchase day: noon UTC keeps the UTC day
/// unambiguous for every consumer.
fn noon(day: Date) -> Timestamp {
    Timestamp(day.start().0 + 12 * 3_600_000)
}

pub fn profile(customer: &str, first_purchase: Date) -> MemberProfile {
    let h = customer_hash(customer);
    let (region, zip, zone) = REGIONS[(h % REGIONS.len() as u64) as usize];
    // Ages 16..=80 on 1997-01-01, so the age rules downstream have minors to act on.
    let age_days = (16 + (h >> 8) % 65) as i32 * 365 + ((h >> 16) % 365) as i32;
    MemberProfile {
        member_id: customer.to_owned(),
        program_id: PROGRAM_ID.into(),
        enrolled_at: noon(first_purchase),
        birth_date: Some(Date(
            Date::from_ymd(1997, 1, 1).map_or(9862, |d| d.0) - age_days,
        )),
        country: "US".into(),
        region: Some(region.into()),
        postal_code: Some(format!("{zip}{:02}", (h >> 24) % 100)),
        time_zone: zone.into(),
        locale: "en-US".into(),
        currency: "USD".into(),
        objects_to_profiling: (h >> 32).is_multiple_of(50),
        updated_at: noon(first_purchase),
        acquisition_channel: Some(pick(
            h >> 36,
            &["paid_search", "social", "referral", "retail", "partner"],
        )),
        payment_method: Some(pick(h >> 40, &["card", "card", "paypal", "bank_debit"])),
        billing_frequency: Some(pick(
            h >> 44,
            &["monthly", "monthly", "quarterly", "annual"],
        )),
        borrower_status: Some(pick(
            h >> 48,
            &["none", "none", "none", "current", "past_due"],
        )),
        vertical: Some("music".into()),
        plan_tier: Some(pick(h >> 52, &["basic", "plus", "premium"])),
        reenrolled_at: None,
    }
}

/// A deterministic choice among `options` (repeats weight an option).
fn pick(h: u64, options: &[&str]) -> String {
    options[(h % options.len() as u64) as usize].to_owned()
}

pub fn consents(customer: &str, first_purchase: Date) -> MemberConsents {
    let h = customer_hash(customer) >> 40;
    let status = |opted_in: bool| {
        if opted_in {
            ConsentStatus::OptedIn
        } else {
            ConsentStatus::OptedOut
        }
    };
    let channel = |channel, opted_in| ChannelConsent {
        channel,
        status: status(opted_in),
        changed_at: noon(first_purchase),
        source: "checkout".into(),
        proof_ref: Some(format!("cdnow-consent-{customer}-{channel:?}").to_ascii_lowercase()),
    };
    MemberConsents {
        member_id: customer.to_owned(),
        channels: vec![
            channel(Channel::Email, h % 10 < 8),
            channel(Channel::Sms, (h / 10) % 10 < 4),
            channel(Channel::Push, (h / 100) % 10 < 3),
        ],
        parental_consent_verified: false,
        updated_at: noon(first_purchase),
    }
}

/// The store card of a customer who shops in store (one in eight), whose purchases the
/// store's point-of-sale system reports under the card's id rather than the member's.
pub fn store_card(customer: &str) -> Option<String> {
    let h = customer_hash(customer);
    (h >> 56)
        .is_multiple_of(8)
        .then(|| format!("card-{:08x}", h & 0xffff_ffff))
}

/// The key a source system writes an event under: its own id for the member when it has
/// one (customer-graph re-keys those events to the member), else the member id.
pub fn record_key(event: &MemberEvent) -> &str {
    event
        .source_member_id
        .as_deref()
        .unwrap_or(&event.member_id)
}

/// The events of one purchase: the order, and the points it earned. Store-card holders'
/// events come from the point-of-sale system, keyed by the card.
pub fn purchase_events(p: &Purchase) -> [MemberEvent; 2] {
    let at = noon(p.day);
    let card = store_card(&p.customer);
    let envelope = |suffix: &str, payload| MemberEvent {
        event_id: format!("cdnow-{}-{suffix}", p.line),
        member_id: p.customer.clone(),
        brand_id: BRAND.into(),
        occurred_at: at,
        source: if card.is_some() { "pos" } else { "cdnow" }.into(),
        source_member_id: card.clone(),
        payload,
    };
    [
        envelope(
            "order",
            Payload::OrderPlaced(OrderPlaced {
                order_id: format!("cdnow-{}", p.line),
                amount_minor: p.amount_minor,
                currency: "USD".into(),
                margin_minor: None,
                items: p.cds,
                location_id: None,
                product_line: Some("music".into()),
            }),
        ),
        envelope(
            "points",
            Payload::PointsEarned(PointsEarned {
                points: p.amount_minor / 100,
                reason: "purchase".into(),
                qualifying: false,
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_data_set_is_the_master_file() {
        let built_in = purchases(None).unwrap();
        assert_eq!(built_in.len(), 69_659);
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/cdnow/CDNOW_master.txt");
        let read = purchases(Some(&file)).unwrap();
        assert_eq!(
            built_in
                .iter()
                .map(|p| (&p.customer, p.day, p.amount_minor))
                .collect::<Vec<_>>(),
            read.iter()
                .map(|p| (&p.customer, p.day, p.amount_minor))
                .collect::<Vec<_>>()
        );
        assert!(matches!(
            purchases(Some(std::path::Path::new("/nonexistent/cdnow.txt"))),
            Err(CdnowError::Io { .. })
        ));
    }

    #[test]
    fn demo_program_is_sound_and_synthetic_data_is_stable() {
        assert!(demo_program().problems().is_empty());
        let day = Date::from_ymd(1997, 3, 1).unwrap();
        assert_eq!(profile("00042", day), profile("00042", day));
        assert_eq!(consents("00042", day), consents("00042", day));
    }

    #[test]
    fn one_customer_in_eight_shops_with_a_store_card() {
        let customers: Vec<String> = (0..8000).map(|i| format!("{i:05}")).collect();
        let carded = customers.iter().filter(|c| store_card(c).is_some()).count();
        assert!((850..1150).contains(&carded), "{carded} of 8000");
        let p = Purchase {
            customer: customers
                .iter()
                .find(|c| store_card(c).is_some())
                .unwrap()
                .clone(),
            day: Date::from_ymd(1997, 3, 1).unwrap(),
            line: 7,
            cds: 1,
            amount_minor: 1299,
        };
        for event in purchase_events(&p) {
            assert_eq!(event.member_id, p.customer);
            assert_eq!(Some(record_key(&event).to_owned()), store_card(&p.customer));
        }
    }
}
