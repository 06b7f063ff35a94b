//! What the contract asks of one event or profile before it may touch a member's
//! state: ids present and bounded, amounts not negative, currencies ISO 4217, and totals
//! that stay exact (an amount that would overflow one is refused, never wrapped).

use loyalty_contracts::{MemberEvent, MemberProfile, Payload};
use loyalty_runtime::Rejection;

/// `total + amount`, or a contract violation when the sum leaves `i64`: a member's
/// totals are exact or the event is refused, never wrapped (two `i64::MAX` earnings
/// must not leave a negative balance).
pub(super) fn add(what: &str, total: i64, amount: i64) -> Result<i64, Rejection> {
    total
        .checked_add(amount)
        .ok_or_else(|| overflow(what, total, amount))
}

/// `total - amount`, checked the same way.
pub(super) fn subtract(what: &str, total: i64, amount: i64) -> Result<i64, Rejection> {
    total
        .checked_sub(amount)
        .ok_or_else(|| overflow(what, total, amount))
}

fn overflow(what: &str, total: i64, amount: i64) -> Rejection {
    Rejection::contract(format!(
        "{what} {amount} overflows the member's total {total}"
    ))
}

fn nonnegative(what: &str, value: i64) -> Result<(), Rejection> {
    if value < 0 {
        Err(Rejection::contract(format!("{what} is negative ({value})")))
    } else {
        Ok(())
    }
}

/// Longest identifier the contract accepts, in bytes. Identifiers end up in keys, state
/// and every output about the member; one of a megabyte would make each of them too big
/// to write, so it is the record's problem, decided before anything is kept.
pub(super) const MAX_ID_BYTES: usize = 256;

/// An identifier within [`MAX_ID_BYTES`].
fn bounded(what: &str, id: &str) -> Result<(), Rejection> {
    if id.len() > MAX_ID_BYTES {
        Err(Rejection::contract(format!(
            "{what} is {} bytes long (at most {MAX_ID_BYTES})",
            id.len()
        )))
    } else {
        Ok(())
    }
}

/// Contract checks of a profile that need no state.
pub fn validate_profile(profile: &MemberProfile) -> Result<(), Rejection> {
    bounded("member_id", &profile.member_id)?;
    bounded("program_id", &profile.program_id)?;
    // Carried onto every member-state snapshot, so held to the same bound.
    for (field, value) in [
        ("acquisition_channel", &profile.acquisition_channel),
        ("payment_method", &profile.payment_method),
        ("billing_frequency", &profile.billing_frequency),
        ("borrower_status", &profile.borrower_status),
        ("vertical", &profile.vertical),
        ("plan_tier", &profile.plan_tier),
    ] {
        if let Some(value) = value {
            bounded(field, value)?;
        }
    }
    Ok(())
}

/// Contract checks that need no state.
pub fn validate(event: &MemberEvent) -> Result<(), Rejection> {
    if event.event_id.trim().is_empty() {
        return Err(Rejection::contract("event_id is empty"));
    }
    if event.member_id.trim().is_empty() {
        return Err(Rejection::contract("member_id is empty"));
    }
    bounded("event_id", &event.event_id)?;
    bounded("member_id", &event.member_id)?;
    bounded("brand_id", &event.brand_id)?;
    bounded("source", &event.source)?;
    if let Some(link) = &event.source_member_id {
        bounded("source_member_id", link)?;
    }
    let currency = |c: &str| {
        if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(Rejection::contract(format!(
                "currency {c:?} is not an ISO 4217 code"
            )))
        }
    };
    match &event.payload {
        Payload::OrderPlaced(o) => {
            nonnegative("order amount_minor", o.amount_minor)?;
            currency(&o.currency)?;
            if o.items < 0 {
                return Err(Rejection::contract(format!(
                    "order items is negative ({})",
                    o.items
                )));
            }
        }
        Payload::OrderReturned(r) => {
            nonnegative("return amount_minor", r.amount_minor)?;
            currency(&r.currency)?;
        }
        Payload::PointsEarned(p) => nonnegative("points earned", p.points)?,
        Payload::PointsRedeemed(p) => nonnegative("points redeemed", p.points)?,
        Payload::PointsExpired(p) => nonnegative("points expired", p.points)?,
        Payload::TierChanged(t) if t.to_tier.trim().is_empty() => {
            return Err(Rejection::contract("to_tier is empty"));
        }
        Payload::TierChanged(t) => {
            bounded("to_tier", &t.to_tier)?;
            bounded("program_id", &t.program_id)?;
        }
        _ => {}
    }
    Ok(())
}
