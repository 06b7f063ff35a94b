//! Budgets, burn rates, redemption caps and cohort caps: counts shared by every member,
//! so one task must own each, or two instances would each spend the last of a budget.
//!
//! Every offer with such a limit names a ledger (`ledger:<budget id>`, or
//! `ledger:offer:<offer id>` for an offer whose caps are its own). The member's task
//! decides everything it can (eligibility, the member's caps, stacking) and sends a
//! [`LedgerClaim`] with its ranked candidates to the internal topic
//! `save-offer.claims-repartition`, keyed by the first candidate's ledger. The task that
//! owns that key — exactly one, by the consumer group — charges the ledger or refuses,
//! and either writes the proposal or hands the claim to the next candidate's ledger.
//! This is Kafka Streams' repartition-then-aggregate: consumption of a budget is
//! decided serially where the budget lives, so it is never overspent, however many
//! instances run, and when demand exceeds it every unit is used.
//!
//! A claim is written with the member's batch and may be written again if that batch is
//! replayed (at a new offset): the ledger remembers the proposals it decided and
//! ignores a claim it has seen.
//!
//! Each ledger's [`LedgerStanding`] — what it has given, which only grows — is published
//! in its partition's summary. A task routing a claim skips a candidate whose published
//! standing already refuses it (a used-up budget stays used up), so once budgets run out
//! claims stop travelling through ledgers that can only say no. The ledger stays the
//! authority: a standing that does not refuse proves nothing, and the claim is sent.

use std::collections::BTreeMap;

use apache_avro::AvroSchema;
use loyalty_contracts::{ChosenOffer, OfferProposal, OfferRejection, RejectionStage};
use serde::{Deserialize, Serialize};

use crate::recent::RecentIds;

/// The limits of one candidate's ledger, and what it would be charged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct LedgerTerms {
    pub ledger: String,
    pub offer_id: String,
    pub version_id: i64,
    /// Expected cost in the offer's (the budget's) currency.
    pub cost_minor: i64,
    pub currency: String,
    pub ceiling_minor: Option<i64>,
    pub ceiling_redemptions: Option<i64>,
    pub burn_max_minor_per_day: Option<i64>,
    pub burn_window_days: Option<i32>,
    pub redemption_cap: Option<i64>,
    pub cohort_cap: Option<i64>,
    /// The member's RFM cohort, for the cohort cap.
    pub cohort: Option<String>,
    /// Day of the decision (days since the epoch), for the burn window.
    pub day: i32,
}

/// One ranked candidate of a claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Candidate {
    pub offer: ChosenOffer,
    /// `None`: the offer has no shared limit and needs no ledger.
    pub terms: Option<LedgerTerms>,
    /// How it stacks with the member's held offers.
    pub stacking_explanation: String,
}

/// A member's ranked candidates, on their way through the ledgers; key = ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm.saveoffer")]
pub struct LedgerClaim {
    /// The proposal as the member's task left it: no offer yet, its rejections so far.
    pub proposal: OfferProposal,
    pub candidates: Vec<Candidate>,
    /// The candidate this claim asks the keyed ledger for.
    pub next: i32,
}

/// What one ledger has given: counts that only grow, and the currency it counts money
/// in, fixed by the first charge. Published in the partition summary, so a member's task
/// can see a limit already used up without sending a claim: a limit that refuses a claim
/// against a published standing refuses it against the ledger now too, since the ledger
/// has only given more since. The burn rate is not among them: its window moves on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LedgerStanding {
    pub spent_minor: i64,
    pub proposals: i64,
    pub per_offer: BTreeMap<String, i64>,
    /// Key `<offer id>|<cohort>`.
    pub per_cohort: BTreeMap<String, i64>,
    /// Offers sharing a budget in another currency are refused rather than added up
    /// across currencies.
    pub currency: Option<String>,
}

/// What one ledger has committed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Ledger {
    pub standing: LedgerStanding,
    /// Spend per day, over the last year.
    pub daily: BTreeMap<i32, i64>,
    /// The newest decision day seen: "today" for the burn window, so a backlog of old
    /// triggers is paced against today's spend, not each against its own old day.
    pub today: i32,
    /// Claims decided here, so a claim sent again is not charged again.
    pub decided: RecentIds,
}

/// Why a ledger refused a candidate.
pub type Refusal = OfferRejection;

fn refuse(terms: &LedgerTerms, dimension: &str, value: String, explanation: String) -> Refusal {
    OfferRejection {
        offer_id: terms.offer_id.clone(),
        version_id: terms.version_id,
        stage: RejectionStage::Budget,
        dimension: dimension.to_owned(),
        value,
        explanation,
    }
}

fn cohort_key(terms: &LedgerTerms) -> String {
    format!(
        "{}|{}",
        terms.offer_id,
        terms.cohort.as_deref().unwrap_or("unknown")
    )
}

impl LedgerStanding {
    /// The limit that only tightens (currency, ceilings, redemption and cohort caps) and
    /// refuses `terms`, if one does.
    pub fn refusal(&self, terms: &LedgerTerms) -> Option<Refusal> {
        let cur = &terms.currency;
        if let Some(counted) = self.currency.as_ref().filter(|c| *c != cur)
            && (terms.ceiling_minor.is_some() || terms.burn_max_minor_per_day.is_some())
        {
            return Some(refuse(
                terms,
                "budget_currency",
                cur.clone(),
                format!(
                    "{} counts money in {counted}; an offer charging it in {cur} cannot be added to it",
                    terms.ledger
                ),
            ));
        }
        if let Some(ceiling) = terms.ceiling_redemptions
            && self.proposals >= ceiling
        {
            return Some(refuse(
                terms,
                "budget_ceiling",
                self.proposals.to_string(),
                format!(
                    "{} has given all {ceiling} proposals it allows",
                    terms.ledger
                ),
            ));
        }
        if let Some(ceiling) = terms.ceiling_minor
            && self.spent_minor.saturating_add(terms.cost_minor) > ceiling
        {
            return Some(refuse(
                terms,
                "budget_ceiling",
                self.spent_minor.to_string(),
                format!(
                    "{} has committed {} of {ceiling} {cur}; this offer's expected cost of {} {cur} would exceed it",
                    terms.ledger, self.spent_minor, terms.cost_minor
                ),
            ));
        }
        let used = self.per_offer.get(&terms.offer_id).copied().unwrap_or(0);
        if let Some(cap) = terms.redemption_cap
            && used >= cap
        {
            return Some(refuse(
                terms,
                "redemption_cap",
                used.to_string(),
                format!("{} has been proposed {used} times, its cap", terms.offer_id),
            ));
        }
        let in_cohort = self
            .per_cohort
            .get(&cohort_key(terms))
            .copied()
            .unwrap_or(0);
        if let Some(cap) = terms.cohort_cap
            && in_cohort >= cap
        {
            return Some(refuse(
                terms,
                "cohort_cap",
                in_cohort.to_string(),
                format!(
                    "{} has been proposed {in_cohort} times to cohort {}, its cap",
                    terms.offer_id,
                    terms.cohort.as_deref().unwrap_or("unknown")
                ),
            ));
        }
        None
    }

    fn record(&mut self, terms: &LedgerTerms) {
        self.proposals += 1;
        self.currency.get_or_insert_with(|| terms.currency.clone());
        self.spent_minor = self.spent_minor.saturating_add(terms.cost_minor);
        *self.per_offer.entry(terms.offer_id.clone()).or_default() += 1;
        *self.per_cohort.entry(cohort_key(terms)).or_default() += 1;
    }
}

impl Ledger {
    pub fn has_decided(&self, proposal_id: &str) -> bool {
        self.decided.contains(proposal_id)
    }

    pub fn remember(&mut self, proposal_id: &str, keep: usize) {
        self.decided.insert(proposal_id, keep);
    }

    /// Charge the ledger for `terms`, or say which limit refuses it.
    pub fn charge(&mut self, terms: &LedgerTerms) -> Result<(), Refusal> {
        if let Some(refusal) = self.standing.refusal(terms) {
            return Err(refusal);
        }
        let cur = &terms.currency;
        let today = self.today.max(terms.day);
        if let (Some(per_day), Some(window)) =
            (terms.burn_max_minor_per_day, terms.burn_window_days)
        {
            let since = today - window.max(1) + 1;
            let burned: i64 = self.daily.range(since..=today).map(|(_, v)| v).sum();
            let allowed = per_day.saturating_mul(i64::from(window.max(1)));
            if burned.saturating_add(terms.cost_minor) > allowed {
                return Err(refuse(
                    terms,
                    "burn_rate",
                    burned.to_string(),
                    format!(
                        "{} spent {burned} {cur} in the last {window} days; another {} {cur} would pass the pace of {per_day} {cur} a day",
                        terms.ledger, terms.cost_minor
                    ),
                ));
            }
        }
        self.standing.record(terms);
        *self.daily.entry(today).or_default() += terms.cost_minor;
        self.today = today;
        // A year of days at most, whatever the windows.
        self.daily.retain(|day, _| *day > today - 366);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(cost: i64) -> LedgerTerms {
        LedgerTerms {
            ledger: "ledger:winback".into(),
            offer_id: "stripe:a".into(),
            version_id: 1,
            cost_minor: cost,
            currency: "USD".into(),
            ceiling_minor: None,
            ceiling_redemptions: None,
            burn_max_minor_per_day: None,
            burn_window_days: None,
            redemption_cap: None,
            cohort_cap: None,
            cohort: Some("at_risk".into()),
            day: 20_000,
        }
    }

    fn refusal(ledger: &mut Ledger, t: &LedgerTerms) -> OfferRejection {
        match ledger.charge(t) {
            Err(r) => r,
            Ok(()) => panic!("expected a refusal"),
        }
    }

    #[test]
    fn a_budget_of_n_proposals_gives_exactly_n() {
        let mut ledger = Ledger::default();
        let t = LedgerTerms {
            ceiling_redemptions: Some(3),
            ..terms(100)
        };
        for _ in 0..3 {
            assert!(ledger.charge(&t).is_ok());
        }
        let r = refusal(&mut ledger, &t);
        assert_eq!(r.dimension, "budget_ceiling");
        assert_eq!(
            r.explanation,
            "ledger:winback has given all 3 proposals it allows"
        );
    }

    #[test]
    fn a_money_budget_refuses_what_would_pass_its_ceiling() {
        let mut ledger = Ledger::default();
        let t = LedgerTerms {
            ceiling_minor: Some(250),
            ..terms(100)
        };
        assert!(ledger.charge(&t).is_ok());
        assert!(ledger.charge(&t).is_ok());
        let r = refusal(&mut ledger, &t);
        assert!(r.explanation.contains("has committed 200 of 250 USD; this offer's expected cost of 100 USD would exceed it"), "{r:?}");
        // A cheaper one still fits.
        assert!(
            ledger
                .charge(&LedgerTerms {
                    ceiling_minor: Some(250),
                    ..terms(50)
                })
                .is_ok()
        );
    }

    #[test]
    fn the_burn_rate_paces_spend_over_its_window() {
        let mut ledger = Ledger::default();
        let t = |day| LedgerTerms {
            burn_max_minor_per_day: Some(100),
            burn_window_days: Some(2),
            day,
            ..terms(100)
        };
        assert!(ledger.charge(&t(20_000)).is_ok());
        assert!(ledger.charge(&t(20_000)).is_ok());
        let r = refusal(&mut ledger, &t(20_001));
        assert_eq!(r.dimension, "burn_rate");
        assert!(r.explanation.contains(
            "spent 200 USD in the last 2 days; another 100 USD would pass the pace of 100 USD a day"
        ));
        // Two days on, the window has moved past the spend.
        assert!(ledger.charge(&t(20_002)).is_ok());
        assert!(ledger.charge(&t(20_002)).is_ok());
        // An old trigger is paced against today's spend, not its own day's.
        let r = refusal(&mut ledger, &t(19_000));
        assert_eq!(r.dimension, "burn_rate");
    }

    #[test]
    fn redemption_and_cohort_caps_count_per_offer_and_cohort() {
        let mut ledger = Ledger::default();
        let capped = LedgerTerms {
            redemption_cap: Some(2),
            ..terms(1)
        };
        assert!(ledger.charge(&capped).is_ok());
        assert!(ledger.charge(&capped).is_ok());
        assert_eq!(
            refusal(&mut ledger, &capped).explanation,
            "stripe:a has been proposed 2 times, its cap"
        );
        let mut ledger = Ledger::default();
        let cohort = |c: &str| LedgerTerms {
            cohort_cap: Some(1),
            cohort: Some(c.into()),
            ..terms(1)
        };
        assert!(ledger.charge(&cohort("at_risk")).is_ok());
        assert_eq!(
            refusal(&mut ledger, &cohort("at_risk")).explanation,
            "stripe:a has been proposed 1 times to cohort at_risk, its cap"
        );
        assert!(ledger.charge(&cohort("champions")).is_ok());
    }

    #[test]
    fn a_money_budget_is_not_added_up_across_currencies() {
        let mut ledger = Ledger::default();
        let usd = LedgerTerms {
            ceiling_minor: Some(1_000),
            ..terms(100)
        };
        assert!(ledger.charge(&usd).is_ok());
        let eur = LedgerTerms {
            currency: "EUR".into(),
            ..usd.clone()
        };
        let r = refusal(&mut ledger, &eur);
        assert_eq!(r.dimension, "budget_currency");
        assert!(r.explanation.contains("counts money in USD"), "{r:?}");
    }

    #[test]
    fn a_published_standing_refuses_what_the_ledger_would_and_never_the_burn_rate() {
        let mut ledger = Ledger::default();
        let capped = LedgerTerms {
            ceiling_redemptions: Some(1),
            ..terms(100)
        };
        assert!(ledger.standing.refusal(&capped).is_none());
        assert!(ledger.charge(&capped).is_ok());
        let published = ledger.standing.clone();
        let r = published.refusal(&capped).expect("used up");
        assert_eq!(r, refusal(&mut ledger, &capped));
        // The burn window moves on, so only the ledger itself decides the burn rate.
        let mut ledger = Ledger::default();
        let paced = |day| LedgerTerms {
            burn_max_minor_per_day: Some(100),
            burn_window_days: Some(1),
            day,
            ..terms(100)
        };
        assert!(ledger.charge(&paced(20_000)).is_ok());
        assert_eq!(refusal(&mut ledger, &paced(20_000)).dimension, "burn_rate");
        assert!(ledger.standing.refusal(&paced(20_000)).is_none());
    }

    #[test]
    fn a_claim_is_remembered_within_the_window() {
        let mut ledger = Ledger::default();
        ledger.remember("p1", 2);
        ledger.remember("p2", 2);
        assert!(ledger.has_decided("p1"));
        ledger.remember("p3", 2);
        assert!(!ledger.has_decided("p1") && ledger.has_decided("p3"));
    }
}
