//! Contact attempts and the outbox. A decision to contact is committed in one transaction with
//! the account's next step; the attempt item sits on the due index as an outbox entry until the
//! sender finishes it, so a message lost between the commit and the queue is sent again by a
//! later tick, and the sender's claim makes sure it goes out once.

use jiff::{SignedDuration, Timestamp};

use super::accounts::{due_updates, set_due};
use super::{from_item, keys, to_item, written, RepoError, Store};
use crate::domain::{Account, AccountId, AttemptStatus, ContactAttempt, TenantId};
use crate::ports::table::{Condition, TableError, Update, WriteOp};
use crate::ports::Item;

/// A provider's report on a sent message.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub provider_message_id: String,
    /// `sent`, `delivered`, `read`, `played` or `failed`.
    pub status: String,
    /// Order of the statuses: later ones have higher ranks; `failed` outranks all.
    pub rank: i64,
    pub failed: bool,
    pub at: Timestamp,
    pub error: Option<String>,
    pub error_code: Option<i64>,
}

/// What a status report did to its attempt (`Store::apply_delivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It moved the attempt forward.
    Now,
    /// It had moved it already: the same status at the same time, delivered again. What it
    /// led to is done again (announced again, with the same details), since the first time
    /// may have failed after the attempt was updated.
    Before,
    /// The attempt is past it (a late or out-of-order report): nothing to do.
    Stale,
}

/// A pending outbox entry found on the due index.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub attempt: ContactAttempt,
}

/// A write conditional on holding the attempt found it no longer held (its lease ran out and
/// another sender took it).
fn not_held(e: TableError) -> RepoError {
    match e {
        TableError::ConditionFailed => RepoError::Conflict("attempt no longer held".into()),
        e => e.into(),
    }
}

/// When a held attempt was handed to a provider (see `mark_handed`).
const HANDED_AT: &str = "handed_at";

#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This sender now holds the attempt and must finish or release it.
    Claimed(ContactAttempt),
    /// Already sent, failed or cancelled: a duplicate delivery, nothing to do.
    Finished(ContactAttempt),
    /// Another sender holds it and its lease has not run out.
    Busy,
    /// The sender that held it stopped after handing it to a provider, before it wrote down
    /// what came back: it may have been delivered. This sender now holds it, to end it.
    Handed(ContactAttempt),
    /// No such decision was committed.
    Missing,
}

fn outbox_what(attempt: &ContactAttempt) -> String {
    format!("OUTBOX#{}#{}", attempt.account, attempt.decision_id)
}

/// A new attempt as it is written: on the outbox (the due index) at `retry_at`, so a message
/// lost before the sender finished it is queued again from there.
fn outbox_item(attempt: &ContactAttempt, retry_at: Timestamp) -> Item {
    let mut item = to_item(
        keys::attempt(&attempt.tenant, &attempt.account, &attempt.decision_id),
        "attempt",
        attempt,
    );
    item.insert("status_code".into(), attempt.status.as_str().into());
    set_due(
        &mut item,
        &attempt.tenant,
        retry_at,
        &outbox_what(attempt),
        &attempt.account,
    );
    item
}

impl Store {
    /// Commits a contact decision: the attempt (status queued, on the outbox) and the account's
    /// next step, all or nothing. `Ok(false)`: this decision was committed before (a repeated
    /// tick), nothing changed. `Err(Conflict)`: the account changed since it was read.
    pub async fn commit_contact(
        &self,
        account: &Account,
        attempt: &ContactAttempt,
        outbox_retry_at: Timestamp,
        next_action_at: Option<Timestamp>,
    ) -> Result<bool, RepoError> {
        self.commit_contact_recorded(account, attempt, outbox_retry_at, next_action_at, None)
            .await
    }

    /// `commit_contact`, with the decision that made the contact recorded in the same write:
    /// a contact is never committed without its reason on the account's record.
    pub async fn commit_decided_contact(
        &self,
        account: &Account,
        attempt: &ContactAttempt,
        outbox_retry_at: Timestamp,
        decision: &super::Decision,
    ) -> Result<bool, RepoError> {
        self.commit_contact_recorded(
            account,
            attempt,
            outbox_retry_at,
            decision.next_action_at,
            Some(decision),
        )
        .await
    }

    async fn commit_contact_recorded(
        &self,
        account: &Account,
        attempt: &ContactAttempt,
        outbox_retry_at: Timestamp,
        next_action_at: Option<Timestamp>,
        decision: Option<&super::Decision>,
    ) -> Result<bool, RepoError> {
        let item = outbox_item(attempt, outbox_retry_at);
        let mut updates = due_updates(
            &account.tenant,
            &account.id,
            next_action_at,
            &format!("ACCOUNT#{}", account.id),
        );
        updates.push(Update::add("version", 1));
        let mut ops = vec![
            WriteOp::Put {
                item,
                condition: Some(Condition::NotExists),
            },
            WriteOp::Update {
                key: keys::account(&account.tenant, &account.id),
                updates,
                condition: Some(Condition::eq("version", account.version)),
            },
        ];
        if let Some(d) = decision {
            let key = keys::decision(
                &account.tenant,
                &account.id,
                d.at.as_millisecond(),
                &d.outcome,
            );
            ops.push(WriteOp::Put {
                item: to_item(key, "decision", d),
                condition: None,
            });
        }
        match self.table.transact_write(ops).await {
            Ok(()) => Ok(true),
            Err(TableError::TransactionCanceled(failed)) if failed.first() == Some(&true) => {
                Ok(false)
            }
            Err(TableError::TransactionCanceled(_)) => Err(RepoError::Conflict(format!(
                "account {} changed",
                account.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Commits a message that does not move the account's schedule (a receipt): the attempt
    /// on the outbox, once per id. `Ok(false)`: committed before.
    pub async fn commit_message(
        &self,
        attempt: &ContactAttempt,
        outbox_retry_at: Timestamp,
    ) -> Result<bool, RepoError> {
        let item = outbox_item(attempt, outbox_retry_at);
        written(self.table.put(item, Some(Condition::NotExists)).await)
    }

    pub async fn attempt(
        &self,
        t: &TenantId,
        a: &AccountId,
        decision_id: &str,
    ) -> Result<Option<ContactAttempt>, RepoError> {
        self.load(&keys::attempt(t, a, decision_id)).await
    }

    /// Pushes a pending outbox entry's retry time forward (it was just re-enqueued).
    pub async fn retry_outbox_at(
        &self,
        attempt: &ContactAttempt,
        at: Timestamp,
    ) -> Result<(), RepoError> {
        let key = keys::attempt(&attempt.tenant, &attempt.account, &attempt.decision_id);
        let updates = due_updates(
            &attempt.tenant,
            &attempt.account,
            Some(at),
            &outbox_what(attempt),
        );
        match self
            .table
            .update(
                &key,
                updates,
                Some(Condition::AttrExists(
                    crate::ports::table::DUE_INDEX.pk.into(),
                )),
            )
            .await
        {
            // Finished meanwhile: nothing to retry.
            Ok(_) | Err(TableError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes an attempt for sending: queued, or sending under a lease older than `lease`.
    pub async fn claim_attempt(
        &self,
        t: &TenantId,
        a: &AccountId,
        decision_id: &str,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<Claim, RepoError> {
        let key = keys::attempt(t, a, decision_id);
        let stale = now.saturating_sub(lease).expect("in range").to_string();
        let condition = Condition::Or(vec![
            Condition::eq("status_code", "queued"),
            Condition::And(vec![
                Condition::eq("status_code", "sending"),
                Condition::lt("claimed_at", stale),
            ]),
        ]);
        let updates = vec![
            Update::set("status", "sending"),
            Update::set("status_code", "sending"),
            Update::set("claimed_at", now.to_string()),
        ];
        match self.table.update(&key, updates, Some(condition)).await {
            Ok(item) if item.contains_key(HANDED_AT) => Ok(Claim::Handed(from_item(item)?)),
            Ok(item) => Ok(Claim::Claimed(from_item(item)?)),
            Err(TableError::ConditionFailed) => Ok(match self.attempt(t, a, decision_id).await? {
                None => Claim::Missing,
                Some(at) if at.status == AttemptStatus::Sending => Claim::Busy,
                Some(at) => Claim::Finished(at),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Notes, right before a held attempt goes to a provider, that it is going: a sender that
    /// stops before writing down what came back leaves this, and the next claim then knows the
    /// message may have gone out (`Claim::Handed`) and does not send it a second time.
    pub async fn mark_handed(
        &self,
        attempt: &ContactAttempt,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let key = keys::attempt(&attempt.tenant, &attempt.account, &attempt.decision_id);
        let held = Condition::eq("status_code", "sending");
        self.table
            .update(
                &key,
                vec![Update::set(HANDED_AT, now.to_string())],
                Some(held),
            )
            .await
            .map(|_| ())
            .map_err(not_held)
    }

    /// Ends an attempt (sent, failed or cancelled) and takes it off the outbox.
    pub async fn finish_attempt(
        &self,
        attempt: &ContactAttempt,
        status: AttemptStatus,
        provider_message_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), RepoError> {
        let key = keys::attempt(&attempt.tenant, &attempt.account, &attempt.decision_id);
        let mut updates = due_updates(&attempt.tenant, &attempt.account, None, "");
        updates.push(Update::set("status", status.as_str()));
        updates.push(Update::set("status_code", status.as_str()));
        if let Some(id) = provider_message_id {
            updates.push(Update::set("provider_message_id", id));
        }
        if let Some(e) = error {
            updates.push(Update::set("error", e));
        }
        self.table
            .update(&key, updates, Some(Condition::eq("status_code", "sending")))
            .await
            .map(|_| ())
            .map_err(not_held)
    }

    /// Records a message the provider accepted: the attempt is sent, with the provider's id,
    /// and the id is indexed for the status webhooks, in one transaction. This is the first
    /// write after the provider answers, so the id is never lost.
    pub async fn finish_sent(
        &self,
        attempt: &ContactAttempt,
        channel: crate::domain::ChannelKind,
        provider_message_id: &str,
    ) -> Result<(), RepoError> {
        let key = keys::attempt(&attempt.tenant, &attempt.account, &attempt.decision_id);
        let mut updates = due_updates(&attempt.tenant, &attempt.account, None, "");
        updates.extend([
            Update::set("status", "sent"),
            Update::set("status_code", "sent"),
            Update::set("channel", channel.as_str()),
            Update::set("provider_message_id", provider_message_id),
            Update::set("delivery", "sent"),
            Update::set("delivery_rank", 1),
        ]);
        let mut index = crate::ports::Item::new();
        index.extend(keys::provider_message(&attempt.tenant, provider_message_id).into_item());
        index.insert(super::KIND.into(), "provider_message".into());
        index.insert("account".into(), attempt.account.as_str().into());
        index.insert("decision_id".into(), attempt.decision_id.as_str().into());
        let ops = vec![
            WriteOp::Update {
                key,
                updates,
                condition: Some(Condition::eq("status_code", "sending")),
            },
            WriteOp::Put {
                item: index,
                condition: None,
            },
        ];
        match self.table.transact_write(ops).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCanceled(_)) => {
                Err(RepoError::Conflict("attempt no longer held".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Applies a provider's status report to the attempt it is about. Statuses arrive out of
    /// order and more than once: the attempt only moves forward (`rank` grows; a failure is
    /// final). `Ok(None)`: no attempt has this message id (a message cobro did not send as an
    /// attempt). Otherwise the attempt as it now is, and whether the report moved it
    /// (`Applied::Now`), had already moved it (`Before`: the same status at the same time, a
    /// redelivery) or came too late to (`Stale`).
    pub async fn apply_delivery(
        &self,
        t: &TenantId,
        d: &Delivery,
    ) -> Result<Option<(ContactAttempt, Applied)>, RepoError> {
        let Some(index) = self
            .table
            .get(&keys::provider_message(t, &d.provider_message_id))
            .await?
        else {
            return Ok(None);
        };
        let field = |n: &str| index.get(n).and_then(|v| v.as_str()).unwrap_or_default();
        let account = AccountId::parse(field("account"))
            .map_err(|e| RepoError::Corrupt(format!("provider message index: {e}")))?;
        let key = keys::attempt(t, &account, field("decision_id"));
        let mut updates = vec![
            Update::set("delivery", d.status.as_str()),
            Update::set("delivery_rank", d.rank),
            Update::set(&format!("{}_at", d.status), d.at.to_string()),
        ];
        if d.failed {
            updates.push(Update::set("status", "failed"));
            updates.push(Update::set("status_code", "failed"));
            if let Some(e) = &d.error {
                updates.push(Update::set("error", e.as_str()));
            }
            if let Some(c) = d.error_code {
                updates.push(Update::set("error_code", c));
            }
        }
        // Forward only, and never out of a failure.
        let forward = Condition::And(vec![
            Condition::Exists,
            Condition::Or(vec![
                Condition::AttrNotExists("delivery_rank".into()),
                Condition::lt("delivery_rank", d.rank),
            ]),
            Condition::Ne("delivery".into(), "failed".into()),
        ]);
        let at_field = format!("{}_at", d.status);
        match self.table.update(&key, updates, Some(forward)).await {
            Ok(item) => Ok(Some((from_item(item)?, Applied::Now))),
            Err(TableError::ConditionFailed) => {
                let Some(item) = self.table.get(&key).await? else {
                    return Ok(None);
                };
                let at = d.at.to_string();
                let before = item.get(&at_field).and_then(|v| v.as_str()) == Some(at.as_str());
                let applied = if before {
                    Applied::Before
                } else {
                    Applied::Stale
                };
                Ok(Some((from_item(item)?, applied)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reopens an attempt the provider reported undeliverable, for the next channel: queued
    /// again, on the outbox. `Ok(false)`: it was rerouted or changed already (a repeated
    /// status), nothing to do.
    pub async fn reroute_attempt(
        &self,
        attempt: &ContactAttempt,
        next: crate::domain::ChannelKind,
        reason: &str,
        outbox_retry_at: Timestamp,
    ) -> Result<bool, RepoError> {
        let key = keys::attempt(&attempt.tenant, &attempt.account, &attempt.decision_id);
        let mut updates = due_updates(
            &attempt.tenant,
            &attempt.account,
            Some(outbox_retry_at),
            &outbox_what(attempt),
        );
        updates.extend([
            Update::set("status", "queued"),
            Update::set("status_code", "queued"),
            Update::set("channel", next.as_str()),
            Update::set("error", reason),
            Update::remove("claimed_at"),
            Update::remove(HANDED_AT),
        ]);
        let condition = Condition::And(vec![
            Condition::eq("status_code", "failed"),
            Condition::eq("channel", attempt.channel.as_str()),
        ]);
        written(self.table.update(&key, updates, Some(condition)).await)
    }

    /// Gives an attempt back to the outbox after a temporary failure, counting the try when
    /// `count_try` (a deferral that is not a failure, such as pacing, does not count).
    pub async fn release_attempt(
        &self,
        attempt: &ContactAttempt,
        error: &str,
        code: Option<i64>,
        count_try: bool,
    ) -> Result<(), RepoError> {
        let key = keys::attempt(&attempt.tenant, &attempt.account, &attempt.decision_id);
        let mut updates = vec![
            Update::set("status", "queued"),
            Update::set("status_code", "queued"),
            Update::set("error", error),
            Update::remove("claimed_at"),
            // Whatever was handed over came back refused or not at all: free to send again.
            Update::remove(HANDED_AT),
        ];
        if count_try {
            updates.push(Update::add("tries", 1));
        }
        if let Some(c) = code {
            updates.push(Update::set("error_code", c));
        }
        match self
            .table
            .update(&key, updates, Some(Condition::eq("status_code", "sending")))
            .await
        {
            Ok(_) | Err(TableError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
