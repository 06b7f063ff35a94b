//! The Prometheus files in `deploy/` are valid for `promtool`, and every swarm metric
//! their alerts use is one the runtime exports.

use std::process::Command;
use std::time::Duration;

use loyalty_runtime::error::RejectionKind;
use loyalty_runtime::metrics::{Event, Metrics};

fn deploy(path: &str) -> String {
    format!(
        "{}/../deploy/{path}",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    )
}

#[test]
fn promtool_accepts_the_scrape_config_and_its_rules() {
    let out = Command::new("promtool")
        .args(["check", "config", &deploy("prometheus/prometheus.yml")])
        .output()
        .expect("promtool is installed (Debian package prometheus; .ci/run installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alerts_use_only_metrics_the_runtime_exports() {
    let metrics = Metrics::new("customer-graph").unwrap();
    for event in [
        Event::RecordsConsumed {
            topic: "t",
            partition: 0,
            count: 1,
        },
        Event::RecordsProduced {
            topic: "t",
            count: 1,
        },
        Event::RecordHandled {
            topic: "t",
            elapsed: Duration::from_micros(5),
        },
        Event::ReplaySkipped {
            topic: "t",
            count: 1,
        },
        Event::DeadLettered {
            kind: RejectionKind::Undecodable,
        },
        Event::BatchCommitted {
            records: 1,
            elapsed: Duration::from_millis(1),
        },
        Event::ConsumerLag {
            topic: "t",
            partition: 0,
            lag: 1,
        },
        Event::StateSize {
            store: "s",
            partition: 0,
            keys: 1,
            bytes: 1,
        },
        Event::RestoreProgress {
            store: "s",
            partition: 0,
            restored: 1,
            remaining: 0,
        },
        Event::Retried { operation: "o" },
        Event::TableLoaded {
            topic: "t",
            count: 1,
        },
        Event::Refreshed {
            elapsed: Duration::from_millis(1),
        },
        Event::ForecastQuality {
            transition: "up_tier",
            resolved: 1,
            brier: 0.1,
            log_loss: 0.3,
            ece: 0.01,
        },
        Event::OpportunityRaised { kind: "thank_you" },
    ] {
        metrics.emit(event);
    }
    let exported = metrics.render();
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("loyalty_swarm_"))
        .collect();
    assert!(used.len() >= 4, "{used:?}");
    for name in used {
        assert!(
            exported.contains(&format!("\n{name}{{")) || exported.contains(&format!("\n{name} ")),
            "alerts.yml uses {name}, which the runtime does not export:\n{exported}"
        );
    }
}
