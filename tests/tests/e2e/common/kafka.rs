//! Apache Kafka for the end-to-end tests: a KRaft cluster on loopback, run from the jars
//! Maven resolves for `tests/kafka/pom.xml` (the broker is `kafka.Kafka`, its storage
//! formatted by `kafka.tools.StorageTool`, as the distribution's scripts do). One
//! combined broker and controller for speed; three where a test needs a broker to fail
//! (each a broker and a voter, replication factor 3, `min.insync.replicas` 2, so the
//! quorum and every partition survive one). Each node is a child process, killed when
//! the cluster is dropped, so a failing test leaves no broker behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use swarm::stack;

/// Any 16 bytes in Kafka's base64; the one the Kafka quickstart uses.
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";

/// The Maven project that names the broker's and the Java clients' jars.
pub fn maven_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka")
}

/// The classpath of Apache Kafka and its Java clients, asked of Maven once per test
/// binary (it resolves from Maven Central the first time; `.ci/run` does that first).
pub fn classpath() -> &'static str {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH.get_or_init(|| {
        // Tests have a scratch directory in the target dir; the example has only /tmp.
        let dir = option_env!("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let file = dir.join(format!("kafka-classpath-{}.txt", std::process::id()));
        let out = Command::new("mvn")
            .current_dir(maven_project())
            .args(["-q", "-B", "dependency:build-classpath"])
            .arg(format!("-Dmdep.outputFile={}", file.display()))
            .output()
            .expect("Maven runs (Java 17 and Maven; .ci/run checks for them)");
        assert!(
            out.status.success(),
            "mvn dependency:build-classpath failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&file).expect("Maven wrote the classpath")
    })
}

/// Runs `tests/kafka/peers/JavaClients.java` (the Java clients as outside peers) with
/// `args`; its standard output, split into tab-separated lines.
pub fn java_clients(args: &[&str]) -> Vec<Vec<String>> {
    // Seconds of JVM: off the async workers the in-process registry needs.
    let out = loyalty_runtime::kafka::blocking(|| {
        Command::new("java")
            .args(["-cp", classpath()])
            .arg(maven_project().join("peers/JavaClients.java"))
            .args(args)
            .output()
    })
    .expect("java runs");
    assert!(
        out.status.success(),
        "JavaClients {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Lowercase hex, as `java.util.HexFormat` writes and reads it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One KRaft node: a broker and a controller in one process.
struct Node {
    id: u32,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

/// A running Apache Kafka cluster; dropping it kills every node and deletes its data.
pub struct KafkaCluster {
    pub bootstrap_servers: String,
    dir: PathBuf,
    nodes: Vec<Node>,
}

impl KafkaCluster {
    /// Formats and starts `size` nodes (1, or 3 for replication) and waits until every
    /// broker is registered and serving.
    pub fn start(size: u32) -> KafkaCluster {
        assert!(size == 1 || size == 3, "one node, or three for replication");
        let dir = std::env::temp_dir().join(format!(
            "loyalty-kafka-{}-{}",
            std::process::id(),
            stack::free_port().unwrap()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<(u16, u16)> = (0..size)
            .map(|_| (stack::free_port().unwrap(), stack::free_port().unwrap()))
            .collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, controller))| format!("{}@127.0.0.1:{controller}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let replication = size.min(3);
        let min_insync = if size == 3 { 2 } else { 1 };
        let nodes: Vec<Node> = ports
            .iter()
            .enumerate()
            .map(|(i, &(port, controller))| {
                let id = i as u32 + 1;
                let data = dir.join(format!("node-{id}"));
                let config = dir.join(format!("node-{id}.properties"));
                std::fs::write(
                    &config,
                    format!(
                        "process.roles=broker,controller\n\
                         node.id={id}\n\
                         controller.quorum.voters={voters}\n\
                         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                         advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                         controller.listener.names=CONTROLLER\n\
                         inter.broker.listener.name=PLAINTEXT\n\
                         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
                         log.dirs={data}\n\
                         num.partitions=1\n\
                         default.replication.factor={replication}\n\
                         min.insync.replicas={min_insync}\n\
                         offsets.topic.replication.factor={replication}\n\
                         transaction.state.log.replication.factor={replication}\n\
                         transaction.state.log.min.isr={min_insync}\n\
                         group.initial.rebalance.delay.ms=0\n\
                         auto.create.topics.enable=false\n\
                         # A killed node's partitions move once its session ends; the\n\
                         # default 9 s would stretch the broker-failure test.\n\
                         broker.session.timeout.ms=6000\n\
                         broker.heartbeat.interval.ms=500\n\
                         # Retention enforced every second (default: every 5 minutes,\n\
                         # first after 30 s), so a record on a stream stamped with an\n\
                         # old event time is deleted while the test still reads: every\n\
                         # test that reads a stream output checks it was stamped when\n\
                         # written.\n\
                         log.retention.check.interval.ms=1000\n\
                         log.initial.task.delay.ms=1000\n",
                        data = data.display(),
                    ),
                )
                .unwrap();
                let format = Command::new("java")
                    .args(["-cp", classpath(), "kafka.tools.StorageTool", "format"])
                    .args(["-t", CLUSTER_ID, "-c"])
                    .arg(&config)
                    .output()
                    .expect("java runs");
                assert!(
                    format.status.success(),
                    "formatting node {id}:\n{}{}",
                    String::from_utf8_lossy(&format.stdout),
                    String::from_utf8_lossy(&format.stderr)
                );
                Node {
                    id,
                    port,
                    config,
                    log: dir.join(format!("node-{id}.log")),
                    process: None,
                }
            })
            .collect();
        let bootstrap_servers = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = KafkaCluster {
            bootstrap_servers,
            dir,
            nodes,
        };
        for id in 1..=size {
            cluster.launch(id);
        }
        cluster.wait_brokers(size as usize, Duration::from_secs(90));
        cluster
    }

    fn node(&mut self, id: u32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn launch(&mut self, id: u32) {
        let node = self.node(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new("java")
            .args(["-Xms256m", "-Xmx768m", "-XX:+UseG1GC"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                maven_project().join("log4j2.yaml").display()
            ))
            .args(["-cp", classpath(), "kafka.Kafka"])
            .arg(&node.config)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("java runs");
        node.process = Some(child);
    }

    /// Waits until `count` brokers are registered and each answers a metadata request.
    fn wait_brokers(&self, count: usize, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if self.registered_brokers() == Some(count) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{count} Kafka brokers not up within {limit:?}:\n{}",
                self.log_tails()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn registered_brokers(&self) -> Option<usize> {
        use rdkafka::ClientConfig;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("log_level", "0")
            .create()
            .ok()?;
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(2)).ok()?;
        Some(metadata.brokers().len())
    }

    /// The node leading `topic`'s `partition`.
    pub fn leader_of(&self, topic: &str, partition: i32) -> u32 {
        use rdkafka::ClientConfig;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap_servers)
            .create()
            .unwrap();
        let metadata = loyalty_runtime::kafka::blocking(|| {
            consumer.fetch_metadata(Some(topic), Duration::from_secs(10))
        })
        .unwrap();
        let leader = metadata.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .unwrap_or_else(|| panic!("{topic} has no partition {partition}"))
            .leader();
        u32::try_from(leader).unwrap_or_else(|_| panic!("{topic}/{partition} has no leader"))
    }

    /// SIGKILL one node: no controlled shutdown, its partitions lose their leader.
    pub fn kill(&mut self, id: u32) {
        if let Some(mut child) = self.node(id).process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again on its data and waits until every broker is back.
    pub fn restart(&mut self, id: u32) {
        self.launch(id);
        self.wait_brokers(self.nodes.len(), Duration::from_secs(90));
    }

    /// The last lines each node logged, for a failing assertion.
    pub fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                let text = std::fs::read_to_string(&node.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                format!("--- Kafka node {} ---\n{tail}", node.id)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.process.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // A failing test keeps the nodes' logs (the panic message names the folder).
        if std::thread::panicking() {
            eprintln!("Kafka logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
