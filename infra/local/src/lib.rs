//! The local stack: every cobro function in one process on the embedded adapters (SQLite,
//! in-process bus, sandbox channel), with the schedule ticking and the queue worker running.
//! The routers are the same ones the Lambda binaries serve.

pub mod demo;
mod local_routes;
mod sandbox_page;
pub mod settings;

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

use cobro::adapters::dir_blobs::DirBlobs;
use cobro::adapters::dir_secrets::DirSecrets;
use cobro::adapters::local_bus::LocalBus;
use cobro::adapters::sandbox::SandboxChannel;
use cobro::adapters::sqlite::{Redrive, SqliteQueue, SqliteStore, SqliteTable};
use cobro::collect::Decider;
use cobro::ports::secrets::DEFAULT_TTL;
use cobro::ports::{
    CachedSecrets, Channels, Clock, DeploymentSecrets, Pattern, Queue, ShiftedClock,
    WhatsAppSecrets,
};
use cobro::repo::Store;
use cobro::{logs, metrics};
use cobro_crm_api::exports::ExportFiles;
use cobro_crm_api::CrmApi;
use cobro_events_out::EventsOut;
use cobro_export::Exporter;
use cobro_inbound::Inbound;
use cobro_payment_confirmed::PaymentHandler;
use cobro_reminders::{Reminders, TickReport};
use cobro_sender::{Pacer, Sender};
use cobro_webhook::Webhook;
use tracing::Instrument;

pub use settings::Settings;

/// How long a message the worker took stays hidden from it (as the Lambda's visibility timeout).
const VISIBILITY: Duration = Duration::from_secs(30);
/// Receipts before a message goes to its dead-letter queue, as the SAM template's redrive.
const MAX_RECEIVES: u32 = 5;

pub struct LocalStack {
    pub settings: Settings,
    pub store: Store,
    pub table: SqliteTable,
    pub clock: Arc<ShiftedClock>,
    pub channel: Arc<SandboxChannel>,
    pub outbound: Arc<SqliteQueue>,
    pub outbound_dlq: Arc<SqliteQueue>,
    pub inbound: Arc<SqliteQueue>,
    pub inbound_dlq: Arc<SqliteQueue>,
    pub blobs: Arc<DirBlobs>,
    pub payments: Arc<SqliteQueue>,
    pub payments_dlq: Arc<SqliteQueue>,
    /// Secrets Manager's stand-in: `<data dir>/secrets`.
    pub secrets: Arc<DirSecrets>,
    pub reminders: Reminders,
    pub sender: Arc<Sender>,
    pub payment_handler: PaymentHandler,
    pub inbound_handler: Inbound,
    pub webhook: Arc<Webhook>,
    pub crm: Arc<CrmApi>,
    /// Export files, served by `/_local/files/…` (the stand-in for presigned S3 links).
    pub files: Arc<DirBlobs>,
    pub exports: Arc<SqliteQueue>,
    pub exports_dlq: Arc<SqliteQueue>,
    pub exporter: Arc<Exporter>,
    /// Published events on their way to tenants' webhooks, and the deliveries' wake-ups.
    pub events_out: Arc<SqliteQueue>,
    pub events_out_dlq: Arc<SqliteQueue>,
    pub events_out_handler: Arc<EventsOut>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening the data directory: {0}")]
    Store(#[from] cobro::ports::TableError),
    #[error("loading the demo tenant: {0}")]
    Seed(#[from] demo::SeedError),
    #[error("the Graph API client: {0}")]
    Graph(String),
}

/// The sandbox for every channel, or WhatsApp through a Graph API server when one is set.
fn channels(settings: &Settings, sandbox: &Arc<SandboxChannel>) -> Result<Channels, StartError> {
    let all = Channels::all(sandbox.clone());
    let Some(url) = &settings.graph_url else {
        return Ok(all);
    };
    let config =
        cobro::whatsapp::client::GraphConfig::new(url.clone(), settings.graph_token.clone());
    let client = cobro::whatsapp::client::GraphClient::new(config)
        .map_err(|e| StartError::Graph(e.to_string()))?;
    Ok(all.with(
        cobro::domain::ChannelKind::Whatsapp,
        Arc::new(cobro::whatsapp::channel::WhatsAppChannel::new(client)),
    ))
}

/// The function a request is for, as the Lambda that serves the route on AWS.
fn function_of(request: &axum::extract::Request) -> &'static str {
    let path = request.uri().path();
    if path.starts_with(cobro_webhook::PATH) {
        "webhook"
    } else if path.starts_with("/v1/") {
        "crm-api"
    } else {
        "local"
    }
}

/// What one drain of the queues did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    pub sent: u32,
    pub cancelled: u32,
    pub failed: u32,
    pub skipped: u32,
    /// Queued again with a delay (pacing, throttling, temporary failures).
    pub deferred: u32,
    /// Waiting for a stopped channel to be resumed.
    pub parked: u32,
    pub dead_lettered: u32,
    pub retried: u32,
    pub inbound_applied: u32,
    pub inbound_failed: u32,
    pub payments_applied: u32,
    pub payments_duplicate: u32,
    /// Not applied: the payment id was applied to another account (listed in suspense, once).
    pub payments_applied_elsewhere: u32,
    /// Kept in the suspense list (unknown account, another currency).
    pub payments_suspended: u32,
    pub payments_rejected: u32,
    pub exports_done: u32,
    /// Given up after their tries (the job says why).
    pub exports_failed: u32,
    /// Left on the queue to be tried again.
    pub exports_retried: u32,
    /// Events and wake-ups handled by the events-out function (delivered, retried later,
    /// skipped …: the delivery records say which).
    pub events_out_handled: u32,
    /// Left on the queue to be tried again.
    pub events_out_retried: u32,
}

impl LocalStack {
    pub async fn open(settings: Settings) -> Result<Arc<Self>, StartError> {
        let sqlite = SqliteStore::open(&settings.data_dir.join("cobro.db"))?;
        let table = sqlite.table();
        let store = Store::new(Arc::new(table.clone()));
        let clock = Arc::new(ShiftedClock::new());
        if let Some(at) = settings.start_at {
            clock.set(at);
        }
        let channel = Arc::new(SandboxChannel::new());
        let redrive = |dlq: &str| {
            Some(Redrive {
                dead_letter_queue: dlq.into(),
                max_receives: MAX_RECEIVES,
            })
        };
        let outbound = Arc::new(sqlite.queue("outbound", redrive("outbound-dlq")));
        let outbound_dlq = Arc::new(sqlite.queue("outbound-dlq", None));
        let inbound = Arc::new(sqlite.queue("inbound", redrive("inbound-dlq")));
        let inbound_dlq = Arc::new(sqlite.queue("inbound-dlq", None));
        let blobs = Arc::new(DirBlobs::new(settings.data_dir.join("blobs")));
        let payments = Arc::new(sqlite.queue("payments", redrive("payments-dlq")));
        let payments_dlq = Arc::new(sqlite.queue("payments-dlq", None));
        let exports = Arc::new(sqlite.queue("exports", redrive("exports-dlq")));
        let exports_dlq = Arc::new(sqlite.queue("exports-dlq", None));
        let events_out = Arc::new(sqlite.queue("events-out", redrive("events-out-dlq")));
        let events_out_dlq = Arc::new(sqlite.queue("events-out-dlq", None));
        let files = Arc::new(
            DirBlobs::new(settings.data_dir.join("files")).with_link_base("/_local/files"),
        );
        // As the SAM template's rules: PaymentConfirmed events go to the payment function,
        // ExportRequested events to the export queue, published events to the events-out queue.
        let bus: Arc<dyn cobro::ports::Bus> = Arc::new(
            LocalBus::new()
                .route(
                    Pattern {
                        sources: vec![],
                        detail_types: vec![cobro_payment_confirmed::DETAIL_TYPE.into()],
                    },
                    payments.clone() as Arc<dyn Queue>,
                )
                .route(
                    Pattern {
                        sources: vec![],
                        detail_types: vec![cobro_export::EXPORT_REQUESTED.into()],
                    },
                    exports.clone() as Arc<dyn Queue>,
                )
                .route(
                    Pattern {
                        sources: vec![],
                        detail_types: cobro::events::published().map(String::from).collect(),
                    },
                    events_out.clone() as Arc<dyn Queue>,
                ),
        );
        let secrets = Arc::new(DirSecrets::new(settings.data_dir.join("secrets")));
        demo::seed(
            &store,
            &settings.demo_api_key,
            &settings.app_secret,
            secrets.as_ref(),
            clock.now(),
        )
        .await?;
        let dyn_clock = clock.clone() as Arc<dyn Clock>;
        let exporter = Arc::new(Exporter {
            store: store.clone(),
            files: files.clone(),
            jobs: exports.clone(),
            clock: clock.clone() as Arc<dyn Clock>,
            tempdir: std::env::temp_dir(),
        });
        Ok(Arc::new(Self {
            files,
            exports,
            exports_dlq,
            exporter,
            reminders: Reminders {
                store: store.clone(),
                queue: outbound.clone(),
                clock: dyn_clock.clone(),
                decider: Decider::default(),
                bus: Some(bus.clone()),
            },
            sender: Arc::new(Sender {
                store: store.clone(),
                channels: channels(&settings, &channel)?,
                clock: dyn_clock.clone(),
                queue: outbound.clone(),
                dead_letters: Some(outbound_dlq.clone()),
                bus: bus.clone(),
                pacer: Pacer::new(80),
            }),
            payment_handler: PaymentHandler {
                store: store.clone(),
                bus: Some(bus.clone()),
                outbound: Some(outbound.clone()),
                clock: dyn_clock.clone(),
            },
            inbound_handler: Inbound {
                store: store.clone(),
                blobs: blobs.clone(),
                bus: bus.clone(),
                clock: dyn_clock.clone(),
                // The sandbox has no media server: media ids are kept, not downloaded.
                media: None,
                outbound: Some(outbound.clone()),
                // The demo tenant has its own pay page; Stripe needs a deployment key.
                links: None,
            },
            webhook: Arc::new(Webhook {
                store: store.clone(),
                blobs: blobs.clone(),
                inbound: inbound.clone(),
                clock: dyn_clock.clone(),
                whatsapp: DeploymentSecrets::Fixed(WhatsAppSecrets {
                    access_token: settings.graph_token.clone(),
                    app_secret: settings.app_secret.clone(),
                    verify_token: settings.verify_token.clone(),
                }),
                // Read through the same cache as on Lambda, so the local stack behaves alike.
                secrets: Arc::new(CachedSecrets::new(secrets.clone(), DEFAULT_TTL)),
                secrets_prefix: String::new(),
            }),
            crm: Arc::new(CrmApi {
                store: store.clone(),
                bus,
                clock: dyn_clock,
                decider: Decider::default(),
                stripe: None,
                outbound: Some(outbound.clone()),
                events_out: Some(events_out.clone()),
                // Receivers on this machine, as in the tests and demos.
                webhook_targets: cobro::events::webhook::Targets::AlsoLoopback,
            }),
            events_out_handler: Arc::new(EventsOut {
                store: store.clone(),
                queue: events_out.clone(),
                clock: clock.clone() as Arc<dyn Clock>,
                http: Default::default(),
                schedule: settings.webhook_schedule.clone(),
            }),
            events_out,
            events_out_dlq,
            settings,
            store,
            table,
            clock,
            channel,
            outbound,
            outbound_dlq,
            inbound,
            inbound_dlq,
            blobs,
            payments,
            payments_dlq,
            secrets,
        }))
    }

    /// Every route: the webhook and the CRM API as on AWS, plus the local-only ones.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/health",
                get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
            )
            .merge(cobro_webhook::router(self.webhook.clone()))
            .merge(
                cobro_crm_api::router(self.crm.clone())
                    .layer(axum::Extension(ExportFiles(self.files.clone()))),
            )
            .merge(local_routes::router(self.clone()))
            .merge(sandbox_page::router(self.clone()))
            .layer(axum::middleware::from_fn_with_state(
                logs::HttpSpan {
                    function: function_of,
                    request_id: |r| {
                        r.headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .map(String::from)
                    },
                },
                logs::http_invocation,
            ))
    }

    pub async fn tick(&self) -> Result<TickReport, cobro_reminders::TickError> {
        let span = logs::invocation("reminders", &uuid::Uuid::new_v4().to_string());
        let report = self.reminders.tick().instrument(span.clone()).await;
        span.in_scope(|| metrics::flush("reminders"));
        report
    }

    /// Processes every queued message until the queues are empty (or only hold messages that
    /// are waiting out a retry).
    pub async fn drain(&self) -> Result<DrainReport, cobro::ports::QueueError> {
        let mut report = DrainReport::default();
        loop {
            let before = report.clone();
            self.drain_once(&mut report).await?;
            if report == before {
                return Ok(report);
            }
        }
    }

    async fn drain_once(&self, report: &mut DrainReport) -> Result<(), cobro::ports::QueueError> {
        use cobro::repo::PaymentOutcome;
        use cobro_sender::Outcome;
        for m in self.outbound.receive(10, VISIBILITY).await? {
            let span = logs::invocation("sender", &m.message_id);
            match self.sender.handle(&m.body).instrument(span).await {
                Ok(outcome) => {
                    match outcome {
                        Outcome::Sent { .. } => report.sent += 1,
                        Outcome::Cancelled(_) => report.cancelled += 1,
                        Outcome::Failed(_) => report.failed += 1,
                        Outcome::Skipped(_) => report.skipped += 1,
                        Outcome::Deferred { .. } => report.deferred += 1,
                        Outcome::Parked(_) | Outcome::Rescheduled { .. } => report.parked += 1,
                        Outcome::DeadLettered(_) => report.dead_lettered += 1,
                    }
                    self.outbound.delete(&m.receipt).await?;
                }
                // Left on the queue: it comes back after the visibility timeout.
                Err(e) => {
                    tracing::warn!(error = %logs::scrub(&e.to_string()), "send will be retried");
                    report.retried += 1;
                }
            }
        }
        for m in self.inbound.receive(10, VISIBILITY).await? {
            let span = logs::invocation("inbound", &m.message_id);
            match self
                .inbound_handler
                .handle(&m.body)
                .instrument(span.clone())
                .await
            {
                Ok(applied) => {
                    span.in_scope(|| tracing::info!(?applied, "applied"));
                    report.inbound_applied += 1;
                    self.inbound.delete(&m.receipt).await?;
                }
                Err(e) => {
                    tracing::warn!(error = %logs::scrub(&e.to_string()), "inbound not applied; it will be received again");
                    report.inbound_failed += 1;
                }
            }
        }
        for m in self.payments.receive(10, VISIBILITY).await? {
            let span = logs::invocation("payment-confirmed", &m.message_id);
            match self
                .payment_handler
                .handle_envelope(&m.body)
                .instrument(span)
                .await
            {
                Ok(PaymentOutcome::Applied { .. }) => report.payments_applied += 1,
                Ok(PaymentOutcome::Duplicate) => report.payments_duplicate += 1,
                Ok(PaymentOutcome::AppliedElsewhere { .. }) => {
                    report.payments_applied_elsewhere += 1
                }
                Ok(PaymentOutcome::Suspense { .. }) => report.payments_suspended += 1,
                Ok(PaymentOutcome::Ignored { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %logs::scrub(&e.to_string()), "payment not applied");
                    report.payments_rejected += 1;
                    continue;
                }
            }
            self.payments.delete(&m.receipt).await?;
        }
        // One export at a time: each streams a whole file.
        for m in self.exports.receive(1, VISIBILITY).await? {
            let span = logs::invocation("export", &m.message_id);
            match self.exporter.handle(&m.body).instrument(span).await {
                Ok(cobro_export::Outcome::Failed(_)) => report.exports_failed += 1,
                Ok(cobro_export::Outcome::Exported { .. }) => report.exports_done += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %logs::scrub(&e.to_string()), "export will be retried");
                    report.exports_retried += 1;
                    continue;
                }
            }
            self.exports.delete(&m.receipt).await?;
        }
        let batch: Vec<_> = self
            .events_out
            .receive(10, VISIBILITY)
            .await?
            .into_iter()
            .map(|m| ((m.message_id.clone(), m.body.clone()), m))
            .collect();
        if !batch.is_empty() {
            let (records, received): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let span = logs::invocation("events-out", &uuid::Uuid::new_v4().to_string());
            let failed = cobro_events_out::handle_batch(&self.events_out_handler, records)
                .instrument(span)
                .await;
            for m in received {
                if failed.contains(&m.message_id) {
                    report.events_out_retried += 1;
                } else {
                    report.events_out_handled += 1;
                    self.events_out.delete(&m.receipt).await?;
                }
            }
        }
        // One process serves every function here: its metrics go to the debug log together.
        metrics::flush("local");
        Ok(())
    }

    /// The schedule, the queue worker and the TTL sweeper, as background tasks.
    pub fn spawn_background(self: &Arc<Self>) {
        if let Some(every) = self.settings.tick_every {
            let me = self.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                loop {
                    interval.tick().await;
                    if let Err(e) = me.tick().await {
                        tracing::error!(error = %e, "reminders tick failed");
                    }
                }
            });
        }
        if let Some(every) = self.settings.poll_every {
            let me = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = me.drain().await {
                        tracing::error!(error = %e, "queue worker failed");
                    }
                    let now = me.clock.now().as_second();
                    if let Err(e) = me.table.purge_expired(now).await {
                        tracing::error!(error = %e, "TTL sweep failed");
                    }
                }
            });
        }
    }
}
