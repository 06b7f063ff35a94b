//! The compliance-gate agent: joins each member's proposals with their consents and
//! profile, decides every send against the policies, and writes what the decision lets
//! out (a trigger, a review), its deferrals (timers in the member's state) and its audit
//! record (`docs/architecture.md#compliance-gate`).
//!
//! Files: `state` (what is kept per member and per partition), `decide` (one send
//! decided, acted on and chained).

mod decide;
pub mod state;

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use loyalty_contracts::{
    AuditRecord, Channel, ErasureReceipt, MemberConsents, MemberProfile, OfferProposal, Trigger,
    catalog, tables, topics,
};
use loyalty_runtime::store::{Clock, Timer};
use loyalty_runtime::{
    Agent, Context, Forgotten, HandleError, Input, KeepsKeys, OutputSpec, Rejection, TableSpec,
    Topic,
};

use crate::audit_record::{self, Canonical};
use crate::metrics::GateMetrics;
use crate::policy::GatePolicies;
use crate::settings::Settings;
use state::{ConsentFacts, GateSummary, Member, ProfileFacts};

pub use decide::{JOIN_WAIT, RELEASE_STREAM, RELEASE_WALL};

/// The channels `channel_order` may name: in-app is left out, as it reaches a member only
/// through an offer that asks for it.
pub const DEFAULT_ORDER_CHANNELS: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Push];

/// Every channel with a trigger topic.
pub const TRIGGER_CHANNELS: [Channel; 4] =
    [Channel::Email, Channel::Sms, Channel::Push, Channel::InApp];

/// The topic a channel's triggers go to; `None` for a channel the gate sends nothing on
/// (voice, direct mail), which an offer may name but no trigger can carry.
pub fn trigger_topic(channel: Channel) -> Option<&'static Topic<Trigger>> {
    match channel {
        Channel::Email => Some(&catalog::TRIGGERS_EMAIL),
        Channel::Sms => Some(&catalog::TRIGGERS_SMS),
        Channel::Push => Some(&catalog::TRIGGERS_PUSH),
        Channel::InApp => Some(&catalog::TRIGGERS_IN_APP),
        Channel::Voice | Channel::DirectMail => None,
    }
}

/// The checkpoint key and its name in the records it signs.
#[derive(Debug)]
pub struct Signer {
    pub key: SigningKey,
    pub key_id: String,
}

/// The agent. What start-up validated (policies, keys) is kept as loaded; a setting that
/// failed to load fails every decision fatally, though `Settings::problems` stops
/// start-up first.
pub struct ComplianceGate {
    settings: Settings,
    channels: Vec<Channel>,
    policies: Result<GatePolicies, String>,
    signer: Result<Signer, String>,
    pseudonym_key: Result<[u8; 32], String>,
    canonical: Result<Canonical, String>,
    metrics: OnceLock<GateMetrics>,
}

impl std::fmt::Debug for ComplianceGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComplianceGate")
            .field("settings", &self.settings)
            .field(
                "policy_set",
                &self.policies.as_ref().map(GatePolicies::hash),
            )
            .finish()
    }
}

impl ComplianceGate {
    pub fn new(settings: &Settings) -> Self {
        let channels = settings
            .channel_order
            .iter()
            .filter_map(|label| {
                DEFAULT_ORDER_CHANNELS
                    .into_iter()
                    .find(|c| c.label() == label)
            })
            .collect();
        ComplianceGate {
            settings: settings.clone(),
            channels,
            policies: settings.policies().map_err(|e| e.join("; ")),
            signer: settings.signing_key().map(|key| Signer {
                key_id: loyalty_runtime::signing::key_id(&key.verifying_key()),
                key,
            }),
            pseudonym_key: settings.pseudonym_key(),
            canonical: Canonical::new().map_err(|e| e.to_string()),
            metrics: OnceLock::new(),
        }
    }

    fn policies(&self) -> Result<&GatePolicies, HandleError> {
        self.policies
            .as_ref()
            .map_err(|e| HandleError::Fatal(e.clone()))
    }

    fn signer(&self) -> Result<&Signer, HandleError> {
        self.signer
            .as_ref()
            .map_err(|e| HandleError::Fatal(e.clone()))
    }

    fn canonical(&self) -> Result<&Canonical, HandleError> {
        self.canonical
            .as_ref()
            .map_err(|e| HandleError::Fatal(e.clone()))
    }

    fn metrics(&self) -> Option<&GateMetrics> {
        self.metrics.get()
    }

    /// The member's pseudonym secret, derived where the gate first sees them.
    fn ensure_secret(
        &self,
        member: &mut Member,
        key: &str,
        input: &Input<'_>,
    ) -> Result<(), HandleError> {
        if member.secret.is_none() {
            let pseudonym_key = self
                .pseudonym_key
                .as_ref()
                .map_err(|e| HandleError::Fatal(e.clone()))?;
            let first_seen = format!("{}/{}/{}", input.topic, input.partition, input.offset);
            member.secret = Some(audit_record::member_secret(pseudonym_key, key, &first_seen));
        }
        Ok(())
    }
}

impl Agent for ComplianceGate {
    type State = Member;
    type Settings = Settings;
    type Summary = GateSummary;
    type Rekeying = KeepsKeys;
    const NAME: &'static str = "compliance-gate";
    const STORE: &'static str = "members";

    fn inputs(&self) -> Vec<&'static str> {
        vec![
            topics::MEMBER_CONSENTS,
            topics::MEMBER_PROFILES,
            topics::OFFER_PROPOSALS,
            topics::ERASURE_REQUESTS,
            topics::ERASURE_RECEIPTS,
        ]
    }

    fn tables(&self) -> Vec<TableSpec> {
        vec![tables::PROGRAMS.spec()]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![
            catalog::TRIGGERS_EMAIL.output(),
            catalog::TRIGGERS_SMS.output(),
            catalog::TRIGGERS_PUSH.output(),
            catalog::TRIGGERS_IN_APP.output(),
            catalog::COMPLIANCE_REVIEWS.output(),
            catalog::AUDIT_LOG.output(),
        ]
    }

    fn register_metrics(
        &self,
        metrics: &loyalty_runtime::metrics::Metrics,
    ) -> Result<(), loyalty_runtime::prometheus::Error> {
        let registered = GateMetrics::register(metrics)?;
        let _ = self.metrics.set(registered);
        Ok(())
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<Member>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        if input.topic == topics::ERASURE_RECEIPTS {
            // Keyed by request id, not by a member: chained, and no state is made.
            let receipt: ErasureReceipt = input.decode()?;
            let at = input.timestamp.unwrap_or(receipt.completed_at.0);
            return decide::append_receipt(self, receipt, at, ctx);
        }
        let member = state.get_or_insert_with(Member::default);
        // Derived where the gate first sees the member, whatever the record.
        self.ensure_secret(member, input.key, input)?;
        match input.topic {
            topics::MEMBER_PROFILES => {
                member.profile = if input.is_tombstone() {
                    None
                } else {
                    let p: MemberProfile =
                        input.decode_keyed("member_id", |p: &MemberProfile| &p.member_id)?;
                    if ctx.table(&tables::PROGRAMS, &p.program_id).is_none()
                        && !ctx.table_values(&tables::PROGRAMS).is_empty()
                    {
                        return Err(Rejection::contract(format!(
                            "profile: program {:?} is not in {}",
                            p.program_id,
                            topics::PROGRAMS
                        ))
                        .into());
                    }
                    Some(ProfileFacts::checked(&p).map_err(|problems| {
                        Rejection::contract(format!("profile: {}", problems.join("; ")))
                    })?)
                };
                decide::joined(self, input.key, member, ctx)?;
            }
            topics::MEMBER_CONSENTS => {
                member.consents = if input.is_tombstone() {
                    None
                } else {
                    let c: MemberConsents =
                        input.decode_keyed("member_id", |c: &MemberConsents| &c.member_id)?;
                    Some(ConsentFacts::of(&c))
                };
                decide::joined(self, input.key, member, ctx)?;
            }
            topics::OFFER_PROPOSALS => {
                let p: OfferProposal =
                    input.decode_keyed("member_id", |p: &OfferProposal| &p.member_id)?;
                ctx.check_event_time(input, "decided_at", p.decided_at.0)?;
                let logged = input.timestamp.unwrap_or(p.decided_at.0);
                decide::proposal(self, input.key, p, logged, member, ctx)?;
            }
            other => {
                return Err(HandleError::Fatal(format!(
                    "not an input of compliance-gate: {other}"
                )));
            }
        }
        Ok(())
    }

    /// A profile flagged as a re-enrolment brings an erased member back, fresh.
    fn reenrolment(&self, input: &Input<'_>) -> Option<i64> {
        loyalty_contracts::reenrolment(input)
    }

    /// Erasure: deleting the member's state destroys their pseudonym secret
    /// (crypto-shredding: the audit chain still verifies, its pseudonyms name no one),
    /// their deferred sends and the proposals waiting for them; the receipt counts each.
    fn forget(
        &self,
        _key: &str,
        state: &Option<Member>,
        _ctx: &mut Context<'_, Self>,
    ) -> Result<Forgotten, HandleError> {
        let mut forgotten = Forgotten::default();
        if let Some(member) = state {
            forgotten.removed("pseudonym_secret", i64::from(member.secret.is_some()));
            forgotten.removed("deferred_sends", member.deferred.len() as i64);
            forgotten.removed("awaiting_proposals", member.awaiting.len() as i64);
        }
        Ok(forgotten)
    }

    /// The audit log is the chain's history: a partition that starts with no chain
    /// head continues the chain its log holds.
    fn resumes_from(&self) -> Option<&'static str> {
        Some(topics::AUDIT_LOG)
    }

    /// The chain head and the decisions since the last checkpoint, from the partition's
    /// audit log (`audit::resume`). Records that are not links are left out.
    fn resume(
        &self,
        partition: i32,
        log: &[Input<'_>],
    ) -> Result<Option<GateSummary>, HandleError> {
        let canonical = self.canonical()?;
        let links: Vec<_> = log
            .iter()
            .filter_map(|input| input.decode::<AuditRecord>().ok())
            .filter_map(|record| audit_record::link(&record, canonical).ok())
            .filter(|link| link.partition == partition)
            .collect();
        if links.is_empty() {
            return Ok(None);
        }
        let (chain, unsealed) =
            crate::audit::resume(partition, &links, &self.signer()?.key.verifying_key());
        Ok(Some(GateSummary {
            chain: Some(chain),
            unsealed,
        }))
    }

    fn on_timer(
        &self,
        key: &str,
        timer: &Timer,
        state: &mut Option<Member>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        let Some(member) = state.as_mut() else {
            return Ok(());
        };
        if let Some(id) = timer.name.strip_prefix(JOIN_WAIT) {
            // Catching up (a replay, a backlog), the wall clock is long past the wait
            // while the member's profile may be a few records on: wait in stream time.
            if timer.clock == Clock::WallClock && ctx.stream_time() < timer.at {
                return ctx.schedule(&timer.name, Clock::StreamTime, timer.at);
            }
            return decide::join_expired(self, key, id, member, ctx);
        }
        let proposal_id = timer
            .name
            .strip_prefix(RELEASE_STREAM)
            .or_else(|| timer.name.strip_prefix(RELEASE_WALL));
        match proposal_id {
            Some(id) => decide::release(self, key, id, member, ctx),
            None => Ok(()),
        }
    }
}
