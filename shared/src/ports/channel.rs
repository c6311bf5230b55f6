//! `Channel`: delivers one message to a debtor on WhatsApp, SMS or e-mail. Every adapter maps
//! its provider's errors onto the same few classes, so the sender handles them once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::domain::{ChannelKind, Language, Phone};

/// Who receives the message, with every address cobro knows for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    pub phone: Phone,
    #[serde(default)]
    pub email: Option<String>,
    /// WhatsApp's business-scoped user id, for users known by it.
    #[serde(default)]
    pub whatsapp_user_id: Option<String>,
}

/// Whom the message is sent as: the tenant's WhatsApp number, SMS origination identity or
/// e-mail address. Unset fields fall back to the adapter's configured default.
pub type SendAs = crate::domain::SenderIds;

/// An approved template and its body parameters, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub name: String,
    #[serde(default)]
    pub params: Vec<String>,
    /// The template carries the opt-out quick reply at index 0 (every collection reminder
    /// does; a receipt does not): its payload goes with the message.
    #[serde(default)]
    pub opt_out_button: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// The approved template (always allowed on WhatsApp, and required outside the 24-hour
    /// customer-service window).
    Template,
    /// Free text: on WhatsApp only inside the window.
    FreeForm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMessage {
    pub channel: ChannelKind,
    pub to: Recipient,
    pub send_as: SendAs,
    pub language: Language,
    pub template: TemplateRef,
    /// The text as the debtor reads it, rendered from the template; what SMS, e-mail and
    /// free-form WhatsApp messages carry.
    pub text: String,
    pub form: Form,
    /// E-mail subject line.
    #[serde(default)]
    pub subject: Option<String>,
    /// Echoed back in status webhooks, to tie statuses to this message.
    pub correlation: String,
    /// Choices to tap (a chatbot question): WhatsApp buttons or a list, free-form only. Other
    /// channels carry them as numbered lines in `text`.
    #[serde(default)]
    pub choices: Option<ChoiceSet>,
}

/// The choices of a question, with the label of the button that opens a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceSet {
    pub button: String,
    pub options: Vec<crate::chat::Choice>,
}

/// What kind of failure it was: decides what the sender does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Temporary (5xx, service unavailable, maintenance): retry with backoff and jitter.
    Transient,
    /// The request timed out: it may have been sent. No idempotency key exists, so at most one
    /// retry.
    Timeout,
    /// The sending number or account is over its rate: slow down, then retry.
    Throttled,
    /// Too many messages to this recipient lately: retry this recipient only, later.
    RecipientBusy,
    /// Free-form outside the 24-hour window: send the template instead.
    OutsideWindow,
    /// The recipient cannot be reached on this channel: try the next channel.
    Unreachable,
    /// The provider will not take this message (template missing or paused, bad parameter,
    /// marketing stopped by the user): failed, not retried, surfaced with the reason.
    Rejected,
    /// The whole account is unusable (token, permissions, policy block, payment): stop sending
    /// for the tenant and raise an alarm rather than burn the queue.
    StopTenant,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Timeout => "timeout",
            FailureClass::Throttled => "throttled",
            FailureClass::RecipientBusy => "recipient_busy",
            FailureClass::OutsideWindow => "outside_window",
            FailureClass::Unreachable => "unreachable",
            FailureClass::Rejected => "rejected",
            FailureClass::StopTenant => "stop_tenant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {reason}", class.as_str(), code.map(|c| c.to_string()).unwrap_or_else(|| "no code".into()))]
pub struct ChannelError {
    pub class: FailureClass,
    /// The provider's error code, when it gave one (Graph API `error.code`, …).
    pub code: Option<i64>,
    pub reason: String,
}

impl ChannelError {
    pub fn new(class: FailureClass, code: Option<i64>, reason: impl Into<String>) -> Self {
        Self {
            class,
            code,
            reason: reason.into(),
        }
    }

    pub fn transient(reason: impl Into<String>) -> Self {
        Self::new(FailureClass::Transient, None, reason)
    }

    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::new(FailureClass::Rejected, None, reason)
    }
}

#[async_trait]
pub trait Channel: Send + Sync {
    /// Sends the message; returns the provider's message id.
    async fn send(&self, message: &ChannelMessage) -> Result<String, ChannelError>;
}

/// The adapters a deployment has, by channel. A channel without an adapter is never chosen.
#[derive(Clone, Default)]
pub struct Channels {
    by_kind: Vec<(ChannelKind, Arc<dyn Channel>)>,
}

impl Channels {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, kind: ChannelKind, adapter: Arc<dyn Channel>) -> Self {
        self.by_kind.retain(|(k, _)| *k != kind);
        self.by_kind.push((kind, adapter));
        self
    }

    /// One adapter for every channel (the sandbox).
    pub fn all(adapter: Arc<dyn Channel>) -> Self {
        [ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email]
            .into_iter()
            .fold(Self::new(), |c, k| c.with(k, adapter.clone()))
    }

    pub fn get(&self, kind: ChannelKind) -> Option<&Arc<dyn Channel>> {
        self.by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| a)
    }

    pub fn kinds(&self) -> impl Iterator<Item = ChannelKind> + '_ {
        self.by_kind.iter().map(|(k, _)| *k)
    }
}
