//! Fit time at scale: simulate `--members` customers from a known BG/NBD population
//! (the published CDNOW parameters), observed in whole days over a 39-week calibration
//! period with births spread over its first 12 weeks, then fit them the way the swarm does
//! (identical summaries grouped, one weighted row each). Prints the timings and the
//! recovered parameters as JSON; `--csv FILE` also writes frequency, recency, T (weeks),
//! one row per customer, for `benches/lifetimes_fit.py` to fit the same data.
//!
//! cargo run --release -p btyd --example fit_bench -- --members 10000000 --csv /tmp/sim.csv
//!
//! `--cdnow FILE` instead fits a CDNOW-format file (calibration to `--calibration-end`,
//! default 1997-09-30, weeks) `--runs` times (default 21) and prints the median times of
//! grouping, the BG/NBD fit and the Gamma-Gamma fit: a fit this small takes milliseconds,
//! so one run is mostly noise and warm-up.
//!
//! cargo run --release -p btyd --example fit_bench -- --cdnow data/cdnow/CDNOW_master.txt

use std::io::Write as _;
use std::time::Instant;

use btyd::{BgNbd, GammaGamma, Summary, group};

/// splitmix64: seeded, so every run simulates the same customers.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang (boosted for shape < 1).
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.uniform().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v > 0.0 && self.uniform().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        x / (x + self.gamma(b))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(file) = value("--cdnow") {
        let calibration_end = value("--calibration-end").unwrap_or("1997-09-30".into());
        let runs: usize = value("--runs").map_or(Ok(21), |v| v.parse())?;
        return cdnow(&file, &calibration_end, runs);
    }
    let members: usize = value("--members").map_or(Ok(1_000_000), |v| v.parse())?;
    let csv = value("--csv");
    let truth = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let started = Instant::now();
    let mut rng = Rng(2005);
    let calibration_days = 273;
    let mut summaries = Vec::with_capacity(members);
    for _ in 0..members {
        let lambda = rng.gamma(truth.r) / truth.alpha; // per week
        let p = rng.beta(truth.a, truth.b);
        let birth = (rng.uniform() * 84.0) as i32;
        let t_days = calibration_days - birth;
        let (mut t, mut x, mut last) = (0.0, 0, 0.0);
        loop {
            t += -rng.uniform().ln() / lambda * 7.0;
            if t > f64::from(t_days) {
                break;
            }
            // Same-day purchases are one transaction.
            if t.floor() > last {
                x += 1;
                last = t.floor();
            }
            if rng.uniform() < p {
                break;
            }
        }
        summaries.push(Summary::new(
            f64::from(x),
            last / 7.0,
            f64::from(t_days) / 7.0,
        ));
    }
    let simulated = started.elapsed().as_secs_f64();
    if let Some(path) = &csv {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "frequency,recency,T")?;
        for s in &summaries {
            writeln!(out, "{},{},{}", s.x, s.t_x, s.t)?;
        }
    }
    let started = Instant::now();
    let grouped = group(summaries.iter().copied());
    let grouping = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let fit = BgNbd::fit(&grouped)?;
    let fitting = started.elapsed().as_secs_f64();
    println!(
        "{{\"members\": {members}, \"distinct_summaries\": {}, \"simulate_seconds\": {simulated:.3}, \"group_seconds\": {grouping:.3}, \"fit_seconds\": {fitting:.3}, \"total_fit_seconds\": {:.3}, \"r\": {:.4}, \"alpha\": {:.4}, \"a\": {:.4}, \"b\": {:.4}, \"log_likelihood\": {:.2}, \"converged\": {}}}",
        grouped.len(),
        grouping + fitting,
        fit.model.r,
        fit.model.alpha,
        fit.model.a,
        fit.model.b,
        fit.log_likelihood,
        fit.converged
    );
    Ok(())
}

/// Median fit times on a CDNOW-format file.
fn cdnow(file: &str, calibration_end: &str, runs: usize) -> Result<(), Box<dyn std::error::Error>> {
    let purchases = btyd::cdnow::read_purchases(std::path::Path::new(file))?;
    let customers =
        btyd::cdnow::summarise(&purchases, calibration_end.parse()?, btyd::params::WEEK);
    let mut times: [Vec<f64>; 4] = Default::default();
    let mut fits = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let summaries = group(customers.iter().map(|c| c.summary));
        let grouped = Instant::now();
        let purchase_fit = BgNbd::fit(&summaries)?;
        let purchases_fitted = Instant::now();
        let spend_fit = GammaGamma::fit(&group(customers.iter().map(|c| c.spend)))?;
        let done = Instant::now();
        for (series, seconds) in times.iter_mut().zip([
            grouped - started,
            purchases_fitted - grouped,
            done - purchases_fitted,
            done - started,
        ]) {
            series.push(seconds.as_secs_f64());
        }
        fits = Some((summaries.len(), purchase_fit, spend_fit));
    }
    let [group_s, bgnbd_s, gamma_gamma_s, total_s] = times.map(|mut series| {
        series.sort_by(f64::total_cmp);
        series[series.len() / 2]
    });
    let Some((distinct, b, g)) = fits else {
        return Ok(());
    };
    println!(
        "{{\"customers\": {}, \"distinct_summaries\": {distinct}, \"runs\": {runs}, \"median_group_seconds\": {group_s:.4}, \"median_bgnbd_seconds\": {bgnbd_s:.4}, \"median_gamma_gamma_seconds\": {gamma_gamma_s:.4}, \"median_total_seconds\": {total_s:.4}, \"r\": {:.4}, \"alpha\": {:.4}, \"a\": {:.4}, \"b\": {:.4}, \"log_likelihood\": {:.2}, \"bgnbd_iterations\": {}, \"p\": {:.4}, \"q\": {:.4}, \"gamma\": {:.4}, \"gamma_gamma_iterations\": {}}}",
        customers.len(),
        b.model.r,
        b.model.alpha,
        b.model.a,
        b.model.b,
        b.log_likelihood,
        b.iterations,
        g.model.p,
        g.model.q,
        g.model.gamma,
        g.iterations
    );
    Ok(())
}
