//! cohort: population-relative RFM scores, the eleven named segments, lifecycle stages
//! relative to each member's own purchase rhythm, acquisition cohorts, and statistics per
//! cohort and segment (`docs/architecture.md#cohort`).
//!
//! RFM needs population-wide boundaries. Each partition keeps deletable sketches of its
//! members' recency, frequency and monetary values (`sketch`); the runtime shares them, so
//! every instance scores against the merge of all partitions. When the population moves,
//! every member is re-scored (`refresh`), so once input stops the scores are the same
//! however many instances share the work.

pub mod rules;
pub mod sketch;

use std::collections::BTreeMap;
use std::sync::Mutex;

use loyalty_contracts::{
    CohortStats, Date, MemberCohort, MemberState, Segment, Timestamp, catalog, topics,
};
use loyalty_runtime::{
    Agent, Context, Forgotten, HandleError, Input, KeepsKeys, NoSettings, OutputSpec,
    PartitionSummary, Population, Rejection,
};
use serde::{Deserialize, Serialize};

use sketch::{Cdf, Histogram, log_bucket, log_value, quintile};

/// One acquisition cohort and segment's share of a partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub members: u64,
    /// Sums over the cell's members: `i128`, so no population of `i64` amounts can
    /// overflow them (postcard writes both as the same varint, so older summaries read).
    pub spend: i128,
    pub margin: i128,
    pub spend_sketch: Histogram,
    pub margin_sketch: Histogram,
    /// Months from the acquisition month to the last purchase month, per member.
    pub active_months: Histogram,
}

/// Shared between instances: the population's boundaries are merged from every
/// partition's sketch.
impl PartitionSummary for PopulationSketch {}

/// A partition's summary: what the population boundaries and statistics are merged from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PopulationSketch {
    /// Newest member-state day seen in the partition.
    pub stream_day: i32,
    pub last_purchase: Histogram,
    pub frequency: Histogram,
    pub monetary: Histogram,
    /// Mean days between purchases of repeat buyers.
    pub interpurchase: Histogram,
    pub cells: BTreeMap<(String, Segment), Cell>,
}

/// What a member adds to the partition summary, kept so it can be taken back out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub last_purchase: i32,
    pub frequency: i32,
    pub monetary: i32,
    pub interpurchase: Option<i32>,
    pub cell: (String, Segment),
    pub spend: i64,
    pub margin: i64,
    pub active_months: i32,
}

/// The facts of a member-state that scoring needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub first_purchase: i32,
    pub last_purchase: i32,
    pub x: i32,
    pub t_x_days: i32,
    pub monetary_minor: f64,
    pub spend: i64,
    pub margin: i64,
    /// Purchase day before the last one, when still in the qualifying window.
    pub previous_purchase: Option<i32>,
    pub as_of_day: i32,
}

/// cohort's state for one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub facts: Facts,
    pub contribution: Contribution,
    pub last: MemberCohort,
}

/// The population merged from every partition, and what is derived from it.
#[derive(Debug, Clone)]
struct Boundaries {
    generation: u64,
    now: i32,
    last_purchase: Cdf,
    frequency: Cdf,
    monetary: Cdf,
    median_interpurchase: f64,
    version: String,
}

/// The agent.
#[derive(Debug, Default)]
pub struct Cohort {
    boundaries: Mutex<Option<Boundaries>>,
}

impl Cohort {
    pub fn new(_: &NoSettings) -> Self {
        Cohort::default()
    }

    fn boundaries(&self, population: &Population<PopulationSketch>) -> Boundaries {
        let generation = population.generation;
        if let Ok(cached) = self.boundaries.lock()
            && let Some(b) = cached.as_ref().filter(|b| b.generation == generation)
        {
            return b.clone();
        }
        let mut merged = PopulationSketch::default();
        for part in population.partitions.values() {
            merged.stream_day = merged.stream_day.max(part.stream_day);
            merged.last_purchase.merge(&part.last_purchase);
            merged.frequency.merge(&part.frequency);
            merged.monetary.merge(&part.monetary);
            merged.interpurchase.merge(&part.interpurchase);
        }
        let identity = format!(
            "{:?}{:?}{:?}{:?}{}",
            merged.last_purchase,
            merged.frequency,
            merged.monetary,
            merged.interpurchase,
            merged.stream_day
        );
        let boundaries = Boundaries {
            generation,
            now: merged.stream_day,
            median_interpurchase: merged.interpurchase.quantile(0.5).map_or(30.0, f64::from),
            last_purchase: Cdf::of(&merged.last_purchase),
            frequency: Cdf::of(&merged.frequency),
            monetary: Cdf::of(&merged.monetary),
            version: format!("{:016x}", loyalty_contracts::fnv1a(&identity)),
        };
        if let Ok(mut cached) = self.boundaries.lock() {
            *cached = Some(boundaries.clone());
        }
        boundaries
    }

    /// The member's record against `b`, and what the member contributes to the summary.
    fn score(member_id: &str, f: &Facts, b: &Boundaries) -> (MemberCohort, Contribution) {
        let now = b.now.max(f.as_of_day);
        let frequency = f.x + 1;
        let monetary = log_bucket(f.monetary_minor);
        let recency_score = quintile(b.last_purchase.position(f.last_purchase));
        let frequency_score = quintile(b.frequency.position(frequency));
        let monetary_score = quintile(b.monetary.position(monetary));
        let segment = rules::segment(recency_score, frequency_score, monetary_score);
        let own = (f.x > 0).then(|| f64::from(f.t_x_days) / f64::from(f.x));
        let last_gap = f.previous_purchase.map(|p| f.last_purchase - p);
        let typical_before = match (f.x, last_gap) {
            (x, Some(gap)) if x >= 2 => f64::from(f.t_x_days - gap) / f64::from(x - 1),
            _ => b.median_interpurchase,
        };
        let typical = own.unwrap_or(b.median_interpurchase);
        let days_since_last = now - f.last_purchase;
        let lifecycle = rules::lifecycle(rules::Rhythm {
            x: f.x,
            typical,
            days_since_last,
            last_gap,
            typical_before,
        });
        let (y, m, _) = Date(f.first_purchase).ymd();
        let cohort = format!("{y:04}-{m:02}");
        let month = |day: i32| {
            let (y, m, _) = Date(day).ymd();
            y * 12 + m as i32
        };
        let record = MemberCohort {
            member_id: member_id.to_owned(),
            as_of: Date(now).start(),
            recency_score,
            frequency_score,
            monetary_score,
            segment,
            lifecycle,
            typical_interpurchase_days: typical,
            days_since_last_purchase: days_since_last,
            acquisition_cohort: cohort.clone(),
            first_purchase: Date(f.first_purchase),
            boundaries_version: b.version.clone(),
        };
        let contribution = Contribution {
            last_purchase: f.last_purchase,
            frequency,
            monetary,
            interpurchase: own.map(|d| d.round() as i32),
            cell: (cohort, segment),
            spend: f.spend,
            margin: f.margin,
            active_months: month(f.last_purchase) - month(f.first_purchase),
        };
        (record, contribution)
    }
}

/// Add a member's contribution (`add`) or take it back out.
fn apply(summary: &mut PopulationSketch, c: &Contribution, add: bool) {
    let edit = |h: &mut Histogram, bucket: i32| {
        if add { h.add(bucket) } else { h.remove(bucket) }
    };
    edit(&mut summary.last_purchase, c.last_purchase);
    edit(&mut summary.frequency, c.frequency);
    edit(&mut summary.monetary, c.monetary);
    if let Some(days) = c.interpurchase {
        edit(&mut summary.interpurchase, days);
    }
    apply_cell(summary, c, add);
}

fn apply_cell(summary: &mut PopulationSketch, c: &Contribution, add: bool) {
    let cell = summary.cells.entry(c.cell.clone()).or_default();
    let sign = if add { 1 } else { -1 };
    let edit = |h: &mut Histogram, bucket: i32| {
        if add { h.add(bucket) } else { h.remove(bucket) }
    };
    cell.members = if add {
        cell.members + 1
    } else {
        cell.members.saturating_sub(1)
    };
    cell.spend += sign * i128::from(c.spend);
    cell.margin += sign * i128::from(c.margin);
    edit(&mut cell.spend_sketch, log_bucket(c.spend as f64));
    edit(&mut cell.margin_sketch, log_bucket(c.margin as f64));
    edit(&mut cell.active_months, c.active_months);
    if cell.members == 0 {
        summary.cells.remove(&c.cell);
    }
}

impl Facts {
    /// What makes these facts impossible for a real member: scoring subtracts days and
    /// counts purchases, so each must lie where that arithmetic cannot overflow (days
    /// from 1970 in order up to as_of, counts that leave room for one more).
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(0..i32::MAX).contains(&self.x) {
            problems.push(format!("btyd.x {} is out of range", self.x));
        }
        if self.first_purchase < 0 {
            problems.push(format!(
                "first purchase day {} is before 1970",
                self.first_purchase
            ));
        }
        if self.first_purchase > self.last_purchase || self.last_purchase > self.as_of_day {
            problems.push(format!(
                "purchase days out of order: first {}, last {}, as_of {}",
                self.first_purchase, self.last_purchase, self.as_of_day
            ));
        }
        if !(0..=self.last_purchase.saturating_sub(self.first_purchase)).contains(&self.t_x_days) {
            problems.push(format!("btyd.t_x_days {} is out of range", self.t_x_days));
        }
        if self
            .previous_purchase
            .is_some_and(|p| p < self.first_purchase || p > self.last_purchase)
        {
            problems.push("the previous purchase day lies outside first..last".into());
        }
        problems
    }
}

fn facts(state: &MemberState) -> Option<Facts> {
    let b = state.btyd.as_ref()?;
    let rfm = state.rfm.as_ref()?;
    let previous_purchase = state
        .tier
        .as_ref()
        .and_then(|t| t.qualifying_days.as_ref())
        .and_then(|days| {
            days.iter()
                .filter(|d| d.amount > 0 && d.day < b.last_purchase)
                .map(|d| d.day.0)
                .max()
        });
    Some(Facts {
        first_purchase: b.first_purchase.0,
        last_purchase: b.last_purchase.0,
        x: b.x,
        t_x_days: b.t_x_days,
        monetary_minor: rfm.monetary_minor,
        spend: state.spend_minor,
        margin: state.margin_minor,
        previous_purchase,
        as_of_day: state.as_of.day().0,
    })
}

impl Agent for Cohort {
    type State = MemberEntry;
    type Settings = NoSettings;
    type Summary = PopulationSketch;
    type Rekeying = KeepsKeys;
    const NAME: &'static str = "cohort";
    const STORE: &'static str = "members";

    fn inputs(&self) -> Vec<&'static str> {
        vec![topics::MEMBER_STATE, topics::ERASURE_REQUESTS]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![catalog::COHORTS.output(), catalog::COHORT_STATS.output()]
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<MemberEntry>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        let fresh = if input.is_tombstone() {
            None
        } else {
            let member: MemberState =
                input.decode_keyed("member_id", |m: &MemberState| &m.member_id)?;
            ctx.check_event_time(input, "as_of", member.as_of.0)?;
            match facts(&member) {
                Some(f) => {
                    let problems = f.problems();
                    if !problems.is_empty() {
                        return Err(Rejection::contract(problems.join("; ")).into());
                    }
                    Some(f)
                }
                // No purchase yet: nothing to score.
                None => return Ok(()),
            }
        };
        let boundaries = self.boundaries(ctx.population());
        let Some(summary) = ctx.summary() else {
            return Err(HandleError::Fatal(
                "cohort runs without its partition summary".into(),
            ));
        };
        if let Some(old) = state.take() {
            apply(summary, &old.contribution, false);
        }
        let Some(facts) = fresh else {
            // Erasure upstream: the member leaves the population and the topic.
            ctx.tombstone(&catalog::COHORTS, input.key);
            return Ok(());
        };
        summary.stream_day = summary.stream_day.max(facts.as_of_day);
        let (record, contribution) = Cohort::score(input.key, &facts, &boundaries);
        apply(summary, &contribution, true);
        ctx.emit(&catalog::COHORTS, input.key, &record, record.as_of.0)?;
        *state = Some(MemberEntry {
            facts,
            contribution,
            last: record,
        });
        Ok(())
    }

    /// Erasure: the member's buckets leave the sketches and their cohort cell, so the
    /// boundaries and segment counts no longer include them.
    fn forget(
        &self,
        _key: &str,
        state: &Option<MemberEntry>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<Forgotten, HandleError> {
        let mut forgotten = Forgotten::default();
        if let Some(entry) = state {
            let summary = ctx.summary().ok_or_else(|| {
                HandleError::Fatal("cohort runs without its partition summary".into())
            })?;
            apply(summary, &entry.contribution, false);
            forgotten.removed("summary:population_sketch", 1);
        }
        Ok(forgotten)
    }

    fn refresh(
        &self,
        key: &str,
        state: &mut Option<MemberEntry>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        let Some(entry) = state.as_mut() else {
            return Ok(());
        };
        let boundaries = self.boundaries(ctx.population());
        let (record, contribution) = Cohort::score(key, &entry.facts, &boundaries);
        if record == entry.last {
            return Ok(());
        }
        if contribution.cell != entry.contribution.cell
            && let Some(summary) = ctx.summary()
        {
            apply_cell(summary, &entry.contribution, false);
            apply_cell(summary, &contribution, true);
        }
        ctx.emit(&catalog::COHORTS, key, &record, record.as_of.0)?;
        entry.contribution = contribution;
        entry.last = record;
        Ok(())
    }

    /// cohort-stats: every acquisition cohort and segment of the merged population.
    fn publish(&self, ctx: &mut Context<'_, Self>) -> Result<(), HandleError> {
        let population = ctx.population();
        let now = population
            .partitions
            .values()
            .map(|p| p.stream_day)
            .max()
            .unwrap_or(0);
        let mut cells: BTreeMap<(String, Segment), Cell> = BTreeMap::new();
        for part in population.partitions.values() {
            for (key, cell) in &part.cells {
                let merged = cells.entry(key.clone()).or_default();
                merged.members += cell.members;
                merged.spend += cell.spend;
                merged.margin += cell.margin;
                merged.spend_sketch.merge(&cell.spend_sketch);
                merged.margin_sketch.merge(&cell.margin_sketch);
                merged.active_months.merge(&cell.active_months);
            }
        }
        for ((cohort, segment), cell) in cells {
            let n = cell.members.max(1) as f64;
            let months = cell.active_months.max_bucket().unwrap_or(0).max(0);
            let stats = CohortStats {
                acquisition_cohort: cohort.clone(),
                segment,
                as_of: Timestamp(Date(now).start().0),
                size: cell.members as i64,
                retention: (0..=months)
                    .map(|k| cell.active_months.share_at_least(k))
                    .collect(),
                mean_spend_minor: cell.spend as f64 / n,
                median_spend_minor: cell.spend_sketch.quantile(0.5).map_or(0.0, log_value),
                mean_margin_minor: cell.margin as f64 / n,
                median_margin_minor: cell.margin_sketch.quantile(0.5).map_or(0.0, log_value),
            };
            let key = format!("{cohort}|{}", segment.label());
            ctx.emit(&catalog::COHORT_STATS, &key, &stats, stats.as_of.0)?;
        }
        Ok(())
    }
}
