//! Conversation messages, both ways, in the debtor's partition.

use super::{from_item, keys, to_item, written, RepoError, Store};
use crate::domain::{ConversationMessage, DebtorId, TenantId};
use crate::ports::table::{Condition, Query, SkRange};

impl Store {
    /// Records a message once: a redelivered one maps onto the same key. Returns false for a
    /// duplicate.
    pub async fn record_message(&self, m: &ConversationMessage) -> Result<bool, RepoError> {
        let key = keys::message(&m.tenant, &m.debtor, m.at.as_millisecond(), &m.message_id);
        let item = to_item(key, "message", m);
        written(self.table.put(item, Some(Condition::NotExists)).await)
    }

    /// The latest `limit` messages, oldest first.
    pub async fn conversation(
        &self,
        t: &TenantId,
        d: &DebtorId,
        limit: u32,
    ) -> Result<Vec<ConversationMessage>, RepoError> {
        let q = Query::table(keys::debtor_pk(t, d), SkRange::BeginsWith("MSG#".into()))
            .backward()
            .limit(limit);
        let mut messages: Vec<ConversationMessage> = self
            .table
            .query(q)
            .await?
            .items
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// Keeps a message from a number no debtor of the tenant has, for inspection.
    pub async fn record_unmatched(
        &self,
        t: &TenantId,
        wa_id: &str,
        message_id: &str,
        raw: &serde_json::Value,
    ) -> Result<(), RepoError> {
        let mut item = keys::unmatched_message(t, wa_id, message_id).into_item();
        item.insert("kind".into(), "unmatched_message".into());
        item.insert("raw".into(), raw.clone());
        Ok(self.table.put(item, None).await?)
    }
}
