use super::*;
use loyalty_contracts::{OrderPlaced, OrderReturned, PointsEarned, PointsRedeemed, Tier};

fn program() -> Program {
    let tier = |id: &str, rank, threshold| Tier {
        tier_id: id.into(),
        name: id.into(),
        rank,
        threshold,
        earn_multiplier: 1.0,
    };
    Program {
        program_id: "p".into(),
        name: "p".into(),
        currency: "USD".into(),
        qualifying_metric: QualifyingMetric::Spend,
        window: TierWindow::Rolling,
        window_days: 365,
        grace_days: 30,
        tiers: vec![
            tier("base", 0, 0),
            tier("silver", 1, 10_000),
            tier("gold", 2, 25_000),
        ],
        points_per_unit: 1.0,
        point_value_minor: 1.0,
        points_expiry_days: None,
        auto_renew_fee_minor: None,
    }
}

fn at(y: i32, m: u32, d: u32) -> Timestamp {
    Timestamp(Date::from_ymd(y, m, d).unwrap().start().0 + 3_600_000)
}

fn event(id: &str, when: Timestamp, payload: Payload) -> MemberEvent {
    MemberEvent {
        event_id: id.into(),
        member_id: "m".into(),
        brand_id: "b".into(),
        occurred_at: when,
        source: "test".into(),
        source_member_id: None,
        payload,
    }
}

fn order(id: &str, when: Timestamp, amount_minor: i64) -> MemberEvent {
    event(
        id,
        when,
        Payload::OrderPlaced(OrderPlaced {
            order_id: id.into(),
            amount_minor,
            currency: "USD".into(),
            margin_minor: Some(amount_minor / 4),
            items: 1,
            location_id: None,
            product_line: None,
        }),
    )
}

fn fold(events: &[MemberEvent]) -> MemberFold {
    let mut f = MemberFold::default();
    let p = program();
    for e in events {
        validate(e).unwrap();
        f.apply_event(e, &Settings::default()).unwrap();
        f.evaluate_tier(Some(&p));
    }
    f
}

#[test]
fn same_day_orders_are_one_transaction_in_any_order() {
    let events = [
        order("a", at(1997, 1, 1), 1000),
        order("b", at(1997, 1, 1), 500),
        order("c", at(1997, 2, 1), 2000),
        order("d", at(1997, 3, 1), 4000),
    ];
    let forward = fold(&events).snapshot("m", Some(&program()));
    let mut reversed = events.to_vec();
    reversed.reverse();
    let backward = fold(&reversed).snapshot("m", Some(&program()));
    let btyd = forward.btyd.clone().unwrap();
    assert_eq!((btyd.x, btyd.t_x_days, btyd.t_days), (2, 59, 59));
    assert_eq!(btyd.first_purchase, Date::from_ymd(1997, 1, 1).unwrap());
    assert_eq!(btyd.mean_repeat_value_minor, 3000.0);
    assert_eq!(forward.spend_minor, 7500);
    assert_eq!(forward.margin_minor, 250 + 125 + 500 + 1000);
    assert_eq!(
        forward.btyd, backward.btyd,
        "late events are applied by event time"
    );
    assert_eq!(forward.rfm, backward.rfm);
}

#[test]
fn duplicates_are_ignored() {
    let mut f = MemberFold::default();
    let e = order("a", at(1997, 1, 1), 1000);
    assert!(f.apply_event(&e, &Settings::default()).unwrap());
    assert!(!f.apply_event(&e, &Settings::default()).unwrap());
    assert_eq!(f.spend, 1000);
    assert_eq!(f.events_applied, 1);
}

#[test]
fn contract_violations_are_rejected() {
    assert!(validate(&order("a", at(1997, 1, 1), -1)).is_err());
    let mut e = order("a", at(1997, 1, 1), 1);
    e.member_id.clear();
    assert!(validate(&e).is_err());
    let mut e = order("", at(1997, 1, 1), 1);
    e.event_id.clear();
    assert!(validate(&e).is_err());
    let e = event(
        "r",
        at(1997, 1, 1),
        Payload::PointsRedeemed(PointsRedeemed {
            points: -3,
            reward_id: None,
        }),
    );
    assert!(validate(&e).is_err());
}

#[test]
fn tiers_promote_keep_grace_then_demote() {
    let p = program();
    let mut f = fold(&[order("a", at(1997, 1, 10), 30_000)]);
    assert_eq!(f.tier.as_ref().unwrap().tier_id, "gold");
    // A year later the rolling window no longer holds the spend: grace starts.
    f.apply_event(&order("b", at(1998, 1, 20), 100), &Settings::default())
        .unwrap();
    f.evaluate_tier(Some(&p));
    let held = f.tier.clone().unwrap();
    assert_eq!(held.tier_id, "gold");
    assert!(held.grace_until.is_some());
    // Still inside grace.
    f.apply_event(&order("c", at(1998, 2, 1), 100), &Settings::default())
        .unwrap();
    f.evaluate_tier(Some(&p));
    assert_eq!(f.tier.as_ref().unwrap().tier_id, "gold");
    // Past grace: down to what is earned.
    f.apply_event(&order("d", at(1998, 3, 1), 100), &Settings::default())
        .unwrap();
    f.evaluate_tier(Some(&p));
    let t = f.tier.clone().unwrap();
    assert_eq!((t.tier_id.as_str(), t.grace_until), ("base", None));
    let progress = f.snapshot("m", Some(&p)).tier.unwrap();
    assert_eq!(progress.qualifying_amount, 300);
    assert_eq!(progress.next_tier_id.as_deref(), Some("silver"));
    assert_eq!(progress.amount_to_next_tier, Some(9_700));
}

#[test]
fn returns_reduce_qualifying_spend() {
    let mut f = fold(&[order("a", at(1997, 1, 10), 12_000)]);
    assert_eq!(f.tier.as_ref().unwrap().tier_id, "silver");
    let r = event(
        "r",
        at(1997, 1, 11),
        Payload::OrderReturned(OrderReturned {
            order_id: "a".into(),
            amount_minor: 5_000,
            currency: "USD".into(),
        }),
    );
    f.apply_event(&r, &Settings::default()).unwrap();
    let s = f.snapshot("m", Some(&program()));
    assert_eq!((s.returns_minor, s.returns_count), (5_000, 1));
    assert_eq!(s.tier.unwrap().qualifying_amount, 7_000);
}

#[test]
fn operator_tier_changes_must_name_a_real_tier() {
    let p = program();
    let mut f = MemberFold::default();
    let change = |to: &str| TierChanged {
        program_id: "p".into(),
        from_tier: None,
        to_tier: to.into(),
        reason: "manual".into(),
    };
    assert!(
        f.apply_tier_change(&change("platinum"), Some(&p), at(1997, 1, 1))
            .is_err()
    );
    assert!(
        f.apply_tier_change(&change("gold"), None, at(1997, 1, 1))
            .is_err()
    );
    f.apply_tier_change(&change("silver"), Some(&p), at(1997, 1, 1))
        .unwrap();
    assert!(f.tier.as_ref().unwrap().manual);
}

#[test]
fn totals_that_would_overflow_are_rejected_not_wrapped() {
    let earn = |id: &str, points| {
        event(
            id,
            at(1997, 1, 1),
            Payload::PointsEarned(PointsEarned {
                points,
                reason: "purchase".into(),
                qualifying: true,
            }),
        )
    };
    let settings = Settings::default();
    let mut f = MemberFold::default();
    assert!(f.apply_event(&earn("p1", i64::MAX), &settings).unwrap());
    let mut copy = f.clone();
    let rejected = copy.apply_event(&earn("p2", i64::MAX), &settings);
    assert!(
        rejected.is_err_and(|r| r.reason.contains("overflows")),
        "the second earning is refused"
    );
    assert_eq!(f.points_balance, i64::MAX);
    assert_eq!(f.points_earned, i64::MAX);

    let mut f = MemberFold::default();
    f.apply_event(&order("a", at(1997, 1, 1), i64::MAX), &settings)
        .unwrap();
    let mut copy = f.clone();
    assert!(
        copy.apply_event(&order("b", at(1997, 1, 1), 1), &settings)
            .is_err()
    );
    let mut copy = f.clone();
    let redeem = event(
        "r",
        at(1997, 1, 2),
        Payload::PointsRedeemed(PointsRedeemed {
            points: i64::MAX,
            reward_id: None,
        }),
    );
    copy.apply_event(&redeem, &settings).unwrap();
    assert_eq!(copy.points_balance, -i64::MAX, "a debt, exactly");
    assert!(
        copy.apply_event(
            &{
                let mut again = redeem.clone();
                again.event_id = "r2".into();
                again
            },
            &settings
        )
        .is_err()
    );
}

#[test]
fn points_and_streaks() {
    let events = [
        order("a", at(1997, 1, 5), 100),
        order("b", at(1997, 2, 5), 100),
        order("c", at(1997, 3, 5), 100),
        order("d", at(1997, 6, 5), 100),
        event(
            "p1",
            at(1997, 6, 5),
            Payload::PointsEarned(PointsEarned {
                points: 50,
                reason: "purchase".into(),
                qualifying: false,
            }),
        ),
        event(
            "p2",
            at(1997, 6, 6),
            Payload::PointsRedeemed(PointsRedeemed {
                points: 20,
                reward_id: None,
            }),
        ),
    ];
    let s = fold(&events).snapshot("m", None);
    assert_eq!((s.current_streak_months, s.longest_streak_months), (1, 3));
    assert_eq!(
        (
            s.points.balance,
            s.points.earned,
            s.points.redeemed,
            s.points.redemptions
        ),
        (30, 50, 20, 1)
    );
    assert!(s.points.earn_velocity_30d > 0.0);
}

#[test]
fn old_days_retire_without_changing_the_summary() {
    let events: Vec<MemberEvent> = (0..30)
        .map(|i| {
            order(
                &format!("o{i}"),
                Timestamp(at(1990, 1, 1).0 + i * 40 * MILLIS_PER_DAY),
                1000,
            )
        })
        .collect();
    let f = fold(&events);
    assert!(f.days.len() < 30, "days beyond retention are folded");
    let b = f.snapshot("m", None).btyd.unwrap();
    assert_eq!((b.x, b.t_x_days), (29, 29 * 40));
    assert_eq!(b.mean_repeat_value_minor, 1000.0);
}

#[test]
fn the_profiles_attributes_ride_on_the_snapshot_and_the_newest_profile_wins() {
    let mut profile = MemberProfile {
        member_id: "m".into(),
        program_id: "p".into(),
        enrolled_at: at(1997, 1, 1),
        birth_date: None,
        country: "US".into(),
        region: Some("NY".into()),
        postal_code: None,
        time_zone: "America/New_York".into(),
        locale: "en-US".into(),
        currency: "USD".into(),
        objects_to_profiling: false,
        updated_at: at(1997, 1, 1),
        acquisition_channel: Some("referral".into()),
        payment_method: Some("paypal".into()),
        billing_frequency: Some("monthly".into()),
        borrower_status: Some("none".into()),
        vertical: Some("coffee".into()),
        plan_tier: Some("plus".into()),
        reenrolled_at: None,
    };
    let mut f = MemberFold::default();
    f.apply_profile(&profile);
    let attributes = f.snapshot("m", Some(&program())).attributes.unwrap();
    assert_eq!(
        (
            attributes.acquisition_channel.as_deref(),
            attributes.payment_method.as_deref(),
            attributes.billing_frequency.as_deref(),
            attributes.borrower_status.as_deref(),
            attributes.vertical.as_deref(),
            attributes.plan_tier.as_deref(),
        ),
        (
            Some("referral"),
            Some("paypal"),
            Some("monthly"),
            Some("none"),
            Some("coffee"),
            Some("plus")
        )
    );
    // A newer profile that changes the payment method and no longer states a plan.
    profile.payment_method = Some("card".into());
    profile.plan_tier = None;
    f.apply_profile(&profile);
    let attributes = f.snapshot("m", None).attributes.unwrap();
    assert_eq!(attributes.payment_method.as_deref(), Some("card"));
    assert_eq!(attributes.plan_tier, None);
    // A v1 profile states none of it.
    for field in [
        &mut profile.acquisition_channel,
        &mut profile.payment_method,
        &mut profile.billing_frequency,
        &mut profile.borrower_status,
        &mut profile.vertical,
    ] {
        *field = None;
    }
    f.apply_profile(&profile);
    assert_eq!(f.snapshot("m", None).attributes, None);
}

#[test]
fn profile_attributes_longer_than_an_id_are_refused() {
    let profile = MemberProfile {
        member_id: "m".into(),
        program_id: "p".into(),
        enrolled_at: at(1997, 1, 1),
        birth_date: None,
        country: "US".into(),
        region: None,
        postal_code: None,
        time_zone: "UTC".into(),
        locale: "en-US".into(),
        currency: "USD".into(),
        objects_to_profiling: false,
        updated_at: at(1997, 1, 1),
        acquisition_channel: None,
        payment_method: None,
        billing_frequency: None,
        borrower_status: Some("x".repeat(10_000)),
        vertical: None,
        plan_tier: None,
        reenrolled_at: None,
    };
    let refused = super::contract::validate_profile(&profile).unwrap_err();
    assert!(
        refused
            .reason
            .starts_with("borrower_status is 10000 bytes long"),
        "{}",
        refused.reason
    );
}
