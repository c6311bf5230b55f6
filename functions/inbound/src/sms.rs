//! Inbound SMS: AWS End User Messaging SMS publishes two-way messages to an SNS topic, which
//! delivers them to the inbound queue wrapped in SNS's notification envelope.

use jiff::Timestamp;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use cobro::domain::{ChannelKind, Phone};
use cobro::inbound::{Content, InboundEvent, InboundMessage, Party, Routed};

/// SNS's envelope (`RawMessageDelivery` off), or the bare message (on).
pub struct Notification {
    pub raw: String,
    message: SmsMessage,
    /// When SNS published it (the envelope's `Timestamp`): the same on every delivery.
    published_at: Option<Timestamp>,
}

/// The inbound message as End User Messaging SMS publishes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SmsMessage {
    origination_number: String,
    destination_number: String,
    message_body: String,
    inbound_message_id: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
    /// Read leniently: a time SNS wrote oddly is no reason to refuse the message.
    #[serde(rename = "Timestamp", default)]
    timestamp: Option<String>,
}

impl Notification {
    pub fn parse(body: &str) -> Option<Self> {
        let (message, published_at) = match serde_json::from_str::<Envelope>(body) {
            Ok(e) if e.kind == "Notification" => (
                serde_json::from_str(&e.message).ok()?,
                e.timestamp.and_then(|t| t.parse().ok()),
            ),
            Ok(_) => return None,
            Err(_) => (serde_json::from_str(body).ok()?, None),
        };
        Some(Self {
            raw: body.to_string(),
            message,
            published_at,
        })
    }

    /// The message's time as its delivery says, so that receiving it again gives the same
    /// message (its conversation and consent records are keyed by it): when SNS published it,
    /// else `queued_at`, when the queue got it (SQS's `SentTimestamp`, for the bare message of
    /// raw delivery, which carries no time). `None` when neither is known.
    pub fn sent_at(&self, queued_at: Option<Timestamp>) -> Option<Timestamp> {
        self.published_at.or(queued_at)
    }

    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.raw.as_bytes()))
    }

    /// `at`: the message's time (`sent_at`).
    pub fn events(&self, at: Timestamp) -> Vec<Routed> {
        let m = &self.message;
        let from = Party {
            phone: Phone::parse(&m.origination_number).ok(),
            user_id: None,
            name: None,
        };
        vec![Routed {
            channel: ChannelKind::Sms,
            to_number: m.destination_number.clone(),
            event: InboundEvent::Message(InboundMessage {
                from,
                id: m.inbound_message_id.clone(),
                at,
                content: Content::Text {
                    body: m.message_body.clone(),
                },
                reply_to: None,
            }),
        }]
    }
}
