//! The embedded broker's default storage (tansu's memory engine, patched) must keep every
//! acknowledged record and answer offsets the way Kafka does: unpatched, it skipped the
//! rest of a batch fetched from its middle and reported the end of a partition as the
//! last batch's base offset plus one, so restores stopped short and records were lost.

use crate::common;

use std::time::Duration;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const TOPIC: &str = "embedded-broker.records";
const PARTITIONS: i32 = 3;
/// Records per produce burst; sent together with a long linger, so one batch each.
const BATCH: i64 = 10;

fn config(stack: &Stack) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &stack.bootstrap_servers);
    config
}

/// Creates `topics` (name, partitions); the admin client, for further calls.
async fn create_topics(stack: &Stack, topics: &[(&str, i32)]) -> AdminClient<DefaultClientContext> {
    let admin: AdminClient<DefaultClientContext> = config(stack).create().unwrap();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|&(name, partitions)| NewTopic::new(name, partitions, TopicReplication::Fixed(1)))
        .collect();
    admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap();
    admin
}

/// Enqueues `BATCH` records for `partition` before waiting for any; with the long
/// linger they leave as one batch.
async fn produce_batch(producer: &FutureProducer, partition: i32, first: i64) {
    let payloads: Vec<String> = (first..first + BATCH)
        .map(|n| format!("record {n}"))
        .collect();
    let deliveries: Vec<_> = payloads
        .iter()
        .map(|payload| {
            producer
                .send_result(
                    FutureRecord::<str, _>::to(TOPIC)
                        .partition(partition)
                        .payload(payload),
                )
                .map_err(|(e, _)| e)
                .unwrap()
        })
        .collect();
    for delivery in deliveries {
        delivery.await.unwrap().unwrap();
    }
}

/// Reads `partition` from `offset` to its end; the offsets and payloads seen.
fn read_from(stack: &Stack, partition: i32, offset: i64) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = config(stack)
        .set("group.id", "embedded-broker-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, partition, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let (_, high) = consumer
        .fetch_watermarks(TOPIC, partition, Duration::from_secs(10))
        .unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.last().map_or(offset < high, |(o, _)| o + 1 < high) {
        assert!(
            std::time::Instant::now() < deadline,
            "read stalled at {seen:?}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let payload = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
            seen.push((message.offset(), payload));
        }
    }
    seen
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_engine_keeps_every_record_and_reports_kafka_offsets() {
    let stack = start_stack().await;
    create_topics(&stack, &[(TOPIC, PARTITIONS)]).await;
    let producer: FutureProducer = config(&stack)
        .set("linger.ms", "200")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let bursts = 20;
    for partition in 0..PARTITIONS {
        for burst in 0..bursts {
            produce_batch(&producer, partition, burst * BATCH).await;
        }
    }

    let consumer: BaseConsumer = config(&stack).create().unwrap();
    for partition in 0..PARTITIONS {
        let watermarks = consumer
            .fetch_watermarks(TOPIC, partition, Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            watermarks,
            (0, bursts * BATCH),
            "partition {partition}: earliest and latest are the log start and the end"
        );
        let all = read_from(&stack, partition, 0);
        let expected: Vec<(i64, String)> = (0..bursts * BATCH)
            .map(|n| (n, format!("record {n}")))
            .collect();
        assert_eq!(
            all, expected,
            "partition {partition}: every record, in order"
        );
    }

    // A fetch from the middle of a batch starts at that record, not at the next batch.
    let middle = 3 * BATCH + BATCH / 2;
    let from_middle = read_from(&stack, 1, middle);
    assert_eq!(
        from_middle.first(),
        Some(&(middle, format!("record {middle}")))
    );
    assert_eq!(from_middle.len() as i64, bursts * BATCH - middle);
    stack.shutdown().await;
}

/// Sends one record to partition 0 of `topic`; the delivery to await.
fn send_one(
    producer: &FutureProducer,
    topic: &str,
    payload: &str,
) -> rdkafka::producer::DeliveryFuture {
    producer
        .send_result(
            FutureRecord::<str, _>::to(topic)
                .partition(0)
                .payload(payload),
        )
        .map_err(|(e, _)| e)
        .unwrap()
}

/// The payloads of partition 0 of `topic` as `reader` (read_committed) reads them to the end.
async fn committed_payloads(
    reader: &rdkafka::consumer::StreamConsumer,
    topic: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    loyalty_runtime::kafka::read_to_end(reader, topic, 0, |_, payload, _, _| {
        seen.push(String::from_utf8_lossy(payload.unwrap_or_default()).into_owned());
        Ok(())
    })
    .await
    .unwrap();
    seen
}

/// Transactions (patches 7–9 in `vendor/README.md`): a committed transaction is read, an
/// aborted one and one left open by a producer that a newer instance with the same
/// transactional id fenced are not, the offsets sent in a transaction are committed with
/// it, and a read_committed reader reaches the end past the commit and abort markers.
#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_engine_transactions_commit_abort_and_fence() {
    use rdkafka::producer::Producer;
    const TXN_TOPIC: &str = "embedded-broker.transactions";
    const INPUT: &str = "embedded-broker.transactions-input";
    const GROUP: &str = "embedded-broker-transactions";
    let stack = start_stack().await;
    create_topics(&stack, &[(TXN_TOPIC, 1), (INPUT, 1)]).await;
    let timeout = Duration::from_secs(30);
    let transactional = |id: &str| -> FutureProducer {
        config(&stack).set("transactional.id", id).create().unwrap()
    };
    let send = |producer: &FutureProducer, payload: &str| send_one(producer, TXN_TOPIC, payload);
    let consumer_group: BaseConsumer = config(&stack)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer_group.subscribe(&[INPUT]).unwrap();
    let group = loop {
        let _ = consumer_group.poll(Duration::from_millis(100));
        if let Some(metadata) = consumer_group.group_metadata() {
            break metadata;
        }
    };

    let producer = transactional("embedded-broker-t");
    producer.init_transactions(timeout).unwrap();
    producer.begin_transaction().unwrap();
    for n in 0..3 {
        send(&producer, &format!("committed {n}"))
            .await
            .unwrap()
            .unwrap();
    }
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(INPUT, 0, Offset::Offset(7))
        .unwrap();
    producer
        .send_offsets_to_transaction(&offsets, &group, timeout)
        .unwrap();
    producer.commit_transaction(timeout).unwrap();

    producer.begin_transaction().unwrap();
    for n in 0..3 {
        send(&producer, &format!("aborted {n}"))
            .await
            .unwrap()
            .unwrap();
    }
    producer.abort_transaction(timeout).unwrap();

    producer.begin_transaction().unwrap();
    send(&producer, "left open").await.unwrap().unwrap();
    let successor = transactional("embedded-broker-t");
    successor.init_transactions(timeout).unwrap();
    assert!(
        producer.commit_transaction(timeout).is_err(),
        "a fenced producer cannot commit"
    );
    successor.begin_transaction().unwrap();
    send(&successor, "after").await.unwrap().unwrap();
    successor.commit_transaction(timeout).unwrap();

    let committed = consumer_group
        .committed_offsets(
            {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(INPUT, 0);
                tpl
            },
            timeout,
        )
        .unwrap();
    assert_eq!(
        committed.find_partition(INPUT, 0).unwrap().offset(),
        Offset::Offset(7),
        "offsets sent in the transaction are committed with it"
    );

    let reader: rdkafka::consumer::StreamConsumer = config(&stack)
        .set("group.id", "embedded-broker-transactions-reader")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let seen = committed_payloads(&reader, TXN_TOPIC).await;
    assert_eq!(
        seen,
        ["committed 0", "committed 1", "committed 2", "after"],
        "read_committed sees committed transactions only, each record once"
    );
    // The broker's shutdown waits for its clients' connections to close.
    drop((reader, consumer_group, producer, successor));
    stack.shutdown().await;
}

/// A transaction's offsets are committed when it commits, even while another
/// transaction on the same partitions is open (patch 13): the engine used to leave it
/// prepared until the other one ended, so a consumer assigned the input meanwhile
/// started before them and handled it again. The committed records still wait behind
/// the open transaction's first offset, as Kafka's last stable offset makes them.
#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_engine_commits_offsets_while_another_transaction_is_open() {
    use rdkafka::producer::Producer;
    const TXN_TOPIC: &str = "embedded-broker.overlapping";
    const INPUT: &str = "embedded-broker.overlapping-input";
    const GROUP: &str = "embedded-broker-overlapping";
    let stack = start_stack().await;
    create_topics(&stack, &[(TXN_TOPIC, 1), (INPUT, 1)]).await;
    let timeout = Duration::from_secs(30);
    let transactional = |id: &str| -> FutureProducer {
        let producer: FutureProducer = config(&stack).set("transactional.id", id).create().unwrap();
        producer.init_transactions(timeout).unwrap();
        producer
    };
    let send = |producer: &FutureProducer, payload: &str| send_one(producer, TXN_TOPIC, payload);
    let consumer_group: BaseConsumer = config(&stack)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer_group.subscribe(&[INPUT]).unwrap();
    let group = loop {
        let _ = consumer_group.poll(Duration::from_millis(100));
        if let Some(metadata) = consumer_group.group_metadata() {
            break metadata;
        }
    };
    let committed_input = || {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(INPUT, 0);
        consumer_group
            .committed_offsets(tpl, timeout)
            .unwrap()
            .find_partition(INPUT, 0)
            .unwrap()
            .offset()
    };

    let open = transactional("embedded-broker-open");
    open.begin_transaction().unwrap();
    send(&open, "first, committed last").await.unwrap().unwrap();

    let other = transactional("embedded-broker-other");
    for n in 0..2 {
        other.begin_transaction().unwrap();
        send(&other, &format!("other {n}")).await.unwrap().unwrap();
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(INPUT, 0, Offset::Offset(5 + n))
            .unwrap();
        other
            .send_offsets_to_transaction(&offsets, &group, timeout)
            .unwrap();
        other.commit_transaction(timeout).unwrap();
        assert_eq!(
            committed_input(),
            Offset::Offset(5 + n),
            "a committed transaction's offsets are committed with it, open neighbour or not"
        );
    }

    open.commit_transaction(timeout).unwrap();
    let reader: rdkafka::consumer::StreamConsumer = config(&stack)
        .set("group.id", "embedded-broker-overlapping-reader")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    assert_eq!(
        committed_payloads(&reader, TXN_TOPIC).await,
        ["first, committed last", "other 0", "other 1"],
        "every committed record once, in offset order"
    );
    drop((reader, consumer_group, open, other));
    stack.shutdown().await;
}

/// A transaction whose producer stops (patch 10) is aborted once it times out, as Kafka
/// does: read_committed readers move past it, and the producer is fenced.
#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_engine_aborts_a_transaction_that_timed_out() {
    use rdkafka::producer::Producer;
    const TOPIC: &str = "embedded-broker.timeout";
    let stack = start_stack().await;
    create_topics(&stack, &[(TOPIC, 1)]).await;
    let timeout = Duration::from_secs(30);
    let send = |producer: &FutureProducer, payload: &str| send_one(producer, TOPIC, payload);
    let stuck: FutureProducer = config(&stack)
        .set("transactional.id", "embedded-broker-stuck")
        .set("transaction.timeout.ms", "2000")
        .set("message.timeout.ms", "2000")
        .create()
        .unwrap();
    stuck.init_transactions(timeout).unwrap();
    stuck.begin_transaction().unwrap();
    send(&stuck, "never committed").await.unwrap().unwrap();
    let other: FutureProducer = config(&stack)
        .set("transactional.id", "embedded-broker-other")
        .create()
        .unwrap();
    other.init_transactions(timeout).unwrap();
    other.begin_transaction().unwrap();
    send(&other, "committed").await.unwrap().unwrap();
    other.commit_transaction(timeout).unwrap();

    let reader: rdkafka::consumer::StreamConsumer = config(&stack)
        .set("group.id", "embedded-broker-timeout-reader")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let seen = committed_payloads(&reader, TOPIC).await;
        if !seen.is_empty() || std::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        seen,
        ["committed"],
        "the open transaction held back read_committed readers until it timed out, and was aborted"
    );
    assert!(
        stuck.commit_transaction(timeout).is_err(),
        "the producer whose transaction timed out is fenced"
    );
    drop((reader, stuck, other));
    stack.shutdown().await;
}

/// DeleteRecords (patch 12), which the runtime uses to purge repartition topics, on both
/// engines: records below the offset go, the log start offset moves up to it, a read
/// from the beginning starts there, -1 deletes up to the end, and an offset past the
/// end is refused. 0.6.0 panicked the connection that asked.
#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_delete_records_below_an_offset() {
    let (_dir, engines) = both_engines("delete-records");
    for (engine, storage) in engines {
        let stack = start_stack_with(&free_ports(storage)).await;
        let admin = create_topics(&stack, &[(TOPIC, PARTITIONS)]).await;
        let producer: FutureProducer = config(&stack).set("linger.ms", "200").create().unwrap();
        for burst in 0..3 {
            produce_batch(&producer, 0, burst * BATCH).await;
        }
        let delete = |partition: i32, offset: Offset| {
            let mut offsets = TopicPartitionList::new();
            offsets
                .add_partition_offset(TOPIC, partition, offset)
                .unwrap();
            let admin = &admin;
            async move {
                let result = admin
                    .delete_records(&offsets, &AdminOptions::new())
                    .await
                    .unwrap();
                let element = &result.elements()[0];
                element.error().map(|()| element.offset())
            }
        };

        // Through the middle of the second batch: the first batch goes, and the second
        // is read from the new log start.
        let middle = BATCH + BATCH / 2;
        assert_eq!(
            delete(0, Offset::Offset(middle)).await,
            Ok(Offset::Offset(middle)),
            "{engine}"
        );
        let consumer: BaseConsumer = config(&stack).create().unwrap();
        let watermarks = || {
            consumer
                .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
                .unwrap()
        };
        assert_eq!(watermarks(), (middle, 3 * BATCH), "{engine}");
        // The records below are gone: a read from 0 starts at the second batch on the
        // memory engine (which deletes whole batches) and at the log start on SQLite.
        let first_kept = if engine == "memory" { BATCH } else { middle };
        assert_eq!(
            read_from(&stack, 0, 0).first().map(|(offset, _)| *offset),
            Some(first_kept),
            "{engine}"
        );
        let rest = read_from(&stack, 0, middle);
        let expected: Vec<(i64, String)> = (middle..3 * BATCH)
            .map(|n| (n, format!("record {n}")))
            .collect();
        assert_eq!(rest, expected, "{engine}");

        // A lower offset changes nothing; past the end is refused; -1 is the end.
        assert_eq!(
            delete(0, Offset::Offset(2)).await,
            Ok(Offset::Offset(middle)),
            "{engine}"
        );
        assert!(
            delete(0, Offset::Offset(3 * BATCH + 1)).await.is_err(),
            "{engine}"
        );
        assert_eq!(
            delete(0, Offset::End).await,
            Ok(Offset::Offset(3 * BATCH)),
            "{engine}"
        );
        assert_eq!(watermarks(), (3 * BATCH, 3 * BATCH), "{engine}");

        // The partition goes on from where it was.
        produce_batch(&producer, 0, 3 * BATCH).await;
        assert_eq!(watermarks(), (3 * BATCH, 4 * BATCH), "{engine}");
        assert_eq!(
            read_from(&stack, 0, 3 * BATCH).len() as i64,
            BATCH,
            "{engine}"
        );
        // Other partitions are untouched.
        assert_eq!(
            consumer
                .fetch_watermarks(TOPIC, 1, Duration::from_secs(10))
                .unwrap(),
            (0, 0),
            "{engine}"
        );
        drop((consumer, producer, admin));
        stack.shutdown().await;
    }
}

/// The embedded registry answers a schema id it does not hold as Confluent's does, 404
/// with error code 40403, whatever the id looks like: one above `i32::MAX` (random bytes
/// read as a record's schema id) once answered 400, which the agents took for an
/// outage of their own and stopped on.
#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_answers_ids_it_cannot_hold_as_not_found() {
    let stack = start_stack().await;
    let http = reqwest::Client::new();
    for id in ["2453133971", "9999", "-1", "abc"] {
        for path in ["", "/schema"] {
            let response = http
                .get(format!("{}/schemas/ids/{id}{path}", stack.registry_url))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 404, "id {id}{path}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error_code"], 40403, "id {id}{path}: {body}");
        }
    }
    let client = loyalty_runtime::registry::RegistryClient::new(&stack.registry_url).unwrap();
    assert!(matches!(
        client.schema(2_453_133_971).await,
        Err(loyalty_runtime::registry::RegistryError::UnknownId(
            2_453_133_971
        ))
    ));
    stack.shutdown().await;
}
