//! The CDNOW purchase history as member events, with deterministic synthetic profiles,
//! consents and the demo tier program.
//!
//! CDNOW only records purchases; everything else a loyalty operator would have is made up
//! here from a hash of the customer id, so every run (and every machine) replays exactly
//! the same stream.

use std::path::Path;

use loyalty_contracts::{
    Channel, ChannelConsent, ConsentStatus, Date, MemberConsents, MemberEvent, MemberProfile,
    OrderPlaced, Payload, PointsEarned, Program, QualifyingMetric, Tier, TierWindow, Timestamp,
};

/// One purchase line of a CDNOW file.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    /// 1-based line number in the file (the event id is derived from it).
    pub line: usize,
    pub customer: String,
    pub day: Date,
    pub cds: i32,
    pub amount_minor: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CdnowError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Parse `CDNOW_master.txt` (`customer date cds dollars`, an optional header) or
/// `CDNOW_sample.txt` (`master_id sample_id date cds dollars`).
pub fn read_purchases(path: &Path) -> Result<Vec<Purchase>, CdnowError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CdnowError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut purchases = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.is_empty() || fields[0] == "customer_id" {
            continue;
        }
        let err = |reason: String| CdnowError::Parse {
            path: shown.clone(),
            line,
            reason,
        };
        let (customer, date, cds, dollars) = match fields.as_slice() {
            [c, d, n, v] => (c, d, n, v),
            [c, _, d, n, v] => (c, d, n, v),
            _ => {
                return Err(err(format!(
                    "expected 4 or 5 fields, found {}",
                    fields.len()
                )));
            }
        };
        let day = parse_yyyymmdd(date).ok_or_else(|| err(format!("bad date {date:?}")))?;
        let cds: i32 = cds
            .parse()
            .map_err(|_| err(format!("bad CD count {cds:?}")))?;
        let amount_minor =
            parse_dollars(dollars).ok_or_else(|| err(format!("bad dollar value {dollars:?}")))?;
        purchases.push(Purchase {
            line,
            customer: (*customer).to_owned(),
            day,
            cds,
            amount_minor,
        });
    }
    Ok(purchases)
}

fn parse_yyyymmdd(text: &str) -> Option<Date> {
    if text.len() != 8 {
        return None;
    }
    let year = text[0..4].parse().ok()?;
    let month = text[4..6].parse().ok()?;
    let day = text[6..8].parse().ok()?;
    Date::from_ymd(year, month, day)
}

/// Dollars with up to two decimals to cents, exactly (no float rounding).
fn parse_dollars(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
    if frac.len() > 2 || whole.starts_with('-') {
        return None;
    }
    let cents: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(whole.parse::<i64>().ok()? * 100 + cents)
}

pub const BRAND: &str = "cdnow";
pub const PROGRAM_ID: &str = "cdnow-rewards";

/// The demo's documented tier program (see README, "The demo tier program").
pub fn demo_program() -> Program {
    let tier = |tier_id: &str, name: &str, rank, threshold, earn_multiplier| Tier {
        tier_id: tier_id.into(),
        name: name.into(),
        rank,
        threshold,
        earn_multiplier,
    };
    Program {
        program_id: PROGRAM_ID.into(),
        name: "CDNOW Rewards (demo)".into(),
        currency: "USD".into(),
        qualifying_metric: QualifyingMetric::Spend,
        window: TierWindow::Rolling,
        window_days: 365,
        grace_days: 90,
        tiers: vec![
            tier("member", "Member", 0, 0, 1.0),
            tier("silver", "Silver", 1, 10_000, 1.25),
            tier("gold", "Gold", 2, 25_000, 1.5),
        ],
        points_per_unit: 1.0,
        point_value_minor: 1.0,
        points_expiry_days: Some(365),
        auto_renew_fee_minor: None,
    }
}

/// SplitMix64: a fixed, well-mixed hash so synthetic attributes never depend on the
/// platform or the standard library's randomised hasher.
fn mix(mut z: u64) -> u64 {
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
    }
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

/// The events of one purchase: the order, and the points it earned.
pub fn purchase_events(p: &Purchase) -> [MemberEvent; 2] {
    let at = noon(p.day);
    let envelope = |suffix: &str, payload| MemberEvent {
        event_id: format!("cdnow-{}-{suffix}", p.line),
        member_id: p.customer.clone(),
        brand_id: BRAND.into(),
        occurred_at: at,
        source: "cdnow".into(),
        source_member_id: None,
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
    fn parses_both_layouts_exactly() {
        let dir = std::env::temp_dir().join(format!("cdnow-parse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let master = dir.join("m.txt");
        std::fs::write(&master, " customer_id  date number_of_cds  dollar_value\n 00002 19970112  5   77.00\n 00003 19970102  2   20.7\n").unwrap();
        let p = read_purchases(&master).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].customer.as_str(),
                p[0].day.ymd(),
                p[0].cds,
                p[0].amount_minor
            ),
            ("00002", (1997, 1, 12), 5, 7700)
        );
        assert_eq!(p[1].amount_minor, 2070);
        let sample = dir.join("s.txt");
        std::fs::write(&sample, " 00004 0001 19970101  2   29.33\n").unwrap();
        assert_eq!(read_purchases(&sample).unwrap()[0].amount_minor, 2933);
        std::fs::write(&sample, " 00004 0001 19971301  2   29.33\n").unwrap();
        assert!(matches!(
            read_purchases(&sample),
            Err(CdnowError::Parse { line: 1, .. })
        ));
    }

    #[test]
    fn demo_program_is_sound_and_synthetic_data_is_stable() {
        assert!(demo_program().problems().is_empty());
        let day = Date::from_ymd(1997, 3, 1).unwrap();
        assert_eq!(profile("00042", day), profile("00042", day));
        assert_eq!(consents("00042", day), consents("00042", day));
    }
}
