//! A debtor and one of their accounts written in one transaction: what a row of a bulk import
//! is, so a row is either wholly applied or not at all.

use jiff::Timestamp;

use super::accounts::account_item;
use super::debtors::{debtor_ops, merge_debtor};
use super::{from_item, keys, RepoError, Store};
use crate::domain::{Account, Debtor};
use crate::ports::{Condition, TableError, WriteOp};

/// What writing a row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowWritten {
    pub debtor_created: bool,
    pub account_created: bool,
}

impl Store {
    /// Upserts the debtor (merged as `upsert_debtor` does) and the account built by
    /// `make` from the account as stored (so the caller keeps what it must), restated as
    /// `upsert_account_at` does (the credit set against a rise, as of `now`), scheduled at
    /// `next`, all or nothing. Idempotent on the two ids.
    pub async fn upsert_debtor_and_account(
        &self,
        debtor: &Debtor,
        account_id: &crate::domain::AccountId,
        now: Timestamp,
        make: impl Fn(Option<&Account>) -> Account,
        next: impl Fn(&Account, &Debtor) -> Option<Timestamp>,
    ) -> Result<(Account, RowWritten), RepoError> {
        for _ in 0..5 {
            let existing = self
                .table
                .get(&keys::debtor(&debtor.tenant, &debtor.id))
                .await?;
            let revision = existing
                .as_ref()
                .map(|i| i.get("revision").and_then(|v| v.as_i64()).unwrap_or(0));
            let merged = merge_debtor(existing.map(from_item::<Debtor>).transpose()?, debtor);
            let current = self.account(&debtor.tenant, account_id).await?;
            // cobro's own fields survive the CRM's update, as in `upsert_account_at`.
            let restated = super::credit::restate(current.as_ref(), &make(current.as_ref()), now)?;
            let account = restated.account;
            let condition = match &current {
                None => Condition::NotExists,
                Some(c) => Condition::eq("version", c.version),
            };
            let at = next(&account, &merged);
            let mut ops = debtor_ops(&merged, revision);
            ops.push(WriteOp::Put {
                item: account_item(&account, at),
                condition: Some(condition),
            });
            if let Some(entry) = &restated.netted {
                ops.extend(super::credit::record(entry, account.version));
            }
            match self.table.transact_write(ops).await {
                Ok(()) => {
                    return Ok((
                        account,
                        RowWritten {
                            debtor_created: revision.is_none(),
                            account_created: current.is_none(),
                        },
                    ))
                }
                Err(TableError::TransactionCanceled(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RepoError::Conflict(format!(
            "debtor {} or account {account_id} keeps changing",
            debtor.id
        )))
    }
}
