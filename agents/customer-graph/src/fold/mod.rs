//! The per-member fold: the state customer-graph keeps for each member and how every
//! event kind changes it.

use loyalty_contracts::{
    BtydSummary, Date, MILLIS_PER_DAY, MemberAttributes, MemberEvent, MemberProfile, MemberState,
    Payload, PointsLedger, Program, QualifyingDay, QualifyingMetric, Rfm, SubscriptionStatus,
    TierChanged, TierHold, TierProgress, TierWindow, Timestamp,
};
use loyalty_runtime::Rejection;
use serde::{Deserialize, Serialize};

use crate::Settings;

mod contract;

use contract::{add, subtract};
pub use contract::{validate, validate_profile};

/// Most identity links and brands kept per member; beyond this a member is almost
/// certainly a data-quality problem, not a person.
const MAX_LINKS: usize = 16;

/// Everything that happened on one UTC day, merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaySpend {
    pub day: i32,
    /// Orders placed that day (0 = only returns or points).
    pub orders: u32,
    pub spend: i64,
    pub returned: i64,
    pub qualifying_points: i64,
}

/// customer-graph's state for one member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberFold {
    pub as_of: i64,
    pub first_event: Option<i64>,
    pub events_applied: i64,
    /// FNV-1a hashes of the newest event ids, oldest first.
    pub recent_event_ids: Vec<u64>,
    /// Purchase days inside the retention horizon, sorted by day.
    pub days: Vec<DaySpend>,
    /// Distinct order days that were folded out of `days`.
    pub retired_order_days: i32,
    pub first_order_day: Option<i32>,
    pub first_day_spend: i64,
    pub last_order_day: Option<i32>,
    /// Months (year * 12 + month - 1) with a purchase: kept for streaks beyond retention.
    pub order_months: Vec<i32>,
    pub spend: i64,
    pub margin: i64,
    pub returns: i64,
    pub returns_count: i32,
    pub currency: Option<String>,
    pub points_balance: i64,
    pub points_earned: i64,
    pub points_redeemed: i64,
    pub points_expired: i64,
    pub redemptions: i32,
    pub program_id: Option<String>,
    pub tier: Option<TierHold>,
    pub referrals: i32,
    pub engagements: i32,
    pub subscription: Option<SubscriptionStatus>,
    pub identity_links: Vec<String>,
    pub brands: Vec<String>,
    /// From the newest profile.
    pub attributes: Option<MemberAttributes>,
}

fn day_of(ms: i64) -> i32 {
    Timestamp(ms).day().0
}

fn month_of(day: i32) -> i32 {
    let (y, m, _) = Date(day).ymd();
    y * 12 + m as i32 - 1
}

impl MemberFold {
    fn day_mut(&mut self, day: i32) -> &mut DaySpend {
        let index = match self.days.binary_search_by_key(&day, |d| d.day) {
            Ok(i) => i,
            Err(i) => {
                self.days.insert(
                    i,
                    DaySpend {
                        day,
                        ..DaySpend::default()
                    },
                );
                i
            }
        };
        &mut self.days[index]
    }

    /// Apply one event. Returns false for a duplicate, which changes nothing. On a
    /// rejection the fold may be half-changed: the runtime applies `handle` to a copy
    /// and drops it.
    pub fn apply_event(
        &mut self,
        event: &MemberEvent,
        settings: &Settings,
    ) -> Result<bool, Rejection> {
        let id = loyalty_contracts::fnv1a(&event.event_id);
        if self.recent_event_ids.contains(&id) {
            return Ok(false);
        }
        if self.recent_event_ids.len() >= settings.dedupe_window {
            let excess = self.recent_event_ids.len() + 1 - settings.dedupe_window;
            self.recent_event_ids.drain(..excess);
        }
        self.recent_event_ids.push(id);
        self.events_applied += 1;

        let at = event.occurred_at.0;
        self.as_of = self.as_of.max(at);
        self.first_event = Some(self.first_event.map_or(at, |f| f.min(at)));
        let day = day_of(at);
        remember(&mut self.brands, &event.brand_id);
        if let Some(link) = &event.source_member_id
            && link != &event.member_id
        {
            remember(
                &mut self.identity_links,
                &loyalty_contracts::identity_link(&event.source, link),
            );
        }

        match &event.payload {
            Payload::OrderPlaced(order) => {
                if self.currency.is_none() {
                    self.currency = Some(order.currency.clone());
                }
                let amount = order.amount_minor;
                let new_day = {
                    let d = self.day_mut(day);
                    d.orders = d.orders.saturating_add(1);
                    d.spend = add("order amount_minor", d.spend, amount)?;
                    d.orders == 1
                };
                self.spend = add("order amount_minor", self.spend, amount)?;
                self.margin = add(
                    "order margin_minor",
                    self.margin,
                    order.margin_minor.unwrap_or(0),
                )?;
                if new_day {
                    if self.first_order_day.is_none_or(|first| day < first) {
                        // An earlier day arrived late: the old first transaction is now a repeat.
                        self.first_order_day = Some(day);
                        self.first_day_spend = 0;
                    }
                    self.last_order_day = Some(self.last_order_day.map_or(day, |l| l.max(day)));
                    let month = month_of(day);
                    if let Err(i) = self.order_months.binary_search(&month) {
                        self.order_months.insert(i, month);
                    }
                }
                if self.first_order_day == Some(day) {
                    self.first_day_spend = add("order amount_minor", self.first_day_spend, amount)?;
                }
            }
            Payload::OrderReturned(ret) => {
                let amount = ret.amount_minor;
                self.returns = add("return amount_minor", self.returns, amount)?;
                self.returns_count = self.returns_count.saturating_add(1);
                let d = self.day_mut(day);
                d.returned = add("return amount_minor", d.returned, amount)?;
            }
            Payload::PointsEarned(p) => {
                self.points_earned = add("points earned", self.points_earned, p.points)?;
                self.points_balance = add("points earned", self.points_balance, p.points)?;
                if p.qualifying {
                    let d = self.day_mut(day);
                    d.qualifying_points = add("points earned", d.qualifying_points, p.points)?;
                }
            }
            Payload::PointsRedeemed(p) => {
                self.points_redeemed = add("points redeemed", self.points_redeemed, p.points)?;
                self.points_balance = subtract("points redeemed", self.points_balance, p.points)?;
                self.redemptions = self.redemptions.saturating_add(1);
            }
            Payload::PointsExpired(p) => {
                self.points_expired = add("points expired", self.points_expired, p.points)?;
                self.points_balance = subtract("points expired", self.points_balance, p.points)?;
            }
            Payload::TierChanged(_) => {} // needs the program: see apply_tier_change
            Payload::SubscriptionChanged(s) => self.subscription = Some(s.status),
            Payload::Engagement(_) => self.engagements = self.engagements.saturating_add(1),
            Payload::ReferralCompleted(_) => self.referrals = self.referrals.saturating_add(1),
            Payload::InterventionOutcome(_) => {} // read by ltv and save-offer, not folded here
            Payload::CancellationRequested(_) => {} // opens save-offer's save flow; the
                                                   // cancellation itself arrives as SubscriptionChanged
        }
        self.retire_old_days(settings.retention_days);
        Ok(true)
    }

    /// Fold days beyond the retention horizon into aggregates.
    fn retire_old_days(&mut self, retention_days: i32) {
        let horizon = day_of(self.as_of).saturating_sub(retention_days);
        let keep_from = self.days.partition_point(|d| d.day < horizon);
        if keep_from > 0 {
            let retired = self.days[..keep_from]
                .iter()
                .filter(|d| d.orders > 0)
                .count();
            self.retired_order_days = self
                .retired_order_days
                .saturating_add(i32::try_from(retired).unwrap_or(i32::MAX));
            self.days.drain(..keep_from);
        }
    }

    pub fn apply_profile(&mut self, profile: &MemberProfile) {
        self.program_id = Some(profile.program_id.clone());
        // The newest profile is the member's whole profile (the topic is compacted): a
        // field it no longer states is no longer known.
        self.attributes = MemberAttributes::of(profile);
        if self.as_of == 0 {
            self.as_of = profile.updated_at.0;
        }
    }

    /// An operator set the tier explicitly; an unknown tier is refused, never guessed.
    pub fn apply_tier_change(
        &mut self,
        change: &TierChanged,
        program: Option<&Program>,
        at: Timestamp,
    ) -> Result<(), Rejection> {
        let program = program.ok_or_else(|| {
            Rejection::contract(format!(
                "TierChanged for program {} which is not loaded",
                change.program_id
            ))
        })?;
        if program.program_id != change.program_id {
            return Err(Rejection::contract(format!(
                "TierChanged names program {} but the member is in {}",
                change.program_id, program.program_id
            )));
        }
        let tier = program
            .tiers
            .iter()
            .find(|t| t.tier_id == change.to_tier)
            .ok_or_else(|| {
                Rejection::contract(format!(
                    "unknown tier {:?} in program {}",
                    change.to_tier, program.program_id
                ))
            })?;
        self.tier = Some(TierHold {
            tier_id: tier.tier_id.clone(),
            rank: tier.rank,
            since: at.0,
            grace_until: None,
            manual: true,
        });
        Ok(())
    }

    /// Qualifying amount in the window that contains `as_of`, and when that window closes.
    fn qualifying(&self, program: &Program) -> (i64, i64) {
        let today = day_of(self.as_of);
        let from = program.window_start(today);
        let window_end = match program.window {
            TierWindow::Rolling => {
                let oldest = self
                    .days
                    .iter()
                    .find(|d| d.day >= from)
                    .map_or(today, |d| d.day);
                (i64::from(oldest) + i64::from(program.window_days)) * MILLIS_PER_DAY
            }
            TierWindow::CalendarYear => {
                let (year, _, _) = Date(today).ymd();
                let next = Date::from_ymd(year + 1, 1, 1).map_or(today + 365, |d| d.0);
                i64::from(next) * MILLIS_PER_DAY
            }
        };
        let amount = self
            .qualifying_days(program, from, today)
            .map(|(_, amount)| amount)
            .sum::<i64>()
            .max(0);
        (amount, window_end)
    }

    /// Each day's qualifying amount between `from` and `today`, in the program's metric.
    fn qualifying_days(
        &self,
        program: &Program,
        from: i32,
        today: i32,
    ) -> impl Iterator<Item = (i32, i64)> {
        let metric = program.qualifying_metric;
        self.days
            .iter()
            .filter(move |d| d.day >= from && d.day <= today)
            .map(move |d| {
                let amount = match metric {
                    QualifyingMetric::Spend => d.spend - d.returned,
                    QualifyingMetric::Points => d.qualifying_points,
                };
                (d.day, amount)
            })
    }

    /// Move the held tier to what qualification says (the program's one rule,
    /// [`Program::evaluate_hold`]).
    pub fn evaluate_tier(&mut self, program: Option<&Program>) {
        let Some(program) = program else { return };
        let (amount, _) = self.qualifying(program);
        if !program.tiers.is_empty() {
            self.tier = program.evaluate_hold(self.tier.take(), amount, self.as_of);
        }
    }

    fn streaks(&self) -> (i32, i32) {
        let mut longest = 0;
        let mut run = 0;
        let mut previous: Option<i32> = None;
        for &month in &self.order_months {
            run = if previous == Some(month - 1) {
                run + 1
            } else {
                1
            };
            longest = longest.max(run);
            previous = Some(month);
        }
        let current_month = month_of(day_of(self.as_of));
        let current = match previous {
            Some(last) if last >= current_month - 1 => run,
            _ => 0,
        };
        (current, longest)
    }

    /// The published snapshot, with tier progress against `program` when it is known.
    pub fn snapshot(&self, member_id: &str, program: Option<&Program>) -> MemberState {
        let order_days =
            self.retired_order_days + self.days.iter().filter(|d| d.orders > 0).count() as i32;
        let today = day_of(self.as_of);
        let btyd = match (self.first_order_day, self.last_order_day) {
            (Some(first), Some(last)) if order_days > 0 => {
                let x = order_days - 1;
                let repeat_spend = self.spend - self.first_day_spend;
                Some(BtydSummary {
                    x,
                    t_x_days: last - first,
                    t_days: today - first,
                    first_purchase: Date(first),
                    last_purchase: Date(last),
                    mean_repeat_value_minor: if x > 0 {
                        repeat_spend as f64 / f64::from(x)
                    } else {
                        0.0
                    },
                })
            }
            _ => None,
        };
        let rfm = btyd.as_ref().map(|b| Rfm {
            recency_days: today - b.last_purchase.0,
            frequency: b.x + 1,
            monetary_minor: self.spend as f64 / f64::from(b.x + 1),
        });
        let tenure_days = self
            .first_event
            .map_or(1, |f| ((self.as_of - f) / MILLIS_PER_DAY).max(1));
        let per_30 = |v: i64| v as f64 * 30.0 / tenure_days as f64;
        let (current_streak, longest_streak) = self.streaks();
        MemberState {
            member_id: member_id.to_owned(),
            as_of: Timestamp(self.as_of),
            events_applied: self.events_applied,
            btyd,
            rfm,
            spend_minor: self.spend,
            margin_minor: self.margin,
            returns_minor: self.returns,
            returns_count: self.returns_count,
            currency: self.currency.clone(),
            tier: self.tier_progress(program),
            points: PointsLedger {
                balance: self.points_balance,
                earned: self.points_earned,
                redeemed: self.points_redeemed,
                expired: self.points_expired,
                earn_velocity_30d: per_30(self.points_earned),
                burn_velocity_30d: per_30(self.points_redeemed),
                redemptions: self.redemptions,
            },
            current_streak_months: current_streak,
            longest_streak_months: longest_streak,
            referrals: self.referrals,
            engagements: self.engagements,
            subscription_status: self.subscription,
            identity_links: self.identity_links.clone(),
            brands: self.brands.clone(),
            attributes: self.attributes.clone(),
        }
    }

    fn tier_progress(&self, program: Option<&Program>) -> Option<TierProgress> {
        let (program, held) = (program?, self.tier.as_ref()?);
        let (amount, window_end) = self.qualifying(program);
        let next = program
            .tiers_by_rank()
            .into_iter()
            .find(|t| t.rank > held.rank);
        Some(TierProgress {
            program_id: program.program_id.clone(),
            tier_id: held.tier_id.clone(),
            tier_rank: held.rank,
            tier_since: Timestamp(held.since),
            qualifying_amount: amount,
            next_tier_id: next.map(|t| t.tier_id.clone()),
            amount_to_next_tier: next.map(|t| (t.threshold - amount).max(0)),
            window_end: Timestamp(window_end),
            grace_until: held.grace_until.map(Timestamp),
            manual_override: held.manual,
            qualifying_days: Some(
                self.qualifying_days(
                    program,
                    program.window_start(day_of(self.as_of)),
                    day_of(self.as_of),
                )
                .filter(|&(_, amount)| amount != 0)
                .map(|(day, amount)| QualifyingDay {
                    day: Date(day),
                    amount,
                })
                .collect(),
            ),
        })
    }
}

fn remember(list: &mut Vec<String>, value: &str) {
    if !value.is_empty() && list.len() < MAX_LINKS && !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
    }
}

#[cfg(test)]
mod tests;
