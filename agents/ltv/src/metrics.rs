//! ltv's own metrics, registered in the agent's registry at start-up: population fits by
//! segment and outcome, and members whose value views disagree.

use std::time::Duration;

use loyalty_runtime::metrics::{MetricDef, Metrics};
use loyalty_runtime::prometheus::{self, HistogramVec, IntCounterVec};

pub const MODEL_FITS: MetricDef = MetricDef::counter(
    "model_fits_total",
    &["segment", "outcome"],
    "population fits: published, unchanged, too_small, not_converged, failed",
);
pub const MODEL_FIT_SECONDS: MetricDef = MetricDef::histogram(
    "model_fit_seconds",
    &["segment"],
    "wall time of one segment's fit",
);
pub const DISCREPANCIES: MetricDef = MetricDef::counter(
    "ltv_discrepancies_total",
    &["between"],
    "member-ltv records with two value views beyond tolerance, by pair",
);

/// Every metric of ltv's own, for the reference table.
pub const ALL: &[MetricDef] = &[MODEL_FITS, MODEL_FIT_SECONDS, DISCREPANCIES];

/// The registered series.
#[derive(Debug, Clone)]
pub struct LtvMetrics {
    fits: IntCounterVec,
    fit_seconds: HistogramVec,
    discrepancies: IntCounterVec,
}

impl LtvMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        Ok(LtvMetrics {
            fits: metrics.counter(&MODEL_FITS)?,
            fit_seconds: metrics.histogram(
                &MODEL_FIT_SECONDS,
                prometheus::exponential_buckets(1e-3, 2.5, 12)?,
            )?,
            discrepancies: metrics.counter(&DISCREPANCIES)?,
        })
    }

    /// A segment was fitted; `outcome` says what came of it.
    pub fn model_fitted(&self, segment: &str, outcome: &str, elapsed: Duration) {
        self.fits.with_label_values(&[segment, outcome]).inc();
        self.fit_seconds
            .with_label_values(&[segment])
            .observe(elapsed.as_secs_f64());
    }

    /// A member's value sources disagreed beyond tolerance.
    pub fn value_discrepancy(&self, between: &str) {
        self.discrepancies.with_label_values(&[between]).inc();
    }
}
