//! Erasing a member takes them out of the partition's population sketch exactly: what is
//! left is what a partition that never saw them holds, so boundaries and segment counts
//! no longer include them.

use cohort::{Cohort, MemberEntry};
use loyalty_contracts::testkit::member;
use loyalty_contracts::{MemberState, Removal, catalog};
use loyalty_runtime::{Agent, Harness, Record};

fn feed(agent: &Cohort, harness: &mut Harness<Cohort>, state: &MemberState) -> Option<MemberEntry> {
    let record = Record::new(&catalog::MEMBER_STATE, &state.member_id, state).expect("record");
    let mut entry = None;
    agent
        .handle(&record.input(), &mut entry, &mut harness.context())
        .expect("handled");
    entry
}

#[test]
fn an_erased_member_leaves_the_population_sketch_as_if_never_seen() {
    let agent = Cohort::default();
    let (m1, m2) = (
        member("m1", 4, 30, 20, 5_000, "gold"),
        member("m2", 1, 60, 200, 2_000, "silver"),
    );
    let mut both = Harness::new(&agent).expect("harness");
    let erased = feed(&agent, &mut both, &m1);
    feed(&agent, &mut both, &m2);
    let mut never = Harness::new(&agent).expect("harness");
    feed(&agent, &mut never, &m2);
    assert_ne!(both.summary, never.summary);

    let forgotten = agent
        .forget("m1", &erased, &mut both.context())
        .expect("forgotten");
    assert_eq!(
        forgotten.removed,
        vec![Removal {
            place: "summary:population_sketch".into(),
            count: 1
        }]
    );
    // The newest day seen is a high-water mark of the partition, not of the member.
    both.summary.stream_day = never.summary.stream_day;
    assert_eq!(both.summary, never.summary);

    // Nothing held, nothing removed.
    let nothing = agent
        .forget("m1", &None, &mut both.context())
        .expect("forgotten");
    assert!(nothing.removed.is_empty());
}
