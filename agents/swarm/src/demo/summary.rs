//! What the demo found: the summary read from the topics once the swarm is quiet, and
//! how it is printed.

use std::collections::BTreeMap;

use customer_graph::CustomerGraph;
use loyalty_contracts::{
    InterventionOpportunity, MemberCohort, MemberLtv, MemberState, ModelParams, TierForecasts,
    topics,
};
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::{Agent, codec, runner, wire};
use ltv::Ltv;
use serde::Serialize;
use tier_transition::TierTransition;

use super::DemoOptions;
use crate::inspect;
use crate::replay::ReplaySummary;

/// What the demo measured and found.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub replay: ReplaySummary,
    /// Seconds from the start of the replay until customer-graph had committed every input.
    pub end_to_end_seconds: f64,
    pub events_per_second: f64,
    pub member_states: usize,
    pub repeat_buyers: usize,
    pub mean_repeat_transactions: f64,
    pub tiers: BTreeMap<String, usize>,
    pub dead_lettered: i64,
    /// Mean encoded changelog bytes per member (customer-graph's state).
    pub state_bytes_per_member: f64,
    /// Whether the swarm went quiet (everything consumed, nothing written for 40 s)
    /// before the summary was read; if not, it shows the state after 15 minutes.
    pub settled: bool,
    /// What cohort, tier-transition and ltv produced (`None`: they were not run).
    pub downstream: Option<Downstream>,
    /// The erasure step, run with the whole swarm once it is quiet.
    pub erasure: Option<super::erasure::ErasureReport>,
    /// Members erased while the replay ran (`--erase-during-replay`).
    pub erasure_during_replay: Option<super::erasure::ErasureReport>,
}

/// What the agents downstream of customer-graph produced.
#[derive(Debug, Clone, Serialize)]
pub struct Downstream {
    /// The population fit published for the scoring agents.
    pub model_version: String,
    /// Per transition type: members with a forecast, and their mean probability.
    pub forecasts: BTreeMap<String, (usize, f64)>,
    /// Intervention opportunities raised, by kind.
    pub opportunities: BTreeMap<String, usize>,
    pub tier_transition_dead_lettered: i64,
    /// Members per named RFM segment, and per lifecycle stage.
    pub segments: BTreeMap<String, usize>,
    pub lifecycle: BTreeMap<String, usize>,
    /// Whether every cohort record was scored against the same, final boundaries.
    pub cohorts_settled: bool,
    pub ltv: LtvSummary,
    pub offers: super::offers::OffersSummary,
    pub gate: super::gate::GateReport,
}

/// What the ltv agent produced.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LtvSummary {
    /// Members with a member-ltv record, and how many of them joined all three sides.
    pub members: usize,
    pub complete_joins: usize,
    /// Records written to member-ltv in all (a member is re-valued as its inputs, the
    /// population day and the fits move).
    pub records_written: i64,
    /// Whether every record was scored with the final population fit.
    pub settled: bool,
    pub mean_p_alive: f64,
    pub mean_revenue_12m_minor: f64,
    pub mean_lifetime_margin_minor: f64,
    pub mean_adjusted_lifetime_margin_minor: f64,
    pub points_liability_minor: i64,
    /// Members flagged per pair of disagreeing value sources.
    pub discrepancies: BTreeMap<String, usize>,
    /// Published segment fits: members covered.
    pub fits: BTreeMap<String, i64>,
    /// Attestations re-checked with the public key, and failures.
    pub verified: usize,
    pub failed: usize,
    pub public_key: String,
    pub dead_lettered: i64,
    /// Each intervention type's learned relative uplift: (type, mean, sd, outcomes).
    pub uplifts: Vec<(String, f64, f64, i64)>,
}

/// Decode the newest value of every key of a topic.
pub async fn decode_latest<T: serde::de::DeserializeOwned>(
    bootstrap_servers: &str,
    registry: &RegistryClient,
    topic: &str,
) -> anyhow::Result<BTreeMap<String, T>> {
    let latest = inspect::latest_values(bootstrap_servers, topic).await?;
    decode_values(
        registry,
        topic,
        latest.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
    )
    .await
}

/// Decode Confluent-framed values by key.
async fn decode_values<'a, T: serde::de::DeserializeOwned>(
    registry: &RegistryClient,
    topic: &str,
    values: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> anyhow::Result<BTreeMap<String, T>> {
    let mut out = BTreeMap::new();
    for (key, bytes) in values {
        let (id, body) = wire::split(bytes).map_err(|r| anyhow::anyhow!("{topic}/{key}: {r}"))?;
        let schema = registry.schema(id).await?;
        let value =
            codec::decode::<T>(&schema, body).map_err(|r| anyhow::anyhow!("{topic}/{key}: {r}"))?;
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// What cohort, tier-transition and ltv produced, read once the swarm is quiet.
async fn downstream_summary(
    bootstrap_servers: &str,
    registry: &RegistryClient,
    keys: &super::PublicKeys,
) -> anyhow::Result<Downstream> {
    let forecasts = forecast_counts(
        decode_latest::<TierForecasts>(bootstrap_servers, registry, topics::TIER_FORECASTS)
            .await?
            .values(),
    );
    let mut opportunities: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for (value, _) in
        inspect::all_records(bootstrap_servers, topics::INTERVENTION_OPPORTUNITIES).await?
    {
        let Some(bytes) = value else { continue };
        let (id, body) = wire::split(&bytes).map_err(|r| anyhow::anyhow!("opportunity: {r}"))?;
        let o: InterventionOpportunity = codec::decode(registry.schema(id).await?.as_ref(), body)
            .map_err(|r| anyhow::anyhow!("opportunity: {r}"))?;
        // A replayed batch may repeat an opportunity; its id is the idempotency key.
        if seen.insert(o.opportunity_id.clone()) {
            *opportunities.entry(o.kind.label().to_owned()).or_default() += 1;
        }
    }

    let cohorts: BTreeMap<String, MemberCohort> =
        decode_latest(bootstrap_servers, registry, topics::COHORTS).await?;
    let boundaries: std::collections::BTreeSet<&str> = cohorts
        .values()
        .map(|c| c.boundaries_version.as_str())
        .collect();
    let mut segments = BTreeMap::new();
    let mut lifecycle = BTreeMap::new();
    for c in cohorts.values() {
        *segments.entry(c.segment.label().to_owned()).or_insert(0) += 1;
        *lifecycle
            .entry(format!("{:?}", c.lifecycle).to_lowercase())
            .or_insert(0) += 1;
    }

    let ltv = ltv_summary(bootstrap_servers, registry, &keys.ltv).await?;

    Ok(Downstream {
        model_version: ltv.0,
        forecasts,
        opportunities,
        tier_transition_dead_lettered: inspect::record_count(
            bootstrap_servers,
            &runner::dlq_topic(TierTransition::NAME),
        )?,
        segments,
        lifecycle,
        cohorts_settled: boundaries.len() <= 1,
        ltv: ltv.1,
        offers: super::offers::summarise(bootstrap_servers, registry).await?,
        gate: super::gate::summarise(bootstrap_servers, registry, &keys.gate).await?,
    })
}

/// The ltv outputs, with the newest attestation of every member re-checked. Returns the
/// population fit's version too.
async fn ltv_summary(
    bootstrap_servers: &str,
    registry: &RegistryClient,
    public_key: &str,
) -> anyhow::Result<(String, LtvSummary)> {
    let fits: BTreeMap<String, ModelParams> =
        decode_latest(bootstrap_servers, registry, topics::MODEL_PARAMS).await?;
    let version = fits
        .get(ltv::population::ALL)
        .map_or_else(String::new, |p| p.version.clone());
    let newest: Vec<inspect::Positioned> =
        inspect::latest_records(bootstrap_servers, topics::MEMBER_LTV)
            .await?
            .into_values()
            .collect();
    let values = newest
        .iter()
        .filter_map(|r| Some((r.key.as_str(), r.value.as_deref()?)));
    let records: BTreeMap<String, MemberLtv> =
        decode_values(registry, topics::MEMBER_LTV, values).await?;
    let settled = !version.is_empty()
        && records
            .values()
            .all(|r| r.attestation.model_version == version || r.p_alive.is_none());
    let key = crate::verify::public_key(public_key)?;
    let report = crate::verify::verify_records(registry, topics::MEMBER_LTV, &newest, &key).await?;
    let n = records.len().max(1) as f64;
    let mean = |f: &dyn Fn(&MemberLtv) -> f64| records.values().map(f).sum::<f64>() / n;
    let mut discrepancies = BTreeMap::new();
    for r in records.values() {
        for d in &r.reconciliation.discrepancies {
            *discrepancies.entry(d.between.clone()).or_insert(0) += 1;
        }
    }
    let summary = LtvSummary {
        members: records.len(),
        records_written: inspect::record_count(bootstrap_servers, topics::MEMBER_LTV)?,
        complete_joins: records
            .values()
            .filter(|r| r.missing_inputs.is_empty())
            .count(),
        settled,
        mean_p_alive: mean(&|r| r.p_alive.unwrap_or(0.0)),
        mean_revenue_12m_minor: mean(&|r| r.baseline.revenue_12m_minor as f64),
        mean_lifetime_margin_minor: mean(&|r| r.baseline.lifetime_margin_minor as f64),
        mean_adjusted_lifetime_margin_minor: mean(&|r| r.adjusted_lifetime_margin_minor as f64),
        points_liability_minor: records.values().map(|r| r.points_liability_minor).sum(),
        discrepancies,
        fits: fits
            .iter()
            .map(|(segment, p)| (segment.clone(), p.bgnbd.sample_size))
            .collect(),
        verified: report.verified,
        failed: report.failures.len(),
        public_key: public_key.to_owned(),
        dead_lettered: inspect::record_count(bootstrap_servers, &runner::dlq_topic(Ltv::NAME))?,
        // Uplifts are population-wide: the record that saw the most outcomes says them.
        uplifts: records
            .values()
            .max_by_key(|r| {
                r.counterfactuals
                    .iter()
                    .map(|c| c.outcomes_observed)
                    .sum::<i64>()
            })
            .map(|r| {
                r.counterfactuals
                    .iter()
                    .map(|c| {
                        let label = c.intervention.label().to_owned();
                        (label, c.uplift, c.uplift_sd, c.outcomes_observed)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok((version, summary))
}

/// Per transition type: how many members have a forecast, and the mean probability.
fn forecast_counts<'a>(
    records: impl Iterator<Item = &'a TierForecasts>,
) -> BTreeMap<String, (usize, f64)> {
    let mut sums: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for record in records {
        for f in &record.forecasts {
            if let Some(p) = f.probability {
                let entry = sums.entry(f.transition.label().to_owned()).or_default();
                entry.0 += 1;
                entry.1 += p;
            }
        }
    }
    for (n, sum) in sums.values_mut() {
        *sum /= (*n).max(1) as f64;
    }
    sums
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "loyalty-swarm demo: CDNOW replay through customer-graph, cohort, tier-transition, ltv, save-offer and compliance-gate"
        )?;
        if !self.settled {
            writeln!(
                f,
                "  NOTE          the agents were still working after 15 minutes: a snapshot, not the final state"
            )?;
        }
        writeln!(
            f,
            "  replayed      {} purchases of {} members as {} events (+{} profiles) in {:.1}s",
            self.replay.purchases,
            self.replay.members,
            self.replay.events,
            self.replay.profiles,
            self.replay.elapsed_seconds
        )?;
        writeln!(
            f,
            "  end to end    {:.1}s, {:.0} events/s (replay start to customer-graph's last commit)",
            self.end_to_end_seconds, self.events_per_second
        )?;
        writeln!(
            f,
            "  member-state  {} members, {} repeat buyers, mean x {:.3}",
            self.member_states, self.repeat_buyers, self.mean_repeat_transactions
        )?;
        let tiers: Vec<String> = self.tiers.iter().map(|(t, n)| format!("{t} {n}")).collect();
        writeln!(f, "  tiers         {}", tiers.join(", "))?;
        writeln!(
            f,
            "  state         {:.0} bytes per member (encoded changelog)",
            self.state_bytes_per_member
        )?;
        write!(f, "  dead-lettered {}", self.dead_lettered)?;
        if let Some(downstream) = &self.downstream {
            write!(f, "\n{downstream}")?;
        }
        if let Some(erasure) = &self.erasure_during_replay {
            write!(f, "\nduring the replay, {erasure}")?;
        }
        if let Some(erasure) = &self.erasure {
            write!(f, "\n{erasure}")?;
        }
        Ok(())
    }
}

/// `key n, key n, …`: counts as the summary prints them.
pub(super) fn counts(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::fmt::Display for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settling = if self.cohorts_settled {
            ""
        } else {
            " (still settling)"
        };
        writeln!(f, "cohort{settling}")?;
        writeln!(f, "  segments      {}", counts(&self.segments))?;
        writeln!(f, "  lifecycle     {}", counts(&self.lifecycle))?;
        writeln!(f, "tier-transition (population fit {})", self.model_version)?;
        for (kind, (n, mean)) in &self.forecasts {
            writeln!(
                f,
                "  {kind:<20} {n:>6} forecasts, mean probability {mean:.3}"
            )?;
        }
        let raised: Vec<String> = self
            .opportunities
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(
            f,
            "  opportunities  {}",
            if raised.is_empty() {
                "none".to_owned()
            } else {
                raised.join(", ")
            }
        )?;
        writeln!(f, "  dead-lettered {}", self.tier_transition_dead_lettered)?;
        let l = &self.ltv;
        let settling = if l.settled { "" } else { " (still settling)" };
        writeln!(f, "ltv{settling}")?;
        writeln!(
            f,
            "  members       {} valued, {} with all three sides joined ({} records written)",
            l.members, l.complete_joins, l.records_written
        )?;
        let fits: Vec<String> = l.fits.iter().map(|(s, n)| format!("{s} ({n})")).collect();
        writeln!(f, "  segment fits  {}", fits.join(", "))?;
        writeln!(
            f,
            "  mean          P(alive) {:.3}, 12-month revenue {:.2}, lifetime margin {:.2}, adjusted {:.2} (currency units)",
            l.mean_p_alive,
            l.mean_revenue_12m_minor / 100.0,
            l.mean_lifetime_margin_minor / 100.0,
            l.mean_adjusted_lifetime_margin_minor / 100.0
        )?;
        writeln!(
            f,
            "  points        liability {:.2} at face value",
            l.points_liability_minor as f64 / 100.0
        )?;
        writeln!(
            f,
            "  discrepancies {}",
            if l.discrepancies.is_empty() {
                "none".to_owned()
            } else {
                counts(&l.discrepancies)
            }
        )?;
        let uplifts: Vec<String> = l
            .uplifts
            .iter()
            .map(|(kind, mean, sd, observed)| {
                let set = crate::campaign::UPLIFTS
                    .iter()
                    .find(|(t, _)| t.label() == kind)
                    .map_or_else(String::new, |(_, u)| format!(", set {:+.0}%", u * 100.0));
                format!(
                    "{kind} {:+.1}% ± {:.1} pp ({observed} outcomes{set})",
                    mean * 100.0,
                    sd * 100.0
                )
            })
            .collect();
        // Without outcomes every uplift is the prior's; nothing was learned to show.
        if l.uplifts.iter().any(|(_, _, _, observed)| *observed > 0) {
            writeln!(f, "  uplift        {}", uplifts.join("; "))?;
        }
        writeln!(
            f,
            "  attestations  {} verified, {} failed; public key {}",
            l.verified, l.failed, l.public_key
        )?;
        writeln!(f, "  dead-lettered {}", l.dead_lettered)?;
        writeln!(f, "{}", self.offers)?;
        write!(f, "{}", self.gate)
    }
}

/// Read what the agents wrote into a [`DemoSummary`].
pub(super) async fn summarise(
    options: &DemoOptions,
    replayed: ReplaySummary,
    end_to_end: f64,
    settled: bool,
    keys: Option<&super::PublicKeys>,
    erasure: Option<super::erasure::ErasureReport>,
    erasure_during_replay: Option<super::erasure::ErasureReport>,
) -> anyhow::Result<DemoSummary> {
    let registry = RegistryClient::new(&options.registry_url)?;
    let states: BTreeMap<String, MemberState> =
        decode_latest(&options.bootstrap_servers, &registry, topics::MEMBER_STATE).await?;
    let mut tiers = BTreeMap::new();
    let mut repeat_buyers = 0;
    let mut repeat_sum = 0i64;
    for state in states.values() {
        if let Some(b) = &state.btyd {
            repeat_sum += i64::from(b.x);
            repeat_buyers += usize::from(b.x > 0);
        }
        let tier = state
            .tier
            .as_ref()
            .map_or("none".to_owned(), |t| t.tier_id.clone());
        *tiers.entry(tier).or_insert(0) += 1;
    }
    let downstream = match keys {
        Some(keys) => Some(downstream_summary(&options.bootstrap_servers, &registry, keys).await?),
        None => None,
    };

    let changelog = inspect::latest_values(
        &options.bootstrap_servers,
        &runner::changelog_topic::<CustomerGraph>(),
    )
    .await?;
    let state_bytes: usize = changelog.values().map(Vec::len).sum();
    let summary = DemoSummary {
        end_to_end_seconds: end_to_end,
        events_per_second: (replayed.events + replayed.profiles) as f64 / end_to_end,
        member_states: states.len(),
        repeat_buyers,
        mean_repeat_transactions: repeat_sum as f64 / states.len().max(1) as f64,
        tiers,
        dead_lettered: inspect::record_count(
            &options.bootstrap_servers,
            &runner::dlq_topic(CustomerGraph::NAME),
        )?,
        state_bytes_per_member: state_bytes as f64 / changelog.len().max(1) as f64,
        replay: replayed,
        settled,
        downstream,
        erasure,
        erasure_during_replay,
    };
    Ok(summary)
}
