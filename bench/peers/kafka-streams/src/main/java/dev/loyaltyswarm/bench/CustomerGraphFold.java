package dev.loyaltyswarm.bench;

import java.io.InputStream;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.avro.Schema;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.state.Stores;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Kafka Streams peer of loyalty-swarm's customer-graph agent for the benchmark table
 * (bench/peers/README.md): the same fold of the CDNOW replay's member events and profiles
 * into one member-state snapshot per input record.
 *
 * <pre>
 * loyalty.member-events.v1 ─ decode ─┬─ key = member_id ───────────────────────┐
 *                                    └─ key ≠ member_id ─ &lt;app&gt;-rekey-repartition ─ decode ─┤
 * loyalty.member-profiles.v1 ─ decode ────────────────────────────────────────┤
 * loyalty.programs.v1 ══ global table "programs" (in memory) ═════════════════╡
 *                                                   fold (RocksDB "members", changelogged)
 *                                                                  └─► output topic
 * </pre>
 */
public final class CustomerGraphFold {
    private static final Logger LOG = LoggerFactory.getLogger(CustomerGraphFold.class);

    static final String MEMBER_EVENTS = "loyalty.member-events.v1";
    static final String MEMBER_PROFILES = "loyalty.member-profiles.v1";
    static final String PROGRAMS = "loyalty.programs.v1";
    static final String STORE = "members";
    static final String PROGRAMS_STORE = "programs";
    static final String SNAPSHOTS_STORE = "latest-snapshots";

    private static final String[][] OPTIONS = {
        {"bootstrap-servers", "BOOTSTRAP_SERVERS", "127.0.0.1:9092", "Kafka bootstrap servers"},
        {"schema-registry-url", "SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081", "schema registry URL"},
        {"application-id", "APPLICATION_ID", "bench-kafka-streams-customer-graph",
            "application.id (consumer group and internal topic prefix)"},
        {"processing-guarantee", "PROCESSING_GUARANTEE", "exactly_once_v2", "exactly_once_v2 or at_least_once"},
        {"num-stream-threads", "NUM_STREAM_THREADS", "2", "num.stream.threads"},
        {"state-dir", "STATE_DIR", "/tmp/kafka-streams", "state.dir (RocksDB stores)"},
        {"commit-interval-ms", "COMMIT_INTERVAL_MS", "100", "commit.interval.ms (both guarantees)"},
        {"output-topic", "OUTPUT_TOPIC", "bench.kafka-streams.member-state", "member-state snapshots"},
        {"emit", "EMIT", "latest-per-commit",
            "latest-per-commit (each member's newest snapshot per commit, through Kafka Streams' record cache,"
            + " as customer-graph writes its compacted output once per key per batch) or every-record"},
        {"streams-config", "STREAMS_CONFIG", "",
            "more Kafka Streams / client properties, key=value,key=value (e.g. consumer.fetch.max.wait.ms=20)"},
        {"default-program-id", "DEFAULT_PROGRAM_ID", "cdnow-rewards",
            "program of members whose profile has not arrived (customer-graph's default_program_id, as swarm demo and swarm bench set it)"},
    };

    private CustomerGraphFold() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> o = options(args);
        boolean everyRecord = switch (o.get("emit")) {
            case "every-record" -> true;
            case "latest-per-commit" -> false;
            default -> {
                usage("emit must be latest-per-commit or every-record, not " + o.get("emit"));
                yield false;
            }
        };
        String guarantee = o.get("processing-guarantee");
        if (!guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2) && !guarantee.equals(StreamsConfig.AT_LEAST_ONCE)) {
            usage("processing-guarantee must be exactly_once_v2 or at_least_once, not " + guarantee);
        }
        Schema memberState;
        try (InputStream in = CustomerGraphFold.class.getResourceAsStream("/loyalty.member-state.v1-value.avsc")) {
            memberState = new Schema.Parser().parse(in);
        }
        MemberStateCheck.run(memberState);

        Registry registry = new Registry(o.get("schema-registry-url"));
        String output = o.get("output-topic");
        int outputSchemaId = registry.register(output + "-value", memberState);
        createOutputTopic(o.get("bootstrap-servers"), output);

        Topology topology = topology(registry, output, outputSchemaId, o.get("default-program-id"), everyRecord);
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, o.get("application-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.get("bootstrap-servers"));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(o.get("num-stream-threads")));
        props.put(StreamsConfig.STATE_DIR_CONFIG, o.get("state-dir"));
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(o.get("commit-interval-ms")));
        for (String pair : o.get("streams-config").split(",")) {
            int eq = pair.indexOf('=');
            if (eq > 0) {
                props.put(pair.substring(0, eq).trim(), pair.substring(eq + 1).trim());
            } else if (!pair.isBlank()) {
                usage("streams-config wants key=value pairs, not " + pair);
            }
        }
        LOG.info("topology\n{}", topology.describe());
        LOG.info("application.id={} processing.guarantee={} num.stream.threads={} commit.interval.ms={} output={}"
                + " (schema id {}) emit={}", o.get("application-id"), guarantee, o.get("num-stream-threads"),
                o.get("commit-interval-ms"), output, outputSchemaId, o.get("emit"));

        KafkaStreams streams = new KafkaStreams(topology, props);
        CountDownLatch done = new CountDownLatch(1);
        streams.setUncaughtExceptionHandler(e -> {
            LOG.error("stream thread failed", e);
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            LOG.info("state {} -> {}", before, now);
            if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) {
                done.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            done.countDown();
        }, "shutdown"));
        streams.start();
        done.await();
        LOG.info("emitted {} snapshots; duplicates {}, rejected {} (decode/contract) + {} (fold), unsupported kinds {}",
                FoldProcessor.EMITTED.get(), FoldProcessor.DUPLICATES.get(), Decode.REJECTED.get(),
                FoldProcessor.REJECTED.get(), Decode.UNSUPPORTED.get());
    }

    static Topology topology(Registry registry, String output, int outputSchemaId, String defaultProgramId,
            boolean everyRecord) {
        Serde<String> strings = Serdes.String();
        Serde<byte[]> bytes = Serdes.ByteArray();
        StreamsBuilder builder = new StreamsBuilder();

        // Reference table, read whole by every instance before processing starts (as
        // customer-graph loads its tables) and followed while it runs.
        builder.globalTable(PROGRAMS, Consumed.with(strings, bytes).withName("programs-source"),
                Materialized.<String, byte[]>as(Stores.inMemoryKeyValueStore(PROGRAMS_STORE))
                        .withKeySerde(strings).withValueSerde(bytes).withCachingDisabled());

        // The member store: RocksDB, changelogged (<application.id>-members-changelog,
        // compacted), with Kafka Streams' record cache in front of it (it writes one
        // changelog record per changed key per commit, as customer-graph does per batch).
        builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(STORE), strings, bytes)
                .withCachingEnabled());

        KStream<String, In> events = builder
                .stream(MEMBER_EVENTS, Consumed.with(strings, bytes).withName("member-events"))
                .processValues(() -> new Decode(registry, false), Named.as("decode-events"));
        Map<String, KStream<String, In>> byKey = events.split(Named.as("events-"))
                .branch((key, in) -> in.memberId.equals(key), Branched.as("of-member"))
                .defaultBranch(Branched.as("of-other-id"));
        // An event keyed by another id (a store card) goes to its member's task through a
        // repartition topic, unchanged, and is decoded again there (customer-graph's rekey).
        KStream<String, In> rekeyed = byKey.get("events-of-other-id")
                .map((key, in) -> KeyValue.pair(in.memberId, in.raw), Named.as("rekey-to-member"))
                .repartition(Repartitioned.<String, byte[]>as("rekey").withKeySerde(strings).withValueSerde(bytes))
                .processValues(() -> new Decode(registry, false), Named.as("decode-rekeyed"));
        KStream<String, In> profiles = builder
                .stream(MEMBER_PROFILES, Consumed.with(strings, bytes).withName("member-profiles"))
                .processValues(() -> new Decode(registry, true), Named.as("decode-profiles"));

        KStream<String, byte[]> snapshots = byKey.get("events-of-member")
                .merge(rekeyed, Named.as("merge-rekeyed"))
                .merge(profiles, Named.as("merge-profiles"))
                .processValues(() -> new FoldProcessor(STORE, PROGRAMS_STORE, defaultProgramId, outputSchemaId, registry),
                        Named.as("fold"), STORE);
        if (!everyRecord) {
            // customer-graph produces only each key's newest record of a batch to a compacted
            // output ("Kafka Streams' record cache", agents/runtime/src/runner/writes.rs).
            // Here that cache is Kafka Streams' own: a KTable whose cached store forwards each
            // key's newest snapshot when the cache flushes, before every commit. The store is
            // only the cache's backing (in memory, no changelog): the snapshots are already
            // recoverable from the members store.
            snapshots = snapshots
                    .toTable(Named.as("latest-snapshot"), Materialized.<String, byte[]>as(
                            Stores.inMemoryKeyValueStore(SNAPSHOTS_STORE))
                            .withKeySerde(strings).withValueSerde(bytes).withCachingEnabled().withLoggingDisabled())
                    .toStream(Named.as("flushed-snapshots"));
        }
        snapshots.to(output, Produced.with(strings, bytes).withName("member-state"));
        return builder.build();
    }

    /** The output topic, compacted like loyalty.member-state.v1, with the inputs' partition count. */
    private static void createOutputTopic(String bootstrap, String topic) throws Exception {
        Map<String, Object> config = new HashMap<>();
        config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(config)) {
            TopicDescription events = admin.describeTopics(List.of(MEMBER_EVENTS)).allTopicNames().get()
                    .get(MEMBER_EVENTS);
            NewTopic out = new NewTopic(topic, Optional.of(events.partitions().size()), Optional.empty())
                    .configs(Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT));
            try {
                admin.createTopics(List.of(out)).all().get();
                LOG.info("created {} ({} partitions, compacted)", topic, events.partitions().size());
            } catch (java.util.concurrent.ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
            }
        }
    }

    private static Map<String, String> options(String[] args) {
        Map<String, String> values = new HashMap<>();
        for (String[] opt : OPTIONS) {
            String env = System.getenv(opt[1]);
            values.put(opt[0], env != null && !env.isEmpty() ? env : opt[2]);
        }
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                usage(null);
            }
            if (!a.startsWith("--")) {
                usage("unexpected argument " + a);
            }
            String name = a.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else if (i + 1 < args.length) {
                value = args[++i];
            }
            if (!values.containsKey(name) || value == null) {
                usage("unknown option or missing value: " + a);
            }
            values.put(name, value);
        }
        return values;
    }

    private static void usage(String problem) {
        StringBuilder s = new StringBuilder();
        if (problem != null) {
            s.append("error: ").append(problem).append("\n\n");
        }
        s.append("usage: java -jar customer-graph-fold.jar [--option value]...\n\n");
        for (String[] opt : OPTIONS) {
            s.append(String.format("  --%-22s %s (env %s, default %s)%n", opt[0], opt[3], opt[1], opt[2]));
        }
        System.err.print(s);
        System.exit(problem == null ? 0 : 2);
    }
}
