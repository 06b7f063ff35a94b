//! Structured logging through `tracing`: JSON lines for machines, text for people.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global subscriber, writing to stderr; a second call (tests, in-process
/// swarms) is a no-op.
pub fn init_logging(format: LogFormat, level: &str) {
    init_logging_to(format, level, std::io::stderr);
}

/// [`init_logging`] to another writer (a log file).
pub fn init_logging_to<W>(format: LogFormat, level: &str, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
