package dev.loyaltyswarm.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.ValueAndTimestamp;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * customer-graph's `handle` for one decoded input: read the member's fold from the
 * RocksDB store, apply the event or profile, evaluate the tier against the member's
 * program (from the global programs table), write the fold back (changelogged) and
 * emit the member-state snapshot, timestamped with the member's as_of as customer-graph
 * stamps its outputs. A FixedKeyProcessor: the key never changes, so Kafka Streams knows
 * nothing downstream needs a repartition.
 */
final class FoldProcessor implements FixedKeyProcessor<String, In, byte[]> {
    private static final Logger LOG = LoggerFactory.getLogger(FoldProcessor.class);
    static final AtomicLong DUPLICATES = new AtomicLong();
    static final AtomicLong REJECTED = new AtomicLong();
    static final AtomicLong EMITTED = new AtomicLong();

    private final String store;
    private final String programsStore;
    private final String defaultProgramId;
    private final int outputSchemaId;
    private final Registry registry;

    private FixedKeyProcessorContext<String, byte[]> context;
    private KeyValueStore<String, byte[]> members;
    private KeyValueStore<String, ValueAndTimestamp<byte[]>> programs;
    /** Decoded programs by id, with the bytes they were decoded from. */
    private final Map<String, Object[]> programCache = new HashMap<>();
    private Wire wire;

    private final ByteArrayOutputStream buffer = new ByteArrayOutputStream(512);
    private BinaryEncoder encoder;
    private BinaryDecoder decoder;

    FoldProcessor(String store, String programsStore, String defaultProgramId, int outputSchemaId, Registry registry) {
        this.store = store;
        this.programsStore = programsStore;
        this.defaultProgramId = defaultProgramId;
        this.outputSchemaId = outputSchemaId;
        this.registry = registry;
    }

    @Override
    public void init(FixedKeyProcessorContext<String, byte[]> context) {
        this.context = context;
        this.members = context.getStateStore(store);
        this.programs = context.getStateStore(programsStore);
        this.wire = new Wire(registry);
    }

    @Override
    public void process(FixedKeyRecord<String, In> record) {
        String key = record.key();
        In in = record.value();
        byte[] stored = members.get(key);
        MemberFold fold;
        try {
            fold = stored == null ? new MemberFold() : decodeFold(stored);
            if (in.profile) {
                fold.applyProfile(in.programId, in.at);
            } else {
                if (!fold.applyEnvelope(in.eventId, in.memberId, in.brandId, in.at, in.source, in.sourceMemberId)) {
                    DUPLICATES.incrementAndGet();
                    return; // a duplicate: nothing changes, nothing is emitted
                }
                switch (in.kind) {
                    case "OrderPlaced" -> fold.applyOrder(in.at, in.amount, in.currency, in.margin);
                    case "PointsEarned" -> fold.applyPointsEarned(in.at, in.amount, in.qualifying);
                    default -> throw new IllegalStateException("unexpected kind " + in.kind);
                }
                fold.retireOldDays();
            }
        } catch (MemberFold.Rejected e) {
            if (REJECTED.incrementAndGet() <= 10) {
                LOG.warn("dropping an event of {}: {}", key, e.getMessage());
            }
            return; // the stored fold is untouched
        } catch (IOException e) {
            throw new UncheckedIOException("state of " + key + " does not decode", e);
        }
        Program program = program(fold.programId == null ? defaultProgramId : fold.programId);
        fold.evaluateTier(program);
        try {
            byte[] snapshot = snapshot(fold, key, program);
            members.put(key, encodeFold(fold));
            context.forward(record.withValue(snapshot).withTimestamp(fold.asOf));
            EMITTED.incrementAndGet();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Program program(String id) {
        ValueAndTimestamp<byte[]> stored = programs.get(id);
        if (stored == null || stored.value() == null) {
            return null; // unknown program: no tier progress, as in customer-graph
        }
        byte[] raw = stored.value();
        Object[] cached = programCache.get(id);
        if (cached != null && Arrays.equals((byte[]) cached[0], raw)) {
            return (Program) cached[1];
        }
        Program program;
        try {
            program = Program.decode(id, wire.decode(raw));
        } catch (Wire.Undecodable | RuntimeException e) {
            LOG.warn("program {} is unusable: {}", id, e.getMessage());
            program = null;
        }
        programCache.put(id, new Object[] {raw, program});
        return program;
    }

    private byte[] snapshot(MemberFold fold, String key, Program program) throws IOException {
        buffer.reset();
        buffer.write(0);
        buffer.write(outputSchemaId >>> 24);
        buffer.write(outputSchemaId >>> 16);
        buffer.write(outputSchemaId >>> 8);
        buffer.write(outputSchemaId);
        encoder = EncoderFactory.get().binaryEncoder(buffer, encoder);
        fold.writeSnapshot(encoder, key, program);
        encoder.flush();
        return buffer.toByteArray();
    }

    private byte[] encodeFold(MemberFold fold) throws IOException {
        buffer.reset();
        encoder = EncoderFactory.get().binaryEncoder(buffer, encoder);
        fold.encode(encoder);
        encoder.flush();
        return buffer.toByteArray();
    }

    private MemberFold decodeFold(byte[] bytes) throws IOException {
        decoder = DecoderFactory.get().binaryDecoder(bytes, decoder);
        return MemberFold.decode(decoder);
    }

    /** Decode a snapshot written by this processor (the start-up check uses it). */
    static GenericRecord readSnapshot(org.apache.avro.Schema schema, byte[] body) throws IOException {
        BinaryDecoder d = DecoderFactory.get().binaryDecoder(body, 5, body.length - 5, null);
        GenericRecord r = new GenericDatumReader<GenericRecord>(schema).read(null, d);
        if (!d.isEnd()) {
            throw new IOException("snapshot has trailing bytes");
        }
        return r;
    }
}
