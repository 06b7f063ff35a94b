package dev.loyaltyswarm.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;

/**
 * customer-graph's per-member fold (`agents/customer-graph/src/fold/mod.rs`, `MemberFold`)
 * for what the CDNOW replay writes: OrderPlaced, PointsEarned and profiles. Field names
 * follow the Rust struct; the comments on each method name the Rust function it ports.
 *
 * <p>Not kept, because no CDNOW event changes them (they stay 0 / null / empty in the
 * snapshot): returns, points redeemed and expired, redemptions, referrals, engagements,
 * subscription status. The other event kinds are counted and skipped by the processor.
 */
final class MemberFold {
    /** Dedupe window (customer-graph's `dedupe_window` default). */
    static final int DEDUPE_WINDOW = 16;
    /** Purchase-day retention (customer-graph's `retention_days` default). */
    static final int RETENTION_DAYS = 400;
    /** Most identity links and brands kept per member (`MAX_LINKS`). */
    static final int MAX_LINKS = 16;

    /** One UTC day's purchases, merged (`DaySpend`). */
    static final class DaySpend {
        int day;
        int orders;
        long spend;
        long returned;
        long qualifyingPoints;

        DaySpend(int day) {
            this.day = day;
        }
    }

    /** The held tier (`TierHold`). */
    static final class TierHold {
        final String tierId;
        final int rank;
        final long since;
        final Long graceUntil;
        final boolean manual;

        TierHold(String tierId, int rank, long since, Long graceUntil, boolean manual) {
            this.tierId = tierId;
            this.rank = rank;
            this.since = since;
            this.graceUntil = graceUntil;
            this.manual = manual;
        }
    }

    /** A contract violation: the record is refused and the state is left as it was. */
    static final class Rejected extends Exception {
        Rejected(String message) {
            super(message, null, false, false);
        }
    }

    long asOf;
    Long firstEvent;
    long eventsApplied;
    /** FNV-1a hashes of the newest event ids, oldest first. */
    long[] recentEventIds = new long[0];
    /** Purchase days inside the retention horizon, sorted by day. */
    final List<DaySpend> days = new ArrayList<>();
    int retiredOrderDays;
    Integer firstOrderDay;
    long firstDaySpend;
    Integer lastOrderDay;
    /** Months with a purchase, sorted (year * 12 + month - 1). */
    int[] orderMonths = new int[0];
    long spend;
    long margin;
    String currency;
    long pointsBalance;
    long pointsEarned;
    String programId;
    TierHold tier;
    final List<String> identityLinks = new ArrayList<>(2);
    final List<String> brands = new ArrayList<>(2);

    /** `loyalty_contracts::fnv1a`. */
    static long fnv1a(String text) {
        long h = 0xcbf29ce484222325L;
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x00000100000001b3L;
        }
        return h;
    }

    private DaySpend dayMut(int day) {
        int lo = 0, hi = days.size();
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            int d = days.get(mid).day;
            if (d == day) {
                return days.get(mid);
            } else if (d < day) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        DaySpend fresh = new DaySpend(day);
        days.add(lo, fresh);
        return fresh;
    }

    private static long add(String what, long total, long amount) throws Rejected {
        try {
            return Math.addExact(total, amount);
        } catch (ArithmeticException e) {
            throw new Rejected(what + " " + amount + " overflows the member's total " + total);
        }
    }

    /**
     * The envelope part of `apply_event`: dedupe, as_of, first event, brands, identity
     * links. Returns false for a duplicate, which changes nothing.
     */
    boolean applyEnvelope(String eventId, String memberId, String brandId, long occurredAt, String source,
            String sourceMemberId) {
        long id = fnv1a(eventId);
        for (long seen : recentEventIds) {
            if (seen == id) {
                return false;
            }
        }
        int keep = Math.min(recentEventIds.length, DEDUPE_WINDOW - 1);
        long[] ids = new long[keep + 1];
        System.arraycopy(recentEventIds, recentEventIds.length - keep, ids, 0, keep);
        ids[keep] = id;
        recentEventIds = ids;
        eventsApplied += 1;
        asOf = Math.max(asOf, occurredAt);
        firstEvent = firstEvent == null ? occurredAt : Math.min(firstEvent, occurredAt);
        remember(brands, brandId);
        if (sourceMemberId != null && !sourceMemberId.equals(memberId)) {
            remember(identityLinks, source + ":" + sourceMemberId);
        }
        return true;
    }

    /** `apply_event`, `Payload::OrderPlaced`. */
    void applyOrder(long occurredAt, long amount, String orderCurrency, Long marginMinor) throws Rejected {
        int day = Dates.dayOf(occurredAt);
        if (currency == null) {
            currency = orderCurrency;
        }
        DaySpend d = dayMut(day);
        d.orders = d.orders == Integer.MAX_VALUE ? d.orders : d.orders + 1;
        d.spend = add("order amount_minor", d.spend, amount);
        boolean newDay = d.orders == 1;
        spend = add("order amount_minor", spend, amount);
        margin = add("order margin_minor", margin, marginMinor == null ? 0 : marginMinor);
        if (newDay) {
            if (firstOrderDay == null || day < firstOrderDay) {
                firstOrderDay = day;
                firstDaySpend = 0;
            }
            lastOrderDay = lastOrderDay == null ? day : Math.max(lastOrderDay, day);
            int month = Dates.monthOf(day);
            int at = java.util.Arrays.binarySearch(orderMonths, month);
            if (at < 0) {
                int i = -at - 1;
                int[] months = new int[orderMonths.length + 1];
                System.arraycopy(orderMonths, 0, months, 0, i);
                months[i] = month;
                System.arraycopy(orderMonths, i, months, i + 1, orderMonths.length - i);
                orderMonths = months;
            }
        }
        if (firstOrderDay != null && firstOrderDay == day) {
            firstDaySpend = add("order amount_minor", firstDaySpend, amount);
        }
    }

    /** `apply_event`, `Payload::PointsEarned`. */
    void applyPointsEarned(long occurredAt, long points, boolean qualifying) throws Rejected {
        pointsEarned = add("points earned", pointsEarned, points);
        pointsBalance = add("points earned", pointsBalance, points);
        if (qualifying) {
            DaySpend d = dayMut(Dates.dayOf(occurredAt));
            d.qualifyingPoints = add("points earned", d.qualifyingPoints, points);
        }
    }

    /** `retire_old_days`: fold days beyond the retention horizon into aggregates. */
    void retireOldDays() {
        int horizon = (int) Math.max((long) Dates.dayOf(asOf) - RETENTION_DAYS, Integer.MIN_VALUE);
        int keepFrom = 0;
        int retired = 0;
        while (keepFrom < days.size() && days.get(keepFrom).day < horizon) {
            if (days.get(keepFrom).orders > 0) {
                retired++;
            }
            keepFrom++;
        }
        if (keepFrom > 0) {
            retiredOrderDays = (int) Math.min((long) retiredOrderDays + retired, Integer.MAX_VALUE);
            days.subList(0, keepFrom).clear();
        }
    }

    /** `apply_profile`. */
    void applyProfile(String profileProgramId, long updatedAt) {
        programId = profileProgramId;
        if (asOf == 0) {
            asOf = updatedAt;
        }
    }

    /** Qualifying amount of one day in the program's metric. */
    private static long qualifyingAmount(Program program, DaySpend d) {
        return program.spendMetric ? d.spend - d.returned : d.qualifyingPoints;
    }

    /** `qualifying`: the amount in the window containing as_of (window end is separate). */
    private long qualifying(Program program) {
        int today = Dates.dayOf(asOf);
        int from = program.windowStart(today);
        long amount = 0;
        for (DaySpend d : days) {
            if (d.day >= from && d.day <= today) {
                amount += qualifyingAmount(program, d);
            }
        }
        return Math.max(amount, 0);
    }

    /** `qualifying`'s second half: when the window closes. */
    private long windowEnd(Program program) {
        int today = Dates.dayOf(asOf);
        int from = program.windowStart(today);
        if (program.rolling) {
            int oldest = today;
            for (DaySpend d : days) {
                if (d.day >= from) {
                    oldest = d.day;
                    break;
                }
            }
            return ((long) oldest + program.windowDays) * Dates.MILLIS_PER_DAY;
        }
        int year = Dates.ymd(today)[0];
        return (long) Dates.fromYmd(year + 1, 1, 1) * Dates.MILLIS_PER_DAY;
    }

    /** `evaluate_tier`. */
    void evaluateTier(Program program) {
        if (program == null) {
            return;
        }
        long amount = qualifying(program);
        if (!program.tiers.isEmpty()) {
            tier = program.evaluateHold(tier, amount, asOf);
        }
    }

    /** `streaks`: (current, longest) monthly purchase streaks. */
    private int[] streaks() {
        int longest = 0, run = 0;
        Integer previous = null;
        for (int month : orderMonths) {
            run = previous != null && previous == month - 1 ? run + 1 : 1;
            longest = Math.max(longest, run);
            previous = month;
        }
        int currentMonth = Dates.monthOf(Dates.dayOf(asOf));
        int current = previous != null && previous >= currentMonth - 1 ? run : 0;
        return new int[] {current, longest};
    }

    /**
     * `snapshot`, written straight into `out` as a `loyalty.member-state.v1` Avro body
     * (fields in the contract schema's order; checked at start-up by {@link MemberStateCheck}).
     */
    void writeSnapshot(BinaryEncoder out, String memberId, Program program) throws IOException {
        int orderDays = retiredOrderDays;
        for (DaySpend d : days) {
            if (d.orders > 0) {
                orderDays++;
            }
        }
        int today = Dates.dayOf(asOf);
        out.writeString(memberId);
        out.writeLong(asOf);
        out.writeLong(eventsApplied);
        boolean btyd = firstOrderDay != null && lastOrderDay != null && orderDays > 0;
        int x = orderDays - 1;
        if (btyd) {
            long repeatSpend = spend - firstDaySpend;
            out.writeIndex(1);
            out.writeInt(x);
            out.writeInt(lastOrderDay - firstOrderDay);
            out.writeInt(today - firstOrderDay);
            out.writeInt(firstOrderDay);
            out.writeInt(lastOrderDay);
            out.writeDouble(x > 0 ? (double) repeatSpend / (double) x : 0.0);
            // rfm
            out.writeIndex(1);
            out.writeInt(today - lastOrderDay);
            out.writeInt(x + 1);
            out.writeDouble((double) spend / (double) (x + 1));
        } else {
            out.writeIndex(0);
            out.writeIndex(0);
        }
        out.writeLong(spend);
        out.writeLong(margin);
        out.writeLong(0); // returns_minor: no OrderReturned in the CDNOW replay
        out.writeInt(0); // returns_count
        if (currency == null) {
            out.writeIndex(0);
        } else {
            out.writeIndex(1);
            out.writeString(currency);
        }
        writeTierProgress(out, program, today);
        // points
        long tenureDays = firstEvent == null ? 1 : Math.max((asOf - firstEvent) / Dates.MILLIS_PER_DAY, 1);
        out.writeLong(pointsBalance);
        out.writeLong(pointsEarned);
        out.writeLong(0); // redeemed: no PointsRedeemed in the CDNOW replay
        out.writeLong(0); // expired: no PointsExpired in the CDNOW replay
        out.writeDouble((double) pointsEarned * 30.0 / (double) tenureDays);
        out.writeDouble(0.0 * 30.0 / (double) tenureDays); // burn velocity
        out.writeInt(0); // redemptions
        int[] streaks = streaks();
        out.writeInt(streaks[0]);
        out.writeInt(streaks[1]);
        out.writeInt(0); // referrals
        out.writeInt(0); // engagements
        out.writeIndex(0); // subscription_status: null
        writeStrings(out, identityLinks);
        writeStrings(out, brands);
    }

    /** `tier_progress`. */
    private void writeTierProgress(BinaryEncoder out, Program program, int today) throws IOException {
        if (program == null || tier == null) {
            out.writeIndex(0);
            return;
        }
        long amount = qualifying(program);
        long windowEnd = windowEnd(program);
        Program.Tier next = program.nextAbove(tier.rank);
        out.writeIndex(1);
        out.writeString(program.programId);
        out.writeString(tier.tierId);
        out.writeInt(tier.rank);
        out.writeLong(tier.since);
        out.writeLong(amount);
        if (next == null) {
            out.writeIndex(0);
            out.writeIndex(0);
        } else {
            out.writeIndex(1);
            out.writeString(next.tierId);
            out.writeIndex(1);
            out.writeLong(Math.max(next.threshold - amount, 0));
        }
        out.writeLong(windowEnd);
        if (tier.graceUntil == null) {
            out.writeIndex(0);
        } else {
            out.writeIndex(1);
            out.writeLong(tier.graceUntil);
        }
        out.writeBoolean(tier.manual);
        int from = program.windowStart(today);
        int count = 0;
        for (DaySpend d : days) {
            if (d.day >= from && d.day <= today && qualifyingAmount(program, d) != 0) {
                count++;
            }
        }
        out.writeIndex(1);
        out.writeArrayStart();
        out.setItemCount(count);
        for (DaySpend d : days) {
            long a = qualifyingAmount(program, d);
            if (d.day >= from && d.day <= today && a != 0) {
                out.startItem();
                out.writeInt(d.day);
                out.writeLong(a);
            }
        }
        out.writeArrayEnd();
    }

    private static void writeStrings(BinaryEncoder out, List<String> values) throws IOException {
        out.writeArrayStart();
        out.setItemCount(values.size());
        for (String v : values) {
            out.startItem();
            out.writeString(v);
        }
        out.writeArrayEnd();
    }

    private static void remember(List<String> list, String value) {
        if (!value.isEmpty() && list.size() < MAX_LINKS && !list.contains(value)) {
            list.add(value);
        }
    }

    // ---- state store encoding: Avro binary primitives (zig-zag varints), no schema ----

    void encode(BinaryEncoder out) throws IOException {
        out.writeLong(asOf);
        writeNullableLong(out, firstEvent);
        out.writeLong(eventsApplied);
        out.writeInt(recentEventIds.length);
        for (long id : recentEventIds) {
            out.writeFixed(longBytes(id));
        }
        out.writeInt(days.size());
        for (DaySpend d : days) {
            out.writeInt(d.day);
            out.writeInt(d.orders);
            out.writeLong(d.spend);
            out.writeLong(d.returned);
            out.writeLong(d.qualifyingPoints);
        }
        out.writeInt(retiredOrderDays);
        writeNullableLong(out, firstOrderDay == null ? null : (long) firstOrderDay);
        out.writeLong(firstDaySpend);
        writeNullableLong(out, lastOrderDay == null ? null : (long) lastOrderDay);
        out.writeInt(orderMonths.length);
        for (int m : orderMonths) {
            out.writeInt(m);
        }
        out.writeLong(spend);
        out.writeLong(margin);
        writeNullableString(out, currency);
        out.writeLong(pointsBalance);
        out.writeLong(pointsEarned);
        writeNullableString(out, programId);
        if (tier == null) {
            out.writeBoolean(false);
        } else {
            out.writeBoolean(true);
            out.writeString(tier.tierId);
            out.writeInt(tier.rank);
            out.writeLong(tier.since);
            writeNullableLong(out, tier.graceUntil);
            out.writeBoolean(tier.manual);
        }
        out.writeInt(identityLinks.size());
        for (String s : identityLinks) {
            out.writeString(s);
        }
        out.writeInt(brands.size());
        for (String s : brands) {
            out.writeString(s);
        }
    }

    static MemberFold decode(BinaryDecoder in) throws IOException {
        MemberFold f = new MemberFold();
        f.asOf = in.readLong();
        f.firstEvent = readNullableLong(in);
        f.eventsApplied = in.readLong();
        f.recentEventIds = new long[in.readInt()];
        byte[] eight = new byte[8];
        for (int i = 0; i < f.recentEventIds.length; i++) {
            in.readFixed(eight);
            long v = 0;
            for (byte b : eight) {
                v = (v << 8) | (b & 0xff);
            }
            f.recentEventIds[i] = v;
        }
        int n = in.readInt();
        for (int i = 0; i < n; i++) {
            DaySpend d = new DaySpend(in.readInt());
            d.orders = in.readInt();
            d.spend = in.readLong();
            d.returned = in.readLong();
            d.qualifyingPoints = in.readLong();
            f.days.add(d);
        }
        f.retiredOrderDays = in.readInt();
        Long first = readNullableLong(in);
        f.firstOrderDay = first == null ? null : first.intValue();
        f.firstDaySpend = in.readLong();
        Long last = readNullableLong(in);
        f.lastOrderDay = last == null ? null : last.intValue();
        f.orderMonths = new int[in.readInt()];
        for (int i = 0; i < f.orderMonths.length; i++) {
            f.orderMonths[i] = in.readInt();
        }
        f.spend = in.readLong();
        f.margin = in.readLong();
        f.currency = readNullableString(in);
        f.pointsBalance = in.readLong();
        f.pointsEarned = in.readLong();
        f.programId = readNullableString(in);
        if (in.readBoolean()) {
            String id = in.readString();
            int rank = in.readInt();
            long since = in.readLong();
            Long grace = readNullableLong(in);
            f.tier = new TierHold(id, rank, since, grace, in.readBoolean());
        }
        n = in.readInt();
        for (int i = 0; i < n; i++) {
            f.identityLinks.add(in.readString());
        }
        n = in.readInt();
        for (int i = 0; i < n; i++) {
            f.brands.add(in.readString());
        }
        return f;
    }

    private static byte[] longBytes(long v) {
        byte[] b = new byte[8];
        for (int i = 7; i >= 0; i--) {
            b[i] = (byte) v;
            v >>>= 8;
        }
        return b;
    }

    private static void writeNullableLong(BinaryEncoder out, Long v) throws IOException {
        if (v == null) {
            out.writeBoolean(false);
        } else {
            out.writeBoolean(true);
            out.writeLong(v);
        }
    }

    private static Long readNullableLong(BinaryDecoder in) throws IOException {
        return in.readBoolean() ? in.readLong() : null;
    }

    private static void writeNullableString(BinaryEncoder out, String v) throws IOException {
        if (v == null) {
            out.writeBoolean(false);
        } else {
            out.writeBoolean(true);
            out.writeString(v);
        }
    }

    private static String readNullableString(BinaryDecoder in) throws IOException {
        return in.readBoolean() ? in.readString() : null;
    }
}
