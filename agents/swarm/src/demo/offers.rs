//! What save-offer proposed in the demo: proposals by trigger, offer type and vendor,
//! the rules that ruled offers out most often, budgets and experiments.

use std::collections::{BTreeMap, HashSet};

use loyalty_contracts::{CatalogOffer, OfferProposal, OfferReadout, topics};
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::{Agent, codec, runner, wire};
use save_offer::{OfferCatalog, SaveOffer};
use serde::Serialize;

use super::summary::{counts, decode_latest};
use crate::inspect;

/// What save-offer and its catalog produced.
#[derive(Debug, Clone, Serialize, Default)]
pub struct OffersSummary {
    pub catalog_offers: usize,
    pub catalog_vendors: usize,
    pub catalog_dead_lettered: i64,
    pub proposals: usize,
    /// Proposals per trigger (opportunity, cancellation), and with an offer.
    pub by_trigger: BTreeMap<String, (usize, usize)>,
    pub by_type: BTreeMap<String, usize>,
    pub by_vendor: BTreeMap<String, usize>,
    /// Offers ruled out, by stage and rule, over every proposal; the most frequent first.
    pub top_rejections: Vec<(String, i64)>,
    /// Proposals per experiment and arm, counted from the proposals themselves.
    pub arm_proposals: BTreeMap<String, BTreeMap<String, usize>>,
    /// Each experiment's newest readout: its event time and every arm's probability of
    /// being best. Readouts follow the experiment's cadence in event time, so a burst of
    /// proposals at one moment (the demo's cancellations) is not in them yet.
    pub readouts: BTreeMap<String, (i64, Vec<(String, f64)>)>,
    pub dead_lettered: i64,
}

pub(super) async fn summarise(
    bootstrap_servers: &str,
    registry: &RegistryClient,
) -> anyhow::Result<OffersSummary> {
    let catalog: BTreeMap<String, CatalogOffer> =
        decode_latest(bootstrap_servers, registry, topics::OFFER_CATALOG).await?;
    let mut summary = OffersSummary {
        catalog_offers: catalog.len(),
        catalog_vendors: catalog
            .values()
            .map(|o| o.vendor.as_str())
            .collect::<HashSet<_>>()
            .len(),
        catalog_dead_lettered: inspect::record_count(
            bootstrap_servers,
            &runner::dlq_topic(OfferCatalog::NAME),
        )?,
        dead_lettered: inspect::record_count(
            bootstrap_servers,
            &runner::dlq_topic(SaveOffer::NAME),
        )?,
        ..OffersSummary::default()
    };
    // Every arm, so one proposed to no one shows as 0.
    for offer in catalog.values() {
        if let Some(x) = &offer.experiment {
            summary
                .arm_proposals
                .entry(x.experiment_id.clone())
                .or_default()
                .entry(x.arm.clone())
                .or_default();
        }
    }
    let mut seen = HashSet::new();
    let mut tally: BTreeMap<String, i64> = BTreeMap::new();
    for (value, _) in inspect::all_records(bootstrap_servers, topics::OFFER_PROPOSALS).await? {
        let Some(bytes) = value else { continue };
        let (id, body) = wire::split(&bytes).map_err(|r| anyhow::anyhow!("proposal: {r}"))?;
        let p: OfferProposal = codec::decode(registry.schema(id).await?.as_ref(), body)
            .map_err(|r| anyhow::anyhow!("proposal: {r}"))?;
        // A replayed batch may repeat a proposal; its id is the idempotency key.
        if !seen.insert(p.proposal_id.clone()) {
            continue;
        }
        summary.proposals += 1;
        let trigger = p.trigger.label().to_owned();
        let counts = summary.by_trigger.entry(trigger).or_default();
        counts.0 += 1;
        if let Some(offer) = &p.offer {
            counts.1 += 1;
            *summary
                .by_type
                .entry(offer.offer_type.label().to_owned())
                .or_default() += 1;
            *summary.by_vendor.entry(offer.vendor.clone()).or_default() += 1;
            if let (Some(experiment), Some(arm)) = (&offer.experiment_id, &offer.arm) {
                *summary
                    .arm_proposals
                    .entry(experiment.clone())
                    .or_default()
                    .entry(arm.clone())
                    .or_default() += 1;
            }
        }
        for t in &p.rejection_tally {
            let stage = format!("{:?}", t.stage).to_lowercase();
            *tally
                .entry(format!("{stage}: {}", t.dimension))
                .or_default() += t.offers;
        }
    }
    let mut top: Vec<(String, i64)> = tally.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(8);
    summary.top_rejections = top;
    let readouts: BTreeMap<String, OfferReadout> =
        decode_latest(bootstrap_servers, registry, topics::OFFER_READOUTS).await?;
    for (experiment, r) in readouts {
        summary.readouts.insert(
            experiment,
            (
                r.as_of.0,
                r.arms
                    .iter()
                    .map(|a| (a.arm.clone(), a.probability_best))
                    .collect(),
            ),
        );
    }
    Ok(summary)
}

impl std::fmt::Display for OffersSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "save-offer")?;
        writeln!(
            f,
            "  catalog       {} offers from {} vendors' formats ({} dead-lettered)",
            self.catalog_offers, self.catalog_vendors, self.catalog_dead_lettered
        )?;
        let triggers: Vec<String> = self
            .by_trigger
            .iter()
            .map(|(t, (n, offered))| format!("{t} {n} ({offered} with an offer)"))
            .collect();
        writeln!(
            f,
            "  proposals     {} : {}",
            self.proposals,
            triggers.join(", ")
        )?;
        writeln!(f, "  by type       {}", counts(&self.by_type))?;
        writeln!(f, "  by vendor     {}", counts(&self.by_vendor))?;
        writeln!(
            f,
            "  ruled out     (offers, by stage and rule, most frequent first)"
        )?;
        for (rule, n) in &self.top_rejections {
            writeln!(f, "    {rule:<40} {n:>8}")?;
        }
        let experiments: std::collections::BTreeSet<&String> = self
            .arm_proposals
            .keys()
            .chain(self.readouts.keys())
            .collect();
        for experiment in experiments {
            let proposed = self.arm_proposals.get(experiment).map_or_else(
                || "no proposals".to_owned(),
                |arms| format!("{} proposed", counts(arms)),
            );
            let readout = self.readouts.get(experiment).map_or_else(
                || "no readout yet".to_owned(),
                |(at, arms)| {
                    let day = loyalty_contracts::Timestamp(*at).day();
                    let best: Vec<String> = arms
                        .iter()
                        .map(|(arm, p)| format!("{arm} {p:.2}"))
                        .collect();
                    format!("readout of {day}: P(best) {}", best.join(", "))
                },
            );
            writeln!(f, "  experiment    {experiment}: {proposed}; {readout}")?;
        }
        write!(f, "  dead-lettered {}", self.dead_lettered)
    }
}
