//! Plans in the account's partition. Accepting one is one transaction: the plan, the account's
//! reference to it (its next instalment, which the reminders follow), the previous plan
//! cancelled, and the account back on the due index to be decided under the plan.

use jiff::Timestamp;

use super::accounts::due_updates;
use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::{Account, AccountId, TenantId};
use crate::plans::{Plan, PlanStatus};
use crate::ports::table::{Condition, TableError, Update, WriteOp};

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
        self.table
            .get(&keys::plan(t, a, id))
            .await?
            .map(from_item)
            .transpose()
    }

    pub async fn accept_plan(
        &self,
        account: &Account,
        plan: &Plan,
        now: Timestamp,
    ) -> Result<Accepted, RepoError> {
        if let Some(existing) = self.plan(&account.tenant, &account.id, &plan.id).await? {
            return Ok(Accepted::Existing(existing));
        }
        let mut ops = vec![WriteOp::Put {
            item: to_item(
                keys::plan(&account.tenant, &account.id, &plan.id),
                "plan",
                plan,
            ),
            condition: Some(Condition::NotExists),
        }];
        if let Some(old) = &account.plan {
            ops.push(WriteOp::Update {
                key: keys::plan(&account.tenant, &account.id, &old.id),
                updates: vec![Update::set("status", "cancelled")],
                condition: Some(Condition::Exists),
            });
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
        // Interest the plan adds is owed from now on; a settlement's discount is forgiven only
        // when the plan completes (a broken settlement leaves the whole balance owed).
        if plan.terms.interest_minor > 0 {
            updates.push(Update::add("balance_minor", plan.terms.interest_minor));
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

    /// Marks a plan broken (an instalment past the grace days) and takes it off the account,
    /// whose reminders go back to the whole debt.
    /// Marks the plan broken and takes it off the account, with `announce` on the outbox in
    /// the same transaction.
    pub async fn break_plan(
        &self,
        account: &Account,
        plan: &Plan,
        announce: &super::Announcement,
        at: jiff::Timestamp,
    ) -> Result<(), RepoError> {
        let ops = vec![
            announce.put(at),
            WriteOp::Update {
                key: keys::plan(&account.tenant, &account.id, &plan.id),
                updates: vec![Update::set("status", "broken")],
                condition: Some(Condition::Exists),
            },
            WriteOp::Update {
                key: keys::account(&account.tenant, &account.id),
                updates: vec![Update::remove("plan"), Update::add("version", 1)],
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
}

impl Plan {
    pub fn is_running(&self) -> bool {
        matches!(self.status, PlanStatus::Accepted | PlanStatus::Active)
    }
}
