//! Accounts: the CRM's upsert, the whole picture in one query, and the decisions log.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{from_item, keys, kind_of, to_item, RepoError, Store};
use crate::domain::{
    Account, AccountId, ContactAttempt, CreditNetted, DebtorId, Payment, TenantId,
};
use crate::ports::table::{Condition, Item, Query, SkRange, TableError, WriteOp, DUE_INDEX, GSI1};

/// One decision of the reminders engine, kept so an operator can ask why a debtor was or was
/// not contacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub at: Timestamp,
    /// `contact`, `defer`, `skip`, `done`; the sender's last check adds `defer` and `cancel`,
    /// and `fallback` when it sent the message on another channel for a refused template.
    pub outcome: String,
    /// Why, in words an operator understands.
    pub reason: String,
    #[serde(default)]
    pub decision_id: Option<String>,
    #[serde(default)]
    pub next_action_at: Option<Timestamp>,
}

/// Everything about one account, from one query of its partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub account: Account,
    pub next_action_at: Option<Timestamp>,
    pub payments: Vec<Payment>,
    pub attempts: Vec<ContactAttempt>,
    pub decisions: Vec<Decision>,
    #[serde(default)]
    pub plans: Vec<crate::plans::Plan>,
    /// What the credit paid of the CRM's later charges (or got back), oldest first.
    #[serde(default)]
    pub credit_netted: Vec<CreditNetted>,
}

/// The item of an account, with its index attributes: GSI1 lists a debtor's accounts; the due
/// index holds it only while it needs a decision.
pub(super) fn account_item(account: &Account, next_action_at: Option<Timestamp>) -> Item {
    let mut item = to_item(
        keys::account(&account.tenant, &account.id),
        "account",
        account,
    );
    item.insert(
        GSI1.pk.into(),
        keys::gsi1_debtor_accounts(&account.tenant, &account.debtor).into(),
    );
    item.insert(GSI1.sk.into(), format!("ACCOUNT#{}", account.id).into());
    if let Some(at) = next_action_at {
        set_due(
            &mut item,
            &account.tenant,
            at,
            &format!("ACCOUNT#{}", account.id),
            &account.id,
        );
    }
    item
}

pub(super) fn set_due(
    item: &mut Item,
    t: &TenantId,
    at: Timestamp,
    what: &str,
    shard_key: &AccountId,
) {
    let shard = keys::shard_of(shard_key.as_str());
    item.insert(DUE_INDEX.pk.into(), keys::due_pk(t, shard).into());
    item.insert(
        DUE_INDEX.sk.into(),
        keys::due_sk(at.as_second(), what).into(),
    );
    item.insert("next_action_at".into(), at.to_string().into());
}

pub(super) fn due_updates(
    t: &TenantId,
    a: &AccountId,
    at: Option<Timestamp>,
    what: &str,
) -> Vec<crate::ports::Update> {
    use crate::ports::Update;
    let mut updates = match at {
        Some(at) => {
            let mut item = Item::new();
            set_due(&mut item, t, at, what, a);
            item.into_iter().map(|(k, v)| Update::Set(k, v)).collect()
        }
        None => vec![
            Update::remove(DUE_INDEX.pk),
            Update::remove(DUE_INDEX.sk),
            Update::remove("next_action_at"),
        ],
    };
    // Moved by a decision, a payment, a send: a failure streak, if any, is over.
    updates.push(Update::remove(super::due::DUE_FAILURES));
    updates
}

impl Store {
    /// Records a promise to pay on the account (replacing an earlier one) and puts the account
    /// back on the due index so its reminders wait for it.
    pub async fn make_promise(
        &self,
        account: &Account,
        promise: &crate::domain::Promise,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let promise = serde_json::to_value(promise).expect("serializes");
        self.update_read_account(
            account,
            Some(now),
            vec![crate::ports::Update::set("promise", promise)],
        )
        .await
    }

    /// Changes the account's holds (a pause, a dispute) on the latest version of the account;
    /// returns the account as written, `None` when there is no such account.
    pub async fn set_holds(
        &self,
        t: &TenantId,
        a: &AccountId,
        change: impl Fn(&mut crate::compliance::Holds),
    ) -> Result<Option<Account>, RepoError> {
        for _ in 0..5 {
            let Some(mut account) = self.account(t, a).await? else {
                return Ok(None);
            };
            let before = account.version;
            change(&mut account.holds);
            let updates = vec![
                crate::ports::Update::set(
                    "holds",
                    serde_json::to_value(&account.holds).expect("serializes"),
                ),
                crate::ports::Update::add("version", 1),
            ];
            match self
                .table
                .update(
                    &keys::account(t, a),
                    updates,
                    Some(Condition::eq("version", before)),
                )
                .await
            {
                Ok(_) => {
                    account.version = before + 1;
                    return Ok(Some(account));
                }
                Err(TableError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RepoError::Conflict(format!("account {a} keeps changing")))
    }

    /// Ends a broken promise if the account has not changed since it was read, with `announce`
    /// on the outbox in the same transaction. `false`: it changed (decided next tick).
    pub async fn end_promise(
        &self,
        account: &Account,
        announce: &super::Announcement,
        at: Timestamp,
    ) -> Result<bool, RepoError> {
        let updates = vec![
            crate::ports::Update::remove("promise"),
            crate::ports::Update::add("version", 1),
        ];
        let ops = vec![
            crate::ports::table::WriteOp::Update {
                key: keys::account(&account.tenant, &account.id),
                updates,
                condition: Some(Condition::eq("version", account.version)),
            },
            announce.put(at),
        ];
        match self.table.transact_write(ops).await {
            Ok(()) => Ok(true),
            Err(TableError::TransactionCanceled(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates or replaces the account (idempotent on the CRM's id), keeping cobro's version
    /// counter. `next_action_at` puts it on the due index, or takes it off. Its currency
    /// cannot change (`currency_change`). A credit it moves is dated by the system clock: the
    /// CRM API uses `upsert_account_at`, with its own clock and the schedule of the account as
    /// written.
    pub async fn upsert_account(
        &self,
        account: &Account,
        next_action_at: Option<Timestamp>,
    ) -> Result<(Account, bool), RepoError> {
        self.upsert_account_at(account, Timestamp::now(), |_| next_action_at)
            .await
    }

    /// Creates or replaces the account as the CRM states it (idempotent on the CRM's id),
    /// keeping cobro's own fields and version counter, with the debtor's credit set against a
    /// rise of the balance (`domain::credit`), recorded as of `now` in the same write.
    /// `next_action_at` schedules the account as written (a balance the credit cleared has
    /// nothing to remind of). Its currency cannot change (`currency_change`).
    pub async fn upsert_account_at(
        &self,
        account: &Account,
        now: Timestamp,
        next_action_at: impl Fn(&Account) -> Option<Timestamp>,
    ) -> Result<(Account, bool), RepoError> {
        for _ in 0..5 {
            let current = self.account(&account.tenant, &account.id).await?;
            let restated = super::credit::restate(current.as_ref(), account, now)?;
            let next = restated.account;
            let condition = match &current {
                None => Condition::NotExists,
                Some(c) => Condition::eq("version", c.version),
            };
            let item = account_item(&next, next_action_at(&next));
            let written = match &restated.netted {
                None => self.table.put(item, Some(condition)).await,
                Some(entry) => {
                    let mut ops = vec![WriteOp::Put {
                        item,
                        condition: Some(condition),
                    }];
                    ops.extend(super::credit::record(entry, next.version));
                    match self.table.transact_write(ops).await {
                        Err(TableError::TransactionCanceled(_)) => Err(TableError::ConditionFailed),
                        other => other,
                    }
                }
            };
            match written {
                Ok(()) => return Ok((next, current.is_none())),
                Err(TableError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RepoError::Conflict(format!(
            "account {} keeps changing",
            account.id
        )))
    }

    pub async fn account(&self, t: &TenantId, a: &AccountId) -> Result<Option<Account>, RepoError> {
        self.load(&keys::account(t, a)).await
    }

    pub async fn accounts_of_debtor(
        &self,
        t: &TenantId,
        d: &DebtorId,
    ) -> Result<Vec<Account>, RepoError> {
        let q = Query::index(
            GSI1,
            keys::gsi1_debtor_accounts(t, d),
            SkRange::BeginsWith("ACCOUNT#".into()),
        );
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    pub async fn account_view(
        &self,
        t: &TenantId,
        a: &AccountId,
    ) -> Result<Option<AccountView>, RepoError> {
        let items = self
            .query_all(Query::table(keys::account_pk(t, a), SkRange::All))
            .await?;
        let mut account = None;
        let mut next_action_at = None;
        let (mut payments, mut attempts, mut decisions, mut plans, mut credit_netted) =
            (vec![], vec![], vec![], vec![], vec![]);
        for item in items {
            match kind_of(&item) {
                "account" => {
                    next_action_at = item
                        .get("next_action_at")
                        .and_then(|v| v.as_str())
                        .and_then(|s| s.parse().ok());
                    account = Some(from_item(item)?);
                }
                "payment" => payments.push(from_item(item)?),
                "attempt" => attempts.push(from_item(item)?),
                "decision" => decisions.push(from_item(item)?),
                "plan" => plans.push(from_item(item)?),
                super::credit::KIND => credit_netted.push(from_item(item)?),
                _ => {}
            }
        }
        Ok(account.map(|account| AccountView {
            account,
            next_action_at,
            payments,
            attempts,
            decisions,
            plans,
            credit_netted,
        }))
    }

    pub async fn record_decision(
        &self,
        t: &TenantId,
        a: &AccountId,
        d: &Decision,
    ) -> Result<(), RepoError> {
        let key = keys::decision(t, a, d.at.as_millisecond(), &d.outcome);
        Ok(self.table.put(to_item(key, "decision", d), None).await?)
    }

    /// Moves an account's next decision (or takes it off the due index), if it is still at
    /// the version the caller read.
    pub async fn reschedule_account(
        &self,
        account: &Account,
        next_action_at: Option<Timestamp>,
    ) -> Result<(), RepoError> {
        self.update_read_account(account, next_action_at, vec![])
            .await
    }

    /// Writes `changes` to the account, moves it to `next_action_at` on the due index and
    /// counts a new version, only if it is still at the version the caller read: a change made
    /// meanwhile is a conflict (reload and retry), not overwritten.
    async fn update_read_account(
        &self,
        account: &Account,
        next_action_at: Option<Timestamp>,
        changes: Vec<crate::ports::Update>,
    ) -> Result<(), RepoError> {
        let mut updates = due_updates(
            &account.tenant,
            &account.id,
            next_action_at,
            &format!("ACCOUNT#{}", account.id),
        );
        updates.extend(changes);
        updates.push(crate::ports::Update::add("version", 1));
        match self
            .table
            .update(
                &keys::account(&account.tenant, &account.id),
                updates,
                Some(Condition::eq("version", account.version)),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(TableError::ConditionFailed) => Err(RepoError::Conflict(format!(
                "account {} changed",
                account.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// What is due for a decision in one shard of a tenant at `now`: accounts and outbox
    /// entries, oldest first.
    pub async fn due_items(
        &self,
        t: &TenantId,
        shard: u32,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Item>, RepoError> {
        let q = Query::index(
            DUE_INDEX,
            keys::due_pk(t, shard),
            SkRange::Le(keys::due_until(now.as_second())),
        )
        .limit(limit);
        Ok(self.table.query(q).await?.items)
    }
}

/// Why an account's currency cannot change: its payments, credit, plan and promise are all in
/// the currency it was created in, and would be read in the other. A loan moved to another
/// currency is another account.
pub fn currency_change(current: &Account, to: crate::domain::Currency) -> String {
    format!(
        "account `{}` is in {}, not {to}: an account's currency cannot change; close it and \
         send the debt as a new account",
        current.id, current.currency
    )
}
