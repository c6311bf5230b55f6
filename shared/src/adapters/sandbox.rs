//! The sandbox `Channel`: accepts every message as a real provider would, without sending it
//! anywhere. The sender records outbound messages on the debtor's conversation, which is what the
//! local stack's `/sandbox` page shows as the debtor's phone. Tests can make it fail on purpose.

use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Mutex;

use crate::ports::{Channel, ChannelError, ChannelMessage};

#[derive(Default)]
pub struct SandboxChannel {
    sent: Mutex<Vec<(String, ChannelMessage)>>,
    failures: Mutex<VecDeque<ChannelError>>,
}

impl SandboxChannel {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next sends fail with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = ChannelError>) {
        self.failures.lock().expect("sandbox lock").extend(errors);
    }

    /// Everything accepted so far, with the message ids it was given.
    pub fn sent(&self) -> Vec<(String, ChannelMessage)> {
        self.sent.lock().expect("sandbox lock").clone()
    }
}

#[async_trait]
impl Channel for SandboxChannel {
    async fn send(&self, message: &ChannelMessage) -> Result<String, ChannelError> {
        if let Some(e) = self.failures.lock().expect("sandbox lock").pop_front() {
            return Err(e);
        }
        let id = format!("sandbox.{}", uuid::Uuid::now_v7().simple());
        self.sent
            .lock()
            .expect("sandbox lock")
            .push((id.clone(), message.clone()));
        Ok(id)
    }
}
