//! What a person did to an account through the CRM (pause, resume, close, write off, lawsuit,
//! insolvency): the account's new state and the record of who did it and why, in one write.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::accounts::account_item;
use super::debtors::debtor_ops;
use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::{Account, AccountId, Debtor, TenantId};
use crate::ports::{Condition, Query, SkRange, TableError, WriteOp};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountAction {
    /// `pause`, `resume`, `close`, `write_off`, `lawsuit`, `insolvency`, `resolve_dispute`;
    /// on every account of a debtor, `debtor_pause`, `debtor_resume`, `resolve_insolvency`.
    pub action: String,
    pub at: Timestamp,
    /// Who: the API key (id and name) that asked.
    pub by: String,
    pub reason: String,
    /// When a pause ends by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

impl Store {
    /// Writes the account as `updated` (if it is still at the version `updated` was read at)
    /// with its next decision, and the action's record, together.
    pub async fn apply_account_action(
        &self,
        updated: &Account,
        next_action_at: Option<Timestamp>,
        action: &AccountAction,
    ) -> Result<Account, RepoError> {
        self.apply_account_action_with_debtor(updated, next_action_at, action, None)
            .await
    }

    /// As `apply_account_action`, and in the same transaction the account's debtor as
    /// `debtor.0`, if it is still at the revision `debtor.1` it was read at: an action that
    /// changes the person too (an insolvency, a resume ending their pause) happens whole or
    /// not at all, so a conflict or a refusal leaves nothing half done.
    pub async fn apply_account_action_with_debtor(
        &self,
        updated: &Account,
        next_action_at: Option<Timestamp>,
        action: &AccountAction,
        debtor: Option<(&Debtor, i64)>,
    ) -> Result<Account, RepoError> {
        let mut next = updated.clone();
        next.version = updated.version + 1;
        let record = to_item(
            keys::account_action(
                &updated.tenant,
                &updated.id,
                action.at.as_millisecond(),
                &action.action,
            ),
            "account_action",
            action,
        );
        let mut ops = vec![
            WriteOp::Put {
                item: account_item(&next, next_action_at),
                condition: Some(Condition::eq("version", updated.version)),
            },
            WriteOp::Put {
                item: record,
                condition: None,
            },
        ];
        if let Some((debtor, revision)) = debtor {
            ops.extend(debtor_ops(debtor, Some(revision)));
        }
        match self.table.transact_write(ops).await {
            Ok(()) => Ok(next),
            Err(TableError::TransactionCanceled(_)) => Err(RepoError::Conflict(format!(
                "account {} changed meanwhile; retry",
                updated.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The account's actions, oldest first.
    pub async fn account_actions(
        &self,
        t: &TenantId,
        a: &AccountId,
    ) -> Result<Vec<AccountAction>, RepoError> {
        let q = Query::table(
            keys::account_pk(t, a),
            SkRange::BeginsWith("ACTION#".into()),
        );
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }
}
