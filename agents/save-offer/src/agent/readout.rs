//! Experiment readouts on `loyalty.offer-readouts.v1`, written by the owner of partition 0
//! after a refresh (so once for the population): per arm the proposals, rewards, mean
//! reward, traffic share and the probability it is the best arm, at most once per the
//! experiment's readout cadence of stream time, and only when something changed.

use std::collections::{BTreeMap, HashMap};

use loyalty_contracts::{ArmReadout, BanditPolicy, OfferReadout, Timestamp, catalog};
use loyalty_runtime::{Context, HandleError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::SaveOffer;
use crate::bandit::ArmStats;

/// Draws used to estimate each arm's probability of being best.
const DRAWS: usize = 2_000;

/// What was last published per experiment: a fingerprint of its arms and when.
#[derive(Debug, Default)]
pub(super) struct Published {
    last: HashMap<String, (u64, i64)>,
}

pub(super) fn publish(
    agent: &SaveOffer,
    ctx: &mut Context<'_, SaveOffer>,
) -> Result<(), HandleError> {
    let merged = agent.merged(ctx.population());
    let snapshot = agent.snapshot(ctx);
    // Population time: the newest proposal seen anywhere (publish has no record of its
    // own); before the first proposal there is nothing to read out.
    let now = merged.newest_ms;
    if now <= 0 {
        return Ok(());
    }
    // experiment → (policy, cadence, arm label per offer id)
    let mut experiments: BTreeMap<String, (BanditPolicy, i32, BTreeMap<String, String>)> =
        BTreeMap::new();
    for offer in &snapshot.offers {
        if let Some(x) = &offer.experiment {
            let e = experiments.entry(x.experiment_id.clone()).or_insert((
                x.policy,
                x.readout_cadence_hours,
                BTreeMap::new(),
            ));
            e.2.insert(offer.offer_id.clone(), x.arm.clone());
        }
    }
    for (experiment, (policy, cadence_hours, arms)) in experiments {
        // Every stratum of an arm together.
        let mut stats: BTreeMap<String, ArmStats> = BTreeMap::new();
        for (key, s) in merged
            .arms
            .iter()
            .filter(|(k, _)| k.experiment == experiment)
        {
            stats.entry(key.offer_id.clone()).or_default().merge(s);
        }
        let fingerprint = loyalty_contracts::fnv1a(&format!("{stats:?}"));
        let due = match agent.readouts.lock() {
            Ok(published) => match published.last.get(&experiment) {
                Some((f, at)) => {
                    *f != fingerprint && now - at >= i64::from(cadence_hours.max(0)) * 3_600_000
                }
                None => true,
            },
            Err(_) => false,
        };
        if !due {
            continue;
        }
        let readout = readout(&experiment, policy, &arms, &stats, now);
        ctx.emit(&catalog::OFFER_READOUTS, &experiment, &readout, now)?;
        if let Ok(mut published) = agent.readouts.lock() {
            published.last.insert(experiment, (fingerprint, now));
        }
    }
    Ok(())
}

fn readout(
    experiment: &str,
    policy: BanditPolicy,
    arms: &BTreeMap<String, String>,
    stats: &BTreeMap<String, ArmStats>,
    now: i64,
) -> OfferReadout {
    let empty = ArmStats::default();
    let of = |offer: &str| stats.get(offer).unwrap_or(&empty);
    let total: u64 = arms.keys().map(|o| of(o).pulls).sum();
    // Before any conversion every draw ties at zero: no arm is more likely best.
    let learned = arms.keys().any(|o| of(o).conversions > 0);
    let mut wins: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rng = ChaCha8Rng::seed_from_u64(loyalty_contracts::fnv1a(experiment));
    for _ in 0..DRAWS {
        let best = arms
            .keys()
            .map(|o| {
                let s = of(o);
                // An arm that has not converted cannot be best yet: no prior margin.
                (o.as_str(), s.thompson_draw(0.0, &mut rng))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(a.0)));
        if let Some((o, _)) = best {
            *wins.entry(o).or_default() += 1;
        }
    }
    OfferReadout {
        experiment_id: experiment.to_owned(),
        policy,
        arms: arms
            .iter()
            .map(|(offer, arm)| {
                let s = of(offer);
                ArmReadout {
                    arm: arm.clone(),
                    offer_id: offer.clone(),
                    proposals: i64::try_from(s.pulls).unwrap_or(i64::MAX),
                    rewards: i64::try_from(s.conversions).unwrap_or(i64::MAX),
                    mean_reward_minor: s.mean_reward(),
                    traffic_share: if total == 0 {
                        0.0
                    } else {
                        s.pulls as f64 / total as f64
                    },
                    probability_best: if learned {
                        wins.get(offer.as_str()).copied().unwrap_or(0) as f64 / DRAWS as f64
                    } else {
                        1.0 / arms.len().max(1) as f64
                    },
                }
            })
            .collect(),
        as_of: Timestamp(now),
    }
}
