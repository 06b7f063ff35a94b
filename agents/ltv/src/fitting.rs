//! The population fitter, on the owner of partition 0: every segment whose rows changed
//! is refitted, and fits that moved beyond tolerance are published on
//! `loyalty.model-params.v1`.

use std::time::Instant;

use btyd::params::{MODEL_PARAMS, Published};
use loyalty_contracts::{ModelParams, catalog};
use loyalty_runtime::{Context, HandleError};

use crate::Ltv;
use crate::population::{self, FitOutcome, Merged};

impl Ltv {
    /// Fit every segment whose rows changed, publishing converged fits that differ from
    /// the table's.
    pub(crate) fn fit_segments(&self, ctx: &mut Context<'_, Self>) -> Result<(), HandleError> {
        let population = ctx.population();
        let merged = Merged::of(population.partitions.values(), true);
        let Ok(mut fitted) = self.fitted.lock() else {
            return Ok(());
        };
        let mut records: Vec<ModelParams> = Vec::new();
        for (segment, rows) in &merged.fit_rows {
            let published = ctx.table(&MODEL_PARAMS, segment).is_some();
            if fitted.get(segment).is_some_and(|(day, r, at)| {
                (*day == merged.stream_day && r == rows)
                    || (published
                        && at.elapsed().as_millis()
                            < u128::from(self.settings.refit_min_interval_ms))
            }) {
                continue;
            }
            let started = Instant::now();
            let outcome = population::fit_segment(
                segment,
                rows,
                merged.stream_day,
                self.settings.min_segment_members,
            );
            let label = match &outcome {
                FitOutcome::Fitted(params) => {
                    let current = ctx.table(&MODEL_PARAMS, segment);
                    if current.is_some_and(|c| !moved(&c, params, self.settings.refit_tolerance)) {
                        "unchanged"
                    } else {
                        records.push((**params).clone());
                        "published"
                    }
                }
                other => other.label(),
            };
            if let Some(m) = self.metrics.get() {
                m.model_fitted(segment, label, started.elapsed());
            }
            fitted.insert(
                segment.clone(),
                (merged.stream_day, rows.clone(), Instant::now()),
            );
        }
        drop(fitted);
        for params in records {
            let at = params.fitted_at.0;
            ctx.emit(&catalog::MODEL_PARAMS, &params.segment.clone(), &params, at)?;
        }
        Ok(())
    }
}

/// Whether `fit` differs from the published `current` by more than `tolerance` in any
/// parameter (relative), or gained or lost its spend model.
fn moved(current: &Published, fit: &ModelParams, tolerance: f64) -> bool {
    let far = |a: f64, b: f64| (a - b).abs() > tolerance * a.abs().max(b.abs());
    let b = &fit.bgnbd;
    let purchases = current.purchases.params();
    if [b.r, b.alpha, b.a, b.b]
        .iter()
        .zip(purchases)
        .any(|(new, old)| far(*new, old))
    {
        return true;
    }
    match (&fit.gamma_gamma, &current.spend) {
        (Some(g), Some(spend)) => [g.p, g.q, g.gamma]
            .iter()
            .zip(spend.params())
            .any(|(new, old)| far(*new, old)),
        (None, None) => false,
        _ => true,
    }
}
