//! Intervention outcomes: each intervention counted once per arm in the population's
//! uplift statistics, its converted value replaced, never added.

use loyalty_contracts::{InterventionOutcome, InterventionResult, InterventionType};
use loyalty_runtime::{Context, HandleError, Rejection};

use crate::Ltv;
use crate::join::{Intervention, MAX_INTERVENTIONS, MemberJoin};
use crate::population::PopulationSummary;

impl Ltv {
    /// An intervention outcome: counted once per intervention and arm, its value replaced
    /// (not added) when a later conversion reports a new one, so duplicates change nothing.
    pub(crate) fn outcome(
        &self,
        join: &mut MemberJoin,
        outcome: &InterventionOutcome,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        if InterventionType::from_label(&outcome.intervention_type).is_none() {
            return Err(Rejection::contract(format!(
                "intervention_type {:?} is not one of {}",
                outcome.intervention_type,
                InterventionType::ALL.map(|t| t.label()).join(", ")
            ))
            .into());
        }
        if outcome.value_minor.is_some_and(|v| v < 0) {
            return Err(Rejection::contract("negative intervention value_minor").into());
        }
        let holdout = outcome.holdout.unwrap_or(false);
        let new_value = match (outcome.result, outcome.value_minor) {
            (InterventionResult::Converted, Some(v)) => Some(v),
            _ => None,
        };
        let known = join.interventions.get(&outcome.intervention_id).cloned();
        if let Some(k) = &known
            && (k.kind != outcome.intervention_type || k.holdout != holdout)
        {
            return Err(Rejection::contract(format!(
                "intervention {} was {} (holdout {}) and is now {} (holdout {holdout})",
                outcome.intervention_id, k.kind, k.holdout, outcome.intervention_type
            ))
            .into());
        }
        let old_value = known.as_ref().map_or(0, |k| k.value);
        let value = new_value.unwrap_or(old_value);
        if known.is_none() && join.interventions.len() >= MAX_INTERVENTIONS {
            join.interventions.pop_first();
        }
        join.interventions.insert(
            outcome.intervention_id.clone(),
            Intervention {
                kind: outcome.intervention_type.clone(),
                holdout,
                value,
            },
        );
        if let Some(summary) = ctx.summary() {
            let arms = summary
                .outcomes
                .entry(outcome.intervention_type.clone())
                .or_default();
            let arm = if holdout {
                &mut arms.holdout
            } else {
                &mut arms.treated
            };
            if known.is_none() {
                arm.n += 1;
            }
            arm.sum += value - old_value;
            arm.sum_sq += i128::from(value) * i128::from(value)
                - i128::from(old_value) * i128::from(old_value);
        }
        Ok(())
    }
}

/// Take a member's remembered interventions back out of the outcome arms (erasure);
/// returns how many. Interventions evicted past `MAX_INTERVENTIONS` keep their counts,
/// as anonymous ones.
pub(crate) fn withdraw(summary: &mut PopulationSummary, join: &MemberJoin) -> i64 {
    let mut withdrawn = 0;
    for i in join.interventions.values() {
        let Some(arms) = summary.outcomes.get_mut(&i.kind) else {
            continue;
        };
        let arm = if i.holdout {
            &mut arms.holdout
        } else {
            &mut arms.treated
        };
        arm.n -= 1;
        arm.sum -= i.value;
        arm.sum_sq -= i128::from(i.value) * i128::from(i.value);
        withdrawn += 1;
        if arms.treated.n == 0 && arms.holdout.n == 0 {
            summary.outcomes.remove(&i.kind);
        }
    }
    withdrawn
}
