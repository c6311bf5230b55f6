//! The chatbot behind the inbound processor: runs the engine on a debtor's message and applies
//! what it decided. The step is saved first (with the conversation's state, as an outbox), then
//! applied: a retried message re-applies the same step, and every effect is idempotent, so
//! nothing happens twice and nothing is lost. The record also keeps the ids of the latest
//! messages stepped on, so a retry that comes after a later message finished its step does not
//! run the engine again.

use jiff::Timestamp;

use cobro::chat::{self, Effect, Reply, Turn};
use cobro::compliance::keywords::opted_out_notice;
use cobro::domain::{Debtor, Language, Money, Tenant, TenantId};
use cobro::events::{
    CollectionPaused, DisputeOpened, HandoffRequested, IdentityCheckLocked, PlanAccepted,
    PreferencesChanged, PromiseMade, ReceiptReceived, Via, VulnerabilityFlagged,
};
use cobro::inbound::InboundMessage;
use cobro::outbound::{ReplyMessage, ReplyRef};
use cobro::plans::{build, Plan};
use cobro::ports::{LinkRequest, Outgoing, PaymentLinks};
use cobro::repo::{
    Accepted, ChatRecord, ChatReply, Handoff, Opened, PendingStep, ReplyStatus, RepoError,
};

use super::{Inbound, InboundError};

/// Payment links the bot sends last this long.
const LINK_MINUTES: i64 = 23 * 60;

/// What the engine understood of a message that speaks of self-harm.
const SELF_HARM: &str = "vulnerability:self_harm";

/// When the debtor's latest consent record on `channel` withdrew it, if it did.
fn opted_out_at(debtor: &Debtor, channel: cobro::domain::ChannelKind) -> Option<Timestamp> {
    debtor
        .consents
        .iter()
        .filter(|c| c.channel == channel)
        .max_by_key(|c| c.at)
        .filter(|c| !c.granted)
        .map(|c| c.at)
}

/// Steps whose replies go out to a debtor opted out of the channel: the confirmation of the
/// opt-out (or of an opt-in, which the consent records by then) and the crisis line, which
/// answers someone at risk and outranks their opt-out.
fn answers_while_opted_out(understood: &str) -> bool {
    matches!(understood, "opt_out" | "opt_in" | SELF_HARM)
}

impl Inbound {
    /// One message from a debtor through the chatbot.
    pub(crate) async fn converse(
        &self,
        tenant: &TenantId,
        channel: cobro::domain::ChannelKind,
        debtor: &Debtor,
        m: &InboundMessage,
        media_key: Option<&str>,
        shared: bool,
    ) -> Result<(), InboundError> {
        let Some(tenant) = self.store.tenant(tenant).await? else {
            return Ok(());
        };
        for _ in 0..5 {
            let (record, version) = self.store.chat_record(&tenant.id, &debtor.id).await?;
            if let Some(p) = &record.pending {
                if p.message_id == m.id {
                    // A retry of this very message: re-apply its saved step.
                    let p = p.clone();
                    self.apply_step(&tenant, debtor, &p, media_key).await?;
                    return self.clear_pending(&tenant, debtor, record, version).await;
                }
                // An earlier message's step not fully applied: finish it first.
                let p = p.clone();
                self.apply_step(&tenant, debtor, &p, None).await?;
            }
            if record.stepped_on(&m.id) {
                // Its step was saved, then finished by a later message: it stands.
                return Ok(());
            }
            let accounts = self
                .store
                .accounts_of_debtor(&tenant.id, &debtor.id)
                .await?;
            let identity = self.store.identity_facts(&tenant.id, &debtor.id).await?;
            let zone = debtor.time_zone.tz();
            let turn = Turn {
                tenant: &tenant,
                debtor,
                accounts: &accounts,
                identity: identity.as_ref(),
                channel,
                content: &m.content,
                // The message's own time: the same message always gives the same step.
                now: m.at,
                today: m.at.to_zoned(zone).date(),
            };
            let step = if shared {
                chat::shared_number::step_shared(&record.state, &turn)
            } else {
                chat::step(&record.state, &turn)
            };
            tracing::info!(tenant = %tenant.id, debtor = %debtor.id, understood = %step.understood, replies = step.replies.len(), effects = step.effects.len(), "chatbot step");
            // The conversation's language, as the engine chose it from the debtor's words.
            let language = step.state.language.unwrap_or(debtor.language);
            let mut state = step.state;
            let mut replies = step.replies;
            let mut opt_out_noticed = record.opt_out_noticed.clone();
            let opted_out = match opted_out_at(debtor, channel) {
                Some(at) if !answers_while_opted_out(&step.understood) => {
                    // Nothing the bot would say goes out: the debtor hears once that they
                    // opted out and how to talk again, then nothing until they opt in.
                    // Only on WhatsApp, inside the window the debtor just opened: a text to a
                    // number that sent STOP is allowed once, right after it (the carriers
                    // and the FCC), not weeks later.
                    let speaks = (!replies.is_empty() || step.understood == "silent:agent_owns")
                        && channel == cobro::domain::ChannelKind::Whatsapp;
                    replies = if speaks && !record.opt_out_noticed(channel, at) {
                        opt_out_noticed = record.noticed_with(channel, at);
                        vec![Reply::text(opted_out_notice(language))]
                    } else {
                        vec![]
                    };
                    // Its question never reached the debtor: the bot waits for no answer.
                    state.awaiting = Default::default();
                    state.offered.clear();
                    true
                }
                _ => false,
            };
            let pending = PendingStep {
                message_id: m.id.clone(),
                channel,
                at: m.at,
                replies,
                effects: step.effects,
                understood: step.understood,
                language: Some(language),
                opted_out,
            };
            let next = ChatRecord {
                state,
                pending: Some(pending.clone()),
                announce: record.announce.clone(),
                stepped: record.stepped_with(&m.id),
                opt_out_noticed,
            };
            match self
                .store
                .save_chat_record(&tenant.id, &debtor.id, &next, version)
                .await
            {
                Ok(()) => {
                    self.apply_step(&tenant, debtor, &pending, media_key)
                        .await?;
                    return self.clear_pending(&tenant, debtor, next, version + 1).await;
                }
                // Another message of this debtor was applied meanwhile: read it and go again.
                Err(RepoError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(InboundError::Store(RepoError::Conflict(format!(
            "the conversation of {} keeps changing",
            debtor.id
        ))))
    }

    /// Care for a debtor who shares the number a sign of vulnerability came from: their
    /// collection pauses, open-ended as the writer's does, and the sign is published; no reply
    /// (the writer got one). Repeating it on a redelivery changes nothing: pauses merge.
    pub(crate) async fn pause_for_care(
        &self,
        tenant: &TenantId,
        debtor: &Debtor,
        sign: cobro::chat::Sign,
        channel: cobro::domain::ChannelKind,
        m: &InboundMessage,
    ) -> Result<(), InboundError> {
        let Some(tenant) = self.store.tenant(tenant).await? else {
            return Ok(());
        };
        let accounts = self
            .store
            .accounts_of_debtor(&tenant.id, &debtor.id)
            .await?;
        let p = PendingStep {
            message_id: m.id.clone(),
            channel,
            at: m.at,
            replies: vec![],
            effects: vec![],
            understood: String::new(),
            language: None,
            opted_out: false,
        };
        let effects = [
            Effect::Vulnerable { sign },
            Effect::Pause {
                accounts: accounts.iter().map(|a| a.id.clone()).collect(),
                until: None,
                reason: format!("vulnerability: {}", sign.as_str()),
            },
        ];
        for effect in &effects {
            self.apply_effect(&tenant, debtor, &p, effect, None).await?;
        }
        Ok(())
    }

    async fn clear_pending(
        &self,
        tenant: &Tenant,
        debtor: &Debtor,
        mut record: ChatRecord,
        version: i64,
    ) -> Result<(), InboundError> {
        record.pending = None;
        match self
            .store
            .save_chat_record(&tenant.id, &debtor.id, &record, version)
            .await
        {
            // A newer message saved its own step: it also finishes ours (idempotently).
            Ok(()) | Err(RepoError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn apply_step(
        &self,
        tenant: &Tenant,
        debtor: &Debtor,
        p: &PendingStep,
        media_key: Option<&str>,
    ) -> Result<(), InboundError> {
        let mut replies = p.replies.clone();
        for effect in &p.effects {
            if let Some(extra) = self
                .apply_effect(tenant, debtor, p, effect, media_key)
                .await?
            {
                replies.push(extra);
            }
        }
        let mut queued = Vec::new();
        for (n, reply) in replies.into_iter().enumerate() {
            let r = ChatReply {
                tenant: tenant.id.clone(),
                debtor: debtor.id.clone(),
                id: format!("{}#{n}", p.message_id),
                channel: p.channel,
                reply,
                author: "bot".into(),
                answers_at: Some(p.at),
                created_at: self.clock.now(),
                status: ReplyStatus::Queued,
                provider_message_id: None,
                reason: None,
                tries: 0,
                claimed_at: None,
                confirms_opt_out: p.understood == "opt_out" || p.opted_out,
                care: p.understood == SELF_HARM,
                language: p.language,
            };
            self.store.put_reply(&r).await?;
            // Queued again even when the reply existed: the sender skips one already sent.
            queued.push(r);
        }
        if queued.is_empty() {
            return Ok(());
        }
        let Some(outbound) = &self.outbound else {
            return Ok(());
        };
        // Only the first: the sender queues each next one once this one is out, so the debtor
        // reads them in order.
        let batch = queued
            .iter()
            .take(1)
            .enumerate()
            .map(|(i, r)| {
                let body = ReplyMessage {
                    reply: ReplyRef {
                        tenant: r.tenant.clone(),
                        debtor: r.debtor.clone(),
                        id: r.id.clone(),
                    },
                };
                Outgoing::new(
                    i.to_string(),
                    serde_json::to_string(&body).expect("serializes"),
                )
            })
            .collect();
        outbound
            .send_batch(batch)
            .await
            .map_err(|e| InboundError::Queue(e.to_string()))
    }

    /// Applies one effect; some answer with one more reply (the link).
    async fn apply_effect(
        &self,
        tenant: &Tenant,
        debtor: &Debtor,
        p: &PendingStep,
        effect: &Effect,
        media_key: Option<&str>,
    ) -> Result<Option<Reply>, InboundError> {
        let t = &tenant.id;
        let via = Via {
            channel: p.channel,
            message_id: p.message_id.clone(),
            at: p.at,
        };
        match effect {
            Effect::IdentityVerified | Effect::IdentityFailed { .. } => {}
            Effect::IdentityLocked { until } => {
                tracing::warn!(tenant = %t, debtor = %debtor.id, "identity check locked");
                self.publish(IdentityCheckLocked {
                    tenant: t.clone(),
                    debtor: debtor.id.clone(),
                    until: *until,
                    via,
                })
                .await?;
            }
            // No link to a debtor who opted out of the channel: it would not go out.
            Effect::PayLink { .. } if p.opted_out => {}
            Effect::PayLink { account } => return self.pay_link(tenant, debtor, account, p).await,
            Effect::AcceptPlan { account, request } => {
                let Some(acct) = self.store.account(t, account).await? else {
                    return Ok(None);
                };
                // The debtor's today, as the engine that offered the terms had it.
                let zone = debtor.time_zone.tz();
                let today = p.at.to_zoned(zone).date();
                let terms = match build(acct.plan_basis(), &tenant.plan_rules, request, today) {
                    Ok(terms) => terms,
                    // The balance or the rules changed since the debtor was told "done": a
                    // person sorts it out rather than the plan silently not existing.
                    Err(e) => {
                        tracing::warn!(tenant = %t, debtor = %debtor.id, account = %account, error = %e, "accepted plan not built");
                        let handoff = Effect::Handoff {
                            reason: format!("plan not created: {e}"),
                            urgent: false,
                        };
                        return Box::pin(self.apply_effect(tenant, debtor, p, &handoff, None))
                            .await;
                    }
                };
                let plan =
                    Plan::accepted(&acct, terms, request, &tenant.plan_rules, p.at, "debtor");
                let plan = match self.store.accept_plan(&acct, &plan, p.at).await? {
                    Accepted::Created(plan) | Accepted::Existing(plan) => plan,
                };
                self.publish(PlanAccepted::of(&plan, debtor.id.clone(), Some(via)))
                    .await?;
            }
            Effect::Promise {
                account,
                by,
                amount_minor,
            } => {
                let Some(acct) = self.store.account(t, account).await? else {
                    return Ok(None);
                };
                let promise = cobro::domain::Promise {
                    amount_minor: *amount_minor,
                    by: *by,
                    paid_minor: 0,
                    made_at: p.at,
                    made_by: "debtor".into(),
                };
                match acct.promise.as_ref().map(|x| x.made_at.cmp(&p.at)) {
                    // Made by this step before (a retry): announced again, as the first try may
                    // have failed to. Same details, so the same event id downstream.
                    Some(std::cmp::Ordering::Equal) => {}
                    // A newer promise (the CRM's) replaced it meanwhile: that one stands.
                    Some(std::cmp::Ordering::Greater) => return Ok(None),
                    _ => self.store.make_promise(&acct, &promise, p.at).await?,
                }
                self.publish(PromiseMade::of(&acct, &promise, Some(via)))
                    .await?;
            }
            Effect::Pause {
                accounts,
                until,
                reason,
            } => {
                // On the debtor too, so an account the CRM sends later waits as well; added to
                // any pause already holding, never shortening it.
                let pause =
                    |h: &mut cobro::compliance::Holds| h.pause(*until, reason.clone(), p.at);
                self.store.set_debtor_holds(t, &debtor.id, pause).await?;
                for a in accounts {
                    self.store.set_holds(t, a, pause).await?;
                }
                self.publish(CollectionPaused {
                    tenant: t.clone(),
                    debtor: debtor.id.clone(),
                    accounts: accounts.clone(),
                    until: *until,
                    reason: reason.clone(),
                    via,
                })
                .await?;
            }
            Effect::Dispute { account, kind } => {
                self.store
                    .set_holds(t, account, |h| h.dispute_open = true)
                    .await?;
                self.publish(DisputeOpened {
                    tenant: t.clone(),
                    debtor: debtor.id.clone(),
                    account: account.clone(),
                    kind: kind.clone(),
                    via,
                })
                .await?;
            }
            Effect::PreferChannel { channel } => {
                let at = p.at;
                self.store
                    .set_preferences(t, &debtor.id, |pr| {
                        pr.channel = Some(*channel);
                        pr.updated_at = Some(at);
                    })
                    .await?;
                self.publish(PreferencesChanged {
                    tenant: t.clone(),
                    debtor: debtor.id.clone(),
                    preferred_channel: Some(*channel),
                    hours: None,
                    via,
                })
                .await?;
            }
            Effect::PreferHours { hours } => {
                let at = p.at;
                self.store
                    .set_preferences(t, &debtor.id, |pr| {
                        pr.hours = *hours;
                        pr.updated_at = Some(at);
                    })
                    .await?;
                self.publish(PreferencesChanged {
                    tenant: t.clone(),
                    debtor: debtor.id.clone(),
                    preferred_channel: None,
                    hours: *hours,
                    via,
                })
                .await?;
            }
            Effect::Handoff { reason, urgent } => {
                let open = self
                    .store
                    .open_handoff(&Handoff {
                        tenant: t.clone(),
                        debtor: debtor.id.clone(),
                        reason: reason.clone(),
                        urgent: *urgent,
                        opened_at: p.at,
                        agent: None,
                    })
                    .await?;
                // Announced when this step opened it (now, or in a try whose announcement may
                // have failed), or when it is urgent; not when an earlier one is still open.
                if matches!(open, Opened::Now | Opened::Before) || *urgent {
                    self.publish(HandoffRequested {
                        tenant: t.clone(),
                        debtor: debtor.id.clone(),
                        reason: reason.clone(),
                        urgent: *urgent,
                        via,
                    })
                    .await?;
                }
            }
            Effect::Vulnerable { sign } => {
                tracing::warn!(tenant = %t, debtor = %debtor.id, sign = sign.as_str(), "vulnerability flagged");
                self.publish(VulnerabilityFlagged {
                    tenant: t.clone(),
                    debtor: debtor.id.clone(),
                    sign: *sign,
                    via,
                })
                .await?;
            }
            Effect::Receipt => {
                self.publish(ReceiptReceived {
                    tenant: t.clone(),
                    debtor: debtor.id.clone(),
                    blob: media_key.map(String::from),
                    via,
                })
                .await?;
            }
        }
        Ok(None)
    }

    /// A link for the account's next amount due, on the tenant's pay page or Stripe Checkout.
    async fn pay_link(
        &self,
        tenant: &Tenant,
        debtor: &Debtor,
        account: &cobro::domain::AccountId,
        p: &PendingStep,
    ) -> Result<Option<Reply>, InboundError> {
        // The conversation's, not the CRM's: the debtor reads the rest of it in that one.
        let lang: Language = p.language.unwrap_or(debtor.language);
        let say =
            |key: &str, args: &[(&str, &str)]| chat::texts::say(&tenant.chat, key, lang, args);
        let Some(acct) = self.store.account(&tenant.id, account).await? else {
            return Ok(None);
        };
        // What the reminders ask for on the debtor's today (a promise, the plan's instalments
        // due, or the balance), so the link pays what the debtor was told.
        let today = p.at.to_zoned(debtor.time_zone.tz()).date();
        let (_, target) = acct.reminder_target(today);
        let amount_minor = if target > 0 {
            target
        } else {
            acct.balance_minor
        };
        let plan_id = acct.plan.as_ref().map(|r| r.id.clone());
        let provider: Option<std::sync::Arc<dyn PaymentLinks>> = match &tenant.pay_page {
            Some(template) => cobro::adapters::pay_page::PayPageLinks::new(template, None)
                .ok()
                .map(|l| std::sync::Arc::new(l) as std::sync::Arc<dyn PaymentLinks>),
            None => self.links.clone(),
        };
        let Some(provider) = provider else {
            tracing::warn!(tenant = %tenant.id, "no pay page and no Stripe: the bot cannot send a link");
            return Ok(Some(Reply::text(say("pay_link_failed", &[]))));
        };
        let expires_at = p.at + jiff::SignedDuration::from_mins(LINK_MINUTES);
        let request = LinkRequest {
            tenant: tenant.id.clone(),
            account: acct.id.clone(),
            plan: plan_id.clone(),
            instalment: None,
            amount: Money::new(amount_minor, acct.currency),
            description: format!("{} · {}", tenant.name, acct.id),
            expires_at,
            // The message id: a retried step asks for the same link.
            idempotency_key: format!("chat:{}:{}:{}", tenant.id, acct.id, p.message_id),
        };
        match provider.create(&request).await {
            Ok(link) => {
                let zone = debtor.time_zone.tz();
                let expires = link
                    .expires_at
                    .to_zoned(zone)
                    .strftime("%d/%m %H:%M")
                    .to_string();
                let amount = request.amount.display();
                Ok(Some(Reply::text(say(
                    "pay_link",
                    &[
                        ("amount", &amount),
                        ("url", &link.url),
                        ("expires", &expires),
                    ],
                ))))
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant.id, error = %e, "payment link failed");
                Ok(Some(Reply::text(say("pay_link_failed", &[]))))
            }
        }
    }
}
