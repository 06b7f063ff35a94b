//! Shared pieces of the end-to-end tests: a stack per test on free ports — the embedded
//! broker, or Apache Kafka (`kafka`) with the registry on it — agent binaries run as
//! real processes (so they can be killed), an in-process reference run of the same
//! fold, and an independent reading of the CDNOW files.
#![allow(dead_code)]

pub mod kafka;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use apache_avro::AvroSchema;
use customer_graph::{CustomerGraph, MemberFold, Settings};
use loyalty_contracts::{
    MemberEvent, MemberState, OrderPlaced, Payload, Timestamp, catalog, topics,
};
use loyalty_runtime::codec::{Encoder, leak};
use loyalty_runtime::{Agent, Harness, Record, runner};
use swarm::cdnow;
use swarm::stack::{self, StackOptions};

pub use kafka::KafkaCluster;

pub const PARTITIONS: i32 = 12;

pub fn data(file: &str) -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("../data/cdnow")
        .join(file)
}

/// Runs `scenario`, an `async fn(Broker)`, as one test per broker:
/// `<module>::<scenario>::embedded` and `<module>::<scenario>::apache_kafka` (run all of
/// one broker's with `cargo test -p loyalty-e2e --test e2e apache_kafka`).
macro_rules! on_each_broker {
    ($scenario:ident) => {
        mod $scenario {
            #[serial_test::serial]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                super::$scenario(crate::common::Broker::Embedded).await
            }

            #[serial_test::serial]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn apache_kafka() {
                super::$scenario(crate::common::Broker::Kafka).await
            }
        }
    };
}
pub(crate) use on_each_broker;

/// The broker a test runs on: the guarantees the README makes are proven on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// tansu, in the test process (the one-command default).
    Embedded,
    /// Apache Kafka, one KRaft node.
    Kafka,
    /// Apache Kafka, three nodes: replication factor 3, `min.insync.replicas` 2.
    KafkaThreeNodes,
}

/// A broker with the schema registry on it and the contract set up.
pub struct Stack {
    pub bootstrap_servers: String,
    pub registry_url: String,
    pub broker: Broker,
    running: Running,
}

enum Running {
    Embedded(stack::Stack),
    Kafka {
        cluster: KafkaCluster,
        registry: stack::Registry,
    },
}

impl Stack {
    /// The Apache Kafka cluster under this stack, to stop and start its brokers.
    pub fn kafka(&mut self) -> &mut KafkaCluster {
        match &mut self.running {
            Running::Kafka { cluster, .. } => cluster,
            Running::Embedded(_) => panic!("not an Apache Kafka stack"),
        }
    }

    pub async fn shutdown(self) {
        match self.running {
            Running::Embedded(stack) => stack.shutdown().await,
            Running::Kafka { cluster, registry } => {
                registry.shutdown().await;
                drop(cluster);
            }
        }
    }
}

/// An embedded broker and registry on free loopback ports, with the contract set up.
pub async fn start_stack() -> Stack {
    start_stack_with(&free_ports(None)).await
}

/// A stack on `broker`, with the contract set up.
pub async fn start_stack_on(broker: Broker) -> Stack {
    let size = match broker {
        Broker::Embedded => return start_stack().await,
        Broker::Kafka => 1,
        Broker::KafkaThreeNodes => 3,
    };
    let cluster = tokio::task::spawn_blocking(move || KafkaCluster::start(size))
        .await
        .unwrap();
    let registry_addr = format!("127.0.0.1:{}", stack::free_port().unwrap())
        .parse()
        .unwrap();
    let registry = stack::start_registry(&cluster.bootstrap_servers, registry_addr)
        .await
        .expect("the schema registry starts on Apache Kafka");
    let stack = Stack {
        bootstrap_servers: cluster.bootstrap_servers.clone(),
        registry_url: registry.url.clone(),
        broker,
        running: Running::Kafka { cluster, registry },
    };
    set_up_contract(&stack, size as i32).await;
    stack
}

/// Options for a stack on free loopback ports, on `storage` (None: the memory engine).
pub fn free_ports(storage: Option<String>) -> StackOptions {
    StackOptions {
        kafka: format!("127.0.0.1:{}", stack::free_port().unwrap())
            .parse()
            .unwrap(),
        registry: format!("127.0.0.1:{}", stack::free_port().unwrap())
            .parse()
            .unwrap(),
        storage,
    }
}

/// A folder for an SQLite broker file, deleted when dropped.
pub struct EngineDir(PathBuf);

impl Drop for EngineDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The embedded broker's two storage engines as (name, storage option): the memory
/// engine, and SQLite in a fresh folder named after `test`, kept while the guard lives.
pub fn both_engines(test: &str) -> (EngineDir, [(String, Option<String>); 2]) {
    let dir = std::env::temp_dir().join(format!("loyalty-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!("sqlite://{}", dir.join("broker.db").display());
    (
        EngineDir(dir),
        [("memory".into(), None), (sqlite.clone(), Some(sqlite))],
    )
}

/// An embedded stack as `options` say, with the contract set up.
pub async fn start_stack_with(options: &StackOptions) -> Stack {
    let embedded = stack::start(options).await.expect("embedded stack starts");
    let stack = Stack {
        bootstrap_servers: embedded.bootstrap_servers.clone(),
        registry_url: embedded.registry_url.clone(),
        broker: Broker::Embedded,
        running: Running::Embedded(embedded),
    };
    set_up_contract(&stack, 1).await;
    stack
}

async fn set_up_contract(stack: &Stack, replication: i32) {
    swarm::setup::setup(&swarm::setup::Target {
        bootstrap_servers: stack.bootstrap_servers.clone(),
        registry_url: stack.registry_url.clone(),
        partitions: PARTITIONS,
        replication,
        librdkafka: BTreeMap::new(),
        member_stream_retention_ms: loyalty_runtime::config::MEMBER_STREAM_RETENTION_MS,
    })
    .await
    .expect("topics and schemas set up");
}

/// A workspace binary next to the test executable. `cargo test --workspace` builds it
/// before running any test because the binary's own package has integration tests
/// (`agents/*/tests/cli.rs`); cargo builds a package's binaries for those.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// An agent binary running as a child process.
pub struct AgentProcess {
    pub child: Child,
    pub http: String,
    pub log: PathBuf,
}

impl AgentProcess {
    pub fn spawn(name: &str, stack: &Stack, extra: &[&str]) -> AgentProcess {
        Self::spawn_with_registry(name, &stack.bootstrap_servers, &stack.registry_url, extra)
    }

    pub fn spawn_with_registry(
        name: &str,
        bootstrap: &str,
        registry: &str,
        extra: &[&str],
    ) -> AgentProcess {
        let http = format!("127.0.0.1:{}", stack::free_port().unwrap());
        let log = std::env::temp_dir().join(format!(
            "{}-{}-{}.log",
            name.replace('/', "_"),
            std::process::id(),
            http.replace([':', '.'], "_")
        ));
        let child = Command::new(binary(name))
            .args([
                "--bootstrap-servers",
                bootstrap,
                "--schema-registry-url",
                registry,
                "--http-listen",
                &http,
            ])
            .args(if name == "customer-graph" {
                vec![
                    "--set".to_owned(),
                    format!("agent.default_program_id={}", cdnow::PROGRAM_ID),
                ]
            } else {
                Vec::new()
            })
            .args([
                "--set",
                "batch_max_wait_ms=20",
                "--set",
                "retry_max_ms=1000",
                // A SIGKILLed instance keeps its partitions until its session times
                // out; 6 s instead of librdkafka's 45 s keeps the crash tests short.
                "--set",
                "librdkafka.session.timeout.ms=6000",
            ])
            .args(extra)
            // Every agent of a deployment hashes erased ids under one key.
            .env(loyalty_runtime::erasure::KEY_ENV, "e5".repeat(32))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("agent starts");
        AgentProcess { child, http, log }
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("http://{}{path}", self.http))
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    pub async fn wait_ready(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if matches!(self.get("/readyz").await, Some((200, _))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "agent not ready within {limit:?}; log:\n{}",
            self.log_tail()
        );
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGKILL: no drain, no commit, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "agent ignored SIGTERM for {limit:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until customer-graph (run as `agent`, a group name) has committed everything it
/// reads, its repartition topic included.
pub async fn wait_caught_up(stack: &Stack, agent: &str, limit: Duration) {
    let consumed = runner::consumed_topics(&CustomerGraph::new(&Default::default()));
    let consumed: Vec<&str> = consumed.iter().map(String::as_str).collect();
    wait_caught_up_on(stack, agent, &consumed, limit).await
}

/// Wait until every partition of `topic` holds no record (its log start offset has
/// reached its high watermark: a purge deleted everything written), or `limit` passes;
/// each partition's (log start, high watermark) then.
pub async fn wait_emptied(
    stack: &Stack,
    topic: &str,
    limit: Duration,
) -> BTreeMap<i32, (i64, i64)> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let ranges = swarm::inspect::watermarks(&stack.bootstrap_servers, topic).unwrap();
        if ranges.values().all(|(low, high)| low == high) || std::time::Instant::now() > deadline {
            return ranges;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Replay `file` onto `stack` in the background, while the test kills or stops agents.
pub fn spawn_replay(
    stack: &Stack,
    file: &Path,
) -> tokio::task::JoinHandle<Result<swarm::replay::ReplaySummary, swarm::replay::ReplayError>> {
    let (bootstrap, registry, file) = (
        stack.bootstrap_servers.clone(),
        stack.registry_url.clone(),
        file.to_path_buf(),
    );
    tokio::spawn(
        async move { swarm::replay::replay(&bootstrap, &registry, Some(&file), false).await },
    )
}

/// The wall clock in epoch milliseconds, as producers stamp records.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Wait until `agent`'s group has committed everything on `inputs`.
pub async fn wait_caught_up_on(stack: &Stack, agent: &str, inputs: &[&str], limit: Duration) {
    let caught_up = swarm::inspect::wait_caught_up(
        &stack.bootstrap_servers,
        &format!("loyalty-swarm.{agent}"),
        inputs,
        limit,
    )
    .await
    .unwrap();
    assert!(caught_up, "{agent} did not catch up within {limit:?}");
}

/// The Avro body (after the 5-byte Confluent header) of the newest member-state per member.
pub async fn member_state_bodies(stack: &Stack) -> BTreeMap<String, Vec<u8>> {
    swarm::inspect::latest_values(&stack.bootstrap_servers, topics::MEMBER_STATE)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v[5..].to_vec()))
        .collect()
}

pub fn decode_state(body: &[u8]) -> MemberState {
    loyalty_runtime::codec::decode(&MemberState::get_schema(), body).unwrap()
}

/// The same fold run in this process, without Kafka: each member's events in replay
/// order. The distributed run must end exactly here, however often it crashed.
pub fn reference_bodies(file: &Path) -> BTreeMap<String, Vec<u8>> {
    reference_bodies_until(file, None)
}

/// [`reference_bodies`] over the purchases up to and including `until`.
pub fn reference_bodies_until(
    file: &Path,
    until: Option<loyalty_contracts::Date>,
) -> BTreeMap<String, Vec<u8>> {
    let mut purchases = cdnow::read_purchases(file).unwrap();
    if let Some(until) = until {
        purchases.retain(|p| p.day <= until);
    }
    let settings = Settings {
        default_program_id: cdnow::PROGRAM_ID.into(),
        ..Settings::default()
    };
    let agent = CustomerGraph::new(&settings);
    let mut harness = Harness::new(&agent).unwrap();
    harness.put_table(
        &loyalty_contracts::tables::PROGRAMS,
        cdnow::PROGRAM_ID,
        cdnow::demo_program(),
    );
    let mut states: HashMap<String, Option<MemberFold>> = HashMap::new();
    let mut first: BTreeMap<String, loyalty_contracts::Date> = BTreeMap::new();
    for p in &purchases {
        let d = first.entry(p.customer.clone()).or_insert(p.day);
        *d = (*d).min(p.day);
    }
    for (customer, day) in &first {
        let record = Record::new(
            &catalog::MEMBER_PROFILES,
            customer,
            &cdnow::profile(customer, *day),
        )
        .unwrap();
        agent
            .handle(
                &record.input(),
                states.entry(customer.clone()).or_default(),
                &mut harness.context(),
            )
            .unwrap();
    }
    let mut ordered: Vec<_> = purchases.iter().collect();
    ordered.sort_by_key(|p| (p.day, p.line));
    for p in ordered {
        for event in cdnow::purchase_events(p) {
            let record = Record::new(&catalog::MEMBER_EVENTS, &p.customer, &event).unwrap();
            agent
                .handle(
                    &record.input(),
                    states.entry(p.customer.clone()).or_default(),
                    &mut harness.context(),
                )
                .unwrap();
        }
    }
    let mut latest = BTreeMap::new();
    for emitted in harness.emitted.drain(..) {
        latest.insert(emitted.key, emitted.payload.unwrap()[5..].to_vec());
    }
    latest
}

/// Buy-till-you-die summaries computed straight from a CDNOW file, sharing no code with
/// the agent: (x, t_x in days, first purchase as days since epoch, mean repeat value in cents).
pub fn independent_btyd(file: &Path) -> HashMap<String, (i32, i32, i64, f64)> {
    fn days(yyyymmdd: &str) -> i64 {
        let y: i64 = yyyymmdd[0..4].parse().unwrap();
        let m: i64 = yyyymmdd[4..6].parse().unwrap();
        let d: i64 = yyyymmdd[6..8].parse().unwrap();
        // days from civil, for 1970..2100
        let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
        365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5 + d - 719_469
    }
    let mut per_day: HashMap<String, BTreeMap<i64, f64>> = HashMap::new();
    for line in std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .skip_while(|l| l.contains("customer_id"))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        let (c, d, v) = if f.len() == 4 {
            (f[0], f[1], f[3])
        } else {
            (f[0], f[2], f[4])
        };
        *per_day
            .entry(c.to_owned())
            .or_default()
            .entry(days(d))
            .or_default() += v.parse::<f64>().unwrap() * 100.0;
    }
    per_day
        .into_iter()
        .map(|(c, days)| {
            let first = *days.keys().next().unwrap();
            let last = *days.keys().next_back().unwrap();
            let x = days.len() as i32 - 1;
            let repeat: f64 = days.iter().skip(1).map(|(_, v)| v).sum();
            let mean = if x > 0 { repeat / x as f64 } else { 0.0 };
            (c, (x, (last - first) as i32, first, mean))
        })
        .collect()
}

/// The value of the series `name` whose labels include every `(label, value)` pair, in
/// whatever order the exposition lists them.
pub fn metric(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (label_text, value) = rest.split_once("} ")?;
        labels
            .iter()
            .all(|(k, v)| {
                label_text
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            })
            .then(|| value.trim().parse().ok())?
    })
}

/// Every member's final state equals the uninterrupted in-process run, byte for byte:
/// nothing lost, nothing counted twice.
pub async fn assert_matches_reference(stack: &Stack, reference: &BTreeMap<String, Vec<u8>>) {
    let states = member_state_bodies(stack).await;
    assert_eq!(states.len(), reference.len(), "one state per member");
    for (member, body) in reference {
        assert_eq!(
            states.get(member),
            Some(body),
            "member {member} differs from the uninterrupted run"
        );
    }
}

/// Produce the in-process reference run's member-state bodies to `loyalty.member-state.v1`
/// (schema registered with the stack's registry): the input of the agents downstream of
/// customer-graph, without running it.
pub async fn produce_member_states(stack: &Stack, bodies: &BTreeMap<String, Vec<u8>>) {
    let registry = loyalty_runtime::registry::RegistryClient::new(&stack.registry_url).unwrap();
    let id = registry
        .register(
            &format!("{}-value", topics::MEMBER_STATE),
            &MemberState::get_schema(),
        )
        .await
        .unwrap();
    let records: Vec<loyalty_runtime::kafka::OutRecord> = bodies
        .iter()
        .map(|(member, body)| {
            let mut payload = vec![0u8];
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(body);
            record(topics::MEMBER_STATE, member, payload)
        })
        .collect();
    let producer =
        loyalty_runtime::kafka::producer(&stack.bootstrap_servers, &Default::default()).unwrap();
    loyalty_runtime::kafka::produce_all(&producer, &records)
        .await
        .unwrap();
}

/// `promtool check metrics` (Prometheus' own linter) must accept an agent's exposition.
pub fn promtool_check_metrics(metrics: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus; .ci/run installs it)");
    std::io::Write::write_all(promtool.stdin.as_mut().unwrap(), metrics.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// An encoder for member events, their schema registered with the stack's registry.
/// A record to produce: `payload` under `key`, partitioned by key, no headers.
pub fn record(topic: &str, key: &str, payload: Vec<u8>) -> loyalty_runtime::kafka::OutRecord {
    loyalty_runtime::kafka::OutRecord {
        topic: topic.into(),
        partition: None,
        key: key.into(),
        payload: Some(payload),
        timestamp: None,
        headers: Vec::new(),
    }
}

/// An order of `member`: USD, one item, on a fixed day of 1997, from source `test`.
pub fn order_event(event_id: &str, member: &str, amount_minor: i64) -> MemberEvent {
    MemberEvent {
        event_id: event_id.into(),
        member_id: member.into(),
        brand_id: "cdnow".into(),
        occurred_at: Timestamp(870_000_000_000),
        source: "test".into(),
        source_member_id: None,
        payload: Payload::OrderPlaced(OrderPlaced {
            order_id: event_id.into(),
            amount_minor,
            currency: "USD".into(),
            margin_minor: None,
            items: 1,
            location_id: None,
            product_line: None,
        }),
    }
}

pub async fn member_event_encoder(stack: &Stack) -> Encoder {
    let registry = loyalty_runtime::registry::RegistryClient::new(&stack.registry_url).unwrap();
    let schema = MemberEvent::get_schema();
    let id = registry
        .register(&format!("{}-value", topics::MEMBER_EVENTS), &schema)
        .await
        .unwrap();
    Encoder::new(id, leak(schema)).unwrap()
}

/// `swarm <args>` against the stack (its addresses appended): exit code, and stdout
/// then stderr.
pub fn swarm_cli(stack: &Stack, args: &[&str]) -> (i32, String) {
    let out = Command::new(binary("swarm"))
        .args(args)
        .args([
            "--bootstrap-servers",
            &stack.bootstrap_servers,
            "--schema-registry-url",
            &stack.registry_url,
        ])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// What Confluent's Python client, with the registry's Avro deserializer, reads from
/// `topics` (`tests/python/read_swarm_topics.py`): an outside consumer's view, per topic.
pub fn python_read(stack: &Stack, topics: &[&str]) -> serde_json::Value {
    let reader = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/read_swarm_topics.py");
    let out = Command::new("python3")
        .arg(&reader)
        .args([&stack.bootstrap_servers, &stack.registry_url])
        .args(topics)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
