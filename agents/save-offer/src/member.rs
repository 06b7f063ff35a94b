//! What save-offer knows about a member: the facts its co-partitioned inputs carry
//! (profile, member-state, cohort, member-ltv, the member's own events) and the offers the
//! member holds. Selection reads a [`MemberView`]; it never sees the records themselves.

use std::collections::BTreeMap;

use loyalty_contracts::{
    InterventionType, Lifecycle, MILLIS_PER_DAY, MemberCohort, MemberLtv, MemberProfile,
    MemberState, OfferType, Program, ReasonCluster, Segment, StackRule, TierChange, Timestamp,
};
use serde::{Deserialize, Serialize};

/// A member's expected incremental lifetime margin from one intervention type, with
/// ltv's 80% interval; minor units of [`LtvFacts::currency`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Incremental {
    pub mean: i64,
    pub low: i64,
    pub high: i64,
}

/// What member-ltv says that selection and the cost caps use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LtvFacts {
    /// The record's `as_of` and attestation hash, for the proposal to name.
    pub as_of_ms: i64,
    pub output_hash: String,
    pub currency: String,
    pub expected_order_value_minor: Option<f64>,
    pub margin_ratio: f64,
    pub margin_12m_minor: i64,
    pub adjusted_lifetime_margin_minor: i64,
    pub p_alive: Option<f64>,
    pub incremental: BTreeMap<String, Incremental>,
}

impl LtvFacts {
    pub fn of(ltv: &MemberLtv) -> Self {
        LtvFacts {
            as_of_ms: ltv.as_of.0,
            output_hash: ltv.attestation.output_hash.clone(),
            currency: ltv.currency.clone().unwrap_or_default(),
            expected_order_value_minor: ltv.expected_order_value_minor,
            margin_ratio: ltv.margin_ratio,
            margin_12m_minor: ltv.baseline.margin_12m_minor,
            adjusted_lifetime_margin_minor: ltv.adjusted_lifetime_margin_minor,
            p_alive: ltv.p_alive,
            incremental: ltv
                .counterfactuals
                .iter()
                .map(|c| {
                    (
                        c.intervention.label().to_owned(),
                        Incremental {
                            mean: c.incremental_minor,
                            low: c.incremental_low_minor,
                            high: c.incremental_high_minor,
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn incremental(&self, intervention: InterventionType) -> Option<Incremental> {
        self.incremental.get(intervention.label()).copied()
    }

    /// Whether ltv has valued the member: it writes a record as soon as the member's
    /// state arrives, but until a population fit can score their history that record
    /// has no baseline — no expected order value or P(alive), a lifetime margin of the
    /// adjustments alone (and no currency until the member has ordered). Such a record
    /// says the member exists, not what they are worth.
    pub fn is_valued(&self) -> bool {
        self.expected_order_value_minor.is_some() && !self.currency.is_empty()
    }

    /// Whether a trigger should stop waiting for a better record: the member is valued,
    /// or has no currency — no orders, which no fit will value.
    pub fn is_final(&self) -> bool {
        self.is_valued() || self.currency.is_empty()
    }
}

/// The member's profile, as far as eligibility and localisation need it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProfileFacts {
    pub country: String,
    /// ISO 3166-2 (`US-CA`): the profile's region, prefixed with the country if it is not.
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 639-1, from the locale.
    pub language: String,
    pub currency: String,
    pub time_zone: String,
    pub enrolled_at: Timestamp,
    pub program_id: String,
    pub acquisition_channel: Option<String>,
    pub payment_method: Option<String>,
    pub billing_frequency: Option<String>,
    pub borrower_status: Option<String>,
    pub vertical: Option<String>,
    pub plan_tier: Option<String>,
}

/// Longest text kept from a member's records (ids, codes, channels): what is longer is
/// not a real value, and kept in state it would grow the member's entry without bound.
pub const MAX_TEXT_BYTES: usize = 256;

/// Every field of `fields` over [`MAX_TEXT_BYTES`], named.
pub fn overlong<'a>(fields: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Vec<String> {
    fields
        .into_iter()
        .filter_map(|(name, value)| {
            value.filter(|v| v.len() > MAX_TEXT_BYTES).map(|v| {
                format!(
                    "{name} is {} bytes long (at most {MAX_TEXT_BYTES})",
                    v.len()
                )
            })
        })
        .collect()
}

impl ProfileFacts {
    /// Every text field bounded; the problems otherwise.
    pub fn checked(p: &MemberProfile) -> Result<Self, Vec<String>> {
        let problems = overlong([
            ("country", Some(p.country.as_str())),
            ("region", p.region.as_deref()),
            ("postal_code", p.postal_code.as_deref()),
            ("locale", Some(p.locale.as_str())),
            ("currency", Some(p.currency.as_str())),
            ("time_zone", Some(p.time_zone.as_str())),
            ("program_id", Some(p.program_id.as_str())),
            ("acquisition_channel", p.acquisition_channel.as_deref()),
            ("payment_method", p.payment_method.as_deref()),
            ("billing_frequency", p.billing_frequency.as_deref()),
            ("borrower_status", p.borrower_status.as_deref()),
            ("vertical", p.vertical.as_deref()),
            ("plan_tier", p.plan_tier.as_deref()),
        ]);
        if problems.is_empty() {
            Ok(Self::of(p))
        } else {
            Err(problems)
        }
    }

    pub fn of(p: &MemberProfile) -> Self {
        let state = p.region.as_ref().map(|region| {
            if region.contains('-') {
                region.clone()
            } else {
                format!("{}-{region}", p.country)
            }
        });
        let language = p
            .locale
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        ProfileFacts {
            country: p.country.clone(),
            state,
            postal_code: p.postal_code.clone(),
            language,
            currency: p.currency.clone(),
            time_zone: p.time_zone.clone(),
            enrolled_at: p.enrolled_at,
            program_id: p.program_id.clone(),
            acquisition_channel: p.acquisition_channel.clone(),
            payment_method: p.payment_method.clone(),
            billing_frequency: p.billing_frequency.clone(),
            borrower_status: p.borrower_status.clone(),
            vertical: p.vertical.clone(),
            plan_tier: p.plan_tier.clone(),
        }
    }
}

/// What member-state says.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StateFacts {
    pub loyalty_tier: Option<String>,
    pub first_purchase: Option<Timestamp>,
    pub as_of: Timestamp,
}

impl StateFacts {
    pub fn of(s: &MemberState) -> Self {
        StateFacts {
            loyalty_tier: s.tier.as_ref().map(|t| t.tier_id.clone()),
            first_purchase: s.btyd.as_ref().map(|b| b.first_purchase.start()),
            as_of: s.as_of,
        }
    }
}

/// What the cohort record says.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CohortFacts {
    pub segment: Segment,
    pub lifecycle: Lifecycle,
}

impl CohortFacts {
    pub fn of(c: &MemberCohort) -> Self {
        CohortFacts {
            segment: c.segment,
            lifecycle: c.lifecycle,
        }
    }
}

/// An offer the member holds: proposed to them and neither expired (grace included),
/// redeemed nor suppressed. The version is pinned: its terms are kept here, so a newer
/// catalog version does not change what the member was shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOffer {
    pub proposal_id: String,
    pub offer_id: String,
    pub version_id: i64,
    pub vendor: String,
    pub offer_type: OfferType,
    pub rule: StackRule,
    pub stack_group: Option<String>,
    pub loyalty_program_id: Option<String>,
    pub referral_program_id: Option<String>,
    /// Product lines the offer applies to (empty = every line).
    pub product_lines: Vec<String>,
    pub percent_off_bp: Option<i32>,
    /// Amount off one order, member's currency.
    pub amount_off_minor: i64,
    /// What the offer is worth to the member (discount on a typical order, member's
    /// currency): best-of compares it.
    pub value_to_member_minor: i64,
    pub held_since: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// Still honoured until then.
    pub grace_until: Option<Timestamp>,
    pub extensions: i32,
    pub suppress_on: Vec<loyalty_contracts::SuppressionTrigger>,
    /// Proposals this one replaced (best of a stack group).
    pub replaces: Vec<String>,
    /// The bandit arm it was chosen as (`<experiment>|<stratum>|<offer id>`), the
    /// probability the arm had, and the member's features then: what the reward is
    /// learned against when the outcome arrives.
    pub arm_key: Option<crate::bandit::ArmKey>,
    pub arm_probability: f64,
    pub context: Vec<f64>,
    /// Its outcome has been learned: a second outcome for the same proposal teaches
    /// nothing more.
    pub rewarded: bool,
    /// Counted among the member's prior redemptions.
    pub redeemed: bool,
    /// The offer exactly as the member was shown it: an extension shows it again, so a
    /// newer catalog version never changes a held offer.
    pub shown: Option<Box<loyalty_contracts::ChosenOffer>>,
}

impl HeldOffer {
    /// Held at `now`: not past its grace period.
    pub fn held_at(&self, now: Timestamp) -> bool {
        self.grace_until
            .or(self.expires_at)
            .is_none_or(|end| now <= end)
    }

    pub fn label(&self) -> String {
        format!("{}@{}", self.offer_id, self.version_id)
    }
}

/// Everything selection knows about one member at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberView {
    pub member_id: String,
    pub now: Timestamp,
    pub profile: Option<ProfileFacts>,
    pub state: Option<StateFacts>,
    pub cohort: Option<CohortFacts>,
    pub ltv: Option<LtvFacts>,
    /// Population-relative decile of the member's adjusted lifetime margin, 1..=10.
    pub ltv_decile: Option<i32>,
    /// Product lines the member has bought (from its orders).
    pub product_lines: Vec<String>,
    /// Offers redeemed before (InterventionOutcome Accepted or Converted).
    pub prior_redemptions: i32,
    /// Why the member is cancelling, for a cancellation request.
    pub reason_cluster: Option<ReasonCluster>,
    pub held: Vec<HeldOffer>,
    /// Where a downgrade-tier offer would move the member.
    pub tier_below: TierBelow,
    /// Whether rejections are explained in words (see `select::rank`).
    pub explain: bool,
}

/// Where a downgrade-tier offer would move the member: the tier one rank below theirs in
/// their program. Looked up in the programs table at each decision, so a program edited
/// (a tier added below) applies from the next one.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum TierBelow {
    /// The member's tier or program is not known: no profile or member-state yet, a
    /// program the programs table does not hold, or a tier it does not list.
    #[default]
    Unknown,
    /// The member holds their program's entry tier: there is none below.
    Entry {
        program_id: String,
        tier_id: String,
    },
    Tier(TierChange),
}

impl TierBelow {
    pub fn of(program: Option<&Program>, tier_id: Option<&str>) -> Self {
        let (Some(program), Some(tier_id)) = (program, tier_id) else {
            return Self::Unknown;
        };
        let tiers = program.tiers_by_rank();
        let Some((at, held)) = tiers.iter().enumerate().find(|(_, t)| t.tier_id == tier_id) else {
            return Self::Unknown;
        };
        match at.checked_sub(1).and_then(|below| tiers.get(below)) {
            Some(below) => Self::Tier(TierChange {
                program_id: program.program_id.clone(),
                from_tier_id: held.tier_id.clone(),
                to_tier_id: below.tier_id.clone(),
            }),
            None => Self::Entry {
                program_id: program.program_id.clone(),
                tier_id: held.tier_id.clone(),
            },
        }
    }
}

impl MemberView {
    /// Days since the member enrolled (profile) or first bought (member-state).
    pub fn tenure_days(&self) -> Option<i64> {
        let since = self
            .profile
            .as_ref()
            .map(|p| p.enrolled_at)
            .or_else(|| self.state.as_ref().and_then(|s| s.first_purchase))?;
        Some((self.now.0 - since.0).max(0) / MILLIS_PER_DAY)
    }

    /// The tenure band eligibility lists name: `0-90d`, `91-365d`, `1-2y`, `2y+`.
    pub fn tenure_cohort(&self) -> Option<&'static str> {
        Some(match self.tenure_days()? {
            0..=90 => "0-90d",
            91..=365 => "91-365d",
            366..=730 => "1-2y",
            _ => "2y+",
        })
    }

    /// The member's currency: the profile's, else the one ltv values in.
    pub fn currency(&self) -> Option<&str> {
        self.profile
            .as_ref()
            .map(|p| p.currency.as_str())
            .or_else(|| self.ltv.as_ref().map(|l| l.currency.as_str()))
            .filter(|c| !c.is_empty())
    }

    /// Offers held now.
    pub fn holding(&self) -> impl Iterator<Item = &HeldOffer> {
        self.held.iter().filter(|h| h.held_at(self.now))
    }
}
