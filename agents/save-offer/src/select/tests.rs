//! Every rule of selection, each shown rejecting or changing a proposal, with the
//! explanation checked.

use loyalty_contracts::{
    BurnRate, Claim, Date, Extension, Localisation, OfferType, ReasonCluster, RejectionStage,
    RetentionStage, StackRule, Timestamp,
};

use super::testkit::*;
use super::*;

fn assert_rejects(
    offer: &loyalty_contracts::CatalogOffer,
    member: &crate::member::MemberView,
    stage: RejectionStage,
    dimension: &str,
    explains: &str,
) {
    let r = rejection(offer, member);
    assert_eq!((r.stage, r.dimension.as_str()), (stage, dimension), "{r:?}");
    assert!(
        r.explanation.contains(explains),
        "explanation {:?} lacks {explains:?}",
        r.explanation
    );
}

#[test]
fn the_plain_offer_is_eligible_and_scores_incremental_ltv_minus_cost() {
    let e = eligible(&offer("a"), &member());
    // 15% of a 50.00 order, once, P(alive) 1: 7.50; incremental LTV 40.00.
    assert_eq!(e.pricing.cost.mean_minor, 750);
    assert_eq!(e.pricing.incremental.mean_minor, 4_000);
    assert_eq!(e.score(), 3_250);
    assert_eq!(
        e.stacking_explanation,
        "Additive: the member holds no other offer"
    );
}

#[test]
fn each_eligibility_dimension_rejects_a_member_outside_it() {
    type Edit = fn(&mut loyalty_contracts::Eligibility);
    let cases: [(&str, Edit, &str); 15] = [
        (
            "ltv_decile",
            |e| e.ltv_deciles = vec![9, 10],
            "\"7\" is not among [\"9\", \"10\"]",
        ),
        (
            "tenure_cohort",
            |e| e.tenure_cohorts = vec!["0-90d".into()],
            "\"2y+\" is not among",
        ),
        (
            "acquisition_channel",
            |e| e.acquisition_channels = vec!["retail".into()],
            "\"social\" is not among",
        ),
        (
            "vertical",
            |e| e.verticals = vec!["pet".into()],
            "\"coffee\" is not among",
        ),
        (
            "product_line",
            |e| e.product_lines = vec!["decaf".into()],
            "the member bought espresso",
        ),
        (
            "plan_tier",
            |e| e.plan_tiers = vec!["premium".into()],
            "\"plus\" is not among",
        ),
        (
            "state",
            |e| e.excluded_states = vec!["US-CA".into()],
            "may not be shown in US-CA",
        ),
        (
            "country",
            |e| e.countries = vec!["GB".into()],
            "\"US\" is not among [\"GB\"]",
        ),
        (
            "loyalty_tier",
            |e| e.loyalty_tiers = vec!["platinum".into()],
            "\"gold\" is not among",
        ),
        (
            "payment_method",
            |e| e.payment_methods = vec!["paypal".into()],
            "\"card\" is not among",
        ),
        (
            "billing_frequency",
            |e| e.billing_frequencies = vec!["annual".into()],
            "\"monthly\" is not among",
        ),
        (
            "shipping_zip",
            |e| e.shipping_zip_prefixes = vec!["100".into()],
            "starting [\"100\"]",
        ),
        (
            "reason_cluster",
            |e| e.reason_clusters = vec![ReasonCluster::Price],
            "limited to reason_cluster",
        ),
        (
            "borrower_status",
            |e| e.borrower_statuses = vec!["current".into()],
            "\"none\" is not among",
        ),
        (
            "prior_redemptions",
            |e| e.max_prior_redemptions = Some(0),
            "redeemed 1 offers before; the offer allows at most 0",
        ),
    ];
    for (dimension, edit, explains) in cases {
        let mut o = offer("a");
        edit(&mut o.eligibility);
        assert_rejects(
            &o,
            &member(),
            RejectionStage::Eligibility,
            dimension,
            explains,
        );
    }
    // And the allow-lists admit a member inside them.
    let mut o = offer("a");
    o.eligibility.states = vec!["US-CA".into(), "US-NY".into()];
    o.eligibility.ltv_deciles = vec![7];
    o.eligibility.reason_clusters = vec![ReasonCluster::Price];
    let mut m = member();
    m.reason_cluster = Some(ReasonCluster::Price);
    eligible(&o, &m);
}

#[test]
fn a_downgrade_tier_offer_needs_a_tier_below_the_members_in_their_program() {
    use crate::member::TierBelow;
    use loyalty_contracts::{Program, TierChange};
    let mut downgrade = offer("bold:downgrade");
    downgrade.offer_type = OfferType::DowngradeTier;
    // Tiers listed out of rank order: the one below is found by rank.
    let mut program = Program::three_tier_spend("p");
    program.tiers.reverse();
    let below = |tier: Option<&str>| TierBelow::of(Some(&program), tier);
    assert_eq!(
        below(Some("gold")),
        TierBelow::Tier(TierChange {
            program_id: "p".into(),
            from_tier_id: "gold".into(),
            to_tier_id: "silver".into(),
        })
    );
    assert_eq!(
        below(Some("silver")),
        TierBelow::Tier(TierChange {
            program_id: "p".into(),
            from_tier_id: "silver".into(),
            to_tier_id: "member".into(),
        })
    );
    assert_eq!(below(Some("platinum")), TierBelow::Unknown);
    assert_eq!(below(None), TierBelow::Unknown);
    assert_eq!(TierBelow::of(None, Some("gold")), TierBelow::Unknown);

    let mut m = member();
    m.tier_below = below(Some("gold"));
    eligible(&downgrade, &m);
    m.tier_below = below(Some("member"));
    assert_rejects(
        &downgrade,
        &m,
        RejectionStage::Eligibility,
        "tier_below",
        "the member holds member, the entry tier of p: there is no tier to move down to",
    );
    m.tier_below = below(Some("platinum"));
    assert_rejects(
        &downgrade,
        &m,
        RejectionStage::Eligibility,
        "tier_below",
        "the member's tier or program (loyalty.programs.v1) is unknown",
    );
    // Every other type ignores it.
    eligible(&offer("a"), &m);
}

#[test]
fn classification_keeps_an_offer_to_its_moment_and_members() {
    let mut o = offer("a");
    o.classification.retention_stages = vec![RetentionStage::WinBack];
    assert_rejects(
        &o,
        &member(),
        RejectionStage::Eligibility,
        "classification.retention_stage",
        "\"Cancelling\" is not among",
    );
    let mut o = offer("a");
    o.classification.cohorts = vec!["champions".into()];
    assert_rejects(
        &o,
        &member(),
        RejectionStage::Eligibility,
        "classification.cohort",
        "\"at_risk\" is not among",
    );
}

#[test]
fn a_version_not_yet_or_no_longer_in_effect_is_not_proposed() {
    let mut o = offer("a");
    o.version.effective_from = Timestamp(NOW + DAY);
    assert_rejects(
        &o,
        &member(),
        RejectionStage::Version,
        "effective_from",
        "takes effect at",
    );
    let mut o = offer("a");
    o.version.effective_to = Some(Timestamp(NOW - DAY));
    assert_rejects(
        &o,
        &member(),
        RejectionStage::Version,
        "effective_to",
        "version 1 ended",
    );
}

#[test]
fn each_cost_cap_rejects_an_offer_that_costs_too_much() {
    let m = member();
    let mut o = offer("ltv");
    o.caps.ltv_bound = true;
    o.value.fixed_cost_minor = 4_000; // 40.00 + 7.50 > 40.00 incremental
    assert_rejects(
        &o,
        &m,
        RejectionStage::CostCap,
        "ltv_bound",
        "expected cost 4750 USD exceeds the member's expected incremental LTV 4000 USD for offer",
    );

    let mut o = offer("margin");
    o.caps.margin_bound_bp = Some(200); // 2% of 300.00 = 6.00 < 7.50
    assert_rejects(
        &o,
        &m,
        RejectionStage::CostCap,
        "margin_bound",
        "exceeds 200 bp of the member's 12-month margin (600 of 30000 USD)",
    );

    let mut o = offer("gross");
    o.caps.cogs_share_bp = Some(6_000);
    o.caps.gross_margin_floor_bp = Some(3_000);
    // (42.50 − 30.00) / 42.50 = 29.4% < 30%.
    assert_rejects(
        &o,
        &m,
        RejectionStage::CostCap,
        "gross_margin_floor",
        "keeps a gross margin of 29.4%, below the floor of 30.0%",
    );

    let mut o = offer("net");
    o.caps.cogs_share_bp = Some(5_000);
    o.caps.fulfilment_cost_minor = Some(800);
    o.caps.payment_fee_bp = Some(300);
    o.caps.net_margin_floor_bp = Some(2_000);
    // (42.50 − 25.00 − 8.00 − 1.275) / 42.50 = 19.4% < 20%.
    assert_rejects(
        &o,
        &m,
        RejectionStage::CostCap,
        "net_margin_floor",
        "net margin of 19.4%",
    );

    let mut o = offer("contribution");
    o.caps.cogs_share_bp = Some(5_000);
    o.caps.contribution_margin_floor_bp = Some(3_000);
    o.value.fixed_cost_minor = 1_000;
    // (42.50 − 25.00 − 10.00) / 42.50 = 17.6% < 30%; gross alone would be 41.2%.
    assert_rejects(
        &o,
        &m,
        RejectionStage::CostCap,
        "contribution_margin_floor",
        "contribution margin of 17.6%",
    );

    let mut o = offer("payback");
    o.caps.cac_payback_max_days = Some(5);
    // 7.50 at 300.00 a year: 9 days.
    assert_rejects(
        &o,
        &m,
        RejectionStage::CostCap,
        "cac_payback",
        "takes 9 days to earn back the cost of 750 USD; the limit is 5 days",
    );

    let mut o = offer("min");
    o.value.min_order_minor = Some(6_000);
    assert_rejects(
        &o,
        &m,
        RejectionStage::CostCap,
        "min_order",
        "is below the offer's minimum order (6000 USD)",
    );
}

#[test]
fn an_offer_that_needs_the_members_value_is_ruled_out_until_ltv_values_them() {
    // ltv's record before a fit: no expected order value, P(alive) or incremental value.
    let mut m = member();
    if let Some(l) = m.ltv.as_mut() {
        l.expected_order_value_minor = None;
        l.p_alive = None;
    }
    let explains = "ltv has not valued the member yet (no fit scores their history), so an offer priced on their orders or bounded by their value cannot be costed";
    let unvalued = |o: &loyalty_contracts::CatalogOffer| {
        assert_rejects(o, &m, RejectionStage::CostCap, "member_ltv", explains);
        assert_eq!(rejection(o, &m).value, "unvalued");
    };
    unvalued(&offer("discount"));
    let mut pause = offer("pause");
    pause.offer_type = OfferType::PauseOneCycle;
    pause.value.percent_off_bp = None;
    unvalued(&pause);
    // A call costs what it costs whatever the member orders: still priced...
    let mut call = offer("call");
    call.offer_type = OfferType::CustomerSuccessCall;
    call.value.percent_off_bp = None;
    call.value.fixed_cost_minor = 1_500;
    assert_eq!(eligible(&call, &m).pricing.cost.mean_minor, 1_500);
    // ...unless a cap bounds it by the value ltv has not given.
    let mut bounded = call.clone();
    bounded.caps.ltv_bound = true;
    unvalued(&bounded);
    // A record naming no currency values nothing the cost could be held against.
    if let Some(l) = m.ltv.as_mut() {
        l.currency = String::new();
    }
    assert_rejects(
        &call,
        &m,
        RejectionStage::CostCap,
        "member_ltv",
        "names no currency",
    );
}

#[test]
fn a_margin_floor_rejects_an_offer_that_leaves_no_revenue() {
    let mut o = offer("whole");
    o.value.percent_off_bp = None;
    o.value.amount_off_minor = Some(8_000); // more than the 50.00 order
    o.caps.gross_margin_floor_bp = Some(1_000);
    assert_rejects(
        &o,
        &member(),
        RejectionStage::CostCap,
        "gross_margin_floor",
        "the member's typical order (5000 USD) leaves no revenue after the offer to keep the floor of 10.0%",
    );
}

#[test]
fn cost_follows_cycles_and_the_chance_the_member_orders() {
    let mut m = member();
    if let Some(l) = m.ltv.as_mut() {
        l.p_alive = Some(0.5);
    }
    let mut o = offer("a");
    o.value.duration_cycles = Some(4);
    let e = eligible(&o, &m);
    // 7.50 per cycle, 4 cycles, half of them used on average; 80%: 1 to 3 cycles.
    assert_eq!(
        (
            e.pricing.cost.mean_minor,
            e.pricing.cost.low_minor,
            e.pricing.cost.high_minor
        ),
        (1_500, 750, 2_250)
    );
    let mut pause = offer("pause");
    pause.offer_type = OfferType::PauseTwoCycles;
    pause.value.percent_off_bp = None;
    // Two skipped orders at 40% margin of 50.00, each used with probability 0.5.
    assert_eq!(eligible(&pause, &m).pricing.cost.mean_minor, 2_000);
}

#[test]
fn expiration_controls_decide_and_change_the_window() {
    let m = member();
    // The last date counts in the offer's time zone: 2025-06-14 ended in Tokyo at
    // 15:00 UTC that day, before NOW (2025-06-15 12:00 UTC).
    let mut o = offer("a");
    o.expiration.expires_on = Some(Date::from_ymd(2025, 6, 14).unwrap_or_default());
    o.expiration.time_zone = Some("Asia/Tokyo".into());
    assert_rejects(
        &o,
        &m,
        RejectionStage::Expiration,
        "expires_on",
        "expired at the end of 2025-06-14 in Asia/Tokyo",
    );
    // The time zone decides: 2025-06-15 is over in Kiritimati (UTC+14) at NOW, and
    // still running in UTC.
    let mut o = offer("a");
    o.expiration.expires_on = Some(Date::from_ymd(2025, 6, 15).unwrap_or_default());
    o.expiration.time_zone = Some("Pacific/Kiritimati".into());
    assert_rejects(
        &o,
        &m,
        RejectionStage::Expiration,
        "expires_on",
        "in Pacific/Kiritimati",
    );
    o.expiration.time_zone = Some("UTC".into());
    let e = eligible(&o, &m);
    assert_eq!(e.expires_at, Some(Timestamp(NOW + 12 * 3_600_000 - 1)));
    // Rolling window and grace period set the member's expiry.
    let mut o = offer("a");
    o.expiration.rolling_window_days = Some(7);
    o.expiration.grace_days = Some(3);
    let e = eligible(&o, &m);
    assert_eq!(e.expires_at, Some(Timestamp(NOW + 7 * DAY)));
    assert_eq!(e.grace_until, Some(Timestamp(NOW + 10 * DAY)));
}

#[test]
fn an_offer_already_held_is_extended_by_its_rule_or_not_proposed_again() {
    let mut m = member();
    m.held = vec![held("a", "stripe")];
    let o = offer("a");
    assert_rejects(
        &o,
        &m,
        RejectionStage::Expiration,
        "extension",
        "already holds stripe:a@1 and the offer has no extension rule",
    );
    let mut o = offer("a");
    o.expiration.extension = Some(Extension {
        days: 5,
        max_extensions: 1,
    });
    let e = eligible(&o, &m);
    assert_eq!(e.extends.as_deref(), Some("proposal-a"));
    assert_eq!(e.expires_at, Some(Timestamp(NOW + 15 * DAY)));
    m.held[0].extensions = 1;
    assert_rejects(
        &o,
        &m,
        RejectionStage::Expiration,
        "extension",
        "extended 1 of 1 times",
    );
    // Past its grace period the held offer no longer counts.
    m.held[0].expires_at = Some(Timestamp(NOW - 2 * DAY));
    m.held[0].grace_until = Some(Timestamp(NOW - DAY));
    assert_eq!(eligible(&o, &m).extends, None);
}

#[test]
fn each_stacking_rule_rejects_a_conflict_and_explains_a_stack() {
    let base = || {
        let mut m = member();
        m.held = vec![held("h", "shopify")];
        m
    };
    let mut o = offer("a");
    o.stacking.rule = StackRule::Exclusive;
    assert_rejects(
        &o,
        &base(),
        RejectionStage::Stacking,
        "stack_rule",
        "the offer is exclusive and the member holds shopify:h@1",
    );

    let mut m = base();
    m.held[0].rule = StackRule::Exclusive;
    assert_rejects(
        &offer("a"),
        &m,
        RejectionStage::Stacking,
        "stack_rule",
        "which is exclusive",
    );

    let mut m = base();
    m.held[0].stack_group = Some("winback".into());
    let mut o = offer("a");
    o.stacking.stack_group = Some("winback".into());
    assert_rejects(
        &o,
        &m,
        RejectionStage::Stacking,
        "stack_group",
        "of stack group \"winback\", which holds one offer",
    );
    o.stacking.rule = StackRule::BestOf;
    m.held[0].value_to_member_minor = 900; // worth more than this offer's 7.50
    assert_rejects(
        &o,
        &m,
        RejectionStage::Stacking,
        "best_of_stack",
        "the held shopify:h@1 is worth 900 USD to the member, this offer 750",
    );
    m.held[0].value_to_member_minor = 500;
    let e = eligible(&o, &m);
    assert_eq!(e.replaces, vec!["proposal-h".to_owned()]);
    assert_eq!(
        e.stacking_explanation,
        "best of stack group \"winback\": replaces proposal-h; stacks with nothing else"
    );

    let mut m = base();
    m.held[0].vendor = "stripe".into();
    let mut o = offer("a");
    o.stacking.vendor_conflict = true;
    assert_rejects(
        &o,
        &m,
        RejectionStage::Stacking,
        "vendor_conflict",
        "from the same vendor (stripe)",
    );

    let mut m = base();
    m.held[0].loyalty_program_id = Some("gold-club".into());
    let mut o = offer("a");
    o.stacking.loyalty_program_id = Some("gold-club".into());
    assert_rejects(
        &o,
        &m,
        RejectionStage::Stacking,
        "loyalty_program_conflict",
        "same loyalty program (gold-club)",
    );

    let mut m = base();
    m.held[0].referral_program_id = Some("friends".into());
    let mut o = offer("a");
    o.stacking.referral_program_id = Some("friends".into());
    assert_rejects(
        &o,
        &m,
        RejectionStage::Stacking,
        "referral_program_conflict",
        "same referral program (friends)",
    );

    let mut o = offer("a");
    o.stacking.per_subscriber_cap = Some(1);
    assert_rejects(
        &o,
        &base(),
        RejectionStage::Stacking,
        "per_subscriber_cap",
        "would hold 2 offers (shopify:h@1 and this one); the cap is 1",
    );

    let mut o = offer("a");
    o.stacking.per_product_cap_bp = Some(2_000);
    assert_rejects(
        &o,
        &base(),
        RejectionStage::Stacking,
        "per_product_cap",
        "(1000 bp) plus this one come to 2500 bp; the cap is 2000 bp",
    );
    // Held offers on other product lines do not count against it.
    let mut m = base();
    m.held[0].product_lines = vec!["decaf".into()];
    o.eligibility.product_lines = vec!["espresso".into()];
    eligible(&o, &m);

    let mut o = offer("a");
    o.stacking.per_cart_cap_minor = Some(1_000);
    assert_rejects(
        &o,
        &base(),
        RejectionStage::Stacking,
        "per_cart_cap",
        "held offers take 500 USD and this one 750 USD: 1250 USD in all, above the cart cap of 1000 USD",
    );

    let e = eligible(&offer("a"), &base());
    assert_eq!(
        e.stacking_explanation,
        "Additive: stacks with shopify:h@1 within every cap"
    );
}

#[test]
fn each_localisation_dimension_rejects_or_changes_the_content() {
    let l = |country: &str, language: &str, currency: &str| Localisation {
        country: country.into(),
        language: language.into(),
        currency: currency.into(),
        title: format!("{language}-{country} title"),
        body: String::new(),
        disclosure: Some(format!("{country} disclosure")),
        cancellation_rule: Some(format!("{country} cancel online")),
        tax_inclusive: false,
        tax_rate_bp: None,
        return_policy: Some(format!("{country} 30 days")),
    };
    let m = member();
    // Country: not localised for the member's country.
    let mut o = offer("a");
    o.localisations = vec![l("GB", "en", "GBP")];
    assert_rejects(
        &o,
        &m,
        RejectionStage::Localisation,
        "country",
        "localised for [\"GB\"] only",
    );
    // Language: the member's language wins over the country's first.
    o.localisations = vec![l("US", "es", "USD"), l("US", "en", "USD")];
    assert_eq!(eligible(&o, &m).content.title, "en-US title");
    // Currency: shown in the localisation's currency through the FX table…
    o.localisations = vec![l("US", "en", "EUR")];
    assert_eq!(eligible(&o, &m).content.value_minor, 675);
    // …and not shown without a rate.
    o.localisations = vec![l("US", "en", "CHF")];
    assert_rejects(
        &o,
        &m,
        RejectionStage::Localisation,
        "currency",
        "the FX table has no rate for CHF",
    );
    // Tax: tax-inclusive amounts include it.
    let mut taxed = l("US", "en", "USD");
    taxed.tax_inclusive = true;
    taxed.tax_rate_bp = Some(2_000);
    o.localisations = vec![taxed];
    assert_eq!(eligible(&o, &m).content.value_minor, 900);
    // Disclosure: a savings claim needs one.
    let mut bare = l("US", "en", "USD");
    bare.disclosure = None;
    o.localisations = vec![bare.clone()];
    o.compliance.claims = vec![Claim {
        text: "Save 15%".into(),
        substantiation_ref: Some("doc-1".into()),
    }];
    assert_rejects(
        &o,
        &m,
        RejectionStage::Localisation,
        "disclosure",
        "savings claims need",
    );
    o.localisations = vec![l("US", "en", "USD")];
    assert_eq!(
        eligible(&o, &m).content.disclosure.as_deref(),
        Some("US disclosure")
    );
    // Cancellation rule: needed when the offer changes an auto-renewing plan.
    bare.disclosure = Some("d".into());
    bare.cancellation_rule = None;
    o.localisations = vec![bare.clone()];
    o.compliance.changes_auto_renewal = true;
    assert_rejects(
        &o,
        &m,
        RejectionStage::Localisation,
        "cancellation_rule",
        "changes an auto-renewing plan needs",
    );
    // Return policy: needed for goods.
    bare.cancellation_rule = Some("c".into());
    bare.return_policy = None;
    o.localisations = vec![bare];
    o.offer_type = OfferType::GiftBundle;
    assert_rejects(
        &o,
        &m,
        RejectionStage::Localisation,
        "return_policy",
        "ships goods needs",
    );
}

#[test]
fn ranking_prefers_the_larger_margin_and_breaks_ties_by_id() {
    let m = member();
    let mut small = offer("b");
    small.value.percent_off_bp = Some(1_000);
    let big = offer("c");
    let mut costly = offer("a");
    costly.value.percent_off_bp = Some(5_000);
    let mut twin = offer("0");
    twin.value.percent_off_bp = Some(1_000);
    let mut burn = offer("burn");
    burn.caps.burn_rate = Some(BurnRate {
        max_minor_per_day: 1,
        window_days: 1,
    });
    burn.eligibility.countries = vec!["FR".into()];
    let catalog = [small, big, costly, twin, burn].map(std::sync::Arc::new);
    let (eligible, rejected) = rank(&catalog, &m, Moment::Cancellation, &fx(), usize::MAX);
    let order: Vec<&str> = eligible.iter().map(|e| e.offer.offer_id.as_str()).collect();
    assert_eq!(order, ["stripe:0", "stripe:b", "stripe:c", "stripe:a"]);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].offer_id, "stripe:burn");
}
