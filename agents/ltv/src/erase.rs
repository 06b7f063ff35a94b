//! A member taken out of the population, on erasure: the runtime's request, or
//! member-state's tombstone from upstream. Their fit rows, value group and remembered
//! intervention outcomes leave the partition summary, so the next fit and the uplift
//! statistics no longer include them.

use loyalty_contracts::linked_id;
use loyalty_runtime::{Context, Forgotten, HandleError};

use crate::Ltv;
use crate::join::MemberJoin;
use crate::population::Contribution;

impl Ltv {
    /// Take `join`'s member out of the partition summary; what was removed, and the ids
    /// their records also arrive under (ESP contact ids, store cards).
    pub(crate) fn withdraw(
        join: &MemberJoin,
        ctx: &mut Context<'_, Ltv>,
    ) -> Result<Forgotten, HandleError> {
        let summary = ctx
            .summary()
            .ok_or_else(|| HandleError::Fatal("ltv runs without its partition summary".into()))?;
        let mut forgotten = Forgotten::default();
        if join.contribution != Contribution::default() {
            summary.replace(&join.contribution, &Contribution::default());
            forgotten.removed("summary:fit_rows_and_values", 1);
        }
        forgotten.removed(
            "summary:intervention_outcomes",
            crate::outcomes::withdraw(summary, join),
        );
        forgotten.linked_ids = join
            .member
            .iter()
            .flat_map(|(_, m)| &m.identity_links)
            .filter_map(|link| linked_id(link).map(str::to_owned))
            .collect();
        Ok(forgotten)
    }
}
