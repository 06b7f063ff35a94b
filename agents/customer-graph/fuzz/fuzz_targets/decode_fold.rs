//! Any bytes, read as the Avro body of a member event and of a member profile, through
//! customer-graph's `handle` exactly as the runtime calls it (decode, contract checks,
//! event-time check, fold, snapshot): every outcome must be a value or a rejection,
//! never a panic. The first bytes choose the record's log timestamp and whether the
//! member already has state, so overflow against an existing total is reached too.
//!
//! `cargo +nightly fuzz run decode_fold` from `agents/customer-graph/`.

#![no_main]

use std::sync::{Mutex, OnceLock};

use apache_avro::AvroSchema;
use customer_graph::{CustomerGraph, MemberFold, Settings};
use libfuzzer_sys::fuzz_target;
use loyalty_contracts::{MemberEvent, MemberProfile, topics};
use loyalty_runtime::codec::{Decoder, leak};
use loyalty_runtime::{Agent, Harness, Input};

struct Decoders {
    event: Decoder,
    profile: Decoder,
}

fn decoders() -> &'static Decoders {
    static DECODERS: OnceLock<Decoders> = OnceLock::new();
    DECODERS.get_or_init(|| Decoders {
        event: Decoder::new(leak(MemberEvent::get_schema())).unwrap(),
        profile: Decoder::new(leak(MemberProfile::get_schema())).unwrap(),
    })
}

/// The agent and its harness, made once: the harness's encoders hold schemas leaked
/// for `'static` (once per process in the runtime), which LeakSanitizer reports when a
/// harness is made per input.
fn agent_and_harness() -> &'static Mutex<(CustomerGraph, Harness<CustomerGraph>)> {
    static AGENT: OnceLock<Mutex<(CustomerGraph, Harness<CustomerGraph>)>> = OnceLock::new();
    AGENT.get_or_init(|| {
        let agent = CustomerGraph::new(&Settings::default());
        let harness = Harness::new(&agent).unwrap();
        Mutex::new((agent, harness))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut guard = agent_and_harness().lock().unwrap_or_else(|e| e.into_inner());
    let (agent, harness) = &mut *guard;
    harness.emitted.clear();
    let logged_at = [None, Some(0), Some(870_000_000_000), Some(i64::MAX)][usize::from(first & 3)];
    // A member who already holds near-maximal totals, so the next amount can overflow.
    let seeded = || {
        let mut fold = MemberFold::default();
        fold.spend = i64::MAX - 1;
        fold.points_balance = i64::MIN + 1;
        fold.points_earned = i64::MAX;
        fold.as_of = 870_000_000_000;
        fold
    };
    let d = decoders();
    for (topic, decoder) in [
        (topics::MEMBER_EVENTS, &d.event),
        (topics::MEMBER_PROFILES, &d.profile),
    ] {
        let input = Input {
            topic,
            partition: 0,
            offset: 0,
            timestamp: logged_at,
            key: "m",
            value: Some((decoder, rest)),
        };
        let mut state = (first & 4 != 0).then(seeded);
        let mut ctx = harness.context();
        // Ok or Err are both fine; only a panic is a finding.
        let _ = agent.handle(&input, &mut state, &mut ctx);
    }
});
