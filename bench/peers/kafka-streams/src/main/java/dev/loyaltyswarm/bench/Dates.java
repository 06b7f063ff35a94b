package dev.loyaltyswarm.bench;

/** UTC days and months as customer-graph counts them (loyalty-contracts `time.rs`). */
final class Dates {
    static final long MILLIS_PER_DAY = 86_400_000L;

    private Dates() {}

    /** The UTC day (days since 1970-01-01) an instant falls on: `Timestamp::day`. */
    static int dayOf(long ms) {
        return (int) Math.floorDiv(ms, MILLIS_PER_DAY);
    }

    /** Year of a day (Howard Hinnant's civil_from_days, as `Date::ymd`). */
    static int[] ymd(int day) {
        long z = day + 719_468L;
        long era = Math.floorDiv(z, 146_097L);
        long doe = z - era * 146_097L;
        long yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        long mp = (5 * doy + 2) / 153;
        int d = (int) (doy - (153 * mp + 2) / 5 + 1);
        int m = (int) (mp < 10 ? mp + 3 : mp - 9);
        int y = (int) (yoe + era * 400 + (m <= 2 ? 1 : 0));
        return new int[] {y, m, d};
    }

    /** Days since 1970-01-01 of a proleptic Gregorian date: `Date::from_ymd`. */
    static int fromYmd(int year, int month, int day) {
        long y = month <= 2 ? year - 1 : year;
        long era = Math.floorDiv(y, 400L);
        long yoe = y - era * 400;
        long m = month;
        long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + day - 1;
        long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return (int) (era * 146_097 + doe - 719_468);
    }

    /** year * 12 + month - 1: customer-graph's `month_of`. */
    static int monthOf(int day) {
        int[] ymd = ymd(day);
        return ymd[0] * 12 + ymd[1] - 1;
    }
}
