//! `swarm ltv verify <topic>`: re-check every member-ltv record on a topic against the
//! attestor's public key — the canonical encoding, the output hash and the Ed25519
//! signature — and name every record that fails, with its position.

use std::path::Path;

use anyhow::Context as _;
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::wire;
use ltv::attest::{self, Canonical};
use serde::Serialize;

use crate::inspect;

/// One record that did not verify.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub problems: Vec<String>,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub topic: String,
    pub key_id: String,
    pub records: usize,
    pub tombstones: usize,
    pub verified: usize,
    pub failures: Vec<Failure>,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} records ({} tombstones), {} verified, {} failed (key {})",
            self.topic,
            self.records,
            self.tombstones,
            self.verified,
            self.failures.len(),
            self.key_id
        )?;
        for failure in &self.failures {
            writeln!(
                f,
                "  FAIL partition {} offset {} key {}: {}",
                failure.partition,
                failure.offset,
                failure.key,
                failure.problems.join("; ")
            )?;
        }
        Ok(())
    }
}

/// The public key from 64 hex digits, or from a file holding them.
pub fn public_key(arg: &str) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))?
    } else {
        arg.to_owned()
    };
    Ok(attest::parse_verifying_key(&text)?)
}

pub async fn verify_topic(
    bootstrap_servers: &str,
    registry_url: &str,
    topic: &str,
    key: &ed25519_dalek::VerifyingKey,
) -> anyhow::Result<VerifyReport> {
    let registry = RegistryClient::new(registry_url)?;
    let records = inspect::positioned_records(bootstrap_servers, topic).await?;
    verify_records(&registry, topic, &records, key).await
}

/// Re-check the given records of `topic` (e.g. only the newest per key).
pub async fn verify_records(
    registry: &RegistryClient,
    topic: &str,
    records: &[inspect::Positioned],
    key: &ed25519_dalek::VerifyingKey,
) -> anyhow::Result<VerifyReport> {
    let canonical = Canonical::new()?;
    let mut report = VerifyReport {
        topic: topic.to_owned(),
        key_id: attest::key_id(key),
        records: records.len(),
        tombstones: 0,
        verified: 0,
        failures: Vec::new(),
    };
    for record in records {
        let Some(bytes) = &record.value else {
            report.tombstones += 1;
            continue;
        };
        let problems = match wire::split(bytes) {
            Err(r) => vec![format!("not in the Confluent wire format: {r}")],
            Ok((id, body)) => match registry.schema(id).await {
                Err(e) => vec![format!("writer schema {id} not in the registry: {e}")],
                Ok(schema) => attest::verify_body(&schema, body, key, &canonical),
            },
        };
        if problems.is_empty() {
            report.verified += 1;
        } else {
            report.failures.push(Failure {
                partition: record.partition,
                offset: record.offset,
                key: record.key.clone(),
                problems,
            });
        }
    }
    Ok(report)
}

/// A new signing key written to `path` (readable by the owner only); returns the public
/// key's hex. The seed comes from the operating system's random source.
pub fn keygen(path: &Path) -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .context("reading /dev/urandom")?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    options
        .open(path)
        .and_then(|mut f| f.write_all(attest::to_hex(&seed).as_bytes()))
        .with_context(|| format!("writing {} (it must not exist yet)", path.display()))?;
    Ok(attest::to_hex(key.verifying_key().as_bytes()))
}
