//! The WhatsApp webhook: Meta's GET verification handshake and the POST deliveries of inbound
//! messages, signed with the app secret of the number they were sent to.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jiff::Timestamp;
use serde::Deserialize;
use std::sync::Arc;

use cobro::domain::{ChannelKind, ConversationMessage, Direction, Phone};
use cobro::http::Problem;
use cobro::ports::Clock;
use cobro::repo::{RepoError, Store, WhatsAppNumber};
use cobro::whatsapp::{signature, webhook::Payload};

pub const PATH: &str = "/webhooks/whatsapp";

pub struct Webhook {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// The token typed into Meta's App Dashboard; the GET handshake must echo it.
    pub verify_token: String,
}

pub fn router(state: Arc<Webhook>) -> Router {
    Router::new()
        .route(PATH, get(verify).post(receive))
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
    let token_ok = h
        .verify_token
        .as_deref()
        .is_some_and(|t| signature::tokens_match(t, &s.verify_token));
    match (h.mode.as_deref(), h.challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => {
            (StatusCode::OK, challenge).into_response()
        }
        _ => Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "verification token does not match",
        )
        .into_response(),
    }
}

async fn receive(State(s): State<Arc<Webhook>>, headers: HeaderMap, body: Bytes) -> Response {
    match s.handle(&headers, &body).await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(p) => p.into_response(),
    }
}

impl Webhook {
    /// Verifies and applies one delivery. Idempotent: a redelivered message maps onto the
    /// conversation key it already has.
    pub async fn handle(&self, headers: &HeaderMap, raw: &[u8]) -> Result<(), Problem> {
        let sig = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        if sig.is_none() {
            return Err(Problem::unauthorized("missing X-Hub-Signature-256"));
        }
        let payload = Payload::parse(raw).map_err(|e| {
            Problem::bad_request(format!("the body is not a WhatsApp webhook payload: {e}"))
        })?;
        let mut numbers = Vec::new();
        for id in payload.phone_number_ids() {
            match self.store.whatsapp_number(&id).await? {
                Some(n) => numbers.push(n),
                // Not ours (or not yet registered): acknowledged so Meta stops redelivering.
                None => {
                    tracing::warn!(phone_number_id = %id, "webhook for an unknown WhatsApp number")
                }
            }
        }
        // Every number in one delivery belongs to one app, so one secret must verify it.
        if !numbers.is_empty()
            && !numbers
                .iter()
                .all(|n| signature::verify(n.app_secret.as_bytes(), raw, sig))
        {
            return Err(Problem::unauthorized(
                "X-Hub-Signature-256 does not match the body",
            ));
        }
        for group in payload.messages() {
            let Some(number) = numbers
                .iter()
                .find(|n| n.phone_number_id == group.metadata.phone_number_id)
            else {
                continue;
            };
            for (message, raw_message) in &group.messages {
                self.record_inbound(number, message, raw_message).await?;
            }
        }
        Ok(())
    }

    async fn record_inbound(
        &self,
        number: &WhatsAppNumber,
        m: &cobro::whatsapp::webhook::InboundMessage,
        raw: &serde_json::Value,
    ) -> Result<(), RepoError> {
        let tenant = &number.tenant;
        let Some(from) = m.from.as_deref().and_then(|f| Phone::from_wa_id(f).ok()) else {
            let who = m.from_user_id.as_deref().unwrap_or("unknown");
            return self.store.record_unmatched(tenant, who, &m.id, raw).await;
        };
        let debtors = self.store.debtors_by_phone(tenant, &from).await?;
        if debtors.is_empty() {
            tracing::info!(from = %from.masked(), "message from a number with no debtor");
            return self
                .store
                .record_unmatched(tenant, from.wa_id(), &m.id, raw)
                .await;
        }
        let at = m
            .timestamp_secs()
            .and_then(|s| Timestamp::from_second(s).ok())
            .unwrap_or_else(|| self.clock.now());
        let text = m
            .text()
            .map(str::to_string)
            .unwrap_or_else(|| format!("[{}]", m.kind));
        for debtor in debtors {
            let message = ConversationMessage {
                tenant: tenant.clone(),
                debtor: debtor.id,
                direction: Direction::Inbound,
                channel: ChannelKind::Whatsapp,
                message_id: m.id.clone(),
                at,
                text: text.clone(),
            };
            if !self.store.record_message(&message).await? {
                tracing::info!(message_id = %m.id, "duplicate delivery ignored");
            }
        }
        Ok(())
    }
}
