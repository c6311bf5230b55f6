//! `/_local/…`: controls that exist only in the local stack, for demos and tests — the clock,
//! the schedule, the queues, and a debtor's phone.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use cobro::domain::Phone;
use cobro::http::{parse_json, Problem};
use cobro::ports::Clock;
use cobro::whatsapp::signature;

use crate::{demo, LocalStack};

pub fn router(stack: Arc<LocalStack>) -> Router {
    Router::new()
        .route("/_local/status", get(status))
        .route("/_local/clock", get(clock).post(set_clock))
        .route("/_local/tick", post(tick))
        .route("/_local/drain", post(drain))
        .route("/_local/inbound", post(inbound))
        .route("/_local/files/{*key}", get(file))
        .route("/_local/exports/daily", post(daily_exports))
        .with_state(stack)
}

fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "local control failed");
    // Local only: the detail helps whoever is driving the stack, and nobody else sees it.
    Problem::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("local control failed: {e}"),
    )
}

async fn status(State(s): State<Arc<LocalStack>>) -> Result<Response, Problem> {
    let depth = |q: &Arc<cobro::adapters::sqlite::SqliteQueue>| {
        let q = q.clone();
        async move { q.depth().await }
    };
    Ok(Json(json!({
        "now": s.clock.now(),
        "data_dir": s.settings.data_dir,
        "queues": {
            "outbound": depth(&s.outbound).await.map_err(internal)?,
            "outbound-dlq": depth(&s.outbound_dlq).await.map_err(internal)?,
            "inbound": depth(&s.inbound).await.map_err(internal)?,
            "inbound-dlq": depth(&s.inbound_dlq).await.map_err(internal)?,
            "payments": depth(&s.payments).await.map_err(internal)?,
            "payments-dlq": depth(&s.payments_dlq).await.map_err(internal)?,
            "exports": depth(&s.exports).await.map_err(internal)?,
            "exports-dlq": depth(&s.exports_dlq).await.map_err(internal)?,
            "events-out": depth(&s.events_out).await.map_err(internal)?,
            "events-out-dlq": depth(&s.events_out_dlq).await.map_err(internal)?,
        },
        "tick_every_seconds": s.settings.tick_every.map(|d| d.as_secs()),
    }))
    .into_response())
}

async fn clock(State(s): State<Arc<LocalStack>>) -> Json<serde_json::Value> {
    Json(json!({ "now": s.clock.now() }))
}

/// `{"advance": "72h"}` (any jiff duration: "2d", "90m", "PT3H") or `{"set": "2026-03-01T12:00:00Z"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    #[serde(default)]
    advance: Option<String>,
    #[serde(default)]
    set: Option<String>,
}

async fn set_clock(State(s): State<Arc<LocalStack>>, body: Bytes) -> Result<Response, Problem> {
    let change: ClockChange = parse_json(&body)?;
    match (change.advance, change.set) {
        (Some(by), None) => {
            let span: jiff::Span = by.parse().map_err(|e| {
                Problem::invalid_field(
                    "advance",
                    format!("not a duration like \"72h\" or \"2d\": {e}"),
                )
            })?;
            let by = span
                .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .map_err(|e| Problem::invalid_field("advance", e.to_string()))?;
            s.clock.advance(by);
        }
        (None, Some(at)) => {
            let at: Timestamp = at.parse().map_err(|e| {
                Problem::invalid_field(
                    "set",
                    format!("not an RFC 3339 instant like \"2026-03-16T15:00:00Z\": {e}"),
                )
            })?;
            s.clock.set(at);
        }
        _ => {
            return Err(Problem::bad_request(
                "send exactly one of `advance` or `set`",
            ))
        }
    }
    Ok(Json(json!({ "now": s.clock.now() })).into_response())
}

async fn tick(State(s): State<Arc<LocalStack>>) -> Result<Response, Problem> {
    let report = s.tick().await.map_err(internal)?;
    Ok(Json(report).into_response())
}

async fn drain(State(s): State<Arc<LocalStack>>) -> Result<Response, Problem> {
    let report = s.drain().await.map_err(internal)?;
    Ok(Json(report).into_response())
}

/// A debtor writes to the demo number: `{"from": "+56912340001", "text": "hola"}`. It is turned
/// into the payload Meta would send, signed with the app secret, and goes through the
/// webhook's own handler.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inbound {
    from: Phone,
    #[serde(default)]
    text: String,
    /// A button or list row the debtor tapped: `{"id": "menu:balance", "title": "Ver mi saldo"}`.
    #[serde(default)]
    choice: Option<TappedChoice>,
    /// A photo (`"image"`) or a PDF (`"document"`) the debtor sends, e.g. a payment receipt.
    #[serde(default)]
    media: Option<String>,
}

#[derive(Deserialize)]
struct TappedChoice {
    id: String,
    title: String,
}

async fn inbound(State(s): State<Arc<LocalStack>>, body: Bytes) -> Result<Response, Problem> {
    let input: Inbound = parse_json(&body)?;
    if let Some(kind) = &input.media {
        if kind != "image" && kind != "document" {
            return Err(Problem::invalid_field("media", "is `image` or `document`"));
        }
    }
    if input.text.trim().is_empty() && input.choice.is_none() && input.media.is_none() {
        return Err(Problem::invalid_field("text", "write something"));
    }
    let now = s.clock.now();
    let wamid = format!("wamid.sandbox.{}", uuid::Uuid::new_v4().simple());
    // Meta's shapes: a text, or an interactive reply to a button.
    let message = match (&input.choice, &input.media) {
        (None, Some(kind)) => {
            let mut m = json!({
                "from": input.from.wa_id(), "id": wamid, "timestamp": now.as_second().to_string(),
                "type": kind,
            });
            m[kind.as_str()] = json!({
                "id": format!("sandbox-media-{}", uuid::Uuid::new_v4().simple()),
                "mime_type": if kind == "image" { "image/jpeg" } else { "application/pdf" },
                "sha256": "sandbox",
            });
            m
        }
        (None, None) => json!({
            "from": input.from.wa_id(), "id": wamid, "timestamp": now.as_second().to_string(),
            "type": "text", "text": { "body": input.text },
        }),
        (Some(c), _) => json!({
            "from": input.from.wa_id(), "id": wamid, "timestamp": now.as_second().to_string(),
            "type": "interactive",
            "interactive": { "type": "button_reply", "button_reply": { "id": c.id, "title": c.title } },
        }),
    };
    let payload = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "sandbox-waba",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": demo::DISPLAY_NUMBER,
                        "phone_number_id": demo::PHONE_NUMBER_ID,
                    },
                    "contacts": [{ "profile": { "name": "" }, "wa_id": input.from.wa_id() }],
                    "messages": [message],
                },
            }],
        }],
    });
    let raw = serde_json::to_vec(&payload).expect("serializes");
    let mut headers = HeaderMap::new();
    let sig = signature::sign(s.settings.app_secret.as_bytes(), &raw);
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&sig).expect("ascii"),
    );
    s.webhook.handle(&headers, &raw).await?;
    // The reply shows on the sandbox page at once, instead of at the worker's next poll.
    s.drain().await.map_err(internal)?;
    Ok((StatusCode::OK, Json(json!({ "message_id": wamid }))).into_response())
}

/// An export file: what a presigned S3 link downloads on AWS. Streamed, not read whole.
async fn file(
    State(s): State<Arc<LocalStack>>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Result<Response, Problem> {
    let path = s
        .files
        .file(&key)
        .map_err(|e| Problem::invalid_field("key", e.to_string()))?;
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Problem::not_found(format!("no file `{key}`")))
        }
        Err(e) => return Err(internal(e)),
    };
    let content_type = match key.rsplit('.').next() {
        Some("csv") => cobro::export::Format::Csv.content_type(),
        Some("xlsx") => cobro::export::Format::Xlsx.content_type(),
        Some("jsonl") => cobro::export::Format::Jsonl.content_type(),
        _ => "application/octet-stream",
    };
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response())
}

/// What the daily schedule does on AWS: `{}` for yesterday, or `{"date": "2026-03-01"}`.
async fn daily_exports(State(s): State<Arc<LocalStack>>, body: Bytes) -> Result<Response, Problem> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Daily {
        #[serde(default)]
        date: Option<jiff::civil::Date>,
    }
    let daily: Daily = if body.is_empty() {
        Daily { date: None }
    } else {
        parse_json(&body)?
    };
    let outcome = s.exporter.daily(daily.date).await.map_err(internal)?;
    let jobs = match outcome {
        cobro_export::Outcome::Scheduled { jobs } => jobs,
        _ => 0,
    };
    Ok(Json(json!({ "queued": jobs })).into_response())
}
