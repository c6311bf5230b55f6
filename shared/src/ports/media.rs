//! `MediaSource`: fetches a medium a debtor sent (a payment receipt), by the provider's id.

use async_trait::async_trait;

use super::ChannelError;

#[derive(Debug, Clone, PartialEq)]
pub struct Medium {
    pub bytes: Vec<u8>,
    pub mime_type: String,
}

/// WhatsApp caps inbound media at 100 MB.
pub const MAX_MEDIUM_BYTES: usize = 100 * 1024 * 1024;

#[async_trait]
pub trait MediaSource: Send + Sync {
    /// `number`: the business number the medium was sent to (Meta wants it on the lookup).
    async fn fetch(&self, media_id: &str, number: &str) -> Result<Medium, ChannelError>;
}
