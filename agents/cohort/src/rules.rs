//! The named segments and lifecycle stages, as data and two small functions (the README,
//! "Segments and lifecycle", prints the same tables).

use loyalty_contracts::{Lifecycle, Segment};

/// Segment by recency score (rows, 5 = most recent) and the rounded mean of frequency and
/// monetary scores (columns, FM 1..5).
pub const GRID: [[Segment; 5]; 5] = {
    use Segment::*;
    [
        // R = 1
        [Lost, Lost, AtRisk, CannotLoseThem, CannotLoseThem],
        // R = 2
        [Hibernating, AboutToSleep, AtRisk, AtRisk, CannotLoseThem],
        // R = 3
        [AboutToSleep, NeedAttention, NeedAttention, Loyal, Loyal],
        // R = 4
        [
            Promising,
            PotentialLoyalist,
            PotentialLoyalist,
            Loyal,
            Champions,
        ],
        // R = 5
        [
            New,
            PotentialLoyalist,
            PotentialLoyalist,
            Champions,
            Champions,
        ],
    ]
};

pub fn segment(recency: i32, frequency: i32, monetary: i32) -> Segment {
    let fm = ((frequency + monetary) as f64 / 2.0).round() as i32;
    GRID[(recency.clamp(1, 5) - 1) as usize][(fm.clamp(1, 5) - 1) as usize]
}

/// Multiples of the typical inter-purchase time that bound the stages.
pub const ACTIVE_WITHIN: f64 = 1.5;
pub const LAPSING_WITHIN: f64 = 3.0;
pub const DORMANT_WITHIN: f64 = 6.0;
/// A gap before the last purchase longer than this many typical gaps makes a return a
/// reactivation.
pub const REACTIVATION_GAP: f64 = 3.0;

/// What the stage is judged on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rhythm {
    /// Repeat transactions.
    pub x: i32,
    /// Typical days between purchases (own mean, or the population median).
    pub typical: f64,
    pub days_since_last: i32,
    /// Days between the last purchase and the one before it, when known.
    pub last_gap: Option<i32>,
    /// Typical gap before the last one (own mean over the earlier gaps, or the population
    /// median).
    pub typical_before: f64,
}

pub fn lifecycle(r: Rhythm) -> Lifecycle {
    let since = f64::from(r.days_since_last);
    let typical = r.typical.max(1.0);
    if r.x == 0 && since <= 2.0 * typical {
        return Lifecycle::New;
    }
    if since <= ACTIVE_WITHIN * typical {
        let returned = r
            .last_gap
            .is_some_and(|gap| f64::from(gap) > REACTIVATION_GAP * r.typical_before.max(1.0));
        return if returned {
            Lifecycle::Reactivated
        } else {
            Lifecycle::Active
        };
    }
    if since <= LAPSING_WITHIN * typical {
        Lifecycle::Lapsing
    } else if since <= DORMANT_WITHIN * typical {
        Lifecycle::Dormant
    } else {
        Lifecycle::Churned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_segment_is_reachable_and_the_corners_are_right() {
        let mut seen: Vec<Segment> = GRID.iter().flatten().copied().collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 11);
        assert_eq!(segment(5, 5, 5), Segment::Champions);
        assert_eq!(segment(1, 1, 1), Segment::Lost);
        assert_eq!(segment(1, 5, 5), Segment::CannotLoseThem);
        assert_eq!(segment(5, 1, 1), Segment::New);
    }

    #[test]
    fn stages_scale_with_the_members_own_rhythm() {
        let rhythm = |typical, since, gap: Option<i32>| Rhythm {
            x: 4,
            typical,
            days_since_last: since,
            last_gap: gap,
            typical_before: typical,
        };
        // 40 days without a purchase: active for a monthly buyer, churned for a weekly one.
        assert_eq!(lifecycle(rhythm(30.0, 40, None)), Lifecycle::Active);
        assert_eq!(lifecycle(rhythm(5.0, 40, None)), Lifecycle::Churned);
        assert_eq!(lifecycle(rhythm(30.0, 80, None)), Lifecycle::Lapsing);
        assert_eq!(lifecycle(rhythm(30.0, 150, None)), Lifecycle::Dormant);
        assert_eq!(
            lifecycle(rhythm(30.0, 10, Some(200))),
            Lifecycle::Reactivated
        );
        let newcomer = Rhythm {
            x: 0,
            ..rhythm(30.0, 20, None)
        };
        assert_eq!(lifecycle(newcomer), Lifecycle::New);
    }
}
