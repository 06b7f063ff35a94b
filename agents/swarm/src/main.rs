//! `swarm`: the operator CLI. Thin: every command is a library call.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use loyalty_runtime::config::ProcessingGuarantee;
use swarm::{demo, replay, setup, stack, verify};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "loyalty-swarm operator CLI: local stack, setup, replay, demo"
)]
struct Cli {
    /// Write logs (the agents', the broker's, librdkafka's) to this file; the terminal
    /// then shows only progress and results. Without it, only errors reach the terminal
    /// unless RUST_LOG asks for more.
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where the cluster is: an external one by address, or the embedded stack.
#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// Use this Kafka cluster instead of starting the embedded broker.
    #[arg(long, value_name = "HOST:PORT,...", requires = "schema_registry_url")]
    bootstrap_servers: Option<String>,
    /// Use this schema registry instead of the embedded one.
    #[arg(long, value_name = "URL", requires = "bootstrap_servers")]
    schema_registry_url: Option<String>,
    /// Embedded broker storage: memory:// (the default; gone on exit), or
    /// sqlite://<file> (relative) / sqlite:///<absolute path> to keep the data across runs.
    #[arg(long, value_name = "URL")]
    storage: Option<String>,
    /// Embedded broker address.
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka_listen: SocketAddr,
    /// Embedded schema registry address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    registry_listen: SocketAddr,
    /// Partitions of every member-keyed topic.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything on this machine: broker, registry, topics, schemas, agents and the
    /// CDNOW replay; print a summary.
    Demo {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// CDNOW-format purchase file to replay [default: the CDNOW master file built
        /// into this binary].
        #[arg(long)]
        file: Option<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Keep the stack and agents running after the summary, until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
        /// customer-graph's /metrics address.
        #[arg(long, default_value = "127.0.0.1:9464")]
        http_listen: String,
        /// After erasing members, restart every agent from empty state (state deleted,
        /// new consumer groups reading from the earliest offset) and check that none of
        /// the erased members comes back.
        #[arg(long)]
        restart_from_empty: bool,
        /// Erase this many members while the replay runs (spread over the file's
        /// customers), and report the time until all six agents receipted each.
        #[arg(long, default_value_t = 0)]
        erase_during_replay: usize,
    },
    /// Run the embedded broker and schema registry until Ctrl-C.
    Stack {
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Run only the schema registry, on a Kafka cluster of your own (it keeps the
    /// schemas in that cluster's `_schemas` topic), until Ctrl-C.
    Registry {
        #[arg(long, value_name = "HOST:PORT,...")]
        bootstrap_servers: String,
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
    },
    /// Create the contract's topics and register its schemas on a cluster.
    Setup {
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap_servers: String,
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        schema_registry_url: String,
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// Replication factor of new topics; -1 = the broker's default.
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        replication: i32,
        /// retention.ms of the streams that carry member ids (opportunities, proposals,
        /// triggers, reviews, erasure requests): how long an erased member may stay
        /// there, 7 days by default; -1 keeps them.
        #[arg(long, default_value_t = loyalty_runtime::config::MEMBER_STREAM_RETENTION_MS, allow_negative_numbers = true)]
        member_stream_retention_ms: i64,
    },
    /// Replay a CDNOW-format file onto the input topics.
    Replay {
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap_servers: String,
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        schema_registry_url: String,
        /// CDNOW-format purchase file [default: the built-in CDNOW master file].
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// End-to-end benchmark: the CDNOW replay through customer-graph on a fresh embedded
    /// stack (or an emptied cluster of yours) several times; prints each run and the
    /// medians as JSON.
    Bench {
        /// Number of runs (the median is reported).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Run the whole demo (cohort, tier-transition and ltv alongside) in each run.
        #[arg(long)]
        all_agents: bool,
        /// CDNOW-format purchase file [default: the built-in CDNOW master file].
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// Run the agents with processing_guarantee = exactly_once (each batch one Kafka
        /// transaction) instead of effectively_once.
        #[arg(long)]
        exactly_once: bool,
        /// Run on this Kafka cluster instead of a fresh embedded stack per run. It must not
        /// hold the swarm's topics: each run creates them and deletes them afterwards,
        /// with the consumer groups it made.
        #[arg(long, value_name = "HOST:PORT,...", requires = "schema_registry_url")]
        bootstrap_servers: Option<String>,
        /// The schema registry of that cluster (`swarm registry` runs one on it).
        #[arg(long, value_name = "URL", requires = "bootstrap_servers")]
        schema_registry_url: Option<String>,
    },
    /// Proposal to trigger latency: compliance-gate on a fresh embedded stack, proposals
    /// sent at a fixed rate (every one approved by email); prints percentiles as JSON.
    BenchGate {
        /// Proposals per second.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        rate: u32,
        /// How long proposals are sent for.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        seconds: u32,
        /// Members the proposals are spread over.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
        members: u64,
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// The gate's batch_max_wait_ms.
        #[arg(long, default_value_t = 5)]
        batch_max_wait_ms: u64,
        /// Run the gate under effectively_once instead of exactly_once (as deployed).
        #[arg(long)]
        effectively_once: bool,
    },
    /// Cancellation request to proposal latency: save-offer and its catalog on a fresh
    /// embedded stack, requests sent at a fixed rate; prints percentiles as JSON.
    BenchOffers {
        /// Cancellation requests per second.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        rate: u32,
        /// How long requests are sent for.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        seconds: u32,
        /// Members the requests are spread over.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
        members: u64,
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// save-offer's batch_max_wait_ms: how long a batch may wait to fill (5, as in
        /// deploy/save-offer.toml; the runtime's default is 50).
        #[arg(long, default_value_t = 5)]
        batch_max_wait_ms: u64,
        /// librdkafka's fetch.wait.max.ms for save-offer and the proposal reader
        /// [default: librdkafka's, 500].
        #[arg(long)]
        fetch_wait_max_ms: Option<u64>,
    },
    /// Lifetime value: population fits, signing keys, attestation checks.
    Ltv {
        #[command(subcommand)]
        command: LtvCommand,
    },
    /// compliance-gate's audit log: verify its chains and checkpoints, make its keys.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Erasure (GDPR Art. 17, CCPA deletion) across the swarm: request it for a member,
    /// follow a request until every agent has confirmed it.
    Erasure {
        #[command(subcommand)]
        command: ErasureCommand,
    },
    /// Write every contract schema as schemas/<subject>.avsc.
    ExportSchemas {
        #[arg(default_value = "schemas")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum LtvCommand {
    /// Fit BG/NBD (weeks) and Gamma-Gamma (currency units) on a CDNOW-format purchase
    /// file; print the parameters with standard errors, log-likelihood and fit time.
    Fit {
        /// CDNOW-format purchase file.
        #[arg(long, value_name = "FILE")]
        transactions: PathBuf,
        /// Last day of the calibration period (YYYY-MM-DD); later purchases are ignored.
        #[arg(long, value_name = "DATE")]
        calibration_end: loyalty_contracts::Date,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-check the attestation of every member-ltv record on a topic (canonical bytes,
    /// output hash, Ed25519 signature); exits non-zero and names each record that fails.
    Verify {
        /// Topic of member-ltv records.
        #[arg(default_value = "loyalty.member-ltv.v1")]
        topic: String,
        /// The attestor's public key: 64 hex digits, or a file holding them.
        #[arg(long, value_name = "HEX|FILE")]
        public_key: String,
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap_servers: String,
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        schema_registry_url: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create an Ed25519 signing key for the ltv agent's attestations; prints the public key.
    Keygen {
        /// File to write the key to (64 hex digits, owner-readable only); must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ErasureCommand {
    /// Write an erasure request for a member; prints its request id.
    Request {
        member_id: String,
        /// Legal basis: gdpr_art17, ccpa, ...
        #[arg(long, default_value = "gdpr_art17")]
        basis: String,
        /// Who asked (the member, an authorised agent, a regulator).
        #[arg(long)]
        requested_by: Option<String>,
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap_servers: String,
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        schema_registry_url: String,
    },
    /// Which agents have confirmed a request (when, and what each removed), and which
    /// streams may still hold the member's records until when. Exit status: 0 every
    /// agent confirmed, 3 some not yet, 1 the receipts could not be read.
    Status {
        request_id: String,
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap_servers: String,
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        schema_registry_url: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the audit log partition by partition: prove every hash chain intact and
    /// every checkpoint signed by the gate's key, or name the first altered, missing,
    /// reordered, forged or forked record of each partition. Exit status: 0 intact,
    /// 3 broken, 1 the log could not be read.
    Verify {
        #[arg(default_value = "loyalty.audit-log.v1")]
        topic: String,
        /// The gate's checkpoint public key: 64 hex digits, or a file holding them.
        #[arg(long, value_name = "HEX|FILE")]
        public_key: String,
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap_servers: String,
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        schema_registry_url: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a key for compliance-gate (its checkpoint signing key, or its pseudonym
    /// key); prints the public key of a signing key.
    Keygen {
        /// File to write the key to (64 hex digits, owner-readable only); must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

async fn start_embedded(cluster: &ClusterArgs) -> anyhow::Result<stack::Stack> {
    let stack = stack::start(&stack::StackOptions {
        kafka: cluster.kafka_listen,
        registry: cluster.registry_listen,
        storage: cluster.storage.clone(),
    })
    .await
    .context("starting the embedded stack")?;
    Ok(stack)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo {
            cluster,
            file,
            json,
            keep_running,
            http_listen,
            restart_from_empty,
            erase_during_replay,
        } => {
            let (embedded, bootstrap, registry, replication) =
                match (&cluster.bootstrap_servers, &cluster.schema_registry_url) {
                    (Some(b), Some(r)) => (None, b.clone(), r.clone(), -1),
                    _ => {
                        let s = start_embedded(&cluster).await?;
                        let (b, r) = (s.bootstrap_servers.clone(), s.registry_url.clone());
                        let storage = cluster.storage.as_deref().unwrap_or(stack::MEMORY_STORAGE);
                        eprintln!(
                            "embedded stack: kafka {b}, schema registry {r}, storage {storage}"
                        );
                        (Some(s), b, r, 1)
                    }
                };
            let options = demo::DemoOptions {
                bootstrap_servers: bootstrap,
                registry_url: registry,
                partitions: cluster.partitions,
                replication,
                file,
                progress: !json,
                http_listen,
                keep_running,
                downstream: true,
                processing_guarantee: ProcessingGuarantee::EffectivelyOnce,
                restart_from_empty,
                erase_during_replay,
            };
            // Printed as soon as the swarm is quiet; with --keep-running it then goes on
            // serving until Ctrl-C.
            demo::run_demo(&options, loyalty_runtime::shutdown_signal(), |summary| {
                if json {
                    match serde_json::to_string_pretty(summary) {
                        Ok(text) => println!("{text}"),
                        Err(e) => eprintln!("summary not printed as JSON: {e}"),
                    }
                } else {
                    println!("{summary}");
                }
                if keep_running {
                    eprintln!("the swarm keeps running; Ctrl-C stops it");
                }
            })
            .await?;
            if let Some(s) = embedded {
                s.shutdown().await;
            }
        }
        Command::Stack { cluster } => {
            let mut s = start_embedded(&cluster).await?;
            println!(
                "ready bootstrap_servers={} schema_registry_url={}",
                s.bootstrap_servers, s.registry_url
            );
            tokio::select! {
                _ = loyalty_runtime::shutdown_signal() => s.shutdown().await,
                which = s.failure() => anyhow::bail!("{which} stopped; the stack is down"),
            }
        }
        Command::Registry {
            bootstrap_servers,
            listen,
        } => {
            let mut registry = stack::start_registry(&bootstrap_servers, listen).await?;
            println!("ready schema_registry_url={}", registry.url);
            tokio::select! {
                _ = loyalty_runtime::shutdown_signal() => registry.shutdown().await,
                _ = registry.stopped() => anyhow::bail!("the schema registry stopped"),
            }
        }
        Command::Setup {
            bootstrap_servers,
            schema_registry_url,
            partitions,
            replication,
            member_stream_retention_ms,
        } => {
            let target = setup::Target {
                bootstrap_servers,
                registry_url: schema_registry_url,
                partitions,
                replication,
                librdkafka: Default::default(),
                member_stream_retention_ms,
            };
            for (subject, id) in setup::setup(&target).await? {
                println!("{subject} id {id}");
            }
        }
        Command::Replay {
            bootstrap_servers,
            schema_registry_url,
            file,
        } => {
            let summary = replay::replay(
                &bootstrap_servers,
                &schema_registry_url,
                file.as_deref(),
                true,
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Command::Bench {
            runs,
            all_agents,
            file,
            partitions,
            exactly_once,
            bootstrap_servers,
            schema_registry_url,
        } => {
            let report = swarm::bench::bench(&swarm::bench::BenchOptions {
                runs,
                all_agents,
                file,
                partitions,
                processing_guarantee: if exactly_once {
                    ProcessingGuarantee::ExactlyOnce
                } else {
                    ProcessingGuarantee::EffectivelyOnce
                },
                cluster: bootstrap_servers.zip(schema_registry_url),
            })
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::BenchGate {
            rate,
            seconds,
            members,
            partitions,
            batch_max_wait_ms,
            effectively_once,
        } => {
            let report =
                swarm::gate_latency::bench_gate(&swarm::gate_latency::GateLatencyOptions {
                    rate_per_second: rate,
                    seconds,
                    members: usize::try_from(members)?,
                    partitions,
                    batch_max_wait_ms,
                    exactly_once: !effectively_once,
                })
                .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::BenchOffers {
            rate,
            seconds,
            members,
            partitions,
            batch_max_wait_ms,
            fetch_wait_max_ms,
        } => {
            let report =
                swarm::offer_latency::bench_offers(&swarm::offer_latency::LatencyOptions {
                    rate_per_second: rate,
                    seconds,
                    members: usize::try_from(members)?,
                    partitions,
                    batch_max_wait_ms,
                    fetch_wait_max_ms,
                })
                .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Ltv {
            command:
                LtvCommand::Fit {
                    transactions,
                    calibration_end,
                    json,
                },
        } => {
            let fit = swarm::fit::fit_file(&transactions, calibration_end)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&fit)?);
            } else {
                println!("{fit}");
            }
        }
        Command::Ltv {
            command:
                LtvCommand::Verify {
                    topic,
                    public_key,
                    bootstrap_servers,
                    schema_registry_url,
                    json,
                },
        } => {
            let key = verify::public_key(&public_key)?;
            let report =
                verify::verify_topic(&bootstrap_servers, &schema_registry_url, &topic, &key)
                    .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            anyhow::ensure!(
                report.failures.is_empty(),
                "{} of {} records failed verification",
                report.failures.len(),
                report.records - report.tombstones
            );
        }
        Command::Ltv {
            command: LtvCommand::Keygen { out },
        } => {
            let public = verify::keygen(&out)?;
            println!("{public}");
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    topic,
                    public_key,
                    bootstrap_servers,
                    schema_registry_url,
                    json,
                },
        } => {
            let key = verify::public_key(&public_key)?;
            let registry = loyalty_runtime::registry::RegistryClient::new(&schema_registry_url)?;
            let report =
                swarm::audit::verify_topic(&bootstrap_servers, &registry, &topic, &key).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            if !report.intact() {
                let broken = report
                    .partitions
                    .iter()
                    .filter(|p| p.broken.is_some())
                    .count();
                return Err(swarm::audit::ChainBroken(broken).into());
            }
        }
        Command::Audit {
            command: AuditCommand::Keygen { out },
        } => {
            let public = verify::keygen(&out)?;
            println!("{public}");
        }
        Command::Erasure {
            command:
                ErasureCommand::Request {
                    member_id,
                    basis,
                    requested_by,
                    bootstrap_servers,
                    schema_registry_url,
                },
        } => {
            let request = swarm::erasure::request(
                &bootstrap_servers,
                &schema_registry_url,
                &member_id,
                &basis,
                requested_by,
            )
            .await?;
            println!("{}", request.request_id);
        }
        Command::Erasure {
            command:
                ErasureCommand::Status {
                    request_id,
                    bootstrap_servers,
                    schema_registry_url,
                    json,
                },
        } => {
            let registry = loyalty_runtime::registry::RegistryClient::new(&schema_registry_url)?;
            let status = swarm::erasure::status(&bootstrap_servers, &registry, &request_id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{status}");
            }
            if !status.complete() {
                return Err(swarm::erasure::ErasurePending(status.missing.len()).into());
            }
        }
        Command::ExportSchemas { dir } => {
            std::fs::create_dir_all(&dir)?;
            for contract in loyalty_contracts::contracts() {
                let path = dir.join(format!("{}.avsc", contract.subject()));
                std::fs::write(&path, loyalty_contracts::schema_json(&(contract.schema)())?)?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli: Cli = loyalty_runtime::parse_args();
    let asked = std::env::var("RUST_LOG").ok();
    match &cli.log_file {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => loyalty_runtime::telemetry::init_logging_to(
                loyalty_runtime::config::LogFormat::Text,
                asked.as_deref().unwrap_or("info"),
                std::sync::Mutex::new(file),
            ),
            Err(e) => {
                eprintln!("swarm: cannot write the log file {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => loyalty_runtime::telemetry::init_logging(
            loyalty_runtime::config::LogFormat::Text,
            asked.as_deref().unwrap_or("error"),
        ),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swarm: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swarm: {e:#}");
            if e.downcast_ref::<swarm::audit::ChainBroken>().is_some()
                || e.downcast_ref::<swarm::erasure::ErasurePending>().is_some()
            {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
