//! What the inbound processor keeps: which messages it already applied, where SMS numbers
//! route, and what it could not route or handle (kept for inspection, never dropped).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{keys, to_item, RepoError, Store, KIND};
use crate::domain::{Debtor, DebtorId, TenantId};
use crate::ports::table::{Condition, TableError, TTL};

/// Meta redelivers for 7 days; a month covers that with room.
pub const SEEN_FOR: SignedDuration = SignedDuration::from_hours(24 * 30);

/// A tenant's SMS number, as the provider names it in inbound messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsNumber {
    pub number: String,
    pub tenant: TenantId,
}

impl Store {
    /// `true` the first time a message id is seen on a channel for a tenant, `false` on every
    /// redelivery.
    pub async fn first_seen(
        &self,
        t: &TenantId,
        channel: &str,
        message_id: &str,
        now: Timestamp,
    ) -> Result<bool, RepoError> {
        let mut item = keys::seen_inbound(t, channel, message_id).into_item();
        item.insert(KIND.into(), "seen".into());
        let expires = now.saturating_add(SEEN_FOR).expect("in range").as_second();
        item.insert(TTL.into(), expires.into());
        match self.table.put(item, Some(Condition::NotExists)).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets that a message was seen: its processing failed midway and must run again.
    pub async fn forget_seen(
        &self,
        t: &TenantId,
        channel: &str,
        message_id: &str,
    ) -> Result<(), RepoError> {
        self.table
            .delete(&keys::seen_inbound(t, channel, message_id), None)
            .await?;
        Ok(())
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
