//! The gate's rules as Cedar policies (`policies/*.cedar` against `policies/
//! gate.cedarschema`): loaded and strictly validated at start-up, every problem listed at
//! once; versioned by the SHA-256 of the whole set ([`GatePolicies::hash`]), which the
//! gate writes into every decision it records.
//!
//! Cedar answers allow or deny. The gate needs four outcomes, so each policy carries an
//! `@effect`: `permit` (the basis a send relied on), `deny`, `defer` (not now: quiet
//! hours, frequency caps) or `review` (a human decides: GDPR Art. 22, unregistered
//! sweepstakes, reseller pricing). A send is approved when Cedar allows it; otherwise
//! the satisfied forbids decide, the gravest effect winning: deny, then review, then
//! defer. Every policy also carries its `@id` (Cedar's own ids are positional) and the
//! `@statute` it implements; one with `@table` reads a jurisdiction table row, which the
//! decision cites as well.
//!
//! Cedar skips a policy whose evaluation fails, so a failing `forbid` would not forbid:
//! a decision with any evaluation error is a denial naming the error (fail closed).

mod request;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{Authorizer, Decision, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use sha2::{Digest, Sha256};

use crate::facts::Facts;

/// The policy files shipped with the gate, compiled in: the default set.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "consent.cedar",
        include_str!("../../policies/consent.cedar"),
    ),
    ("minors.cedar", include_str!("../../policies/minors.cedar")),
    ("timing.cedar", include_str!("../../policies/timing.cedar")),
    (
        "significant_effects.cedar",
        include_str!("../../policies/significant_effects.cedar"),
    ),
    (
        "stored_value.cedar",
        include_str!("../../policies/stored_value.cedar"),
    ),
    (
        "sweepstakes.cedar",
        include_str!("../../policies/sweepstakes.cedar"),
    ),
    (
        "auto_renewal.cedar",
        include_str!("../../policies/auto_renewal.cedar"),
    ),
    (
        "content.cedar",
        include_str!("../../policies/content.cedar"),
    ),
];

/// The shipped Cedar schema.
pub const SHIPPED_SCHEMA: &str = include_str!("../../policies/gate.cedarschema");

/// What a satisfied policy does to the send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    Permit,
    Defer,
    Review,
    Deny,
}

impl Effect {
    /// The `@effect` annotation's value.
    pub fn label(self) -> &'static str {
        match self {
            Effect::Permit => "permit",
            Effect::Defer => "defer",
            Effect::Review => "review",
            Effect::Deny => "deny",
        }
    }

    fn parse(label: &str) -> Option<Effect> {
        [Effect::Permit, Effect::Defer, Effect::Review, Effect::Deny]
            .into_iter()
            .find(|e| e.label() == label)
    }
}

/// A policy's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMeta {
    pub statute: String,
    pub effect: Effect,
    /// The jurisdiction table the policy reads, if any.
    pub table: Option<String>,
}

/// The decision's outcome: the contract's, as the audit log records it (approved,
/// denied, deferred — decided again at the release time — or needs review).
pub type Outcome = loyalty_contracts::GateOutcome;

/// A policy that decided, with the law it implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deciding {
    pub policy_id: String,
    pub statute: String,
    pub effect: Effect,
    /// The jurisdiction table row the policy read, naming its own law.
    pub table_rule: Option<String>,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Every deciding policy, by id: the permits of an approval, every satisfied forbid
    /// otherwise.
    pub deciding: Vec<Deciding>,
    /// Evaluation errors (each makes the decision a denial).
    pub errors: Vec<String>,
}

impl Verdict {
    pub fn policy_ids(&self) -> Vec<&str> {
        self.deciding.iter().map(|d| d.policy_id.as_str()).collect()
    }
}

/// Every problem found loading a policy set.
#[derive(Debug, thiserror::Error)]
#[error("invalid policy set:\n  {}", .0.join("\n  "))]
pub struct PolicyErrors(pub Vec<String>);

/// The loaded, validated policy set.
pub struct GatePolicies {
    set: PolicySet,
    schema: Schema,
    meta: BTreeMap<String, PolicyMeta>,
    hash: String,
}

impl std::fmt::Debug for GatePolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatePolicies")
            .field("policies", &self.meta.len())
            .field("hash", &self.hash)
            .finish()
    }
}

impl GatePolicies {
    /// The set shipped with the gate.
    pub fn shipped() -> Result<Self, PolicyErrors> {
        Self::from_sources(SHIPPED_SCHEMA, SHIPPED)
    }

    /// `gate.cedarschema` and every `*.cedar` file of `dir` (an operator's own set).
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyErrors> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| PolicyErrors(vec![format!("{}: {e}", path.display())]))
        };
        let schema = read(&dir.join("gate.cedarschema"))?;
        let entries = std::fs::read_dir(dir)
            .map_err(|e| PolicyErrors(vec![format!("{}: {e}", dir.display())]))?;
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "cedar") {
                let name = entry.file_name().to_string_lossy().into_owned();
                files.push((name, read(&path)?));
            }
        }
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        Self::from_sources(&schema, &files)
    }

    /// Parse, annotate and validate; every problem is listed.
    pub fn from_sources(schema_src: &str, files: &[(&str, &str)]) -> Result<Self, PolicyErrors> {
        let mut problems = Vec::new();
        let schema = match Schema::from_cedarschema_str(schema_src) {
            Ok((schema, _warnings)) => Some(schema),
            Err(e) => {
                problems.push(format!("gate.cedarschema: {e}"));
                None
            }
        };
        let mut set = PolicySet::new();
        let mut meta = BTreeMap::new();
        let mut sorted: Vec<&(&str, &str)> = files.iter().collect();
        sorted.sort_by_key(|(name, _)| *name);
        for (file, text) in &sorted {
            let parsed = match PolicySet::from_str(text) {
                Ok(parsed) => parsed,
                Err(e) => {
                    problems.push(format!("{file}: {e}"));
                    continue;
                }
            };
            for policy in parsed.policies() {
                let Some(id) = policy.annotation("id").filter(|id| !id.is_empty()) else {
                    problems.push(format!("{file}: a policy has no @id"));
                    continue;
                };
                let statute = policy.annotation("statute").unwrap_or_default();
                if statute.is_empty() {
                    problems.push(format!("{file}: {id} has no @statute"));
                }
                let effect = policy.annotation("effect").unwrap_or_default();
                let effect = match (Effect::parse(effect), policy.effect()) {
                    (Some(Effect::Permit), cedar_policy::Effect::Permit) => Effect::Permit,
                    (Some(e), cedar_policy::Effect::Forbid) if e != Effect::Permit => e,
                    _ => {
                        problems.push(format!(
                            "{file}: {id} has @effect({effect:?}); a permit needs \"permit\", a forbid one of \"deny\", \"defer\", \"review\""
                        ));
                        continue;
                    }
                };
                if let Err(e) = set.add(policy.new_id(PolicyId::new(id))) {
                    problems.push(format!("{file}: {id}: {e}"));
                    continue;
                }
                meta.insert(
                    id.to_owned(),
                    PolicyMeta {
                        statute: statute.to_owned(),
                        effect,
                        table: policy.annotation("table").map(str::to_owned),
                    },
                );
            }
        }
        if let Some(schema) = &schema {
            let validation = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
            for e in validation.validation_errors() {
                problems.push(format!("{}: {e}", e.policy_id()));
            }
        }
        match schema {
            Some(schema) if problems.is_empty() => Ok(GatePolicies {
                hash: set_hash(schema_src, &sorted),
                set,
                schema,
                meta,
            }),
            _ => Err(PolicyErrors(problems)),
        }
    }

    /// SHA-256 of the schema and every policy file (by name), hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Every policy's id and annotations.
    pub fn policies(&self) -> &BTreeMap<String, PolicyMeta> {
        &self.meta
    }

    /// Decide one send.
    pub fn decide(&self, facts: &Facts) -> Verdict {
        let built = match request::build(&self.schema, facts) {
            Ok(built) => built,
            Err(e) => {
                return Verdict {
                    outcome: Outcome::Denied,
                    deciding: Vec::new(),
                    errors: vec![format!("request: {e}")],
                };
            }
        };
        let response = Authorizer::new().is_authorized(&built.request, &self.set, &built.entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        let mut deciding: Vec<Deciding> = response
            .diagnostics()
            .reason()
            .filter_map(|id| {
                let id = id.to_string();
                let meta = self.meta.get(&id)?;
                Some(Deciding {
                    table_rule: meta.table.as_deref().and_then(|t| built.rows.cite(t)),
                    policy_id: id,
                    statute: meta.statute.clone(),
                    effect: meta.effect,
                })
            })
            .collect();
        // Gravest first, then by id: the same decision lists the same way every time.
        deciding.sort_by(|a, b| {
            b.effect
                .cmp(&a.effect)
                .then_with(|| a.policy_id.cmp(&b.policy_id))
        });
        let outcome = if !errors.is_empty() {
            Outcome::Denied
        } else if response.decision() == Decision::Allow {
            Outcome::Approved
        } else {
            match deciding.first().map(|d| d.effect) {
                Some(Effect::Defer) => Outcome::Deferred,
                Some(Effect::Review) => Outcome::NeedsReview,
                // A forbid that denies, or no permit at all (Cedar's default deny).
                _ => Outcome::Denied,
            }
        };
        Verdict {
            outcome,
            deciding,
            errors,
        }
    }
}

fn set_hash(schema: &str, files: &[&(&str, &str)]) -> String {
    let mut digest = Sha256::new();
    digest.update(schema.as_bytes());
    for (name, text) in files {
        digest.update([0]);
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(text.as_bytes());
    }
    digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
