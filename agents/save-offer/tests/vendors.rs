//! Every vendor normaliser against its fixtures: `tests/fixtures/vendors/<vendor>/*.json`,
//! one per offer shape, each naming the documentation page it follows. A fixture either
//! expects a subset of the normalised offer or an error; fields the normaliser did not
//! read must come back verbatim in the raw fields.

use std::path::{Path, PathBuf};

use save_offer::catalog::vendors::{self, VENDORS};
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vendors");
    let mut files = Vec::new();
    for vendor in std::fs::read_dir(&root).expect("fixtures directory") {
        let dir = vendor.expect("fixture dir").path();
        for file in std::fs::read_dir(&dir).expect("vendor fixtures") {
            let path = file.expect("fixture").path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `expected` is contained in `actual`: objects as subsets, everything else equal.
fn contains(actual: &Value, expected: &Value, at: &str, problems: &mut Vec<String>) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (key, value) in e {
                match a.get(key) {
                    Some(v) => contains(v, value, &format!("{at}.{key}"), problems),
                    None => problems.push(format!("{at}.{key} is missing")),
                }
            }
        }
        _ if actual == expected => {}
        _ => problems.push(format!("{at}: expected {expected}, got {actual}")),
    }
}

#[test]
fn every_normaliser_matches_its_fixtures() {
    let mut failures = Vec::new();
    let mut per_vendor = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for path in fixtures() {
        let name = path.display().to_string();
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
            .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        let vendor = fixture["vendor"].as_str().expect("vendor");
        assert!(
            fixture["documentation"]
                .as_str()
                .is_some_and(|d| d.starts_with("https://")),
            "{name} names no documentation page"
        );
        assert_eq!(
            path.parent()
                .and_then(|p| p.file_name())
                .and_then(|f| f.to_str()),
            Some(vendor),
            "{name} is filed under another vendor"
        );
        let document = &fixture["document"];
        let result = vendors::normalise(vendor, document, fixture["store_currency"].as_str());
        let counts = per_vendor.entry(vendor.to_owned()).or_default();
        match (
            fixture.get("expected"),
            fixture.get("expected_error"),
            result,
        ) {
            (Some(expected), None, Ok(normalised)) => {
                counts.0 += 1;
                let actual = serde_json::to_value(&normalised).expect("serialise");
                let mut problems = Vec::new();
                contains(&actual, expected, "", &mut problems);
                // Nothing is dropped: every field is either read or kept raw.
                let kept: Value =
                    serde_json::from_str(&vendors::unused_fields(document, &normalised.used))
                        .expect("raw fields");
                for (field, value) in document.as_object().into_iter().flatten() {
                    let read = normalised.used.contains(&field.as_str());
                    if !read && kept.get(field) != Some(value) {
                        problems.push(format!("field {field} was neither read nor kept"));
                    }
                }
                if !problems.is_empty() {
                    failures.push(format!("{name}: {}", problems.join("; ")));
                }
            }
            (None, Some(expected), Err(e)) => {
                counts.1 += 1;
                let text = e.to_string();
                let expected = expected.as_str().expect("expected_error is text");
                if !text.contains(expected) {
                    failures.push(format!("{name}: error {text:?} lacks {expected:?}"));
                }
            }
            (_, _, Ok(n)) => {
                failures.push(format!("{name}: expected an error, normalised to {n:?}"))
            }
            (_, _, Err(e)) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every vendor has fixtures: at least one shape it normalises and one it refuses.
    for vendor in VENDORS {
        let (shapes, refused) = per_vendor.get(vendor).copied().unwrap_or_default();
        assert!(
            shapes >= 2 && refused >= 1,
            "{vendor}: {shapes} shapes and {refused} refusals"
        );
    }
}

#[test]
fn an_unknown_vendor_and_a_non_object_are_refused_with_the_reason() {
    let unknown = vendors::normalise("acme_rewards", &serde_json::json!({"id": 1}), None);
    assert_eq!(
        unknown.map_err(|e| e.to_string()),
        Err("unknown vendor \"acme_rewards\"".into())
    );
    for vendor in VENDORS {
        let e = vendors::normalise(vendor, &serde_json::json!([1, 2]), Some("USD")).map(|_| ());
        assert!(
            e.as_ref()
                .is_err_and(|e| e.to_string().contains("not a JSON object")),
            "{vendor}: {e:?}"
        );
    }
}
