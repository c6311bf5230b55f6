//! Delivers cobro's published events to the webhook a tenant registered (for tenants who cannot
//! consume EventBridge). Its queue gets every published event from the bus, and its own
//! wake-ups for retries.
//!
//! One delivery per event id (a hash of the event, so a re-published event is one delivery);
//! each attempt is claimed before it is made, so a duplicated message never posts an attempt
//! twice. A failed attempt is tried again on `webhook::SCHEDULE` (about two days); after the
//! last one the delivery is kept as failed, listed by the CRM API and sent again from it.

pub mod resolve;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

use cobro::domain::TenantId;
use cobro::events::is_published;
use cobro::events::webhook::{
    backoff, check_url, event_id, signature, wake_message, Payload, Targets, ATTEMPT_HEADER,
    EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER,
};
use cobro::ports::queue::MAX_DELAY;
use cobro::ports::{Clock, Outgoing, Queue};
use cobro::repo::{
    AttemptResult, DeliveryStatus, RepoError, Store, WebhookDelivery, WebhookEndpoint,
};

/// A receiver has this long to answer an attempt.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// What is kept of a failing receiver's answer, for the tenant to see why.
const MAX_ERROR_BODY: usize = 300;

pub struct EventsOut {
    pub store: Store,
    /// This function's own queue: retries are wake-ups sent to it with a delay.
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// Built on the first post: most events are for tenants without a webhook and need none.
    pub http: HttpClient,
    /// The pause before each attempt (`webhook::SCHEDULE`; shorter in tests).
    pub schedule: Vec<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Will never be delivered: the message is malformed.
    #[error("invalid message: {0}")]
    Invalid(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("the queue failed: {0}")]
    Queue(String),
}

/// What one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not for a webhook: internal event, or the tenant has none or does not want this type.
    Skipped(&'static str),
    Delivered {
        id: String,
        attempt: u32,
    },
    /// The attempt failed; a wake-up for the next one is queued.
    Retrying {
        id: String,
        attempt: u32,
    },
    /// The last attempt failed; the delivery is kept as failed.
    Failed {
        id: String,
        attempts: u32,
    },
    /// Not due yet: a wake-up is queued for then.
    Waiting {
        id: String,
    },
    /// Delivered or failed already, or another worker holds the attempt.
    Done {
        id: String,
    },
}

/// The messages on the queue: EventBridge's envelope, or a wake-up.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Message {
    Wake {
        wake: Wake,
    },
    Envelope {
        #[serde(rename = "detail-type")]
        detail_type: String,
        #[serde(default)]
        time: Option<String>,
        detail: serde_json::Value,
    },
}

#[derive(Debug, Deserialize)]
struct Wake {
    tenant: TenantId,
    id: String,
}

/// The HTTP client deliveries go out with, built once on first use: no redirects (a receiver
/// answers, it does not send the event elsewhere), a bounded time, the public CAs' roots, and
/// what it may reach (`Targets`).
pub struct HttpClient {
    client: cobro::https::LazyClient,
    targets: Targets,
}

/// The local stack's and the tests': receivers on loopback too.
impl Default for HttpClient {
    fn default() -> Self {
        Self::new(Targets::AlsoLoopback)
    }
}

impl HttpClient {
    /// A deployment's: public addresses only, checked in the URL and again when a host name
    /// is resolved.
    pub fn public() -> Self {
        Self::new(Targets::Public)
    }

    fn new(targets: Targets) -> Self {
        let client = cobro::https::LazyClient::new(move || {
            let builder = cobro::https::client_builder()
                .timeout(TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("cobro-webhooks/", env!("CARGO_PKG_VERSION")));
            match targets {
                // No proxy: a proxy would resolve the host itself, past the resolver's guard.
                Targets::Public => builder.dns_resolver(resolve::PublicResolver).no_proxy(),
                Targets::AlsoLoopback => builder,
            }
        });
        Self { client, targets }
    }

    fn get(&self) -> Result<&reqwest::Client, String> {
        self.client
            .get()
            .map_err(|e| format!("the HTTP client: {}", error_chain(&e)))
    }
}

impl EventsOut {
    pub async fn handle(&self, body: &str) -> Result<Outcome, DeliveryError> {
        let message: Message = serde_json::from_str(body)
            .map_err(|e| DeliveryError::Invalid(format!("not an event or a wake-up: {e}")))?;
        match message {
            Message::Envelope {
                detail_type,
                time,
                detail,
            } => self.first(&detail_type, time, detail).await,
            Message::Wake { wake } => {
                let Some(d) = self.store.delivery(&wake.tenant, &wake.id).await? else {
                    return Ok(Outcome::Skipped("no such delivery"));
                };
                self.advance(d).await
            }
        }
    }

    async fn first(
        &self,
        detail_type: &str,
        time: Option<String>,
        detail: serde_json::Value,
    ) -> Result<Outcome, DeliveryError> {
        if !is_published(detail_type) {
            return Ok(Outcome::Skipped("not a published event"));
        }
        let tenant = detail
            .get("tenant")
            .and_then(|t| t.as_str())
            .ok_or_else(|| DeliveryError::Invalid(format!("a {detail_type} without a tenant")))
            .and_then(|t| {
                TenantId::parse(t).map_err(|e| DeliveryError::Invalid(format!("tenant: {e}")))
            })?;
        let Some(endpoint) = self.store.webhook(&tenant).await? else {
            return Ok(Outcome::Skipped("the tenant has no webhook"));
        };
        if !endpoint.wants(detail_type) {
            return Ok(Outcome::Skipped("the webhook does not take this event"));
        }
        let now = self.clock.now();
        let id = event_id(detail_type, &detail);
        let payload = Payload {
            id: id.clone(),
            kind: detail_type.to_string(),
            created_at: time.and_then(|t| t.parse().ok()).unwrap_or(now),
            data: detail,
        };
        let delivery = WebhookDelivery {
            tenant,
            id,
            event_type: detail_type.to_string(),
            body: serde_json::to_string(&payload).expect("serializes"),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_ms: 0,
            last_status: None,
            last_error: None,
            last_attempt_at: None,
            created_at: now,
            delivered_at: None,
            failed_at: None,
        };
        // A re-published event finds its delivery: it goes on from where it is (a first
        // message whose worker died before queueing a wake-up is picked up this way).
        let (delivery, _) = self.store.create_delivery(&delivery).await?;
        self.advance_with(delivery, Some(endpoint)).await
    }

    async fn advance(&self, d: WebhookDelivery) -> Result<Outcome, DeliveryError> {
        self.advance_with(d, None).await
    }

    async fn advance_with(
        &self,
        d: WebhookDelivery,
        endpoint: Option<WebhookEndpoint>,
    ) -> Result<Outcome, DeliveryError> {
        let id = d.id.clone();
        if d.status != DeliveryStatus::Pending {
            return Ok(Outcome::Done { id });
        }
        let now = self.clock.now();
        let wait_ms = d.next_attempt_ms - now.as_millisecond();
        if wait_ms > 0 {
            self.wake(&d, Duration::from_millis(wait_ms as u64)).await?;
            return Ok(Outcome::Waiting { id });
        }
        let endpoint = match endpoint {
            Some(e) => Some(e),
            None => self.store.webhook(&d.tenant).await?,
        };
        let Some(d) = self.store.claim_delivery_attempt(&d, now).await? else {
            return Ok(Outcome::Done { id });
        };
        let attempt = d.attempts;
        let (status, error) = match &endpoint {
            Some(endpoint) => self.post(endpoint, &d, now).await,
            None => (None, Some("the webhook was removed".to_string())),
        };
        let result = match error {
            None => AttemptResult::Delivered {
                status: status.unwrap_or(200),
            },
            Some(error) => match backoff(&self.schedule, attempt).filter(|_| endpoint.is_some()) {
                Some(pause) => AttemptResult::Retry {
                    status,
                    error,
                    next_ms: now.as_millisecond() + pause.as_millis() as i64,
                },
                None => AttemptResult::GiveUp { status, error },
            },
        };
        let ended = self.clock.now();
        if !self.store.end_delivery_attempt(&d, &result, ended).await? {
            // Taken over after the lease lapsed: the other worker's result stands.
            return Ok(Outcome::Done { id });
        }
        Ok(match result {
            AttemptResult::Delivered { .. } => {
                tracing::info!(delivery = %id, attempt, "webhook delivered");
                Outcome::Delivered { id, attempt }
            }
            AttemptResult::Retry { error, next_ms, .. } => {
                tracing::warn!(delivery = %id, attempt, error = %cobro::logs::scrub(&error), "webhook attempt failed; will retry");
                let wait = Duration::from_millis((next_ms - ended.as_millisecond()).max(0) as u64);
                self.wake(&d, wait).await?;
                Outcome::Retrying { id, attempt }
            }
            AttemptResult::GiveUp { error, .. } => {
                tracing::error!(delivery = %id, attempts = attempt, error = %cobro::logs::scrub(&error), "webhook delivery failed for good; kept for the tenant");
                cobro::metrics::count(cobro::metrics::WEBHOOK_DELIVERIES_FAILED, 1);
                Outcome::Failed {
                    id,
                    attempts: attempt,
                }
            }
        })
    }

    /// Queues a wake-up for the delivery (SQS delays at most 15 minutes: a longer wait is
    /// several wake-ups, each finding it not yet due).
    async fn wake(&self, d: &WebhookDelivery, wait: Duration) -> Result<(), DeliveryError> {
        let message =
            Outgoing::new("0", wake_message(&d.tenant, &d.id)).delayed(wait.min(MAX_DELAY));
        self.queue
            .send_batch(vec![message])
            .await
            .map_err(|e| DeliveryError::Queue(e.to_string()))
    }

    /// One attempt: the response's status, and what went wrong (`None`: a 2xx).
    async fn post(
        &self,
        endpoint: &WebhookEndpoint,
        d: &WebhookDelivery,
        now: Timestamp,
    ) -> (Option<u16>, Option<String>) {
        // Checked again at each send: an address written in the URL is not resolved, and a
        // webhook registered before a rule tightened must not reach past it. The URL posted to
        // is the one checked, parsed once: the host checked is the host connected to.
        let url = match check_url(&endpoint.url, self.http.targets) {
            Ok(url) => url,
            Err(why) => return (None, Some(format!("the webhook's URL {why}"))),
        };
        let signed = signature(&endpoint.signing_secrets(now), now, d.body.as_bytes());
        let http = match self.http.get() {
            Ok(c) => c,
            Err(e) => return (None, Some(e)),
        };
        let sent = http
            .post(url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signed)
            .header(EVENT_ID_HEADER, &d.id)
            .header(EVENT_TYPE_HEADER, &d.event_type)
            .header(ATTEMPT_HEADER, d.attempts.to_string())
            .body(d.body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let text: String = text.chars().take(MAX_ERROR_BODY).collect();
                (Some(status), Some(format!("HTTP {status}: {text}")))
            }
            Err(e) if e.is_timeout() => (None, Some(format!("no answer within {TIMEOUT:?}"))),
            Err(e) => (None, Some(format!("could not post: {}", error_chain(&e)))),
        }
    }
}

/// The error with its causes (reqwest's own message alone says little: "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Handles a batch of queue messages concurrently (a slow receiver must not hold the others);
/// returns the ids of the messages to receive again. Malformed ones are logged and dropped:
/// redelivering them cannot help.
pub async fn handle_batch(out: &Arc<EventsOut>, records: Vec<(String, String)>) -> Vec<String> {
    use tracing::Instrument;
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    for (id, body) in records {
        let out = out.clone();
        // A spawned task does not inherit the span: each message gets its own, under this one.
        let span = cobro::logs::message(&id);
        let task = tasks.spawn(async move { out.handle(&body).await }.instrument(span));
        ids.insert(task.id(), id);
    }
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, Ok(outcome))) => tracing::debug!(?outcome, "handled"),
            Ok((_, Err(DeliveryError::Invalid(e)))) => {
                tracing::error!(error = %cobro::logs::scrub(&e), "message dropped");
            }
            Ok((task, Err(e))) => {
                tracing::warn!(error = %cobro::logs::scrub(&e.to_string()), "will be received again");
                failed.extend(ids.remove(&task));
            }
            Err(e) => {
                tracing::error!(error = %e, "a delivery task failed");
                failed.extend(ids.remove(&e.id()));
            }
        }
    }
    failed
}
