//! Applies one routed event for one tenant. Exactly-once effects on at-least-once input: a
//! message is applied under a claim on its id (done once applied; a run that dies leaves a
//! lease that runs out), and a status only moves an attempt forward.

use cobro::domain::{ChannelKind, Consent, ConversationMessage, Debtor, Direction, TenantId};
use cobro::events::{
    ChannelStopped, DebtorNumberChanged, DebtorPreferenceChanged, DomainEvent, MediaReceived,
    MessageStatus, ProviderErrorReported,
};
use cobro::inbound::{Content, InboundEvent, InboundMessage, OptSignal, Party, StatusReport};
use cobro::ports::{Event, FailureClass};
use cobro::repo::{Applied, ChannelStop, Delivery, SeenClaim, SeenLease};

use super::{Inbound, InboundError, Report};

/// Where an event belongs: its tenant, the channel and number it came on, the raw body it came
/// in, and its position in that body.
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    pub tenant: &'a TenantId,
    pub channel: ChannelKind,
    pub to_number: &'a str,
    pub blob: &'a str,
    pub n: usize,
    /// When the delivery came.
    pub received_at: jiff::Timestamp,
}

impl Inbound {
    /// `statuses`: the events of the delivery's statuses, published together once the whole
    /// delivery is applied (a delivery may carry hundreds; one call per status would be slow).
    pub(crate) async fn apply(
        &self,
        place: &Place<'_>,
        event: &InboundEvent,
        report: &mut Report,
        statuses: &mut Vec<Event>,
    ) -> Result<(), InboundError> {
        let Place {
            tenant,
            channel,
            to_number,
            blob,
            n,
            received_at,
        } = *place;
        match event {
            InboundEvent::Message(m) => self.message(tenant, channel, to_number, m, report).await,
            InboundEvent::Status(s) => self.status(tenant, s, report, statuses).await,
            InboundEvent::Preference {
                from,
                category,
                stop,
                at,
            } => {
                for d in self.debtors_of(tenant, from).await? {
                    self.publish(DebtorPreferenceChanged {
                        tenant: tenant.clone(),
                        debtor: d.id,
                        channel,
                        category: category.clone(),
                        stop: *stop,
                        at: *at,
                    })
                    .await?;
                }
                report.preferences += 1;
                Ok(())
            }
            InboundEvent::NumberChanged {
                from,
                new_wa_id,
                at,
            } => {
                // The CRM owns the phone number: it is told, cobro does not guess.
                for d in self.debtors_of(tenant, from).await? {
                    self.publish(DebtorNumberChanged {
                        tenant: tenant.clone(),
                        debtor: d.id,
                        channel,
                        new_wa_id_present: new_wa_id.is_some(),
                        at: *at,
                    })
                    .await?;
                }
                report.other += 1;
                Ok(())
            }
            InboundEvent::ProviderErrors { errors } => {
                for e in errors {
                    tracing::error!(tenant = %tenant, code = ?e.code, error = %cobro::logs::scrub(&e.describe()), "provider error in a webhook");
                }
                self.publish(ProviderErrorReported {
                    tenant: tenant.clone(),
                    channel,
                    errors: errors.clone(),
                    blob: blob.to_string(),
                })
                .await?;
                report.errors += 1;
                Ok(())
            }
            InboundEvent::Unknown { what } => {
                self.store
                    .record_unhandled(tenant, what, n, blob, received_at)
                    .await?;
                report.unhandled += 1;
                Ok(())
            }
        }
    }

    /// The debtors a sender is: by phone number, else by WhatsApp user id (users who hide their
    /// number). A message with both teaches cobro the id.
    async fn debtors_of(
        &self,
        tenant: &TenantId,
        from: &Party,
    ) -> Result<Vec<Debtor>, InboundError> {
        match (&from.phone, &from.user_id) {
            (Some(p), user) => {
                let debtors = self.store.debtors_by_phone(tenant, p).await?;
                if let (Some(user), false) = (user, debtors.is_empty()) {
                    let ids: Vec<_> = debtors.iter().map(|d| d.id.clone()).collect();
                    self.store.link_whatsapp_user(tenant, user, &ids).await?;
                }
                Ok(debtors)
            }
            (None, Some(user)) => Ok(self.store.debtors_by_whatsapp_user(tenant, user).await?),
            (None, None) => Ok(Vec::new()),
        }
    }

    async fn message(
        &self,
        tenant: &TenantId,
        channel: ChannelKind,
        to_number: &str,
        m: &InboundMessage,
        report: &mut Report,
    ) -> Result<(), InboundError> {
        let claim = self
            .store
            .claim_seen(tenant, channel.as_str(), &m.id, self.clock.now())
            .await?;
        let lease = match claim {
            SeenClaim::Claimed(lease) => lease,
            SeenClaim::Done => {
                report.duplicates += 1;
                return Ok(());
            }
            // Another run is applying it, or died doing so and its lease has not run out:
            // the delivery must come again (`apply_all` fails it), not pass as a duplicate.
            SeenClaim::Busy => {
                report.in_progress += 1;
                return Ok(());
            }
        };
        match self
            .message_once(tenant, channel, to_number, m, report)
            .await
        {
            Ok(()) => Ok(self
                .store
                .finish_seen(tenant, channel.as_str(), &m.id)
                .await?),
            Err(e) => {
                self.release_claim(tenant, channel, &m.id, &lease).await;
                Err(e)
            }
        }
    }

    /// Gives up the claim of a message that failed, so its redelivery applies it at once. If
    /// that fails too, the claim's lease runs out and a later redelivery takes it over.
    async fn release_claim(
        &self,
        tenant: &TenantId,
        channel: ChannelKind,
        message_id: &str,
        lease: &SeenLease,
    ) {
        if let Err(e) = self
            .store
            .release_seen(tenant, channel.as_str(), message_id, lease)
            .await
        {
            tracing::warn!(error = %e, "claim not released; it is taken over once its lease runs out");
        }
    }

    async fn message_once(
        &self,
        tenant: &TenantId,
        channel: ChannelKind,
        to_number: &str,
        m: &InboundMessage,
        report: &mut Report,
    ) -> Result<(), InboundError> {
        let debtors = self.debtors_of(tenant, &m.from).await?;
        if debtors.is_empty() {
            tracing::info!(
                channel = channel.as_str(),
                "message from someone who is not a debtor; kept"
            );
            let raw = serde_json::to_value(m).expect("serializes");
            self.store
                .record_unmatched(tenant, &m.from.label(), &m.id, &raw)
                .await?;
            report.unmatched += 1;
            return Ok(());
        }
        let stored_media = match &m.content {
            Content::Media {
                media, media_id, ..
            } => self.keep_media(tenant, to_number, media, media_id).await,
            _ => None,
        };
        for debtor in &debtors {
            let mut text = m.content.summary();
            if let Some(key) = &stored_media {
                text = format!("{text} ({key})");
            }
            let message = ConversationMessage {
                tenant: tenant.clone(),
                debtor: debtor.id.clone(),
                direction: Direction::Inbound,
                channel,
                message_id: m.id.clone(),
                at: m.at,
                text,
            };
            self.store.record_message(&message).await?;
            if channel == ChannelKind::Whatsapp {
                // Every message from the debtor opens or extends the 24-hour window.
                self.store
                    .touch_inbound_window(tenant, &debtor.id, channel, m.at)
                    .await?;
            }
            if let Some(signal) = m.content.opt_signal() {
                for c in signal.keyword.channels(channel) {
                    self.consent_by_keyword(tenant, debtor, c, &signal, m)
                        .await?;
                }
                report.opt_changes += 1;
            }
            if let (
                Some(key),
                Content::Media {
                    media,
                    mime_type,
                    filename,
                    ..
                },
            ) = (&stored_media, &m.content)
            {
                self.publish(MediaReceived {
                    tenant: tenant.clone(),
                    debtor: debtor.id.clone(),
                    channel,
                    message_id: m.id.clone(),
                    media: media.clone(),
                    mime_type: mime_type.clone(),
                    filename: filename.clone(),
                    blob: key.clone(),
                    at: m.at,
                })
                .await?;
            }
        }
        match debtors.as_slice() {
            [debtor] => {
                self.converse(tenant, channel, debtor, m, stored_media.as_deref(), false)
                    .await?
            }
            // One number, several debtors (a shared family phone): the bot cannot tell who
            // writes, so it names no debt; a person answers in the first one's conversation,
            // and a sign of vulnerability pauses everyone the writer may be.
            [first, rest @ ..] => {
                self.converse(tenant, channel, first, m, stored_media.as_deref(), true)
                    .await?;
                if let Some(sign) = m
                    .content
                    .text()
                    .and_then(cobro::chat::vulnerability::detect)
                {
                    for other in rest {
                        self.pause_for_care(tenant, other, sign, channel, m).await?;
                    }
                }
            }
            [] => {}
        }
        report.messages += 1;
        Ok(())
    }

    /// Downloads a medium and keeps it. A failure is logged, not fatal: the message itself is
    /// recorded, with its media id, which Meta keeps for 7 days.
    async fn keep_media(
        &self,
        tenant: &TenantId,
        to_number: &str,
        media: &str,
        media_id: &str,
    ) -> Option<String> {
        let source = self.media.as_ref()?;
        let medium = match source.fetch(media_id, to_number).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(media_id, error = %e, "medium not downloaded");
                return None;
            }
        };
        let safe_id: String = media_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let key = format!("media/{tenant}/{media}/{safe_id}");
        match self.blobs.put(&key, medium.bytes, &medium.mime_type).await {
            Ok(()) => Some(key),
            Err(e) => {
                tracing::warn!(media_id, error = %e, "medium not kept");
                None
            }
        }
    }

    /// STOP, BAJA, SAIR … (or an opt-out button) withdraw consent on the channel they came on;
    /// START, ALTA … give it back. Recorded as the debtor's own word (`keyword:STOP`,
    /// `keyword:button:OPTOUT`), which a CRM update does not overwrite.
    async fn consent_by_keyword(
        &self,
        tenant: &TenantId,
        debtor: &Debtor,
        channel: ChannelKind,
        signal: &OptSignal,
        m: &InboundMessage,
    ) -> Result<(), InboundError> {
        let granted = signal.keyword.grants();
        let consent = Consent {
            channel,
            granted,
            at: m.at,
            source: format!("keyword:{}", signal.said),
        };
        let event =
            cobro::events::consent_changed(tenant, &debtor.id, &consent, Some(m.id.clone()));
        self.store
            .record_consent(tenant, &debtor.id, consent)
            .await?;
        tracing::info!(tenant = %tenant, debtor = %debtor.id, channel = channel.as_str(), granted, "consent changed by keyword");
        self.publish_event(event).await
    }

    async fn status(
        &self,
        tenant: &TenantId,
        s: &StatusReport,
        report: &mut Report,
        statuses: &mut Vec<Event>,
    ) -> Result<(), InboundError> {
        let error = s.errors.first();
        let delivery = Delivery {
            provider_message_id: s.provider_message_id.clone(),
            status: s.status.clone(),
            rank: s.rank(),
            failed: s.status == "failed",
            at: s.at,
            error: error.map(|e| e.describe()),
            error_code: error.and_then(|e| e.code),
        };
        if delivery.rank == 0 {
            report.unhandled += 1;
            return Ok(());
        }
        let class = delivery
            .error_code
            .map(|c| cobro::whatsapp::errors::classify(0, Some(c), None));
        match self.store.apply_delivery(tenant, &delivery).await? {
            None => {
                // Not a contact attempt (a chatbot reply, a message sent elsewhere).
                report.statuses_unmatched += 1;
            }
            Some((_, Applied::Stale)) => report.duplicates += 1,
            // A redelivery of a status already applied does again what follows from it, with
            // the same details (so the same event id): the first time may have failed after
            // the attempt was updated, and what failed would otherwise be lost.
            Some((attempt, Applied::Before)) => {
                report.duplicates += 1;
                self.announce_status(tenant, s, &attempt, &delivery, class, statuses)
                    .await?;
            }
            Some((attempt, Applied::Now)) => {
                report.statuses += 1;
                let detail_type = match s.status.as_str() {
                    "failed" => "MessageFailed",
                    "delivered" => "MessageDelivered",
                    "read" | "played" => "MessageRead",
                    _ => "MessageSent",
                };
                match detail_type {
                    "MessageFailed" => cobro::metrics::count_by(
                        cobro::metrics::MESSAGES_FAILED,
                        "ErrorClass",
                        class.map_or("unknown", |c| c.as_str()),
                        1,
                    ),
                    "MessageDelivered" => {
                        cobro::metrics::count(cobro::metrics::MESSAGES_DELIVERED, 1)
                    }
                    "MessageRead" => cobro::metrics::count(cobro::metrics::MESSAGES_READ, 1),
                    _ => {}
                }
                self.announce_status(tenant, s, &attempt, &delivery, class, statuses)
                    .await?;
            }
        }
        Ok(())
    }

    /// What an applied status leads to: its event (added to `statuses`), and for an
    /// undeliverable message the next channel. Both are safe to do again.
    async fn announce_status(
        &self,
        tenant: &TenantId,
        s: &StatusReport,
        attempt: &cobro::domain::ContactAttempt,
        delivery: &Delivery,
        class: Option<FailureClass>,
        statuses: &mut Vec<Event>,
    ) -> Result<(), InboundError> {
        let event = MessageStatus {
            tenant: tenant.clone(),
            account: attempt.account.clone(),
            debtor: attempt.debtor.clone(),
            decision_id: attempt.decision_id.to_string(),
            channel: attempt.channel,
            provider_message_id: s.provider_message_id.clone(),
            status: s.status.clone(),
            error: delivery.error.clone(),
            error_code: delivery.error_code,
            error_class: class.map(|c| c.as_str().to_string()),
            pricing_category: s.pricing_category.clone(),
            at: s.at,
        };
        statuses.push(event.event());
        match class {
            Some(FailureClass::Unreachable) => self.fall_back(attempt, delivery).await?,
            Some(FailureClass::StopTenant) => {
                self.stop_channel(tenant, attempt.channel, delivery, s.at)
                    .await?
            }
            _ => {}
        }
        Ok(())
    }

    /// An account-wide failure reported late, by a status (a blocked or restricted number, a
    /// payment problem at Meta): the channel stops for the tenant, as when the send itself is
    /// refused so, since sending on would get the number banned. The alarm goes out here; one
    /// that fails to is sent by the sender before its next message (or by this redelivery).
    async fn stop_channel(
        &self,
        tenant: &TenantId,
        channel: ChannelKind,
        delivery: &Delivery,
        at: jiff::Timestamp,
    ) -> Result<(), InboundError> {
        let stop = ChannelStop {
            tenant: tenant.clone(),
            channel,
            reason: delivery
                .error
                .clone()
                .unwrap_or_else(|| "an account-wide failure".into()),
            code: delivery.error_code,
            at,
            announced: false,
        };
        if self.store.stop_channel(&stop).await? {
            tracing::error!(tenant = %tenant, channel = channel.as_str(), code = ?delivery.error_code, "channel stopped for the tenant by a failed status");
            cobro::metrics::count(cobro::metrics::ACCOUNT_STOP, 1);
        }
        let stops = self.store.channel_stops(tenant).await?;
        for stop in stops
            .iter()
            .filter(|x| x.channel == channel && !x.announced)
        {
            self.publish(ChannelStopped {
                tenant: stop.tenant.clone(),
                channel: stop.channel,
                reason: stop.reason.clone(),
                code: stop.code,
                at: stop.at,
            })
            .await?;
            self.store.stop_announced(stop).await?;
        }
        Ok(())
    }

    /// A message WhatsApp could not deliver (131026: not on WhatsApp, old client …) goes out on
    /// the next channel in the tenant's order that the debtor consents to, as the sender does
    /// when the refusal comes at once.
    async fn fall_back(
        &self,
        attempt: &cobro::domain::ContactAttempt,
        delivery: &Delivery,
    ) -> Result<(), InboundError> {
        let Some(outbound) = &self.outbound else {
            return Ok(());
        };
        let (Some(tenant), Some(debtor)) = (
            self.store.tenant(&attempt.tenant).await?,
            self.store.debtor(&attempt.tenant, &attempt.debtor).await?,
        ) else {
            return Ok(());
        };
        let Some(next) = tenant
            .usable_channels()
            .skip_while(|c| *c != attempt.channel)
            .skip(1)
            // As the sender picks: reachable and not opted out; the sender checks the policy
            // (consent where it requires one) before it sends.
            .find(|c| {
                debtor.reachable_on(*c)
                    && cobro::compliance::latest_consent(&debtor, *c) != Some(false)
            })
        else {
            return Ok(());
        };
        let reason = format!(
            "{} undeliverable ({}); rerouted to {}",
            attempt.channel.as_str(),
            delivery.error.as_deref().unwrap_or("no detail"),
            next.as_str()
        );
        let retry = self
            .clock
            .now()
            .saturating_add(jiff::SignedDuration::from_mins(10))
            .expect("in range");
        if self
            .store
            .reroute_attempt(attempt, next, &reason, retry)
            .await?
        {
            let m = cobro::outbound::OutboundMessage {
                tenant: attempt.tenant.clone(),
                account: attempt.account.clone(),
                decision_id: attempt.decision_id.clone(),
            };
            outbound
                .send_batch(vec![cobro::ports::Outgoing::new(
                    "0",
                    serde_json::to_string(&m).expect("serializes"),
                )])
                .await
                .map_err(|e| InboundError::Queue(e.to_string()))?;
            tracing::info!(decision = %attempt.decision_id, next = next.as_str(), "undeliverable on WhatsApp; rerouted");
        }
        Ok(())
    }

    pub(crate) async fn publish(&self, event: impl DomainEvent) -> Result<(), InboundError> {
        self.publish_event(event.event()).await
    }

    pub(crate) async fn publish_event(&self, event: Event) -> Result<(), InboundError> {
        self.bus
            .publish(vec![event])
            .await
            .map_err(|e| InboundError::Bus(e.to_string()))
    }
}
