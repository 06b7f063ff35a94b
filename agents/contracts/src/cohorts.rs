//! `loyalty.cohorts.v1` (compacted): each member's population-relative RFM scores, named
//! segment, lifecycle stage and acquisition cohort; `loyalty.cohort-stats.v1`: size,
//! retention and value per acquisition cohort and segment. The README ("Segments and
//! lifecycle") defines every rule.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::{Date, Timestamp};

/// The eleven standard RFM segments.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, AvroSchema,
)]
pub enum Segment {
    Champions,
    Loyal,
    PotentialLoyalist,
    New,
    Promising,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    CannotLoseThem,
    Hibernating,
    Lost,
}

impl Segment {
    pub fn label(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::Loyal => "loyal",
            Segment::PotentialLoyalist => "potential_loyalist",
            Segment::New => "new",
            Segment::Promising => "promising",
            Segment::NeedAttention => "need_attention",
            Segment::AboutToSleep => "about_to_sleep",
            Segment::AtRisk => "at_risk",
            Segment::CannotLoseThem => "cannot_lose_them",
            Segment::Hibernating => "hibernating",
            Segment::Lost => "lost",
        }
    }
}

/// Where a member is in their purchase life, relative to their own rhythm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
pub enum Lifecycle {
    New,
    Active,
    Lapsing,
    Dormant,
    Reactivated,
    Churned,
}

/// One member's cohort record; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct MemberCohort {
    /// Member id.
    pub member_id: String,
    /// Population time the scores are relative to: the newest member-state day seen.
    pub as_of: Timestamp,
    /// 1 (least recent fifth of the population) to 5 (most recent).
    pub recency_score: i32,
    /// 1 to 5 by number of transactions.
    pub frequency_score: i32,
    /// 1 to 5 by mean transaction value.
    pub monetary_score: i32,
    /// Named segment from the recency score and the mean of frequency and monetary.
    pub segment: Segment,
    /// Lifecycle stage.
    pub lifecycle: Lifecycle,
    /// Days between purchases the stage is judged against: the member's own mean, or the
    /// population median for members with a single purchase.
    pub typical_interpurchase_days: f64,
    /// Days from the last purchase to as_of.
    pub days_since_last_purchase: i32,
    /// Acquisition cohort: month of the first purchase, YYYY-MM.
    pub acquisition_cohort: String,
    /// First purchase day.
    pub first_purchase: Date,
    /// Version of the population boundaries the scores were computed against.
    pub boundaries_version: String,
}

/// Statistics of one acquisition cohort and segment; key = "<cohort>|<segment>".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct CohortStats {
    /// Acquisition cohort, YYYY-MM.
    pub acquisition_cohort: String,
    /// Segment.
    pub segment: Segment,
    /// Population time of the statistics.
    pub as_of: Timestamp,
    /// Members in the cohort and segment.
    pub size: i64,
    /// Share of members still buying k months after their acquisition month (index k):
    /// their last purchase is in month k or later.
    pub retention: Vec<f64>,
    /// Mean gross spend per member, minor units.
    pub mean_spend_minor: f64,
    /// Median gross spend per member, minor units (from a 1%-accurate sketch).
    pub median_spend_minor: f64,
    /// Mean gross margin per member, minor units.
    pub mean_margin_minor: f64,
    /// Median gross margin per member, minor units (from a 1%-accurate sketch).
    pub median_margin_minor: f64,
}
