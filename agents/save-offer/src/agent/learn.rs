//! What the member's own records teach: a proposal seen on `loyalty.offer-proposals.v1`
//! becomes a held offer (its arm counted as pulled); an `InterventionOutcome` is a
//! reward for that arm and may count as a redemption; orders, cancellations and
//! outcomes withdraw held offers whose suppression triggers name them.

use loyalty_contracts::{
    InterventionResult, MemberEvent, OfferProposal, Payload, SubscriptionStatus, SuppressionTrigger,
};
use loyalty_runtime::Context;

use super::SaveOffer;
use super::state::MemberEntry;
use crate::member::MAX_TEXT_BYTES;

pub(super) fn proposal_seen(
    p: &OfferProposal,
    entry: &mut MemberEntry,
    ctx: &mut Context<'_, SaveOffer>,
) {
    let Some(candidates) = entry.pending.remove(&p.proposal_id) else {
        // Seen before (a replay), or decided before this state existed: nothing to add.
        return;
    };
    let Some(offer) = &p.offer else { return };
    let Some(mut held) = candidates
        .into_iter()
        .find(|h| h.offer_id == offer.offer_id)
    else {
        return;
    };
    held.expires_at = offer.expires_at;
    entry
        .held
        .retain(|h| !held.replaces.contains(&h.proposal_id));
    if held.extensions > 0 {
        // An extension: the held offer gets the new expiry, and keeps its proposal id
        // so the outcome (which names the first proposal) still finds it.
        if let Some(existing) = entry.held.iter_mut().find(|h| h.offer_id == held.offer_id) {
            existing.expires_at = held.expires_at;
            existing.grace_until = held.grace_until;
            existing.extensions = held.extensions;
            return;
        }
    }
    if let Some(key) = &held.arm_key
        && let Some(summary) = ctx.summary()
    {
        summary.arms.entry(key.clone()).or_default().pull();
    }
    entry.held.push(held);
}

pub(super) fn member_event(
    agent: &SaveOffer,
    event: &MemberEvent,
    entry: &mut MemberEntry,
    ctx: &mut Context<'_, SaveOffer>,
) {
    let scale = agent.settings.reward_scale_minor;
    match &event.payload {
        Payload::OrderPlaced(order) => {
            // An over-long line is no product line of the operator's; it is not kept.
            if let Some(line) = order
                .product_line
                .as_deref()
                .filter(|l| l.len() <= MAX_TEXT_BYTES)
            {
                entry.add_product_line(line);
            }
            suppress(entry, SuppressionTrigger::OrderPlaced);
        }
        Payload::SubscriptionChanged(s) => match s.status {
            SubscriptionStatus::Cancelled => {
                suppress(entry, SuppressionTrigger::SubscriptionCancelled)
            }
            SubscriptionStatus::Paused => suppress(entry, SuppressionTrigger::SubscriptionPaused),
            SubscriptionStatus::Active | SubscriptionStatus::PastDue => {}
        },
        Payload::InterventionOutcome(outcome) if outcome.holdout != Some(true) => {
            let Some(i) = entry
                .held
                .iter()
                .position(|h| h.proposal_id == outcome.intervention_id)
            else {
                return;
            };
            let (redeemed, trigger) = match outcome.result {
                InterventionResult::Accepted | InterventionResult::Converted => {
                    (true, SuppressionTrigger::Redeemed)
                }
                InterventionResult::Declined => (false, SuppressionTrigger::Declined),
                // Delivered and opened are steps on the way, not outcomes to learn from.
                InterventionResult::Delivered | InterventionResult::Opened => return,
            };
            let held = &entry.held[i];
            let reward = if redeemed {
                outcome.value_minor.unwrap_or(0).max(0) as f64
            } else {
                0.0
            };
            if let Some(key) = held.arm_key.clone()
                && let Some(summary) = ctx.summary()
            {
                let (probability, context) = (held.arm_probability, held.context.clone());
                summary
                    .arms
                    .entry(key)
                    .or_default()
                    .learn(reward, probability, scale, &context);
            }
            if redeemed {
                entry.prior_redemptions = entry.prior_redemptions.saturating_add(1);
            }
            if entry.held[i].suppress_on.contains(&trigger) {
                entry.held.remove(i);
            }
        }
        _ => {}
    }
}

/// Withdraw every held offer that `trigger` suppresses.
fn suppress(entry: &mut MemberEntry, trigger: SuppressionTrigger) {
    entry.held.retain(|h| !h.suppress_on.contains(&trigger));
}
