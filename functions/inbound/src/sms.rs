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
}

impl Notification {
    pub fn parse(body: &str) -> Option<Self> {
        let message = match serde_json::from_str::<Envelope>(body) {
            Ok(e) if e.kind == "Notification" => serde_json::from_str(&e.message).ok()?,
            Ok(_) => return None,
            Err(_) => serde_json::from_str(body).ok()?,
        };
        Some(Self {
            raw: body.to_string(),
            message,
        })
    }

    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.raw.as_bytes()))
    }

    pub fn events(&self, now: Timestamp) -> Vec<Routed> {
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
                // SMS carries no send time: when cobro got it.
                at: now,
                content: Content::Text {
                    body: m.message_body.clone(),
                },
                reply_to: None,
            }),
        }]
    }
}
