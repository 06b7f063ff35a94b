//! `loyalty.offer-catalog.v1` (compacted, key = offer id) and `loyalty.offer-policies.v1`
//! (compacted, key = offer id): the canonical offer library save-offer chooses from.
//!
//! Vendors describe offers in a dozen shapes (a Shopify price rule, a Stripe coupon, a
//! Talon.One campaign, a Tango Card reward). save-offer normalises each into one
//! [`CatalogOffer`], so selection, eligibility and compliance are written once. What a
//! vendor cannot say (eligibility by LTV decile, margin floors, stacking with a loyalty
//! program) comes from the operator's [`OfferPolicy`] under the same key; every spec
//! carries a [`Confidence`] saying which of the two (or a default) it came from.
//!
//! Every edit is a new [`OfferVersion`]; a member shown a version keeps it until it
//! expires, and a version under legal hold can be neither superseded nor deleted.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::{Channel, Date, InterventionType, Timestamp};

/// The fourteen kinds of offer the library holds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, AvroSchema,
)]
pub enum OfferType {
    PercentOff,
    AmountOff,
    PauseOneCycle,
    PauseTwoCycles,
    DowngradeTier,
    BonusProduct,
    GiftBundle,
    CharityMatch,
    ReplenishmentReminder,
    EducationContent,
    CustomerSuccessCall,
    AccountManagerOutreach,
    RetentionSpecialistCall,
    WinBackSurvey,
}

impl OfferType {
    pub const ALL: [OfferType; 14] = [
        OfferType::PercentOff,
        OfferType::AmountOff,
        OfferType::PauseOneCycle,
        OfferType::PauseTwoCycles,
        OfferType::DowngradeTier,
        OfferType::BonusProduct,
        OfferType::GiftBundle,
        OfferType::CharityMatch,
        OfferType::ReplenishmentReminder,
        OfferType::EducationContent,
        OfferType::CustomerSuccessCall,
        OfferType::AccountManagerOutreach,
        OfferType::RetentionSpecialistCall,
        OfferType::WinBackSurvey,
    ];

    /// Label for metrics and reports.
    pub fn label(self) -> &'static str {
        match self {
            OfferType::PercentOff => "percent_off",
            OfferType::AmountOff => "amount_off",
            OfferType::PauseOneCycle => "pause_one_cycle",
            OfferType::PauseTwoCycles => "pause_two_cycles",
            OfferType::DowngradeTier => "downgrade_tier",
            OfferType::BonusProduct => "bonus_product",
            OfferType::GiftBundle => "gift_bundle",
            OfferType::CharityMatch => "charity_match",
            OfferType::ReplenishmentReminder => "replenishment_reminder",
            OfferType::EducationContent => "education_content",
            OfferType::CustomerSuccessCall => "customer_success_call",
            OfferType::AccountManagerOutreach => "account_manager_outreach",
            OfferType::RetentionSpecialistCall => "retention_specialist_call",
            OfferType::WinBackSurvey => "win_back_survey",
        }
    }

    /// The intervention type whose counterfactual (ltv's incremental value) prices it.
    pub fn intervention(self) -> InterventionType {
        match self {
            OfferType::PercentOff | OfferType::AmountOff => InterventionType::Offer,
            OfferType::DowngradeTier => InterventionType::TierBridge,
            OfferType::PauseOneCycle | OfferType::PauseTwoCycles => {
                InterventionType::StreakProtection
            }
            OfferType::BonusProduct | OfferType::GiftBundle | OfferType::CharityMatch => {
                InterventionType::SurpriseAndDelight
            }
            OfferType::ReplenishmentReminder => InterventionType::Redemption,
            OfferType::EducationContent
            | OfferType::CustomerSuccessCall
            | OfferType::AccountManagerOutreach
            | OfferType::RetentionSpecialistCall
            | OfferType::WinBackSurvey => InterventionType::TierPromotion,
        }
    }
}

/// Where a spec came from: stated in the vendor's document, set in the operator's
/// policy, derived by the normaliser from other vendor fields, or nothing said at all
/// (the spec is its permissive default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, AvroSchema)]
pub enum Confidence {
    Vendor,
    Operator,
    Derived,
    #[default]
    Default,
}

/// Stages of the member relationship an offer is meant for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, AvroSchema,
)]
pub enum RetentionStage {
    Onboarding,
    Active,
    AtRisk,
    Cancelling,
    Lapsed,
    WinBack,
}

/// Clusters of cancellation reasons (save-offer's `reasons` module maps free text and
/// reason codes onto them deterministically).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, AvroSchema,
)]
pub enum ReasonCluster {
    Price,
    NotUsingEnough,
    TooMuchProduct,
    ProductQuality,
    ShippingDelivery,
    SwitchingCompetitor,
    FinancialHardship,
    MovingOrTravel,
    ServiceExperience,
    Temporary,
    Other,
}

/// What the offer gives. Which fields are set depends on the type; the expected cost
/// of one redemption is `fixed_cost_minor` plus the discount on the member's expected
/// order value over `duration_cycles`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
pub struct OfferValue {
    /// Percent off in basis points (1500 = 15%).
    pub percent_off_bp: Option<i32>,
    /// Amount off in minor units of `currency`.
    pub amount_off_minor: Option<i64>,
    /// ISO 4217 currency of every amount in this record.
    pub currency: String,
    /// Billing cycles the discount applies to (Stripe's `duration_in_months`); null = one order.
    pub duration_cycles: Option<i32>,
    /// Cycles paused or skipped, for pause offers.
    pub pause_cycles: Option<i32>,
    /// Product given, for bonus products and gift bundles.
    pub product_sku: Option<String>,
    /// Loyalty points given.
    pub points: Option<i64>,
    /// Largest discount on one order.
    pub max_discount_minor: Option<i64>,
    /// Smallest order the offer applies to.
    pub min_order_minor: Option<i64>,
    /// Cost to the operator of one redemption besides the discount: product cost, a
    /// specialist's call, a charity match, a reward's face value.
    pub fixed_cost_minor: i64,
    pub confidence: Confidence,
}

/// Which members and moments the offer is meant for; selection prefers an offer whose
/// classification matches, eligibility decides whether it may be shown at all.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
pub struct Classification {
    pub retention_stages: Vec<RetentionStage>,
    /// RFM segment labels (cohort's Segment), e.g. "AtRisk".
    pub cohorts: Vec<String>,
    pub reason_clusters: Vec<ReasonCluster>,
    /// LTV deciles, 1 (lowest) to 10.
    pub ltv_deciles: Vec<i32>,
    pub confidence: Confidence,
}

/// How the offer is shown: a template the ESP renders and an asset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
pub struct OfferContent {
    pub template_id: Option<String>,
    pub asset_url: Option<String>,
    /// Redemption code or link, where the vendor issues one.
    pub code: Option<String>,
    pub confidence: Confidence,
}

/// The fifteen eligibility dimensions. Each list is an allow-list (empty = anyone);
/// a member whose value is unknown is not eligible where a list is set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
pub struct Eligibility {
    /// Population-relative LTV decile, 1..=10.
    pub ltv_deciles: Vec<i32>,
    /// Tenure bands: `0-90d`, `91-365d`, `1-2y`, `2y+`.
    pub tenure_cohorts: Vec<String>,
    pub acquisition_channels: Vec<String>,
    pub verticals: Vec<String>,
    pub product_lines: Vec<String>,
    /// Subscription plan tier (the plan, not the loyalty tier).
    pub plan_tiers: Vec<String>,
    /// ISO 3166-2 subdivisions, e.g. `US-CA`.
    pub states: Vec<String>,
    /// Subdivisions where the offer may not be shown (a state's promotion law).
    pub excluded_states: Vec<String>,
    /// ISO 3166-1 alpha-2.
    pub countries: Vec<String>,
    /// Loyalty tier ids of the member's program.
    pub loyalty_tiers: Vec<String>,
    pub payment_methods: Vec<String>,
    pub billing_frequencies: Vec<String>,
    /// Shipping postal-code prefixes.
    pub shipping_zip_prefixes: Vec<String>,
    pub reason_clusters: Vec<ReasonCluster>,
    pub borrower_statuses: Vec<String>,
    /// Most offers the member may have redeemed before (InterventionOutcome Accepted or Converted).
    pub max_prior_redemptions: Option<i32>,
    pub confidence: Confidence,
}

/// A budget shared by offers: never overspent, also with several instances (one task
/// owns it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Budget {
    pub budget_id: String,
    /// Most money committed, in the offer value's currency.
    pub ceiling_minor: Option<i64>,
    /// Most proposals charged to it.
    pub ceiling_redemptions: Option<i64>,
}

/// A spend pace: at most `max_minor_per_day` × `window_days` committed over any
/// `window_days` days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct BurnRate {
    pub max_minor_per_day: i64,
    pub window_days: i32,
}

/// The eight cost caps. Margins are of the member's expected order after the discount:
/// gross = (order − discount − cost of goods), net = gross − fulfilment − payment fees,
/// contribution = net − the offer's fixed cost, each over (order − discount).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
pub struct CostCaps {
    /// Expected cost may not exceed the member's expected incremental LTV for the
    /// offer's intervention type.
    pub ltv_bound: bool,
    /// Expected cost may not exceed this share (basis points) of the member's 12-month margin.
    pub margin_bound_bp: Option<i32>,
    pub gross_margin_floor_bp: Option<i32>,
    pub net_margin_floor_bp: Option<i32>,
    pub contribution_margin_floor_bp: Option<i32>,
    /// Most days of the member's expected margin the offer's cost may take to earn back
    /// (blended CAC payback: the cost counts as re-acquisition spend).
    pub cac_payback_max_days: Option<i32>,
    pub budget: Option<Budget>,
    pub burn_rate: Option<BurnRate>,
    /// Cost of goods as a share of revenue (basis points), for the margin floors.
    pub cogs_share_bp: Option<i32>,
    /// Fulfilment cost per order, minor units.
    pub fulfilment_cost_minor: Option<i64>,
    /// Payment fees as a share of revenue (basis points).
    pub payment_fee_bp: Option<i32>,
    pub confidence: Confidence,
}

/// How an offer combines with offers the member already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, AvroSchema)]
pub enum StackRule {
    // Only with no other offer held.
    Exclusive,
    // May replace held offers of its stack group when worth more to the member.
    BestOf,
    // Adds to held offers, within the caps.
    #[default]
    Additive,
}

/// The stacking rules (the tenth, the explanation, is in every proposal).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
pub struct Stacking {
    pub rule: StackRule,
    /// Offers of one group never stack with each other (best-of picks among them).
    pub stack_group: Option<String>,
    /// Most percent off (basis points) on one product line, held offers included.
    pub per_product_cap_bp: Option<i32>,
    /// Most amount off one order, held offers included.
    pub per_cart_cap_minor: Option<i64>,
    /// Most offers one member holds at once, this one included.
    pub per_subscriber_cap: Option<i32>,
    /// Not with another held offer of the same vendor.
    pub vendor_conflict: bool,
    /// Not with another held offer of the same loyalty program.
    pub loyalty_program_id: Option<String>,
    /// Not with another held offer of the same referral program.
    pub referral_program_id: Option<String>,
    pub confidence: Confidence,
}

/// Member events after which a held offer is withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
pub enum SuppressionTrigger {
    // The member ordered again: the save worked without the offer.
    OrderPlaced,
    SubscriptionCancelled,
    SubscriptionPaused,
    // The member redeemed or declined it.
    Redeemed,
    Declined,
}

/// An unredeemed offer proposed again is extended instead, at most `max_extensions` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Extension {
    pub days: i32,
    pub max_extensions: i32,
}

/// The eight expiration controls.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
pub struct Expiration {
    /// Last day the offer is valid, in `time_zone`.
    pub expires_on: Option<Date>,
    /// IANA time zone the offer's dates are in; null = UTC.
    pub time_zone: Option<String>,
    /// Most proposals of this offer, all members together.
    pub redemption_cap: Option<i64>,
    /// Most proposals of this offer per RFM cohort.
    pub cohort_cap: Option<i64>,
    /// Valid this many days from the proposal.
    pub rolling_window_days: Option<i32>,
    pub extension: Option<Extension>,
    /// Days after expiry a redemption is still honoured.
    pub grace_days: Option<i32>,
    pub suppress_on: Vec<SuppressionTrigger>,
    pub confidence: Confidence,
}

/// The offer as shown in one country and language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Localisation {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// ISO 639-1.
    pub language: String,
    /// ISO 4217 currency amounts are shown in (converted through the FX table).
    pub currency: String,
    pub title: String,
    pub body: String,
    /// Disclosure the country's rules require next to the offer.
    pub disclosure: Option<String>,
    /// How to cancel, as the country's auto-renewal rules require it said.
    pub cancellation_rule: Option<String>,
    /// Whether shown amounts include tax, and the rate.
    pub tax_inclusive: bool,
    pub tax_rate_bp: Option<i32>,
    pub return_policy: Option<String>,
}

/// Product categories regulated rules attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
pub enum ProductCategory {
    Alcohol,
    Tobacco,
    Cannabis,
    // California Proposition 65 warning products.
    Prop65,
    Pharmacy,
    FinancialProduct,
}

/// A SKU under a minimum advertised price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct MapConstraint {
    pub sku: String,
    pub floor_minor: i64,
    pub currency: String,
}

/// A comparative or savings claim and where it is substantiated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Claim {
    pub text: String,
    pub substantiation_ref: Option<String>,
}

/// A reward that holds money (gift card, store credit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct StoredValue {
    pub amount_minor: i64,
    pub currency: String,
    pub expires_on: Option<Date>,
}

/// A sweepstakes entry offered with the offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Sweepstakes {
    pub prize_value_minor: i64,
    pub currency: String,
}

/// What compliance-gate needs to know about an offer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
pub struct ComplianceAttributes {
    pub product_categories: Vec<ProductCategory>,
    pub map_constraints: Vec<MapConstraint>,
    pub claims: Vec<Claim>,
    /// The copy was drafted by a model.
    pub ai_drafted: bool,
    pub reseller_channel: Option<String>,
    pub stored_value: Option<StoredValue>,
    pub sweepstakes: Option<Sweepstakes>,
    /// Accepting the offer changes an auto-renewing plan (price, term, cycle).
    pub changes_auto_renewal: bool,
}

/// Bandit policies choosing among an experiment's arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, AvroSchema)]
pub enum BanditPolicy {
    #[default]
    ThompsonSampling,
    Ucb1,
    Exp3,
    LinUcb,
    LinThompson,
}

impl BanditPolicy {
    pub fn label(self) -> &'static str {
        match self {
            BanditPolicy::ThompsonSampling => "thompson_sampling",
            BanditPolicy::Ucb1 => "ucb1",
            BanditPolicy::Exp3 => "exp3",
            BanditPolicy::LinUcb => "lin_ucb",
            BanditPolicy::LinThompson => "lin_thompson",
        }
    }
}

/// The offer is one arm of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Experiment {
    pub experiment_id: String,
    pub variant_id: String,
    pub arm: String,
    /// Share of the experiment's eligible traffic this arm may get at most (basis points).
    pub traffic_allocation_bp: i32,
    /// Member attributes the bandit learns separately per value (`country`, `segment`, `tier`).
    pub stratification: Vec<String>,
    /// How often a readout is published.
    pub readout_cadence_hours: i32,
    pub policy: BanditPolicy,
}

/// One version of an offer: every edit is a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct OfferVersion {
    /// Increases by one with every edit, from 1.
    pub version_id: i64,
    /// The version that replaced this one; null while current.
    pub superseded_by: Option<i64>,
    pub effective_from: Timestamp,
    /// Null = until superseded.
    pub effective_to: Option<Timestamp>,
    /// What changed from the previous version, field by field.
    pub changelog: Vec<String>,
    /// Under legal hold the version can be neither superseded nor deleted.
    pub legal_hold: bool,
    /// SHA-256 (hex) of the version's canonical content and the vendor document it came
    /// from: what a regulator compares against.
    pub audit_snapshot_sha256: String,
}

/// One offer in the canonical catalog; key = `offer_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct CatalogOffer {
    /// `<vendor>:<vendor_offer_id>`; also the record key.
    pub offer_id: String,
    pub vendor: String,
    pub vendor_offer_id: String,
    pub brand_id: Option<String>,
    pub portfolio: Option<String>,
    pub title: String,
    pub offer_type: OfferType,
    pub value: OfferValue,
    pub classification: Classification,
    pub content: OfferContent,
    pub eligibility: Eligibility,
    pub caps: CostCaps,
    pub stacking: Stacking,
    pub expiration: Expiration,
    pub localisations: Vec<Localisation>,
    pub compliance: ComplianceAttributes,
    pub experiment: Option<Experiment>,
    /// The channels the offer may go out on, most preferred first (v2): the gate tries
    /// only these, in this order. Null: any trigger channel, in the gate's order.
    pub channels: Option<Vec<Channel>>,
    pub version: OfferVersion,
    /// Vendor fields with no canonical place, as a JSON object of their original values:
    /// kept, never dropped.
    pub vendor_fields_json: String,
    /// SHA-256 (hex) of the vendor document as received.
    pub vendor_document_sha256: String,
}

/// The operator's settings for one offer (key = offer id): what no vendor document says.
/// Each set part replaces what the normaliser derived and is marked `Operator`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct OfferPolicy {
    pub offer_id: String,
    pub brand_id: Option<String>,
    pub portfolio: Option<String>,
    /// Overrides the type the normaliser inferred (a Shopify discount used as a gift bundle).
    pub offer_type: Option<OfferType>,
    pub fixed_cost_minor: Option<i64>,
    pub classification: Option<Classification>,
    pub content: Option<OfferContent>,
    pub eligibility: Option<Eligibility>,
    pub caps: Option<CostCaps>,
    pub stacking: Option<Stacking>,
    pub expiration: Option<Expiration>,
    pub localisations: Vec<Localisation>,
    pub compliance: Option<ComplianceAttributes>,
    pub experiment: Option<Experiment>,
    pub legal_hold: bool,
    /// The channels the offer may go out on, most preferred first (v2); in-app only
    /// reaches a member through an offer that names it.
    pub channels: Option<Vec<Channel>>,
    pub updated_at: Timestamp,
}

/// An exchange rate (key = ISO 4217 code): one unit of `base` buys `rate` units of `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct FxRate {
    pub currency: String,
    pub base: String,
    pub rate: f64,
    pub as_of: Timestamp,
}
