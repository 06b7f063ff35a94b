package dev.loyaltyswarm.bench;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decodes and checks one input record as customer-graph's `handle` does before it touches
 * state: Confluent wire format via the registry, the contract checks of
 * `fold/contract.rs` (`validate`, `validate_profile`), the event-time check of
 * `Context::check_event_time`, and for profiles that `member_id` is the record key
 * (`decode_keyed`). A record that fails is counted and dropped where customer-graph
 * dead-letters it; a profile tombstone is ignored, as customer-graph ignores it.
 */
final class Decode implements FixedKeyProcessor<String, byte[], In> {
    private static final Logger LOG = LoggerFactory.getLogger(Decode.class);
    /** customer-graph's `max_event_time_ahead_ms` default: one hour. */
    static final long MAX_EVENT_TIME_AHEAD_MS = 3_600_000L;
    private static final int MAX_ID_BYTES = 256;

    static final AtomicLong REJECTED = new AtomicLong();
    static final AtomicLong UNSUPPORTED = new AtomicLong();

    private final Registry registry;
    private final boolean profiles;
    private FixedKeyProcessorContext<String, In> context;
    private Wire wire;

    Decode(Registry registry, boolean profiles) {
        this.registry = registry;
        this.profiles = profiles;
    }

    @Override
    public void init(FixedKeyProcessorContext<String, In> context) {
        this.context = context;
        this.wire = new Wire(registry);
    }

    @Override
    public void process(FixedKeyRecord<String, byte[]> record) {
        if (record.value() == null) {
            if (!profiles) {
                reject(record, "an event tombstone");
            }
            return; // a profile tombstone is ignored (erasure is planned in customer-graph)
        }
        try {
            GenericRecord value = wire.decode(record.value());
            In in = profiles ? profile(record, value) : event(record, value);
            if (in != null) {
                context.forward(record.withValue(in));
            }
        } catch (Wire.Undecodable | MemberFold.Rejected | RuntimeException e) {
            reject(record, e.getMessage());
        }
    }

    private static void reject(FixedKeyRecord<String, byte[]> record, String why) {
        if (REJECTED.incrementAndGet() <= 10) {
            LOG.warn("dropping record keyed {}: {}", record.key(), why);
        }
    }

    private static String str(GenericRecord r, String field) {
        Object v = r.get(field);
        return v == null ? null : v.toString();
    }

    private static void bounded(String what, String id) throws MemberFold.Rejected {
        if (id.length() * 3 > MAX_ID_BYTES && id.getBytes(StandardCharsets.UTF_8).length > MAX_ID_BYTES) {
            throw new MemberFold.Rejected(what + " is longer than " + MAX_ID_BYTES + " bytes");
        }
    }

    private static void nonnegative(String what, long v) throws MemberFold.Rejected {
        if (v < 0) {
            throw new MemberFold.Rejected(what + " is negative (" + v + ")");
        }
    }

    private static void currency(String c) throws MemberFold.Rejected {
        if (c.length() != 3 || !c.chars().allMatch(ch -> ch >= 'A' && ch <= 'Z')) {
            throw new MemberFold.Rejected("currency " + c + " is not an ISO 4217 code");
        }
    }

    private static void eventTime(String what, long at, long logged) throws MemberFold.Rejected {
        if (at < 0) {
            throw new MemberFold.Rejected(what + " " + at + " ms is before 1970-01-01");
        }
        if (logged >= 0 && at - logged > MAX_EVENT_TIME_AHEAD_MS) {
            throw new MemberFold.Rejected(what + " is more than max_event_time_ahead_ms after its log timestamp");
        }
    }

    private In event(FixedKeyRecord<String, byte[]> record, GenericRecord e) throws MemberFold.Rejected {
        String eventId = str(e, "event_id");
        String memberId = str(e, "member_id");
        String brandId = str(e, "brand_id");
        String source = str(e, "source");
        String sourceMemberId = str(e, "source_member_id");
        long at = (Long) e.get("occurred_at");
        if (eventId.isBlank()) {
            throw new MemberFold.Rejected("event_id is empty");
        }
        if (memberId.isBlank()) {
            throw new MemberFold.Rejected("member_id is empty");
        }
        bounded("event_id", eventId);
        bounded("member_id", memberId);
        bounded("brand_id", brandId);
        bounded("source", source);
        if (sourceMemberId != null) {
            bounded("source_member_id", sourceMemberId);
        }
        GenericRecord payload = (GenericRecord) e.get("payload");
        String kind = payload.getSchema().getName();
        In in;
        switch (kind) {
            case "OrderPlaced" -> {
                long amount = (Long) payload.get("amount_minor");
                String cur = str(payload, "currency");
                nonnegative("order amount_minor", amount);
                currency(cur);
                int items = (Integer) payload.get("items");
                if (items < 0) {
                    throw new MemberFold.Rejected("order items is negative (" + items + ")");
                }
                in = In.event(record.value(), memberId, eventId, brandId, at, source, sourceMemberId, kind, amount,
                        cur, (Long) payload.get("margin_minor"), false);
            }
            case "PointsEarned" -> {
                long points = (Long) payload.get("points");
                nonnegative("points earned", points);
                in = In.event(record.value(), memberId, eventId, brandId, at, source, sourceMemberId, kind, points,
                        null, null, (Boolean) payload.get("qualifying"));
            }
            default -> {
                // Not written by the CDNOW replay; this peer does not fold it (README).
                if (UNSUPPORTED.incrementAndGet() <= 10) {
                    LOG.warn("skipping a {} event: the peer folds only what the CDNOW replay writes", kind);
                }
                return null;
            }
        }
        eventTime("occurred_at", at, record.timestamp());
        return in;
    }

    private In profile(FixedKeyRecord<String, byte[]> record, GenericRecord p) throws MemberFold.Rejected {
        String memberId = str(p, "member_id");
        if (!memberId.equals(record.key())) {
            throw new MemberFold.Rejected("member_id " + memberId + " differs from the record key");
        }
        String programId = str(p, "program_id");
        bounded("member_id", memberId);
        bounded("program_id", programId);
        long updatedAt = (Long) p.get("updated_at");
        eventTime("updated_at", updatedAt, record.timestamp());
        return In.profile(record.value(), memberId, programId, updatedAt);
    }
}
