//! `loyalty.offer-proposals.v1` (member-keyed stream) and `loyalty.offer-readouts.v1`
//! (key = experiment id): what save-offer decided and what its experiments have learned.
//!
//! A proposal is an explanation as much as a choice: it names every offer considered and
//! the dimension and value that ruled each out, so an operator (and compliance-gate, and a
//! regulator) can see why this member got this offer and not another.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::{
    BanditPolicy, Channel, ComplianceAttributes, OfferType, OpportunityKind, ReasonCluster,
    Timestamp,
};

/// What opened the save flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
pub enum ProposalTrigger {
    // An intervention opportunity from tier-transition.
    Opportunity,
    // A subscriber on the cancel page (`CancellationRequested`).
    Cancellation,
}

impl ProposalTrigger {
    /// Label for proposal ids, metrics and reports.
    pub fn label(self) -> &'static str {
        match self {
            ProposalTrigger::Opportunity => "opportunity",
            ProposalTrigger::Cancellation => "cancellation",
        }
    }
}

/// A mean with an interval (minor units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct MoneyInterval {
    pub mean_minor: i64,
    pub low_minor: i64,
    pub high_minor: i64,
    /// Coverage of [low, high], e.g. 0.8.
    pub level: f64,
}

/// The stage of selection that ruled an offer out.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, AvroSchema,
)]
pub enum RejectionStage {
    Version,
    Eligibility,
    Expiration,
    Localisation,
    CostCap,
    Stacking,
    Budget,
    Experiment,
    // Eligible and affordable, but another offer was worth more.
    Outranked,
}

/// One offer that was not chosen, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct OfferRejection {
    pub offer_id: String,
    pub version_id: i64,
    pub stage: RejectionStage,
    /// The rule: `ltv_decile`, `gross_margin_floor`, `per_cart_cap`, `expires_on`, ...
    pub dimension: String,
    /// The member's or the offer's value that failed it.
    pub value: String,
    /// The whole reason in words.
    pub explanation: String,
}

/// How many offers one rule ruled out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct RejectionTally {
    pub stage: RejectionStage,
    pub dimension: String,
    pub offers: i64,
}

/// The chosen offer as the member will see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct LocalisedContent {
    pub country: String,
    pub language: String,
    pub currency: String,
    pub title: String,
    pub body: String,
    /// The offer's value in the member's currency, minor units (amount off, or the
    /// expected discount of a percent off on the member's typical order).
    pub value_minor: i64,
    pub disclosure: Option<String>,
    pub cancellation_rule: Option<String>,
    pub tax_inclusive: bool,
    pub tax_rate_bp: Option<i32>,
    pub return_policy: Option<String>,
    pub template_id: Option<String>,
    pub asset_url: Option<String>,
    pub code: Option<String>,
}

/// The offer chosen for the member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct ChosenOffer {
    pub offer_id: String,
    /// The version pinned to this member until it expires.
    pub version_id: i64,
    pub vendor: String,
    pub offer_type: OfferType,
    pub experiment_id: Option<String>,
    pub arm: Option<String>,
    /// The policy that picked the arm; null when the offer is in no experiment.
    pub policy: Option<BanditPolicy>,
    /// Expected incremental lifetime margin of the intervention, member's currency.
    pub expected_incremental_ltv: MoneyInterval,
    /// Expected cost of one redemption, member's currency.
    pub expected_cost: MoneyInterval,
    pub currency: String,
    pub budget_id: Option<String>,
    /// When the offer stops being valid for this member (grace not included).
    pub expires_at: Option<Timestamp>,
    pub content: LocalisedContent,
    pub compliance: ComplianceAttributes,
    /// The catalog offer's channels, most preferred first (v3); null: the gate's order.
    pub channels: Option<Vec<Channel>>,
}

/// save-offer's answer to one opportunity or cancellation request; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct OfferProposal {
    /// Deterministic (member, trigger id): the idempotency key downstream.
    pub proposal_id: String,
    pub member_id: String,
    pub trigger: ProposalTrigger,
    /// The opportunity id, or the cancellation request's event id.
    pub trigger_id: String,
    pub opportunity_kind: Option<OpportunityKind>,
    pub reason_cluster: Option<ReasonCluster>,
    /// Event time of the trigger.
    pub decided_at: Timestamp,
    /// Null when nothing was eligible, affordable and free of conflicts.
    pub offer: Option<ChosenOffer>,
    /// The offers ruled out, with the rule and value that ruled each out: every one, up
    /// to save-offer's `max_listed_rejections` (a 10,000-offer catalog would otherwise
    /// make a record of megabytes); `rejection_tally` counts them all.
    pub rejections: Vec<OfferRejection>,
    /// How many offers were ruled out in all.
    pub rejected_offers: i64,
    /// Every rejection counted by stage and rule.
    pub rejection_tally: Vec<RejectionTally>,
    /// How the chosen offer combines with the offers the member holds, in words.
    pub stacking_explanation: String,
    /// Offer ids (with pinned versions, `id@v`) the member holds at decision time.
    pub held_offers: Vec<String>,
    /// The member-ltv record the member was valued with, pinned by its attestation, so
    /// an audit can name what the decision relied on (v2); null when none had arrived.
    pub ltv_relied_on: Option<LtvReference>,
    /// For a downgrade-tier offer, the tier it moves the member to: the tier one rank
    /// below theirs in their program (`loyalty.programs.v1`) (v4); null for every other
    /// offer, and when no offer was proposed.
    pub tier_change: Option<TierChange>,
}

/// A move from the member's tier to the one below it in their program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct TierChange {
    pub program_id: String,
    /// The tier the member holds.
    pub from_tier_id: String,
    /// The tier one rank below it.
    pub to_tier_id: String,
}

/// One member-ltv record, as its attestation names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct LtvReference {
    /// The record's `as_of`.
    pub as_of: Timestamp,
    /// Its attestation's `output_hash` (SHA-256 of the canonical record).
    pub output_hash: String,
}

/// One arm of an experiment as its bandit sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct ArmReadout {
    pub arm: String,
    pub offer_id: String,
    pub proposals: i64,
    pub rewards: i64,
    /// Mean incremental margin per proposal, minor units.
    pub mean_reward_minor: f64,
    /// Share of the experiment's proposals so far.
    pub traffic_share: f64,
    /// Probability this arm is best (Thompson draws over the population's posteriors).
    pub probability_best: f64,
}

/// What an experiment has learned so far; key = experiment id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct OfferReadout {
    pub experiment_id: String,
    pub policy: BanditPolicy,
    pub arms: Vec<ArmReadout>,
    pub as_of: Timestamp,
}
