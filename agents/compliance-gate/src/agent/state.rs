//! What the gate keeps per member (the facts its policies read, the sends each channel
//! carried, the deferred sends, the pseudonym secret) and per partition (the audit
//! chain's head). Both are written to the changelog with every batch, so a restart or
//! the partition's next owner continues the chain and releases the deferred sends.

use std::collections::{BTreeMap, VecDeque};

use chrono::NaiveDate;
use loyalty_contracts::{ConsentStatus, Date, MemberConsents, MemberProfile, OfferProposal};
use loyalty_runtime::PartitionSummary;
use serde::{Deserialize, Serialize};

use crate::audit::Chain;
use crate::facts::{ConsentBasis, Consents};

/// One member as the gate knows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub profile: Option<ProfileFacts>,
    pub consents: Option<ConsentFacts>,
    /// The pseudonym secret (`audit_record::member_secret`); erasure deletes it.
    pub secret: Option<[u8; 32]>,
    /// Per channel label, when each approved send may go (send-after, ms), newest last;
    /// only those inside the channel's frequency window are kept.
    pub sends: BTreeMap<String, Vec<i64>>,
    /// Deferred sends by proposal id.
    pub deferred: BTreeMap<String, Deferred>,
    /// Proposal ids already decided (or waiting), oldest first.
    pub decided: VecDeque<String>,
    /// Proposals waiting for the member's profile and consents, by proposal id.
    pub awaiting: BTreeMap<String, OfferProposal>,
}

/// The profile facts the policies read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileFacts {
    pub program_id: String,
    pub birth_date: Option<Date>,
    pub country: String,
    /// ISO 3166-2 subdivision without the country prefix; empty when unknown.
    pub region: String,
    /// IANA time zone, checked when the profile arrived.
    pub time_zone: String,
    pub objects_to_profiling: bool,
}

impl ProfileFacts {
    /// The facts of `profile`, or every problem that keeps the gate from using it.
    pub fn checked(profile: &MemberProfile) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        if profile.time_zone.parse::<chrono_tz::Tz>().is_err() {
            problems.push(format!(
                "time_zone {:?} is not an IANA time zone",
                profile.time_zone
            ));
        }
        let country = profile.country.trim().to_ascii_uppercase();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push(format!(
                "country {:?} is not an ISO 3166-1 alpha-2 code",
                profile.country
            ));
        }
        let birth_date = profile.birth_date;
        if birth_date.is_some_and(|d| naive(d).is_none()) {
            problems.push(format!("birth_date {:?} is out of range", birth_date));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        // "US-CA" and "CA" both name California.
        let region = profile.region.as_deref().unwrap_or_default().trim();
        let region = region
            .strip_prefix(&format!("{country}-"))
            .unwrap_or(region)
            .to_ascii_uppercase();
        Ok(ProfileFacts {
            program_id: profile.program_id.clone(),
            birth_date,
            country,
            region,
            time_zone: profile.time_zone.clone(),
            objects_to_profiling: profile.objects_to_profiling,
        })
    }

    pub fn zone(&self) -> chrono_tz::Tz {
        // Checked on arrival; UTC only if a state written by another version held junk.
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// A contract date as a calendar date.
pub fn naive(date: Date) -> Option<NaiveDate> {
    let (y, m, d) = date.ymd();
    NaiveDate::from_ymd_opt(y, m, d)
}

/// The consent facts the policies read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConsentFacts {
    pub channels: Consents,
    pub parental_consent_verified: bool,
}

impl ConsentFacts {
    pub fn of(consents: &MemberConsents) -> Self {
        let mut channels = Consents::default();
        for c in &consents.channels {
            let basis = match c.status {
                ConsentStatus::ExpressWritten => ConsentBasis::ExpressWritten,
                ConsentStatus::OptedIn => ConsentBasis::OptIn,
                ConsentStatus::SoftOptIn => ConsentBasis::SoftOptIn,
                ConsentStatus::OptedOut => ConsentBasis::OptedOut,
                ConsentStatus::Unknown => ConsentBasis::Unknown,
            };
            use loyalty_contracts::Channel;
            let slot = match c.channel {
                Channel::Email => &mut channels.email,
                Channel::Sms => &mut channels.sms,
                Channel::Push => &mut channels.push,
                Channel::InApp => &mut channels.in_app,
                Channel::DirectMail => &mut channels.direct_mail,
                // No trigger goes out by voice.
                Channel::Voice => continue,
            };
            *slot = basis;
        }
        ConsentFacts {
            channels,
            parental_consent_verified: consents.parental_consent_verified,
        }
    }
}

/// A send waiting for its release time, decided again then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deferred {
    pub proposal: OfferProposal,
    /// Decisions made on it so far (the first deferral was attempt 0).
    pub attempt: u32,
    /// When it is decided again (event time, ms).
    pub release_at: i64,
}

/// One partition's audit chain head: continued by whichever instance owns the
/// partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateSummary {
    pub chain: Option<Chain>,
    /// Decisions since the last checkpoint.
    pub unsealed: u64,
}

impl PartitionSummary for GateSummary {}
