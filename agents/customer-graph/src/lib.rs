//! customer-graph: folds member events, profiles and program rules into one snapshot per
//! member on `loyalty.member-state.v1` (`docs/architecture.md#customer-graph`).
//!
//! The fold is order-insensitive where the math needs it: purchases are kept per UTC day,
//! so a late order lands on its own day and same-day orders merge into one transaction
//! whatever order they arrive in. Duplicates (same `event_id`) are recognised within a
//! bounded window of the member's recent events.
//!
//! Identity: an event names its member in `member_id`; a source system that only knows its
//! own customer id may key the record by that id (and name it in `source_member_id`).
//! Such an event is re-keyed to its member through the runtime's repartition topic before
//! any state is touched, so a member's state is whole however its sources key their
//! records, and the source id is kept as one of the member's identity links.

mod fold;

use loyalty_contracts::{MemberEvent, MemberProfile, Program, catalog, tables, topics};
use loyalty_runtime::{
    Agent, AgentSettings, Context, Forgotten, HandleError, Input, OutputSpec, Rekeys, TableSpec,
};
use serde::{Deserialize, Serialize};

pub use fold::{DaySpend, MemberFold};

/// Settings under `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Program applied to members whose profile has not arrived (or names none).
    pub default_program_id: String,
    /// How many recent event ids per member are remembered for deduplication.
    pub dedupe_window: usize,
    /// Purchase days older than this (relative to the member's newest event) are folded
    /// into aggregates; it bounds both memory and how late an order may arrive and still
    /// merge with an existing same-day transaction. At least the longest tier window.
    pub retention_days: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_program_id: "default".into(),
            dedupe_window: 16,
            retention_days: 400,
        }
    }
}

impl AgentSettings for Settings {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.default_program_id.trim().is_empty() {
            problems.push("default_program_id: must not be empty".into());
        }
        if !(1..=1024).contains(&self.dedupe_window) {
            problems.push(format!(
                "dedupe_window: {} must be between 1 and 1024",
                self.dedupe_window
            ));
        }
        if self.retention_days < 366 {
            problems.push(format!(
                "retention_days: {} must cover at least a year (the longest tier window)",
                self.retention_days
            ));
        }
        problems
    }
}

/// The agent.
#[derive(Debug, Clone)]
pub struct CustomerGraph {
    settings: Settings,
}

impl CustomerGraph {
    pub fn new(settings: &Settings) -> Self {
        CustomerGraph {
            settings: settings.clone(),
        }
    }

    fn program(
        &self,
        ctx: &Context<'_, Self>,
        fold: &MemberFold,
    ) -> Option<std::sync::Arc<Program>> {
        let id = fold
            .program_id
            .as_deref()
            .unwrap_or(&self.settings.default_program_id);
        ctx.table(&tables::PROGRAMS, id)
    }
}

impl Agent for CustomerGraph {
    type State = MemberFold;
    type Settings = Settings;
    type Summary = ();
    type Rekeying = Rekeys;
    const NAME: &'static str = "customer-graph";
    const STORE: &'static str = "members";

    fn inputs(&self) -> Vec<&'static str> {
        vec![
            topics::MEMBER_EVENTS,
            topics::MEMBER_PROFILES,
            topics::ERASURE_REQUESTS,
        ]
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![tables::PROGRAMS.spec()]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![catalog::MEMBER_STATE.output()]
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<MemberFold>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        match input.topic {
            topics::MEMBER_EVENTS => {
                let event: MemberEvent = input.decode()?;
                fold::validate(&event)?;
                ctx.check_event_time(input, "occurred_at", event.occurred_at.0)?;
                if event.member_id != input.key {
                    // Keyed by another id (a source system's own, say): the event belongs
                    // to its member and reaches that member's state through the
                    // repartition topic, before any state is touched.
                    return ctx.rekey(&event.member_id);
                }
                let fold = state.get_or_insert_with(MemberFold::default);
                if !fold.apply_event(&event, &self.settings)? {
                    return Ok(()); // a duplicate: nothing changes, nothing is emitted
                }
                let program = self.program(ctx, fold);
                if let loyalty_contracts::Payload::TierChanged(change) = &event.payload {
                    fold.apply_tier_change(change, program.as_deref(), event.occurred_at)?;
                }
                fold.evaluate_tier(program.as_deref());
                let snapshot = fold.snapshot(input.key, program.as_deref());
                ctx.emit(
                    &catalog::MEMBER_STATE,
                    input.key,
                    &snapshot,
                    snapshot.as_of.0,
                )?;
            }
            topics::MEMBER_PROFILES => {
                if input.is_tombstone() {
                    return Ok(());
                }
                let profile: MemberProfile =
                    input.decode_keyed("member_id", |v: &MemberProfile| &v.member_id)?;
                fold::validate_profile(&profile)?;
                ctx.check_event_time(input, "updated_at", profile.updated_at.0)?;
                let fold = state.get_or_insert_with(MemberFold::default);
                fold.apply_profile(&profile);
                let program = self.program(ctx, fold);
                fold.evaluate_tier(program.as_deref());
                let snapshot = fold.snapshot(input.key, program.as_deref());
                ctx.emit(
                    &catalog::MEMBER_STATE,
                    input.key,
                    &snapshot,
                    snapshot.as_of.0,
                )?;
            }
            other => {
                return Err(HandleError::Fatal(format!(
                    "unexpected input topic {other}"
                )));
            }
        }
        Ok(())
    }

    /// A profile flagged as a re-enrolment brings an erased member back, fresh.
    fn reenrolment(&self, input: &Input<'_>) -> Option<i64> {
        loyalty_contracts::reenrolment(input)
    }

    /// The member's source ids (`<source>:<id>` links; records arrive keyed by the id)
    /// are erased with them, so an event a source still sends under one is dropped.
    fn forget(
        &self,
        _key: &str,
        state: &Option<MemberFold>,
        _ctx: &mut Context<'_, Self>,
    ) -> Result<Forgotten, HandleError> {
        let linked_ids = state
            .iter()
            .flat_map(|fold| &fold.identity_links)
            .filter_map(|link| loyalty_contracts::linked_id(link).map(str::to_owned))
            .collect();
        Ok(Forgotten {
            linked_ids,
            ..Forgotten::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_contracts::{OrderPlaced, Payload, Timestamp};
    use loyalty_runtime::{Harness, Record};

    /// Handle one order of member `m` from the point-of-sale system, written under `key`.
    fn handle_keyed(key: &str) -> (Option<MemberFold>, Harness<CustomerGraph>, Option<String>) {
        let event = MemberEvent {
            event_id: "e1".into(),
            member_id: "m".into(),
            brand_id: "b".into(),
            occurred_at: Timestamp(870_000_000_000),
            source: "pos".into(),
            source_member_id: Some("card-1".into()),
            payload: Payload::OrderPlaced(OrderPlaced {
                order_id: "o1".into(),
                amount_minor: 1_000,
                currency: "USD".into(),
                margin_minor: None,
                items: 1,
                location_id: None,
                product_line: None,
            }),
        };
        let record = Record::new(&catalog::MEMBER_EVENTS, key, &event).unwrap();
        let agent = CustomerGraph::new(&Settings::default());
        let mut harness = Harness::new(&agent).unwrap();
        let mut state = None;
        let mut ctx = harness.context();
        agent.handle(&record.input(), &mut state, &mut ctx).unwrap();
        let rekeyed = ctx.rekeyed().map(str::to_owned);
        (state, harness, rekeyed)
    }

    #[test]
    fn an_event_keyed_by_a_source_id_is_rekeyed_before_state_is_touched() {
        let (state, harness, rekeyed) = handle_keyed("card-1");
        assert_eq!(rekeyed.as_deref(), Some("m"));
        assert!(state.is_none() && harness.emitted.is_empty());

        let (state, mut harness, rekeyed) = handle_keyed("m");
        assert_eq!(rekeyed, None);
        assert_eq!(
            state.as_ref().unwrap().identity_links,
            vec!["pos:card-1".to_owned()]
        );
        // Erasing the member erases the id its point-of-sale records arrive under.
        let agent = CustomerGraph::new(&Settings::default());
        let forgotten = agent
            .forget("m", &state, &mut harness.context())
            .expect("forgotten");
        assert_eq!(forgotten.linked_ids, vec!["card-1".to_owned()]);
        assert_eq!(harness.emitted.len(), 1);
    }
}
