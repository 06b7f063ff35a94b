package dev.loyaltyswarm.bench;

import java.io.ByteArrayOutputStream;
import java.util.List;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;

/**
 * Start-up check that {@link MemberFold#writeSnapshot} writes the contract's member-state
 * schema field for field: a small fold is written, read back with Avro's
 * GenericDatumReader against the schema, and compared. The app refuses to start otherwise.
 */
final class MemberStateCheck {
    private MemberStateCheck() {}

    static void run(Schema memberState) throws Exception {
        Program program = new Program("p", true, true, 365, 90, List.of(
                new Program.Tier("member", 0, 0), new Program.Tier("silver", 1, 10_000),
                new Program.Tier("gold", 2, 25_000)));
        MemberFold fold = new MemberFold();
        long day1 = Dates.fromYmd(1997, 1, 1) * Dates.MILLIS_PER_DAY + 43_200_000L;
        long day2 = Dates.fromYmd(1997, 3, 5) * Dates.MILLIS_PER_DAY + 43_200_000L;
        fold.applyProfile("p", day1);
        fold.applyEnvelope("e1", "m", "b", day1, "pos", "card-1");
        fold.applyOrder(day1, 12_000, "USD", null);
        fold.retireOldDays();
        fold.evaluateTier(program);
        fold.applyEnvelope("e2", "m", "b", day2, "pos", "card-1");
        fold.applyOrder(day2, 3_000, "USD", 500L);
        fold.applyEnvelope("e3", "m", "b", day2, "pos", "card-1");
        fold.applyPointsEarned(day2, 30, false);
        fold.retireOldDays();
        fold.evaluateTier(program);
        if (fold.applyEnvelope("e3", "m", "b", day2, "pos", "card-1")) {
            throw new IllegalStateException("a duplicate event id was applied");
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[5]);
        BinaryEncoder e = EncoderFactory.get().binaryEncoder(out, null);
        fold.writeSnapshot(e, "m", program);
        e.flush();
        GenericRecord r = FoldProcessor.readSnapshot(memberState, out.toByteArray());
        GenericRecord btyd = (GenericRecord) r.get("btyd");
        GenericRecord tier = (GenericRecord) r.get("tier");
        GenericRecord points = (GenericRecord) r.get("points");
        List<?> qualifyingDays = (List<?>) tier.get("qualifying_days");
        String got = String.join(",", List.of(
                r.get("member_id").toString(), r.get("as_of").toString(), r.get("events_applied").toString(),
                btyd.get("x").toString(), btyd.get("t_x_days").toString(), btyd.get("t_days").toString(),
                btyd.get("mean_repeat_value_minor").toString(), r.get("spend_minor").toString(),
                r.get("margin_minor").toString(), r.get("currency").toString(), tier.get("tier_id").toString(),
                tier.get("qualifying_amount").toString(), String.valueOf(tier.get("next_tier_id")),
                String.valueOf(tier.get("amount_to_next_tier")), String.valueOf(qualifyingDays.size()),
                points.get("earned").toString(), r.get("longest_streak_months").toString(),
                r.get("identity_links").toString(), r.get("brands").toString(),
                String.valueOf(r.get("subscription_status"))));
        String want = String.join(",", List.of(
                "m", Long.toString(day2), "3", "1", "63", "63", "3000.0", "15000", "500", "USD", "silver", "15000",
                "gold", "10000", "2", "30", "1", "[pos:card-1]", "[b]", "null"));
        if (!got.equals(want)) {
            throw new IllegalStateException("member-state encoding check failed:\n  got  " + got + "\n  want " + want);
        }
        // The fold's own store encoding round-trips.
        ByteArrayOutputStream state = new ByteArrayOutputStream();
        BinaryEncoder se = EncoderFactory.get().binaryEncoder(state, null);
        fold.encode(se);
        se.flush();
        MemberFold back = MemberFold.decode(org.apache.avro.io.DecoderFactory.get().binaryDecoder(state.toByteArray(), null));
        ByteArrayOutputStream again = new ByteArrayOutputStream();
        BinaryEncoder ae = EncoderFactory.get().binaryEncoder(again, null);
        back.encode(ae);
        ae.flush();
        if (!java.util.Arrays.equals(state.toByteArray(), again.toByteArray())) {
            throw new IllegalStateException("fold state encoding does not round-trip");
        }
    }

    public static void main(String[] args) throws Exception {
        run(new Schema.Parser().parse(MemberStateCheck.class.getResourceAsStream("/loyalty.member-state.v1-value.avsc")));
        System.out.println("ok");
    }
}
