package dev.loyaltyswarm.bench;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

import org.apache.avro.generic.GenericRecord;

/**
 * A tier program as loyalty-contracts `programs.rs` defines it, decoded from a
 * `loyalty.programs.v1` record (the same table customer-graph reads). Nothing here is
 * hard-wired: `swarm replay` publishes the CDNOW program (`cdnow-rewards`) on that topic.
 */
final class Program {
    static final class Tier {
        final String tierId;
        final int rank;
        final long threshold;

        Tier(String tierId, int rank, long threshold) {
            this.tierId = tierId;
            this.rank = rank;
            this.threshold = threshold;
        }
    }

    final String programId;
    final boolean spendMetric; // QualifyingMetric::Spend, else Points
    final boolean rolling; // TierWindow::Rolling, else CalendarYear
    final int windowDays;
    final int graceDays;
    /** Tiers sorted by rank, lowest first (`tiers_by_rank`). */
    final List<Tier> tiers;

    Program(String programId, boolean spendMetric, boolean rolling, int windowDays, int graceDays,
            List<Tier> tiers) {
        this.programId = programId;
        this.spendMetric = spendMetric;
        this.rolling = rolling;
        this.windowDays = windowDays;
        this.graceDays = graceDays;
        List<Tier> sorted = new ArrayList<>(tiers);
        sorted.sort(Comparator.comparingInt(t -> t.rank));
        this.tiers = List.copyOf(sorted);
    }

    /** Decode a program record; null when it is unusable (customer-graph dead-letters it). */
    static Program decode(String key, GenericRecord r) {
        List<Tier> tiers = new ArrayList<>();
        for (Object o : (List<?>) r.get("tiers")) {
            GenericRecord t = (GenericRecord) o;
            tiers.add(new Tier(t.get("tier_id").toString(), (Integer) t.get("rank"), (Long) t.get("threshold")));
        }
        Program p = new Program(
                r.get("program_id").toString(),
                "Spend".equals(r.get("qualifying_metric").toString()),
                "Rolling".equals(r.get("window").toString()),
                (Integer) r.get("window_days"),
                (Integer) r.get("grace_days"),
                tiers);
        return p.programId.equals(key) && p.sound() ? p : null;
    }

    /** `Program::problems` is empty. */
    private boolean sound() {
        if (tiers.isEmpty() || graceDays < 0 || (rolling && windowDays <= 0)) {
            return false;
        }
        for (int i = 1; i < tiers.size(); i++) {
            Tier low = tiers.get(i - 1), high = tiers.get(i);
            if (low.rank == high.rank || high.threshold <= low.threshold) {
                return false;
            }
        }
        return tiers.stream().map(t -> t.tierId).distinct().count() == tiers.size();
    }

    /** First day whose qualifying amount still counts on `today`: `window_start`. */
    int windowStart(int today) {
        if (rolling) {
            return today - windowDays + 1;
        }
        return Dates.fromYmd(Dates.ymd(today)[0], 1, 1);
    }

    /** `Program::evaluate_hold`: the tier held after qualifying with `amount` at `now`. */
    MemberFold.TierHold evaluateHold(MemberFold.TierHold held, long amount, long now) {
        if (tiers.isEmpty()) {
            return null;
        }
        Tier earned = tiers.get(0);
        for (int i = tiers.size() - 1; i >= 0; i--) {
            if (amount >= tiers.get(i).threshold) {
                earned = tiers.get(i);
                break;
            }
        }
        if (held == null || !hasTier(held.tierId) || earned.rank > held.rank) {
            return new MemberFold.TierHold(earned.tierId, earned.rank, now, null, false);
        }
        if (earned.rank == held.rank) {
            return new MemberFold.TierHold(held.tierId, held.rank, held.since, null, held.manual);
        }
        if (held.graceUntil == null) {
            return new MemberFold.TierHold(held.tierId, held.rank, held.since,
                    now + (long) graceDays * Dates.MILLIS_PER_DAY, held.manual);
        }
        if (now <= held.graceUntil) {
            return held;
        }
        return new MemberFold.TierHold(earned.tierId, earned.rank, now, null, false);
    }

    private boolean hasTier(String id) {
        for (Tier t : tiers) {
            if (t.tierId.equals(id)) {
                return true;
            }
        }
        return false;
    }

    /** The next tier above `rank`, or null. */
    Tier nextAbove(int rank) {
        for (Tier t : tiers) {
            if (t.rank > rank) {
                return t;
            }
        }
        return null;
    }
}
