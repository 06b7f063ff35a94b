// The Java Kafka clients as outside peers of the swarm, run by the end-to-end tests as a
// single-file program on the classpath Maven resolves for tests/kafka/pom.xml:
//
//   java -cp <classpath> JavaClients.java produce <bootstrap> <topic> <records-file>
//       Sends each line "<key>\t<value in hex>" keyed by <key>, with the producer's
//       default partitioner (murmur2 of the key bytes), and prints
//       "<key>\t<partition>\t<offset>" per record once acknowledged.
//   java -cp <classpath> JavaClients.java read-committed <bootstrap> <topic>
//       Reads every partition from the beginning to its end with
//       isolation.level=read_committed and prints "<partition>\t<offset>\t<key>\t<value
//       in hex>" per record ("-" for a tombstone).
//
// The values are whatever the test framed (Confluent wire format Avro): what is under
// test is the clients' partitioning and transaction isolation, not their serialisers.

import java.io.BufferedReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaClients {
    public static void main(String[] args) throws Exception {
        if (args.length == 4 && args[0].equals("produce")) {
            produce(args[1], args[2], Path.of(args[3]));
        } else if (args.length == 3 && args[0].equals("read-committed")) {
            readCommitted(args[1], args[2]);
        } else {
            usage();
        }
    }

    static void usage() {
        System.err.println("usage: JavaClients produce <bootstrap> <topic> <records-file>");
        System.err.println("       JavaClients read-committed <bootstrap> <topic>");
        System.exit(2);
    }

    static void produce(String bootstrap, String topic, Path records) throws Exception {
        Properties config = new Properties();
        config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(ProducerConfig.ACKS_CONFIG, "all");
        config.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        config.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        // No partitioner configured: the default one is what is under test.
        List<String> keys = new ArrayList<>();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(config);
             BufferedReader lines = Files.newBufferedReader(records, StandardCharsets.UTF_8)) {
            String line;
            while ((line = lines.readLine()) != null) {
                String[] fields = line.split("\t", 2);
                byte[] value = HexFormat.of().parseHex(fields[1]);
                keys.add(fields[0]);
                sent.add(producer.send(new ProducerRecord<>(topic, fields[0], value)));
            }
            producer.flush();
            for (int i = 0; i < sent.size(); i++) {
                RecordMetadata metadata = sent.get(i).get();
                System.out.println(keys.get(i) + "\t" + metadata.partition() + "\t" + metadata.offset());
            }
        }
    }

    static void readCommitted(String bootstrap, String topic) throws Exception {
        Properties config = new Properties();
        config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        config.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        config.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        config.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(config)) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                .map(info -> new TopicPartition(topic, info.partition()))
                .collect(Collectors.toList());
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            // Under read_committed the end is the last stable offset: nothing past it
            // can be read until its transaction ends.
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("did not reach the end offsets " + end);
                }
                for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(500))) {
                    String value = record.value() == null
                        ? "-"
                        : HexFormat.of().formatHex(record.value());
                    System.out.println(record.partition() + "\t" + record.offset() + "\t"
                        + record.key() + "\t" + value);
                }
            }
        }
    }
}
