//! ltv: per-member lifetime value (`docs/architecture.md#ltv`). A table–table join of member-state,
//! tier-forecasts and cohorts, co-partitioned by member id, plus the intervention
//! outcomes on member-events; a member is re-scored whenever any side changes, with the
//! sides that exist so far. The six skills live in their own modules: capture (the join,
//! here), decay (`value`), counterfactual (`uplift`), loyalty adjustment (`adjust`),
//! reconcile (`reconcile`) and attestation (`attest`). The population fitter
//! (`population`) runs on the partition-0 owner and publishes per-segment fits on
//! `loyalty.model-params.v1`, which this agent (and tier-transition) score with.

pub mod adjust;
pub mod attest;
pub mod population;
pub mod reconcile;
pub mod testkit;
pub mod uplift;
pub mod value;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use btyd::params::Published;
use loyalty_contracts::{
    Attestation, InputPosition, InterventionOutcome, InterventionResult, InterventionType,
    MemberCohort, MemberEvent, MemberLtv, MemberState, ModelParams, Payload, Program,
    TierForecasts, TransitionType, topics,
};
use loyalty_runtime::metrics::Event;
use loyalty_runtime::{
    Agent, AgentSettings, Context, HandleError, Input, OutputSpec, Rejection, TableSpec,
    TableValue, decode_checked,
};
use serde::{Deserialize, Serialize};

use adjust::{Coefficients, SegmentValue};
use attest::{Attestor, Canonical};
use population::{ALL, Contribution, FitOutcome, FitRow, Merged, PopulationSummary};
use reconcile::{Views, Weights};
use uplift::Prior;
use value::{Horizon, Valuation};

/// Settings under `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Months the discounted lifetime value runs over.
    pub lifetime_months: usize,
    /// Annual discount rate of the lifetime value.
    pub annual_discount_rate: f64,
    /// Margin per unit of revenue for members whose orders carry no margin.
    pub default_margin_ratio: f64,
    /// Segments with fewer members are not fitted (their members use the population fit).
    pub min_segment_members: i64,
    /// A refit is published only when a parameter moved by more than this (relative) from
    /// the published fit: every publication re-scores the members, so fits that merely
    /// wobble as events arrive are not worth one.
    pub refit_tolerance: f64,
    /// A segment with a published fit is refitted at most this often (wall clock): a
    /// population model is a periodic batch, not a per-event update.
    pub refit_min_interval_ms: u64,
    /// Upper bounds (days since the first purchase) of the tenure bands; the last band is open.
    pub tenure_bands_days: Vec<i32>,
    /// Prior mean of every intervention type's relative uplift.
    pub uplift_prior_mean: f64,
    /// Prior standard deviation of the relative uplift.
    pub uplift_prior_sd: f64,
    /// Relative difference beyond which two value sources are a named discrepancy.
    pub reconciliation_tolerance: f64,
    /// Weight of the member's own history in the reconciled value.
    pub weight_own_history: f64,
    /// Weight of the tier-forecast view.
    pub weight_tier_forecast: f64,
    /// Weight of the cohort view.
    pub weight_cohort: f64,
    /// Share of earned points a member without redemptions is expected to redeem.
    pub default_burn_ratio: f64,
    /// Lifetime margin added per month of current purchase streak.
    pub streak_bonus_per_month: f64,
    /// Streak months beyond this add nothing.
    pub streak_bonus_cap_months: i32,
    /// Share of a referred member's value credited to the referrer.
    pub referral_credit: f64,
    /// Identity written into every attestation.
    pub attestor: String,
    /// File holding the Ed25519 signing key (64 hex digits); unset = the
    /// `LTV_SIGNING_KEY` environment variable.
    pub signing_key_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lifetime_months: 120,
            annual_discount_rate: 0.10,
            default_margin_ratio: 0.30,
            min_segment_members: 200,
            refit_tolerance: 0.01,
            refit_min_interval_ms: 60_000,
            tenure_bands_days: vec![180, 365],
            uplift_prior_mean: 0.0,
            uplift_prior_sd: 0.10,
            reconciliation_tolerance: 0.5,
            weight_own_history: 0.6,
            weight_tier_forecast: 0.2,
            weight_cohort: 0.2,
            default_burn_ratio: 0.6,
            streak_bonus_per_month: 0.01,
            streak_bonus_cap_months: 12,
            referral_credit: 0.5,
            attestor: "ltv".into(),
            signing_key_file: None,
        }
    }
}

impl AgentSettings for Settings {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(36..=600).contains(&self.lifetime_months) {
            problems.push(format!(
                "lifetime_months: {} must be between 36 and 600",
                self.lifetime_months
            ));
        }
        if !(0.0..1.0).contains(&self.annual_discount_rate) {
            problems.push(format!(
                "annual_discount_rate: {} must be in [0, 1)",
                self.annual_discount_rate
            ));
        }
        for (name, v) in [
            ("default_margin_ratio", self.default_margin_ratio),
            ("default_burn_ratio", self.default_burn_ratio),
            ("referral_credit", self.referral_credit),
        ] {
            if !(0.0..=1.0).contains(&v) {
                problems.push(format!("{name}: {v} must be between 0 and 1"));
            }
        }
        if !(0.0..1.0).contains(&self.refit_tolerance) {
            problems.push(format!(
                "refit_tolerance: {} must be in [0, 1)",
                self.refit_tolerance
            ));
        }
        if self.min_segment_members < 10 {
            problems.push(format!(
                "min_segment_members: {} must be at least 10",
                self.min_segment_members
            ));
        }
        if self.tenure_bands_days.windows(2).any(|w| w[0] >= w[1])
            || self.tenure_bands_days.iter().any(|d| *d <= 0)
        {
            problems.push(format!(
                "tenure_bands_days: {:?} must be positive and strictly increasing",
                self.tenure_bands_days
            ));
        }
        if !(self.uplift_prior_sd > 0.0 && self.uplift_prior_sd.is_finite()) {
            problems.push(format!(
                "uplift_prior_sd: {} must be positive",
                self.uplift_prior_sd
            ));
        }
        if !(self.uplift_prior_mean > -1.0 && self.uplift_prior_mean.is_finite()) {
            problems.push(format!(
                "uplift_prior_mean: {} must be above -1",
                self.uplift_prior_mean
            ));
        }
        if !(self.reconciliation_tolerance > 0.0 && self.reconciliation_tolerance <= 1.0) {
            problems.push(format!(
                "reconciliation_tolerance: {} must be in (0, 1]",
                self.reconciliation_tolerance
            ));
        }
        let weights = [
            self.weight_own_history,
            self.weight_tier_forecast,
            self.weight_cohort,
        ];
        if weights.iter().any(|w| *w < 0.0) || weights.iter().sum::<f64>() <= 0.0 {
            problems.push(format!(
                "weight_own_history, weight_tier_forecast, weight_cohort: {weights:?} must be non-negative and not all zero"
            ));
        }
        if !(0.0..=1.0).contains(&self.streak_bonus_per_month) || self.streak_bonus_cap_months < 0 {
            problems.push(format!(
                "streak_bonus_per_month {} must be in [0, 1] and streak_bonus_cap_months {} non-negative",
                self.streak_bonus_per_month, self.streak_bonus_cap_months
            ));
        }
        if self.attestor.trim().is_empty() {
            problems.push("attestor: must not be empty".into());
        }
        if let Err(e) = attest::load_signing_key(self.signing_key_file.as_deref()) {
            problems.push(e.to_string());
        }
        problems
    }
}

/// Where a joined record was read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// What the join keeps of a member's tier forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastSide {
    pub at: Position,
    pub as_of: i64,
    pub tier_id: String,
    /// Probability and target tier of an up-tier and a down-tier transition.
    pub up: Option<(f64, String)>,
    pub down: Option<(f64, String)>,
}

/// What the join keeps of a member's cohort record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortSide {
    pub at: Position,
    pub as_of: i64,
    pub segment: String,
}

/// One intervention the member was part of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervention {
    pub kind: String,
    pub holdout: bool,
    /// Converted value so far (the newest Converted outcome's).
    pub value: i64,
}

/// The join state of one member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberJoin {
    pub member: Option<(Position, MemberState)>,
    pub forecasts: Option<ForecastSide>,
    pub cohort: Option<CohortSide>,
    pub interventions: BTreeMap<String, Intervention>,
    /// What the member adds to the partition summary now.
    pub contribution: Contribution,
    /// SHA-256 of the last record's content (attestation aside), so a refresh that changes
    /// nothing writes nothing.
    pub content_hash: String,
    /// Fingerprint of the population inputs the last record used (model versions, the
    /// population day, group means and uplift posteriors to two significant digits): a
    /// refresh re-scores only members whose fingerprint moved.
    pub dependencies: u64,
    /// The last valuations, in memory only (not in the changelog): derived data, rebuilt
    /// after a restore.
    #[serde(skip)]
    pub cache: Option<Valuations>,
}

/// A member valued under the current fits, and what it was valued from.
#[derive(Debug, Clone, PartialEq)]
pub struct Valuations {
    basis: u64,
    baseline: Option<value::Valued>,
    /// Per segment (tier, redemption, tenure): its name and the member's worth under its fit.
    segments: Vec<(String, Option<value::Worth>)>,
}

/// Interventions remembered per member; older ones keep their counts in the population.
const MAX_INTERVENTIONS: usize = 256;

/// Population quantities derived once per population generation.
#[derive(Debug, Clone, Default)]
struct Reference {
    generation: u64,
    /// The newest member-state day in the population: the day members are valued at.
    stream_day: i32,
    values: BTreeMap<String, population::ValueSum>,
    posteriors: Vec<uplift::Posterior>,
}

/// The agent.
pub struct Ltv {
    settings: Settings,
    attestor: Result<Attestor, String>,
    canonical: Result<Canonical, String>,
    reference: Mutex<Reference>,
    /// Per segment, the rows of its last fit (an unchanged segment is not refitted) and
    /// when it was last fitted.
    fitted: Mutex<BTreeMap<String, (i32, population::SegmentRows, Instant)>>,
    schedules: value::ScheduleCache,
}

impl std::fmt::Debug for Ltv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ltv")
            .field("settings", &self.settings)
            .field("attestor", &self.attestor)
            .finish()
    }
}

impl Ltv {
    pub fn new(settings: &Settings) -> Self {
        let attestor = attest::load_signing_key(settings.signing_key_file.as_deref())
            .and_then(|key| Attestor::new(key, &settings.attestor))
            .map_err(|e| e.to_string());
        Ltv {
            settings: settings.clone(),
            attestor,
            canonical: Canonical::new().map_err(|e| e.to_string()),
            reference: Mutex::new(Reference::default()),
            fitted: Mutex::new(BTreeMap::new()),
            schedules: value::ScheduleCache::default(),
        }
    }

    fn prior(&self) -> Prior {
        Prior {
            mean: self.settings.uplift_prior_mean,
            sd: self.settings.uplift_prior_sd,
        }
    }

    /// Mean values and uplift posteriors of the current population.
    fn reference(&self, ctx: &Context<'_>) -> Reference {
        let Some(population) = ctx.population::<PopulationSummary>() else {
            return Reference::default();
        };
        let Ok(mut cached) = self.reference.lock() else {
            return Reference::default();
        };
        if cached.generation != population.generation || cached.posteriors.is_empty() {
            let merged = Merged::of(population.partitions.values(), false);
            *cached = Reference {
                generation: population.generation,
                stream_day: merged.stream_day,
                posteriors: InterventionType::ALL
                    .iter()
                    .map(|t| {
                        uplift::posterior(
                            &merged.outcomes.get(t.label()).copied().unwrap_or_default(),
                            self.prior(),
                        )
                    })
                    .collect(),
                values: merged.values,
            };
        }
        cached.clone()
    }

    fn tenure_band(&self, days: i32) -> String {
        let bands = &self.settings.tenure_bands_days;
        match bands.iter().position(|&upper| days < upper) {
            Some(0) => format!("tenure:<{}d", bands[0]),
            Some(i) => format!("tenure:{}-{}d", bands[i - 1], bands[i]),
            None => format!("tenure:{}d+", bands.last().copied().unwrap_or(0)),
        }
    }

    /// The member's model segments: tier, redemption behaviour, tenure band.
    fn segments(&self, state: &MemberState) -> [Option<String>; 3] {
        [
            state.tier.as_ref().map(|t| format!("tier:{}", t.tier_id)),
            Some(if state.points.redemptions > 0 {
                "redemption:redeemer".to_owned()
            } else {
                "redemption:non_redeemer".to_owned()
            }),
            state.btyd.as_ref().map(|b| self.tenure_band(b.t_days)),
        ]
    }

    fn horizon(&self) -> Horizon {
        Horizon {
            lifetime_months: self.settings.lifetime_months,
            annual_discount_rate: self.settings.annual_discount_rate,
        }
    }

    /// The record for the member as the join stands, and its contribution to the population.
    fn score(
        &self,
        key: &str,
        join: &MemberJoin,
        rationale: String,
        ctx: &Context<'_>,
    ) -> Result<(MemberLtv, Contribution, Valuations), HandleError> {
        let s = &self.settings;
        let reference = self.reference(ctx);
        let model = ctx.table::<Published>(topics::MODEL_PARAMS, ALL);
        let state = join.member.as_ref().map(|(_, m)| m);
        let program = state
            .and_then(|m| m.tier.as_ref())
            .and_then(|t| ctx.table::<Program>(topics::PROGRAMS, &t.program_id));
        let margin_ratio = state
            .filter(|m| m.margin_minor > 0 && m.spend_minor > 0)
            .map_or(s.default_margin_ratio, |m| {
                (m.margin_minor as f64 / m.spend_minor as f64).clamp(0.0, 1.0)
            });
        let segments = state.map(|st| self.segments(st)).unwrap_or_default();
        // Valued at population time (the newest member-state day of the population), not
        // at the member's own as_of: a member who has not bought for a year is valued a
        // year after their last purchase (Kafka Streams' punctuation at stream time), and
        // a record written after the last refresh is as current as one the refresh wrote.
        let day = match state {
            Some(m) => m.as_of.day().0.max(reference.stream_day),
            None => reference.stream_day,
        };
        let cache = self.valuations(join, &segments, margin_ratio, day, ctx);
        let baseline = cache.baseline.as_ref();
        let segment_value = |i: usize| SegmentValue {
            segment: &cache.segments[i].0,
            worth: cache.segments[i].1.as_ref(),
        };

        let (adjustments, liability) = match state {
            Some(state) => adjust::adjustments(
                &adjust::Inputs {
                    state,
                    program: program.as_deref(),
                    baseline: baseline.map(|b| &b.worth),
                    tier: segment_value(0),
                    redemption: segment_value(1),
                    tenure: segment_value(2),
                    population_mean_margin: reference
                        .values
                        .get(ALL)
                        .and_then(|v| v.mean_lifetime_margin()),
                },
                &Coefficients {
                    default_burn_ratio: s.default_burn_ratio,
                    streak_bonus_per_month: s.streak_bonus_per_month,
                    streak_bonus_cap_months: s.streak_bonus_cap_months,
                    referral_credit: s.referral_credit,
                },
            ),
            None => (Vec::new(), 0),
        };
        let horizons = baseline.map_or_else(value::zero_horizons, |b| b.horizons.clone());
        let adjusted =
            horizons.lifetime_margin_minor + adjustments.iter().map(|a| a.value_minor).sum::<i64>();

        let counterfactuals = InterventionType::ALL
            .iter()
            .zip(&reference.posteriors)
            .map(|(kind, post)| uplift::counterfactual(*kind, adjusted as f64, post))
            .collect();

        let mean_revenue = |group: &str| {
            reference
                .values
                .get(group)
                .and_then(|v| v.mean_revenue_12m())
        };
        let views = Views {
            own_history: baseline.map(|b| b.worth.revenue_12m),
            tier_forecast: join
                .forecasts
                .as_ref()
                .and_then(|f| tier_view(f, &mean_revenue)),
            cohort: join
                .cohort
                .as_ref()
                .and_then(|c| mean_revenue(&format!("segment:{}", c.segment))),
        };
        let reconciliation = reconcile::reconcile(
            views,
            Weights {
                own_history: s.weight_own_history,
                tier_forecast: s.weight_tier_forecast,
                cohort: s.weight_cohort,
            },
            s.reconciliation_tolerance,
        );

        let mut inputs = Vec::new();
        let mut missing = Vec::new();
        let mut as_of = i64::MIN;
        let mut side = |name: &str, topic: &str, at: Option<(Position, i64)>| match at {
            Some((p, t)) => {
                as_of = as_of.max(t);
                inputs.push(InputPosition {
                    topic: topic.to_owned(),
                    partition: p.partition,
                    offset: p.offset,
                });
            }
            None => missing.push(name.to_owned()),
        };
        side(
            "member_state",
            topics::MEMBER_STATE,
            join.member.as_ref().map(|(p, m)| (*p, m.as_of.0)),
        );
        side(
            "tier_forecasts",
            topics::TIER_FORECASTS,
            join.forecasts.as_ref().map(|f| (f.at, f.as_of)),
        );
        side(
            "cohorts",
            topics::COHORTS,
            join.cohort.as_ref().map(|c| (c.at, c.as_of)),
        );
        let as_of = state.map_or(as_of, |m| {
            m.as_of.0.max(loyalty_contracts::Date(day).start().0)
        });

        let record = MemberLtv {
            member_id: key.to_owned(),
            as_of: loyalty_contracts::Timestamp(as_of),
            currency: state.and_then(|m| m.currency.clone()),
            missing_inputs: missing,
            model_segment: if baseline.is_some() {
                ALL.to_owned()
            } else {
                String::new()
            },
            p_alive: baseline.map(|b| b.p_alive),
            expected_order_value_minor: baseline.map(|b| b.order_value_minor),
            margin_ratio,
            decay_curve: baseline.map(|b| b.decay_curve.clone()).unwrap_or_default(),
            baseline: horizons,
            points_liability_minor: liability,
            adjustments,
            adjusted_lifetime_margin_minor: adjusted,
            counterfactuals,
            reconciliation,
            attestation: Attestation {
                model_version: model
                    .as_deref()
                    .filter(|_| baseline.is_some())
                    .map_or_else(String::new, |m| m.version.clone()),
                parameter_hash: attest::parameter_hash(
                    model.as_deref().filter(|_| baseline.is_some()),
                ),
                inputs,
                output_hash: String::new(),
                attested_at: loyalty_contracts::Timestamp(as_of),
                attestor: String::new(),
                key_id: String::new(),
                rationale,
                signature: String::new(),
            },
        };

        // What the member adds to the population.
        let mut contribution = Contribution::default();
        if let Some(state) = state {
            if let Some(b) = &state.btyd {
                let row = FitRow::of(b);
                contribution.fit_rows.push((ALL.to_owned(), row));
                for seg in segments.iter().flatten() {
                    contribution.fit_rows.push((seg.clone(), row));
                }
            }
            if let Some(b) = baseline {
                let (revenue, margin) = (
                    value::minor(b.worth.revenue_12m),
                    value::minor(b.worth.lifetime_margin),
                );
                contribution.values.push((ALL.to_owned(), revenue, margin));
                if let Some(t) = &state.tier {
                    contribution
                        .values
                        .push((format!("tier:{}", t.tier_id), revenue, margin));
                }
                if let Some(c) = &join.cohort {
                    contribution
                        .values
                        .push((format!("segment:{}", c.segment), revenue, margin));
                }
            }
        }
        Ok((record, contribution, cache))
    }

    /// The member valued under the population fit and its three segment fits: reused
    /// from the join's cache while the member-state and the fits are the same (a forecast
    /// or cohort change does not repeat the series), and a segment fit with the
    /// population fit's parameters (the same members) is not valued twice.
    fn valuations(
        &self,
        join: &MemberJoin,
        segments: &[Option<String>; 3],
        margin_ratio: f64,
        day: i32,
        ctx: &Context<'_>,
    ) -> Valuations {
        let state = join.member.as_ref();
        let all = ctx.table::<Published>(topics::MODEL_PARAMS, ALL);
        let fits: Vec<Option<std::sync::Arc<Published>>> = segments
            .iter()
            .map(|seg| {
                seg.as_deref()
                    .and_then(|seg| ctx.table::<Published>(topics::MODEL_PARAMS, seg))
            })
            .collect();
        let basis = loyalty_contracts::fnv1a(&format!(
            "{:?}|{day}|{margin_ratio}|{:?}|{:?}",
            state.map(|(p, _)| p.offset),
            all.as_ref().map(|m| &m.version),
            fits.iter()
                .map(|f| f.as_ref().map(|m| m.version.clone()))
                .collect::<Vec<_>>()
        ));
        if let Some(cache) = join.cache.as_ref().filter(|c| c.basis == basis) {
            return cache.clone();
        }
        let value = |m: &Published, alive: bool| {
            let (_, member) = state?;
            let own_mean = member.rfm.as_ref().map_or(0.0, |r| r.monetary_minor);
            member.btyd.as_ref().and_then(|b| {
                Valuation::of(
                    m,
                    b,
                    day - b.first_purchase.0,
                    own_mean,
                    margin_ratio,
                    self.horizon(),
                    alive,
                    &self.schedules,
                )
            })
        };
        let baseline = all.as_deref().and_then(|m| value(m, true));
        let segments = segments
            .iter()
            .zip(&fits)
            .map(|(name, fit)| {
                let worth = fit
                    .as_deref()
                    .and_then(|m| match (&baseline, all.as_deref()) {
                        (Some(b), Some(a)) if a.purchases == m.purchases && a.spend == m.spend => {
                            Some(b.worth())
                        }
                        _ => value(m, false).map(|v| v.worth()),
                    });
                (name.clone().unwrap_or_default(), worth)
            })
            .collect();
        Valuations {
            basis,
            baseline: baseline.map(|b| b.valued()),
            segments,
        }
    }

    /// What a member's record depends on beyond its own inputs, as a fingerprint.
    fn dependencies(&self, join: &MemberJoin, ctx: &Context<'_>) -> u64 {
        let reference = self.reference(ctx);
        let state = join.member.as_ref().map(|(_, m)| m);
        let mut text = String::new();
        let mut segments = vec![Some(ALL.to_owned())];
        segments.extend(state.map(|st| self.segments(st)).unwrap_or_default());
        for seg in segments.iter().flatten() {
            let version = ctx
                .table::<Published>(topics::MODEL_PARAMS, seg)
                .map(|m| m.version.clone());
            text.push_str(&format!("{seg}={version:?};"));
        }
        let mut groups = vec![ALL.to_owned()];
        if let Some(t) = state.and_then(|m| m.tier.as_ref()) {
            groups.push(format!("tier:{}", t.tier_id));
        }
        if let Some(f) = &join.forecasts {
            for (_, tier) in f.up.iter().chain(&f.down) {
                groups.push(format!("tier:{tier}"));
            }
        }
        if let Some(c) = &join.cohort {
            groups.push(format!("segment:{}", c.segment));
        }
        for g in groups {
            let v = reference.values.get(&g);
            text.push_str(&format!(
                "{g}={:.1e}/{:.1e};",
                v.and_then(|v| v.mean_revenue_12m()).unwrap_or(-1.0),
                v.and_then(|v| v.mean_lifetime_margin()).unwrap_or(-1.0)
            ));
        }
        text.push_str(&format!("day={};", reference.stream_day));
        for p in &reference.posteriors {
            text.push_str(&format!("{:.1e}/{:.1e};", p.mean, p.sd));
        }
        loyalty_contracts::fnv1a(&text)
    }

    /// Score, and emit when the content changed; the population contribution follows.
    fn rescore(
        &self,
        key: &str,
        join: &mut MemberJoin,
        rationale: String,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandleError> {
        if join.member.is_none() && join.forecasts.is_none() && join.cohort.is_none() {
            // Every side withdrawn: so is the value.
            if !join.content_hash.is_empty() {
                ctx.tombstone(topics::MEMBER_LTV, key);
                join.content_hash.clear();
            }
            if let Some(summary) = ctx.summary::<PopulationSummary>() {
                summary.replace(&join.contribution, &Contribution::default());
            }
            join.contribution = Contribution::default();
            return Ok(());
        }
        join.dependencies = self.dependencies(join, ctx);
        let (mut record, contribution, cache) = self.score(key, join, rationale, ctx)?;
        join.cache = Some(cache);
        let canonical = self
            .canonical
            .as_ref()
            .map_err(|e| HandleError::Fatal(e.clone()))?;
        let mut content = record.clone();
        content.attestation = blank_attestation();
        let content_hash = attest::sha256_hex(
            &canonical
                .body(&content)
                .map_err(|e| HandleError::Fatal(e.to_string()))?,
        );
        if content_hash != join.content_hash {
            let attestor = self
                .attestor
                .as_ref()
                .map_err(|e| HandleError::Fatal(e.clone()))?;
            attestor
                .sign(&mut record)
                .map_err(|e| HandleError::Fatal(e.to_string()))?;
            ctx.emit(topics::MEMBER_LTV, key, &record, record.as_of.0)?;
            for d in &record.reconciliation.discrepancies {
                ctx.record(Event::ValueDiscrepancy {
                    between: &d.between,
                });
            }
            join.content_hash = content_hash;
        }
        if contribution != join.contribution {
            if let Some(summary) = ctx.summary::<PopulationSummary>() {
                summary.replace(&join.contribution, &contribution);
            }
            join.contribution = contribution;
        }
        Ok(())
    }

    /// An intervention outcome: counted once per intervention and arm, its value replaced
    /// (not added) when a later conversion reports a new one, so duplicates change nothing.
    fn outcome(
        &self,
        join: &mut MemberJoin,
        outcome: &InterventionOutcome,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandleError> {
        if InterventionType::from_label(&outcome.intervention_type).is_none() {
            return Err(Rejection::contract(format!(
                "intervention_type {:?} is not one of {}",
                outcome.intervention_type,
                InterventionType::ALL.map(|t| t.label()).join(", ")
            ))
            .into());
        }
        if outcome.value_minor.is_some_and(|v| v < 0) {
            return Err(Rejection::contract("negative intervention value_minor").into());
        }
        let holdout = outcome.holdout.unwrap_or(false);
        let new_value = match (outcome.result, outcome.value_minor) {
            (InterventionResult::Converted, Some(v)) => Some(v),
            _ => None,
        };
        let known = join.interventions.get(&outcome.intervention_id).cloned();
        if let Some(k) = &known
            && (k.kind != outcome.intervention_type || k.holdout != holdout)
        {
            return Err(Rejection::contract(format!(
                "intervention {} was {} (holdout {}) and is now {} (holdout {holdout})",
                outcome.intervention_id, k.kind, k.holdout, outcome.intervention_type
            ))
            .into());
        }
        let old_value = known.as_ref().map_or(0, |k| k.value);
        let value = new_value.unwrap_or(old_value);
        if known.is_none() && join.interventions.len() >= MAX_INTERVENTIONS {
            join.interventions.pop_first();
        }
        join.interventions.insert(
            outcome.intervention_id.clone(),
            Intervention {
                kind: outcome.intervention_type.clone(),
                holdout,
                value,
            },
        );
        if let Some(summary) = ctx.summary::<PopulationSummary>() {
            let arms = summary
                .outcomes
                .entry(outcome.intervention_type.clone())
                .or_default();
            let arm = if holdout {
                &mut arms.holdout
            } else {
                &mut arms.treated
            };
            if known.is_none() {
                arm.n += 1;
            }
            arm.sum += value - old_value;
            arm.sum_sq += i128::from(value) * i128::from(value)
                - i128::from(old_value) * i128::from(old_value);
        }
        Ok(())
    }

    /// Fit every segment whose rows changed, publishing converged fits that differ from
    /// the table's.
    fn fit_segments(&self, ctx: &mut Context<'_>) -> Result<(), HandleError> {
        let Some(population) = ctx.population::<PopulationSummary>() else {
            return Ok(());
        };
        let merged = Merged::of(population.partitions.values(), true);
        let Ok(mut fitted) = self.fitted.lock() else {
            return Ok(());
        };
        let mut records: Vec<ModelParams> = Vec::new();
        for (segment, rows) in &merged.fit_rows {
            let published = ctx
                .table::<Published>(topics::MODEL_PARAMS, segment)
                .is_some();
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
                    let current = ctx.table::<Published>(topics::MODEL_PARAMS, segment);
                    if current.is_some_and(|c| !moved(&c, params, self.settings.refit_tolerance)) {
                        "unchanged"
                    } else {
                        records.push((**params).clone());
                        "published"
                    }
                }
                other => other.label(),
            };
            ctx.record(Event::ModelFitted {
                segment,
                outcome: label,
                elapsed: started.elapsed(),
            });
            fitted.insert(
                segment.clone(),
                (merged.stream_day, rows.clone(), Instant::now()),
            );
        }
        drop(fitted);
        for params in records {
            let at = params.fitted_at.0;
            ctx.emit(topics::MODEL_PARAMS, &params.segment.clone(), &params, at)?;
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

fn blank_attestation() -> Attestation {
    Attestation {
        model_version: String::new(),
        parameter_hash: String::new(),
        inputs: Vec::new(),
        output_hash: String::new(),
        attested_at: loyalty_contracts::Timestamp(0),
        attestor: String::new(),
        key_id: String::new(),
        rationale: String::new(),
        signature: String::new(),
    }
}

/// The tier forecast's view of 12-month revenue: the mean value of members now in each
/// tier the member may hold at the horizon, weighted by its probability.
fn tier_view(f: &ForecastSide, mean_revenue: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
    let mut outcomes: Vec<(f64, &str)> = Vec::new();
    let (mut up, mut down) = (0.0, 0.0);
    if let Some((p, tier)) = &f.up {
        up = *p;
        outcomes.push((*p, tier));
    }
    if let Some((p, tier)) = &f.down {
        down = *p;
        outcomes.push((*p, tier));
    }
    outcomes.push(((1.0 - up - down).max(0.0), &f.tier_id));
    let (mut weighted, mut weight) = (0.0, 0.0);
    for (p, tier) in outcomes {
        if let Some(mean) = mean_revenue(&format!("tier:{tier}")) {
            weighted += p * mean;
            weight += p;
        }
    }
    (weight > 0.0).then(|| weighted / weight)
}

fn forecast_side(at: Position, f: &TierForecasts) -> Result<ForecastSide, Rejection> {
    let pick = |kind: TransitionType| -> Result<Option<(f64, String)>, Rejection> {
        let Some(t) = f.forecasts.iter().find(|t| t.transition == kind) else {
            return Ok(None);
        };
        match (t.probability, &t.target_tier_id) {
            (Some(p), _) if !(0.0..=1.0).contains(&p) => Err(Rejection::contract(format!(
                "{} probability {p} is outside [0, 1]",
                kind.label()
            ))),
            (Some(p), Some(tier)) => Ok(Some((p, tier.clone()))),
            _ => Ok(None),
        }
    };
    Ok(ForecastSide {
        at,
        as_of: f.as_of.0,
        tier_id: f.tier_id.clone(),
        up: pick(TransitionType::UpTier)?,
        down: pick(TransitionType::DownTier)?,
    })
}

fn decode_model(input: &Input<'_>) -> Result<TableValue, Rejection> {
    let params: ModelParams = input.decode()?;
    let published =
        btyd::params::published_keyed(&params, input.key).map_err(Rejection::contract)?;
    Ok(Arc::new(published))
}

fn decode_program(input: &Input<'_>) -> Result<TableValue, Rejection> {
    decode_checked::<Program>(input, "program", |p| &p.program_id, Program::problems)
}

impl Agent for Ltv {
    type State = MemberJoin;
    type Settings = Settings;
    type Summary = PopulationSummary;
    const SHARES_SUMMARY: bool = true;
    const NAME: &'static str = "ltv";
    const STORE: &'static str = "join";
    const REKEYS: bool = true;

    fn inputs(&self) -> Vec<&'static str> {
        vec![
            topics::MEMBER_STATE,
            topics::TIER_FORECASTS,
            topics::COHORTS,
            topics::MEMBER_EVENTS,
        ]
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![
            TableSpec {
                topic: topics::PROGRAMS,
                decode: decode_program,
                required: false,
            },
            // Not required: this agent is the one that fits it.
            TableSpec {
                topic: topics::MODEL_PARAMS,
                decode: decode_model,
                required: false,
            },
        ]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![
            OutputSpec {
                topic: topics::MEMBER_LTV,
                schema: <MemberLtv as apache_avro::AvroSchema>::get_schema,
                compacted: true,
            },
            OutputSpec {
                topic: topics::MODEL_PARAMS,
                schema: <ModelParams as apache_avro::AvroSchema>::get_schema,
                compacted: true,
            },
        ]
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<MemberJoin>,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandleError> {
        let at = Position {
            partition: input.partition,
            offset: input.offset,
        };
        if input.topic == topics::MEMBER_EVENTS {
            if input.is_tombstone() {
                return Ok(());
            }
            let event: MemberEvent = input.decode()?;
            let Payload::InterventionOutcome(outcome) = &event.payload else {
                return Ok(()); // customer-graph's to fold, not this agent's
            };
            if event.member_id != input.key {
                // Keyed by a source system's id: the outcome belongs to its member
                // (the identity rule customer-graph applies to every event).
                return ctx.rekey(&event.member_id);
            }
            let join = state.get_or_insert_with(MemberJoin::default);
            self.outcome(join, outcome, ctx)?;
            return Ok(());
        }
        if input.is_tombstone() && input.topic == topics::MEMBER_STATE {
            // Erasure upstream: take the member out of the population, withdraw the value.
            if let Some(join) = state.take() {
                if let Some(summary) = ctx.summary::<PopulationSummary>() {
                    summary.replace(&join.contribution, &Contribution::default());
                }
                ctx.tombstone(topics::MEMBER_LTV, input.key);
            }
            return Ok(());
        }
        let join = state.get_or_insert_with(MemberJoin::default);
        let rationale;
        match input.topic {
            topics::MEMBER_STATE => {
                let member: MemberState =
                    input.decode_keyed("member_id", |m: &MemberState| &m.member_id)?;
                if let Some(b) = &member.btyd {
                    let summary = btyd::Summary::new(
                        f64::from(b.x),
                        f64::from(b.t_x_days),
                        f64::from(b.t_days),
                    );
                    if let Some(problem) = summary.problem() {
                        return Err(Rejection::contract(format!("btyd summary: {problem}")).into());
                    }
                }
                if let Some(counts) = ctx.summary::<PopulationSummary>() {
                    counts.stream_day = counts.stream_day.max(member.as_of.day().0);
                }
                rationale = format!("member_state changed (offset {})", input.offset);
                join.member = Some((at, member));
            }
            topics::TIER_FORECASTS if input.is_tombstone() => {
                rationale = "tier forecasts withdrawn".to_owned();
                join.forecasts = None;
            }
            topics::TIER_FORECASTS => {
                let f: TierForecasts =
                    input.decode_keyed("member_id", |f: &TierForecasts| &f.member_id)?;
                let side = forecast_side(at, &f)?;
                // Only the tier and the up/down probabilities enter the value: a record that
                // changes neither (a re-calibration elsewhere, a repeat) changes nothing, and
                // the joined position stays the one the value was computed from.
                if join.forecasts.as_ref().is_some_and(|old| {
                    (&old.tier_id, &old.up, &old.down) == (&side.tier_id, &side.up, &side.down)
                }) {
                    return Ok(());
                }
                join.forecasts = Some(side);
                rationale = format!("tier_forecasts changed (offset {})", input.offset);
            }
            topics::COHORTS if input.is_tombstone() => {
                rationale = "cohort withdrawn".to_owned();
                join.cohort = None;
            }
            topics::COHORTS => {
                let c: MemberCohort =
                    input.decode_keyed("member_id", |c: &MemberCohort| &c.member_id)?;
                // Only the segment enters the value (see tier forecasts above).
                if join
                    .cohort
                    .as_ref()
                    .is_some_and(|old| old.segment == c.segment.label())
                {
                    return Ok(());
                }
                join.cohort = Some(CohortSide {
                    at,
                    as_of: c.as_of.0,
                    segment: c.segment.label().to_owned(),
                });
                rationale = format!("cohorts changed (offset {})", input.offset);
            }
            other => {
                return Err(HandleError::Fatal(format!(
                    "{other} is not an input of ltv"
                )));
            }
        }
        self.rescore(input.key, join, rationale, ctx)
    }

    /// After the population or a model changed: re-score, emitting only members whose
    /// record changed.
    fn refresh(
        &self,
        key: &str,
        state: &mut Option<MemberJoin>,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandleError> {
        let Some(join) = state.as_mut() else {
            return Ok(());
        };
        if join.member.is_none() && join.forecasts.is_none() && join.cohort.is_none() {
            return Ok(());
        }
        if self.dependencies(join, ctx) == join.dependencies {
            return Ok(());
        }
        self.rescore(
            key,
            join,
            "refresh: the population day, fit or population values changed".to_owned(),
            ctx,
        )
    }

    fn publish(&self, ctx: &mut Context<'_>) -> Result<(), HandleError> {
        self.fit_segments(ctx)
    }
}
