//! The chatbot's records: the conversation's state (with the step in progress, an outbox so a
//! retried message re-applies the same step instead of running the engine twice), the hashed
//! identity answers, the replies waiting for the sender, and the agents' tray of handoffs.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{from_item, keys, to_item, written, RepoError, Store};
use crate::chat::{ChatState, Effect, IdentityFacts, Reply};
use crate::domain::{ChannelKind, DebtorId, Language, TenantId};
use crate::ports::table::{Condition, Query, SkRange, TableError, Update};
use crate::ports::Event;

/// A step the engine took for one inbound message, kept until its replies and effects are all
/// applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingStep {
    pub message_id: String,
    pub channel: ChannelKind,
    pub at: Timestamp,
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
    pub understood: String,
    /// The conversation's language as the engine chose it for this step (the debtor's own
    /// words can change it from the CRM's); what the replies added at apply (a payment link)
    /// and the sender's lines are written in. `None` in a step saved before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// The debtor had opted out of the channel: the engine's replies were replaced by the one
    /// notice of the opted-out period (or by nothing, once it was sent), and no effect adds a
    /// reply (no payment link is made).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opted_out: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRecord {
    pub state: ChatState,
    #[serde(default)]
    pub pending: Option<PendingStep>,
    /// An agent's hand-back to announce, saved with the change and cleared once published: a
    /// retry after a failed publish announces it (an outbox, like `pending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<Event>,
    /// The ids of the latest messages whose step was saved, oldest first (at most
    /// `STEPPED_KEPT`). A message whose step a later message finished (and cleared) may still
    /// come again, its try having failed after the save: it is not run through the engine a
    /// second time, on a conversation that has moved on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stepped: Vec<String>,
    /// The opt-outs the debtor was told of (at most one per channel, the latest): a debtor who
    /// writes while opted out gets one notice per opted-out period, not one per message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opt_out_noticed: Vec<OptOutNoticed>,
}

/// The opted-out period a notice was sent for: the opt-out's channel and the time of its
/// consent record (a later opt-out, after an opt-in, is a new period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutNoticed {
    pub channel: ChannelKind,
    pub opted_out_at: Timestamp,
}

/// How many message ids `ChatRecord::stepped` keeps: a failed message comes again within
/// minutes (5 receives, 180 s apart), while the debtor writes a few more at most.
pub const STEPPED_KEPT: usize = 10;

impl ChatRecord {
    /// Whether a step was saved for this message before.
    pub fn stepped_on(&self, message_id: &str) -> bool {
        self.stepped.iter().any(|id| id == message_id)
    }

    /// `stepped` with this message's id added, the oldest dropped past `STEPPED_KEPT`.
    pub fn stepped_with(&self, message_id: &str) -> Vec<String> {
        let mut ids = self.stepped.clone();
        ids.push(message_id.to_string());
        let excess = ids.len().saturating_sub(STEPPED_KEPT);
        ids.drain(..excess);
        ids
    }

    /// Whether the debtor was told of the opt-out on `channel` recorded at `opted_out_at`.
    pub fn opt_out_noticed(&self, channel: ChannelKind, opted_out_at: Timestamp) -> bool {
        self.opt_out_noticed
            .iter()
            .any(|n| n.channel == channel && n.opted_out_at == opted_out_at)
    }

    /// `opt_out_noticed` with this period recorded, replacing the channel's earlier one.
    pub fn noticed_with(
        &self,
        channel: ChannelKind,
        opted_out_at: Timestamp,
    ) -> Vec<OptOutNoticed> {
        let mut all: Vec<OptOutNoticed> = self
            .opt_out_noticed
            .iter()
            .filter(|n| n.channel != channel)
            .cloned()
            .collect();
        all.push(OptOutNoticed {
            channel,
            opted_out_at,
        });
        all
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyStatus {
    Queued,
    Sending,
    Sent,
    Cancelled,
    Failed,
}

impl ReplyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Queued => "queued",
            ReplyStatus::Sending => "sending",
            ReplyStatus::Sent => "sent",
            ReplyStatus::Cancelled => "cancelled",
            ReplyStatus::Failed => "failed",
        }
    }

    /// Sent, cancelled or failed: nothing more happens to it.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ReplyStatus::Sent | ReplyStatus::Cancelled | ReplyStatus::Failed
        )
    }
}

/// A message to a debtor inside a conversation: the bot's answer or an agent's. Not a
/// collection contact the reminders decided; the sender checks it against the reply rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatReply {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    /// Deterministic (`<inbound message id>#<n>`, `agent#<idempotency key>`): a redelivered
    /// message or a retried request writes the same reply, once.
    pub id: String,
    pub channel: ChannelKind,
    pub reply: Reply,
    /// `bot` or `agent:<name>`.
    pub author: String,
    /// When the debtor's message it answers arrived; `None`: an agent writing first.
    pub answers_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub status: ReplyStatus,
    #[serde(default)]
    pub provider_message_id: Option<String>,
    /// Why it was cancelled or failed.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub tries: u32,
    #[serde(default)]
    pub claimed_at: Option<Timestamp>,
    /// The message that confirms an opt-out, or the one notice of an opted-out period (the
    /// debtor wrote while opted out: they are told so, and how to opt in): no collection
    /// content, and the reply rules let it through after consent on the channel was withdrawn.
    #[serde(default)]
    pub confirms_opt_out: bool,
    /// Care for a debtor who spoke of self-harm (the crisis line; an agent's reply in the
    /// conversation handed off for it): it answers the debtor and safety outranks their
    /// opt-out, so the reply rules let it through whatever their consent on the channel says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub care: bool,
    /// The conversation's language (`None` on a reply saved before it was kept: the debtor's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
}

/// An open handoff in the agents' tray.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub reason: String,
    pub urgent: bool,
    pub opened_at: Timestamp,
    /// The agent who took it, once one did.
    #[serde(default)]
    pub agent: Option<String>,
}

/// What `open_handoff` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Opened it now.
    Now,
    /// It was opened before by the same request (same opening time and reason): a retry.
    Before,
    /// Another handoff was open for the debtor; it stays (made urgent when this one is).
    Another,
}

impl Store {
    /// The conversation's record and its version (0: none yet).
    pub async fn chat_record(
        &self,
        t: &TenantId,
        d: &DebtorId,
    ) -> Result<(ChatRecord, i64), RepoError> {
        match self.table.get(&keys::chat_state(t, d)).await? {
            None => Ok((ChatRecord::default(), 0)),
            Some(item) => {
                let version = item.get("revision").and_then(|v| v.as_i64()).unwrap_or(0);
                Ok((from_item(item)?, version))
            }
        }
    }

    /// Saves the record if nobody saved another since `version` was read.
    pub async fn save_chat_record(
        &self,
        t: &TenantId,
        d: &DebtorId,
        record: &ChatRecord,
        version: i64,
    ) -> Result<(), RepoError> {
        let mut item = to_item(keys::chat_state(t, d), "chat_state", record);
        item.insert("revision".into(), (version + 1).into());
        let condition = if version == 0 {
            Condition::NotExists
        } else {
            Condition::eq("revision", version)
        };
        match self.table.put(item, Some(condition)).await {
            Ok(()) => Ok(()),
            Err(TableError::ConditionFailed) => Err(RepoError::Conflict(format!(
                "the conversation of {d} changed"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn identity_facts(
        &self,
        t: &TenantId,
        d: &DebtorId,
    ) -> Result<Option<IdentityFacts>, RepoError> {
        self.load(&keys::identity(t, d)).await
    }

    pub async fn put_identity_facts(
        &self,
        t: &TenantId,
        d: &DebtorId,
        facts: &IdentityFacts,
    ) -> Result<(), RepoError> {
        let item = to_item(keys::identity(t, d), "identity", facts);
        Ok(self.table.put(item, None).await?)
    }

    /// Writes a reply once; `false` when it was already there (a retried step).
    pub async fn put_reply(&self, r: &ChatReply) -> Result<bool, RepoError> {
        let mut item = to_item(keys::reply(&r.tenant, &r.debtor, &r.id), "chat_reply", r);
        item.insert("status_code".into(), r.status.as_str().into());
        written(self.table.put(item, Some(Condition::NotExists)).await)
    }

    pub async fn reply(
        &self,
        t: &TenantId,
        d: &DebtorId,
        id: &str,
    ) -> Result<Option<ChatReply>, RepoError> {
        self.load(&keys::reply(t, d, id)).await
    }

    /// Takes a queued reply for sending (or one whose sender died: its claim is older than
    /// `lease`). `None`: finished already, or another sender holds it.
    pub async fn claim_reply(
        &self,
        t: &TenantId,
        d: &DebtorId,
        id: &str,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<Option<ChatReply>, RepoError> {
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
            Update::add("tries", 1),
        ];
        match self
            .table
            .update(&keys::reply(t, d, id), updates, Some(condition))
            .await
        {
            Ok(item) => Ok(Some(from_item(item)?)),
            Err(TableError::ConditionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Ends a reply: sent (with the provider's id), cancelled or failed (with the reason).
    pub async fn finish_reply(
        &self,
        r: &ChatReply,
        status: ReplyStatus,
        provider_message_id: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), RepoError> {
        let mut updates = vec![
            Update::set("status", status.as_str()),
            Update::set("status_code", status.as_str()),
        ];
        if let Some(id) = provider_message_id {
            updates.push(Update::set("provider_message_id", id));
        }
        if let Some(why) = reason {
            updates.push(Update::set("reason", why));
        }
        self.table
            .update(&keys::reply(&r.tenant, &r.debtor, &r.id), updates, None)
            .await?;
        Ok(())
    }

    /// Puts a claimed reply back to be sent later (a temporary failure).
    pub async fn release_reply(&self, r: &ChatReply, reason: &str) -> Result<(), RepoError> {
        let updates = vec![
            Update::set("status", "queued"),
            Update::set("status_code", "queued"),
            Update::set("reason", reason),
        ];
        self.table
            .update(&keys::reply(&r.tenant, &r.debtor, &r.id), updates, None)
            .await?;
        Ok(())
    }

    /// Puts the conversation in the agents' tray, unless it is there already: a second request
    /// keeps the first opening time, and an urgent one makes it urgent. Says whether it opened
    /// it now, had opened it before (the open one has this request's opening time and reason: a
    /// retry of the same step), or found another open.
    pub async fn open_handoff(&self, h: &Handoff) -> Result<Opened, RepoError> {
        let key = keys::handoff(&h.tenant, &h.debtor);
        let Some(existing) = self.table.get(&key).await? else {
            return match self
                .table
                .put(to_item(key, "handoff", h), Some(Condition::NotExists))
                .await
            {
                Ok(()) => Ok(Opened::Now),
                // Another message opened one meanwhile.
                Err(TableError::ConditionFailed) => Ok(Opened::Another),
                Err(e) => Err(e.into()),
            };
        };
        let mut open: Handoff = from_item(existing)?;
        let before = open.opened_at == h.opened_at && open.reason == h.reason;
        if h.urgent && !open.urgent {
            open.urgent = true;
            open.reason = h.reason.clone();
            self.table.put(to_item(key, "handoff", &open), None).await?;
        }
        Ok(if before {
            Opened::Before
        } else {
            Opened::Another
        })
    }

    pub async fn handoff(&self, t: &TenantId, d: &DebtorId) -> Result<Option<Handoff>, RepoError> {
        self.load(&keys::handoff(t, d)).await
    }

    pub async fn assign_handoff(
        &self,
        t: &TenantId,
        d: &DebtorId,
        agent: &str,
    ) -> Result<bool, RepoError> {
        written(
            self.table
                .update(
                    &keys::handoff(t, d),
                    vec![Update::set("agent", agent)],
                    Some(Condition::Exists),
                )
                .await,
        )
    }

    /// Takes the conversation off the tray; `false` when it was not there.
    pub async fn close_handoff(&self, t: &TenantId, d: &DebtorId) -> Result<bool, RepoError> {
        written(
            self.table
                .delete(&keys::handoff(t, d), Some(Condition::Exists))
                .await,
        )
    }

    /// The open handoffs, a page at a time (the cursor is the table's own).
    pub async fn open_handoffs(
        &self,
        t: &TenantId,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<(Vec<Handoff>, Option<String>), RepoError> {
        let q = Query::table(keys::handoffs_pk(t), SkRange::BeginsWith("DEBTOR#".into()))
            .limit(limit)
            .after(cursor);
        let page = self.table.query(q).await?;
        let items = page
            .items
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok((items, page.next))
    }
}
