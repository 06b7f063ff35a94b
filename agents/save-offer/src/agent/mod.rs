//! The save-offer agent: joins what the swarm knows about a member, and when an
//! intervention opportunity or a cancellation request arrives, proposes the offer worth
//! most to the operator (`docs/architecture.md#save-offer`).
//!
//! Files: `state` (what is kept per member, per ledger and per partition), `decide` (one
//! decision: selection, experiments, the claim or the proposal), `learn` (holdings,
//! outcomes and suppression from the member's events and the proposals topic), `readout`
//! (the experiments' readouts on the partition-0 owner).

mod decide;
mod learn;
mod readout;
pub mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cohort::sketch::{Cdf, Histogram};
use loyalty_contracts::{
    CatalogOffer, InterventionOpportunity, MemberCohort, MemberEvent, MemberLtv, MemberProfile,
    MemberState, OfferProposal, Payload, catalog, tables, topics,
};
use loyalty_runtime::{
    Agent, Context, Forgotten, HandleError, Input, OutputSpec, Population, Rejection, Rekeys,
    TableSpec, Topic,
};

use crate::bandit::ArmStats;
use crate::ledger::LedgerClaim;
use crate::member::{CohortFacts, LtvFacts, ProfileFacts, StateFacts};
use crate::metrics::SaveOfferMetrics;
use crate::settings::Settings;
use crate::tables::{CATALOG, FX_RATES, FxTable};
use state::{Entry, LEDGER_PREFIX, OfferSummary};

/// The internal topic claims travel on to the task that owns their ledger.
pub const CLAIMS: Topic<LedgerClaim> =
    Topic::stream("save-offer.claims-repartition").member_keyed();

/// The population as merged from every partition's summary, kept per generation.
#[derive(Debug, Default)]
struct Merged {
    generation: u64,
    arms: BTreeMap<crate::bandit::ArmKey, ArmStats>,
    lifetime_margin: Cdf,
    /// The newest proposal's event time in any partition.
    newest_ms: i64,
    /// Every ledger's standing as its task last published it.
    ledgers: BTreeMap<String, crate::ledger::LedgerStanding>,
}

/// The catalog and FX table as of one tables generation.
struct Snapshot {
    generation: u64,
    offers: Vec<Arc<CatalogOffer>>,
    fx: Arc<FxTable>,
    /// Every experiment's arms (offer ids), so a decision need not scan the catalog.
    arms: BTreeMap<String, Vec<String>>,
}

/// The agent.
pub struct SaveOffer {
    settings: Settings,
    merged: Mutex<Option<Arc<Merged>>>,
    snapshot: Mutex<Option<Arc<Snapshot>>>,
    metrics: std::sync::OnceLock<SaveOfferMetrics>,
    readouts: Mutex<readout::Published>,
}

impl std::fmt::Debug for SaveOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaveOffer")
            .field("settings", &self.settings)
            .finish()
    }
}

impl SaveOffer {
    pub fn new(settings: &Settings) -> Self {
        SaveOffer {
            settings: settings.clone(),
            merged: Mutex::new(None),
            snapshot: Mutex::new(None),
            metrics: std::sync::OnceLock::new(),
            readouts: Mutex::new(readout::Published::default()),
        }
    }

    fn merged(&self, population: &Population<OfferSummary>) -> Arc<Merged> {
        if let Ok(cached) = self.merged.lock()
            && let Some(m) = cached
                .as_ref()
                .filter(|m| m.generation == population.generation)
        {
            return Arc::clone(m);
        }
        let mut arms: BTreeMap<crate::bandit::ArmKey, ArmStats> = BTreeMap::new();
        let mut margins = Histogram::default();
        let mut newest_ms = 0;
        let mut ledgers = BTreeMap::new();
        for part in population.partitions.values() {
            newest_ms = newest_ms.max(part.newest_ms);
            // A ledger lives in one partition: its key's.
            ledgers.extend(part.ledgers.iter().map(|(k, v)| (k.clone(), v.clone())));
            for (key, stats) in &part.arms {
                arms.entry(key.clone()).or_default().merge(stats);
            }
            margins.merge(&part.lifetime_margin);
        }
        let merged = Arc::new(Merged {
            generation: population.generation,
            arms,
            lifetime_margin: Cdf::of(&margins),
            newest_ms,
            ledgers,
        });
        if let Ok(mut cached) = self.merged.lock() {
            *cached = Some(Arc::clone(&merged));
        }
        merged
    }

    fn snapshot(&self, ctx: &Context<'_, Self>) -> Arc<Snapshot> {
        let generation = ctx.tables_generation();
        if let Ok(cached) = self.snapshot.lock()
            && let Some(s) = cached.as_ref().filter(|s| s.generation == generation)
        {
            return Arc::clone(s);
        }
        let offers: Vec<Arc<CatalogOffer>> = ctx
            .table_values(&CATALOG)
            .into_iter()
            .map(|(_, o)| o)
            .collect();
        let fx = Arc::new(FxTable::of(&ctx.table_values(&FX_RATES)));
        let mut arms: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for o in &offers {
            if let Some(x) = &o.experiment {
                arms.entry(x.experiment_id.clone())
                    .or_default()
                    .push(o.offer_id.clone());
            }
        }
        let snapshot = Arc::new(Snapshot {
            generation,
            arms,
            offers,
            fx,
        });
        if let Ok(mut cached) = self.snapshot.lock() {
            *cached = Some(Arc::clone(&snapshot));
        }
        snapshot
    }

    fn metrics(&self) -> Option<&SaveOfferMetrics> {
        self.metrics.get()
    }
}

/// The population-relative decile (1..=10) of a lifetime margin.
fn decile(cdf: &Cdf, bucket: i32) -> i32 {
    cohort::sketch::quantile_group(cdf.position(bucket), 10)
}

impl Agent for SaveOffer {
    type State = Entry;
    type Settings = Settings;
    type Summary = OfferSummary;
    type Rekeying = Rekeys;
    const NAME: &'static str = "save-offer";
    const STORE: &'static str = "members";

    fn inputs(&self) -> Vec<&'static str> {
        vec![
            topics::INTERVENTION_OPPORTUNITIES,
            topics::MEMBER_EVENTS,
            topics::MEMBER_PROFILES,
            topics::MEMBER_STATE,
            topics::COHORTS,
            topics::MEMBER_LTV,
            topics::OFFER_PROPOSALS,
            topics::ERASURE_REQUESTS,
        ]
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![CATALOG.spec(), FX_RATES.spec(), tables::PROGRAMS.spec()]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![
            catalog::OFFER_PROPOSALS.output(),
            catalog::OFFER_READOUTS.output(),
        ]
    }

    fn internal_topics(&self) -> Vec<OutputSpec> {
        vec![CLAIMS.output()]
    }

    fn register_metrics(
        &self,
        metrics: &loyalty_runtime::metrics::Metrics,
    ) -> Result<(), loyalty_runtime::prometheus::Error> {
        let registered = SaveOfferMetrics::register(metrics)?;
        let _ = self.metrics.set(registered);
        Ok(())
    }

    /// A profile flagged as a re-enrolment brings an erased member back, fresh.
    fn reenrolment(&self, input: &Input<'_>) -> Option<i64> {
        loyalty_contracts::reenrolment(input)
    }

    /// Erasure: the member's lifetime-margin bucket leaves the decile sketch and their
    /// pulls and rewards leave the arms' statistics, so deciles and the bandits'
    /// posteriors no longer include them.
    fn forget(
        &self,
        _key: &str,
        state: &Option<Entry>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<Forgotten, HandleError> {
        let mut forgotten = Forgotten::default();
        let Some(Entry::Member(entry)) = state else {
            return Ok(forgotten);
        };
        let summary = ctx.summary().ok_or_else(|| {
            HandleError::Fatal("save-offer runs without its partition summary".into())
        })?;
        if let Some(bucket) = entry.ltv_bucket {
            summary.lifetime_margin.remove(bucket);
            forgotten.removed("summary:lifetime_margin", 1);
        }
        for (key, share) in &entry.arm_shares {
            if let Some(arm) = summary.arms.get_mut(key) {
                arm.withdraw(share);
                if arm.pulls == 0 && arm.conversions == 0 {
                    summary.arms.remove(key);
                }
            }
        }
        forgotten.removed("summary:bandit_arms", entry.arm_shares.len() as i64);
        Ok(forgotten)
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<Entry>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        if input.topic == CLAIMS.name {
            return decide::settle_claim(self, input, state, ctx);
        }
        if input.key.starts_with(LEDGER_PREFIX) {
            return Err(Rejection::contract(format!(
                "member ids starting {LEDGER_PREFIX:?} are reserved for save-offer's ledgers ({:?})",
                input.key
            ))
            .into());
        }
        let entry = match state.get_or_insert_with(|| Entry::Member(Box::default())) {
            Entry::Member(m) => m,
            Entry::Ledger(_) => {
                return Err(HandleError::Fatal(format!(
                    "key {:?} holds a ledger",
                    input.key
                )));
            }
        };
        match input.topic {
            topics::MEMBER_PROFILES => {
                entry.profile = if input.is_tombstone() {
                    None
                } else {
                    let p: MemberProfile =
                        input.decode_keyed("member_id", |p: &MemberProfile| &p.member_id)?;
                    Some(ProfileFacts::checked(&p).map_err(|problems| {
                        Rejection::contract(format!("profile: {}", problems.join("; ")))
                    })?)
                };
            }
            topics::MEMBER_STATE => {
                entry.state = if input.is_tombstone() {
                    None
                } else {
                    let s: MemberState =
                        input.decode_keyed("member_id", |s: &MemberState| &s.member_id)?;
                    ctx.check_event_time(input, "as_of", s.as_of.0)?;
                    Some(StateFacts::of(&s))
                };
            }
            topics::COHORTS => {
                entry.cohort = if input.is_tombstone() {
                    None
                } else {
                    let c: MemberCohort =
                        input.decode_keyed("member_id", |c: &MemberCohort| &c.member_id)?;
                    Some(CohortFacts::of(&c))
                };
            }
            topics::MEMBER_LTV => {
                let ltv = if input.is_tombstone() {
                    None
                } else {
                    let l: MemberLtv =
                        input.decode_keyed("member_id", |l: &MemberLtv| &l.member_id)?;
                    Some(LtvFacts::of(&l))
                };
                let bucket = ltv.as_ref().map(|l| {
                    cohort::sketch::log_bucket(l.adjusted_lifetime_margin_minor.max(0) as f64)
                });
                let before = entry.ltv_bucket;
                entry.ltv_bucket = bucket;
                entry.ltv = ltv;
                if entry.ltv.as_ref().is_some_and(LtvFacts::is_final) && !entry.deferred.is_empty()
                {
                    decide::decide_deferred(self, input.key, entry, ctx)?;
                }
                // Last, once nothing can reject the record: the runtime undoes state,
                // not the summary.
                if let Some(summary) = ctx.summary() {
                    if let Some(old) = before {
                        summary.lifetime_margin.remove(old);
                    }
                    if let Some(new) = bucket {
                        summary.lifetime_margin.add(new);
                    }
                }
            }
            topics::INTERVENTION_OPPORTUNITIES => {
                let o: InterventionOpportunity =
                    input.decode_keyed("member_id", |o: &InterventionOpportunity| &o.member_id)?;
                ctx.check_event_time(input, "as_of", o.as_of.0)?;
                decide::opportunity(self, input.key, &o, input.timestamp, entry, ctx)?;
            }
            topics::OFFER_PROPOSALS => {
                let p: OfferProposal =
                    input.decode_keyed("member_id", |p: &OfferProposal| &p.member_id)?;
                learn::proposal_seen(&p, entry, ctx);
            }
            topics::MEMBER_EVENTS => {
                let event: MemberEvent = input.decode()?;
                if event.member_id != input.key {
                    // Keyed by a source system's id: handled under the member's key.
                    return ctx.rekey(&event.member_id);
                }
                ctx.check_event_time(input, "occurred_at", event.occurred_at.0)?;
                if !entry.first_sight(&event.event_id, self.settings.remembered_triggers) {
                    return Ok(());
                }
                if let Payload::CancellationRequested(request) = &event.payload {
                    decide::cancellation(
                        self,
                        input.key,
                        &event,
                        request,
                        input.timestamp,
                        entry,
                        ctx,
                    )?;
                } else {
                    learn::member_event(self, &event, entry, ctx);
                }
            }
            other => {
                return Err(HandleError::Fatal(format!(
                    "not an input of save-offer: {other}"
                )));
            }
        }
        Ok(())
    }

    fn on_timer(
        &self,
        key: &str,
        timer: &loyalty_runtime::Timer,
        state: &mut Option<Entry>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        if timer.name != decide::JOIN_WAIT {
            return Ok(());
        }
        // Catching up (a replay, a backlog), the wall clock is long past the wait while
        // the member's value may be a few records on: wait in stream time then.
        if ctx.stream_time() < timer.at {
            return ctx.schedule(
                decide::JOIN_WAIT,
                loyalty_runtime::Clock::StreamTime,
                timer.at,
            );
        }
        match state {
            // The wait is over: decide with what is known; the proposal says what is not.
            Some(Entry::Member(entry)) => {
                let ltv = if entry.ltv.is_some() {
                    "unvalued"
                } else {
                    "missing"
                };
                let kinds: Vec<_> = entry.deferred.iter().map(|d| d.kind).collect();
                decide::decide_deferred(self, key, entry, ctx)?;
                // Counted once decided: a failed batch is handled again.
                if let Some(m) = self.metrics() {
                    for kind in kinds {
                        m.join_wait_expired(kind, ltv);
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn publish(&self, ctx: &mut Context<'_, Self>) -> Result<(), HandleError> {
        readout::publish(self, ctx)
    }
}
