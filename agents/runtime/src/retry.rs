//! Retry with exponential backoff for transient failures. Retries never give up on their
//! own: skipping a record because the broker was away would lose it. Only shutdown ends
//! the wait — a SIGTERM during a broker or registry outage must not hang the agent, and
//! since offsets are committed last, stopping mid-retry commits nothing that was not
//! written.
//!
//! Every wait-and-try-again in the runtime goes through [`Backoff`]: [`Backoff::retry`]
//! for one fallible call, [`Backoff::delays`] where the loop has more to do between
//! attempts (abort a transaction, start a restore over).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::RuntimeError;
use crate::metrics::{Event, Metrics};

/// Exponential backoff from `initial` to `max`, cut short by shutdown.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// Turns true on shutdown; `None` for a backoff nothing stops (tools outside an agent).
    stop: Option<watch::Receiver<bool>>,
    /// How long retries go on once shutdown is asked for: the drain timeout for the
    /// writes of the batch in flight (a broker blip must not abandon a drain that has
    /// time left), zero for start-up, which has nothing to finish.
    drain: Duration,
    /// When shutdown was first seen, shared by every clone.
    stopped_at: std::sync::Arc<std::sync::OnceLock<tokio::time::Instant>>,
}

impl Backoff {
    /// A backoff that ends its waits with [`RuntimeError::ShutDown`] once `stop` turns
    /// true and `drain` has passed since.
    pub fn new(
        initial: Duration,
        max: Duration,
        stop: watch::Receiver<bool>,
        drain: Duration,
    ) -> Self {
        Backoff {
            initial,
            max,
            stop: Some(stop),
            drain,
            stopped_at: Default::default(),
        }
    }

    /// The same backoff, ending its waits as soon as shutdown is asked for.
    pub fn without_drain(&self) -> Self {
        Backoff {
            drain: Duration::ZERO,
            stopped_at: Default::default(),
            ..self.clone()
        }
    }

    /// A backoff without a shutdown signal, for one-shot tools whose user can Ctrl-C the
    /// process itself.
    pub fn unstoppable(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            stop: None,
            drain: Duration::ZERO,
            stopped_at: Default::default(),
        }
    }

    /// A fresh sequence of delays, for a loop that retries by hand.
    pub fn delays(&self) -> Delays<'_> {
        Delays {
            backoff: self,
            next: self.initial,
        }
    }

    /// Run `attempt` until it succeeds, fails permanently, or shutdown ends the wait.
    pub async fn retry<T, F, Fut>(
        &self,
        operation: &'static str,
        metrics: &Metrics,
        mut attempt: F,
    ) -> Result<T, RuntimeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RuntimeError>>,
    {
        let mut delays = self.delays();
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) if e.is_transient() => delays.wait(operation, metrics, &e).await?,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The delays of one retry loop, each twice the last up to the maximum.
#[derive(Debug)]
pub struct Delays<'a> {
    backoff: &'a Backoff,
    next: Duration,
}

impl Delays<'_> {
    /// Count and log the transient `error` of `operation`, then wait the next delay —
    /// or return [`RuntimeError::ShutDown`] as soon as shutdown is asked for.
    pub async fn wait(
        &mut self,
        operation: &'static str,
        metrics: &Metrics,
        error: &(dyn std::fmt::Display + Sync),
    ) -> Result<(), RuntimeError> {
        let delay = self.next;
        self.next = (self.next * 2).min(self.backoff.max);
        tracing::warn!(operation, error = %error, retry_in_ms = delay.as_millis() as u64, "transient failure, retrying");
        metrics.emit(Event::Retried { operation });
        let Some(stop) = &self.backoff.stop else {
            tokio::time::sleep(delay).await;
            return Ok(());
        };
        let mut stop = stop.clone();
        if !*stop.borrow_and_update() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => return Ok(()),
                _ = crate::runner::stopped(stop) => {}
            }
        }
        // Shutdown asked for: go on only while the drain has time left.
        let since = *self
            .backoff
            .stopped_at
            .get_or_init(tokio::time::Instant::now);
        let left = self.backoff.drain.saturating_sub(since.elapsed());
        if left.is_zero() {
            return Err(RuntimeError::ShutDown { operation });
        }
        tokio::time::sleep(delay.min(left)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> RuntimeError {
        RuntimeError::Registry(crate::registry::RegistryError::Status {
            status: 503,
            what: "test".into(),
            body: String::new(),
        })
    }

    #[tokio::test]
    async fn shutdown_ends_a_retry_that_would_never_succeed() {
        let (stop_tx, stop_rx) = watch::channel(false);
        let backoff = Backoff::new(
            Duration::from_millis(10),
            Duration::from_secs(3600),
            stop_rx,
            Duration::ZERO,
        );
        let metrics = Metrics::new("retry-test").unwrap();
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stop_tx.send(true).unwrap();
            // Keep the sender until the retry has seen the signal.
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let started = std::time::Instant::now();
        let result: Result<(), _> = backoff
            .retry("never", &metrics, || async { Err(transient()) })
            .await;
        assert!(matches!(
            result,
            Err(RuntimeError::ShutDown { operation: "never" })
        ));
        // The delays grow to an hour; the signal ends the wait at once.
        assert!(started.elapsed() < Duration::from_secs(5));
        stopper.abort();
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_permanent_ones_returned() {
        let backoff = Backoff::unstoppable(Duration::from_millis(1), Duration::from_millis(4));
        let metrics = Metrics::new("retry-test").unwrap();
        let mut calls = 0;
        let value = backoff
            .retry("flaky", &metrics, || {
                calls += 1;
                let fail = calls < 4;
                async move { if fail { Err(transient()) } else { Ok(calls) } }
            })
            .await
            .unwrap();
        assert_eq!(value, 4);
        let permanent: Result<(), _> = backoff
            .retry("bad", &metrics, || async {
                Err(RuntimeError::Other("permanent".into()))
            })
            .await;
        assert!(matches!(permanent, Err(RuntimeError::Other(_))));
    }
}
