//! Fits as `loyalty.model-params.v1` records and back: the one place the published
//! parameters are built and read, so the fitter and every scoring agent agree on units.

use loyalty_contracts::{BgNbdFit, Date, GammaGammaFit, ModelParams, Timestamp};

use crate::{BgNbd, Fit, GammaGamma};

/// The models a `ModelParams` record describes, ready to score with.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub purchases: BgNbd,
    pub spend: Option<GammaGamma>,
    pub unit_days: f64,
    pub version: String,
}

impl Published {
    /// The published CDNOW fits (Fader, Hardie & Lee 2005; the 2013 note), spend in
    /// cents, weeks as the time unit: a known-good model for tests and benchmarks.
    pub fn cdnow(version: &str) -> Published {
        Published {
            purchases: BgNbd {
                r: 0.2426,
                alpha: 4.4136,
                a: 0.7929,
                b: 2.4259,
            },
            spend: Some(GammaGamma {
                p: 6.2496,
                q: 3.7442,
                gamma: 1544.35,
            }),
            unit_days: 7.0,
            version: version.into(),
        }
    }
}

/// A publishable record of `purchases` and `spend` (spend fitted on minor units).
pub fn model_params(
    segment: &str,
    purchases: &Fit<BgNbd>,
    spend: Option<&Fit<GammaGamma>>,
    calibration_end: Date,
    unit_days: f64,
    fitted_at: Timestamp,
    fit_millis: i64,
) -> ModelParams {
    let bg = purchases.model;
    let bgnbd = BgNbdFit {
        r: bg.r,
        alpha: bg.alpha,
        a: bg.a,
        b: bg.b,
        standard_errors: purchases.standard_errors.map(|s| s.params().to_vec()),
        log_likelihood: purchases.log_likelihood,
        sample_size: purchases.sample_weight.round() as i64,
        distinct_summaries: purchases.distinct as i64,
        converged: purchases.converged,
    };
    let gamma_gamma = spend.map(|f| GammaGammaFit {
        p: f.model.p,
        q: f.model.q,
        gamma: f.model.gamma,
        standard_errors: f.standard_errors.map(|s| s.params().to_vec()),
        log_likelihood: f.log_likelihood,
        sample_size: f.sample_weight.round() as i64,
        converged: f.converged,
    });
    // The version names the numbers, so equal fits share a version wherever they ran.
    let identity = format!(
        "{segment}|{}|{unit_days}|{:?}|{:?}",
        calibration_end.0,
        bg.params(),
        spend.map(|f| f.model.params())
    );
    ModelParams {
        segment: segment.to_owned(),
        version: format!("{:016x}", loyalty_contracts::fnv1a(&identity)),
        fitted_at,
        calibration_end,
        unit_days,
        currency: None,
        bgnbd,
        gamma_gamma,
        fit_millis,
    }
}

/// The models to score with, if the record is usable: converged, positive parameters.
pub fn published(params: &ModelParams) -> Result<Published, String> {
    let b = &params.bgnbd;
    let positive = |v: &[f64]| v.iter().all(|x| x.is_finite() && *x > 0.0);
    if !b.converged {
        return Err(format!("BG/NBD fit {} did not converge", params.version));
    }
    if !positive(&[b.r, b.alpha, b.a, b.b, params.unit_days]) {
        return Err(format!(
            "BG/NBD fit {} has a non-positive parameter",
            params.version
        ));
    }
    let spend = match &params.gamma_gamma {
        Some(g) if g.converged && positive(&[g.p, g.q, g.gamma]) => Some(GammaGamma {
            p: g.p,
            q: g.q,
            gamma: g.gamma,
        }),
        Some(_) => {
            return Err(format!(
                "Gamma-Gamma fit {} is unusable (not converged or non-positive)",
                params.version
            ));
        }
        None => None,
    };
    Ok(Published {
        purchases: BgNbd {
            r: b.r,
            alpha: b.alpha,
            a: b.a,
            b: b.b,
        },
        spend,
        unit_days: params.unit_days,
        version: params.version.clone(),
    })
}

/// [`published`] for a record read under `key`, which must be its segment.
pub fn published_keyed(params: &ModelParams, key: &str) -> Result<Published, String> {
    if params.segment != key {
        return Err(format!(
            "model segment {} differs from the record key {key}",
            params.segment
        ));
    }
    published(params)
}

/// A population fit loaded as a reference table (`loyalty.model-params.v1`, keyed by
/// segment): checked against its key and turned into the models scoring needs, once per
/// record, by every agent that reads it.
impl loyalty_runtime::TableRecord for Published {
    type Value = ModelParams;
    const WHAT: &'static str = "model fit";

    fn from_record(params: ModelParams, key: &str) -> Result<Self, Vec<String>> {
        published_keyed(&params, key).map_err(|problem| vec![problem])
    }
}

/// The population fits, by segment.
pub const MODEL_PARAMS: loyalty_runtime::Table<Published> =
    loyalty_runtime::Table::checked(loyalty_contracts::topics::MODEL_PARAMS);

/// Fit the population from member-state snapshots (customer-graph's BTYD summaries, in
/// days and minor units) with T measured to `calibration_end`; weeks as the time unit.
/// Members without a purchase by then are left out.
pub fn fit_member_states<'a>(
    states: impl IntoIterator<Item = &'a loyalty_contracts::MemberState>,
    calibration_end: Date,
) -> Result<(Fit<BgNbd>, Option<Fit<GammaGamma>>), crate::FitError> {
    let summaries: Vec<&loyalty_contracts::BtydSummary> = states
        .into_iter()
        .filter_map(|s| s.btyd.as_ref())
        .filter(|b| b.first_purchase <= calibration_end)
        .collect();
    let purchases = BgNbd::fit(&crate::group(summaries.iter().map(|b| {
        crate::Summary::new(
            f64::from(b.x),
            f64::from(b.t_x_days) / WEEK,
            f64::from((calibration_end.0 - b.first_purchase.0).max(b.t_x_days)) / WEEK,
        )
    })))?;
    let spend = GammaGamma::fit(&crate::group(summaries.iter().map(|b| crate::Spend {
        x: f64::from(b.x),
        mean_value: b.mean_repeat_value_minor,
    })))
    .ok();
    Ok((purchases, spend))
}

/// Days per model time unit used by the swarm's fits.
pub const WEEK: f64 = 7.0;
