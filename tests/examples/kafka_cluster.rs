//! Apache Kafka on loopback for benchmarks and trying the swarm on the real broker: the
//! same KRaft cluster the end-to-end tests start (`tests/tests/e2e/common/kafka.rs`),
//! kept running until Ctrl-C, then killed and its data deleted.
//!
//! `cargo run -p loyalty-e2e --example kafka_cluster [-- --nodes 3]` prints the
//! bootstrap servers; `swarm registry --bootstrap-servers <them>` runs a schema registry
//! on the cluster.

// The example uses the cluster, not the tests' helpers around it.
#[allow(dead_code)]
#[path = "../tests/e2e/common/kafka.rs"]
mod kafka;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nodes = match args.as_slice() {
        [] => 1,
        [flag, n] if flag == "--nodes" && (n == "1" || n == "3") => n.parse()?,
        _ => {
            eprintln!("usage: kafka_cluster [--nodes 1|3]");
            std::process::exit(2);
        }
    };
    let cluster = kafka::KafkaCluster::start(nodes);
    println!("{}", cluster.bootstrap_servers);
    eprintln!(
        "Apache Kafka ({nodes} node(s)) at {}; Ctrl-C stops it",
        cluster.bootstrap_servers
    );
    tokio::runtime::Runtime::new()?.block_on(tokio::signal::ctrl_c())?;
    drop(cluster);
    Ok(())
}
