//! The WhatsApp webhook: Meta's GET verification handshake, and POST deliveries, which are
//! verified, kept as they came and queued for the `inbound` function, then acknowledged at
//! once. Meta redelivers for 7 days whatever is slow or fails, and has no replay API, so the
//! receiver does the least that makes a delivery safe: check the signature and enqueue the raw
//! body. A body too large for a queue message is stored in the bucket first and the message
//! carries its key; the `inbound` function keeps every other body there before applying it, so
//! each delivery is kept as it came either way, under the same content-addressed key.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use cobro::http::Problem;
use cobro::ports::{secrets, Blobs, Clock, DeploymentSecrets, Outgoing, Queue, Secrets};
use cobro::repo::Store;
use cobro::whatsapp::signature;

pub const PATH: &str = "/webhooks/whatsapp";

pub struct Webhook {
    pub store: Store,
    /// Only deliveries too large for a queue message are stored here.
    pub blobs: Arc<dyn Blobs>,
    /// Where deliveries wait for the `inbound` function.
    pub inbound: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// The deployment's secrets, read per request (through a cache when stored, so a rotation
    /// is picked up without a redeploy). `verify_token`: typed into Meta's App Dashboard, the
    /// GET handshake must echo it. `app_secret`: verifies deliveries for numbers that are not
    /// registered (yet), so those are kept too rather than refused, and for registered numbers
    /// that have no secret of their own; empty means none.
    pub whatsapp: DeploymentSecrets,
    /// Where a registered number's own app secret is (`<prefix>whatsapp/<phone_number_id>`);
    /// cached per process by the caller.
    pub secrets: Arc<dyn Secrets>,
    pub secrets_prefix: String,
}

/// The queue message for one delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundJob {
    /// `whatsapp` for Meta's webhooks.
    pub source: String,
    /// Where the raw body is kept: by day and content (`blob_key`), so a redelivery of the same
    /// bytes lands on the same key.
    pub blob: String,
    /// The raw body, when the message can carry it; `inbound` stores it under `blob` before
    /// applying it. Absent: the webhook stored it there already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub received_at: jiff::Timestamp,
}

/// The largest queue message that carries its body: SQS takes 256 KiB (message and
/// attributes); the rest is headroom. Meta's deliveries are a few KB, so nearly all travel
/// inline.
pub const INLINE_MAX: usize = 200 * 1024;

/// The largest delivery read. Meta sends up to 3 MB per POST (1,000 updates), and axum reads
/// only 2 MB unless told: a delivery refused for its size is redelivered for 7 days, then
/// dropped. On AWS, Lambda's 6 MB synchronous payload limit (the whole API Gateway event)
/// refuses anything near this before the function runs.
pub const MAX_BODY: usize = 6 * 1024 * 1024;

pub fn router(state: Arc<Webhook>) -> Router {
    Router::new()
        .route(PATH, get(verify).post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn verify(State(s): State<Arc<Webhook>>, Query(h): Query<Handshake>) -> Response {
    let expected = match s.whatsapp.get().await {
        Ok(w) => w.verify_token,
        Err(e) => return unreadable_secret(e).into_response(),
    };
    // An empty verify token (emptied after start) matches nothing.
    let token_ok = !expected.is_empty()
        && h.verify_token
            .as_deref()
            .is_some_and(|t| signature::tokens_match(t, &expected));
    // The token first: without it, nothing is said about what else is wrong.
    if !token_ok {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "hub.verify_token does not match the verify token",
        )
        .into_response();
    }
    match (h.mode.as_deref(), h.challenge) {
        (Some("subscribe"), Some(challenge)) => (StatusCode::OK, challenge).into_response(),
        (Some("subscribe"), None) => {
            Problem::invalid_field("hub.challenge", "is missing: Meta sends one to echo back")
                .into_response()
        }
        _ => Problem::invalid_field("hub.mode", "must be `subscribe`").into_response(),
    }
}

async fn receive(
    State(s): State<Arc<Webhook>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => return unreadable(e).into_response(),
    };
    match s.handle(&headers, &body).await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(p) => p.into_response(),
    }
}

/// A body that could not be read, in the API's error shape rather than axum's plain text.
fn unreadable(e: BytesRejection) -> Problem {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("a delivery is at most {MAX_BODY} bytes"),
        );
    }
    Problem::bad_request(format!("cannot read the body: {}", e.body_text()))
}

/// Only what routing needs: the numbers a delivery is for. Anything else may be malformed;
/// the `inbound` function deals with that, after the body is safe.
#[derive(Deserialize)]
struct Routing {
    #[serde(default)]
    entry: Vec<RoutingEntry>,
}

#[derive(Deserialize)]
struct RoutingEntry {
    #[serde(default)]
    changes: Vec<RoutingChange>,
}

#[derive(Deserialize)]
struct RoutingChange {
    #[serde(default)]
    value: RoutingValue,
}

#[derive(Deserialize, Default)]
struct RoutingValue {
    #[serde(default)]
    metadata: Option<RoutingMetadata>,
}

#[derive(Deserialize)]
struct RoutingMetadata {
    phone_number_id: String,
}

/// The most numbers one delivery may be for. Each one is read from the store (its tenant, its
/// secret) before the signature can be checked, so an unsigned body must not choose how many
/// reads it costs; a business has a few numbers on an app.
pub const MAX_NUMBERS: usize = 10;

/// Meta's phone number ids are digits (15 or 16 today); 20 leaves room, and keeps an unsigned
/// body from making a key the table refuses.
const MAX_ID_DIGITS: usize = 20;

fn is_phone_number_id(id: &str) -> bool {
    (1..=MAX_ID_DIGITS).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

/// The distinct numbers a delivery is for, checked before any of them is looked up. None for a
/// body that is not JSON of Meta's shape: the deployment's secret must verify it.
fn phone_number_ids(raw: &[u8]) -> Result<Vec<String>, Problem> {
    let Ok(r) = serde_json::from_slice::<Routing>(raw) else {
        return Ok(Vec::new());
    };
    let mut ids: Vec<String> = r
        .entry
        .into_iter()
        .flat_map(|e| e.changes)
        .filter_map(|c| c.value.metadata.map(|m| m.phone_number_id))
        .collect();
    if !ids.iter().all(|id| is_phone_number_id(id)) {
        return Err(Problem::invalid_field(
            "entry[].changes[].value.metadata.phone_number_id",
            format!("must be 1 to {MAX_ID_DIGITS} digits"),
        ));
    }
    ids.sort();
    ids.dedup();
    if ids.len() > MAX_NUMBERS {
        return Err(Problem::bad_request(format!(
            "a delivery is for at most {MAX_NUMBERS} numbers, this one names {}",
            ids.len()
        )));
    }
    Ok(ids)
}

/// Where a delivery's raw body is kept: by day and by content, so a redelivery of the same
/// bytes lands on the same blob.
pub fn blob_key(day: jiff::civil::Date, raw: &[u8]) -> String {
    format!(
        "webhooks/whatsapp/{day}/{}.json",
        hex::encode(Sha256::digest(raw))
    )
}

/// A secret that cannot be read now: 503, so Meta retries.
fn unreadable_secret(e: secrets::SecretsError) -> Problem {
    Problem::unavailable(format!("cannot read the deployment's WhatsApp secret: {e}"))
}

impl Webhook {
    /// A registered number's own app secret, if it has one.
    async fn own_app_secret(&self, phone_number_id: &str) -> Result<Option<String>, Problem> {
        Ok(
            secrets::whatsapp_number(&*self.secrets, &self.secrets_prefix, phone_number_id)
                .await
                .map_err(|e| Problem::unavailable(format!("cannot read the number's secret: {e}")))?
                .map(|s| s.app_secret)
                .filter(|s| !s.is_empty()),
        )
    }

    /// The deployment's app secret as it is now, if it has one.
    async fn default_app_secret(&self) -> Result<Option<String>, Problem> {
        let app_secret = self
            .whatsapp
            .get()
            .await
            .map_err(unreadable_secret)?
            .app_secret;
        Ok(Some(app_secret).filter(|s| !s.is_empty()))
    }

    /// Verifies, keeps and queues one delivery; returns the blob key. Nothing is stored unless
    /// the signature verifies.
    pub async fn handle(&self, headers: &HeaderMap, raw: &[u8]) -> Result<String, Problem> {
        let started = std::time::Instant::now();
        let kept = self.keep(headers, raw).await;
        cobro::metrics::millis(
            cobro::metrics::WEBHOOK_LATENCY,
            started.elapsed().as_secs_f64() * 1000.0,
        );
        kept
    }

    async fn keep(&self, headers: &HeaderMap, raw: &[u8]) -> Result<String, Problem> {
        let sig = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        if sig.is_none() {
            return Err(Problem::unauthorized("missing X-Hub-Signature-256"));
        }
        // Each registered number's own app secret, if it has one.
        let mut own = Vec::new();
        for id in phone_number_ids(raw)? {
            match self.store.whatsapp_number(&id).await? {
                Some(n) => {
                    tracing::Span::current().record("tenant", n.tenant.as_str());
                    own.push(self.own_app_secret(&id).await?);
                }
                None => {
                    tracing::warn!(phone_number_id = %id, "webhook for an unregistered WhatsApp number")
                }
            }
        }
        // The deployment's only when some number needs it, so a number with its own secret
        // does not depend on reading the deployment's.
        let default = if own.is_empty() || own.iter().any(Option::is_none) {
            self.default_app_secret().await?
        } else {
            None
        };
        // Every number in one delivery belongs to one app, so each one's secret (its own, else
        // the deployment's) must verify it; with no registered number, the deployment's must.
        let app_secrets: Vec<Option<&str>> = if own.is_empty() {
            vec![default.as_deref()]
        } else {
            own.iter()
                .map(|s| s.as_deref().or(default.as_deref()))
                .collect()
        };
        let verified = app_secrets
            .iter()
            .all(|s| s.is_some_and(|s| signature::verify(s.as_bytes(), raw, sig)));
        if !verified {
            return Err(Problem::unauthorized(
                "X-Hub-Signature-256 does not match the body",
            ));
        }
        let now = self.clock.now();
        let day = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let key = blob_key(day, raw);
        let mut job = InboundJob {
            source: "whatsapp".into(),
            blob: key.clone(),
            // Quoting only grows a body: one already over the limit is not tried.
            body: (raw.len() <= INLINE_MAX)
                .then(|| std::str::from_utf8(raw).ok().map(str::to_string))
                .flatten(),
            received_at: now,
        };
        let mut message = serde_json::to_string(&job).expect("serializes");
        if job.body.is_none() || message.len() > INLINE_MAX {
            // Too large for the queue (or not text): kept in the bucket before it is queued.
            self.blobs
                .put(&key, raw.to_vec(), "application/json")
                .await
                .map_err(|e| Problem::unavailable(format!("cannot keep the delivery: {e}")))?;
            job.body = None;
            message = serde_json::to_string(&job).expect("serializes");
        }
        self.inbound
            .send_batch(vec![Outgoing::new("0", message)])
            .await
            .map_err(|e| Problem::unavailable(format!("cannot queue the delivery: {e}")))?;
        Ok(key)
    }
}
