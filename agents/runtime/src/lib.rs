//! The loyalty-swarm agent runtime: the one crate that touches Kafka, the schema
//! registry, state stores and metrics (`docs/architecture.md#runtime-guarantees`).
//!
//! An agent implements [`Agent`]; its binary is a few lines around [`agent_main!`].
//! The runtime owns the loop, the effectively-once ordering, the DLQ, retries,
//! timers, `/metrics` `/healthz` `/readyz`, structured logs and graceful shutdown.
//!
//! What an agent writes against: [`agent`] (the trait, summaries, re-keying),
//! [`Context`] (what its code sees), [`Input`], [`Topic`] and [`Table`] (typed handles),
//! [`Harness`] and [`Record`] (its code without a broker). What runs it: [`runner`] (the
//! loop, a file per concern), [`store`] (per-key state, timers, changelog encoding),
//! [`kafka`], [`registry`], [`codec`] and [`wire`] (clients and formats), [`retry`],
//! [`metrics`], [`trace`], [`http`], [`config`].

pub mod agent;
mod avro_writer;
pub mod codec;
pub mod config;
mod context;
pub mod erasure;
pub mod error;
mod harness;
pub mod http;
mod input;
pub mod kafka;
pub mod metrics;
mod purge;
pub mod registry;
pub mod retry;
pub mod runner;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod time;
mod topic;
pub mod trace;
pub mod wire;

pub use agent::{
    Agent, HandleError, KeepsKeys, PartitionSummary, Population, Rekeying, Rekeys, rekeys,
    shares_summary,
};
pub use config::{AgentSettings, Config, ConfigErrors, NoSettings, Sources};
pub use context::{Context, Emitted};
pub use erasure::Forgotten;
pub use error::{Rejection, RejectionKind, RuntimeError};
pub use harness::{Harness, Record};
pub use input::Input;
/// The Prometheus client agents define their own metrics with ([`metrics::MetricDef`]).
pub use prometheus;
pub use runner::{run, stopped};
pub use store::{Clock, Timer};
pub use topic::{Cleanup, OutputSpec, Table, TableRecord, TableSpec, Topic};

use std::path::PathBuf;
use std::process::ExitCode;

/// Command-line flags every agent binary accepts.
#[derive(Debug, Clone, clap::Parser)]
#[command(version, about)]
pub struct AgentArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override a setting: key=value (dotted keys reach into tables, e.g. agent.x=1).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Kafka bootstrap servers (overrides bootstrap_servers).
    #[arg(long, value_name = "HOST:PORT,...")]
    pub bootstrap_servers: Option<String>,
    /// Schema registry URL (overrides schema_registry_url).
    #[arg(long, value_name = "URL")]
    pub schema_registry_url: Option<String>,
    /// Address for /metrics, /healthz and /readyz (overrides http_listen).
    #[arg(long, value_name = "HOST:PORT")]
    pub http_listen: Option<String>,
    /// Validate the configuration, print it (secrets redacted) and exit.
    #[arg(long)]
    pub check_config: bool,
}

impl AgentArgs {
    /// The configuration sources these flags describe, over the process environment.
    pub fn sources(&self) -> Sources {
        let mut overrides = Vec::new();
        let flags = [
            ("bootstrap_servers", &self.bootstrap_servers),
            ("schema_registry_url", &self.schema_registry_url),
            ("http_listen", &self.http_listen),
        ];
        for (key, value) in flags {
            if let Some(v) = value {
                overrides.push(format!("{key}={v}"));
            }
        }
        overrides.extend(self.set.iter().cloned());
        Sources::from_process(self.config.clone(), overrides)
    }
}

/// Parse the command line; on a bad argument print what was wrong and the usage, then
/// exit with status 2 (clap alone omits the usage for an invalid value).
pub fn parse_args<P: clap::Parser>() -> P {
    parse_command(P::command())
}

/// [`parse_args`] with the command described as `command` says (an agent's own name and
/// description in place of the runtime's).
fn parse_command<P: clap::Parser>(command: clap::Command) -> P {
    use clap::error::ErrorKind;
    let usage = command.clone().render_usage();
    let parsed = command
        .try_get_matches()
        .and_then(|mut matches| P::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(parsed) => parsed,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            let _ = e.print();
            if !e.to_string().contains("Usage:") {
                eprintln!("\n{usage}");
            }
            std::process::exit(2);
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// What an agent binary says about itself in `--help` and `--version`: its own package's
/// name, description and version, taken by [`agent_main!`] where the binary is built.
#[derive(Debug, Clone, Copy)]
pub struct About {
    pub name: &'static str,
    pub description: &'static str,
    pub version: &'static str,
}

/// The whole `main` of an agent binary, described by its own package:
/// `fn main() -> ExitCode { loyalty_runtime::agent_main!(MyAgent::new) }`.
/// An example or second binary of a package describes itself:
/// `agent_main!(MyAgent::new, "my-agent", "What it does.")`.
#[macro_export]
macro_rules! agent_main {
    ($build:expr) => {
        $crate::agent_main!(
            $build,
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_DESCRIPTION")
        )
    };
    ($build:expr, $name:expr, $description:expr) => {
        $crate::agent_main(
            $crate::About {
                name: $name,
                description: $description,
                version: env!("CARGO_PKG_VERSION"),
            },
            $build,
        )
    };
}

/// The whole `main` of an agent binary: parse flags (bad ones print usage), load and
/// validate configuration (every problem listed, exit 2), run until SIGTERM. Call it
/// through [`agent_main!`], which describes the binary by its own package.
pub fn agent_main<A: Agent>(about: About, build: impl FnOnce(&A::Settings) -> A) -> ExitCode {
    use clap::CommandFactory;
    let command = AgentArgs::command()
        .name(about.name)
        .bin_name(about.name)
        .about(about.description)
        .version(about.version);
    let args: AgentArgs = parse_command(command);
    let config = match Config::<A::Settings>::load(&args.sources()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{}: invalid configuration:\n{errors}", A::NAME);
            return ExitCode::from(2);
        }
    };
    let agent = build(&config.agent);
    if erasure::erases(&agent)
        && let Err(e) = erasure::Registry::load(config.runtime.erasure_key_file.as_deref())
    {
        eprintln!(
            "{}: invalid configuration:\n  - erasure_key_file: {e} (agents that read {} hash erased ids under it)",
            A::NAME,
            erasure::REQUESTS
        );
        return ExitCode::from(2);
    }
    if args.check_config {
        println!("{:#?}\n{:#?}", config.runtime, config.agent);
        return ExitCode::SUCCESS;
    }
    telemetry::init_logging(config.runtime.log_format, &config.runtime.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", A::NAME);
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(agent, config, shutdown_signal()));
    // `run` has drained or given up within the drain timeout; a client call still
    // blocked on an unreachable broker must not hold the process past it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(agent = A::NAME, error = %e, "agent stopped on a fatal error");
            eprintln!("{}: {e}", A::NAME);
            ExitCode::FAILURE
        }
    }
}
