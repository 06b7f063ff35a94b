package dev.loyaltyswarm.bench;

/**
 * One decoded input on its way to the fold: a member event or a profile. Lives only
 * between processors of one task (never serialised); the re-key step forwards `raw`.
 */
final class In {
    final boolean profile;
    final byte[] raw;
    final String memberId;
    // event envelope
    final String eventId;
    final String brandId;
    final long at; // occurred_at, or the profile's updated_at
    final String source;
    final String sourceMemberId;
    // payload
    final String kind; // OrderPlaced, PointsEarned, ... (null for a profile)
    final long amount; // order amount_minor or points
    final String currency;
    final Long margin;
    final boolean qualifying;
    // profile
    final String programId;

    private In(boolean profile, byte[] raw, String memberId, String eventId, String brandId, long at, String source,
            String sourceMemberId, String kind, long amount, String currency, Long margin, boolean qualifying,
            String programId) {
        this.profile = profile;
        this.raw = raw;
        this.memberId = memberId;
        this.eventId = eventId;
        this.brandId = brandId;
        this.at = at;
        this.source = source;
        this.sourceMemberId = sourceMemberId;
        this.kind = kind;
        this.amount = amount;
        this.currency = currency;
        this.margin = margin;
        this.qualifying = qualifying;
        this.programId = programId;
    }

    static In event(byte[] raw, String memberId, String eventId, String brandId, long at, String source,
            String sourceMemberId, String kind, long amount, String currency, Long margin, boolean qualifying) {
        return new In(false, raw, memberId, eventId, brandId, at, source, sourceMemberId, kind, amount, currency,
                margin, qualifying, null);
    }

    static In profile(byte[] raw, String memberId, String programId, long updatedAt) {
        return new In(true, raw, memberId, null, null, updatedAt, null, null, null, 0, null, null, false, programId);
    }
}
