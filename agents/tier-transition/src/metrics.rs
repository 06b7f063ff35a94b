//! tier-transition's own metrics, registered in the agent's registry at start-up: how
//! well calibrated its forecasts are, and the opportunities it raises.

use loyalty_runtime::metrics::{MetricDef, Metrics};
use loyalty_runtime::prometheus::{self, GaugeVec, IntCounterVec, IntGaugeVec};

pub const FORECAST_RESOLVED: MetricDef = MetricDef::gauge(
    "forecast_resolved",
    &["transition"],
    "resolved forecasts calibration is judged on",
);
pub const FORECAST_BRIER: MetricDef = MetricDef::gauge(
    "forecast_brier_score",
    &["transition"],
    "Brier score of calibrated probabilities on the held-out fifth",
);
pub const FORECAST_LOG_LOSS: MetricDef = MetricDef::gauge(
    "forecast_log_loss",
    &["transition"],
    "log loss of calibrated probabilities on the held-out fifth",
);
pub const FORECAST_ECE: MetricDef = MetricDef::gauge(
    "forecast_calibration_error",
    &["transition"],
    "expected calibration error (ten bins) on the held-out fifth",
);
pub const OPPORTUNITIES: MetricDef = MetricDef::counter(
    "opportunities_total",
    &["kind"],
    "intervention opportunities raised",
);

/// Every metric of tier-transition's own, for the reference table.
pub const ALL: &[MetricDef] = &[
    FORECAST_RESOLVED,
    FORECAST_BRIER,
    FORECAST_LOG_LOSS,
    FORECAST_ECE,
    OPPORTUNITIES,
];

/// The registered series.
#[derive(Debug, Clone)]
pub struct TierMetrics {
    resolved: IntGaugeVec,
    brier: GaugeVec,
    log_loss: GaugeVec,
    ece: GaugeVec,
    opportunities: IntCounterVec,
}

/// Calibration quality of one transition type over its resolved forecasts.
#[derive(Debug, Clone, Copy)]
pub struct ForecastQuality<'a> {
    pub transition: &'a str,
    pub resolved: u64,
    pub brier: f64,
    pub log_loss: f64,
    pub ece: f64,
}

impl TierMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        Ok(TierMetrics {
            resolved: metrics.int_gauge(&FORECAST_RESOLVED)?,
            brier: metrics.gauge(&FORECAST_BRIER)?,
            log_loss: metrics.gauge(&FORECAST_LOG_LOSS)?,
            ece: metrics.gauge(&FORECAST_ECE)?,
            opportunities: metrics.counter(&OPPORTUNITIES)?,
        })
    }

    pub fn forecast_quality(&self, q: ForecastQuality<'_>) {
        let labels = [q.transition];
        self.resolved
            .with_label_values(&labels)
            .set(i64::try_from(q.resolved).unwrap_or(i64::MAX));
        self.brier.with_label_values(&labels).set(q.brier);
        self.log_loss.with_label_values(&labels).set(q.log_loss);
        self.ece.with_label_values(&labels).set(q.ece);
    }

    pub fn opportunity_raised(&self, kind: &str) {
        self.opportunities.with_label_values(&[kind]).inc();
    }
}
