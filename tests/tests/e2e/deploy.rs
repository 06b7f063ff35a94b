//! The Prometheus files in `deploy/` are valid for `promtool`, every swarm metric their
//! alerts use is one an agent exports, and the README's metrics reference is generated
//! from the metric definitions.

use std::process::Command;

use loyalty_runtime::error::RejectionKind;
use loyalty_runtime::metrics::{Event, MetricDef, MetricKind, Metrics, defs, reference_table};

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

/// Every metric an agent can export: the runtime's, then each agent's own.
fn agent_metrics() -> Vec<(&'static str, &'static [MetricDef])> {
    vec![
        ("tier-transition", tier_transition::metrics::ALL),
        ("ltv", ltv::metrics::ALL),
        ("save-offer", save_offer::metrics::ALL),
        ("compliance-gate", compliance_gate::metrics::ALL),
    ]
}

#[test]
fn alerts_use_only_metrics_the_agents_export() {
    let names: Vec<String> = defs::ALL
        .iter()
        .chain(agent_metrics().iter().flat_map(|(_, d)| d.iter()))
        .flat_map(|d| {
            let name = d.full_name();
            match d.kind {
                MetricKind::Histogram => ["_bucket", "_sum", "_count"]
                    .map(|suffix| format!("{name}{suffix}"))
                    .to_vec(),
                _ => vec![name],
            }
        })
        .collect();
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("loyalty_swarm_"))
        .collect();
    assert!(used.len() >= 4, "{used:?}");
    for name in used {
        assert!(
            names.iter().any(|n| n == name),
            "alerts.yml uses {name}, which no agent exports"
        );
    }
}

/// Every defined metric is registered, under its definition's name, help and labels:
/// registering it again is refused as already registered.
#[test]
fn every_defined_metric_is_registered_as_defined() {
    use loyalty_runtime::prometheus::Error;
    let metrics = Metrics::new("swarm").unwrap();
    tier_transition::metrics::TierMetrics::register(&metrics).unwrap();
    ltv::metrics::LtvMetrics::register(&metrics).unwrap();
    save_offer::metrics::SaveOfferMetrics::register(&metrics).unwrap();
    compliance_gate::metrics::GateMetrics::register(&metrics).unwrap();
    let defined = defs::ALL
        .iter()
        .chain(agent_metrics().into_iter().flat_map(|(_, d)| d.iter()));
    for def in defined {
        let again = match def.kind {
            MetricKind::Counter => metrics.counter(def).err(),
            MetricKind::Gauge => metrics.gauge(def).err(),
            MetricKind::Histogram => metrics.histogram(def, vec![1.0]).err(),
        };
        assert!(
            matches!(again, Some(Error::AlreadyReg)),
            "{} is defined but not registered as defined: {again:?}",
            def.full_name()
        );
    }
    metrics.emit(Event::DeadLettered {
        kind: RejectionKind::Undecodable,
    });
    assert!(
        metrics
            .render()
            .contains("loyalty_swarm_dlq_records_total{")
    );
}

/// The README's metrics reference is the table generated from the definitions; run
/// with `UPDATE_README=1` to rewrite it after changing a metric.
#[test]
fn the_readme_metrics_reference_is_generated_from_the_code() {
    let path = format!("{}/../README.md", env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = (
        "<!-- metrics-reference:begin -->\n",
        "<!-- metrics-reference:end -->",
    );
    let start = readme
        .find(begin)
        .expect("README has the metrics-reference markers")
        + begin.len();
    let stop = readme[start..].find(end).expect("the end marker") + start;
    let generated = reference_table(&agent_metrics());
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{generated}{}", &readme[..start], &readme[stop..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        readme[start..stop],
        generated,
        "README metrics reference differs from the code; rerun with UPDATE_README=1"
    );
}
