//! One send decided: the proposal's offer tried on each channel in the operator's order
//! against the policies, the best outcome acted on (a trigger, a review, a deferral, or
//! nothing), and the decision appended to the partition's audit chain.
//!
//! Everything is a function of the member's state and the proposal's event time (or a
//! deferral's release time), never the wall clock, so a replay decides and chains the
//! same bytes.

use loyalty_contracts::{
    AuditedDecision, Channel, ChosenOffer, ComplianceReview, DecidingPolicy, ErasureReceipt,
    GateOutcome, OfferProposal, ProductCategory, Reliance, Timestamp, Trigger, catalog,
};
use loyalty_runtime::store::Clock;
use loyalty_runtime::{Context, HandleError};

use super::state::{Deferred, Member, ProfileFacts};
use super::{ComplianceGate, trigger_topic};
use crate::audit::{Chain, Link};
use crate::audit_record::{self, CHECKPOINT_KEY, Content, RECEIPT_KEY};
use crate::facts::{Facts, Message, Moment, Recipient, StoredValueTerms};
use crate::policy::{Deciding, GatePolicies, Outcome, Verdict};
use crate::{clock, esp, jurisdiction};

/// Timer names of a deferred send: one per clock, whichever reaches the release time
/// first releases it. Stream time makes a replay release at the same record; the wall
/// clock releases on a partition no record reaches.
pub const RELEASE_WALL: &str = "release:";
pub const RELEASE_STREAM: &str = "release-stream:";
/// Timer name of a proposal waiting for the member's profile and consents.
pub const JOIN_WAIT: &str = "join-wait:";

/// What one attempt at a send decided, and on which channel.
struct Choice {
    channel: Option<Channel>,
    verdict: Verdict,
    release_at: Option<i64>,
}

/// A proposal arrived (its record logged at `logged_ms`): decide its send, once per
/// proposal id — at once if the member's profile and consents are known, else once they
/// are or the join wait is over.
pub(super) fn proposal(
    gate: &ComplianceGate,
    key: &str,
    proposal: OfferProposal,
    logged_ms: i64,
    member: &mut Member,
    ctx: &mut Context<'_, ComplianceGate>,
) -> Result<(), HandleError> {
    if member.decided.contains(&proposal.proposal_id) {
        return Ok(());
    }
    member.decided.push_back(proposal.proposal_id.clone());
    while member.decided.len() > gate.settings.remembered_proposals {
        member.decided.pop_front();
    }
    let joined = member.profile.is_some() && member.consents.is_some();
    if !joined && gate.settings.join_wait_ms > 0 && proposal.offer.is_some() {
        let wait = i64::try_from(gate.settings.join_wait_ms).unwrap_or(i64::MAX);
        ctx.schedule(
            &format!("{JOIN_WAIT}{}", proposal.proposal_id),
            Clock::WallClock,
            logged_ms.saturating_add(wait),
        )?;
        member
            .awaiting
            .insert(proposal.proposal_id.clone(), proposal);
        return Ok(());
    }
    decide_new(gate, key, &proposal, member, ctx)
}

/// The member's profile or consents arrived: decide the proposals that waited for both.
pub(super) fn joined(
    gate: &ComplianceGate,
    key: &str,
    member: &mut Member,
    ctx: &mut Context<'_, ComplianceGate>,
) -> Result<(), HandleError> {
    if member.profile.is_none() || member.consents.is_none() {
        return Ok(());
    }
    let mut waiting: Vec<OfferProposal> =
        std::mem::take(&mut member.awaiting).into_values().collect();
    waiting.sort_by(|a, b| (a.decided_at.0, &a.proposal_id).cmp(&(b.decided_at.0, &b.proposal_id)));
    for proposal in waiting {
        ctx.cancel(&format!("{JOIN_WAIT}{}", proposal.proposal_id));
        decide_new(gate, key, &proposal, member, ctx)?;
    }
    Ok(())
}

/// A proposal waited for the member's profile and consents long enough: decide it on
/// what is known.
pub(super) fn join_expired(
    gate: &ComplianceGate,
    key: &str,
    proposal_id: &str,
    member: &mut Member,
    ctx: &mut Context<'_, ComplianceGate>,
) -> Result<(), HandleError> {
    match member.awaiting.remove(proposal_id) {
        Some(proposal) => decide_new(gate, key, &proposal, member, ctx),
        None => Ok(()),
    }
}

fn decide_new(
    gate: &ComplianceGate,
    key: &str,
    proposal: &OfferProposal,
    member: &mut Member,
    ctx: &mut Context<'_, ComplianceGate>,
) -> Result<(), HandleError> {
    let Some(offer) = proposal.offer.clone() else {
        // Nothing was eligible: nothing to send, nothing to decide.
        if let Some(m) = gate.metrics() {
            m.decided(GateOutcome::Denied, "none", &[]);
        }
        return Ok(());
    };
    let at = proposal.decided_at.0;
    decide(gate, key, proposal, &offer, 0, at, member, ctx).map(|_| ())
}

/// A deferred send's release time came (on either clock): decide it again, as of then.
pub(super) fn release(
    gate: &ComplianceGate,
    key: &str,
    proposal_id: &str,
    member: &mut Member,
    ctx: &mut Context<'_, ComplianceGate>,
) -> Result<(), HandleError> {
    ctx.cancel(&format!("{RELEASE_WALL}{proposal_id}"));
    ctx.cancel(&format!("{RELEASE_STREAM}{proposal_id}"));
    let Some(deferred) = member.deferred.remove(proposal_id) else {
        return Ok(());
    };
    let Some(offer) = deferred.proposal.offer.clone() else {
        return Ok(());
    };
    let outcome = decide(
        gate,
        key,
        &deferred.proposal,
        &offer,
        deferred.attempt + 1,
        deferred.release_at,
        member,
        ctx,
    )?;
    if let Some(m) = gate.metrics() {
        m.released(outcome);
    }
    Ok(())
}

/// Decide one attempt at a send as of `at`, act on it and chain it; its outcome.
#[allow(clippy::too_many_arguments)]
fn decide(
    gate: &ComplianceGate,
    key: &str,
    proposal: &OfferProposal,
    offer: &ChosenOffer,
    attempt: u32,
    at: i64,
    member: &mut Member,
    ctx: &mut Context<'_, ComplianceGate>,
) -> Result<GateOutcome, HandleError> {
    let policies = gate.policies()?;
    let secret = member
        .secret
        .ok_or_else(|| HandleError::Fatal(format!("member {key:?} has no pseudonym secret")))?;
    let choice = match member.profile.clone() {
        Some(profile) => choose(gate, policies, &profile, member, offer, at),
        None => Choice {
            channel: None,
            verdict: Verdict {
                outcome: Outcome::Denied,
                deciding: Vec::new(),
                errors: vec![
                    "no member profile: the recipient's jurisdiction and local time are unknown"
                        .into(),
                ],
            },
            release_at: None,
        },
    };
    let outcome = choice.verdict.outcome;
    // A deferral the gate cannot time (an operator's own `defer` policy) is decided
    // again an hour later.
    let release_at =
        (outcome == GateOutcome::Deferred).then(|| choice.release_at.unwrap_or(at + HOUR_MS));
    let channel_label = choice.channel.map_or("none", Channel::label);
    let decision_id = audit_record::keyed_ref(
        &secret,
        &format!("{}:{channel_label}:{attempt}", proposal.proposal_id),
    );
    let deciding: Vec<DecidingPolicy> = choice.verdict.deciding.iter().map(deciding).collect();

    match (outcome, choice.channel) {
        (GateOutcome::Approved, Some(channel)) => {
            let trigger = Trigger {
                idempotency_key: esp::idempotency_key(&proposal.proposal_id, channel),
                member_external_id: key.to_owned(),
                channel,
                template_id: offer.content.template_id.clone(),
                send_after: Timestamp(at),
                proposal_id: proposal.proposal_id.clone(),
                offer_id: offer.offer_id.clone(),
                offer_version_id: offer.version_id,
                content: offer.content.clone(),
                decision_id: decision_id.clone(),
                policy_set_hash: policies.hash().to_owned(),
                decided_at: Timestamp(at),
            };
            // `choose` tries only channels with a trigger topic.
            let topic = trigger_topic(channel).ok_or_else(|| {
                HandleError::Fatal(format!(
                    "approved on {channel:?}, which has no trigger topic"
                ))
            })?;
            ctx.emit(topic, key, &trigger, at)?;
            member
                .sends
                .entry(channel.label().to_owned())
                .or_default()
                .push(at);
        }
        (GateOutcome::Deferred, _) => {
            let release_at = release_at.unwrap_or(at);
            member.deferred.insert(
                proposal.proposal_id.clone(),
                Deferred {
                    proposal: proposal.clone(),
                    attempt,
                    release_at,
                },
            );
            let id = &proposal.proposal_id;
            if gate.settings.release_on_wall_clock {
                ctx.schedule(&format!("{RELEASE_WALL}{id}"), Clock::WallClock, release_at)?;
            }
            ctx.schedule(
                &format!("{RELEASE_STREAM}{id}"),
                Clock::StreamTime,
                release_at,
            )?;
        }
        (GateOutcome::NeedsReview, Some(channel)) => {
            let review = ComplianceReview {
                decision_id: decision_id.clone(),
                member_id: key.to_owned(),
                proposal_id: proposal.proposal_id.clone(),
                channel,
                offer_id: Some(offer.offer_id.clone()),
                offer_version_id: Some(offer.version_id),
                explanation: explanation(offer, channel, &deciding),
                deciding: deciding.clone(),
                content: Some(offer.content.clone()),
                policy_set_hash: policies.hash().to_owned(),
                decided_at: Timestamp(at),
            };
            ctx.emit(&catalog::COMPLIANCE_REVIEWS, key, &review, at)?;
        }
        // Denied: nothing leaves.
        _ => {}
    }
    prune_sends(gate, member, at);

    let decision = AuditedDecision {
        decision_id,
        member_pseudonym: audit_record::pseudonym(&secret),
        proposal_ref: audit_record::keyed_ref(&secret, &proposal.proposal_id),
        attempt: i32::try_from(attempt).unwrap_or(i32::MAX),
        offer_id: Some(offer.offer_id.clone()),
        offer_version_id: Some(offer.version_id),
        relied_on: relied_on(&secret, proposal, offer),
        channel: choice.channel,
        outcome,
        release_at: release_at.map(Timestamp),
        deciding,
        errors: choice.verdict.errors.clone(),
        policy_set_hash: policies.hash().to_owned(),
        decided_at: Timestamp(at),
    };
    if let Some(m) = gate.metrics() {
        m.decided(outcome, channel_label, &decision.deciding);
    }
    append(gate, decision, at, ctx)?;
    Ok(outcome)
}

const HOUR_MS: i64 = 3_600_000;

/// Try each channel in the offer's order (the operator's where the offer names none):
/// the first approval wins; failing that the earliest deferral, then a review, then the
/// first channel's denial (which names why the preferred channel could not be used).
fn choose(
    gate: &ComplianceGate,
    policies: &GatePolicies,
    profile: &ProfileFacts,
    member: &Member,
    offer: &ChosenOffer,
    at: i64,
) -> Choice {
    let zone = profile.zone();
    let mut tried: Vec<Choice> = Vec::new();
    for channel in &channels(gate, offer) {
        let label = channel.label();
        let (sent, cap) = match gate.settings.cap(label) {
            Some(cap) => {
                let window = cap.window_hours * HOUR_MS;
                let sends = member.sends.get(label).map_or(&[][..], Vec::as_slice);
                let inside: Vec<i64> = sends
                    .iter()
                    .copied()
                    .filter(|t| *t > at - window && *t <= at)
                    .collect();
                (inside, Some((cap.max, window)))
            }
            None => (Vec::new(), None),
        };
        let Some(local) = clock::local(at, zone) else {
            continue;
        };
        let facts = Facts {
            recipient: recipient(profile, member),
            message: message(offer, *channel),
            moment: Moment {
                local,
                sent_in_window: sent.len() as i64,
                cap_in_window: cap.map_or(i64::MAX, |(max, _)| max),
            },
        };
        let verdict = policies.decide(&facts);
        if verdict.outcome == Outcome::Approved {
            return Choice {
                channel: Some(*channel),
                verdict,
                release_at: None,
            };
        }
        let release_at = (verdict.outcome == Outcome::Deferred)
            .then(|| release_time(profile, zone, *channel, at, &sent, cap));
        tried.push(Choice {
            channel: Some(*channel),
            verdict,
            release_at,
        });
    }
    let rank = |c: &Choice| match c.verdict.outcome {
        Outcome::Approved => 0,
        Outcome::Deferred => 1,
        Outcome::NeedsReview => 2,
        Outcome::Denied => 3,
    };
    let best = tried
        .iter()
        .enumerate()
        .min_by_key(|(i, c)| (rank(c), c.release_at.unwrap_or(i64::MAX), *i))
        .map(|(i, _)| i);
    match best {
        Some(i) => tried.swap_remove(i),
        None => Choice {
            channel: None,
            verdict: Verdict {
                outcome: Outcome::Denied,
                deciding: Vec::new(),
                errors: vec![format!(
                    "no channel could be decided (time zone {}, offer channels {})",
                    profile.time_zone,
                    offer.channels.as_ref().map_or("any".to_owned(), |cs| cs
                        .iter()
                        .map(|c| c.label())
                        .collect::<Vec<_>>()
                        .join(", "))
                )],
            },
            release_at: None,
        },
    }
}

/// The channels to try for `offer`, in order: those the offer names that carry triggers
/// (each once), else the operator's `channel_order`.
fn channels(gate: &ComplianceGate, offer: &ChosenOffer) -> Vec<Channel> {
    match &offer.channels {
        Some(asked) => {
            let mut order: Vec<Channel> = Vec::with_capacity(asked.len());
            for c in asked {
                if trigger_topic(*c).is_some() && !order.contains(c) {
                    order.push(*c);
                }
            }
            order
        }
        None => gate.channels.clone(),
    }
}

/// When a deferred send may be decided again: once the channel's sending window opens
/// in the recipient's time zone and, if the channel's cap is reached, once enough of the
/// sends in the window have left it. A deferral the gate cannot time (an operator's own
/// `defer` policy) is decided again an hour later.
fn release_time(
    profile: &ProfileFacts,
    zone: chrono_tz::Tz,
    channel: Channel,
    at: i64,
    sent: &[i64],
    cap: Option<(i64, i64)>,
) -> i64 {
    let window = jurisdiction::sending_window(channel.label(), &profile.country, &profile.region);
    let mut release =
        clock::next_opening(at, zone, window.from_minute, window.until_minute).unwrap_or(at);
    if let Some((max, window_ms)) = cap {
        let over = sent.len() as i64 - max;
        if over >= 0 {
            let mut inside = sent.to_vec();
            inside.sort_unstable();
            // The send whose leaving brings the count below the cap.
            if let Some(t) = inside.get(over as usize) {
                release = release.max(t + window_ms + 1);
            }
        }
    }
    if release <= at { at + HOUR_MS } else { release }
}

fn recipient(profile: &ProfileFacts, member: &Member) -> Recipient {
    let consents = member
        .consents
        .unwrap_or_else(|| super::state::ConsentFacts {
            channels: Default::default(),
            parental_consent_verified: false,
        });
    Recipient {
        birth_date: profile.birth_date.and_then(super::state::naive),
        country: profile.country.clone(),
        region: profile.region.clone(),
        objects_to_profiling: profile.objects_to_profiling,
        parental_consent_verified: consents.parental_consent_verified,
        consents: consents.channels,
    }
}

/// The message facts of `offer` on `channel`. Where the catalog records no fact the
/// policies need, the value that makes them strictest is used: a sweepstakes prize in
/// another currency than US dollars counts as above every US threshold, and a
/// sweepstakes is never taken as registered.
fn message(offer: &ChosenOffer, channel: Channel) -> Message {
    let c = &offer.compliance;
    let disclosure = offer.content.disclosure.as_deref().unwrap_or_default();
    Message {
        channel,
        offer_type: offer.offer_type.label().to_owned(),
        categories: c
            .product_categories
            .iter()
            .map(|p| {
                match p {
                    ProductCategory::Alcohol => "alcohol",
                    ProductCategory::Tobacco => "tobacco",
                    ProductCategory::Cannabis => "cannabis",
                    ProductCategory::Prop65 => "prop65",
                    ProductCategory::Pharmacy => "pharmacy",
                    ProductCategory::FinancialProduct => "financial_product",
                }
                .to_owned()
            })
            .collect(),
        advertised_minor: offer.content.value_minor,
        map_floor_minor: c.map_constraints.iter().map(|m| m.floor_minor).min(),
        unsubstantiated_claims: c
            .claims
            .iter()
            .filter(|claim| {
                claim
                    .substantiation_ref
                    .as_deref()
                    .is_none_or(|r| r.trim().is_empty())
            })
            .count() as i64,
        ai_drafted: c.ai_drafted,
        ai_disclosed: discloses_ai(disclosure),
        reseller_channel: c.reseller_channel.is_some(),
        stored_value: c.stored_value.as_ref().map(|s| StoredValueTerms {
            expires_on: s.expires_on.and_then(super::state::naive),
        }),
        sweepstakes_prize_usd_minor: c.sweepstakes.as_ref().map(|s| {
            if s.currency.eq_ignore_ascii_case("USD") {
                s.prize_value_minor
            } else {
                i64::MAX
            }
        }),
        sweepstakes_registered: false,
        changes_auto_renewal: c.changes_auto_renewal,
        discloses_terms: offer.content.disclosure.is_some(),
        cancellation_path: offer.content.cancellation_rule.is_some(),
        prop65_warning: carries_prop65_warning(disclosure),
    }
}

/// EU AI Act Art. 50(2): the copy says it was generated by AI.
fn discloses_ai(disclosure: &str) -> bool {
    let d = disclosure.to_ascii_lowercase();
    [
        "ai-generated",
        "generated by ai",
        "artificial intelligence",
        "ai-drafted",
    ]
    .iter()
    .any(|phrase| d.contains(phrase))
}

/// The Prop 65 safe-harbor warning names the state's warning site (27 CCR 25603).
fn carries_prop65_warning(disclosure: &str) -> bool {
    disclosure
        .to_ascii_lowercase()
        .contains("p65warnings.ca.gov")
}

/// What the decision relied on: the proposal and its expected incremental LTV, the
/// member-ltv record it valued the member with (by its attestation hash), and the
/// opportunity or cancellation request it answers.
fn relied_on(secret: &[u8; 32], proposal: &OfferProposal, offer: &ChosenOffer) -> Vec<Reliance> {
    let mut relied = vec![Reliance {
        kind: "offer_proposal".into(),
        reference: audit_record::keyed_ref(secret, &proposal.proposal_id),
        attestation_hash: None,
        value_minor: Some(offer.expected_incremental_ltv.mean_minor),
    }];
    if let Some(ltv) = &proposal.ltv_relied_on {
        relied.push(Reliance {
            kind: "member_ltv".into(),
            reference: ltv.as_of.0.to_string(),
            attestation_hash: Some(ltv.output_hash.clone()),
            value_minor: None,
        });
    }
    relied.push(Reliance {
        kind: proposal.trigger.label().into(),
        reference: audit_record::keyed_ref(secret, &proposal.trigger_id),
        attestation_hash: None,
        value_minor: None,
    });
    relied
}

fn deciding(d: &Deciding) -> DecidingPolicy {
    DecidingPolicy {
        policy_id: d.policy_id.clone(),
        effect: d.effect.label().into(),
        statute: d.statute.clone(),
        table_rule: d.table_rule.clone(),
    }
}

/// What the reviewer and the member are told (GDPR Art. 22(3), Art. 15(1)(h)).
fn explanation(offer: &ChosenOffer, channel: Channel, deciding: &[DecidingPolicy]) -> String {
    let reasons: Vec<String> = deciding
        .iter()
        .map(|d| match &d.table_rule {
            Some(rule) => format!("{} ({rule})", d.statute),
            None => d.statute.clone(),
        })
        .collect();
    format!(
        "A {} offer ({} version {}) chosen for this member by an automated decision waits \
         for a person's review before it is sent by {}: {}. The member may ask for the \
         reasons, express their view and contest the decision.",
        offer.offer_type.label().replace('_', " "),
        offer.offer_id,
        offer.version_id,
        channel.label(),
        reasons.join("; ")
    )
}

/// Forget sends older than every channel's window.
fn prune_sends(gate: &ComplianceGate, member: &mut Member, at: i64) {
    for (channel, sends) in member.sends.iter_mut() {
        let window = gate
            .settings
            .cap(channel)
            .map_or(0, |c| c.window_hours * HOUR_MS);
        sends.retain(|t| *t > at - window);
    }
    member.sends.retain(|_, sends| !sends.is_empty());
}

/// Append `decision` to this partition's chain, and seal the chain every
/// `checkpoint_every` decisions. Last in a decision: the runtime does not undo summary
/// changes.
fn append(
    gate: &ComplianceGate,
    decision: AuditedDecision,
    at: i64,
    ctx: &mut Context<'_, ComplianceGate>,
) -> Result<(), HandleError> {
    let canonical = gate
        .canonical()?
        .bytes(&decision)
        .map_err(|e| HandleError::Fatal(e.to_string()))?;
    let pseudonym = decision.member_pseudonym.clone();
    chain(
        gate,
        |chain| chain.decision(canonical),
        &pseudonym,
        Content::Decision(decision),
        at,
        ctx,
    )
}

/// Append an agent's erasure receipt to this partition's chain: the receipts are
/// audited like the decisions (`docs/architecture.md#erasure`).
pub(super) fn append_receipt(
    gate: &ComplianceGate,
    receipt: ErasureReceipt,
    at: i64,
    ctx: &mut Context<'_, ComplianceGate>,
) -> Result<(), HandleError> {
    let canonical = gate
        .canonical()?
        .receipt_bytes(&receipt)
        .map_err(|e| HandleError::Fatal(e.to_string()))?;
    chain(
        gate,
        |chain| chain.receipt(canonical),
        RECEIPT_KEY,
        Content::Receipt(receipt),
        at,
        ctx,
    )
}

/// Add a link to the partition's chain (`link` makes it) and write the record carrying
/// it under `key`; a decision also counts towards the next checkpoint, which seals the
/// chain every `checkpoint_every` decisions.
fn chain(
    gate: &ComplianceGate,
    link: impl FnOnce(&mut Chain) -> Link,
    key: &str,
    content: Content,
    at: i64,
    ctx: &mut Context<'_, ComplianceGate>,
) -> Result<(), HandleError> {
    let signer = gate.signer()?;
    let partition = ctx
        .partition()
        .ok_or_else(|| HandleError::Fatal("an audit link outside a partition".into()))?;
    let summary = ctx
        .summary()
        .ok_or_else(|| HandleError::Fatal("the gate's partition summary is missing".into()))?;
    let chain = summary.chain.get_or_insert_with(|| Chain::new(partition));
    let link = link(chain);
    let sealed = if matches!(content, Content::Decision(_)) {
        summary.unsealed += 1;
        (summary.unsealed >= gate.settings.checkpoint_every).then(|| {
            summary.unsealed = 0;
            chain.checkpoint(&signer.key)
        })
    } else {
        None
    };
    let record = audit_record::record(&link, content, &signer.key_id);
    ctx.emit_here(&catalog::AUDIT_LOG, key, &record, at)?;
    if let Some(checkpoint) = sealed {
        let record = audit_record::record(&checkpoint, Content::Checkpoint, &signer.key_id);
        ctx.emit_here(&catalog::AUDIT_LOG, CHECKPOINT_KEY, &record, at)?;
    }
    Ok(())
}
