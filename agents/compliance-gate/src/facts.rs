//! What a decision is made on: the recipient, the message and the moment. The gate's
//! agent builds these from the proposal, the member's consents and profile and its own
//! counters; the policy tests build them by hand. Nothing here knows Cedar.

use chrono::{NaiveDate, NaiveDateTime};
use loyalty_contracts::Channel;
use serde::{Deserialize, Serialize};

/// The basis a member gave (or refused) a channel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ConsentBasis {
    /// Signed, written agreement naming the sender and the channel (TCPA for texts).
    ExpressWritten,
    OptIn,
    /// An existing customer's implied consent for similar products (ePrivacy Art. 13(2)).
    SoftOptIn,
    OptedOut,
    #[default]
    Unknown,
}

impl ConsentBasis {
    pub fn label(self) -> &'static str {
        match self {
            ConsentBasis::ExpressWritten => "express_written",
            ConsentBasis::OptIn => "opt_in",
            ConsentBasis::SoftOptIn => "soft_opt_in",
            ConsentBasis::OptedOut => "opted_out",
            ConsentBasis::Unknown => "unknown",
        }
    }
}

/// The member's consent per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Consents {
    pub email: ConsentBasis,
    pub sms: ConsentBasis,
    pub push: ConsentBasis,
    pub in_app: ConsentBasis,
    pub direct_mail: ConsentBasis,
}

/// Who the message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub birth_date: Option<NaiveDate>,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// ISO 3166-2 subdivision without the country prefix; empty when unknown.
    pub region: String,
    pub objects_to_profiling: bool,
    pub parental_consent_verified: bool,
    pub consents: Consents,
}

/// What the message is and says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub channel: Channel,
    /// The offer type's label (`percent_off`, `downgrade_tier`, ...).
    pub offer_type: String,
    /// `alcohol`, `tobacco`, `cannabis`, `prop65`, `pharmacy`, `financial_product`.
    pub categories: Vec<String>,
    pub advertised_minor: i64,
    /// The lowest MAP floor among the SKUs advertised.
    pub map_floor_minor: Option<i64>,
    pub unsubstantiated_claims: i64,
    pub ai_drafted: bool,
    pub ai_disclosed: bool,
    pub reseller_channel: bool,
    pub stored_value: Option<StoredValueTerms>,
    /// Total prize value in US cents, when the offer enters a sweepstakes.
    pub sweepstakes_prize_usd_minor: Option<i64>,
    pub sweepstakes_registered: bool,
    pub changes_auto_renewal: bool,
    pub discloses_terms: bool,
    pub cancellation_path: bool,
    pub prop65_warning: bool,
}

/// A stored-value reward's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredValueTerms {
    /// `None`: it never expires.
    pub expires_on: Option<NaiveDate>,
}

/// The send being decided: when, in the recipient's local time, and how many messages
/// the channel has carried to them in its frequency window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub local: NaiveDateTime,
    pub sent_in_window: i64,
    pub cap_in_window: i64,
}

/// Everything one decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub recipient: Recipient,
    pub message: Message,
    pub moment: Moment,
}

/// Whole years from `birth` to `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> i64 {
    use chrono::Datelike;
    let mut years = i64::from(on.year() - birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

/// Whole calendar months from `from` to `to` (a month counts once its day is reached;
/// a day past the end of a short month counts at its last day).
pub fn whole_months(from: NaiveDate, to: NaiveDate) -> i64 {
    use chrono::Datelike;
    let mut months =
        i64::from(to.year() - from.year()) * 12 + i64::from(to.month()) - i64::from(from.month());
    if to.day() < from.day() {
        let last_of_month = to
            .with_day(1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
            .and_then(|d| d.pred_opt())
            .map_or(31, |d| d.day());
        // 31 Jan → 28 Feb is a whole month; 31 Jan → 27 Feb is not.
        if to.day() < last_of_month {
            months -= 1;
        }
    }
    months
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn age_turns_on_the_birthday() {
        assert_eq!(age_on(d(2013, 6, 15), d(2026, 6, 14)), 12);
        assert_eq!(age_on(d(2013, 6, 15), d(2026, 6, 15)), 13);
        assert_eq!(age_on(d(2012, 2, 29), d(2025, 2, 28)), 12);
    }

    #[test]
    fn five_years_are_sixty_months_whatever_the_leap_days() {
        assert_eq!(whole_months(d(2027, 3, 1), d(2032, 3, 1)), 60);
        assert_eq!(whole_months(d(2027, 3, 1), d(2032, 2, 29)), 59);
        assert_eq!(whole_months(d(2026, 1, 31), d(2026, 2, 28)), 1);
        assert_eq!(whole_months(d(2026, 1, 31), d(2026, 2, 27)), 0);
    }
}
