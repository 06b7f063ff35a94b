//! Calibration of forecast probabilities against what happened (`docs/architecture.md#tier-transition`): Platt
//! scaling (a logistic curve on the logit of the raw probability) and isotonic regression
//! (pool-adjacent-violators), the one with the lower held-out log loss wins. Plus the
//! scores a forecaster is judged by: Brier score, log loss, expected calibration error
//! and AUC.

use serde::{Deserialize, Serialize};

/// A forecast whose horizon passed or whose transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// The probability that was forecast (raw, before calibration).
    pub probability: f64,
    pub happened: bool,
    /// How many forecasts this stands for (binned counts are one weighted row per bin).
    pub weight: f64,
}

impl Resolved {
    pub fn one(probability: f64, happened: bool) -> Self {
        Resolved {
            probability,
            happened,
            weight: 1.0,
        }
    }
}

/// Maps a raw model probability to a calibrated one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Calibrator {
    /// Too few resolved forecasts yet: probabilities pass through.
    Identity,
    /// p' = σ(a · logit(p) + b).
    Platt { a: f64, b: f64 },
    /// Piecewise linear through (raw, calibrated) knots, non-decreasing.
    Isotonic { knots: Vec<(f64, f64)> },
}

/// Probabilities are kept this far from 0 and 1 so log loss and logits stay finite.
const EPSILON: f64 = 1e-6;

fn clamp(p: f64) -> f64 {
    p.clamp(EPSILON, 1.0 - EPSILON)
}

fn logit(p: f64) -> f64 {
    let p = clamp(p);
    (p / (1.0 - p)).ln()
}

impl Calibrator {
    pub fn apply(&self, p: f64) -> f64 {
        match self {
            Calibrator::Identity => p,
            Calibrator::Platt { a, b } => btyd::special::sigmoid(a * logit(p) + b),
            Calibrator::Isotonic { knots } => {
                let Some(&(first_x, first_y)) = knots.first() else {
                    return p;
                };
                if p <= first_x {
                    return first_y;
                }
                for pair in knots.windows(2) {
                    let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                    if p <= x1 {
                        let w = if x1 > x0 { (p - x0) / (x1 - x0) } else { 1.0 };
                        return y0 + w * (y1 - y0);
                    }
                }
                knots.last().map_or(p, |&(_, y)| y)
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Calibrator::Identity => "identity",
            Calibrator::Platt { .. } => "platt",
            Calibrator::Isotonic { .. } => "isotonic",
        }
    }
}

/// Logistic regression of the outcome on logit(p) by Newton's method, with a weak
/// ridge towards the identity map (a = 1, b = 0) so separable data stays finite.
pub fn fit_platt(data: &[Resolved]) -> Calibrator {
    let (mut a, mut b) = (1.0, 0.0);
    let ridge = 1e-3;
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) =
            (-ridge * (a - 1.0), -ridge * b, ridge, 0.0, ridge);
        for r in data {
            let z = logit(r.probability);
            let p = btyd::special::sigmoid(a * z + b);
            let y = if r.happened { 1.0 } else { 0.0 };
            let (n, w) = (r.weight, r.weight * p * (1.0 - p));
            ga += n * (y - p) * z;
            gb += n * (y - p);
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-300 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        a += da;
        b += db;
        if da.abs().max(db.abs()) < 1e-10 {
            break;
        }
    }
    Calibrator::Platt { a, b }
}

/// Isotonic regression by pool-adjacent-violators; ties in the raw probability are one
/// block. Knots are the block means of (raw, outcome).
pub fn fit_isotonic(data: &[Resolved]) -> Calibrator {
    let mut sorted: Vec<&Resolved> = data.iter().filter(|r| r.weight > 0.0).collect();
    sorted.sort_by(|a, b| a.probability.total_cmp(&b.probability));
    // (weighted sum of raw, weighted sum of outcome, weight)
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    for r in sorted {
        let (x, y, w) = (r.probability, if r.happened { 1.0 } else { 0.0 }, r.weight);
        match blocks.last_mut() {
            Some(last) if last.0 / last.2 == x => {
                last.0 += x * w;
                last.1 += y * w;
                last.2 += w;
            }
            _ => blocks.push((x * w, y * w, w)),
        }
        while blocks.len() > 1 {
            let n = blocks.len();
            let (prev, last) = (blocks[n - 2], blocks[n - 1]);
            if prev.1 / prev.2 < last.1 / last.2 {
                break;
            }
            blocks.truncate(n - 2);
            blocks.push((prev.0 + last.0, prev.1 + last.1, prev.2 + last.2));
        }
    }
    Calibrator::Isotonic {
        knots: blocks.iter().map(|b| (b.0 / b.2, b.1 / b.2)).collect(),
    }
}

/// How good a set of probabilities is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub count: usize,
    pub positives: usize,
    pub brier: f64,
    pub log_loss: f64,
    /// Expected calibration error over ten equal-width probability bins.
    pub ece: f64,
    /// Area under the ROC curve; 0.5 when only one class is present.
    pub auc: f64,
}

pub fn score(pairs: &[(f64, bool)]) -> Scores {
    let weighted: Vec<Resolved> = pairs.iter().map(|&(p, h)| Resolved::one(p, h)).collect();
    score_weighted(&weighted)
}

/// [`score`] over weighted rows.
pub fn score_weighted(rows: &[Resolved]) -> Scores {
    let total: f64 = rows.iter().map(|r| r.weight).sum();
    let n = if total > 0.0 { total } else { 1.0 };
    let y = |h: bool| if h { 1.0 } else { 0.0 };
    let brier = rows
        .iter()
        .map(|r| r.weight * (r.probability - y(r.happened)).powi(2))
        .sum::<f64>()
        / n;
    let log_loss = rows
        .iter()
        .map(|r| {
            let p = clamp(r.probability);
            r.weight * if r.happened { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum::<f64>()
        / n;
    let mut bins = [(0.0, 0.0, 0.0); 10];
    for r in rows {
        let bin = &mut bins[((r.probability * 10.0) as usize).min(9)];
        bin.0 += r.weight * r.probability;
        bin.1 += r.weight * y(r.happened);
        bin.2 += r.weight;
    }
    let ece = bins
        .iter()
        .filter(|b| b.2 > 0.0)
        .map(|b| (b.0 - b.1).abs() / n)
        .sum();
    let positives: f64 = rows.iter().filter(|r| r.happened).map(|r| r.weight).sum();
    Scores {
        count: total.round() as usize,
        positives: positives.round() as usize,
        brier,
        log_loss,
        ece,
        auc: auc(rows),
    }
}

/// Mann-Whitney AUC over weighted rows, ties counted half.
fn auc(rows: &[Resolved]) -> f64 {
    let mut sorted: Vec<&Resolved> = rows.iter().collect();
    sorted.sort_by(|a, b| a.probability.total_cmp(&b.probability));
    let positives: f64 = rows.iter().filter(|r| r.happened).map(|r| r.weight).sum();
    let negatives: f64 = rows.iter().filter(|r| !r.happened).map(|r| r.weight).sum();
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    // For each group of tied scores: positives in it beat all negatives below, and half
    // the negatives tied with them.
    let (mut below, mut wins, mut i) = (0.0, 0.0, 0);
    while i < sorted.len() {
        let mut j = i;
        let (mut pos, mut neg) = (0.0, 0.0);
        while j < sorted.len() && sorted[j].probability == sorted[i].probability {
            if sorted[j].happened {
                pos += sorted[j].weight;
            } else {
                neg += sorted[j].weight;
            }
            j += 1;
        }
        wins += pos * (below + 0.5 * neg);
        below += neg;
        i = j;
    }
    wins / (positives * negatives)
}

/// A fitted calibrator with how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub calibrator: Calibrator,
    /// Held-out log loss of each candidate, identity included.
    pub held_out_log_loss: Vec<(String, f64)>,
}

/// Fewest resolved forecasts (with both outcomes present) worth calibrating on.
pub const MIN_RESOLVED: usize = 50;

/// Fit Platt and isotonic on four fifths of `data` (every fifth record is held out, a
/// deterministic split); see [`choose_split`].
pub fn choose(data: &[Resolved]) -> Choice {
    let (train, held): (Vec<_>, Vec<_>) = data.iter().enumerate().partition(|(i, _)| i % 5 != 4);
    let train: Vec<Resolved> = train.into_iter().map(|(_, r)| *r).collect();
    let held: Vec<Resolved> = held.into_iter().map(|(_, r)| *r).collect();
    choose_split(&train, &held)
}

/// Fit Platt and isotonic on `train`, keep the one with the lowest log loss on `held`
/// (identity included, so calibration never makes held-out data worse), then refit the
/// winner on both.
pub fn choose_split(train: &[Resolved], held: &[Resolved]) -> Choice {
    let weight = |rows: &[Resolved], happened: Option<bool>| -> f64 {
        rows.iter()
            .filter(|r| happened.is_none_or(|h| r.happened == h))
            .map(|r| r.weight)
            .sum()
    };
    let all: Vec<Resolved> = train.iter().chain(held).copied().collect();
    let enough = weight(&all, None) >= MIN_RESOLVED as f64
        && weight(&all, Some(true)) > 0.0
        && weight(&all, Some(false)) > 0.0
        && weight(held, None) > 0.0;
    if !enough {
        return Choice {
            calibrator: Calibrator::Identity,
            held_out_log_loss: Vec::new(),
        };
    }
    let loss = |c: &Calibrator| {
        let rows: Vec<Resolved> = held
            .iter()
            .map(|r| Resolved {
                probability: c.apply(r.probability),
                ..*r
            })
            .collect();
        score_weighted(&rows).log_loss
    };
    let candidates = [Calibrator::Identity, fit_platt(train), fit_isotonic(train)];
    let losses: Vec<(String, f64)> = candidates
        .iter()
        .map(|c| (c.name().to_owned(), loss(c)))
        .collect();
    let best = losses
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.1.total_cmp(&b.1.1))
        .map_or(0, |(i, _)| i);
    let calibrator = match best {
        1 => fit_platt(&all),
        2 => fit_isotonic(&all),
        _ => Calibrator::Identity,
    };
    Choice {
        calibrator,
        held_out_log_loss: losses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers in [0, 1).
    fn uniform(i: u64) -> f64 {
        let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Outcomes drawn with probability p², forecast as p: overconfident forecasts.
    fn overconfident(n: u64) -> Vec<Resolved> {
        (0..n)
            .map(|i| {
                let p = uniform(2 * i);
                Resolved::one(p, uniform(2 * i + 1) < p * p)
            })
            .collect()
    }

    #[test]
    fn calibration_repairs_miscalibrated_forecasts() {
        let data = overconfident(20_000);
        let raw: Vec<(f64, bool)> = data.iter().map(|r| (r.probability, r.happened)).collect();
        let choice = choose(&data);
        assert_ne!(choice.calibrator, Calibrator::Identity);
        let fresh = overconfident(40_000)[20_000..].to_vec();
        let after: Vec<(f64, bool)> = fresh
            .iter()
            .map(|r| (choice.calibrator.apply(r.probability), r.happened))
            .collect();
        let (before, after) = (score(&raw), score(&after));
        assert!(after.ece < before.ece / 3.0, "{before:?} {after:?}");
        assert!(after.brier < before.brier, "{before:?} {after:?}");
        // Monotone maps keep the ranking.
        assert!((after.auc - before.auc).abs() < 0.02);
    }

    #[test]
    fn well_calibrated_forecasts_keep_a_near_identity_map() {
        let data: Vec<Resolved> = (0..20_000)
            .map(|i| {
                let p = uniform(2 * i);
                Resolved::one(p, uniform(2 * i + 1) < p)
            })
            .collect();
        let c = choose(&data).calibrator;
        for p in [0.1, 0.5, 0.9] {
            assert!((c.apply(p) - p).abs() < 0.05, "{c:?} at {p}");
        }
    }

    #[test]
    fn scores_match_hand_computation() {
        let pairs = [(0.9, true), (0.8, false), (0.3, true), (0.1, false)];
        let s = score(&pairs);
        let brier = (0.01 + 0.64 + 0.49 + 0.01) / 4.0;
        assert!((s.brier - brier).abs() < 1e-12);
        // Positive scores 0.9, 0.3; negatives 0.8, 0.1: 3 of 4 pairs ordered right.
        assert!((s.auc - 0.75).abs() < 1e-12);
        assert_eq!(choose(&[]).calibrator, Calibrator::Identity);
    }
}
