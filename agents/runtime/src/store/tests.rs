//! Tests of `store`.

use super::*;

#[test]
fn changes_round_trip_through_the_changelog() {
    let mut store: PartitionStore<u64> = PartitionStore::new(2);
    let e = store.entry("m1");
    e.state = Some(42);
    e.positions[1] = 7;
    store.mark_dirty("m1");
    let changes = store.drain_changes().unwrap();
    assert_eq!(changes.len(), 1);
    assert!(store.bytes() > 0);

    let mut restored: PartitionStore<u64> = PartitionStore::new(2);
    restored.restore("m1", changes[0].1.as_deref()).unwrap();
    let entry = restored.get("m1").unwrap();
    assert_eq!(entry.state, Some(42));
    assert!(entry.reflects(1, 7) && !entry.reflects(1, 8) && !entry.reflects(0, 0));
    assert_eq!(restored.bytes(), store.bytes());
}

#[test]
fn the_summary_travels_with_the_changelog() {
    let mut store: PartitionStore<u64, Vec<u32>> = PartitionStore::new(1);
    store.entry("m1").state = Some(1);
    store.mark_dirty("m1");
    store.summary_mut().push(7);
    let changes = store.drain_changes().unwrap();
    assert_eq!(changes.len(), 2);
    assert!(!store.summary_changed());
    let mut restored: PartitionStore<u64, Vec<u32>> = PartitionStore::new(1);
    for (key, value) in &changes {
        restored.restore(key, value.as_deref()).unwrap();
    }
    assert_eq!(restored.summary(), &vec![7]);
    assert_eq!((restored.keys(), restored.bytes()), (1, store.bytes()));
}

#[test]
fn second_copies_of_forwarded_records_are_recognised() {
    let mut entry: Entry<u64> = Entry::new(1);
    let origin = |offset, floor| Origin {
        input: 0,
        partition: 3,
        offset,
        floor,
    };
    // A batch starting at 50 forwards 50 and 52; 51 failed and is sent again after.
    entry.record_origin(&origin(50, 50));
    entry.record_origin(&origin(52, 50));
    assert!(entry.reflects_origin(&origin(50, 50)));
    assert!(!entry.reflects_origin(&origin(51, 50)));
    entry.record_origin(&origin(51, 50));
    assert!(entry.reflects_origin(&origin(52, 50)));
    // The next batch starts at 60: everything below is a second copy, and the set shrinks.
    entry.record_origin(&origin(61, 60));
    assert!(entry.reflects_origin(&origin(55, 50)));
    assert!(!entry.reflects_origin(&origin(62, 60)));
    assert_eq!(entry.forwarded[0].applied, vec![61]);
    // Another origin partition is tracked on its own.
    assert!(!entry.reflects_origin(&Origin {
        partition: 4,
        ..origin(50, 50)
    }));
}

#[test]
fn entries_written_before_forwarding_existed_are_still_read() {
    #[derive(Serialize)]
    struct Old {
        positions: Vec<i64>,
        state: Option<u64>,
    }
    let old = postcard::to_stdvec(&Old {
        positions: vec![7, 3],
        state: Some(42),
    })
    .unwrap();
    // One more input since (the repartition topic): its position starts empty.
    let mut store: PartitionStore<u64> = PartitionStore::new(3);
    store.restore("m1", Some(&old)).unwrap();
    let entry = store.get("m1").unwrap();
    assert_eq!(
        (entry.positions.clone(), entry.state, entry.forwarded.len()),
        (vec![7, 3, -1], Some(42), 0)
    );
}

#[test]
fn timers_fire_in_order_once_and_travel_with_the_changelog() {
    let timer = |name: &str, clock, at| Timer {
        name: name.into(),
        clock,
        at,
    };
    let mut store: PartitionStore<u64> = PartitionStore::new(1);
    for key in ["a", "b"] {
        store.entry(key).state = Some(1);
    }
    store.set_timers(
        "a",
        vec![
            timer("late", Clock::StreamTime, 300),
            timer("wall", Clock::WallClock, 100),
        ],
    );
    store.set_timers("b", vec![timer("early", Clock::StreamTime, 200)]);
    assert_eq!(store.pending_timers(), 3);
    let changes = store.drain_changes().unwrap();

    // Restored elsewhere, the timers are due as before.
    let mut restored: PartitionStore<u64> = PartitionStore::new(1);
    for (key, value) in &changes {
        restored.restore(key, value.as_deref()).unwrap();
    }
    assert!(restored.take_due(Clock::StreamTime, 199).is_empty());
    let due = restored.take_due(Clock::StreamTime, 300);
    assert_eq!(
        due.iter()
            .map(|(k, t)| (k.as_str(), t.name.as_str()))
            .collect::<Vec<_>>(),
        [("b", "early"), ("a", "late")]
    );
    assert!(
        restored.take_due(Clock::StreamTime, i64::MAX).is_empty(),
        "once"
    );
    assert_eq!(restored.take_due(Clock::WallClock, 100).len(), 1);
    assert_eq!(restored.pending_timers(), 0);
    // Firing changed the keys: their entries go to the changelog without the timers.
    let fired = restored.drain_changes().unwrap();
    assert_eq!(fired.len(), 2);

    // Deleting a key's state cancels its timers.
    store.set_timers("b", vec![timer("again", Clock::StreamTime, 1)]);
    store.entry("b").state = None;
    store.mark_dirty("b");
    store.drain_changes().unwrap();
    assert!(
        store
            .take_due(Clock::StreamTime, i64::MAX)
            .iter()
            .all(|(k, _)| k != "b")
    );
    assert_eq!(
        Timer {
            name: "x".into(),
            clock: Clock::WallClock,
            at: 5
        }
        .id("m"),
        timer("x", Clock::WallClock, 5).id("m"),
        "ids are deterministic"
    );
}

#[test]
fn entries_written_before_timers_existed_are_still_read() {
    #[derive(Serialize)]
    struct Old {
        positions: Vec<i64>,
        forwarded: Vec<Forwarded>,
        state: Option<u64>,
    }
    let old = postcard::to_extend(
        &Old {
            positions: vec![4],
            forwarded: Vec::new(),
            state: Some(9),
        },
        vec![ENTRY_FORMAT_WITHOUT_TIMERS],
    )
    .unwrap();
    let mut store: PartitionStore<u64> = PartitionStore::new(1);
    store.restore("m1", Some(&old)).unwrap();
    let entry = store.get("m1").unwrap();
    assert_eq!((entry.state, entry.timers.len()), (Some(9), 0));
}

#[test]
fn deleted_state_becomes_a_tombstone() {
    let mut store: PartitionStore<u64> = PartitionStore::new(1);
    store.entry("m1").state = Some(1);
    store.mark_dirty("m1");
    store.drain_changes().unwrap();
    store.entry("m1").state = None;
    store.mark_dirty("m1");
    let changes = store.drain_changes().unwrap();
    assert_eq!(changes, vec![("m1".to_owned(), None)]);
    assert_eq!((store.keys(), store.bytes()), (0, 0));
    assert!(store.get("m1").is_none());
}
