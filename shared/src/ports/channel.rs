//! `Channel`: delivers one message to a debtor on WhatsApp, SMS or e-mail.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{ChannelKind, Language, Phone};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMessage {
    pub channel: ChannelKind,
    pub to: Phone,
    pub language: Language,
    /// The approved template's name (outside WhatsApp's 24-hour window a template is required).
    pub template: String,
    /// The text as the debtor reads it, rendered from the template.
    pub text: String,
    /// Echoed back in status webhooks, to tie statuses to this message.
    pub correlation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Worth retrying later (rate limit, timeout, 5xx).
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// Will fail again (invalid number, template rejected): do not retry.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait Channel: Send + Sync {
    /// Sends the message; returns the provider's message id.
    async fn send(&self, message: &ChannelMessage) -> Result<String, ChannelError>;
}
