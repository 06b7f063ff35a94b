//! The loyalty-swarm agent runtime: the one crate that touches Kafka, the schema
//! registry, state stores and metrics (`docs/architecture.md#runtime-guarantees`).
//!
//! An agent implements [`Agent`]; its binary is a few lines around [`agent_main`].
//! The runtime owns the loop, the effectively-once ordering, the DLQ, retries,
//! `/metrics` `/healthz` `/readyz`, structured logs and graceful shutdown.

pub mod agent;
mod avro_writer;
pub mod codec;
pub mod config;
pub mod error;
pub mod http;
pub mod kafka;
pub mod metrics;
mod purge;
pub mod registry;
pub mod retry;
pub mod runner;
pub mod store;
pub mod telemetry;
pub mod trace;
pub mod wire;

use std::path::PathBuf;
use std::process::ExitCode;

pub use agent::{
    Agent, Context, HandleError, Harness, Input, OutputSpec, Population, TableSpec, TableValue,
    decode_checked,
};
pub use config::{AgentSettings, Config, ConfigErrors, NoSettings, Sources};
pub use error::{Rejection, RejectionKind, RuntimeError};
pub use runner::{run, stopped};

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
    use clap::error::ErrorKind;
    match P::try_parse() {
        Ok(parsed) => parsed,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            let usage = P::command().render_usage();
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

/// The whole `main` of an agent binary: parse flags (bad ones print usage), load and
/// validate configuration (every problem listed, exit 2), run until SIGTERM.
pub fn agent_main<A: Agent>(build: impl FnOnce(&A::Settings) -> A) -> ExitCode {
    let args: AgentArgs = parse_args();
    let config = match Config::<A::Settings>::load(&args.sources()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{}: invalid configuration:\n{errors}", A::NAME);
            return ExitCode::from(2);
        }
    };
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
    let agent = build(&config.agent);
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
