//! Retry with exponential backoff for transient failures. Retries never give up on their
//! own: skipping a record because the broker was away would lose it. Only shutdown ends
//! the wait.

use std::future::Future;
use std::time::Duration;

use crate::error::RuntimeError;
use crate::metrics::{Event, Metrics};

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

/// Run `attempt` until it succeeds or fails permanently.
pub async fn retry<T, F, Fut>(
    operation: &str,
    backoff: Backoff,
    metrics: &Metrics,
    mut attempt: F,
) -> Result<T, RuntimeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RuntimeError>>,
{
    let mut delay = backoff.initial;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() => {
                tracing::warn!(operation, error = %e, retry_in_ms = delay.as_millis() as u64, "transient failure, retrying");
                metrics.emit(Event::Retried { operation });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(backoff.max);
            }
            Err(e) => return Err(e),
        }
    }
}
