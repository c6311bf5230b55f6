//! Plans in the account's partition. Accepting one is one transaction: the plan, the account's
//! reference to it (its next instalment, which the reminders follow), the previous plan
//! cancelled, and the account back on the due index to be decided under the plan.
//!
//! A plan's interest is added to the balance when it is accepted. A plan that stops unpaid
//! (replaced or broken) takes the interest of its unpaid instalments back off, so a later plan
//! is never built on interest (no interest on interest). Each plan is on GSI1 under the month
//! of its latest such change, so the aging export can undo the changes after its day.

use jiff::Timestamp;

use super::accounts::due_updates;
use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::{Account, AccountId, TenantId};
use crate::plans::{Plan, PlanStatus};
use crate::ports::table::{Condition, Query, SkRange, TableError, Update, WriteOp, GSI1};
use crate::ports::Item;

/// A plan's item, on GSI1 under the month of its latest interest change.
pub(super) fn plan_item(plan: &Plan) -> Item {
    let mut item = to_item(
        keys::plan(&plan.tenant, &plan.account, &plan.id),
        "plan",
        plan,
    );
    let at = plan.balance_changed_at();
    let month = at.strftime("%Y-%m").to_string();
    item.insert(
        GSI1.pk.into(),
        keys::gsi1_plans(&plan.tenant, &month).into(),
    );
    item.insert(
        GSI1.sk.into(),
        keys::gsi1_plan_sk(at.as_millisecond(), &plan.account, &plan.id).into(),
    );
    item
}

/// How many times the same terms can be agreed on one debt (each after the last ended unpaid).
const MAX_ACCEPTS: u32 = 10;

#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    Created(Plan),
    /// The same plan was accepted before (a repeated request): nothing changed.
    Existing(Plan),
}

impl Store {
    pub async fn plan(
        &self,
        t: &TenantId,
        a: &AccountId,
        id: &str,
    ) -> Result<Option<Plan>, RepoError> {
        self.load(&keys::plan(t, a, id)).await
    }

    /// Accepts `plan`, built on `account.plan_basis()`. A running plan it replaces is
    /// cancelled and its unearned interest taken off the balance in the same transaction.
    pub async fn accept_plan(
        &self,
        account: &Account,
        plan: &Plan,
        now: Timestamp,
    ) -> Result<Accepted, RepoError> {
        // The same terms on the same debt are the same plan, so a retried request finds it.
        // One that has since ended unpaid (replaced or broken) is not what an agreement to
        // those terms again means: that one takes the next free id (`<id>-2`, `<id>-3`, …).
        let mut plan = plan.clone();
        let base = plan.id.clone();
        for n in 1.. {
            if n > 1 {
                plan.id = format!("{base}-{n}");
            }
            let Some(existing) = self.plan(&account.tenant, &account.id, &plan.id).await? else {
                break;
            };
            if !matches!(existing.status, PlanStatus::Cancelled | PlanStatus::Broken) {
                return Ok(Accepted::Existing(existing));
            }
            if n == MAX_ACCEPTS {
                return Err(RepoError::Conflict(format!(
                    "plan {base} was accepted and ended {MAX_ACCEPTS} times; quote other terms"
                )));
            }
        }
        let plan = &plan;
        let mut ops = vec![WriteOp::Put {
            item: plan_item(plan),
            condition: Some(Condition::NotExists),
        }];
        let mut reversed = 0;
        if let Some(old) = &account.plan {
            let mut old_plan = self
                .plan(&account.tenant, &account.id, &old.id)
                .await?
                .ok_or_else(|| RepoError::Conflict(format!("plan {} vanished", old.id)))?;
            reversed = old_plan.end_unpaid(PlanStatus::Cancelled, now);
            ops.push(WriteOp::Put {
                item: plan_item(&old_plan),
                condition: Some(Condition::Exists),
            });
        }
        // Terms quoted on another balance (a payment since, or a plan replaced meanwhile)
        // would not settle the account: the caller quotes again.
        if plan.terms.balance_minor != account.balance_minor - reversed {
            return Err(RepoError::Conflict(format!(
                "account {} is owed {} without its plan's unearned interest, not the {} the plan was built on",
                account.id,
                account.balance_minor - reversed,
                plan.terms.balance_minor
            )));
        }
        let mut updates = due_updates(
            &account.tenant,
            &account.id,
            Some(now),
            &format!("ACCOUNT#{}", account.id),
        );
        updates.push(Update::set(
            "plan",
            serde_json::to_value(plan.reference()).expect("serializes"),
        ));
        updates.push(Update::add("version", 1));
        // Interest the plan adds is owed from now on (less what the replaced plan's unpaid
        // instalments carried); a settlement's discount is forgiven only when the plan
        // completes (a broken settlement leaves the whole balance owed).
        let change = plan.terms.interest_minor - reversed;
        if change != 0 {
            updates.push(Update::add("balance_minor", change));
        }
        ops.push(WriteOp::Update {
            key: keys::account(&account.tenant, &account.id),
            updates,
            condition: Some(Condition::eq("version", account.version)),
        });
        match self.table.transact_write(ops).await {
            Ok(()) => Ok(Accepted::Created(plan.clone())),
            Err(TableError::TransactionCanceled(f)) if f.first() == Some(&true) => {
                let existing = self
                    .plan(&account.tenant, &account.id, &plan.id)
                    .await?
                    .ok_or_else(|| RepoError::Conflict("plan vanished".into()))?;
                Ok(Accepted::Existing(existing))
            }
            Err(TableError::TransactionCanceled(_)) => Err(RepoError::Conflict(format!(
                "account {} changed",
                account.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks the plan broken (an instalment past the grace days) and takes it off the
    /// account, whose reminders go back to the whole debt, with `announce` on the outbox in the
    /// same transaction. The interest of its unpaid instalments comes off the balance.
    pub async fn break_plan(
        &self,
        account: &Account,
        plan: &Plan,
        announce: &super::Announcement,
        at: jiff::Timestamp,
    ) -> Result<(), RepoError> {
        let mut broken = plan.clone();
        let reversed = broken.end_unpaid(PlanStatus::Broken, at);
        let mut updates = vec![Update::remove("plan"), Update::add("version", 1)];
        if reversed != 0 {
            updates.push(Update::add("balance_minor", -reversed));
        }
        let ops = vec![
            announce.put(at),
            WriteOp::Put {
                item: plan_item(&broken),
                condition: Some(Condition::Exists),
            },
            WriteOp::Update {
                key: keys::account(&account.tenant, &account.id),
                updates,
                condition: Some(Condition::eq("version", account.version)),
            },
        ];
        match self.table.transact_write(ops).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCanceled(_)) => Err(RepoError::Conflict(format!(
                "account {} changed",
                account.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's plans whose interest changed a balance at or after `since` (until now),
    /// each once, for the aging export.
    pub async fn plans_changed_since(
        &self,
        t: &TenantId,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Plan>, RepoError> {
        let mut out = Vec::new();
        let until = now + jiff::SignedDuration::from_millis(1);
        for month in keys::months(since, until) {
            let q = Query::index(
                GSI1,
                keys::gsi1_plans(t, &month),
                SkRange::Between(
                    format!("{:015}", since.as_millisecond()),
                    format!("{:015}#~", until.as_millisecond()),
                ),
            );
            for item in self.query_all(q).await? {
                out.push(from_item(item)?);
            }
        }
        Ok(out)
    }
}

impl Plan {
    pub fn is_running(&self) -> bool {
        matches!(self.status, PlanStatus::Accepted | PlanStatus::Active)
    }
}
