//! What the sender must know about a channel besides the message: whether the tenant may send
//! on it at all (a breaker tripped by an account-wide error), whether WhatsApp's 24-hour
//! customer-service window is open for the debtor, and when the debtor was last sent to.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{from_item, keys, to_item, written, RepoError, Store};
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
    /// Its `ChannelStopped` went out. Written false with the stop and set once published, so
    /// a publish that failed is made by the next message that finds the stop (an outbox).
    #[serde(default = "announced_before")]
    pub announced: bool,
}

/// Stops recorded before the field existed were announced when they were made.
fn announced_before() -> bool {
    true
}

impl Store {
    /// Trips the breaker. `Ok(true)` the first time; later trips keep the first reason.
    pub async fn stop_channel(&self, stop: &ChannelStop) -> Result<bool, RepoError> {
        let item = to_item(
            keys::channel_stop(&stop.tenant, stop.channel.as_str()),
            "channel_stop",
            stop,
        );
        written(self.table.put(item, Some(Condition::NotExists)).await)
    }

    /// Its `ChannelStopped` went out.
    pub async fn stop_announced(&self, stop: &ChannelStop) -> Result<(), RepoError> {
        match self
            .table
            .update(
                &keys::channel_stop(&stop.tenant, stop.channel.as_str()),
                vec![Update::set("announced", true)],
                Some(Condition::eq("at", stop.at.to_string())),
            )
            .await
        {
            // Resumed (and maybe stopped again) meanwhile: nothing of this stop is left to mark.
            Ok(_) | Err(TableError::ConditionFailed) => Ok(()),
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
        written(
            self.table
                .update(
                    &keys::recipient_gate(t, d, channel.as_str()),
                    vec![Update::set("last_sent_ms", now_ms)],
                    Some(free),
                )
                .await,
        )
    }
}

/// One contact in the debtor's log: decided at `at` on `channel`, for an account's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedContact {
    pub at: Timestamp,
    pub channel: ChannelKind,
    pub account: crate::domain::AccountId,
    pub decision_id: String,
}

/// The longest window a cap may count over (`MAX_CAP_DAYS`), plus days for local dates and a
/// send logged later than decided: older entries are dropped on the next write. A year fits in
/// one item far below DynamoDB's 400 KB: a policy allows at most one contact a local day (the
/// presets' floor, which `policy_for` always composes in), so ~370 entries of ~100 bytes, 220
/// with a 128-character account id (~80 KB); ~10 KB at two contacts a week. (Capping `days`
/// at 35 instead would turn away policies validation has accepted until now.)
const LOG_KEEPS: SignedDuration =
    SignedDuration::from_hours(24 * (crate::compliance::policy::MAX_CAP_DAYS as i64 + 4));

impl Store {
    /// The debtor's contacts of the last year, on every account, except the one decision
    /// being re-checked (it must not count against itself).
    pub async fn contact_history(
        &self,
        t: &TenantId,
        d: &DebtorId,
        except: Option<(&crate::domain::AccountId, &str)>,
    ) -> Result<Vec<crate::compliance::PastContact>, RepoError> {
        Ok(self
            .contact_log(t, d)
            .await?
            .0
            .into_iter()
            .filter(|e| except.is_none_or(|(a, id)| !(e.account == *a && e.decision_id == id)))
            .map(|e| crate::compliance::PastContact {
                at: e.at,
                channel: e.channel,
            })
            .collect())
    }

    async fn contact_log(
        &self,
        t: &TenantId,
        d: &DebtorId,
    ) -> Result<(Vec<LoggedContact>, i64), RepoError> {
        let Some(item) = self.table.get(&keys::contact_log(t, d)).await? else {
            return Ok((Vec::new(), 0));
        };
        let revision = item.get("revision").and_then(|v| v.as_i64()).unwrap_or(0);
        let entries = item
            .get("entries")
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map_err(|e| RepoError::Corrupt(format!("contact log: {e}")))?
            .unwrap_or_default();
        Ok((entries, revision))
    }

    /// Adds a contact to the debtor's log (once per decision), dropping entries older than
    /// any cap looks at.
    pub async fn log_contact(
        &self,
        t: &TenantId,
        d: &DebtorId,
        entry: LoggedContact,
    ) -> Result<(), RepoError> {
        self.write_contact_log(t, d, entry, false).await
    }

    /// Logs a decision's contact as it goes out: when and on which channel it is sent, which
    /// can be later than it was decided (a window not yet open) and on another channel (a
    /// fallback). Written before the send, so a contact is never sent uncounted; the caps and
    /// gaps of later decisions count it from then.
    pub async fn log_sending(
        &self,
        t: &TenantId,
        d: &DebtorId,
        entry: LoggedContact,
    ) -> Result<(), RepoError> {
        self.write_contact_log(t, d, entry, true).await
    }

    async fn write_contact_log(
        &self,
        t: &TenantId,
        d: &DebtorId,
        entry: LoggedContact,
        replace: bool,
    ) -> Result<(), RepoError> {
        for _ in 0..5 {
            let (mut entries, revision) = self.contact_log(t, d).await?;
            let same = |e: &LoggedContact| {
                e.account == entry.account && e.decision_id == entry.decision_id
            };
            match entries.iter().position(same) {
                Some(i) if replace => {
                    if entries[i] == entry {
                        return Ok(());
                    }
                    entries.remove(i);
                }
                Some(_) => return Ok(()),
                None => {}
            }
            let horizon = entry.at.saturating_sub(LOG_KEEPS).expect("in range");
            entries.retain(|e| e.at > horizon);
            entries.push(entry.clone());
            let mut item = keys::contact_log(t, d).into_item();
            item.insert(super::KIND.into(), "contact_log".into());
            item.insert("revision".into(), (revision + 1).into());
            item.insert(
                "entries".into(),
                serde_json::to_value(&entries).expect("serializes"),
            );
            let condition = if revision == 0 {
                Condition::NotExists
            } else {
                Condition::eq("revision", revision)
            };
            match self.table.put(item, Some(condition)).await {
                Ok(()) => return Ok(()),
                Err(TableError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RepoError::Conflict(format!(
            "contact log of {d} keeps changing"
        )))
    }
}
