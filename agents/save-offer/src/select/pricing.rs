//! What an offer is expected to cost and to earn for one member, and the cost caps
//! that bound the one by the other.
//!
//! Cost: the offer's fixed cost plus its discount on the member's expected order value,
//! once per billing cycle it applies to — but only for cycles in which the member
//! actually orders. With P(alive) = p from ltv, the cycles used are Binomial(n, p), so
//! the expected cost is fixed + discount · n · p, and the 80% interval comes from that
//! binomial's 10th and 90th percentiles. A pause costs the margin of the cycles paused.
//! Incremental LTV is ltv's counterfactual for the offer's intervention type, with its
//! 80% interval, converted into the member's currency.
//!
//! A member ltv has not valued yet (no fit scores their history) has no expected order
//! value and a lifetime value of nothing: an offer whose cost rests on the order or
//! whose caps rest on the value is ruled out as unpriceable, never priced on zeros,
//! which would make every discount free.

use loyalty_contracts::{CatalogOffer, MoneyInterval, OfferRejection, OfferType, RejectionStage};

use super::{interval, reject};
use crate::member::MemberView;
use crate::money::{self, Rates};

/// An offer priced for one member, in the member's currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    pub currency: String,
    /// The member's expected order value.
    pub order_value_minor: i64,
    /// Discount on one such order (zero for offers that are not discounts).
    pub discount_per_order_minor: i64,
    /// Billing cycles the discount applies to.
    pub cycles: i32,
    pub cost: MoneyInterval,
    pub incremental: MoneyInterval,
    /// The offer's fixed cost, converted.
    pub fixed_cost_minor: i64,
    /// The member's 12-month margin (ltv's), and the offer's per-order fulfilment cost
    /// and per-cart discount cap, all converted: the caps compare like with like.
    pub margin_12m_minor: i64,
    pub fulfilment_cost_minor: i64,
    pub per_cart_cap_minor: Option<i64>,
}

impl Pricing {
    /// What the offer is worth to the member on a typical order: its discount, or for an
    /// offer that is not one, what it costs the operator to give.
    pub fn value_to_member(&self) -> i64 {
        self.discount_per_order_minor.max(self.fixed_cost_minor)
    }
}

/// `amount` × `bp` / 10,000, without overflow.
pub fn basis_points(amount: i64, bp: i32) -> i64 {
    (i128::from(amount) * i128::from(bp) / 10_000) as i64
}

fn fx_rejection(offer: &CatalogOffer, e: money::MoneyError) -> OfferRejection {
    reject(
        offer,
        RejectionStage::Localisation,
        "currency",
        offer.value.currency.clone(),
        format!("cannot price the offer in the member's currency: {e}"),
    )
}

/// Most billing cycles an offer may run for (ten years of months); the catalog refuses
/// more, and pricing never sums a longer distribution.
pub const MAX_CYCLES: i32 = 120;

/// The `q`-quantile of Binomial(n, p), by summing the distribution in log space (the
/// first terms underflow for p near 1; exponentiating each late is exact enough).
fn binomial_quantile(n: i32, p: f64, q: f64) -> i32 {
    let n = n.clamp(0, MAX_CYCLES);
    if p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    let (log_p, log_q) = (p.ln(), (1.0 - p).ln());
    let mut log_term = f64::from(n) * log_q;
    let mut cumulative = 0.0;
    for k in 0..=n {
        cumulative += log_term.exp();
        if cumulative >= q - 1e-12 {
            return k;
        }
        log_term += (f64::from(n - k) / f64::from(k + 1)).ln() + log_p - log_q;
    }
    n
}

/// Billing cycles a pause skips: its type's, or what a vendor stated for another type.
fn paused_cycles(offer: &CatalogOffer) -> i32 {
    match offer.offer_type {
        OfferType::PauseOneCycle => 1,
        OfferType::PauseTwoCycles => 2,
        _ => offer.value.pause_cycles.unwrap_or(0),
    }
}

/// Whether pricing the offer needs ltv's valuation of the member: its cost rests on their
/// expected order (a discount, a pause, a minimum order, a margin floor, which is a share
/// of the order after the offer) or a cap bounds it by their value (LTV bound, margin
/// bound, CAC payback).
fn needs_valuation(offer: &CatalogOffer) -> bool {
    let (v, caps) = (&offer.value, &offer.caps);
    v.percent_off_bp.is_some()
        || v.amount_off_minor.is_some()
        || v.min_order_minor.is_some()
        || paused_cycles(offer) > 0
        || caps.gross_margin_floor_bp.is_some()
        || caps.net_margin_floor_bp.is_some()
        || caps.contribution_margin_floor_bp.is_some()
        || caps.ltv_bound
        || caps.margin_bound_bp.is_some()
        || caps.cac_payback_max_days.is_some()
}

pub(super) fn price(
    offer: &CatalogOffer,
    member: &MemberView,
    currency: &str,
    rates: &impl Rates,
) -> Result<Pricing, OfferRejection> {
    let ltv = member.ltv.as_ref().ok_or_else(|| {
        reject(
            offer,
            RejectionStage::CostCap,
            "member_ltv",
            "missing",
            "the member has no ltv record yet, so nothing bounds the offer's cost",
        )
    })?;
    if ltv.currency.is_empty() {
        return Err(reject(
            offer,
            RejectionStage::CostCap,
            "member_ltv",
            "no currency",
            "the member's ltv record names no currency (ltv has not seen their orders), so nothing it values can bound the offer's cost",
        ));
    }
    let v = &offer.value;
    let convert = |amount: i64| {
        money::convert(amount, &v.currency, currency, rates).map_err(|e| fx_rejection(offer, e))
    };
    if !ltv.is_valued() && needs_valuation(offer) {
        // Pricing such an offer on ltv's pre-fit zeros would call a discount free, a
        // pause costless and any cost beyond a value of nothing.
        return Err(reject(
            offer,
            RejectionStage::CostCap,
            "member_ltv",
            "unvalued",
            "ltv has not valued the member yet (no fit scores their history), so an offer priced on their orders or bounded by their value cannot be costed",
        ));
    }
    // Zero only for an unvalued member, whose offers here do not depend on it.
    let order_value = money::convert(
        ltv.expected_order_value_minor.unwrap_or(0.0).round() as i64,
        &ltv.currency,
        currency,
        rates,
    )
    .map_err(|e| fx_rejection(offer, e))?;
    let min_order = v.min_order_minor.map(convert).transpose()?;
    if let Some(min) = min_order.filter(|min| order_value < *min) {
        return Err(reject(
            offer,
            RejectionStage::CostCap,
            "min_order",
            order_value.to_string(),
            format!(
                "the member's expected order ({order_value} {currency}) is below the offer's minimum order ({min} {currency})"
            ),
        ));
    }
    let mut discount = 0i64;
    if let Some(bp) = v.percent_off_bp {
        discount = basis_points(order_value, bp);
    }
    if let Some(amount) = v.amount_off_minor {
        discount = discount.saturating_add(convert(amount)?.min(order_value));
    }
    if let Some(max) = v.max_discount_minor {
        discount = discount.min(convert(max)?);
    }
    let fixed = if v.fixed_cost_minor > 0 {
        convert(v.fixed_cost_minor)?
    } else {
        0
    };
    let cycles = v.duration_cycles.unwrap_or(1).clamp(1, MAX_CYCLES);
    let p_alive = ltv.p_alive.unwrap_or(1.0).clamp(0.0, 1.0);
    // A pause forgoes the margin of the orders it skips: that is its cost.
    let paused = paused_cycles(offer);
    let per_cycle = discount.saturating_add(
        (order_value as f64 * ltv.margin_ratio).round() as i64 * i64::from(paused > 0),
    );
    let n = if paused > 0 { paused } else { cycles };
    let cost_at = |k: f64| fixed.saturating_add((per_cycle as f64 * k).round() as i64);
    let cost = interval(
        cost_at(f64::from(n) * p_alive),
        cost_at(f64::from(binomial_quantile(n, p_alive, 0.1))),
        cost_at(f64::from(binomial_quantile(n, p_alive, 0.9))),
    );
    let intervention = offer.offer_type.intervention();
    let incremental = match ltv.incremental(intervention) {
        Some(i) => {
            let c = |m: i64| {
                money::convert(m, &ltv.currency, currency, rates)
                    .map_err(|e| fx_rejection(offer, e))
            };
            interval(c(i.mean)?, c(i.low)?, c(i.high)?)
        }
        None => interval(0, 0, 0),
    };
    let margin_12m = money::convert(ltv.margin_12m_minor, &ltv.currency, currency, rates)
        .map_err(|e| fx_rejection(offer, e))?;
    let fulfilment = offer
        .caps
        .fulfilment_cost_minor
        .map(convert)
        .transpose()?
        .unwrap_or(0);
    let per_cart_cap = offer.stacking.per_cart_cap_minor.map(convert).transpose()?;
    Ok(Pricing {
        margin_12m_minor: margin_12m,
        fulfilment_cost_minor: fulfilment,
        per_cart_cap_minor: per_cart_cap,
        currency: currency.to_owned(),
        order_value_minor: order_value,
        discount_per_order_minor: discount,
        cycles,
        cost,
        incremental,
        fixed_cost_minor: fixed,
    })
}

/// The six caps decided per member (the budget and burn rate are the ledger's).
pub(super) fn check_caps(offer: &CatalogOffer, pricing: &Pricing) -> Result<(), OfferRejection> {
    let caps = &offer.caps;
    let cur = &pricing.currency;
    let cost = pricing.cost.mean_minor;
    let cap_reject = |dimension: &str, value: String, explanation: String| {
        Err(reject(
            offer,
            RejectionStage::CostCap,
            dimension,
            value,
            explanation,
        ))
    };
    if caps.ltv_bound && cost > pricing.incremental.mean_minor {
        return cap_reject(
            "ltv_bound",
            cost.to_string(),
            format!(
                "expected cost {cost} {cur} exceeds the member's expected incremental LTV {} {cur} for {}",
                pricing.incremental.mean_minor,
                offer.offer_type.intervention().label()
            ),
        );
    }
    let margin_12m = pricing.margin_12m_minor;
    if let Some(bp) = caps.margin_bound_bp {
        let bound = basis_points(margin_12m.max(0), bp);
        if cost > bound {
            return cap_reject(
                "margin_bound",
                cost.to_string(),
                format!(
                    "expected cost {cost} {cur} exceeds {bp} bp of the member's 12-month margin ({bound} of {margin_12m} {cur})"
                ),
            );
        }
    }
    // Margins of the member's typical order after the discount.
    let revenue = (pricing.order_value_minor - pricing.discount_per_order_minor) as f64;
    let cogs = pricing.order_value_minor as f64 * f64::from(caps.cogs_share_bp.unwrap_or(0)) / 1e4;
    let fulfilment = pricing.fulfilment_cost_minor as f64;
    let fees = revenue * f64::from(caps.payment_fee_bp.unwrap_or(0)) / 1e4;
    let per_order_fixed = pricing.fixed_cost_minor as f64 / f64::from(pricing.cycles);
    if revenue <= 0.0 {
        // No share of nothing can meet a floor (the offer takes the whole order, or the
        // order is worth nothing); say so rather than print "-inf%".
        let floor = [
            ("gross_margin_floor", caps.gross_margin_floor_bp),
            ("net_margin_floor", caps.net_margin_floor_bp),
            (
                "contribution_margin_floor",
                caps.contribution_margin_floor_bp,
            ),
        ]
        .into_iter()
        .find_map(|(dimension, floor)| floor.map(|f| (dimension, f)));
        if let Some((dimension, floor)) = floor {
            return cap_reject(
                dimension,
                "no revenue".to_owned(),
                format!(
                    "the member's typical order ({} {cur}) leaves no revenue after the offer to keep the floor of {:.1}%",
                    pricing.order_value_minor,
                    f64::from(floor) / 100.0
                ),
            );
        }
    }
    let share = |profit: f64| profit / revenue;
    let margins = [
        (
            "gross_margin_floor",
            caps.gross_margin_floor_bp,
            share(revenue - cogs),
        ),
        (
            "net_margin_floor",
            caps.net_margin_floor_bp,
            share(revenue - cogs - fulfilment - fees),
        ),
        (
            "contribution_margin_floor",
            caps.contribution_margin_floor_bp,
            share(revenue - cogs - fulfilment - fees - per_order_fixed),
        ),
    ];
    for (dimension, floor, margin) in margins {
        if let Some(floor) = floor
            && margin < f64::from(floor) / 1e4
        {
            return cap_reject(
                dimension,
                format!("{:.1}%", margin * 100.0),
                format!(
                    "the member's typical order after the offer keeps a {} of {:.1}%, below the floor of {:.1}%",
                    dimension.trim_end_matches("_floor").replace('_', " "),
                    margin * 100.0,
                    f64::from(floor) / 100.0
                ),
            );
        }
    }
    if let Some(max_days) = caps.cac_payback_max_days {
        let daily = margin_12m as f64 / 365.0;
        let days = if daily > 0.0 {
            cost as f64 / daily
        } else {
            f64::INFINITY
        };
        if days > f64::from(max_days) {
            return cap_reject(
                "cac_payback",
                format!("{days:.0} days"),
                format!(
                    "the member's margin ({margin_12m} {cur} a year) takes {days:.0} days to earn back the cost of {cost} {cur}; the limit is {max_days} days"
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::binomial_quantile;

    #[test]
    fn binomial_quantiles_hold_where_the_first_terms_underflow() {
        // (1 - 0.999)^120 = 1e-360 underflows; the quantiles are still right.
        assert_eq!(binomial_quantile(120, 0.999, 0.1), 119);
        assert_eq!(binomial_quantile(120, 0.99, 0.1), 117);
        // A duration beyond the cap is summed as the cap.
        assert_eq!(binomial_quantile(i32::MAX, 0.5, 0.5), 60);
    }

    #[test]
    fn binomial_quantiles_bracket_the_mean() {
        assert_eq!(binomial_quantile(3, 1.0, 0.1), 3);
        assert_eq!(binomial_quantile(3, 0.0, 0.9), 0);
        assert_eq!(binomial_quantile(1, 0.5, 0.1), 0);
        assert_eq!(binomial_quantile(1, 0.5, 0.9), 1);
        assert_eq!(binomial_quantile(12, 0.5, 0.1), 4);
        assert_eq!(binomial_quantile(12, 0.5, 0.9), 8);
    }
}
