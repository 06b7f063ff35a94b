//! `loyalty.model-params.v1` (compacted, key = segment): fitted population
//! buy-till-you-die models with their diagnostics, read whole by every agent that scores
//! members with them.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::{Date, Timestamp};

/// A fitted BG/NBD purchase model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct BgNbdFit {
    /// Shape of the Gamma prior on the purchase rate.
    pub r: f64,
    /// Scale of the Gamma prior on the purchase rate, in model time units.
    pub alpha: f64,
    /// First shape of the Beta prior on the drop-out probability.
    pub a: f64,
    /// Second shape of the Beta prior on the drop-out probability.
    pub b: f64,
    /// Standard errors of r, alpha, a, b; null when the information matrix is singular.
    pub standard_errors: Option<Vec<f64>>,
    /// Maximised log-likelihood.
    pub log_likelihood: f64,
    /// Members the fit covers.
    pub sample_size: i64,
    /// Distinct (x, t_x, T) summaries the likelihood was evaluated on.
    pub distinct_summaries: i64,
    /// The optimiser reached a stationary point.
    pub converged: bool,
}

/// A fitted Gamma-Gamma spend model, on order values in minor units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct GammaGammaFit {
    /// Shape of each order value's Gamma distribution.
    pub p: f64,
    /// Shape of the Gamma prior on the member's rate.
    pub q: f64,
    /// Scale of the Gamma prior on the member's rate, in minor units.
    pub gamma: f64,
    /// Standard errors of p, q, gamma; null when the information matrix is singular.
    pub standard_errors: Option<Vec<f64>>,
    /// Maximised log-likelihood.
    pub log_likelihood: f64,
    /// Members with a repeat purchase of positive value the fit covers.
    pub sample_size: i64,
    /// The optimiser reached a stationary point.
    pub converged: bool,
}

/// Population models for one segment; key = segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct ModelParams {
    /// Segment the fit covers: "all", or a segment id (tier, redemption behaviour, tenure band).
    pub segment: String,
    /// Version: a hash of the parameters and the data they were fitted on.
    pub version: String,
    /// When the fit was made.
    pub fitted_at: Timestamp,
    /// End of the calibration period: T is measured up to this day.
    pub calibration_end: Date,
    /// Days per model time unit (7: weeks).
    pub unit_days: f64,
    /// Currency of the spend model's minor units, when known.
    pub currency: Option<String>,
    /// The purchase process.
    pub bgnbd: BgNbdFit,
    /// The spend model; null when too few members have repeat purchases.
    pub gamma_gamma: Option<GammaGammaFit>,
    /// Wall time of the fit in milliseconds.
    pub fit_millis: i64,
}
