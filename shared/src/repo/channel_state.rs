//! What the sender must know about a channel besides the message: whether the tenant may send
//! on it at all (a breaker tripped by an account-wide error), whether WhatsApp's 24-hour
//! customer-service window is open for the debtor, and when the debtor was last sent to.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::{ChannelKind, DebtorId, TenantId};
use crate::ports::table::{Condition, TableError, Update};
use crate::ports::{Query, SkRange};

/// A channel stopped for a tenant, with why: only an operator resumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStop {
    pub tenant: TenantId,
    pub channel: ChannelKind,
    pub reason: String,
    #[serde(default)]
    pub code: Option<i64>,
    pub at: Timestamp,
}

impl Store {
    /// Trips the breaker. `Ok(true)` the first time; later trips keep the first reason.
    pub async fn stop_channel(&self, stop: &ChannelStop) -> Result<bool, RepoError> {
        let item = to_item(
            keys::channel_stop(&stop.tenant, stop.channel.as_str()),
            "channel_stop",
            stop,
        );
        match self.table.put(item, Some(Condition::NotExists)).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn resume_channel(
        &self,
        t: &TenantId,
        channel: ChannelKind,
    ) -> Result<(), RepoError> {
        self.table
            .delete(&keys::channel_stop(t, channel.as_str()), None)
            .await?;
        Ok(())
    }

    /// Every stopped channel of the tenant (one small query).
    pub async fn channel_stops(&self, t: &TenantId) -> Result<Vec<ChannelStop>, RepoError> {
        let q = Query::table(
            keys::channel_stops_pk(t),
            SkRange::BeginsWith("STOP#".into()),
        );
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Records an inbound message's time; the window only ever moves forward.
    pub async fn touch_inbound_window(
        &self,
        t: &TenantId,
        d: &DebtorId,
        channel: ChannelKind,
        at: Timestamp,
    ) -> Result<(), RepoError> {
        let at_ms = at.as_millisecond();
        let updates = vec![
            Update::set("last_inbound_ms", at_ms),
            Update::set("last_inbound_at", at.to_string()),
        ];
        let newer = Condition::Or(vec![
            Condition::AttrNotExists("last_inbound_ms".into()),
            Condition::lt("last_inbound_ms", at_ms),
        ]);
        match self
            .table
            .update(
                &keys::inbound_window(t, d, channel.as_str()),
                updates,
                Some(newer),
            )
            .await
        {
            Ok(_) | Err(TableError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// When the debtor last wrote on the channel, if ever.
    pub async fn last_inbound(
        &self,
        t: &TenantId,
        d: &DebtorId,
        channel: ChannelKind,
    ) -> Result<Option<Timestamp>, RepoError> {
        let item = self
            .table
            .get(&keys::inbound_window(t, d, channel.as_str()))
            .await?;
        Ok(item
            .and_then(|i| i.get("last_inbound_ms").and_then(|v| v.as_i64()))
            .and_then(|ms| Timestamp::from_millisecond(ms).ok()))
    }

    /// Takes the per-recipient gate: `true` when nothing was sent to the debtor on this channel
    /// within `gap` before `now` (and records `now`), `false` when it is too soon.
    pub async fn take_recipient_gate(
        &self,
        t: &TenantId,
        d: &DebtorId,
        channel: ChannelKind,
        now: Timestamp,
        gap: SignedDuration,
    ) -> Result<bool, RepoError> {
        let now_ms = now.as_millisecond();
        let free = Condition::Or(vec![
            Condition::AttrNotExists("last_sent_ms".into()),
            Condition::le("last_sent_ms", now_ms - gap.as_millis() as i64),
        ]);
        match self
            .table
            .update(
                &keys::recipient_gate(t, d, channel.as_str()),
                vec![Update::set("last_sent_ms", now_ms)],
                Some(free),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(TableError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
