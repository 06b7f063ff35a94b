//! Erasing a member takes their resolved forecasts back out of the partition's
//! calibration counts exactly: what is left is what a partition that never saw them
//! holds, so the next calibrators are fitted without them.

use btyd::params::{MODEL_PARAMS, Published};
use loyalty_contracts::testkit::member;
use loyalty_contracts::{MemberState, Program, catalog, tables};
use loyalty_runtime::{Agent, Harness, Record};
use tier_transition::ledger::MemberForecasts;
use tier_transition::{Settings, TierTransition};

fn rig(agent: &TierTransition) -> Harness<TierTransition> {
    let harness = Harness::new(agent).expect("harness");
    harness.put_table(&MODEL_PARAMS, "all", Published::cdnow("all-v1"));
    harness.put_table(&tables::PROGRAMS, "p", Program::three_tier_spend("p"));
    harness
}

/// `id`'s member-state observed `idle` days after its last purchase, then a year later
/// (every forecast's horizon passed, so each is resolved and counted).
fn resolved(
    agent: &TierTransition,
    harness: &mut Harness<TierTransition>,
    id: &str,
    value: i64,
) -> Option<MemberForecasts> {
    let mut state = None;
    for (offset, idle) in [(0, 20), (1, 400)] {
        let m: MemberState = member(id, 4, 30, idle, value, "gold");
        let record = Record::new(&catalog::MEMBER_STATE, id, &m)
            .expect("record")
            .at(offset);
        agent
            .handle(&record.input(), &mut state, &mut harness.context())
            .expect("handled");
    }
    state
}

#[test]
fn an_erased_members_forecasts_leave_the_calibration_counts_as_if_never_seen() {
    let agent = TierTransition::new(&Settings::default());
    let mut both = rig(&agent);
    let erased = resolved(&agent, &mut both, "m1", 5_000);
    resolved(&agent, &mut both, "m2", 20_000);
    let mut never = rig(&agent);
    resolved(&agent, &mut never, "m2", 20_000);
    assert_ne!(both.summary, never.summary);

    let forgotten = agent
        .forget("m1", &erased, &mut both.context())
        .expect("forgotten");
    let [removal] = forgotten.removed.as_slice() else {
        panic!("one removal, not {:?}", forgotten.removed);
    };
    assert_eq!(removal.place, "summary:calibration_counts");
    assert!(removal.count > 0);
    // The newest day seen is the partition's high-water mark, not the member's.
    both.summary.stream_day = never.summary.stream_day;
    assert_eq!(both.summary, never.summary);
}
