//! The WhatsApp webhook payload, as far as the foundation needs it: the routing metadata and
//! inbound messages. Every field is optional or defaulted, because Meta adds kinds and fields
//! over time and an unknown one must never make a delivery fail.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Payload {
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub display_phone_number: String,
    pub phone_number_id: String,
}

/// One inbound message, kind kept open: `text`, `button`, `interactive`, media, …
#[derive(Debug, Clone, Deserialize)]
pub struct InboundMessage {
    /// The sender's number without `+`; absent for users known only by a business-scoped id.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub from_user_id: Option<String>,
    pub id: String,
    /// Unix seconds, as a string.
    pub timestamp: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<TextBody>,
    #[serde(default)]
    pub button: Option<ButtonBody>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TextBody {
    pub body: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ButtonBody {
    #[serde(default)]
    pub text: String,
}

impl InboundMessage {
    /// What the debtor wrote or chose, as text, for messages that carry any.
    pub fn text(&self) -> Option<&str> {
        match self.kind.as_str() {
            "text" => self.text.as_ref().map(|t| t.body.as_str()),
            "button" => self.button.as_ref().map(|b| b.text.as_str()),
            _ => None,
        }
    }

    pub fn timestamp_secs(&self) -> Option<i64> {
        self.timestamp.parse().ok()
    }
}

/// The messages of one change, with the number they were sent to.
#[derive(Debug, Clone)]
pub struct MessagesFor {
    pub metadata: Metadata,
    /// Each message with its raw JSON, kept for what the typed view does not cover.
    pub messages: Vec<(InboundMessage, serde_json::Value)>,
}

impl Payload {
    pub fn parse(raw: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(raw)
    }

    /// The phone number ids this delivery is for (normally one).
    pub fn phone_number_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .entry
            .iter()
            .flat_map(|e| &e.changes)
            .filter_map(|c| c.value.get("metadata")?.get("phone_number_id")?.as_str())
            .map(str::to_string)
            .collect();
        ids.dedup();
        ids
    }

    /// Inbound messages, grouped by change. Messages that do not parse are skipped here; the
    /// raw body is kept by the caller.
    pub fn messages(&self) -> Vec<MessagesFor> {
        self.entry
            .iter()
            .flat_map(|e| &e.changes)
            .filter(|c| c.field == "messages")
            .filter_map(|c| {
                let metadata: Metadata =
                    serde_json::from_value(c.value.get("metadata")?.clone()).ok()?;
                let messages = c
                    .value
                    .get("messages")
                    .and_then(|m| m.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|raw| {
                                Some((serde_json::from_value(raw.clone()).ok()?, raw.clone()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Some(MessagesFor { metadata, messages })
            })
            .collect()
    }
}
