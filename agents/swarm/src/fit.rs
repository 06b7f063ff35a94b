//! Population fits: `swarm ltv fit` on a CDNOW-format file, and the demo's fit of the
//! member-state population published on `loyalty.model-params.v1` for the agents that
//! score members (until the ltv agent's own fitter publishes per segment).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use apache_avro::AvroSchema;
use btyd::{BgNbd, Fit, GammaGamma, group};
use loyalty_contracts::{Date, MemberState, ModelParams, Timestamp, topics};
use loyalty_runtime::kafka;
use loyalty_runtime::registry::RegistryClient;
use serde::Serialize;

use crate::replay::{encoder, record};

/// What `swarm ltv fit` prints.
#[derive(Debug, Clone, Serialize)]
pub struct FileFit {
    pub customers: usize,
    pub calibration_end: String,
    pub bgnbd: Fit<BgNbd>,
    /// On mean repeat order values in the file's currency units.
    pub gamma_gamma: Option<Fit<GammaGamma>>,
    pub fit_seconds: f64,
}

/// Fit BG/NBD (weeks) and Gamma-Gamma (dollars) on a CDNOW-format file, T to
/// `calibration_end`.
pub fn fit_file(file: &Path, calibration_end: Date) -> anyhow::Result<FileFit> {
    let purchases = btyd::cdnow::read_purchases(file)?;
    let customers = btyd::cdnow::summarise(&purchases, calibration_end, btyd::params::WEEK);
    anyhow::ensure!(
        !customers.is_empty(),
        "no customer made a purchase by {}",
        calibration_end
    );
    let started = Instant::now();
    let bgnbd = BgNbd::fit(&group(customers.iter().map(|c| c.summary)))?;
    let gamma_gamma = GammaGamma::fit(&group(customers.iter().map(|c| c.spend))).ok();
    Ok(FileFit {
        customers: customers.len(),
        calibration_end: calibration_end.to_string(),
        bgnbd,
        gamma_gamma,
        fit_seconds: started.elapsed().as_secs_f64(),
    })
}

impl std::fmt::Display for FileFit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.bgnbd;
        writeln!(
            f,
            "{} customers, calibration period ending {}, time unit weeks",
            self.customers, self.calibration_end
        )?;
        let se = |v: Option<[f64; 4]>, i: usize| v.map_or("n/a".into(), |s| format!("{:.4}", s[i]));
        let bse = b.standard_errors.map(|s| s.params());
        writeln!(
            f,
            "BG/NBD       r {:.4} (se {})  alpha {:.4} (se {})  a {:.4} (se {})  b {:.4} (se {})",
            b.model.r,
            se(bse, 0),
            b.model.alpha,
            se(bse, 1),
            b.model.a,
            se(bse, 2),
            b.model.b,
            se(bse, 3)
        )?;
        writeln!(
            f,
            "             log-likelihood {:.2}, {} distinct summaries, {} iterations, converged {}",
            b.log_likelihood, b.distinct, b.iterations, b.converged
        )?;
        if let Some(g) = &self.gamma_gamma {
            writeln!(
                f,
                "Gamma-Gamma  p {:.4}  q {:.4}  gamma {:.4}  on {} repeat buyers",
                g.model.p, g.model.q, g.model.gamma, g.sample_weight
            )?;
            writeln!(
                f,
                "             log-likelihood {:.2}, converged {}",
                g.log_likelihood, g.converged
            )?;
        }
        write!(f, "fit time     {:.3}s", self.fit_seconds)
    }
}

/// Fit the population in `states` (T to the newest as_of) and publish it as segment "all".
pub async fn publish_population(
    bootstrap_servers: &str,
    registry_url: &str,
    states: &BTreeMap<String, MemberState>,
) -> anyhow::Result<ModelParams> {
    let calibration_end = states
        .values()
        .map(|s| s.as_of.day())
        .max()
        .context("no member-state to fit")?;
    let started = Instant::now();
    let (purchases, spend) = btyd::params::fit_member_states(states.values(), calibration_end)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let params = btyd::params::model_params(
        "all",
        &purchases,
        spend.as_ref(),
        calibration_end,
        btyd::params::WEEK,
        Timestamp(now),
        started.elapsed().as_millis() as i64,
    );
    let registry = RegistryClient::new(registry_url)?;
    let encoder = encoder(&registry, topics::MODEL_PARAMS, ModelParams::get_schema()).await?;
    let out = record(
        &encoder,
        topics::MODEL_PARAMS,
        &params.segment,
        &params,
        "model fit",
    )?;
    let producer = kafka::producer(bootstrap_servers, &BTreeMap::new())?;
    kafka::produce_all(&producer, &[out]).await?;
    Ok(params)
}
