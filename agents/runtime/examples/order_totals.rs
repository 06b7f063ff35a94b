//! A small agent, written as every agent is: it keeps each member's order count and
//! spend from `loyalty.member-events.v1` and publishes them, compacted, on
//! `example.order-totals.v1`. The README's "Write an agent" walks through it, and
//! `tests/tests/e2e/example_agent.rs` runs it on the embedded broker.
//!
//! Run it against a cluster like any agent:
//! `cargo run -p loyalty-runtime --example order_totals -- --bootstrap-servers ...`

use apache_avro::AvroSchema;
use loyalty_contracts::{MemberEvent, Payload, topics};
use loyalty_runtime::{
    Agent, Context, HandleError, Input, KeepsKeys, NoSettings, OutputSpec, Rejection, Topic,
};
use serde::{Deserialize, Serialize};

/// The output: one record per member, its newest totals (key = member id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm.example")]
pub struct OrderTotals {
    pub member_id: String,
    pub orders: i64,
    pub spend_minor: i64,
}

/// The topic, its cleanup and its value type, declared once.
pub const ORDER_TOTALS: Topic<OrderTotals> =
    Topic::compacted("example.order-totals.v1").member_keyed();

/// Per-member state, changelogged by the runtime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    orders: i64,
    spend_minor: i64,
}

/// The agent.
#[derive(Debug, Default)]
pub struct OrderTotalsAgent;

impl Agent for OrderTotalsAgent {
    type State = Totals;
    type Settings = NoSettings;
    type Summary = ();
    type Rekeying = KeepsKeys;
    const NAME: &'static str = "order-totals";

    fn inputs(&self) -> Vec<&'static str> {
        vec![topics::MEMBER_EVENTS]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![ORDER_TOTALS.output()]
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<Totals>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        let event: MemberEvent = input.decode_keyed("member_id", |e: &MemberEvent| &e.member_id)?;
        ctx.check_event_time(input, "occurred_at", event.occurred_at.0)?;
        let Payload::OrderPlaced(order) = &event.payload else {
            return Ok(()); // other events change no total
        };
        if order.amount_minor < 0 {
            return Err(Rejection::contract("negative order amount").into());
        }
        let totals = state.get_or_insert_with(Totals::default);
        // Checked: an overflowing total is the record's problem (DLQ), never a wrap.
        totals.spend_minor = totals
            .spend_minor
            .checked_add(order.amount_minor)
            .ok_or_else(|| Rejection::contract("spend overflows"))?;
        totals.orders += 1;
        let value = OrderTotals {
            member_id: input.key.to_owned(),
            orders: totals.orders,
            spend_minor: totals.spend_minor,
        };
        ctx.emit(&ORDER_TOTALS, input.key, &value, event.occurred_at.0)
    }
}

fn main() -> std::process::ExitCode {
    loyalty_runtime::agent_main!(
        |_: &NoSettings| OrderTotalsAgent,
        "order-totals",
        "Keeps each member's order count and spend (the runtime's example agent)."
    )
}
