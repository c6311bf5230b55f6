//! Contact attempts and conversations: what was said to whom, and what they answered.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{AccountId, ChannelKind, DebtorId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// One message in a debtor's conversation, either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationMessage {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub direction: Direction,
    pub channel: ChannelKind,
    /// The provider's message id (wamid for WhatsApp): deduplication key for inbound.
    pub message_id: String,
    pub at: Timestamp,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptStatus {
    /// Decided and in the outbox; the sender has not taken it yet.
    Queued,
    /// A sender holds it (until its lease runs out).
    Sending,
    Sent,
    /// The channel refused it for good.
    Failed,
    /// Not sent: something changed after the decision (paid, paused, opted out).
    Cancelled,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Queued => "queued",
            AttemptStatus::Sending => "sending",
            AttemptStatus::Sent => "sent",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Cancelled => "cancelled",
        }
    }
}

/// One outbound contact decided by the reminders engine: the unit of "never twice".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactAttempt {
    pub tenant: TenantId,
    pub account: AccountId,
    pub debtor: DebtorId,
    /// Deterministic: the same decision always gets the same id.
    pub decision_id: String,
    pub channel: ChannelKind,
    pub template: String,
    pub status: AttemptStatus,
    pub decided_at: Timestamp,
    /// The rendered message, so a re-send is the same message.
    pub text: String,
    pub to: super::Phone,
    pub language: super::Language,
    #[serde(default)]
    pub provider_message_id: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub claimed_at: Option<Timestamp>,
    /// The template's body parameters, in order: what a WhatsApp template carries.
    #[serde(default)]
    pub params: Vec<String>,
    /// Temporary failures so far; the sender gives up after a bound.
    #[serde(default)]
    pub tries: u32,
    /// What the provider reported since: `sent`, `delivered`, `read`, `failed`.
    #[serde(default)]
    pub delivery: Option<String>,
    /// The provider's error code of the last failure.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// A receipt for a payment, not a collection message: it goes even once the account is
    /// settled, and caps and gaps do not count it (the time rules, consent and opt-outs apply).
    #[serde(default)]
    pub receipt: bool,
    /// The template carries cobro's opt-out quick reply, as its step declared; `None` for an
    /// attempt decided before this was recorded (every reminder had it then, no receipt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_button: Option<bool>,
    /// The amount and date the message states (the account's reminder target when it was
    /// decided); `None` for receipts and attempts decided before this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<Stated>,
}

/// What a reminder tells the debtor they owe, and by when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stated {
    pub due: jiff::civil::Date,
    pub amount_minor: i64,
}

impl ContactAttempt {
    /// Whether the WhatsApp template goes with the opt-out button's payload.
    pub fn template_opt_out_button(&self) -> bool {
        self.opt_out_button.unwrap_or(!self.receipt)
    }
}
