//! What `swarm demo` shows while it runs: a line per stage and, on a terminal, a spinner
//! with what is being waited for (the agents' lag, how long the swarm has been quiet);
//! when stderr is not a terminal (a log file, CI), the same as a plain line at most every
//! ten seconds. Library logs stay out of it: they go to `--log-file`, or to the terminal
//! only when `RUST_LOG` asks for them.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// The demo's progress reporter.
pub struct Progress {
    /// The spinner, on a terminal.
    spinner: Option<ProgressBar>,
    /// Whether anything is shown at all (`--json` and the benchmark show nothing).
    enabled: bool,
    /// When a plain status line was last printed.
    printed: Option<Instant>,
}

/// How often a plain status line is repeated when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let spinner = (enabled && std::io::stderr().is_terminal()).then(|| {
            let spinner = ProgressBar::new_spinner();
            spinner.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spinner.enable_steady_tick(Duration::from_millis(120));
            spinner
        });
        Progress {
            spinner,
            enabled,
            printed: None,
        }
    }

    /// A stage started or ended: one line, kept above the spinner.
    pub fn stage(&self, text: &str) {
        if !self.enabled {
            return;
        }
        match &self.spinner {
            Some(spinner) => spinner.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// What is being waited for now.
    pub fn status(&mut self, text: &str) {
        if !self.enabled {
            return;
        }
        match &self.spinner {
            Some(spinner) => spinner.set_message(text.to_owned()),
            None => {
                if self.printed.is_none_or(|at| at.elapsed() >= PLAIN_EVERY) {
                    eprintln!("  {text}");
                    self.printed = Some(Instant::now());
                }
            }
        }
    }

    /// The spinner's line, cleared.
    pub fn finish(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}
