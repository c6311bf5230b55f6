//! What the inbound processor keeps: which messages it already applied, where SMS numbers
//! route, and what it could not route or handle (kept for inspection, never dropped).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{keys, to_item, RepoError, Store, KIND};
use crate::domain::{Debtor, DebtorId, TenantId};
use crate::ports::table::{Condition, Key, TableError, Update, TTL};

/// Meta redelivers for 7 days; a month covers that with room.
pub const SEEN_FOR: SignedDuration = SignedDuration::from_hours(24 * 30);

/// How long a claim on an inbound message holds before a redelivery may take it over: longer
/// than the inbound function's 30-second timeout, so a live run is never overtaken, and well
/// under its queue's 180-second visibility timeout, so a redelivery after a crash finds it
/// lapsed.
pub const SEEN_LEASE: SignedDuration = SignedDuration::from_secs(60);

const STATUS: &str = "status";
const PROCESSING: &str = "processing";
const DONE: &str = "done";
/// The end of the claim's lease in epoch milliseconds: a number, so the lease condition
/// compares numbers, and the claim's identity for `release_seen`.
const LEASE_UNTIL_MS: &str = "lease_until_ms";

/// What `claim_seen` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeenClaim {
    /// This run applies the message, and then finishes or releases the claim.
    Claimed(SeenLease),
    /// Applied already: a duplicate.
    Done,
    /// Another run holds it and its lease has not run out: neither applied nor a duplicate
    /// yet, so the delivery must come again later.
    Busy,
}

/// One run's claim on an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenLease {
    lease_until_ms: i64,
}

/// A tenant's SMS number, as the provider names it in inbound messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsNumber {
    pub number: String,
    pub tenant: TenantId,
}

impl Store {
    /// Claims an inbound message for applying: the first time its id is seen on a channel for
    /// a tenant, or again once an earlier claim's lease ran out (that run died or timed out
    /// before finishing). The claim holds until `finish_seen` marks the message done or
    /// `release_seen` gives it up.
    pub async fn claim_seen(
        &self,
        t: &TenantId,
        channel: &str,
        message_id: &str,
        now: Timestamp,
    ) -> Result<SeenClaim, RepoError> {
        let key = keys::seen_inbound(t, channel, message_id);
        let lease_until_ms = now
            .saturating_add(SEEN_LEASE)
            .expect("in range")
            .as_millisecond();
        let expires = now.saturating_add(SEEN_FOR).expect("in range").as_second();
        let updates = vec![
            Update::set(KIND, "seen"),
            Update::set(STATUS, PROCESSING),
            Update::set(LEASE_UNTIL_MS, lease_until_ms),
            Update::set(TTL, expires),
        ];
        let free = Condition::Or(vec![
            Condition::NotExists,
            Condition::And(vec![
                Condition::eq(STATUS, PROCESSING),
                Condition::lt(LEASE_UNTIL_MS, now.as_millisecond()),
            ]),
        ]);
        match self.table.update(&key, updates, Some(free)).await {
            Ok(_) => Ok(SeenClaim::Claimed(SeenLease { lease_until_ms })),
            Err(TableError::ConditionFailed) => Ok(self.seen_taken(&key).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// Why a claim failed: the message is done, or another run holds it.
    async fn seen_taken(&self, key: &Key) -> Result<SeenClaim, RepoError> {
        Ok(match self.table.get(key).await? {
            // Rows written before claims had a status were written by a run that finished or
            // undid them; either way a row without one is done.
            Some(item) if item.get(STATUS).and_then(|v| v.as_str()) != Some(PROCESSING) => {
                SeenClaim::Done
            }
            // Held, or released between the two reads: either way, try again later.
            _ => SeenClaim::Busy,
        })
    }

    /// Marks a claimed message applied: every later delivery of it is a duplicate.
    /// Unconditional: if a slow run's lease was taken over meanwhile, both applied the same
    /// idempotent effects, and done is true either way.
    pub async fn finish_seen(
        &self,
        t: &TenantId,
        channel: &str,
        message_id: &str,
    ) -> Result<(), RepoError> {
        let updates = vec![Update::set(STATUS, DONE), Update::remove(LEASE_UNTIL_MS)];
        self.table
            .update(&keys::seen_inbound(t, channel, message_id), updates, None)
            .await?;
        Ok(())
    }

    /// Gives up a claim whose run failed, so the redelivery that follows applies the message
    /// at once instead of waiting out the lease. Only this run's claim: one taken over, or
    /// finished by another run, stays.
    pub async fn release_seen(
        &self,
        t: &TenantId,
        channel: &str,
        message_id: &str,
        lease: &SeenLease,
    ) -> Result<(), RepoError> {
        let ours = Condition::And(vec![
            Condition::eq(STATUS, PROCESSING),
            Condition::eq(LEASE_UNTIL_MS, lease.lease_until_ms),
        ]);
        match self
            .table
            .delete(&keys::seen_inbound(t, channel, message_id), Some(ours))
            .await
        {
            Ok(_) | Err(TableError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remembers which debtors a WhatsApp user id belongs to (seen on a message that also
    /// carried their number), so a later message with only the id finds them.
    pub async fn link_whatsapp_user(
        &self,
        t: &TenantId,
        user_id: &str,
        debtors: &[DebtorId],
    ) -> Result<(), RepoError> {
        let mut item = keys::whatsapp_user(t, user_id).into_item();
        item.insert(KIND.into(), "whatsapp_user".into());
        item.insert(
            "debtors".into(),
            debtors
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .into(),
        );
        Ok(self.table.put(item, None).await?)
    }

    pub async fn debtors_by_whatsapp_user(
        &self,
        t: &TenantId,
        user_id: &str,
    ) -> Result<Vec<Debtor>, RepoError> {
        let Some(item) = self.table.get(&keys::whatsapp_user(t, user_id)).await? else {
            return Ok(Vec::new());
        };
        let ids: Vec<String> = item
            .get("debtors")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let mut debtors = Vec::new();
        for id in ids {
            let id = DebtorId::parse(id).map_err(|e| RepoError::Corrupt(e.to_string()))?;
            if let Some(d) = self.debtor(t, &id).await? {
                debtors.push(d);
            }
        }
        Ok(debtors)
    }

    pub async fn put_sms_number(&self, n: &SmsNumber) -> Result<(), RepoError> {
        let item = to_item(keys::sms_number(&n.number), "sms_number", n);
        Ok(self.table.put(item, None).await?)
    }

    pub async fn sms_number(&self, number: &str) -> Result<Option<SmsNumber>, RepoError> {
        self.table
            .get(&keys::sms_number(number))
            .await?
            .map(super::from_item)
            .transpose()
    }

    /// A delivery for a number no tenant has.
    pub async fn record_unrouted(
        &self,
        channel: &str,
        number: &str,
        blob: &str,
        at: Timestamp,
    ) -> Result<(), RepoError> {
        let mut item = keys::unrouted(channel, number, at.as_millisecond(), blob).into_item();
        item.insert(KIND.into(), "unrouted".into());
        item.insert("blob".into(), blob.into());
        Ok(self.table.put(item, None).await?)
    }

    /// An event cobro does not handle, with where its raw body is.
    pub async fn record_unhandled(
        &self,
        t: &TenantId,
        what: &str,
        n: usize,
        blob: &str,
        at: Timestamp,
    ) -> Result<(), RepoError> {
        let mut item = keys::unhandled(t, at.as_millisecond(), what, n).into_item();
        item.insert(KIND.into(), "unhandled".into());
        item.insert("what".into(), what.into());
        item.insert("blob".into(), blob.into());
        Ok(self.table.put(item, None).await?)
    }
}
