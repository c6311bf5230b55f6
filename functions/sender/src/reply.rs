//! Replies inside a conversation (the chatbot's, an agent's): not collection contacts the
//! reminders decided, so not bound by their hours and caps, but by the reply rules:
//!
//! - the debtor wrote first: a bot reply goes out within `FRESH_FOR` of their message, else it
//!   is cancelled (an answer hours late is a new contact, which only the reminders may make);
//! - on WhatsApp only inside the 24-hour customer-service window (free-form);
//! - a person's reply: within the day of the debtor's message on its channel, and, more than
//!   an hour after it, inside the debtor's contact hours and not on a holiday (it waits for
//!   them when they come before the day is out; `cobro::compliance::agent_replies`);
//! - never to someone who withdrew consent on the channel, except the message that confirms
//!   the withdrawal, the one notice of an opted-out period (the debtor wrote while opted out:
//!   they opted out, and how to opt in) and care for someone at risk (the crisis line).
//!
//! Every outcome is written on the reply with its reason. Replies to one message go out in
//! order: each one sent queues the next.

use jiff::SignedDuration;
use std::time::Duration;

use cobro::compliance::{agent_reply_time, debtor_policy, latest_consent, AgentReplyTime};
use cobro::domain::{ConversationMessage, Direction};
use cobro::outbound::{ReplyMessage, ReplyRef};
use cobro::ports::{
    ChannelMessage, ChoiceSet, FailureClass, Form, Outgoing, Recipient, TemplateRef,
};
use cobro::repo::{ChatReply, ReplyStatus};

use super::{Outcome, SendError, Sender, LEASE, MAX_TRIES, SERVICE_WINDOW};

/// How long after the debtor's message the bot's answer may still go out.
pub const FRESH_FOR: SignedDuration = SignedDuration::from_hours(1);

impl Sender {
    pub(crate) async fn reply(&self, r: ReplyRef) -> Result<Outcome, SendError> {
        let now = self.clock.now();
        let Some(reply) = self
            .store
            .claim_reply(&r.tenant, &r.debtor, &r.id, now, LEASE)
            .await?
        else {
            return Ok(match self.store.reply(&r.tenant, &r.debtor, &r.id).await? {
                None => Outcome::Skipped("no such reply"),
                Some(done) if done.status.is_finished() => {
                    // Finished by an earlier delivery whose queueing of the next reply may
                    // have failed after it (this message came back for that): queue it now.
                    // A next reply already queued is only queued twice; its claim sends it once.
                    self.queue_next(&done).await?;
                    Outcome::Skipped("already handled")
                }
                // Another sender holds it, and queues the next when it is done.
                Some(_) => Outcome::Skipped("already handled"),
            });
        };
        let outcome = self.reply_claimed(&reply).await?;
        if !matches!(outcome, Outcome::Deferred { .. }) {
            self.queue_next(&reply).await?;
        }
        Ok(outcome)
    }

    async fn reply_claimed(&self, reply: &ChatReply) -> Result<Outcome, SendError> {
        let (Some(tenant), Some(debtor)) = (
            self.store.tenant(&reply.tenant).await?,
            self.store.debtor(&reply.tenant, &reply.debtor).await?,
        ) else {
            return self
                .end(
                    reply,
                    ReplyStatus::Cancelled,
                    "the tenant or the debtor is gone",
                )
                .await;
        };
        let now = self.clock.now();
        if let Some(why) = self.reply_refused(reply, &debtor, now).await? {
            tracing::info!(reply = %reply.id, %why, "reply not sent");
            return self.end(reply, ReplyStatus::Cancelled, &why).await;
        }
        if reply.author != "bot" {
            match self.agent_reply_time(reply, &tenant, &debtor, now).await? {
                AgentReplyTime::Now => {}
                AgentReplyTime::WindowClosed { reason }
                | AgentReplyTime::OutsideHours { reason } => {
                    tracing::info!(reply = %reply.id, %reason, "reply not sent");
                    return self.end(reply, ReplyStatus::Cancelled, &reason).await;
                }
                AgentReplyTime::Wait { at, reason } => {
                    // SQS holds a message 15 minutes at most: it comes back and is asked again.
                    let delay = Duration::try_from(at.duration_since(now))
                        .unwrap_or(Duration::ZERO)
                        .clamp(Duration::from_secs(1), Duration::from_secs(900));
                    self.store.release_reply(reply, &reason).await?;
                    self.queue_reply(reply, delay).await?;
                    return Ok(Outcome::Deferred { delay, reason });
                }
            }
        }
        let Some(adapter) = self.channels.get(reply.channel) else {
            return self
                .end(reply, ReplyStatus::Failed, "no adapter for the channel")
                .await;
        };
        let (text, choices) = match &reply.reply {
            cobro::chat::Reply::Text { body } => (body.clone(), None),
            cobro::chat::Reply::Choices {
                body,
                button,
                options,
            } => match reply.channel {
                cobro::domain::ChannelKind::Whatsapp => (
                    body.clone(),
                    Some(ChoiceSet {
                        button: button.clone(),
                        options: options.clone(),
                    }),
                ),
                // No buttons elsewhere: numbered lines, answered with the number.
                _ => (reply.reply.plain(), None),
            },
        };
        // The conversation's language (the engine's choice from the debtor's words), so the
        // line below is in the language of the rest of the reply.
        let language = reply.language.unwrap_or(debtor.language);
        // As every SMS and e-mail cobro sends: the way out is written in it (US Reg F
        // §1006.6(e)), except in a message to a debtor who took it already (its confirmation,
        // the notice of the opted-out period, the crisis line).
        let opted_out = latest_consent(&debtor, reply.channel) == Some(false);
        let text = if reply.channel != cobro::domain::ChannelKind::Whatsapp
            && !reply.confirms_opt_out
            && !opted_out
        {
            format!(
                "{text} {}",
                cobro::compliance::keywords::opt_out_line(language)
            )
        } else {
            text
        };
        let message = ChannelMessage {
            channel: reply.channel,
            to: Recipient {
                phone: debtor.phone.clone(),
                email: debtor.email.clone(),
                whatsapp_user_id: None,
            },
            send_as: tenant.sender_ids.clone(),
            language,
            // Replies are free-form only (inside the window); the template is never used.
            template: TemplateRef {
                name: String::new(),
                params: vec![],
                opt_out_button: false,
            },
            text,
            form: Form::FreeForm,
            subject: (reply.channel == cobro::domain::ChannelKind::Email)
                .then(|| tenant.name.clone()),
            correlation: format!("{}|{}|reply|{}", reply.tenant, reply.debtor, reply.id),
            choices,
        };
        let number = format!("{}:reply", reply.channel.as_str());
        // As a reminder's: a slot the invocation has no time left for is a later one's.
        if let Err(turn) = self.pacer.ready_before(&number, super::send_by()).await {
            let delay = super::requeue_delay(turn, Duration::from_secs(1));
            let reason = "the invocation's time ran out waiting for the send rate";
            self.store.release_reply(reply, reason).await?;
            self.queue_reply(reply, delay).await?;
            return Ok(Outcome::Deferred {
                delay,
                reason: reason.into(),
            });
        }
        match adapter.send(&message).await {
            Ok(id) => {
                self.store
                    .finish_reply(reply, ReplyStatus::Sent, Some(&id), None)
                    .await?;
                self.store
                    .record_message(&ConversationMessage {
                        tenant: reply.tenant.clone(),
                        debtor: reply.debtor.clone(),
                        direction: Direction::Outbound,
                        channel: reply.channel,
                        message_id: id.clone(),
                        at: now,
                        text: reply.reply.plain(),
                    })
                    .await?;
                Ok(Outcome::Sent {
                    channel: reply.channel,
                    provider_message_id: id,
                })
            }
            Err(e) => {
                if e.class == FailureClass::StopTenant {
                    // The same alarm as for a reminder: the account itself is unusable.
                    self.stop_channel(&tenant, reply.channel, &e).await?;
                }
                let retry = matches!(
                    e.class,
                    FailureClass::Transient
                        | FailureClass::Timeout
                        | FailureClass::Throttled
                        | FailureClass::RecipientBusy
                ) && reply.tries < MAX_TRIES;
                if retry {
                    let delay = super::pacing::backoff(
                        reply.tries,
                        Duration::from_secs(2),
                        Duration::from_secs(60),
                    );
                    self.store.release_reply(reply, &e.to_string()).await?;
                    self.queue_reply(reply, delay).await?;
                    Ok(Outcome::Deferred {
                        delay,
                        reason: e.to_string(),
                    })
                } else {
                    self.end(reply, ReplyStatus::Failed, &e.to_string()).await
                }
            }
        }
    }

    /// Why the reply rules refuse it, if they do.
    async fn reply_refused(
        &self,
        reply: &ChatReply,
        debtor: &cobro::domain::Debtor,
        now: jiff::Timestamp,
    ) -> Result<Option<String>, SendError> {
        // Care for someone at risk (the crisis line) answers them whatever they opted out of:
        // safety outranks, and it is no collection contact.
        if latest_consent(debtor, reply.channel) == Some(false)
            && !reply.confirms_opt_out
            && !reply.care
        {
            return Ok(Some(format!(
                "opt_out: the debtor's latest consent record on {} refuses contact (an opt-out, or the CRM's granted: false)",
                reply.channel.as_str()
            )));
        }
        if reply.author == "bot" {
            if let Some(at) = reply.answers_at {
                if now.duration_since(at) > FRESH_FOR {
                    return Ok(Some(format!(
                        "stale: the debtor wrote at {at}, more than an hour ago"
                    )));
                }
            }
        }
        // A reply answers the debtor, which is why caps do not hold it: the debtor must have
        // written on that channel within the day. WhatsApp allows no more. A person's reply
        // is asked about the window and the hours by `agent_reply_time`.
        if reply.channel == cobro::domain::ChannelKind::Whatsapp && reply.author == "bot" {
            let last = self
                .store
                .last_inbound(&reply.tenant, &reply.debtor, reply.channel)
                .await?;
            if last.is_none_or(|t| now.duration_since(t) >= SERVICE_WINDOW) {
                return Ok(Some(format!(
                    "outside_window: no message from the debtor on {} in the last 24 hours",
                    reply.channel.as_str()
                )));
            }
        }
        Ok(None)
    }

    /// A person's reply: at once soon after the debtor wrote, else inside the debtor's
    /// contact hours, and never after the reply window (`cobro::compliance::agent_replies`).
    async fn agent_reply_time(
        &self,
        reply: &ChatReply,
        tenant: &cobro::domain::Tenant,
        debtor: &cobro::domain::Debtor,
        now: jiff::Timestamp,
    ) -> Result<AgentReplyTime, SendError> {
        let Some(last) = self
            .store
            .last_inbound(&reply.tenant, &reply.debtor, reply.channel)
            .await?
        else {
            return Ok(AgentReplyTime::WindowClosed {
                reason: format!(
                    "outside_window: no message from the debtor on {}",
                    reply.channel.as_str()
                ),
            });
        };
        let policy = debtor_policy(tenant, debtor).ok();
        Ok(agent_reply_time(
            policy.as_ref(),
            debtor,
            reply.channel,
            last,
            reply.care,
            now,
        ))
    }

    async fn end(
        &self,
        reply: &ChatReply,
        status: ReplyStatus,
        reason: &str,
    ) -> Result<Outcome, SendError> {
        self.store
            .finish_reply(reply, status, None, Some(reason))
            .await?;
        Ok(match status {
            ReplyStatus::Failed => Outcome::Failed(reason.to_string()),
            _ => Outcome::Cancelled(reason.to_string()),
        })
    }

    async fn queue_reply(&self, reply: &ChatReply, delay: Duration) -> Result<(), SendError> {
        let body = ReplyMessage {
            reply: ReplyRef {
                tenant: reply.tenant.clone(),
                debtor: reply.debtor.clone(),
                id: reply.id.clone(),
            },
        };
        let body = serde_json::to_string(&body).expect("serializes");
        self.queue
            .send_batch(vec![Outgoing::new("0", body).delayed(delay)])
            .await
            .map_err(|e| SendError::Queue(e.to_string()))
    }

    /// The reply after this one (`<message>#<n+1>`), if the step had one.
    async fn queue_next(&self, reply: &ChatReply) -> Result<(), SendError> {
        let Some((prefix, n)) = reply.id.rsplit_once('#') else {
            return Ok(());
        };
        let Ok(n) = n.parse::<u32>() else {
            return Ok(());
        };
        let next_id = format!("{prefix}#{}", n + 1);
        if let Some(next) = self
            .store
            .reply(&reply.tenant, &reply.debtor, &next_id)
            .await?
        {
            if next.status == ReplyStatus::Queued {
                self.queue_reply(&next, Duration::ZERO).await?;
            }
        }
        Ok(())
    }
}
