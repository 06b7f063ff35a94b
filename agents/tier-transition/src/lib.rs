//! tier-transition (Predict): per member, the probability of each of the twelve tier
//! transitions by the horizon, its likely date and an 80% interval, from the member's
//! own purchase process against the program's rules (`forecast`), calibrated against
//! resolved past forecasts (`calibrate`, `ledger`); forecasts that cross the operator's
//! thresholds become intervention opportunities (`docs/architecture.md#tier-transition`).
//!
//! Population models come from `loyalty.model-params.v1` (the newest converged fit of the
//! configured segment). Calibration is population-wide: each partition counts its
//! resolved forecasts, the runtime shares the counts, and every instance fits the same
//! calibrators from the merged counts; a change re-applies them to every member.

pub mod calibrate;
pub mod forecast;
pub mod ledger;
pub mod metrics;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use btyd::params::{MODEL_PARAMS, Published};
use loyalty_contracts::{
    Date, InterventionOpportunity, MemberState, OpportunityKind, Program, TierForecasts, Timestamp,
    TransitionForecast, TransitionType, catalog, tables, topics,
};
use loyalty_runtime::{
    Agent, AgentSettings, Context, Forgotten, HandleError, Input, KeepsKeys, OutputSpec,
    PartitionSummary, TableSpec,
};
use serde::{Deserialize, Serialize};

use calibrate::{Calibrator, choose_split, score_weighted};
use forecast::{Forecaster, Population, Raw, Standing};
use ledger::{CalibrationCounts, MemberForecasts, Pending};

/// Settings under `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Forecast horizon in days from the member-state's as_of.
    pub horizon_days: i32,
    /// Bridge mark, as a fraction of the next tier's threshold.
    pub bridge_fraction: f64,
    /// Segment of `loyalty.model-params.v1` to score with.
    pub model_segment: String,
    /// ThankYou when the up-tier probability is at least this.
    pub thank_you_probability: f64,
    /// ReactivationOffer when the down-tier probability is at least this.
    pub reactivation_probability: f64,
    /// TopUpNudge when the grace-period-entry probability is at least this.
    pub top_up_probability: f64,
    /// GraceExtension when a member in grace has a reinstatement probability at most this.
    pub grace_extension_probability: f64,
    /// Bridge when the bridge-crossing probability is at least this while up-tier is
    /// below `thank_you_probability`.
    pub bridge_probability: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            horizon_days: 365,
            bridge_fraction: 0.8,
            model_segment: "all".into(),
            thank_you_probability: 0.6,
            reactivation_probability: 0.5,
            top_up_probability: 0.5,
            grace_extension_probability: 0.3,
            bridge_probability: 0.3,
        }
    }
}

impl AgentSettings for Settings {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=730).contains(&self.horizon_days) {
            problems.push(format!(
                "horizon_days: {} must be between 1 and 730",
                self.horizon_days
            ));
        }
        if !(self.bridge_fraction > 0.0 && self.bridge_fraction < 1.0) {
            problems.push(format!(
                "bridge_fraction: {} must be strictly between 0 and 1",
                self.bridge_fraction
            ));
        }
        if self.model_segment.trim().is_empty() {
            problems.push("model_segment: must not be empty".into());
        }
        for (name, p) in [
            ("thank_you_probability", self.thank_you_probability),
            ("reactivation_probability", self.reactivation_probability),
            ("top_up_probability", self.top_up_probability),
            (
                "grace_extension_probability",
                self.grace_extension_probability,
            ),
            ("bridge_probability", self.bridge_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                problems.push(format!("{name}: {p} must be between 0 and 1"));
            }
        }
        problems
    }
}

/// Calibrators fitted from one population generation.
#[derive(Debug, Clone)]
struct Calibration {
    generation: u64,
    version: String,
    maps: Vec<Calibrator>,
}

/// The agent.
#[derive(Debug)]
pub struct TierTransition {
    settings: Settings,
    calibration: Mutex<Option<Calibration>>,
    /// Registered at start-up; unset outside the runtime (tests, benchmarks).
    metrics: OnceLock<metrics::TierMetrics>,
}

impl TierTransition {
    pub fn new(settings: &Settings) -> Self {
        TierTransition {
            settings: settings.clone(),
            calibration: Mutex::new(None),
            metrics: OnceLock::new(),
        }
    }

    /// The calibrators for the current population, refitted when it changed.
    fn calibration(&self, ctx: &Context<'_, Self>) -> (String, Vec<Calibrator>) {
        let identity = || ("identity".to_owned(), vec![Calibrator::Identity; 12]);
        let population = ctx.population();
        let Ok(mut cached) = self.calibration.lock() else {
            return identity();
        };
        if let Some(c) = cached
            .as_ref()
            .filter(|c| c.generation == population.generation)
        {
            return (c.version.clone(), c.maps.clone());
        }
        let mut maps = Vec::with_capacity(12);
        for (index, kind) in TransitionType::ALL.iter().enumerate() {
            let (train, held) = ledger::merged_rows(population.partitions.values(), index as u8);
            let choice = choose_split(&train, &held);
            let calibrated: Vec<_> = held
                .iter()
                .map(|r| calibrate::Resolved {
                    probability: choice.calibrator.apply(r.probability),
                    ..*r
                })
                .collect();
            if !calibrated.is_empty() {
                let s = score_weighted(&calibrated);
                if let Some(m) = self.metrics.get() {
                    m.forecast_quality(metrics::ForecastQuality {
                        transition: kind.label(),
                        resolved: train.iter().chain(&held).map(|r| r.weight).sum::<f64>() as u64,
                        brier: s.brier,
                        log_loss: s.log_loss,
                        ece: s.ece,
                    });
                }
            }
            maps.push(choice.calibrator);
        }
        // The version names the maps, so every instance fitting the same counts agrees.
        let version = format!("{:016x}", loyalty_contracts::fnv1a(&format!("{maps:?}")));
        *cached = Some(Calibration {
            generation: population.generation,
            version: version.clone(),
            maps: maps.clone(),
        });
        (version, maps)
    }

    fn forecasts(
        &self,
        state: &MemberState,
        program: Option<&Program>,
        model: Option<&Published>,
        calibration: &(String, Vec<Calibrator>),
    ) -> (TierForecasts, Vec<(TransitionType, Raw)>) {
        let day = state.as_of.day().0;
        let horizon = day + self.settings.horizon_days;
        let raws: Vec<(TransitionType, Raw)> = match (program, model) {
            (
                Some(program),
                Some(Published {
                    purchases,
                    spend: Some(spend),
                    unit_days,
                    version,
                }),
            ) => {
                let population = Population {
                    purchases: *purchases,
                    spend: *spend,
                    unit_days: *unit_days,
                    version: version.clone(),
                };
                Forecaster {
                    population: &population,
                    program,
                    bridge_fraction: self.settings.bridge_fraction,
                }
                .forecast(state, day, horizon)
            }
            (None, _) => not_applicable("the member's program is not in loyalty.programs.v1"),
            // Readiness waits for some usable fit, not necessarily this segment's.
            (_, None) => not_applicable(&format!(
                "no usable population fit for segment {} on loyalty.model-params.v1",
                self.settings.model_segment
            )),
            (_, Some(_)) => not_applicable("the population fit has no spend model"),
        };
        let forecasts = raws
            .iter()
            .enumerate()
            .map(|(i, (kind, raw))| to_contract(*kind, raw, &calibration.1[i]))
            .collect();
        let record = TierForecasts {
            member_id: state.member_id.clone(),
            program_id: state
                .tier
                .as_ref()
                .map_or_else(String::new, |t| t.program_id.clone()),
            as_of: state.as_of,
            horizon_end: Date(horizon).start(),
            tier_id: state
                .tier
                .as_ref()
                .map_or_else(String::new, |t| t.tier_id.clone()),
            model_version: model.map_or_else(String::new, |m| m.version.clone()),
            calibration_version: calibration.0.clone(),
            forecasts,
        };
        (record, raws)
    }

    /// Opportunities the calibrated forecasts call for.
    fn opportunities(
        &self,
        f: &TierForecasts,
        in_grace: Option<Timestamp>,
    ) -> Vec<InterventionOpportunity> {
        let s = &self.settings;
        let p = |kind: TransitionType| {
            f.forecasts
                .iter()
                .find(|t| t.transition == kind)
                .and_then(|t| t.probability.map(|p| (p, t)))
        };
        let mut raised = Vec::new();
        let mut raise = |kind: OpportunityKind,
                         transition: TransitionType,
                         threshold: f64,
                         act_before: Timestamp| {
            if let Some((probability, t)) = p(transition) {
                raised.push(InterventionOpportunity {
                    opportunity_id: format!("{}:{}:{}", f.member_id, kind.label(), f.as_of.0),
                    member_id: f.member_id.clone(),
                    program_id: f.program_id.clone(),
                    kind,
                    transition,
                    probability,
                    threshold,
                    as_of: f.as_of,
                    act_before,
                    tier_id: f.tier_id.clone(),
                    amount_gap: t.amount_gap,
                });
            }
        };
        let up = p(TransitionType::UpTier).map_or(0.0, |(p, _)| p);
        if up >= s.thank_you_probability && p(TransitionType::UpTier).is_some() {
            raise(
                OpportunityKind::ThankYou,
                TransitionType::UpTier,
                s.thank_you_probability,
                f.horizon_end,
            );
        }
        if p(TransitionType::BridgeCrossing).is_some_and(|(b, _)| b >= s.bridge_probability)
            && up < s.thank_you_probability
        {
            raise(
                OpportunityKind::Bridge,
                TransitionType::BridgeCrossing,
                s.bridge_probability,
                f.horizon_end,
            );
        }
        match in_grace {
            Some(until) => {
                if p(TransitionType::Reinstatement)
                    .is_some_and(|(r, _)| r <= s.grace_extension_probability)
                {
                    raise(
                        OpportunityKind::GraceExtension,
                        TransitionType::Reinstatement,
                        s.grace_extension_probability,
                        until,
                    );
                }
            }
            None => {
                if p(TransitionType::DownTier).is_some_and(|(d, _)| d >= s.reactivation_probability)
                {
                    raise(
                        OpportunityKind::ReactivationOffer,
                        TransitionType::DownTier,
                        s.reactivation_probability,
                        f.horizon_end,
                    );
                }
                if p(TransitionType::GracePeriodEntry)
                    .is_some_and(|(g, _)| g >= s.top_up_probability)
                {
                    raise(
                        OpportunityKind::TopUpNudge,
                        TransitionType::GracePeriodEntry,
                        s.top_up_probability,
                        f.horizon_end,
                    );
                }
            }
        }
        raised
    }
}

fn not_applicable(reason: &str) -> Vec<(TransitionType, Raw)> {
    TransitionType::ALL
        .iter()
        .map(|&k| (k, Raw::NotApplicable(reason.to_owned())))
        .collect()
}

fn to_contract(kind: TransitionType, raw: &Raw, calibrator: &Calibrator) -> TransitionForecast {
    match raw {
        Raw::NotApplicable(reason) => TransitionForecast {
            transition: kind,
            not_applicable: Some(reason.clone()),
            probability: None,
            raw_probability: None,
            expected_date: None,
            date_low: None,
            date_high: None,
            target_tier_id: None,
            amount_gap: None,
        },
        Raw::Forecast {
            probability,
            dates,
            target_tier,
            gap,
        } => TransitionForecast {
            transition: kind,
            not_applicable: None,
            probability: Some(calibrator.apply(*probability)),
            raw_probability: Some(*probability),
            expected_date: dates.map(|d| Date(d[1])),
            date_low: dates.map(|d| Date(d[0])),
            date_high: dates.map(|d| Date(d[2])),
            target_tier_id: target_tier.clone(),
            amount_gap: *gap,
        },
    }
}

/// Transitions whose outcome member-state can show, so their forecasts are resolved.
fn resolvable(kind: TransitionType) -> bool {
    matches!(
        kind,
        TransitionType::UpTier
            | TransitionType::DownTier
            | TransitionType::GracePeriodEntry
            | TransitionType::Reinstatement
            | TransitionType::BridgeCrossing
            | TransitionType::Stagnation
    )
}

/// One member in five (by id) is held out for choosing between calibrators.
fn held_out(member_id: &str) -> bool {
    loyalty_contracts::fnv1a(member_id) % 5 == 4
}

/// Resolve what can be resolved of `pending` given the member's path up to `day`; counts
/// go to `counts`, and what stays open is returned.
fn resolve(
    member_id: &str,
    pending: Pending,
    program: &Program,
    day: i32,
    purchases: &[(i32, i64)],
    counts: Option<&mut CalibrationCounts>,
    counted: &mut BTreeMap<(u8, u8), [u32; 2]>,
) -> Option<Pending> {
    let walk = ledger::walk_pending(&pending, program, day, purchases);
    let horizon_passed = day >= pending.horizon;
    let held = held_out(member_id);
    let mut open = Vec::new();
    let mut resolved = Vec::new();
    for (index, raw, mark) in pending.forecasts.iter().copied() {
        let kind = TransitionType::ALL[usize::from(index)];
        match ledger::outcome(kind, &walk, mark, horizon_passed) {
            Some(happened) => resolved.push((index, raw, happened)),
            None if !horizon_passed => open.push((index, raw, mark)),
            None => {}
        }
    }
    if let Some(counts) = counts {
        for (index, raw, happened) in resolved {
            let bin = counts.add(index, held, raw, happened);
            let tally = counted.entry((index, bin)).or_default();
            tally[0] += 1;
            tally[1] += u32::from(happened);
        }
    }
    (!open.is_empty()).then_some(Pending {
        forecasts: open,
        ..pending
    })
}

/// Shared between instances: calibrators are fitted on every partition's counts.
impl PartitionSummary for CalibrationCounts {}

impl Agent for TierTransition {
    type State = MemberForecasts;
    type Settings = Settings;
    type Summary = CalibrationCounts;
    type Rekeying = KeepsKeys;
    const NAME: &'static str = "tier-transition";
    const STORE: &'static str = "forecasts";

    fn inputs(&self) -> Vec<&'static str> {
        vec![topics::MEMBER_STATE, topics::ERASURE_REQUESTS]
    }

    fn tables(&self) -> Vec<TableSpec> {
        // Forecasts need the population fit: nothing is scored before it arrives.
        vec![tables::PROGRAMS.spec(), MODEL_PARAMS.required().spec()]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![
            catalog::TIER_FORECASTS.output(),
            catalog::INTERVENTION_OPPORTUNITIES.output(),
        ]
    }

    fn register_metrics(
        &self,
        registry: &loyalty_runtime::metrics::Metrics,
    ) -> Result<(), loyalty_runtime::prometheus::Error> {
        let _ = self.metrics.set(metrics::TierMetrics::register(registry)?);
        Ok(())
    }

    /// Erasure: the member's resolved forecasts leave the calibration counts, so the
    /// next calibrators are fitted without them.
    fn forget(
        &self,
        key: &str,
        state: &Option<MemberForecasts>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<Forgotten, HandleError> {
        let mut forgotten = Forgotten::default();
        if let Some(ledger) = state {
            let counts = ctx.summary().ok_or_else(|| {
                HandleError::Fatal("tier-transition runs without its partition summary".into())
            })?;
            forgotten.removed(
                "summary:calibration_counts",
                counts.withdraw(held_out(key), &ledger.counted),
            );
        }
        Ok(forgotten)
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<MemberForecasts>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        if input.is_tombstone() {
            // Erasure upstream: forget the member and withdraw the forecasts.
            if let Some(ledger) = state.take() {
                if let Some(counts) = ctx.summary() {
                    counts.withdraw(held_out(input.key), &ledger.counted);
                }
                ctx.tombstone(&catalog::TIER_FORECASTS, input.key);
            }
            return Ok(());
        }
        let member: MemberState =
            input.decode_keyed("member_id", |m: &MemberState| &m.member_id)?;
        ctx.check_event_time(input, "as_of", member.as_of.0)?;
        let program = member
            .tier
            .as_ref()
            .and_then(|t| ctx.table(&tables::PROGRAMS, &t.program_id));
        let model = ctx.table(&MODEL_PARAMS, &self.settings.model_segment);
        let day = member.as_of.day().0;
        let purchases: Vec<(i32, i64)> = member
            .tier
            .as_ref()
            .and_then(|t| t.qualifying_days.as_ref())
            .map(|days| days.iter().map(|d| (d.day.0, d.amount)).collect())
            .unwrap_or_default();

        let ledger = state.get_or_insert_with(MemberForecasts::default);
        if let Some(program) = program.as_deref()
            && let Some(pending) = ledger.pending.take()
        {
            let counts = ctx.summary();
            ledger.pending = resolve(
                &member.member_id,
                pending,
                program,
                day,
                &purchases,
                counts,
                &mut ledger.counted,
            );
        }
        if let Some(counts) = ctx.summary() {
            counts.stream_day = counts.stream_day.max(day);
        }

        let calibration = self.calibration(ctx);
        let (record, raws) =
            self.forecasts(&member, program.as_deref(), model.as_deref(), &calibration);
        if ledger.pending.is_none()
            && let Some(program) = program.as_deref()
            && let Some(standing) = Standing::of(&member, program)
        {
            let amount = standing.amount_on(program, day);
            let forecasts: Vec<(u8, f64, Option<i64>)> = raws
                .iter()
                .enumerate()
                .filter(|(_, (kind, _))| resolvable(*kind))
                .filter_map(|(i, (kind, raw))| match raw {
                    Raw::Forecast {
                        probability, gap, ..
                    } => Some((
                        i as u8,
                        *probability,
                        (*kind == TransitionType::BridgeCrossing)
                            .then(|| amount + gap.unwrap_or(0)),
                    )),
                    Raw::NotApplicable(_) => None,
                })
                .collect();
            if !forecasts.is_empty() {
                ledger.pending = Some(Pending {
                    standing,
                    horizon: day + self.settings.horizon_days,
                    forecasts,
                });
            }
        }
        ctx.emit(&catalog::TIER_FORECASTS, input.key, &record, member.as_of.0)?;
        let grace = member.tier.as_ref().and_then(|t| t.grace_until);
        for opportunity in self.opportunities(&record, grace) {
            if let Some(m) = self.metrics.get() {
                m.opportunity_raised(opportunity.kind.label());
            }
            ctx.emit(
                &catalog::INTERVENTION_OPPORTUNITIES,
                input.key,
                &opportunity,
                member.as_of.0,
            )?;
        }
        ledger.last = Some(record);
        Ok(())
    }

    /// After the population changed: resolve forecasts whose horizon the partition's
    /// stream time has passed (no member-state since means no purchase since), and apply
    /// new calibrators to the last published forecasts.
    fn refresh(
        &self,
        key: &str,
        state: &mut Option<MemberForecasts>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        let Some(ledger) = state.as_mut() else {
            return Ok(());
        };
        let stream_day = ctx
            .population()
            .partitions
            .values()
            .map(|c| c.stream_day)
            .max()
            .unwrap_or(i32::MIN);
        let program = ledger
            .last
            .as_ref()
            .and_then(|l| ctx.table(&tables::PROGRAMS, &l.program_id));
        if let (Some(program), Some(pending)) = (program.as_deref(), ledger.pending.as_ref())
            && pending.horizon <= stream_day
            && let Some(pending) = ledger.pending.take()
        {
            let horizon = pending.horizon;
            let counts = ctx.summary();
            ledger.pending = resolve(
                key,
                pending,
                program,
                horizon,
                &[],
                counts,
                &mut ledger.counted,
            );
        }
        let (version, maps) = self.calibration(ctx);
        if let Some(last) = ledger.last.as_mut()
            && last.calibration_version != version
        {
            for (forecast, map) in last.forecasts.iter_mut().zip(&maps) {
                if let Some(raw) = forecast.raw_probability {
                    forecast.probability = Some(map.apply(raw));
                }
            }
            last.calibration_version = version;
            ctx.emit(&catalog::TIER_FORECASTS, key, &*last, last.as_of.0)?;
        }
        Ok(())
    }
}
