//! Scoring one member: the population reference (mean values, uplift posteriors, the
//! day members are valued at), the valuations under the population and segment fits,
//! the record with its adjustments, counterfactuals, reconciliation and attestation, and
//! re-scoring when anything it depends on moved.

use std::collections::BTreeMap;

use btyd::params::{MODEL_PARAMS, Published};
use loyalty_contracts::{
    Attestation, InputPosition, InterventionType, MemberLtv, MemberState, catalog, tables, topics,
};
use loyalty_runtime::{Context, HandleError};

use crate::Ltv;
use crate::adjust::{self, Coefficients, SegmentValue};
use crate::attest;
use crate::join::{ForecastSide, MemberJoin, Position, Valuations};
use crate::population::{self, ALL, Contribution, FitRow, Merged};
use crate::reconcile::{self, Views, Weights};
use crate::uplift::{self, Prior};
use crate::value::{self, Horizon, Valuation};

/// Population quantities derived once per population generation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reference {
    generation: u64,
    /// The newest member-state day in the population: the day members are valued at.
    stream_day: i32,
    values: BTreeMap<String, population::ValueSum>,
    posteriors: Vec<uplift::Posterior>,
}

impl Ltv {
    pub(crate) fn prior(&self) -> Prior {
        Prior {
            mean: self.settings.uplift_prior_mean,
            sd: self.settings.uplift_prior_sd,
        }
    }

    /// Mean values and uplift posteriors of the current population.
    pub(crate) fn reference(&self, ctx: &Context<'_, Self>) -> Reference {
        let population = ctx.population();
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

    pub(crate) fn tenure_band(&self, days: i32) -> String {
        let bands = &self.settings.tenure_bands_days;
        match bands.iter().position(|&upper| days < upper) {
            Some(0) => format!("tenure:<{}d", bands[0]),
            Some(i) => format!("tenure:{}-{}d", bands[i - 1], bands[i]),
            None => format!("tenure:{}d+", bands.last().copied().unwrap_or(0)),
        }
    }

    /// The member's model segments: tier, redemption behaviour, tenure band.
    pub(crate) fn segments(&self, state: &MemberState) -> [Option<String>; 3] {
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

    pub(crate) fn horizon(&self) -> Horizon {
        Horizon {
            lifetime_months: self.settings.lifetime_months,
            annual_discount_rate: self.settings.annual_discount_rate,
        }
    }

    /// The record for the member as the join stands, and its contribution to the population.
    pub(crate) fn score(
        &self,
        key: &str,
        join: &MemberJoin,
        rationale: String,
        ctx: &Context<'_, Self>,
    ) -> Result<(MemberLtv, Contribution, Valuations), HandleError> {
        let s = &self.settings;
        let reference = self.reference(ctx);
        let model = ctx.table(&MODEL_PARAMS, ALL);
        let state = join.member.as_ref().map(|(_, m)| m);
        let program = state
            .and_then(|m| m.tier.as_ref())
            .and_then(|t| ctx.table(&tables::PROGRAMS, &t.program_id));
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
    pub(crate) fn valuations(
        &self,
        join: &MemberJoin,
        segments: &[Option<String>; 3],
        margin_ratio: f64,
        day: i32,
        ctx: &Context<'_, Self>,
    ) -> Valuations {
        let state = join.member.as_ref();
        let all = ctx.table(&MODEL_PARAMS, ALL);
        let fits: Vec<Option<std::sync::Arc<Published>>> = segments
            .iter()
            .map(|seg| seg.as_deref().and_then(|seg| ctx.table(&MODEL_PARAMS, seg)))
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
    pub(crate) fn dependencies(&self, join: &MemberJoin, ctx: &Context<'_, Self>) -> u64 {
        let reference = self.reference(ctx);
        let state = join.member.as_ref().map(|(_, m)| m);
        let mut text = String::new();
        let mut segments = vec![Some(ALL.to_owned())];
        segments.extend(state.map(|st| self.segments(st)).unwrap_or_default());
        for seg in segments.iter().flatten() {
            let version = ctx.table(&MODEL_PARAMS, seg).map(|m| m.version.clone());
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
    pub(crate) fn rescore(
        &self,
        key: &str,
        join: &mut MemberJoin,
        rationale: String,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        if join.member.is_none() && join.forecasts.is_none() && join.cohort.is_none() {
            // Every side withdrawn: so is the value.
            if !join.content_hash.is_empty() {
                ctx.tombstone(&catalog::MEMBER_LTV, key);
                join.content_hash.clear();
            }
            if let Some(summary) = ctx.summary() {
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
            ctx.emit(&catalog::MEMBER_LTV, key, &record, record.as_of.0)?;
            if let Some(m) = self.metrics.get() {
                for d in &record.reconciliation.discrepancies {
                    m.value_discrepancy(&d.between);
                }
            }
            join.content_hash = content_hash;
        }
        if contribution != join.contribution {
            if let Some(summary) = ctx.summary() {
                summary.replace(&join.contribution, &contribution);
            }
            join.contribution = contribution;
        }
        Ok(())
    }
}

pub(crate) fn blank_attestation() -> Attestation {
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
