//! What the member's own records teach: a proposal seen on `loyalty.offer-proposals.v1`
//! becomes a held offer (its arm counted as pulled); an `InterventionOutcome` is a
//! reward for that arm, once, and may count as a redemption; orders, cancellations and
//! outcomes withdraw held offers whose suppression triggers name them.

use loyalty_contracts::{
    InterventionResult, MemberEvent, OfferProposal, Payload, SubscriptionStatus, SuppressionTrigger,
};
use loyalty_runtime::Context;

use super::SaveOffer;
use super::state::MemberEntry;
use crate::member::{HeldOffer, MAX_TEXT_BYTES};

pub(super) fn proposal_seen(
    p: &OfferProposal,
    entry: &mut MemberEntry,
    ctx: &mut Context<'_, SaveOffer>,
) {
    entry.prune(p.decided_at);
    if let Some(summary) = ctx.summary() {
        summary.newest_ms = summary.newest_ms.max(p.decided_at.0);
    }
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
    let replaced: Vec<HeldOffer> = entry
        .held
        .iter()
        .filter(|h| held.replaces.contains(&h.proposal_id))
        .cloned()
        .collect();
    entry
        .held
        .retain(|h| !held.replaces.contains(&h.proposal_id));
    for h in replaced {
        entry.withdraw(h);
    }
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
        summary
            .arms
            .entry(key.clone())
            .or_default()
            .pull(&held.context);
        entry
            .arm_shares
            .entry(key.clone())
            .or_default()
            .pull(&held.context);
    }
    entry.held.push(held);
    entry.prune(p.decided_at);
}

pub(super) fn member_event(
    agent: &SaveOffer,
    event: &MemberEvent,
    entry: &mut MemberEntry,
    ctx: &mut Context<'_, SaveOffer>,
) {
    entry.prune(event.occurred_at);
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
                suppress(entry, SuppressionTrigger::SubscriptionCancelled);
            }
            SubscriptionStatus::Paused => suppress(entry, SuppressionTrigger::SubscriptionPaused),
            SubscriptionStatus::Active | SubscriptionStatus::PastDue => {}
        },
        Payload::InterventionOutcome(outcome) if outcome.holdout != Some(true) => {
            // Accepted counts a redemption; Converted (with the value it brought) or
            // Declined is the outcome the arm learns from. Each counts once per proposal,
            // whatever order and however often they arrive.
            let (redeems, learns, trigger) = match outcome.result {
                InterventionResult::Accepted => (true, false, SuppressionTrigger::Redeemed),
                InterventionResult::Converted => (true, true, SuppressionTrigger::Redeemed),
                InterventionResult::Declined => (false, true, SuppressionTrigger::Declined),
                // Delivered and opened are steps on the way, not outcomes.
                InterventionResult::Delivered | InterventionResult::Opened => return,
            };
            let margin_ratio = entry.ltv.as_ref().map_or(1.0, |l| l.margin_ratio);
            let id = &outcome.intervention_id;
            let held = match entry.held.iter_mut().find(|h| &h.proposal_id == id) {
                Some(h) => h,
                None => match entry.withdrawn.iter_mut().find(|h| &h.proposal_id == id) {
                    Some(h) => h,
                    None => return,
                },
            };
            let count_redemption = redeems && !held.redeemed;
            held.redeemed |= redeems;
            let learned = if learns && !held.rewarded {
                held.rewarded = true;
                // The reward is incremental margin: the attributed value at the member's
                // margin, less what the offer was expected to cost; a decline earns nothing.
                let reward = if redeems {
                    let value = outcome.value_minor.unwrap_or(0).max(0) as f64;
                    let cost = held
                        .shown
                        .as_ref()
                        .map_or(0, |o| o.expected_cost.mean_minor);
                    value * margin_ratio - cost as f64
                } else {
                    0.0
                };
                held.arm_key
                    .clone()
                    .map(|key| (key, reward, held.arm_probability, held.context.clone()))
            } else {
                None
            };
            if let Some((key, reward, probability, context)) = learned
                && let Some(summary) = ctx.summary()
            {
                let scale = agent.settings.reward_scale_minor;
                summary.arms.entry(key.clone()).or_default().learn(
                    reward,
                    probability,
                    scale,
                    &context,
                );
                entry.arm_shares.entry(key).or_default().learn(
                    reward,
                    probability,
                    scale,
                    &context,
                );
            }
            if count_redemption {
                entry.prior_redemptions = entry.prior_redemptions.saturating_add(1);
            }
            suppress(entry, trigger);
            entry.withdrawn.retain(|h| !h.rewarded);
        }
        _ => {}
    }
}

/// Withdraw every held offer that `trigger` suppresses.
fn suppress(entry: &mut MemberEntry, trigger: SuppressionTrigger) {
    let (suppressed, kept): (Vec<HeldOffer>, Vec<HeldOffer>) = std::mem::take(&mut entry.held)
        .into_iter()
        .partition(|h| h.suppress_on.contains(&trigger));
    entry.held = kept;
    for h in suppressed {
        entry.withdraw(h);
    }
}
