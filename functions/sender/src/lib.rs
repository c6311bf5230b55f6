//! The sender: takes decided contacts from the outbound queue and delivers each on its channel,
//! once. The queue message only names the decision; what is sent is read from the committed
//! attempt, and the decision is checked again right before sending, because a payment or an
//! opt-out may have arrived since.
//!
//! What a failure leads to depends on its class (docs/whatsapp-errors.md): a retry later (the
//! message is queued again with a delay, so no worker waits), the template instead of free
//! text, the next channel in the tenant's order, a failed attempt with its reason, or a stopped
//! channel for the whole tenant with an alarm event.

pub mod pacing;
mod reply;

use cobro::metrics;
use jiff::SignedDuration;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use cobro::compliance::{evaluate, Decision as ComplianceDecision, Facts};
use cobro::domain::{
    AttemptStatus, ChannelKind, ContactAttempt, ConversationMessage, Debtor, Direction, Language,
    Tenant,
};
use cobro::events::{ChannelStopped, DomainEvent};
use cobro::outbound::OutboundMessage;
use cobro::ports::{
    Bus, ChannelError, ChannelMessage, Channels, Clock, FailureClass, Form, Outgoing, Queue,
    Recipient, TemplateRef,
};
use cobro::repo::{ChannelStop, Claim, RepoError, Store};

pub use pacing::Pacer;

/// How long a claim protects an attempt from other senders. Longer than any channel call.
pub const LEASE: SignedDuration = SignedDuration::from_mins(5);
/// Transient failures tolerated before an attempt is given up as failed.
pub const MAX_TRIES: u32 = 6;
/// WhatsApp's customer-service window, less a margin: Meta admits rare failures at its edge.
pub const SERVICE_WINDOW: SignedDuration = SignedDuration::from_secs(24 * 3600 - 10 * 60);
/// How long a message waits when every channel it could use is stopped for the tenant.
pub const PARKED_FOR: SignedDuration = SignedDuration::from_hours(1);
/// How long a template WhatsApp refused for a fault of its own is not tried again for the
/// tenant: its messages go where a refusal sends them, without a call to Meta that would
/// only be refused again. Then it is tried again, so a template fixed at Meta works within
/// this time (at once if the tenant replaces its strategies).
pub const REFUSED_TEMPLATE_HELD_FOR: SignedDuration = SignedDuration::from_hours(1);

/// Why a decision that does not allow a contact now holds it back, and until when, if a rule
/// says.
fn held_back(decision: ComplianceDecision) -> (String, Option<jiff::Timestamp>) {
    match decision {
        ComplianceDecision::Contact { at, waited_for, .. } => (
            waited_for
                .map(|v| v.to_string())
                .unwrap_or_else(|| "not yet allowed".into()),
            Some(at),
        ),
        ComplianceDecision::Blocked {
            verdict,
            next_possible,
            ..
        } => (verdict.to_string(), next_possible),
    }
}

/// What the compliance engine allows an attempt right before it is sent, channel by channel.
struct Allowed {
    /// The channels it may go out on now.
    now: Vec<ChannelKind>,
    /// The others, with the rule that holds each back and the instant it allows, if it says
    /// (`None`: not until something changes, such as a consent given).
    held: Vec<(ChannelKind, String, Option<jiff::Timestamp>)>,
}

impl Allowed {
    fn per_channel(policy: &cobro::compliance::Policy, facts: &Facts<'_>) -> Self {
        let mut allowed = Allowed {
            now: Vec::new(),
            held: Vec::new(),
        };
        for channel in facts.channels {
            let one = Facts {
                channels: std::slice::from_ref(channel),
                ..*facts
            };
            let (why, at) = match evaluate(policy, &one) {
                ComplianceDecision::Contact { at, .. } if at <= facts.now => {
                    allowed.now.push(*channel);
                    continue;
                }
                held => held_back(held),
            };
            allowed.held.push((*channel, why, at));
        }
        allowed
    }

    /// Why `channel` may not be used now and when it may, if a rule says; `None` when it
    /// may be used now.
    fn refused(&self, channel: ChannelKind) -> Option<(&str, Option<jiff::Timestamp>)> {
        if self.now.contains(&channel) {
            return None;
        }
        Some(
            self.held
                .iter()
                .find(|(c, _, _)| *c == channel)
                .map(|(_, why, at)| (why.as_str(), *at))
                .unwrap_or(("not a channel the engine was asked about", None)),
        )
    }
}

pub struct Sender {
    pub store: Store,
    pub channels: Channels,
    pub clock: Arc<dyn Clock>,
    /// The outbound queue itself: retries go back on it with a delay.
    pub queue: Arc<dyn Queue>,
    /// Where a message that can never be read goes at once, wrapped with the reason.
    pub dead_letters: Option<Arc<dyn Queue>>,
    /// Alarm events (a channel stopped for a tenant) and delivery events.
    pub bus: Arc<dyn Bus>,
    pub pacer: Pacer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        channel: ChannelKind,
        provider_message_id: String,
    },
    /// Not sent, and it never will be: why.
    Cancelled(String),
    /// The channel refused it for good, or it failed too often.
    Failed(String),
    /// Queued again, to be tried after `delay`.
    Deferred { delay: Duration, reason: String },
    /// Every channel it could use is stopped for the tenant: back on the outbox, for later.
    Parked(String),
    /// A compliance rule does not allow it now (the window closed while it waited): back on
    /// the outbox for when it does.
    Rescheduled { at: jiff::Timestamp, reason: String },
    /// Already handled (a duplicate delivery) or held by another sender.
    Skipped(&'static str),
    /// Unreadable: moved to the dead-letter queue with the reason.
    DeadLettered(String),
}

/// A failure that must leave the queue message where it is, to be received again (and, after
/// the queue's redrive limit, kept in its dead-letter queue).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("malformed queue message: {0}")]
    Malformed(String),
    #[error("the queue failed: {0}")]
    Queue(String),
    #[error("the event bus failed: {0}")]
    Bus(String),
    #[error(transparent)]
    Store(#[from] RepoError),
}

fn subject(language: Language) -> &'static str {
    match language {
        Language::Es => "Recordatorio de pago",
        Language::Pt => "Lembrete de pagamento",
        Language::En => "Payment reminder",
    }
}

impl Sender {
    /// One queue message. `Ok` means the queue message is done with (whatever happened to the
    /// contact); `Err` leaves it on the queue.
    pub async fn handle(&self, body: &str) -> Result<Outcome, SendError> {
        if let Ok(r) = serde_json::from_str::<cobro::outbound::ReplyMessage>(body) {
            return self.reply(r.reply).await;
        }
        let m: OutboundMessage = match serde_json::from_str(body) {
            Ok(m) => m,
            Err(e) => return self.dead_letter(body, &e.to_string()).await,
        };
        cobro::logs::record_tenant(&m.tenant);
        let now = self.clock.now();
        let attempt = match self
            .store
            .claim_attempt(&m.tenant, &m.account, &m.decision_id, now, LEASE)
            .await?
        {
            Claim::Claimed(a) => a,
            Claim::Finished(_) => return Ok(Outcome::Skipped("already handled")),
            Claim::Busy => return Ok(Outcome::Skipped("another sender holds it")),
            Claim::Handed(a) => {
                // No idempotency key at the providers: sending again could reach the debtor
                // twice, which is worse than one reminder lost (as for a second timeout).
                let reason = "the sender that held it stopped after handing it to the provider; \
                              not sent again, it may have been delivered";
                self.store
                    .finish_attempt(&a, AttemptStatus::Failed, None, Some(reason))
                    .await?;
                return Ok(Outcome::Failed(reason.into()));
            }
            Claim::Missing => {
                tracing::warn!(decision = %m.decision_id, "queue message for a decision that was never committed");
                return Ok(Outcome::Skipped("no such decision"));
            }
        };
        let (tenant, debtor) = match self.still_allowed(&attempt).await? {
            Ok(found) => found,
            Err(reason) => return self.cancel(&attempt, reason).await,
        };
        let allowed = match self.compliance_recheck(&attempt, &tenant, &debtor).await? {
            Ok(allowed) => allowed,
            Err(outcome) => return Ok(outcome),
        };
        self.deliver(&attempt, &tenant, &debtor, &allowed).await
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<Outcome, SendError> {
        let Some(dlq) = &self.dead_letters else {
            // No dead-letter queue configured: the queue's own redrive takes it there.
            return Err(SendError::Malformed(reason.to_string()));
        };
        let wrapped = serde_json::json!({ "reason": reason, "body": body }).to_string();
        dlq.send_batch(vec![Outgoing::new("0", wrapped)])
            .await
            .map_err(|e| SendError::Queue(e.to_string()))?;
        tracing::warn!(
            reason,
            "unreadable queue message moved to the dead-letter queue"
        );
        Ok(Outcome::DeadLettered(reason.to_string()))
    }

    async fn cancel(&self, attempt: &ContactAttempt, reason: String) -> Result<Outcome, SendError> {
        self.store
            .finish_attempt(attempt, AttemptStatus::Cancelled, None, Some(&reason))
            .await?;
        self.record(attempt, "cancel", &reason, None).await?;
        Ok(Outcome::Cancelled(reason))
    }

    /// The sender's own decision on a reminder (held or cancelled at the last check), on the
    /// account's record next to the reminders' decisions, so "why was this person not
    /// contacted?" finds it there too.
    async fn record(
        &self,
        a: &ContactAttempt,
        outcome: &str,
        reason: &str,
        next: Option<jiff::Timestamp>,
    ) -> Result<(), SendError> {
        let reason = format!("{reason} (the sender, before sending {})", a.decision_id);
        self.write_decision(a, outcome, reason, next).await
    }

    /// What the sender did with a reminder that an operator should find on the account's
    /// record (it went on another channel than the decided one, and why).
    async fn note(
        &self,
        a: &ContactAttempt,
        outcome: &str,
        reason: String,
    ) -> Result<(), SendError> {
        let reason = format!("{reason} (the sender, for {})", a.decision_id);
        self.write_decision(a, outcome, reason, None).await
    }

    /// A receipt is no collection contact: nothing of it goes on the account's record.
    async fn write_decision(
        &self,
        a: &ContactAttempt,
        outcome: &str,
        reason: String,
        next: Option<jiff::Timestamp>,
    ) -> Result<(), SendError> {
        if a.receipt {
            return Ok(());
        }
        let decision = cobro::repo::Decision {
            at: self.clock.now(),
            outcome: outcome.into(),
            reason,
            decision_id: Some(a.decision_id.clone()),
            next_action_at: next,
        };
        Ok(self
            .store
            .record_decision(&a.tenant, &a.account, &decision)
            .await?)
    }

    /// The last check before a message leaves: the account must still be owed and open, and
    /// the debtor and tenant must still exist. Consent is checked per channel below.
    async fn still_allowed(
        &self,
        a: &ContactAttempt,
    ) -> Result<Result<(Tenant, Debtor), String>, RepoError> {
        let Some(account) = self.store.account(&a.tenant, &a.account).await? else {
            return Ok(Err("the account no longer exists".into()));
        };
        if !a.receipt && (!account.status.is_collectable() || account.balance_minor == 0) {
            return Ok(Err(format!(
                "the account is {} since the decision",
                serde_json::to_value(account.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )));
        }
        let Some(tenant) = self.store.tenant(&a.tenant).await? else {
            return Ok(Err("the tenant no longer exists".into()));
        };
        let Some(debtor) = self.store.debtor(&a.tenant, &a.debtor).await? else {
            return Ok(Err("the debtor no longer exists".into()));
        };
        // A reminder that waited (a closed window, the pacer) must not state a debt that a
        // payment, a plan or a promise has changed since: it is cancelled, and the account's
        // next decision speaks of what is owed then.
        if let Some(stated) = a.states {
            // As of the decision's day: only a change to the account cancels, not an
            // instalment falling due while the message waited.
            let then = a.decided_at.to_zoned(debtor.time_zone.tz()).date();
            let (due, amount_minor) = account.reminder_target(then);
            if (due, amount_minor) != (stated.due, stated.amount_minor) {
                let money = |m| cobro::domain::Money::new(m, account.currency).display();
                return Ok(Err(format!(
                    "what is owed changed since the decision: it stated {} by {}, now {} by {due}",
                    money(stated.amount_minor),
                    stated.due,
                    money(amount_minor)
                )));
            }
        }
        Ok(Ok((tenant, debtor)))
    }

    /// The compliance engine again, right before sending, about the channels the message could
    /// go out on: a hold, an opt-out, a missing or withdrawn consent since the decision, or any
    /// rule that names no instant it allows, cancels it; a rule that only says "not now" (the
    /// window closed while the message waited, a holiday) puts it back on the outbox for the
    /// instant it names. Otherwise: the channels it may go out on now, each asked of the engine
    /// on its own, since a rule can allow one channel and not another (Colombia's one channel a
    /// week).
    async fn compliance_recheck(
        &self,
        a: &ContactAttempt,
        tenant: &Tenant,
        debtor: &Debtor,
    ) -> Result<Result<Allowed, Outcome>, SendError> {
        let Some(account) = self.store.account(&a.tenant, &a.account).await? else {
            return Ok(Err(self
                .cancel(a, "the account no longer exists".into())
                .await?));
        };
        let now = self.clock.now();
        let policy = match cobro::compliance::debtor_policy(tenant, debtor) {
            Ok(p) => p,
            // No preset for the tenant's or the debtor's jurisdiction (the phone changed since
            // the decision, or a preset went away): no send.
            Err(none) => return self.cancel(a, none.to_string()).await.map(Err),
        };
        // A receipt is not a collection contact: caps and gaps do not count it.
        let history = if a.receipt {
            Vec::new()
        } else {
            self.store
                .contact_history(&a.tenant, &a.debtor, Some((&a.account, &a.decision_id)))
                .await?
        };
        // Only the channels the sender could use: one the debtor has no address on, or the
        // deployment no adapter for, must not make the whole decision (an e-mail allowed now
        // would let through a message no channel it can go on allows).
        let channels = self.reachable(a, tenant, debtor);
        if channels.is_empty() {
            let reason = format!(
                "[{}] the debtor has no address on, or the deployment no adapter for, any channel the tenant may use ({})",
                cobro::compliance::rules::NO_CHANNEL,
                tenant
                    .usable_channels()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return self.cancel(a, reason).await.map(Err);
        }
        let holds = account.holds.with(&debtor.holds, now);
        let facts = Facts {
            debtor,
            holds: &holds,
            history: &history,
            channels: &channels,
            now,
        };
        let decision = evaluate(&policy, &facts);
        match &decision {
            // Allowed now, and only now: the engine says `at == now` when it is, so any slack
            // here would only let a message out before its window opens.
            ComplianceDecision::Contact { at, .. } if *at <= now => {
                return Ok(Ok(Allowed::per_channel(&policy, &facts)));
            }
            // A stop, a pause (a reminder weeks late would be stale), an opt-out, a missing
            // consent, or any rule that names no instant it allows: not this message. The
            // reminders look at the account again.
            ComplianceDecision::Blocked {
                verdict,
                next_possible,
                ..
            } if next_possible.is_none()
                || verdict.rule.starts_with("stop:")
                || ["pause", "opt_out", "consent"].contains(&verdict.rule.as_str()) =>
            {
                return self.cancel(a, verdict.to_string()).await.map(Err);
            }
            _ => {}
        }
        match held_back(decision) {
            (reason, Some(later)) => self.reschedule(a, later, reason).await.map(Err),
            (reason, None) => self.cancel(a, reason).await.map(Err),
        }
    }

    /// Back on the outbox for when a rule allows it. Only a rule that says when: one that
    /// does not would keep the message coming back every day for nothing.
    async fn reschedule(
        &self,
        a: &ContactAttempt,
        at: jiff::Timestamp,
        reason: String,
    ) -> Result<Outcome, SendError> {
        self.store.release_attempt(a, &reason, None, false).await?;
        self.store.retry_outbox_at(a, at).await?;
        self.record(a, "defer", &reason, Some(at)).await?;
        Ok(Outcome::Rescheduled { at, reason })
    }

    /// The decided channel first, then the tenant's fallback order after it; each only when
    /// the deployment has an adapter, the tenant may use it, the debtor has an address on it
    /// and has not opted out of it. Consent where the policy requires one is the policy's
    /// (`Allowed`), as when the reminders decided: a stricter rule here cancelled contacts
    /// the decision had allowed, every step.
    fn candidates(&self, a: &ContactAttempt, tenant: &Tenant, debtor: &Debtor) -> Vec<ChannelKind> {
        self.reachable(a, tenant, debtor)
            .into_iter()
            .filter(|c| cobro::compliance::latest_consent(debtor, *c) != Some(false))
            .collect()
    }

    /// The channels a message could go out on, opted out of or not: the decided one, then the
    /// tenant's order after it, each with an adapter and an address of the debtor's. What the
    /// engine is asked about, so that it decides on these only.
    fn reachable(&self, a: &ContactAttempt, tenant: &Tenant, debtor: &Debtor) -> Vec<ChannelKind> {
        let usable: Vec<ChannelKind> = tenant.usable_channels().collect();
        let start = usable.iter().position(|c| *c == a.channel);
        let order: Vec<ChannelKind> = match start {
            Some(i) => usable[i..].to_vec(),
            // The decided channel is no longer usable by the tenant: only what is.
            None => usable,
        };
        order
            .into_iter()
            .filter(|c| self.channels.get(*c).is_some())
            .filter(|c| debtor.reachable_on(*c))
            .collect()
    }

    async fn deliver(
        &self,
        attempt: &ContactAttempt,
        tenant: &Tenant,
        debtor: &Debtor,
        allowed: &Allowed,
    ) -> Result<Outcome, SendError> {
        let candidates = self.candidates(attempt, tenant, debtor);
        if candidates.is_empty() {
            return self
                .cancel(
                    attempt,
                    format!(
                        "[{}] no channel left: the debtor opted out of every one the sender could use ({})",
                        cobro::compliance::rules::OPT_OUT,
                        self.reachable(attempt, tenant, debtor)
                            .into_iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .await;
        }
        let stops = self.store.channel_stops(&tenant.id).await?;
        // A stop whose alarm failed to go out when it was made goes out now.
        for stop in stops.iter().filter(|s| !s.announced) {
            self.announce_stop(stop).await?;
        }
        let mut unreachable = Vec::new();
        let mut stopped = Vec::new();
        // Templates WhatsApp refused for a fault of their own: the next channel is tried, and
        // the account's record says why the message went there.
        let mut template = Vec::new();
        // Held back until an instant a rule names, and refused with none (a consent missing):
        // only the first keeps the message for later. Each `[rule] reason (on channel)`, so
        // the account's record reads the rule of the first.
        let mut not_now = Vec::new();
        let mut refused = Vec::new();
        let mut later: Option<jiff::Timestamp> = None;
        for channel in candidates {
            match allowed.refused(channel) {
                Some((why, Some(at))) => {
                    not_now.push(format!("{why} (on {})", channel.as_str()));
                    later = Some(later.map_or(at, |l| l.min(at)));
                    continue;
                }
                Some((why, None)) => {
                    refused.push(format!("{why} (on {})", channel.as_str()));
                    continue;
                }
                None => {}
            }
            if let Some(stop) = stops.iter().find(|s| s.channel == channel) {
                stopped.push(format!("{} is stopped: {}", channel.as_str(), stop.reason));
                continue;
            }
            match self.try_channel(attempt, tenant, debtor, channel).await? {
                Step::Done(outcome) => {
                    if let (Outcome::Sent { channel, .. }, false) = (&outcome, template.is_empty())
                    {
                        let reason = format!(
                            "[template] {}; sent on {} instead",
                            template.join("; "),
                            channel.as_str()
                        );
                        self.note(attempt, "fallback", reason).await?;
                    }
                    return Ok(outcome);
                }
                Step::Unreachable(why) => unreachable.push(format!("{}: {why}", channel.as_str())),
                Step::Stopped(why) => stopped.push(format!("{}: {why}", channel.as_str())),
                Step::TemplateRefused(why) => template.push(format!("{}: {why}", channel.as_str())),
            }
        }
        if !stopped.is_empty() {
            // Not the debtor's doing: keep the attempt for when the channel is resumed.
            let reason = stopped.join("; ");
            self.store
                .release_attempt(attempt, &reason, None, false)
                .await?;
            let later = self
                .clock
                .now()
                .saturating_add(PARKED_FOR)
                .expect("in range");
            self.store.retry_outbox_at(attempt, later).await?;
            return Ok(Outcome::Parked(reason));
        }
        let mut reason: Vec<String> = not_now.into_iter().chain(refused).collect();
        if let Some(at) = later {
            // A channel it may not use now but may later, and none it may use took it: for
            // when one allows (the earliest a rule names; a refusal that names none is only
            // said).
            if !unreachable.is_empty() {
                reason.push(format!("unreachable: {}", unreachable.join("; ")));
            }
            reason.extend(template);
            return self.reschedule(attempt, at, reason.join("; ")).await;
        }
        if unreachable.is_empty() && template.is_empty() {
            // Every channel refused by a rule that allows it at no known instant (a consent
            // the policy requires and the debtor never gave): kept for "later", it would come
            // back every day for nothing.
            return self.cancel(attempt, reason.join("; ")).await;
        }
        let mut failed = if template.is_empty() {
            format!("unreachable on every channel ({})", unreachable.join("; "))
        } else {
            let tried: Vec<String> = template.into_iter().chain(unreachable).collect();
            format!("no channel could carry it ({})", tried.join("; "))
        };
        if !reason.is_empty() {
            failed = format!("{failed}; refused: {}", reason.join("; "));
        }
        let reason = failed;
        self.store
            .finish_attempt(attempt, AttemptStatus::Failed, None, Some(&reason))
            .await?;
        Ok(Outcome::Failed(reason))
    }

    fn message(
        &self,
        a: &ContactAttempt,
        tenant: &Tenant,
        debtor: &Debtor,
        channel: ChannelKind,
        form: Form,
    ) -> ChannelMessage {
        // Every message says how to stop them: a WhatsApp template by its opt-out button (if
        // registered with one), anything else (SMS, e-mail, a free-form WhatsApp message) in a
        // last line, a receipt too (Reg F §1006.6(e) asks it of every text a collector sends).
        let text = match (channel, form) {
            (ChannelKind::Whatsapp, Form::Template) => a.text.clone(),
            _ => format!(
                "{} {}",
                a.text,
                cobro::compliance::keywords::opt_out_line(a.language)
            ),
        };
        ChannelMessage {
            channel,
            to: Recipient {
                phone: debtor.phone.clone(),
                email: debtor.email.clone(),
                whatsapp_user_id: None,
            },
            send_as: tenant.sender_ids.clone(),
            language: a.language,
            template: TemplateRef {
                name: a.template.clone(),
                params: a.params.clone(),
                opt_out_button: a.template_opt_out_button(),
            },
            text,
            form,
            subject: (channel == ChannelKind::Email).then(|| subject(a.language).to_string()),
            correlation: format!("{}|{}|{}", a.tenant, a.account, a.decision_id),
            choices: None,
        }
    }

    /// Free text inside WhatsApp's customer-service window, the template outside it. SMS and
    /// e-mail have no templates at the provider: always the text.
    async fn form_for(&self, a: &ContactAttempt, channel: ChannelKind) -> Result<Form, RepoError> {
        if channel != ChannelKind::Whatsapp {
            return Ok(Form::FreeForm);
        }
        let last = self
            .store
            .last_inbound(&a.tenant, &a.debtor, channel)
            .await?;
        let open = last.is_some_and(|t| self.clock.now().duration_since(t) < SERVICE_WINDOW);
        Ok(if open { Form::FreeForm } else { Form::Template })
    }

    fn sending_number(&self, tenant: &Tenant, channel: ChannelKind) -> String {
        let id = match channel {
            ChannelKind::Whatsapp => tenant.sender_ids.whatsapp_phone_number_id.as_deref(),
            ChannelKind::Sms => tenant.sender_ids.sms_origination.as_deref(),
            ChannelKind::Email => tenant.sender_ids.email_from.as_deref(),
        };
        format!("{}:{}", channel.as_str(), id.unwrap_or(tenant.id.as_str()))
    }

    async fn try_channel(
        &self,
        a: &ContactAttempt,
        tenant: &Tenant,
        debtor: &Debtor,
        channel: ChannelKind,
    ) -> Result<Step, SendError> {
        // Before the send slot, the debtor's gate and the contact log: a template refused
        // lately goes nowhere, so it takes none of them.
        let mut form = self.form_for(a, channel).await?;
        if let Some(why) = self.refused_lately(a, form).await {
            return Ok(Step::TemplateRefused(why));
        }
        let number = self.sending_number(tenant, channel);
        if let Some(left) = self.pacer.paused_for(&number) {
            return self
                .defer(
                    a,
                    left,
                    "the sending number is throttled".into(),
                    None,
                    false,
                )
                .await
                .map(Step::Done);
        }
        // The number's send slot before anything that says the message goes out now (the
        // debtor's gate, the contact log): a message the invocation has no time for leaves
        // neither behind.
        if let Err(turn) = self.pacer.ready_before(&number, send_by()).await {
            return self.out_of_time(a, turn).await.map(Step::Done);
        }
        let now = self.clock.now();
        let gap = SignedDuration::try_from(pacing::RECIPIENT_GAP).expect("small");
        if !self
            .store
            .take_recipient_gate(&a.tenant, &a.debtor, channel, now, gap)
            .await?
        {
            return self
                .defer(
                    a,
                    pacing::RECIPIENT_GAP,
                    "sent to this debtor less than 6 s ago".into(),
                    None,
                    false,
                )
                .await
                .map(Step::Done);
        }
        if !a.receipt {
            // Counted from when and where it goes out, before it does: never sent uncounted.
            let entry = cobro::repo::LoggedContact {
                at: now,
                channel,
                account: a.account.clone(),
                decision_id: a.decision_id.clone(),
            };
            self.store.log_sending(&a.tenant, &a.debtor, entry).await?;
        }
        let adapter = self
            .channels
            .get(channel)
            .expect("candidates have adapters");
        // The slot taken above is the first send's; the template after a closed window needs
        // another.
        let mut slot = true;
        loop {
            let message = self.message(a, tenant, debtor, channel, form);
            if !std::mem::take(&mut slot) {
                if let Err(turn) = self.pacer.ready_before(&number, send_by()).await {
                    // The gate is this message's now and the log names it: the delay outlasts
                    // the gate, and the entry is replaced when it goes out.
                    return self.out_of_time(a, turn).await.map(Step::Done);
                }
            }
            let tried_at = self.clock.now();
            self.store.mark_handed(a, tried_at).await?;
            let error = match adapter.send(&message).await {
                Ok(id) => return self.sent(a, channel, &message, id).await.map(Step::Done),
                Err(e) => e,
            };
            tracing::warn!(channel = channel.as_str(), class = error.class.as_str(), code = ?error.code, reason = %cobro::logs::scrub(&error.reason), "send failed");
            metrics::count_by(
                metrics::MESSAGES_FAILED,
                "ErrorClass",
                error.class.as_str(),
                1,
            );
            return match error.class {
                FailureClass::OutsideWindow if form == Form::FreeForm => {
                    // The window closed after all (131047): the approved template instead,
                    // unless Meta refused it lately.
                    form = Form::Template;
                    if let Some(why) = self.refused_lately(a, form).await {
                        return Ok(Step::TemplateRefused(why));
                    }
                    continue;
                }
                FailureClass::Unreachable => Ok(Step::Unreachable(error.reason)),
                FailureClass::StopTenant => {
                    self.stop_channel(tenant, channel, &error).await?;
                    Ok(Step::Stopped(error.reason))
                }
                FailureClass::Transient => if a.tries + 1 >= MAX_TRIES {
                    self.fail(
                        a,
                        &error,
                        format!("gave up after {MAX_TRIES} temporary failures"),
                    )
                    .await
                } else {
                    let delay =
                        pacing::backoff(a.tries, Duration::from_secs(2), Duration::from_secs(300));
                    self.defer(a, delay, error.to_string(), error.code, true)
                        .await
                }
                .map(Step::Done),
                FailureClass::Timeout => {
                    // No idempotency key at the provider: a second timeout is not retried,
                    // since the message may have gone out twice already.
                    if a.error.as_deref().is_some_and(|e| e.starts_with("timeout")) {
                        self.fail(
                            a,
                            &error,
                            "timed out twice; not retried, it may have been delivered".into(),
                        )
                        .await
                    } else {
                        self.defer(
                            a,
                            Duration::from_secs(5),
                            error.to_string(),
                            error.code,
                            true,
                        )
                        .await
                    }
                    .map(Step::Done)
                }
                FailureClass::Throttled => {
                    let pause = Duration::from_secs(10);
                    self.pacer.pause(&number, pause);
                    if a.tries + 1 >= MAX_TRIES * 3 {
                        self.fail(a, &error, "throttled too often".into()).await
                    } else {
                        let delay = pause
                            + pacing::backoff(
                                a.tries,
                                Duration::from_secs(1),
                                Duration::from_secs(60),
                            );
                        self.defer(a, delay, error.to_string(), error.code, true)
                            .await
                    }
                    .map(Step::Done)
                }
                FailureClass::RecipientBusy => {
                    let delay = pacing::pair_rate_delay(a.tries);
                    if a.tries + 1 >= MAX_TRIES * 2 {
                        self.fail(a, &error, "the recipient stayed busy".into())
                            .await
                    } else {
                        self.defer(a, delay, error.to_string(), error.code, true)
                            .await
                    }
                    .map(Step::Done)
                }
                // The tenant's template is at fault, not the debtor nor this message: the
                // next channel carries it (as for an unreachable number), and an operator is
                // told, or one misregistered template would stop collection on WhatsApp.
                FailureClass::Rejected
                    if form == Form::Template
                        && cobro::whatsapp::errors::is_template_fault(error.code) =>
                {
                    tracing::error!(tenant = %a.tenant, template = %a.template, language = a.language.as_str(), code = ?error.code, reason = %cobro::logs::scrub(&error.reason), "WhatsApp refused the template; the message tries the next channel. Fix the template at Meta");
                    metrics::count(metrics::TEMPLATE_REFUSED, 1);
                    let held = match self.remember_refusal(a, &error, tried_at).await {
                        Some(until) => format!("; not tried again until {until}"),
                        None => String::new(),
                    };
                    Ok(Step::TemplateRefused(format!(
                        "template `{}` ({}) refused by Meta: {} (code {}){held}",
                        a.template,
                        a.language.as_str(),
                        error.reason,
                        error.code.unwrap_or_default()
                    )))
                }
                FailureClass::Rejected | FailureClass::OutsideWindow => self
                    .fail(a, &error, error.reason.clone())
                    .await
                    .map(Step::Done),
            };
        }
    }

    /// Why the template is not tried, when the message would go as the template and Meta
    /// refused that template (in this language, for this tenant) within
    /// `REFUSED_TEMPLATE_HELD_FOR`: the message goes where a refusal would send it, without
    /// asking Meta again. The record only saves calls: if it cannot be read, the template is
    /// tried (a failure here, after a free-text send was handed over, would fail the message).
    async fn refused_lately(&self, a: &ContactAttempt, form: Form) -> Option<String> {
        if form != Form::Template {
            return None;
        }
        let now = self.clock.now();
        let r = match self
            .store
            .template_refusal(&a.tenant, &a.template, a.language, now)
            .await
        {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(error = %cobro::logs::scrub(&e.to_string()), "could not read the template's refusals; it is tried");
                return None;
            }
        };
        tracing::info!(tenant = %a.tenant, template = %r.template, language = r.language.as_str(), code = r.code, until = %r.until, "template refused by Meta lately; not tried");
        Some(format!(
            "template `{}` ({}) refused by Meta at {} (code {}); not tried until {}",
            r.template,
            r.language.as_str(),
            r.refused_at,
            r.code,
            r.until
        ))
    }

    /// Remembers that Meta refused the attempt's template, so the tenant's next messages do
    /// not try it before the instant returned (`None`: not remembered by this call).
    async fn remember_refusal(
        &self,
        a: &ContactAttempt,
        error: &ChannelError,
        tried_at: jiff::Timestamp,
    ) -> Option<jiff::Timestamp> {
        let refused_at = self.clock.now();
        let until = refused_at
            .saturating_add(REFUSED_TEMPLATE_HELD_FOR)
            .expect("in range");
        let refusal = cobro::repo::TemplateRefusal {
            tenant: a.tenant.clone(),
            template: a.template.clone(),
            language: a.language,
            code: error.code.unwrap_or_default(),
            reason: error.reason.clone(),
            tried_at,
            refused_at,
            until,
        };
        // Not written: an equal or later refusal is there, or the tenant changed its
        // strategies since the call was made. Failed: the next message tries the template
        // again, as before; this message goes on either way (it was handed over, so an error
        // now would fail it rather than let the next channel carry it).
        match self.store.record_template_refusal(&refusal).await {
            Ok(true) => Some(until),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(error = %cobro::logs::scrub(&e.to_string()), "could not remember the template's refusal");
                None
            }
        }
    }

    async fn sent(
        &self,
        a: &ContactAttempt,
        channel: ChannelKind,
        message: &ChannelMessage,
        id: String,
    ) -> Result<Outcome, SendError> {
        // The id first: a status webhook may already be on its way.
        self.store.finish_sent(a, channel, &id).await?;
        let conversation = ConversationMessage {
            tenant: a.tenant.clone(),
            debtor: a.debtor.clone(),
            direction: Direction::Outbound,
            channel,
            message_id: id.clone(),
            at: self.clock.now(),
            text: message.text.clone(),
        };
        self.store.record_message(&conversation).await?;
        tracing::info!(decision = %a.decision_id, channel = channel.as_str(), to = %a.to.masked(), "sent");
        metrics::count(metrics::MESSAGES_SENT, 1);
        Ok(Outcome::Sent {
            channel,
            provider_message_id: id,
        })
    }

    async fn fail(
        &self,
        a: &ContactAttempt,
        error: &ChannelError,
        reason: String,
    ) -> Result<Outcome, SendError> {
        let reason = match error.code {
            Some(code) => format!("{reason} (code {code})"),
            None => reason,
        };
        self.store
            .finish_attempt(a, AttemptStatus::Failed, None, Some(&reason))
            .await?;
        Ok(Outcome::Failed(reason))
    }

    /// Back on the queue after `delay`; the attempt returns to the outbox meanwhile, so even a
    /// lost delayed message is sent by the outbox later.
    async fn defer(
        &self,
        a: &ContactAttempt,
        delay: Duration,
        reason: String,
        code: Option<i64>,
        count_try: bool,
    ) -> Result<Outcome, SendError> {
        self.store
            .release_attempt(a, &reason, code, count_try)
            .await?;
        let m = OutboundMessage {
            tenant: a.tenant.clone(),
            account: a.account.clone(),
            decision_id: a.decision_id.clone(),
        };
        let body = serde_json::to_string(&m).expect("serializes");
        self.queue
            .send_batch(vec![Outgoing::new("0", body).delayed(delay)])
            .await
            .map_err(|e| SendError::Queue(e.to_string()))?;
        Ok(Outcome::Deferred { delay, reason })
    }

    /// The invocation has no time left for the message's send slot: back on the queue for
    /// about when its turn would come (`turn`, the pacer's estimate), and never before the
    /// debtor's gate has passed, which a message to them on another account may hold.
    async fn out_of_time(&self, a: &ContactAttempt, turn: Duration) -> Result<Outcome, SendError> {
        self.defer(
            a,
            requeue_delay(turn, pacing::RECIPIENT_GAP),
            "the invocation's time ran out waiting for the number's send rate".into(),
            None,
            false,
        )
        .await
    }

    /// An account-wide error: nothing more goes out on this channel for the tenant until an
    /// operator resumes it, and the alarm event says why.
    async fn stop_channel(
        &self,
        tenant: &Tenant,
        channel: ChannelKind,
        error: &ChannelError,
    ) -> Result<(), SendError> {
        let stop = ChannelStop {
            tenant: tenant.id.clone(),
            channel,
            reason: error.reason.clone(),
            code: error.code,
            at: self.clock.now(),
            announced: false,
        };
        if self.store.stop_channel(&stop).await? {
            tracing::error!(tenant = %tenant.id, channel = channel.as_str(), code = ?error.code, reason = %cobro::logs::scrub(&error.reason), "channel stopped for the tenant");
            metrics::count(metrics::ACCOUNT_STOP, 1);
            self.announce_stop(&stop).await?;
        }
        Ok(())
    }

    /// Publishes the alarm of a stop, then marks it announced.
    async fn announce_stop(&self, stop: &ChannelStop) -> Result<(), SendError> {
        let event = ChannelStopped {
            tenant: stop.tenant.clone(),
            channel: stop.channel,
            reason: stop.reason.clone(),
            code: stop.code,
            at: stop.at,
        }
        .event();
        self.bus
            .publish(vec![event])
            .await
            .map_err(|e| SendError::Bus(e.to_string()))?;
        Ok(self.store.stop_announced(stop).await?)
    }
}

enum Step {
    Done(Outcome),
    Unreachable(String),
    Stopped(String),
    /// WhatsApp refused the tenant's template for a fault of the template (`is_template_fault`).
    TemplateRefused(String),
}

/// Time kept after the last wait for a send slot: the provider call (10 s at most) and the
/// writes after it.
pub const SEND_MARGIN: Duration = Duration::from_secs(15);

tokio::task_local! {
    /// When the invocation must be done with its sends (its deadline less `SEND_MARGIN`).
    static SEND_BY: Option<std::time::Instant>;
}

fn send_by() -> Option<std::time::Instant> {
    SEND_BY.try_with(|d| *d).ok().flatten()
}

/// The delay of a message put back on the queue for want of a send slot in this invocation:
/// its turn at the number's rate, at least `floor`, at most what SQS allows (15 minutes).
pub fn requeue_delay(turn: Duration, floor: Duration) -> Duration {
    turn.max(floor).min(cobro::ports::queue::MAX_DELAY)
}

/// Handles a batch of queue messages concurrently (a slow provider call must not hold the
/// others), and returns the ids of those to be received again. With the invocation's
/// `deadline`, a message whose send slot would come too late for it is put back on the queue
/// for the next invocation rather than cut off by this one's timeout (which would return the
/// whole batch and, after five receives, dead-letter it).
pub async fn handle_batch(
    sender: &Arc<Sender>,
    records: Vec<(String, String)>,
    deadline: Option<std::time::Instant>,
) -> Vec<String> {
    let send_by = deadline.map(|d| d.checked_sub(SEND_MARGIN).unwrap_or(d));
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    for (id, body) in records {
        let sender = sender.clone();
        // A spawned task does not inherit the span: each message gets its own, under this one.
        let span = cobro::logs::message(&id);
        let task = tasks.spawn(
            SEND_BY
                .scope(send_by, async move { sender.handle(&body).await })
                .instrument(span),
        );
        ids.insert(task.id(), id);
    }
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, Ok(outcome))) => tracing::info!(?outcome, "handled"),
            Ok((task, Err(e))) => {
                tracing::warn!(error = %cobro::logs::scrub(&e.to_string()), "will be received again");
                failed.extend(ids.remove(&task));
            }
            Err(e) => {
                tracing::error!(error = %e, "a send task failed");
                failed.extend(ids.remove(&e.id()));
            }
        }
    }
    failed
}
