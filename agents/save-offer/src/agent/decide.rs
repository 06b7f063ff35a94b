//! One decision: the member's view at the trigger's time, every catalog offer through
//! selection, the bandit choosing among each experiment's eligible arms, and then
//! either the proposal (no shared limit on the winner) or a claim to the winner's
//! ledger. Random draws are seeded from the proposal id, so a replay decides the same.

use std::collections::BTreeMap;

use loyalty_contracts::{
    BanditPolicy, CancellationRequested, ChosenOffer, InterventionOpportunity, LtvReference,
    MemberEvent, OfferProposal, OfferRejection, OfferType, ProposalTrigger, ReasonCluster,
    RejectionStage, RejectionTally, Timestamp, catalog, tables,
};
use loyalty_runtime::{Context, HandleError, Input, Rejection};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::state::{Deferred, Entry, LEDGER_PREFIX, MAX_DEFERRED, MemberEntry};
use super::{CLAIMS, SaveOffer, decile};
use crate::bandit::{self, ArmKey};
use crate::ledger::{Candidate, Ledger, LedgerClaim, LedgerTerms};
use crate::member::{HeldOffer, LtvFacts, MemberView, TierBelow};
use crate::money;
use crate::reasons;
use crate::select::{self, Eligible, Moment};

pub(super) fn opportunity(
    agent: &SaveOffer,
    member_id: &str,
    o: &InterventionOpportunity,
    logged: Option<i64>,
    entry: &mut MemberEntry,
    ctx: &mut Context<'_, SaveOffer>,
) -> Result<(), HandleError> {
    if !entry.first_sight(&o.opportunity_id, agent.settings.remembered_triggers) {
        return Ok(());
    }
    let trigger = Trigger {
        kind: ProposalTrigger::Opportunity,
        id: o.opportunity_id.clone(),
        moment: Moment::Opportunity(o.kind),
        at: o.as_of,
        reason: None,
    };
    decide_or_wait(agent, member_id, trigger, logged, entry, ctx)
}

pub(super) fn cancellation(
    agent: &SaveOffer,
    member_id: &str,
    event: &MemberEvent,
    request: &CancellationRequested,
    logged: Option<i64>,
    entry: &mut MemberEntry,
    ctx: &mut Context<'_, SaveOffer>,
) -> Result<(), HandleError> {
    let trigger = Trigger {
        kind: ProposalTrigger::Cancellation,
        id: event.event_id.clone(),
        moment: Moment::Cancellation,
        at: event.occurred_at,
        reason: Some(reasons::cluster(
            request.reason_code.as_deref(),
            request.reason_text.as_deref(),
        )),
    };
    decide_or_wait(agent, member_id, trigger, logged, entry, ctx)
}

/// The name of the timer that ends a member's wait for its value.
pub(super) const JOIN_WAIT: &str = "join-wait";

/// Decide now, or — the member's value has not arrived — keep the trigger until it does
/// or `join_wait_ms` has passed: a stream–table join that waits for the table side, as a
/// proposal priced without the member's value could only say that nothing is affordable.
/// A member-ltv record written before ltv could value the member does not end the wait
/// ([`LtvFacts::is_final`]).
fn decide_or_wait(
    agent: &SaveOffer,
    member_id: &str,
    trigger: Trigger,
    logged: Option<i64>,
    entry: &mut MemberEntry,
    ctx: &mut Context<'_, SaveOffer>,
) -> Result<(), HandleError> {
    let wait = agent.settings.join_wait_ms;
    if entry.ltv.as_ref().is_some_and(LtvFacts::is_final) || wait == 0 {
        return decide(agent, member_id, &trigger, entry, ctx);
    }
    if entry.deferred.len() >= MAX_DEFERRED {
        let oldest = entry.deferred.remove(0);
        decide(agent, member_id, &Trigger::from(oldest), entry, ctx)?;
    }
    entry.deferred.push(Deferred {
        kind: trigger.kind,
        id: trigger.id,
        opportunity: match trigger.moment {
            Moment::Opportunity(kind) => Some(kind),
            Moment::Cancellation => None,
        },
        at: trigger.at,
        reason: trigger.reason,
    });
    if ctx.timer(JOIN_WAIT).is_none() {
        // From the record's log time, not the clock, so a replay schedules the same.
        let from = logged.unwrap_or(trigger.at.0);
        let at = from.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX));
        ctx.schedule(JOIN_WAIT, loyalty_runtime::Clock::WallClock, at)?;
    }
    Ok(())
}

/// Decide every trigger that was waiting for the member's value, oldest first.
pub(super) fn decide_deferred(
    agent: &SaveOffer,
    member_id: &str,
    entry: &mut MemberEntry,
    ctx: &mut Context<'_, SaveOffer>,
) -> Result<(), HandleError> {
    ctx.cancel(JOIN_WAIT);
    for waiting in std::mem::take(&mut entry.deferred) {
        decide(agent, member_id, &Trigger::from(waiting), entry, ctx)?;
    }
    Ok(())
}

impl From<Deferred> for Trigger {
    fn from(d: Deferred) -> Self {
        Trigger {
            kind: d.kind,
            id: d.id,
            moment: d
                .opportunity
                .map_or(Moment::Cancellation, Moment::Opportunity),
            at: d.at,
            reason: d.reason,
        }
    }
}

struct Trigger {
    kind: ProposalTrigger,
    id: String,
    moment: Moment,
    at: Timestamp,
    reason: Option<ReasonCluster>,
}

/// The member's features for the linear policies: bias, LTV decile, tenure (two years =
/// 1), P(alive), and whether the member is on the cancel page.
fn context(view: &MemberView, moment: Moment) -> Vec<f64> {
    vec![
        1.0,
        f64::from(view.ltv_decile.unwrap_or(5)) / 10.0,
        view.tenure_days()
            .map_or(0.5, |d| (d as f64 / 730.0).min(1.0)),
        view.ltv.as_ref().and_then(|l| l.p_alive).unwrap_or(0.5),
        f64::from(u8::from(moment == Moment::Cancellation)),
    ]
}

/// The stratum of a member in an experiment: the values of its stratification attributes.
fn stratum(view: &MemberView, attributes: &[String]) -> String {
    if attributes.is_empty() {
        return "all".into();
    }
    attributes
        .iter()
        .map(|a| {
            let p = view.profile.as_ref();
            let value = match a.as_str() {
                "country" => p.map(|p| p.country.clone()),
                "state" => p.and_then(|p| p.state.clone()),
                "plan_tier" => p.and_then(|p| p.plan_tier.clone()),
                "segment" => view.cohort.map(|c| c.segment.label().to_owned()),
                "tier" => view.state.as_ref().and_then(|s| s.loyalty_tier.clone()),
                "reason_cluster" => view.reason_cluster.map(|r| format!("{r:?}")),
                "ltv_decile" => view.ltv_decile.map(|d| d.to_string()),
                _ => None,
            };
            format!("{a}={}", value.as_deref().unwrap_or("unknown"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn arm_key(experiment: &str, stratum: &str, offer_id: &str) -> ArmKey {
    ArmKey {
        experiment: experiment.to_owned(),
        stratum: stratum.to_owned(),
        offer_id: offer_id.to_owned(),
    }
}

fn decide(
    agent: &SaveOffer,
    member_id: &str,
    trigger: &Trigger,
    entry: &mut MemberEntry,
    ctx: &mut Context<'_, SaveOffer>,
) -> Result<(), HandleError> {
    entry.prune(trigger.at);
    let merged = agent.merged(ctx.population());
    let snapshot = agent.snapshot(ctx);
    let mut held = entry.held.clone();
    held.extend(entry.pending.values().filter_map(|c| c.first().cloned()));
    let view = MemberView {
        member_id: member_id.to_owned(),
        now: trigger.at,
        profile: entry.profile.clone(),
        state: entry.state.clone(),
        cohort: entry.cohort,
        ltv: entry.ltv.clone(),
        ltv_decile: entry.ltv_bucket.map(|b| decile(&merged.lifetime_margin, b)),
        product_lines: entry.product_lines.clone(),
        prior_redemptions: entry.prior_redemptions,
        reason_cluster: trigger.reason,
        held,
        tier_below: TierBelow::of(
            entry
                .profile
                .as_ref()
                .and_then(|p| ctx.table(&tables::PROGRAMS, &p.program_id))
                .as_deref(),
            entry.state.as_ref().and_then(|s| s.loyalty_tier.as_deref()),
        ),
        explain: true,
    };
    let (ranked, mut rejections) = select::rank(
        &snapshot.offers,
        &view,
        trigger.moment,
        snapshot.fx.as_ref(),
        agent.settings.max_listed_rejections,
    );
    let proposal_id = format!("{}:{}", trigger.kind.label(), trigger.id);
    let mut rng = ChaCha8Rng::from_seed(Sha256::digest(proposal_id.as_bytes()).into());
    let features = context(&view, trigger.moment);
    let (ranked, arms) = experiments(
        agent,
        ranked,
        &snapshot.arms,
        &view,
        &features,
        &merged.arms,
        &mut rng,
        &mut rejections,
    );
    if let Some(m) = agent.metrics() {
        for r in &rejections {
            m.rejected(r.stage);
        }
    }
    // The claim carries the candidates a ledger may pass it along: those up to the first
    // without a shared limit (routing never goes past it), at most MAX_LEDGERED with one.
    let mut candidates: Vec<(Candidate, HeldOffer)> = Vec::new();
    for e in &ranked {
        match candidate(
            e,
            &view,
            &proposal_id,
            &arms,
            &features,
            snapshot.fx.as_ref(),
        ) {
            Ok(c) => {
                let last = c.0.terms.is_none();
                candidates.push(c);
                if last || candidates.len() >= MAX_LEDGERED {
                    break;
                }
            }
            Err(rejection) => rejections.push(rejection),
        }
    }
    let proposal = OfferProposal {
        proposal_id: proposal_id.clone(),
        member_id: member_id.to_owned(),
        trigger: trigger.kind,
        trigger_id: trigger.id.clone(),
        opportunity_kind: match trigger.moment {
            Moment::Opportunity(kind) => Some(kind),
            Moment::Cancellation => None,
        },
        reason_cluster: trigger.reason,
        decided_at: trigger.at,
        offer: None,
        rejections: Vec::new(),
        rejected_offers: 0,
        rejection_tally: Vec::new(),
        stacking_explanation: String::new(),
        held_offers: view.holding().map(HeldOffer::label).collect(),
        ltv_relied_on: view.ltv.as_ref().map(|l| LtvReference {
            as_of: Timestamp(l.as_of_ms),
            output_hash: l.output_hash.clone(),
        }),
        // Kept only if the offer proposed in the end moves the member down a tier.
        tier_change: match &view.tier_below {
            TierBelow::Tier(change) => Some(change.clone()),
            _ => None,
        },
    };
    let mut proposal = proposal;
    let max = agent.settings.max_listed_rejections;
    for r in rejections {
        rule_out(&mut proposal, r, max);
    }
    // Eligible offers ranked below every candidate carried.
    let carried: std::collections::BTreeSet<&str> = candidates
        .iter()
        .map(|(c, _)| c.offer.offer_id.as_str())
        .collect();
    for e in ranked
        .iter()
        .filter(|e| !carried.contains(e.offer.offer_id.as_str()))
    {
        if proposal.rejections.len() >= max {
            // Counted, not listed: no explanation to write.
            let r = select::unexplained(&e.offer, RejectionStage::Outranked, "score");
            rule_out(&mut proposal, r, max);
            continue;
        }
        rule_out(
            &mut proposal,
            outranked(
                &e.offer.offer_id,
                e.offer.version.version_id,
                e.score(),
                &e.pricing.currency,
            ),
            max,
        );
    }
    if !candidates.is_empty() {
        entry.pending.insert(
            proposal_id.clone(),
            candidates.iter().map(|(_, h)| h.clone()).collect(),
        );
    }
    let claim = LedgerClaim {
        proposal,
        candidates: candidates.into_iter().map(|(c, _)| c).collect(),
        next: 0,
    };
    route(agent, claim, None, ctx)
}

/// Among each experiment's eligible arms the bandit keeps one (the others are ruled out
/// with the policy that chose); arms past their traffic allocation are ruled out first.
/// Returns the ranking without the arms not chosen, and per chosen offer its arm key and
/// the probability the policy gave it.
#[allow(clippy::too_many_arguments)]
fn experiments(
    agent: &SaveOffer,
    ranked: Vec<Eligible>,
    catalog: &BTreeMap<String, Vec<String>>,
    view: &MemberView,
    features: &[f64],
    population: &BTreeMap<ArmKey, bandit::ArmStats>,
    rng: &mut ChaCha8Rng,
    rejections: &mut Vec<OfferRejection>,
) -> (Vec<Eligible>, BTreeMap<String, (ArmKey, f64)>) {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in ranked.iter().enumerate() {
        if let Some(x) = &e.offer.experiment {
            groups.entry(x.experiment_id.clone()).or_default().push(i);
        }
    }
    let mut dropped = vec![false; ranked.len()];
    let mut arms = BTreeMap::new();
    let tuning = agent.settings.tuning();
    for (experiment, members) in groups {
        let Some(first) = ranked[members[0]].offer.experiment.as_ref() else {
            continue;
        };
        let policy = first.policy;
        let stratum = stratum(view, &first.stratification);
        let stats = |i: usize| {
            population
                .get(&arm_key(&experiment, &stratum, &ranked[i].offer.offer_id))
                .cloned()
                .unwrap_or_default()
        };
        // Shares are of the whole experiment in this stratum, every arm counted, also
        // those this member is not eligible for (`catalog`: experiment -> its arms).
        let total: u64 = catalog
            .get(&experiment)
            .into_iter()
            .flatten()
            .filter_map(|offer_id| population.get(&arm_key(&experiment, &stratum, offer_id)))
            .map(|s| s.pulls)
            .sum();
        let mut open = Vec::new();
        for &i in &members {
            let e = &ranked[i];
            let allocation = e
                .offer
                .experiment
                .as_ref()
                .map_or(10_000, |x| x.traffic_allocation_bp);
            let share = if total == 0 {
                0.0
            } else {
                stats(i).pulls as f64 / total as f64
            };
            // Allocation caps an arm's share once the experiment has some traffic.
            if total >= 20 && share * 10_000.0 >= f64::from(allocation) {
                dropped[i] = true;
                rejections.push(select::reject(
                    &e.offer,
                    RejectionStage::Experiment,
                    "traffic_allocation",
                    format!("{:.1}%", share * 100.0),
                    format!(
                        "arm {} of experiment {experiment} has had {:.1}% of its proposals; its allocation is {:.1}%",
                        e.offer.experiment.as_ref().map_or("", |x| x.arm.as_str()),
                        share * 100.0,
                        f64::from(allocation) / 100.0
                    ),
                ));
            } else {
                open.push(i);
            }
        }
        if open.is_empty() {
            continue;
        }
        let arm_stats: Vec<bandit::ArmStats> = open.iter().map(|&i| stats(i)).collect();
        let choice = bandit::choose(policy, &arm_stats, features, &tuning, rng);
        for (slot, &i) in open.iter().enumerate() {
            if slot == choice.arm {
                let key = arm_key(&experiment, &stratum, &ranked[i].offer.offer_id);
                arms.insert(ranked[i].offer.offer_id.clone(), (key, choice.probability));
            } else {
                dropped[i] = true;
                rejections.push(select::reject(
                    &ranked[i].offer,
                    RejectionStage::Experiment,
                    "bandit",
                    policy.label(),
                    format!(
                        "experiment {experiment} ({}, stratum {stratum}) chose arm {} for this member",
                        policy.label(),
                        ranked[open[choice.arm]].offer.experiment.as_ref().map_or("", |x| x.arm.as_str())
                    ),
                ));
            }
        }
    }
    let kept = ranked
        .into_iter()
        .zip(dropped)
        .filter(|(_, d)| !d)
        .map(|(e, _)| e)
        .collect();
    (kept, arms)
}

/// The ledger an offer's shared limits live in, if it has any.
fn ledger_of(e: &Eligible) -> Option<String> {
    let caps = &e.offer.caps;
    let x = &e.offer.expiration;
    if let Some(budget) = &caps.budget {
        return Some(format!("{LEDGER_PREFIX}{}", budget.budget_id));
    }
    (caps.burn_rate.is_some() || x.redemption_cap.is_some() || x.cohort_cap.is_some())
        .then(|| format!("{LEDGER_PREFIX}offer:{}", e.offer.offer_id))
}

fn candidate(
    e: &Eligible,
    view: &MemberView,
    proposal_id: &str,
    arms: &BTreeMap<String, (ArmKey, f64)>,
    features: &[f64],
    fx: &impl money::Rates,
) -> Result<(Candidate, HeldOffer), OfferRejection> {
    let o = &e.offer;
    let arm = arms.get(&o.offer_id);
    let extended = e
        .extends
        .as_ref()
        .and_then(|p| view.held.iter().find(|h| &h.proposal_id == p));
    // An extension shows the member the version they hold, with the new expiry.
    let offer = match extended.and_then(|h| h.shown.as_deref()) {
        Some(shown) => ChosenOffer {
            expires_at: e.expires_at,
            ..shown.clone()
        },
        None => ChosenOffer {
            offer_id: o.offer_id.clone(),
            version_id: o.version.version_id,
            vendor: o.vendor.clone(),
            offer_type: o.offer_type,
            experiment_id: o.experiment.as_ref().map(|x| x.experiment_id.clone()),
            arm: o.experiment.as_ref().map(|x| x.arm.clone()),
            policy: o.experiment.as_ref().map(|x| x.policy),
            expected_incremental_ltv: e.pricing.incremental.clone(),
            expected_cost: e.pricing.cost.clone(),
            currency: e.pricing.currency.clone(),
            budget_id: o.caps.budget.as_ref().map(|b| b.budget_id.clone()),
            expires_at: e.expires_at,
            content: e.content.clone(),
            compliance: o.compliance.clone(),
            channels: o.channels.clone(),
        },
    };
    // An extension of an offer the member holds was charged when first proposed.
    let ledger = if extended.is_some() {
        None
    } else {
        ledger_of(e)
    };
    let terms = match ledger {
        None => None,
        Some(ledger) => {
            let cost = match e.pricing.cost.mean_minor {
                0 => 0,
                cost => money::convert(cost, &e.pricing.currency, &o.value.currency, fx).map_err(
                    |err| {
                        select::reject(
                            o,
                            RejectionStage::Budget,
                            "budget_currency",
                            o.value.currency.clone(),
                            format!("cannot charge the offer's budget in its currency: {err}"),
                        )
                    },
                )?,
            };
            Some(LedgerTerms {
                ledger,
                offer_id: o.offer_id.clone(),
                version_id: o.version.version_id,
                cost_minor: cost,
                currency: o.value.currency.clone(),
                ceiling_minor: o.caps.budget.as_ref().and_then(|b| b.ceiling_minor),
                ceiling_redemptions: o.caps.budget.as_ref().and_then(|b| b.ceiling_redemptions),
                burn_max_minor_per_day: o.caps.burn_rate.as_ref().map(|b| b.max_minor_per_day),
                burn_window_days: o.caps.burn_rate.as_ref().map(|b| b.window_days),
                redemption_cap: o.expiration.redemption_cap,
                cohort_cap: o.expiration.cohort_cap,
                cohort: view.cohort.map(|c| c.segment.label().to_owned()),
                day: view.now.day().0,
            })
        }
    };
    let held = HeldOffer {
        proposal_id: proposal_id.to_owned(),
        offer_id: o.offer_id.clone(),
        version_id: offer.version_id,
        vendor: o.vendor.clone(),
        offer_type: o.offer_type,
        rule: o.stacking.rule,
        stack_group: o.stacking.stack_group.clone(),
        loyalty_program_id: o.stacking.loyalty_program_id.clone(),
        referral_program_id: o.stacking.referral_program_id.clone(),
        product_lines: o.eligibility.product_lines.clone(),
        percent_off_bp: o.value.percent_off_bp,
        amount_off_minor: e.pricing.discount_per_order_minor
            - o.value.percent_off_bp.map_or(0, |bp| {
                select::basis_points(e.pricing.order_value_minor, bp)
            }),
        value_to_member_minor: e.pricing.value_to_member(),
        held_since: view.now,
        expires_at: e.expires_at,
        grace_until: e.grace_until,
        extensions: extended.map_or(0, |h| h.extensions + 1),
        suppress_on: o.expiration.suppress_on.clone(),
        replaces: e.replaces.clone(),
        arm_key: arm.map(|(k, _)| k.clone()),
        arm_probability: arm.map_or(1.0, |(_, p)| *p),
        // Only the linear policies learn from the member's features.
        context: match o.experiment.as_ref().map(|x| x.policy) {
            Some(BanditPolicy::LinUcb | BanditPolicy::LinThompson) if arm.is_some() => {
                features.to_vec()
            }
            _ => Vec::new(),
        },
        rewarded: false,
        redeemed: false,
        shown: Some(Box::new(offer.clone())),
    };
    Ok((
        Candidate {
            offer,
            terms,
            stacking_explanation: e.stacking_explanation.clone(),
        },
        held,
    ))
}

/// Candidates with a shared limit a claim carries at most: each refusal passes the whole
/// claim on, so the list is kept short.
const MAX_LEDGERED: usize = 8;

/// Count a rejection in the proposal's tally, and list it while there is room: the claim
/// and the proposal stay small however large the catalog.
fn rule_out(proposal: &mut OfferProposal, r: OfferRejection, max: usize) {
    proposal.rejected_offers += 1;
    match proposal
        .rejection_tally
        .iter_mut()
        .find(|t| t.stage == r.stage && t.dimension == r.dimension)
    {
        Some(t) => t.offers += 1,
        None => proposal.rejection_tally.push(RejectionTally {
            stage: r.stage,
            dimension: r.dimension.clone(),
            offers: 1,
        }),
    }
    if proposal.rejections.len() < max {
        proposal.rejections.push(r);
    }
}

/// An eligible offer that another, worth more, beat.
fn outranked(offer_id: &str, version_id: i64, score: i64, currency: &str) -> OfferRejection {
    OfferRejection {
        offer_id: offer_id.to_owned(),
        version_id,
        stage: RejectionStage::Outranked,
        dimension: "score".into(),
        value: score.to_string(),
        explanation: format!(
            "eligible, but worth less: incremental LTV minus cost is {score} {currency}"
        ),
    }
}

/// Send the claim on: to the ledger of the candidate at `next`, or — for a candidate
/// without shared limits, or none left — out as the proposal. `here` is the ledger this
/// task holds, when it is a ledger's task: its candidates are charged at once rather than
/// sent round the topic to itself. A candidate whose ledger's published standing already
/// refuses it is ruled out without a trip to that ledger.
fn route(
    agent: &SaveOffer,
    mut claim: LedgerClaim,
    mut here: Option<(&str, &mut Ledger)>,
    ctx: &mut Context<'_, SaveOffer>,
) -> Result<(), HandleError> {
    let merged = agent.merged(ctx.population());
    let max = agent.settings.max_listed_rejections;
    loop {
        let next = usize::try_from(claim.next).unwrap_or(usize::MAX);
        let Some(candidate) = claim.candidates.get(next) else {
            return finish(agent, claim, None, ctx);
        };
        let Some(terms) = candidate.terms.clone() else {
            return finish(agent, claim, Some(next), ctx);
        };
        let refusal = match here.as_mut() {
            Some((key, ledger)) if *key == terms.ledger => match ledger.charge(&terms) {
                Ok(()) => {
                    if let Some(m) = agent.metrics() {
                        m.ledger("granted");
                    }
                    if let Some(summary) = ctx.summary() {
                        summary
                            .ledgers
                            .insert(terms.ledger.clone(), ledger.standing.clone());
                    }
                    return finish(agent, claim, Some(next), ctx);
                }
                Err(refusal) => {
                    if let Some(m) = agent.metrics() {
                        m.ledger("refused");
                    }
                    refusal
                }
            },
            _ => match merged
                .ledgers
                .get(&terms.ledger)
                .and_then(|standing| standing.refusal(&terms))
            {
                Some(mut refusal) => {
                    if let Some(m) = agent.metrics() {
                        m.ledger("refused_as_published");
                    }
                    refusal
                        .explanation
                        .push_str(" (as the ledger last published)");
                    refusal
                }
                None => {
                    let at = claim.proposal.decided_at.0;
                    return ctx.emit(&CLAIMS, &terms.ledger, &claim, at);
                }
            },
        };
        rule_out(&mut claim.proposal, refusal, max);
        claim.next += 1;
    }
}

/// Write the proposal: the candidate at `chosen` (or none), those after it outranked.
fn finish(
    agent: &SaveOffer,
    claim: LedgerClaim,
    chosen: Option<usize>,
    ctx: &mut Context<'_, SaveOffer>,
) -> Result<(), HandleError> {
    let LedgerClaim {
        mut proposal,
        candidates,
        next,
    } = claim;
    let from = usize::try_from(next).unwrap_or(0);
    let winner = chosen.and_then(|i| candidates.get(i)).cloned();
    let max = agent.settings.max_listed_rejections;
    for (i, c) in candidates.iter().enumerate().skip(from) {
        if Some(i) == chosen {
            continue;
        }
        let o = &c.offer;
        let score = o.expected_incremental_ltv.mean_minor - o.expected_cost.mean_minor;
        rule_out(
            &mut proposal,
            outranked(&o.offer_id, o.version_id, score, &o.currency),
            max,
        );
    }
    proposal.stacking_explanation = match &winner {
        Some(c) => c.stacking_explanation.clone(),
        None => "no offer proposed".into(),
    };
    if let Some(m) = agent.metrics() {
        m.proposed(
            proposal.trigger,
            winner.as_ref().map(|c| c.offer.offer_type),
        );
    }
    proposal.offer = winner.map(|c| c.offer);
    if proposal
        .offer
        .as_ref()
        .is_none_or(|o| o.offer_type != OfferType::DowngradeTier)
    {
        proposal.tier_change = None;
    }
    let member = proposal.member_id.clone();
    let at = proposal.decided_at.0;
    ctx.emit(&catalog::OFFER_PROPOSALS, &member, &proposal, at)
}

/// A claim reached the ledger it names: charge it or pass it on.
pub(super) fn settle_claim(
    agent: &SaveOffer,
    input: &Input<'_>,
    state: &mut Option<Entry>,
    ctx: &mut Context<'_, SaveOffer>,
) -> Result<(), HandleError> {
    if !input.key.starts_with(LEDGER_PREFIX) {
        return Err(
            Rejection::contract(format!("a claim keyed {:?}, not by a ledger", input.key)).into(),
        );
    }
    let claim: LedgerClaim = input.decode()?;
    if ctx.is_erased(&claim.proposal.member_id) {
        // Erased while the claim was on its way: nothing is charged or proposed.
        if let Some(m) = agent.metrics() {
            m.ledger("erased");
        }
        return Ok(());
    }
    let ledger = match state.get_or_insert_with(|| Entry::Ledger(Ledger::default())) {
        Entry::Ledger(l) => l,
        Entry::Member(_) => {
            return Err(HandleError::Fatal(format!(
                "ledger key {:?} holds a member",
                input.key
            )));
        }
    };
    let settle_id = format!("{}#{}", claim.proposal.proposal_id, claim.next);
    if ledger.has_decided(&settle_id) {
        if let Some(m) = agent.metrics() {
            m.ledger("duplicate");
        }
        return Ok(());
    }
    ledger.remember(&settle_id, agent.settings.remembered_claims);
    let next = usize::try_from(claim.next).unwrap_or(usize::MAX);
    let Some(terms) = claim.candidates.get(next).and_then(|c| c.terms.clone()) else {
        return Err(Rejection::contract(format!(
            "claim {settle_id} names no candidate with a ledger"
        ))
        .into());
    };
    if terms.ledger != input.key {
        return Err(Rejection::contract(format!(
            "claim {settle_id} is for {}, not {}",
            terms.ledger, input.key
        ))
        .into());
    }
    let key = input.key.to_owned();
    route(agent, claim, Some((&key, ledger)), ctx)
}
