//! An agent that acts later, on timers: after each order it schedules a `thank-you` on
//! the wall clock (`delay_ms` after the order's record was written) and a `lapse` on
//! stream time (`lapse_ms` of the partition's later records after it, postponed by every
//! new order); when one fires it publishes a reminder on `example.reminders.v1` whose id
//! is the timer's, the same on every replay. `tests/tests/e2e/timers.rs` kills it
//! mid-way and checks both kinds still fire, once per schedule, where they should.

use apache_avro::AvroSchema;
use loyalty_contracts::{MemberEvent, Payload, topics};
use loyalty_runtime::{
    Agent, AgentSettings, Clock, Context, HandleError, Input, KeepsKeys, OutputSpec, Timer, Topic,
};
use serde::{Deserialize, Serialize};

/// One fired reminder (key = member id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm.example")]
pub struct Reminder {
    /// The timer's id: the same for every firing of one schedule.
    pub id: String,
    pub member_id: String,
    /// `thank-you` or `lapse`.
    pub kind: String,
    /// When the timer was due (milliseconds since the epoch).
    pub due_at: i64,
    /// The partition's stream time when it fired: for `lapse`, the timestamp of the
    /// record after which it fired.
    pub stream_time: i64,
    /// Orders the member had placed by then.
    pub orders: i64,
}

pub const REMINDERS: Topic<Reminder> = Topic::stream("example.reminders.v1").member_keyed();

/// Settings under `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub delay_ms: i64,
    pub lapse_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            delay_ms: 5_000,
            lapse_ms: 60_000,
        }
    }
}

impl AgentSettings for Settings {
    fn problems(&self) -> Vec<String> {
        [("delay_ms", self.delay_ms), ("lapse_ms", self.lapse_ms)]
            .into_iter()
            .filter(|(_, v)| *v < 0)
            .map(|(k, v)| format!("{k}: {v} must not be negative"))
            .collect()
    }
}

/// The agent: its state is the member's order count.
#[derive(Debug)]
pub struct RemindersAgent(Settings);

impl Agent for RemindersAgent {
    type State = i64;
    type Settings = Settings;
    type Summary = ();
    type Rekeying = KeepsKeys;
    const NAME: &'static str = "reminders";

    fn inputs(&self) -> Vec<&'static str> {
        vec![topics::MEMBER_EVENTS]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![REMINDERS.output()]
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<i64>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        let event: MemberEvent = input.decode_keyed("member_id", |e: &MemberEvent| &e.member_id)?;
        if !matches!(event.payload, Payload::OrderPlaced(_)) {
            return Ok(());
        }
        *state = Some(state.unwrap_or(0) + 1);
        // From the record, never the clock: a replay schedules the same times.
        let written = input.timestamp.unwrap_or(event.occurred_at.0);
        if ctx.timer("thank-you").is_none() {
            ctx.schedule("thank-you", Clock::WallClock, written + self.0.delay_ms)?;
        }
        ctx.schedule("lapse", Clock::StreamTime, written + self.0.lapse_ms)
    }

    fn on_timer(
        &self,
        key: &str,
        timer: &Timer,
        state: &mut Option<i64>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        let reminder = Reminder {
            id: timer.id(key),
            member_id: key.to_owned(),
            kind: timer.name.clone(),
            due_at: timer.at,
            stream_time: ctx.stream_time(),
            orders: state.unwrap_or(0),
        };
        ctx.emit(&REMINDERS, key, &reminder, timer.at)
    }
}

fn main() -> std::process::ExitCode {
    loyalty_runtime::agent_main!(
        |settings: &Settings| RemindersAgent(settings.clone()),
        "reminders",
        "Sends each member a thank-you and a lapse reminder on timers (the runtime's example of timers)."
    )
}
