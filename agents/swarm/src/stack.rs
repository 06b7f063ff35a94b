//! The embedded local stack: a tansu broker in this process and the schema registry next
//! to it. Any other broker and registry are reached by address instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("embedded broker: {0}")]
    Broker(String),
    #[error("{what} did not start listening on {addr} within {secs}s")]
    NotListening {
        what: &'static str,
        addr: SocketAddr,
        secs: u64,
    },
    #[error("storage {0}: expected memory:// or sqlite://<file>")]
    UnsupportedStorage(String),
    #[error("schema registry: {0}")]
    Registry(#[from] crate::registry::RegistryServerError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where the embedded stack listens and stores.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub kafka: SocketAddr,
    pub registry: SocketAddr,
    /// `sqlite://<file>` (relative to the current directory, or absolute as
    /// `sqlite:///var/lib/swarm.db`) for a broker that keeps its data across runs;
    /// `None` or `memory://…` = tansu's memory engine, gone at shutdown.
    pub storage: Option<String>,
}

/// The default storage: tansu's memory engine (patched so that it keeps every record;
/// see vendor/README.md).
pub const MEMORY_STORAGE: &str = "memory://tansu/";

/// The broker storage URL in the form tansu reads (it joins a SQLite URL's path to the
/// current directory, so an absolute file needs an extra leading slash).
fn storage_url(storage: Option<&str>) -> Result<Url, StackError> {
    let storage = storage.unwrap_or(MEMORY_STORAGE);
    let bad = |detail: String| StackError::Broker(format!("storage {storage}: {detail}"));
    if storage.starts_with("memory://") {
        return Url::parse(storage).map_err(|e| bad(e.to_string()));
    }
    let file = match storage.strip_prefix("sqlite://") {
        Some(rest) if !rest.is_empty() => {
            let path = PathBuf::from(rest);
            if path.is_absolute() {
                path
            } else {
                std::env::current_dir()?.join(path)
            }
        }
        _ => return Err(StackError::UnsupportedStorage(storage.to_owned())),
    };
    Url::parse(&format!("sqlite:///{}", file.display())).map_err(|e| bad(e.to_string()))
}

/// A running embedded stack; dropping it does not stop it, `shutdown` does.
#[derive(Debug)]
pub struct Stack {
    pub bootstrap_servers: String,
    pub registry_url: String,
    broker: JoinHandle<()>,
    registry: Registry,
}

/// The schema registry serving from a broker's `_schemas`: the embedded stack's, or on
/// its own over any Kafka cluster (the end-to-end tests run it on Apache Kafka).
#[derive(Debug)]
pub struct Registry {
    pub url: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// A free loopback port (bound and released; good enough for a local stack and tests).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_listening(
    what: &'static str,
    addr: SocketAddr,
    limit: Duration,
) -> Result<(), StackError> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(StackError::NotListening {
        what,
        addr,
        secs: limit.as_secs(),
    })
}

/// Start the broker, wait for it, then start the registry on top of it.
pub async fn start(options: &StackOptions) -> Result<Stack, StackError> {
    let url = Url::parse(&format!("tcp://{}/", options.kafka))
        .map_err(|e| StackError::Broker(e.to_string()))?;
    let mut storage = storage_url(options.storage.as_deref())?;
    if storage.scheme() == "memory" {
        // Maintenance aborts the transactions of producers that died once they time out;
        // tansu runs it every ten minutes by default.
        storage
            .query_pairs_mut()
            .append_pair("maintenance_interval", "1s");
    }
    let mut broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
        .node_id(0)
        .cluster_id("loyalty-swarm")
        .incarnation_id(uuid::Uuid::now_v7())
        .advertised_listener(url.clone())
        .listener(url)
        .storage(storage)
        .silent(true)
        .build()
        .await
        .map_err(|e| StackError::Broker(format!("{e:?}")))?;
    let broker_task = tokio::spawn(async move {
        if let Err(e) = broker.serve(tokio::time::Instant::now()).await {
            tracing::error!(error = ?e, "embedded broker stopped");
        }
    });
    wait_listening(
        "the embedded broker",
        options.kafka,
        Duration::from_secs(30),
    )
    .await?;

    let bootstrap_servers = options.kafka.to_string();
    let registry = start_registry(&bootstrap_servers, options.registry).await?;
    Ok(Stack {
        bootstrap_servers,
        registry_url: registry.url.clone(),
        broker: broker_task,
        registry,
    })
}

/// Start the schema registry on `addr` over the Kafka cluster at `bootstrap_servers` and
/// wait until it serves.
pub async fn start_registry(
    bootstrap_servers: &str,
    addr: SocketAddr,
) -> Result<Registry, StackError> {
    let (stop, stop_rx) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let registry_addr = listener.local_addr()?;
    let registry_bootstrap = bootstrap_servers.to_owned();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let result = crate::registry::serve(
            &registry_bootstrap,
            listener,
            loyalty_runtime::stopped(stop_rx),
        )
        .await;
        let _ = ready_tx.send(result);
    });
    // The registry reports only when it stops; give it a moment to fail fast on a bad
    // `_schemas` before declaring it up.
    tokio::select! {
        result = ready_rx => {
            if let Ok(Err(e)) = result { return Err(e.into()); }
        }
        _ = wait_registry(registry_addr) => {}
    }
    Ok(Registry {
        url: format!("http://{registry_addr}"),
        stop,
        task,
    })
}

impl Registry {
    /// Resolves if the registry stops on its own.
    pub async fn stopped(&mut self) {
        let _ = (&mut self.task).await;
    }

    /// Stop serving and wait for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn wait_registry(addr: SocketAddr) {
    let client = reqwest::Client::new();
    loop {
        if client
            .get(format!("http://{addr}/subjects"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Stack {
    /// Resolves if the broker or the registry stops on its own, naming which: a stack
    /// serving without one of them must not look healthy.
    pub async fn failure(&mut self) -> &'static str {
        tokio::select! {
            _ = &mut self.broker => "the embedded broker",
            _ = self.registry.stopped() => "the schema registry",
        }
    }

    /// Stop the registry, then the broker.
    pub async fn shutdown(self) {
        self.registry.shutdown().await;
        self.broker.abort();
        let _ = self.broker.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_reach_the_file_tansu_opens() {
        let url = storage_url(Some("sqlite:///var/lib/swarm.db")).unwrap();
        assert_eq!(url.path(), "//var/lib/swarm.db");
        let url = storage_url(Some("sqlite://swarm.db")).unwrap();
        assert!(url.path().ends_with("/swarm.db") && url.path().starts_with("//"));
        assert_eq!(storage_url(None).unwrap().as_str(), MEMORY_STORAGE);
        assert_eq!(
            storage_url(Some("memory://tansu/")).unwrap().scheme(),
            "memory"
        );
        for unsupported in ["postgres://x", "sqlite://", "swarm.db"] {
            assert!(matches!(
                storage_url(Some(unsupported)),
                Err(StackError::UnsupportedStorage(_))
            ));
        }
    }
}
