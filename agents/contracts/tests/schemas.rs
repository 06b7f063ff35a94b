//! The schema files are the contract: the Rust types must produce them exactly, and every
//! schema must stay BACKWARD_TRANSITIVE compatible with all earlier versions kept in
//! `schemas/history/<subject>/v<N>.avsc` (a reader with the new schema can read data
//! written with every old one).

use std::path::PathBuf;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use loyalty_contracts::{contracts, schema_json};

fn schemas_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("../../schemas")
}

#[test]
fn every_schema_file_parses_and_matches_its_rust_type_exactly() {
    for contract in contracts() {
        let path = schemas_dir().join(format!("{}.avsc", contract.subject()));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let parsed = Schema::parse_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let derived = (contract.schema)();
        assert_eq!(
            schema_json(&derived).unwrap(),
            text,
            "{} differs from the Rust type; run `swarm export-schemas` and review the diff",
            path.display()
        );
        assert_eq!(parsed.canonical_form(), derived.canonical_form());
    }
}

#[test]
fn no_stray_schema_files() {
    let known: Vec<String> = contracts()
        .iter()
        .map(|c| format!("{}.avsc", c.subject()))
        .collect();
    for entry in std::fs::read_dir(schemas_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".avsc") {
            assert!(known.contains(&name), "{name} has no contract type");
        }
    }
}

fn history(subject: &str) -> Vec<(String, Schema)> {
    let dir = schemas_dir().join("history").join(subject);
    let mut versions: Vec<(u32, String, Schema)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (every subject keeps its history)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "avsc"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let n: u32 = stem
                .trim_start_matches('v')
                .parse()
                .unwrap_or_else(|_| panic!("{}: name it vN.avsc", p.display()));
            let schema = Schema::parse_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (n, p.display().to_string(), schema)
        })
        .collect();
    versions.sort_by_key(|v| v.0);
    assert!(!versions.is_empty(), "{} has no versions", dir.display());
    versions.into_iter().map(|(_, p, s)| (p, s)).collect()
}

#[test]
fn every_schema_is_backward_transitive_compatible_with_its_history() {
    for contract in contracts() {
        let current = (contract.schema)();
        let versions = history(&contract.subject());
        let (_, newest) = versions.last().unwrap();
        assert_eq!(
            newest.canonical_form(),
            current.canonical_form(),
            "{}: the current schema must be kept as the newest history version",
            contract.subject()
        );
        for (path, old) in &versions {
            SchemaCompatibility::can_read(old, &current).unwrap_or_else(|e| {
                panic!(
                    "{}: cannot read data written with {path}: {e}",
                    contract.subject()
                )
            });
        }
    }
}

#[test]
fn the_compatibility_check_can_fail() {
    // A required field added without a default cannot read old data.
    let old =
        Schema::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#)
            .unwrap();
    let new = Schema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"string"}]}"#,
    )
    .unwrap();
    assert!(SchemaCompatibility::can_read(&old, &new).is_err());
}
