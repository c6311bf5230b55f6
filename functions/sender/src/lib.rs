//! The sender: takes one decided contact from the outbound queue and delivers it on its
//! channel, once. The queue message only names the decision; what is sent is read from the
//! committed attempt, and the decision is checked again right before sending, because a
//! payment or an opt-out may have arrived since.

use jiff::SignedDuration;
use std::sync::Arc;

use cobro::domain::{AttemptStatus, ContactAttempt, ConversationMessage, Direction};
use cobro::outbound::OutboundMessage;
use cobro::ports::{Channel, ChannelError, ChannelMessage, Clock};
use cobro::repo::{Claim, RepoError, Store};

/// How long a claim protects an attempt from other senders. Longer than any channel call.
pub const LEASE: SignedDuration = SignedDuration::from_mins(5);

pub struct Sender {
    pub store: Store,
    pub channel: Arc<dyn Channel>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        provider_message_id: String,
    },
    /// Not sent, and it never will be: why.
    Cancelled(String),
    /// The channel refused it for good.
    Failed(String),
    /// Already handled (a duplicate delivery) or held by another sender.
    Skipped(&'static str),
}

/// A failure that must leave the message on the queue, to be tried again (and, after the
/// queue's redrive limit, kept in its dead-letter queue).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("malformed queue message: {0}")]
    Malformed(String),
    #[error("temporary channel failure: {0}")]
    Retry(String),
    #[error(transparent)]
    Store(#[from] RepoError),
}

impl Sender {
    pub async fn handle(&self, body: &str) -> Result<Outcome, SendError> {
        let m: OutboundMessage =
            serde_json::from_str(body).map_err(|e| SendError::Malformed(e.to_string()))?;
        let now = self.clock.now();
        let attempt = match self
            .store
            .claim_attempt(&m.tenant, &m.account, &m.decision_id, now, LEASE)
            .await?
        {
            Claim::Claimed(a) => a,
            Claim::Finished(_) => return Ok(Outcome::Skipped("already handled")),
            Claim::Busy => return Ok(Outcome::Skipped("another sender holds it")),
            Claim::Missing => {
                tracing::warn!(decision = %m.decision_id, "queue message for a decision that was never committed");
                return Ok(Outcome::Skipped("no such decision"));
            }
        };
        if let Some(reason) = self.still_forbidden(&attempt).await? {
            self.store
                .finish_attempt(&attempt, AttemptStatus::Cancelled, None, Some(&reason))
                .await?;
            return Ok(Outcome::Cancelled(reason));
        }
        let message = ChannelMessage {
            channel: attempt.channel,
            to: attempt.to.clone(),
            language: attempt.language,
            template: attempt.template.clone(),
            text: attempt.text.clone(),
            correlation: format!(
                "{}|{}|{}",
                attempt.tenant, attempt.account, attempt.decision_id
            ),
        };
        match self.channel.send(&message).await {
            Ok(id) => {
                self.store
                    .finish_attempt(&attempt, AttemptStatus::Sent, Some(&id), None)
                    .await?;
                let conversation = ConversationMessage {
                    tenant: attempt.tenant.clone(),
                    debtor: attempt.debtor.clone(),
                    direction: Direction::Outbound,
                    channel: attempt.channel,
                    message_id: id.clone(),
                    at: self.clock.now(),
                    text: attempt.text.clone(),
                };
                self.store.record_message(&conversation).await?;
                tracing::info!(decision = %attempt.decision_id, to = %attempt.to.masked(), "sent");
                Ok(Outcome::Sent {
                    provider_message_id: id,
                })
            }
            Err(ChannelError::Retryable(e)) => {
                self.store.release_attempt(&attempt, &e).await?;
                Err(SendError::Retry(e))
            }
            Err(ChannelError::Permanent(e)) => {
                self.store
                    .finish_attempt(&attempt, AttemptStatus::Failed, None, Some(&e))
                    .await?;
                Ok(Outcome::Failed(e))
            }
        }
    }

    /// The last check before a message leaves: the account must still be owed and open, and
    /// the debtor must still consent to the channel.
    async fn still_forbidden(&self, a: &ContactAttempt) -> Result<Option<String>, RepoError> {
        let Some(account) = self.store.account(&a.tenant, &a.account).await? else {
            return Ok(Some("the account no longer exists".into()));
        };
        if !account.status.is_collectable() || account.balance_minor == 0 {
            return Ok(Some(format!(
                "the account is {} since the decision",
                serde_json::to_value(account.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )));
        }
        match self.store.debtor(&a.tenant, &a.debtor).await? {
            None => Ok(Some("the debtor no longer exists".into())),
            Some(d) if !d.has_consent(a.channel) => Ok(Some(format!(
                "the debtor withdrew consent for {}",
                a.channel.as_str()
            ))),
            Some(_) => Ok(None),
        }
    }
}
