//! `Queue`: at-least-once message buffer with visibility timeouts and dead letters, as SQS.

use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Unique within one `send_batch` call (SQS's batch entry id).
    pub id: String,
    pub body: String,
    /// Hidden from receivers for this long after sending (SQS `DelaySeconds`, at most
    /// `MAX_DELAY`): how backoff is done without holding a worker.
    pub delay: Duration,
}

impl Outgoing {
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay.min(MAX_DELAY);
        self
    }
}

/// SQS's longest per-message delay.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    /// Handle for `delete`; valid for this receipt only.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// SQS's limit on one `SendMessageBatch`.
pub const MAX_SEND_BATCH: usize = 10;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueueError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the queue failed: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends up to `MAX_SEND_BATCH` messages; all are stored or the call fails.
    async fn send_batch(&self, messages: Vec<Outgoing>) -> Result<(), QueueError>;

    /// Up to `max` messages (1 to 10), each hidden from other receivers for `visibility`. A
    /// message received more often than the queue's redrive limit moves to its dead-letter queue.
    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>, QueueError>;

    /// Removes a received message for good. Deleting twice is not an error.
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;
}

/// Sends any number of messages, in batches of ten. Entry ids only need to be unique within a
/// batch, so each batch's are renumbered.
pub async fn send_all(queue: &dyn Queue, messages: Vec<Outgoing>) -> Result<(), QueueError> {
    let mut messages = messages;
    while !messages.is_empty() {
        let rest = messages.split_off(messages.len().min(MAX_SEND_BATCH));
        let mut batch = std::mem::replace(&mut messages, rest);
        for (i, m) in batch.iter_mut().enumerate() {
            m.id = i.to_string();
        }
        queue.send_batch(batch).await?;
    }
    Ok(())
}

pub fn check_batch(messages: &[Outgoing]) -> Result<(), QueueError> {
    if messages.is_empty() || messages.len() > MAX_SEND_BATCH {
        return Err(QueueError::Invalid(format!(
            "a batch takes 1 to {MAX_SEND_BATCH} messages, not {}",
            messages.len()
        )));
    }
    let mut ids = std::collections::HashSet::new();
    for m in messages {
        if m.delay > MAX_DELAY {
            return Err(QueueError::Invalid(format!(
                "batch entry `{}` asks for a delay of {:?}; the most is {MAX_DELAY:?}",
                m.id, m.delay
            )));
        }
        if !ids.insert(&m.id) {
            return Err(QueueError::Invalid(format!(
                "batch entry id `{}` appears twice",
                m.id
            )));
        }
    }
    Ok(())
}
