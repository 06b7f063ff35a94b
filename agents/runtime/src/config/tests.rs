//! Tests of `config`.

use super::*;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Sample {
    threshold: u32,
}

impl AgentSettings for Sample {
    fn problems(&self) -> Vec<String> {
        if self.threshold > 10 {
            vec![format!("threshold: {} is above 10", self.threshold)]
        } else {
            vec![]
        }
    }
}

fn load(file: &str, env: &[(&str, &str)], flags: &[&str]) -> Result<Config<Sample>, ConfigErrors> {
    let dir = tempfile_dir();
    let path = dir.join("agent.toml");
    std::fs::write(&path, file).unwrap();
    Config::load(&Sources {
        file: Some(path),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        overrides: flags.iter().map(|s| s.to_string()).collect(),
    })
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "loyalty-config-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn layers_file_then_env_then_flags() {
    let config = load(
        "bootstrap_servers = \"file:9092\"\npartitions = 6\n[agent]\nthreshold = 3\n",
        &[
            ("LOYALTY_PARTITIONS", "8"),
            ("LOYALTY_AGENT__THRESHOLD", "4"),
            ("OTHER", "x"),
        ],
        &["partitions=9", "librdkafka.security.protocol=SASL_SSL"],
    )
    .unwrap();
    assert_eq!(config.runtime.bootstrap_servers, "file:9092");
    assert_eq!(config.runtime.partitions, 9);
    assert_eq!(config.agent.threshold, 4);
    assert_eq!(
        config
            .runtime
            .librdkafka
            .get("security.protocol")
            .map(String::as_str),
        Some("SASL_SSL")
    );
}

#[test]
fn lists_every_problem_at_once() {
    let err = load(
        "bootstrap_server = \"typo\"\npartitions = 0\nrepartition_purge_interval_ms = 5\nschema_registry_url = \"localhost\"\ntransactional_id = \"t\"\n[agent]\nthreshold = 11\n[librdkafka]\n\"group.id\" = \"x\"\n\"transactional.id\" = \"y\"\n",
        &[("LOYALTY_NOPE", "1")],
        &["garbage"],
    )
    .unwrap_err();
    let text = err.to_string();
    for expected in [
        "bootstrap_server: unknown setting",
        "nope: unknown setting",
        "partitions: 0 must be at least 1",
        "repartition_purge_interval_ms: 5 must be 0",
        "schema_registry_url",
        "agent.threshold: 11 is above 10",
        "librdkafka.group.id",
        "librdkafka.transactional.id",
        "transactional_id: only used with processing_guarantee",
        "--set \"garbage\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn exactly_once_needs_a_distinct_transactional_id() {
    let ephemeral = "processing_guarantee = \"exactly_once\"\nhttp_listen = \"127.0.0.1:0\"\n";
    let err = load(ephemeral, &[], &[]).unwrap_err().to_string();
    assert!(err.contains("transactional_id: needed"), "{err}");
    let named = format!("{ephemeral}transactional_id = \"cg-0\"\n");
    let config = load(&named, &[], &[]).unwrap();
    assert_eq!(
        config.runtime.processing_guarantee,
        ProcessingGuarantee::ExactlyOnce
    );
    assert!(load("processing_guarantee = \"exactly_once\"\n", &[], &[]).is_ok());
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let config = load(
        "schema_registry_url = \"https://user:hunter2@registry:8081\"\n[librdkafka]\n\"sasl.password\" = \"hunter2\"\n",
        &[],
        &[],
    )
    .unwrap();
    let shown = format!("{:?}", config.runtime);
    assert!(!shown.contains("hunter2"), "{shown}");
}
