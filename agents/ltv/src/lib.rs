//! ltv: per-member lifetime value (`docs/architecture.md#ltv`). A table–table join of member-state,
//! tier-forecasts and cohorts, co-partitioned by member id, plus the intervention
//! outcomes on member-events; a member is re-scored whenever any side changes, with the
//! sides that exist so far. The six skills live in their own modules: capture (the join:
//! `join`, and `handle` here), decay (`value`), counterfactual (`uplift`), loyalty adjustment (`adjust`),
//! reconcile (`reconcile`) and attestation (`attest`). The population fitter
//! (`population`) runs on the partition-0 owner and publishes per-segment fits on
//! `loyalty.model-params.v1`, which this agent (and tier-transition) score with.

pub mod adjust;
pub mod attest;
mod erase;
mod fitting;
mod join;
pub mod metrics;
mod outcomes;
pub mod population;
pub mod reconcile;
mod scoring;
mod settings;
pub mod testkit;
pub mod uplift;
pub mod value;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use btyd::params::MODEL_PARAMS;
use loyalty_contracts::{
    MemberCohort, MemberEvent, MemberState, Payload, TierForecasts, catalog, tables, topics,
};
use loyalty_runtime::{
    Agent, Context, Forgotten, HandleError, Input, OutputSpec, PartitionSummary, Rejection, Rekeys,
    TableSpec,
};

use attest::{Attestor, Canonical};
use join::forecast_side;
pub use join::{CohortSide, ForecastSide, Intervention, MemberJoin, Position, Valuations};
use population::PopulationSummary;
use scoring::Reference;
pub use settings::Settings;

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
    /// Registered at start-up; unset outside the runtime (tests, benchmarks).
    metrics: OnceLock<metrics::LtvMetrics>,
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
            metrics: OnceLock::new(),
        }
    }
}

/// Shared between instances: fits, group means and uplift counts are merged from
/// every partition's rows.
impl PartitionSummary for PopulationSummary {}

impl Agent for Ltv {
    type State = MemberJoin;
    type Settings = Settings;
    type Summary = PopulationSummary;
    type Rekeying = Rekeys;
    const NAME: &'static str = "ltv";
    const STORE: &'static str = "join";

    fn inputs(&self) -> Vec<&'static str> {
        vec![
            topics::MEMBER_STATE,
            topics::TIER_FORECASTS,
            topics::COHORTS,
            topics::MEMBER_EVENTS,
            topics::ERASURE_REQUESTS,
        ]
    }

    fn tables(&self) -> Vec<TableSpec> {
        // Model params not required: this agent is the one that fits them.
        vec![tables::PROGRAMS.spec(), MODEL_PARAMS.spec()]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![catalog::MEMBER_LTV.output(), catalog::MODEL_PARAMS.output()]
    }

    fn register_metrics(
        &self,
        registry: &loyalty_runtime::metrics::Metrics,
    ) -> Result<(), loyalty_runtime::prometheus::Error> {
        let _ = self.metrics.set(metrics::LtvMetrics::register(registry)?);
        Ok(())
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<MemberJoin>,
        ctx: &mut Context<'_, Self>,
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
            ctx.check_event_time(input, "occurred_at", event.occurred_at.0)?;
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
                Ltv::withdraw(&join, ctx)?;
                ctx.tombstone(&catalog::MEMBER_LTV, input.key);
            }
            return Ok(());
        }
        let join = state.get_or_insert_with(MemberJoin::default);
        let rationale;
        match input.topic {
            topics::MEMBER_STATE => {
                let member: MemberState =
                    input.decode_keyed("member_id", |m: &MemberState| &m.member_id)?;
                ctx.check_event_time(input, "as_of", member.as_of.0)?;
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
                if let Some(counts) = ctx.summary() {
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
        ctx: &mut Context<'_, Self>,
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

    fn forget(
        &self,
        _key: &str,
        state: &Option<MemberJoin>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<Forgotten, HandleError> {
        match state {
            Some(join) => Ltv::withdraw(join, ctx),
            None => Ok(Forgotten::default()),
        }
    }

    fn publish(&self, ctx: &mut Context<'_, Self>) -> Result<(), HandleError> {
        self.fit_segments(ctx)
    }
}
