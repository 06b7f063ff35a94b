package dev.loyaltyswarm.bench;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;

/**
 * Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro binary body),
 * decoded with the writer's schema from the registry into a GenericRecord. One per
 * processor instance (not thread-safe: it reuses its decoder and records).
 */
final class Wire {
    /** A value that cannot be used; counted and dropped (customer-graph dead-letters it). */
    static final class Undecodable extends Exception {
        Undecodable(String message) {
            super(message, null, false, false);
        }
    }

    private final Registry registry;
    private final Map<Integer, GenericDatumReader<GenericRecord>> readers = new HashMap<>();
    private BinaryDecoder decoder;

    Wire(Registry registry) {
        this.registry = registry;
    }

    GenericRecord decode(byte[] bytes) throws Undecodable {
        if (bytes == null || bytes.length < 5 || bytes[0] != 0) {
            throw new Undecodable("not Confluent wire format");
        }
        int id = ((bytes[1] & 0xff) << 24) | ((bytes[2] & 0xff) << 16) | ((bytes[3] & 0xff) << 8) | (bytes[4] & 0xff);
        GenericDatumReader<GenericRecord> reader = readers.get(id);
        if (reader == null) {
            Schema schema;
            try {
                schema = registry.schema(id);
            } catch (RuntimeException e) {
                throw new Undecodable(e.getMessage());
            }
            reader = new GenericDatumReader<>(schema);
            readers.put(id, reader);
        }
        decoder = DecoderFactory.get().binaryDecoder(bytes, 5, bytes.length - 5, decoder);
        try {
            GenericRecord record = reader.read(null, decoder);
            if (!decoder.isEnd()) {
                throw new Undecodable("trailing bytes after the Avro body (schema id " + id + ")");
            }
            return record;
        } catch (IOException | RuntimeException e) {
            throw new Undecodable("Avro body does not decode with schema id " + id + ": " + e);
        }
    }
}
