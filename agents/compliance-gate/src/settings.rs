//! compliance-gate's settings, under `[agent]`, and the problems that stop start-up:
//! the policy set (every parse and validation error), the signing and pseudonym keys,
//! and the frequency caps.

use std::path::PathBuf;

use loyalty_runtime::AgentSettings;
use serde::{Deserialize, Serialize};

use crate::agent::DEFAULT_ORDER_CHANNELS;
use crate::policy::GatePolicies;

/// Environment variable holding the checkpoint signing key (64 hex digits: the Ed25519
/// seed) when `signing_key_file` is not set.
pub const SIGNING_KEY_ENV: &str = "GATE_SIGNING_KEY";
/// Environment variable holding the pseudonym key (64 hex digits) when
/// `pseudonym_key_file` is not set.
pub const PSEUDONYM_KEY_ENV: &str = "GATE_PSEUDONYM_KEY";

/// How many sends a channel may carry to one member in a window.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct FrequencyCap {
    pub max: i64,
    pub window_hours: i64,
}

/// Settings under `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// A directory of `.cedar` files and `gate.cedarschema`; unset: the policies shipped
    /// in the crate (`agents/compliance-gate/policies`).
    pub policies_dir: Option<PathBuf>,
    /// File holding the Ed25519 seed that signs audit checkpoints; unset:
    /// [`SIGNING_KEY_ENV`].
    pub signing_key_file: Option<PathBuf>,
    /// File holding the key each member's pseudonym secret is derived under; unset:
    /// [`PSEUDONYM_KEY_ENV`].
    pub pseudonym_key_file: Option<PathBuf>,
    /// Decisions between two signed checkpoints of a partition's chain.
    pub checkpoint_every: u64,
    /// Channels tried in this order for an offer that names none; the first one the
    /// policies approve carries the offer. `email`, `sms` and `push`: in-app goes out
    /// only for an offer whose catalog entry asks for it.
    pub channel_order: Vec<String>,
    pub email_cap: FrequencyCap,
    pub sms_cap: FrequencyCap,
    pub push_cap: FrequencyCap,
    pub in_app_cap: FrequencyCap,
    /// Proposal ids remembered per member, so a proposal delivered twice is decided once.
    pub remembered_proposals: usize,
    /// A deferred send is released when stream time reaches its release time (the same
    /// record on every replay) and, with this on, when the wall clock does (so a
    /// partition no record reaches still sends at 08:00). Off for a replay of history,
    /// whose release times have all passed on the wall clock.
    pub release_on_wall_clock: bool,
    /// How long a proposal for a member whose profile or consents have not arrived yet
    /// waits for them, in wall-clock milliseconds after its record was logged; then it
    /// is decided on what is known (without a profile: denied). 0 decides at once.
    pub join_wait_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policies_dir: None,
            signing_key_file: None,
            pseudonym_key_file: None,
            checkpoint_every: 100,
            channel_order: vec!["email".into(), "push".into(), "sms".into()],
            email_cap: FrequencyCap {
                max: 3,
                window_hours: 7 * 24,
            },
            sms_cap: FrequencyCap {
                max: 2,
                window_hours: 7 * 24,
            },
            push_cap: FrequencyCap {
                max: 3,
                window_hours: 24,
            },
            in_app_cap: FrequencyCap {
                max: 5,
                window_hours: 24,
            },
            remembered_proposals: 64,
            release_on_wall_clock: true,
            join_wait_ms: 60_000,
        }
    }
}

impl Settings {
    /// The policy set these settings name.
    pub fn policies(&self) -> Result<GatePolicies, Vec<String>> {
        match &self.policies_dir {
            Some(dir) => GatePolicies::from_dir(dir),
            None => GatePolicies::shipped(),
        }
        .map_err(|errors| errors.0)
    }

    pub fn signing_key(&self) -> Result<ed25519_dalek::SigningKey, String> {
        loyalty_runtime::signing::load_signing_key(
            self.signing_key_file.as_deref(),
            SIGNING_KEY_ENV,
        )
        .map_err(|e| e.to_string())
    }

    /// The pseudonym key: 32 bytes, never logged.
    pub fn pseudonym_key(&self) -> Result<[u8; 32], String> {
        loyalty_runtime::signing::load_key(
            self.pseudonym_key_file.as_deref(),
            "pseudonym_key_file",
            PSEUDONYM_KEY_ENV,
        )
        .map_err(|e| e.to_string())
    }

    /// The cap of `channel` (a channel without one is uncapped).
    pub fn cap(&self, channel: &str) -> Option<FrequencyCap> {
        match channel {
            "email" => Some(self.email_cap),
            "sms" => Some(self.sms_cap),
            "push" => Some(self.push_cap),
            "in_app" => Some(self.in_app_cap),
            _ => None,
        }
    }
}

impl AgentSettings for Settings {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(errors) = self.policies() {
            problems.extend(errors.into_iter().map(|e| format!("agent.policies: {e}")));
        }
        if let Err(e) = self.signing_key() {
            problems.push(format!("agent.signing_key_file: {e}"));
        }
        if let Err(e) = self.pseudonym_key() {
            problems.push(format!("agent.pseudonym_key_file: {e}"));
        }
        if self.checkpoint_every == 0 {
            problems.push("agent.checkpoint_every must be at least 1".into());
        }
        if self.remembered_proposals == 0 {
            problems.push("agent.remembered_proposals must be at least 1".into());
        }
        if self.channel_order.is_empty() {
            problems.push("agent.channel_order names no channel".into());
        }
        for channel in &self.channel_order {
            if !DEFAULT_ORDER_CHANNELS.iter().any(|c| c.label() == channel) {
                problems.push(format!(
                    "agent.channel_order: {channel:?} is not one of email, sms, push (in_app goes \
                     out only for offers that name it)"
                ));
            }
        }
        for (name, cap) in [
            ("email_cap", self.email_cap),
            ("sms_cap", self.sms_cap),
            ("push_cap", self.push_cap),
            ("in_app_cap", self.in_app_cap),
        ] {
            if cap.max < 1 || cap.window_hours < 1 {
                problems.push(format!(
                    "agent.{name} must allow at least 1 send in a window of at least 1 hour, not {} in {} hours",
                    cap.max, cap.window_hours
                ));
            }
        }
        problems
    }
}
