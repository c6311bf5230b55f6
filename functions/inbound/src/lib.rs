//! The inbound processor: applies what the channels sent back, after the webhook has kept it.
//! Its queue carries two kinds of message: a WhatsApp delivery from the webhook (its raw body,
//! or the key where the webhook stored a large one), and an inbound SMS that two-way SMS
//! published to SNS. Either is kept in the bucket as it came before it is applied.

mod apply;
mod chat;
pub mod sms;
pub mod whatsapp;

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use cobro::domain::{ChannelKind, TenantId};
use cobro::inbound::Routed;
use cobro::logs;
use cobro::ports::{Blobs, Bus, Clock, MediaSource, Queue};
use cobro::repo::{RepoError, Store};
use tracing::Instrument;

pub struct Inbound {
    pub store: Store,
    pub blobs: Arc<dyn Blobs>,
    pub bus: Arc<dyn Bus>,
    pub clock: Arc<dyn Clock>,
    /// Downloads media (payment receipts); `None` keeps only their ids.
    pub media: Option<Arc<dyn MediaSource>>,
    /// The outbound queue, for messages rerouted to the next channel and the chatbot's
    /// replies; `None` never reroutes and the bot's replies are only stored.
    pub outbound: Option<Arc<dyn Queue>>,
    /// The deployment's payment links (Stripe Checkout) for tenants without a pay page.
    pub links: Option<Arc<dyn cobro::ports::PaymentLinks>>,
}

/// What one queue message did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub messages: u32,
    pub statuses: u32,
    pub duplicates: u32,
    /// Messages another run holds (applying them, or died doing so less than a lease ago):
    /// the queue message fails, to come again once that run finished or its lease ran out.
    pub in_progress: u32,
    pub unmatched: u32,
    pub statuses_unmatched: u32,
    pub opt_changes: u32,
    pub preferences: u32,
    pub errors: u32,
    pub unhandled: u32,
    pub unrouted: u32,
    pub other: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The queue message itself is unreadable: retrying will not help.
    #[error("unreadable queue message: {0}")]
    Malformed(String),
    #[error("the stored delivery {0} is missing")]
    MissingBlob(String),
    #[error("the blob store failed: {0}")]
    Blobs(String),
    #[error("the event bus failed: {0}")]
    Bus(String),
    #[error("the queue failed: {0}")]
    Queue(String),
    #[error(transparent)]
    Store(#[from] RepoError),
    /// Messages of the delivery that another run holds; the rest is applied.
    #[error("{0} message(s) held by another run; to be received again")]
    InProgress(u32),
}

/// The queue message the webhook sends for one delivery (`cobro_webhook::InboundJob`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundJob {
    pub source: String,
    /// Where the raw body is kept.
    pub blob: String,
    /// The raw body, unless the webhook stored it under `blob` itself (a large one).
    #[serde(default)]
    pub body: Option<String>,
    pub received_at: jiff::Timestamp,
}

/// One message of a queue batch.
#[derive(Debug, Clone, Copy)]
pub struct QueueRecord<'a> {
    pub message_id: &'a str,
    pub body: &'a str,
    /// When the queue got it (SQS's `SentTimestamp`): the time of an inbound SMS that carries
    /// none of its own.
    pub sent_at: Option<jiff::Timestamp>,
}

/// The time a message is not started with less left before the invocation's deadline: one
/// cut off midway holds its claims for a lease, and its retry waits for that; one not started
/// comes again at once.
pub const RECORD_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(10);

impl Inbound {
    /// A queue batch, one message after another; returns the ids of the messages to receive
    /// again (SQS's batch item failures). With the invocation's `deadline`, the messages left
    /// when less than `RECORD_MARGIN` remains are not started and come again.
    pub async fn handle_batch(
        &self,
        records: &[QueueRecord<'_>],
        deadline: Option<jiff::Timestamp>,
    ) -> Vec<String> {
        let mut failed = Vec::new();
        for (n, record) in records.iter().enumerate() {
            if self.too_late_to_start(deadline) {
                tracing::warn!(
                    left = records.len() - n,
                    "the invocation's time is nearly up: the rest comes again"
                );
                failed.extend(records[n..].iter().map(|r| r.message_id.to_string()));
                break;
            }
            let span = logs::message(record.message_id);
            let handled = self.handle_sent(record.body, record.sent_at);
            match handled.instrument(span).await {
                Ok(report) => tracing::info!(?report, "applied"),
                Err(e) => {
                    log_failure(&e);
                    failed.push(record.message_id.to_string());
                }
            }
        }
        failed
    }

    fn too_late_to_start(&self, deadline: Option<jiff::Timestamp>) -> bool {
        deadline.is_some_and(|d| {
            self.clock
                .now()
                .saturating_add(RECORD_MARGIN)
                .expect("in range")
                > d
        })
    }

    /// One queue message. `Err` leaves it on the queue to be received again.
    pub async fn handle(&self, body: &str) -> Result<Report, InboundError> {
        self.handle_sent(body, None).await
    }

    /// One queue message and when the queue got it, if known (`QueueRecord::sent_at`).
    pub async fn handle_sent(
        &self,
        body: &str,
        queued_at: Option<jiff::Timestamp>,
    ) -> Result<Report, InboundError> {
        if let Ok(job) = serde_json::from_str::<InboundJob>(body) {
            return self.whatsapp_delivery(job).await;
        }
        if let Some(notification) = sms::Notification::parse(body) {
            return self.sms(notification, queued_at).await;
        }
        // Not quoted: it may be a debtor's message, and this error is logged. The message
        // itself stays in the dead-letter queue.
        Err(InboundError::Malformed(format!(
            "neither a stored delivery nor an SNS notification ({} bytes)",
            body.len()
        )))
    }

    async fn whatsapp_delivery(&self, job: InboundJob) -> Result<Report, InboundError> {
        let raw = match job.body {
            Some(body) => {
                // Kept as it came before anything is applied: Meta has no replay API. The key
                // is content-addressed, so a redelivered message rewrites the same bytes.
                let raw = body.into_bytes();
                self.blobs
                    .put(&job.blob, raw.clone(), "application/json")
                    .await
                    .map_err(|e| InboundError::Blobs(e.to_string()))?;
                raw
            }
            None => self
                .blobs
                .get(&job.blob)
                .await
                .map_err(|e| InboundError::Blobs(e.to_string()))?
                .ok_or_else(|| InboundError::MissingBlob(job.blob.clone()))?,
        };
        let routed = whatsapp::events(&raw, job.received_at);
        self.apply_all(routed, &job.blob, job.received_at).await
    }

    async fn sms(
        &self,
        n: sms::Notification,
        queued_at: Option<jiff::Timestamp>,
    ) -> Result<Report, InboundError> {
        // The clock only when the delivery says nothing (a bare message handed over without
        // its queue's time): then a retry is another message.
        let at = n.sent_at(queued_at).unwrap_or_else(|| self.clock.now());
        let day = at.to_zoned(jiff::tz::TimeZone::UTC).date();
        let key = format!("inbound/sms/{day}/{}.json", n.digest());
        self.blobs
            .put(&key, n.raw.clone().into_bytes(), "application/json")
            .await
            .map_err(|e| InboundError::Blobs(e.to_string()))?;
        let routed = n.events(at);
        self.apply_all(routed, &key, at).await
    }

    /// `received_at`: when the delivery came (not when it is applied), so what is kept of it
    /// (an unrouted or unhandled event) is kept under the same key however often it comes.
    async fn apply_all(
        &self,
        routed: Vec<Routed>,
        blob: &str,
        received_at: jiff::Timestamp,
    ) -> Result<Report, InboundError> {
        let mut report = Report::default();
        let mut statuses = Vec::new();
        let mut tenants: Vec<(ChannelKind, String, Option<TenantId>)> = Vec::new();
        for (n, r) in routed.iter().enumerate() {
            let known = tenants
                .iter()
                .find(|(c, num, _)| *c == r.channel && *num == r.to_number)
                .map(|(_, _, t)| t.clone());
            let tenant = match known {
                Some(t) => t,
                None => {
                    let t = self.tenant_of(r.channel, &r.to_number).await?;
                    if t.is_none() {
                        self.store
                            .record_unrouted(r.channel.as_str(), &r.to_number, blob, received_at)
                            .await?;
                        tracing::warn!(channel = r.channel.as_str(), number = %r.to_number, "delivery for a number no tenant has; kept");
                    }
                    tenants.push((r.channel, r.to_number.clone(), t.clone()));
                    t
                }
            };
            let Some(tenant) = tenant else {
                report.unrouted += 1;
                continue;
            };
            cobro::logs::record_tenant(&tenant);
            let place = apply::Place {
                tenant: &tenant,
                channel: r.channel,
                to_number: &r.to_number,
                blob,
                n,
                received_at,
            };
            self.apply(&place, &r.event, &mut report, &mut statuses)
                .await?;
        }
        // If this fails (or anything above did), the message comes again and each status
        // applied this time is announced then (`Applied::Before`).
        if !statuses.is_empty() {
            self.bus
                .publish(statuses)
                .await
                .map_err(|e| InboundError::Bus(e.to_string()))?;
        }
        if report.in_progress > 0 {
            return Err(InboundError::InProgress(report.in_progress));
        }
        Ok(report)
    }

    async fn tenant_of(
        &self,
        channel: ChannelKind,
        number: &str,
    ) -> Result<Option<TenantId>, RepoError> {
        Ok(match channel {
            ChannelKind::Whatsapp => self.store.whatsapp_number(number).await?.map(|n| n.tenant),
            ChannelKind::Sms => self.store.sms_number(number).await?.map(|n| n.tenant),
            ChannelKind::Email => None,
        })
    }
}

fn log_failure(e: &InboundError) {
    let error = logs::scrub(&e.to_string());
    match e {
        // An unreadable message fails every time: the redrive keeps it in the DLQ.
        InboundError::Malformed(_) => {
            tracing::error!(%error, "unreadable; it will end in the dead-letter queue")
        }
        _ => tracing::warn!(%error, "will be received again"),
    }
}
