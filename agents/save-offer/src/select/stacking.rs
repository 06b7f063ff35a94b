//! Stacking: how a new offer combines with the offers the member holds (pinned versions,
//! grace included). Checked in this order, the first conflict rejecting: exclusivity
//! (either side), the stack group (best-of may replace a held offer worth less to the
//! member; otherwise a group holds one offer), vendor, loyalty-program and
//! referral-program conflicts, the per-subscriber cap, then the additive caps per
//! product line and per cart. An offer that passes carries the explanation.

use loyalty_contracts::{CatalogOffer, OfferRejection, RejectionStage, StackRule};

use super::{Pricing, reject};
use crate::member::{HeldOffer, MemberView};

pub(super) struct Stack {
    pub replaces: Vec<String>,
    pub explanation: String,
}

pub(super) fn check(
    offer: &CatalogOffer,
    member: &MemberView,
    pricing: &Pricing,
) -> Result<Stack, OfferRejection> {
    let s = &offer.stacking;
    // An offer the member holds again is an extension, not a second copy.
    let held: Vec<&HeldOffer> = member
        .holding()
        .filter(|h| h.offer_id != offer.offer_id)
        .collect();
    let conflict = |dimension: &str, with: &HeldOffer, why: String| {
        Err(reject(
            offer,
            RejectionStage::Stacking,
            dimension,
            with.label(),
            why,
        ))
    };
    if s.rule == StackRule::Exclusive
        && let Some(first) = held.first()
    {
        return conflict(
            "stack_rule",
            first,
            format!(
                "the offer is exclusive and the member holds {}",
                labels(&held)
            ),
        );
    }
    if let Some(exclusive) = held.iter().find(|h| h.rule == StackRule::Exclusive) {
        return conflict(
            "stack_rule",
            exclusive,
            format!("the member holds {}, which is exclusive", exclusive.label()),
        );
    }
    let value = pricing
        .discount_per_order_minor
        .max(pricing.fixed_cost_minor);
    let mut replaces = Vec::new();
    if let Some(group) = &s.stack_group {
        for h in held
            .iter()
            .filter(|h| h.stack_group.as_ref() == Some(group))
        {
            if s.rule != StackRule::BestOf {
                return conflict(
                    "stack_group",
                    h,
                    format!(
                        "the member holds {} of stack group {group:?}, which holds one offer",
                        h.label()
                    ),
                );
            }
            if value <= h.value_to_member_minor {
                return conflict(
                    "best_of_stack",
                    h,
                    format!(
                        "best of stack group {group:?}: the held {} is worth {} {} to the member, this offer {value}",
                        h.label(),
                        h.value_to_member_minor,
                        pricing.currency
                    ),
                );
            }
            replaces.push(h.proposal_id.clone());
        }
    }
    let staying: Vec<&HeldOffer> = held
        .iter()
        .copied()
        .filter(|h| !replaces.contains(&h.proposal_id))
        .collect();
    if s.vendor_conflict
        && let Some(h) = staying.iter().find(|h| h.vendor == offer.vendor)
    {
        return conflict(
            "vendor_conflict",
            h,
            format!(
                "the member holds {} from the same vendor ({})",
                h.label(),
                offer.vendor
            ),
        );
    }
    if let Some(program) = &s.loyalty_program_id
        && let Some(h) = staying
            .iter()
            .find(|h| h.loyalty_program_id.as_ref() == Some(program))
    {
        return conflict(
            "loyalty_program_conflict",
            h,
            format!(
                "the member holds {} of the same loyalty program ({program})",
                h.label()
            ),
        );
    }
    if let Some(program) = &s.referral_program_id
        && let Some(h) = staying
            .iter()
            .find(|h| h.referral_program_id.as_ref() == Some(program))
    {
        return conflict(
            "referral_program_conflict",
            h,
            format!(
                "the member holds {} of the same referral program ({program})",
                h.label()
            ),
        );
    }
    if let Some(cap) = s.per_subscriber_cap
        && staying.len() as i64 + 1 > i64::from(cap)
    {
        return Err(reject(
            offer,
            RejectionStage::Stacking,
            "per_subscriber_cap",
            (staying.len() + 1).to_string(),
            format!(
                "the member would hold {} offers ({} and this one); the cap is {cap}",
                staying.len() + 1,
                labels(&staying)
            ),
        ));
    }
    if let Some(cap) = s.per_product_cap_bp {
        let lines = &offer.eligibility.product_lines;
        let overlaps = |h: &&&HeldOffer| {
            h.product_lines.is_empty()
                || lines.is_empty()
                || h.product_lines.iter().any(|l| lines.contains(l))
        };
        let held_bp: i32 = staying
            .iter()
            .filter(overlaps)
            .filter_map(|h| h.percent_off_bp)
            .sum();
        let total = held_bp + offer.value.percent_off_bp.unwrap_or(0);
        if total > cap {
            return Err(reject(
                offer,
                RejectionStage::Stacking,
                "per_product_cap",
                format!("{total} bp"),
                format!(
                    "held percent-off offers on the same product lines ({held_bp} bp) plus this one come to {total} bp; the cap is {cap} bp"
                ),
            ));
        }
    }
    if let Some(cap) = pricing.per_cart_cap_minor {
        let order = pricing.order_value_minor;
        let held_off: i64 = staying
            .iter()
            .map(|h| {
                h.amount_off_minor.saturating_add(
                    h.percent_off_bp
                        .map_or(0, |bp| super::pricing::basis_points(order, bp)),
                )
            })
            .sum();
        let total = held_off.saturating_add(pricing.discount_per_order_minor);
        if total > cap {
            return Err(reject(
                offer,
                RejectionStage::Stacking,
                "per_cart_cap",
                total.to_string(),
                format!(
                    "on the member's typical order of {order} {cur}, held offers take {held_off} {cur} and this one {} {cur}: {total} {cur} in all, above the cart cap of {cap} {cur}",
                    pricing.discount_per_order_minor,
                    cur = pricing.currency
                ),
            ));
        }
    }
    let explanation = if held.is_empty() {
        format!("{:?}: the member holds no other offer", s.rule)
    } else if !replaces.is_empty() {
        format!(
            "best of stack group {:?}: replaces {}; stacks with {}",
            s.stack_group.as_deref().unwrap_or(""),
            replaces.join(", "),
            if staying.is_empty() {
                "nothing else".to_owned()
            } else {
                labels(&staying)
            }
        )
    } else {
        format!(
            "{:?}: stacks with {} within every cap",
            s.rule,
            labels(&staying)
        )
    };
    Ok(Stack {
        replaces,
        explanation,
    })
}

fn labels(held: &[&HeldOffer]) -> String {
    held.iter()
        .map(|h| h.label())
        .collect::<Vec<_>>()
        .join(", ")
}
