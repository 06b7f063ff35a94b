//! The expiration controls that selection decides: the offer's last date in its own time
//! zone, the rolling window from the proposal, the grace period, and the extension rule
//! for an offer the member already holds. Redemption and cohort caps are counted by the
//! ledger that owns the offer; suppression triggers withdraw held offers when the
//! member's events arrive.

use chrono::{NaiveDate, TimeZone};
use loyalty_contracts::{
    CatalogOffer, Date, MILLIS_PER_DAY, OfferRejection, RejectionStage, Timestamp,
};

use super::reject;
use crate::member::MemberView;

/// When a proposal of the offer stops being valid for this member.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Window {
    pub expires_at: Option<Timestamp>,
    pub grace_until: Option<Timestamp>,
    pub extends: Option<String>,
}

/// The last instant of `date` in `zone` (IANA; UTC when `None` or unknown — the catalog
/// refuses unknown zones, so that fallback is never reached with a catalog offer).
pub fn end_of_day(date: Date, zone: Option<&str>) -> Timestamp {
    let (y, m, d) = date.ymd();
    let next = NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0));
    let tz: chrono_tz::Tz = zone.and_then(|z| z.parse().ok()).unwrap_or(chrono_tz::UTC);
    match next.map(|n| tz.from_local_datetime(&n).earliest()) {
        Some(Some(midnight)) => Timestamp(midnight.timestamp_millis() - 1),
        // A midnight that does not exist locally (a DST jump at 00:00) or a date at the
        // end of the calendar: the UTC day's end is as close as it gets.
        _ => Timestamp(date.start().0 + MILLIS_PER_DAY - 1),
    }
}

pub(super) fn window(offer: &CatalogOffer, member: &MemberView) -> Result<Window, OfferRejection> {
    let e = &offer.expiration;
    let zone = e.time_zone.as_deref();
    let last = e.expires_on.map(|d| end_of_day(d, zone));
    if let Some(last) = last
        && member.now > last
    {
        let date = e.expires_on.map(|d| d.to_string()).unwrap_or_default();
        return Err(reject(
            offer,
            RejectionStage::Expiration,
            "expires_on",
            format!("{date} {}", zone.unwrap_or("UTC")),
            format!(
                "the offer expired at the end of {date} in {} ({} ms), before the decision at {} ms",
                zone.unwrap_or("UTC"),
                last.0,
                member.now.0
            ),
        ));
    }
    let days = |n: i32| i64::from(n) * MILLIS_PER_DAY;
    let rolling = e
        .rolling_window_days
        .map(|n| Timestamp(member.now.0.saturating_add(days(n))));
    let mut expires_at = match (rolling, last) {
        (Some(r), Some(l)) => Some(r.min(l)),
        (r, l) => r.or(l),
    };
    let mut extends = None;
    if let Some(held) = member.holding().find(|h| h.offer_id == offer.offer_id) {
        let Some(rule) = &e.extension else {
            return Err(reject(
                offer,
                RejectionStage::Expiration,
                "extension",
                held.label(),
                format!(
                    "the member already holds {} and the offer has no extension rule",
                    held.label()
                ),
            ));
        };
        if held.extensions >= rule.max_extensions {
            return Err(reject(
                offer,
                RejectionStage::Expiration,
                "extension",
                held.extensions.to_string(),
                format!(
                    "the member already holds {}, extended {} of {} times",
                    held.label(),
                    held.extensions,
                    rule.max_extensions
                ),
            ));
        }
        let from = held.expires_at.unwrap_or(member.now).max(member.now);
        let extended = Timestamp(from.0.saturating_add(days(rule.days)));
        expires_at = Some(last.map_or(extended, |l| extended.min(l)));
        extends = Some(held.proposal_id.clone());
    }
    let grace_until = match (expires_at, e.grace_days) {
        (Some(at), Some(g)) => Some(Timestamp(at.0.saturating_add(days(g)))),
        _ => None,
    };
    Ok(Window {
        expires_at,
        grace_until,
        extends,
    })
}
