//! The swarm's public contract as Rust types.
//!
//! Every topic value is one type here; its Avro schema is derived from the type and kept
//! verbatim in `schemas/<subject>.avsc`. A test (`tests/schemas.rs`) fails if the two ever
//! drift apart or if a schema stops being BACKWARD_TRANSITIVE compatible with the history
//! kept in `schemas/history/`, so the files are the reviewable contract and the types are
//! the only code that reads or writes it.
//!
//! Conventions: times are `timestamp-millis` ([`Timestamp`]) or `date` ([`Date`]) logical
//! types, money is a `long` in minor units next to an ISO 4217 currency code, and every
//! field that a later producer may omit is an `Option` (a `["null", T]` union defaulting
//! to null) so later versions stay compatible.

mod audit;
mod cohorts;
mod consents;
mod erasure;
mod events;
mod forecasts;
mod member_ltv;
mod model_params;
mod offer_catalog;
mod offers;
mod profiles;
mod programs;
mod proposals;
mod state;
pub mod testkit;

mod triggers;

pub use audit::{
    AuditCheckpoint, AuditRecord, AuditedDecision, ComplianceReview, DecidingPolicy, GateOutcome,
    Reliance,
};
pub use cohorts::{CohortStats, Lifecycle, MemberCohort, Segment};
pub use consents::{Channel, ChannelConsent, ConsentStatus, MemberConsents};
pub use erasure::{ErasedId, ErasureReceipt, ErasureRequest, Removal};
pub use events::{
    CancellationRequested, Engagement, EngagementKind, InterventionOutcome, InterventionResult,
    MemberEvent, OrderPlaced, OrderReturned, Payload, PointsEarned, PointsExpired, PointsRedeemed,
    ReferralCompleted, SubscriptionChanged, SubscriptionStatus, TierChanged,
};
pub use forecasts::{
    InterventionOpportunity, OpportunityKind, TierForecasts, TransitionForecast, TransitionType,
};
pub use loyalty_runtime::time::{Date, MILLIS_PER_DAY, Timestamp};
pub use member_ltv::{
    Adjustment, AdjustmentKind, Attestation, Counterfactual, DecayPoint, Discrepancy,
    InputPosition, InterventionType, MemberLtv, Reconciliation, ValueHorizons,
};
pub use model_params::{BgNbdFit, GammaGammaFit, ModelParams};
pub use offer_catalog::{
    BanditPolicy, Budget, BurnRate, CatalogOffer, Claim, Classification, ComplianceAttributes,
    Confidence, CostCaps, Eligibility, Experiment, Expiration, Extension, FxRate, Localisation,
    MapConstraint, OfferContent, OfferPolicy, OfferType, OfferValue, OfferVersion, ProductCategory,
    ReasonCluster, RetentionStage, StackRule, Stacking, StoredValue, SuppressionTrigger,
    Sweepstakes,
};
pub use offers::VendorOffer;
pub use profiles::{MemberProfile, reenrolment};
pub use programs::{Program, QualifyingMetric, Tier, TierHold, TierWindow};
pub use proposals::{
    ArmReadout, ChosenOffer, LocalisedContent, LtvReference, MoneyInterval, OfferProposal,
    OfferReadout, OfferRejection, ProposalTrigger, RejectionStage, RejectionTally, TierChange,
};
pub use state::{
    BtydSummary, MemberAttributes, MemberState, PointsLedger, QualifyingDay, Rfm, TierProgress,
    identity_link, linked_id,
};
pub use triggers::Trigger;

use apache_avro::{AvroSchema, Schema};

/// A stable 64-bit FNV-1a hash: event-id dedupe keys, model and calibration versions,
/// hold-out splits — anything every instance, on every machine, must compute alike
/// (std's hasher is randomly seeded per process).
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Namespace of every named Avro type in the contract.
pub const NAMESPACE: &str = "io.loyaltyswarm";

/// Topic names, defined once (`docs/architecture.md#contract-topics`).
pub mod topics {
    pub const MEMBER_EVENTS: &str = "loyalty.member-events.v1";
    pub const MEMBER_PROFILES: &str = "loyalty.member-profiles.v1";
    pub const MEMBER_CONSENTS: &str = "loyalty.member-consents.v1";
    pub const PROGRAMS: &str = "loyalty.programs.v1";
    pub const VENDOR_OFFERS: &str = "loyalty.vendor-offers.v1";
    pub const ERASURE_REQUESTS: &str = loyalty_runtime::erasure::REQUESTS;
    pub const ERASURE_RECEIPTS: &str = loyalty_runtime::erasure::RECEIPTS;
    pub const ERASURE_REGISTRY: &str = loyalty_runtime::erasure::REGISTRY;
    pub const MEMBER_STATE: &str = "loyalty.member-state.v1";
    pub const COHORTS: &str = "loyalty.cohorts.v1";
    pub const COHORT_STATS: &str = "loyalty.cohort-stats.v1";
    pub const MODEL_PARAMS: &str = "loyalty.model-params.v1";
    pub const TIER_FORECASTS: &str = "loyalty.tier-forecasts.v1";
    pub const INTERVENTION_OPPORTUNITIES: &str = "loyalty.intervention-opportunities.v1";
    pub const MEMBER_LTV: &str = "loyalty.member-ltv.v1";
    pub const OFFER_CATALOG: &str = "loyalty.offer-catalog.v1";
    pub const OFFER_POLICIES: &str = "loyalty.offer-policies.v1";
    pub const FX_RATES: &str = "loyalty.fx-rates.v1";
    pub const OFFER_PROPOSALS: &str = "loyalty.offer-proposals.v1";
    pub const OFFER_READOUTS: &str = "loyalty.offer-readouts.v1";
    pub const TRIGGERS_EMAIL: &str = "loyalty.triggers.email.v1";
    pub const TRIGGERS_SMS: &str = "loyalty.triggers.sms.v1";
    pub const TRIGGERS_PUSH: &str = "loyalty.triggers.push.v1";
    pub const TRIGGERS_IN_APP: &str = "loyalty.triggers.in-app.v1";
    pub const AUDIT_LOG: &str = "loyalty.audit-log.v1";
    pub const COMPLIANCE_REVIEWS: &str = "loyalty.compliance-reviews.v1";
}

pub use loyalty_runtime::Cleanup;

/// Every contract topic as a typed handle: its name, cleanup policy, member keying and
/// value type. Agents declare their outputs from these (`catalog::MEMBER_STATE.output()`)
/// and emit through them, so compaction and schema cannot drift from the contract.
pub mod catalog {
    use loyalty_runtime::Topic;

    use super::*;

    pub const MEMBER_EVENTS: Topic<MemberEvent> =
        Topic::stream(topics::MEMBER_EVENTS).member_keyed();
    pub const MEMBER_PROFILES: Topic<MemberProfile> =
        Topic::compacted(topics::MEMBER_PROFILES).member_keyed();
    pub const MEMBER_CONSENTS: Topic<MemberConsents> =
        Topic::compacted(topics::MEMBER_CONSENTS).member_keyed();
    pub const PROGRAMS: Topic<Program> = Topic::compacted(topics::PROGRAMS);
    pub const VENDOR_OFFERS: Topic<VendorOffer> = Topic::stream(topics::VENDOR_OFFERS);
    pub const ERASURE_REQUESTS: Topic<ErasureRequest> = loyalty_runtime::erasure::REQUESTS_TOPIC;
    pub const ERASURE_RECEIPTS: Topic<ErasureReceipt> = loyalty_runtime::erasure::RECEIPTS_TOPIC;
    /// Keyed by the erased id's keyed hash, never the id.
    pub const ERASURE_REGISTRY: Topic<ErasedId> = loyalty_runtime::erasure::REGISTRY_TOPIC;
    pub const MEMBER_STATE: Topic<MemberState> =
        Topic::compacted(topics::MEMBER_STATE).member_keyed();
    pub const COHORTS: Topic<MemberCohort> = Topic::compacted(topics::COHORTS).member_keyed();
    pub const COHORT_STATS: Topic<CohortStats> = Topic::stream(topics::COHORT_STATS);
    pub const MODEL_PARAMS: Topic<ModelParams> = Topic::compacted(topics::MODEL_PARAMS);
    pub const TIER_FORECASTS: Topic<TierForecasts> =
        Topic::compacted(topics::TIER_FORECASTS).member_keyed();
    pub const INTERVENTION_OPPORTUNITIES: Topic<InterventionOpportunity> =
        Topic::stream(topics::INTERVENTION_OPPORTUNITIES).member_keyed();
    pub const MEMBER_LTV: Topic<MemberLtv> = Topic::compacted(topics::MEMBER_LTV).member_keyed();
    pub const OFFER_POLICIES: Topic<OfferPolicy> = Topic::compacted(topics::OFFER_POLICIES);
    pub const OFFER_CATALOG: Topic<CatalogOffer> = Topic::compacted(topics::OFFER_CATALOG);
    pub const FX_RATES: Topic<FxRate> = Topic::compacted(topics::FX_RATES);
    pub const OFFER_PROPOSALS: Topic<OfferProposal> =
        Topic::stream(topics::OFFER_PROPOSALS).member_keyed();
    pub const OFFER_READOUTS: Topic<OfferReadout> = Topic::stream(topics::OFFER_READOUTS);
    pub const TRIGGERS_EMAIL: Topic<Trigger> = Topic::stream(topics::TRIGGERS_EMAIL).member_keyed();
    pub const TRIGGERS_SMS: Topic<Trigger> = Topic::stream(topics::TRIGGERS_SMS).member_keyed();
    pub const TRIGGERS_PUSH: Topic<Trigger> = Topic::stream(topics::TRIGGERS_PUSH).member_keyed();
    pub const TRIGGERS_IN_APP: Topic<Trigger> =
        Topic::stream(topics::TRIGGERS_IN_APP).member_keyed();
    /// Keyed by pseudonym, never the member id; each gate task writes its partition.
    pub const AUDIT_LOG: Topic<AuditRecord> = Topic::stream(topics::AUDIT_LOG).task_partitioned();
    pub const COMPLIANCE_REVIEWS: Topic<ComplianceReview> =
        Topic::stream(topics::COMPLIANCE_REVIEWS).member_keyed();
}

/// Reference tables every agent that needs them reads the same way.
pub mod tables {
    use loyalty_runtime::Table;

    use super::{Program, topics};

    /// Loyalty programs by id: a program whose id differs from its key, or whose tiers
    /// are inconsistent, is dead-lettered with every problem and the table keeps the
    /// previous version.
    pub const PROGRAMS: Table<Program> = Table::checked(topics::PROGRAMS);
}

/// One topic of the contract, its value type erased: for creating topics and
/// registering schemas.
#[derive(Debug, Clone)]
pub struct TopicContract {
    pub topic: &'static str,
    pub cleanup: Cleanup,
    /// Has the member-keyed topics' partition count (see `Topic::co_partitioned`).
    pub co_partitioned: bool,
    pub schema: fn() -> Schema,
}

impl TopicContract {
    fn of<T: AvroSchema>(topic: &loyalty_runtime::Topic<T>) -> Self {
        TopicContract {
            topic: topic.name,
            cleanup: topic.cleanup,
            co_partitioned: topic.co_partitioned,
            schema: T::get_schema,
        }
    }

    /// The registry subject under TopicNameStrategy.
    pub fn subject(&self) -> String {
        format!("{}-value", self.topic)
    }
}

/// Every topic whose schema this crate owns, in the order the swarm creates them.
pub fn contracts() -> Vec<TopicContract> {
    use catalog::*;
    vec![
        TopicContract::of(&MEMBER_EVENTS),
        TopicContract::of(&MEMBER_PROFILES),
        TopicContract::of(&MEMBER_CONSENTS),
        TopicContract::of(&PROGRAMS),
        TopicContract::of(&VENDOR_OFFERS),
        TopicContract::of(&ERASURE_REQUESTS),
        TopicContract::of(&ERASURE_RECEIPTS),
        TopicContract::of(&ERASURE_REGISTRY),
        TopicContract::of(&MEMBER_STATE),
        TopicContract::of(&COHORTS),
        TopicContract::of(&COHORT_STATS),
        TopicContract::of(&MODEL_PARAMS),
        TopicContract::of(&TIER_FORECASTS),
        TopicContract::of(&INTERVENTION_OPPORTUNITIES),
        TopicContract::of(&MEMBER_LTV),
        TopicContract::of(&OFFER_POLICIES),
        TopicContract::of(&OFFER_CATALOG),
        TopicContract::of(&FX_RATES),
        TopicContract::of(&OFFER_PROPOSALS),
        TopicContract::of(&OFFER_READOUTS),
        TopicContract::of(&TRIGGERS_EMAIL),
        TopicContract::of(&TRIGGERS_SMS),
        TopicContract::of(&TRIGGERS_PUSH),
        TopicContract::of(&TRIGGERS_IN_APP),
        TopicContract::of(&AUDIT_LOG),
        TopicContract::of(&COMPLIANCE_REVIEWS),
    ]
}

/// The contract of one topic, by name.
pub fn contract(topic: &str) -> Option<TopicContract> {
    contracts().into_iter().find(|c| c.topic == topic)
}

/// The schema as it is written to `schemas/<subject>.avsc` and registered.
pub fn schema_json(schema: &Schema) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(schema)?;
    text.push('\n');
    Ok(text)
}
