//! `loyalty.programs.v1` (compacted, key = program id): the rules of a tier program.
//!
//! A global table: every agent instance reads it whole, so tier math never depends on
//! which partition a member landed in.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::{Date, MILLIS_PER_DAY};

/// The tier a member holds and why: customer-graph keeps it per member, tier-transition
/// walks it forward in time. Not a topic value, so no Avro schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierHold {
    pub tier_id: String,
    pub rank: i32,
    /// Since when (ms since the epoch).
    pub since: i64,
    /// Set while below the held tier's threshold: the tier is kept until this instant.
    pub grace_until: Option<i64>,
    /// Set by an operator TierChanged event rather than by qualification.
    pub manual: bool,
}

/// What tier qualification is measured in: Spend = net spend (orders minus returns) in
/// minor units; Points = qualifying points earned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
pub enum QualifyingMetric {
    Spend,
    Points,
}

/// How the qualification window moves: Rolling = the last window_days days, recomputed
/// continuously; CalendarYear = calendar years (UTC), progress resets every 1 January.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
pub enum TierWindow {
    Rolling,
    CalendarYear,
}

/// One tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Tier {
    /// Tier id, referenced by TierChanged events.
    pub tier_id: String,
    /// Display name.
    pub name: String,
    /// 0 for the entry tier, increasing upwards; ranks are unique.
    pub rank: i32,
    /// Qualifying amount (minor units or points, per the program's metric) needed to hold the tier.
    pub threshold: i64,
    /// Points earned per unit spent are multiplied by this.
    pub earn_multiplier: f64,
}

/// A loyalty program and its tier rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct Program {
    /// Program id; also the record key.
    pub program_id: String,
    /// Display name.
    pub name: String,
    /// ISO 4217 currency of spend thresholds and point value.
    pub currency: String,
    /// What qualification counts.
    pub qualifying_metric: QualifyingMetric,
    /// Rolling or calendar window.
    pub window: TierWindow,
    /// Length of a rolling window in days (ignored for calendar windows).
    pub window_days: i32,
    /// Days a member keeps a tier after falling below its threshold.
    pub grace_days: i32,
    /// Tiers, in any order; thresholds must increase strictly with rank.
    pub tiers: Vec<Tier>,
    /// Base points per major currency unit spent.
    pub points_per_unit: f64,
    /// Value of one point in minor units (for liability).
    pub point_value_minor: f64,
    /// Days after which earned points expire; null = never.
    pub points_expiry_days: Option<i32>,
    /// Annual auto-renewing membership fee in minor units, for paid tiers.
    pub auto_renew_fee_minor: Option<i64>,
}

impl Program {
    /// The tier program the demo documents (README, "The demo tier program") and tests
    /// and benchmarks share: Member, Silver and Gold at 0, 10,000 and 25,000 minor units
    /// of spend over a rolling year, 90 days' grace, earn multipliers 1, 1.25 and 1.5,
    /// one point per unit worth a cent, points expiring after a year.
    pub fn three_tier_spend(program_id: &str) -> Program {
        let tier = |tier_id: &str, name: &str, rank, threshold, earn_multiplier| Tier {
            tier_id: tier_id.into(),
            name: name.into(),
            rank,
            threshold,
            earn_multiplier,
        };
        Program {
            program_id: program_id.into(),
            name: program_id.into(),
            currency: "USD".into(),
            qualifying_metric: QualifyingMetric::Spend,
            window: TierWindow::Rolling,
            window_days: 365,
            grace_days: 90,
            tiers: vec![
                tier("member", "Member", 0, 0, 1.0),
                tier("silver", "Silver", 1, 10_000, 1.25),
                tier("gold", "Gold", 2, 25_000, 1.5),
            ],
            points_per_unit: 1.0,
            point_value_minor: 1.0,
            points_expiry_days: Some(365),
            auto_renew_fee_minor: None,
        }
    }

    /// Tiers sorted by rank, lowest first.
    pub fn tiers_by_rank(&self) -> Vec<&Tier> {
        let mut tiers: Vec<&Tier> = self.tiers.iter().collect();
        tiers.sort_by_key(|t| t.rank);
        tiers
    }

    /// Points earned per minor currency unit spent in a tier with `earn_multiplier`
    /// (`points_per_unit` is per major unit; minor units are hundredths).
    pub fn points_per_minor(&self, earn_multiplier: f64) -> f64 {
        self.points_per_unit * earn_multiplier / 100.0
    }

    /// First day (days since the epoch) whose qualifying amount still counts on `today`.
    pub fn window_start(&self, today: i32) -> i32 {
        match self.window {
            TierWindow::Rolling => today - self.window_days + 1,
            TierWindow::CalendarYear => {
                let (year, _, _) = Date(today).ymd();
                Date::from_ymd(year, 1, 1).map_or(today, |d| d.0)
            }
        }
    }

    /// The tier held after qualifying with `amount` at `now` (ms), the one rule both
    /// customer-graph and tier-transition apply: promotion is immediate; a member who falls
    /// below the held tier keeps it for `grace_days`, then drops to what they earn; getting
    /// back above the threshold during grace clears it. A hold naming a tier the program no
    /// longer has is replaced by what the member earns. `None` only when there are no tiers.
    pub fn evaluate_hold(&self, held: Option<TierHold>, amount: i64, now: i64) -> Option<TierHold> {
        let tiers = self.tiers_by_rank();
        let entry = *tiers.first()?;
        let earned = tiers
            .iter()
            .rev()
            .find(|t| amount >= t.threshold)
            .copied()
            .unwrap_or(entry);
        let hold = |t: &Tier| TierHold {
            tier_id: t.tier_id.clone(),
            rank: t.rank,
            since: now,
            grace_until: None,
            manual: false,
        };
        Some(match held {
            None => hold(earned),
            Some(held) if !tiers.iter().any(|t| t.tier_id == held.tier_id) => hold(earned),
            Some(held) if earned.rank > held.rank => hold(earned),
            Some(held) if earned.rank == held.rank => TierHold {
                grace_until: None,
                ..held
            },
            Some(held) => match held.grace_until {
                None => TierHold {
                    grace_until: Some(now + i64::from(self.grace_days) * MILLIS_PER_DAY),
                    ..held
                },
                Some(until) if now <= until => held,
                Some(_) => hold(earned),
            },
        })
    }

    /// Every reason this program cannot be used, empty when it is sound.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.tiers.is_empty() {
            problems.push("program has no tiers".to_owned());
        }
        let tiers = self.tiers_by_rank();
        for pair in tiers.windows(2) {
            let (low, high) = (pair[0], pair[1]);
            if low.rank == high.rank {
                problems.push(format!(
                    "tiers {} and {} share rank {}",
                    low.tier_id, high.tier_id, low.rank
                ));
            } else if high.threshold <= low.threshold {
                problems.push(format!(
                    "tier {} (rank {}) has threshold {} not above tier {} (rank {}) threshold {}: thresholds overlap",
                    high.tier_id, high.rank, high.threshold, low.tier_id, low.rank, low.threshold
                ));
            }
        }
        let mut ids: Vec<&str> = self.tiers.iter().map(|t| t.tier_id.as_str()).collect();
        ids.sort_unstable();
        for pair in ids.windows(2) {
            if pair[0] == pair[1] {
                problems.push(format!("tier id {} appears twice", pair[0]));
            }
        }
        if matches!(self.window, TierWindow::Rolling) && self.window_days <= 0 {
            problems.push(format!("rolling window of {} days", self.window_days));
        }
        if self.grace_days < 0 {
            problems.push(format!("negative grace period of {} days", self.grace_days));
        }
        problems
    }
}

/// A program loaded as a reference table: checked against its key and its own rules.
impl loyalty_runtime::TableRecord for Program {
    type Value = Program;
    const WHAT: &'static str = "program";

    fn from_record(program: Program, key: &str) -> Result<Self, Vec<String>> {
        let mut problems = program.problems();
        if program.program_id != key {
            problems.push(format!(
                "id {} differs from the record key {key}",
                program.program_id
            ));
        }
        if problems.is_empty() {
            Ok(program)
        } else {
            Err(problems)
        }
    }
}
