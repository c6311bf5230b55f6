//! Meta's webhook payload → cobro's inbound events. Parsed by the documented schema and
//! tolerant of everything else: unknown fields are ignored, unknown kinds become `Unknown`, and
//! a piece that does not parse never takes the rest of the batch with it.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use cobro::domain::{ChannelKind, Phone};
use cobro::inbound::{
    Content, InboundEvent, InboundMessage, Party, ProviderError, Routed, StatusReport,
};

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    phone_number_id: String,
}

#[derive(Deserialize, Default)]
struct Contact {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize, Default)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    id: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    context: Option<MessageContext>,
    #[serde(default)]
    errors: Vec<GraphError>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct MessageContext {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    status: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    recipient_id: Option<String>,
    #[serde(default)]
    recipient_user_id: Option<String>,
    #[serde(default)]
    errors: Vec<GraphError>,
    #[serde(default)]
    pricing: Option<Pricing>,
    #[serde(default)]
    conversation: Option<Conversation>,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
}

#[derive(Deserialize)]
struct Pricing {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    billable: Option<bool>,
}

#[derive(Deserialize)]
struct Conversation {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

impl From<GraphError> for ProviderError {
    fn from(e: GraphError) -> Self {
        ProviderError {
            code: e.code,
            title: e.title.or(e.message).unwrap_or_default(),
            detail: e.error_data.and_then(|d| d.details),
        }
    }
}

#[derive(Deserialize)]
struct UserPreference {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    category: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    timestamp: Option<Value>,
}

fn instant(secs: Option<&str>, fallback: Timestamp) -> Timestamp {
    secs.and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(fallback)
}

fn party(phone: Option<&str>, user_id: Option<&str>, name: Option<String>) -> Party {
    Party {
        phone: phone.and_then(|p| Phone::from_wa_id(p).ok()),
        user_id: user_id.map(str::to_string),
        name,
    }
}

/// Every event of one delivery, in order, each with the number it came to. Never fails: a
/// body that is not a webhook at all gives one `Unknown`.
pub fn events(raw: &[u8], received_at: Timestamp) -> Vec<Routed> {
    let Ok(payload) = serde_json::from_slice::<Payload>(raw) else {
        return vec![Routed {
            channel: ChannelKind::Whatsapp,
            to_number: "unknown".into(),
            event: InboundEvent::Unknown {
                what: "unparseable body".into(),
            },
        }];
    };
    let mut out = Vec::new();
    for change in payload.entry.into_iter().flat_map(|e| e.changes) {
        let metadata: Metadata = change
            .value
            .get("metadata")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default();
        let to = if metadata.phone_number_id.is_empty() {
            "unknown".to_string()
        } else {
            metadata.phone_number_id
        };
        let mut push = |event| {
            out.push(Routed {
                channel: ChannelKind::Whatsapp,
                to_number: to.clone(),
                event,
            })
        };
        match change.field.as_str() {
            "messages" => {
                for e in messages_change(&change.value, received_at) {
                    push(e);
                }
            }
            "user_preferences" => {
                for p in list::<UserPreference>(&change.value, "user_preferences") {
                    match p {
                        Ok(p) => push(InboundEvent::Preference {
                            from: party(p.wa_id.as_deref(), p.user_id.as_deref(), None),
                            category: p.category,
                            stop: p.value == "stop",
                            at: match &p.timestamp {
                                Some(Value::Number(n)) => n
                                    .as_i64()
                                    .and_then(|s| Timestamp::from_second(s).ok())
                                    .unwrap_or(received_at),
                                Some(Value::String(s)) => instant(Some(s), received_at),
                                _ => received_at,
                            },
                        }),
                        Err(what) => push(InboundEvent::Unknown { what }),
                    }
                }
            }
            other => push(InboundEvent::Unknown {
                what: if other.is_empty() {
                    "change without a field".into()
                } else {
                    other.to_string()
                },
            }),
        }
    }
    out
}

/// The items of an array field, each parsed alone: one bad item is reported, not fatal.
fn list<T: serde::de::DeserializeOwned>(value: &Value, field: &str) -> Vec<Result<T, String>> {
    value
        .get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| {
                    serde_json::from_value(v.clone()).map_err(|e| format!("malformed {field}: {e}"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn messages_change(value: &Value, received_at: Timestamp) -> Vec<InboundEvent> {
    let contacts: Vec<Contact> = list::<Contact>(value, "contacts")
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    let mut events = Vec::new();
    for m in list::<Message>(value, "messages") {
        match m {
            Ok(m) => events.push(message_event(m, &contacts, received_at)),
            Err(what) => events.push(InboundEvent::Unknown { what }),
        }
    }
    for s in list::<Status>(value, "statuses") {
        match s {
            Ok(s) => events.push(status_event(s, received_at)),
            Err(what) => events.push(InboundEvent::Unknown { what }),
        }
    }
    let errors: Vec<ProviderError> = list::<GraphError>(value, "errors")
        .into_iter()
        .filter_map(Result::ok)
        .map(ProviderError::from)
        .collect();
    if !errors.is_empty() {
        events.push(InboundEvent::ProviderErrors { errors });
    }
    events
}

fn message_event(m: Message, contacts: &[Contact], received_at: Timestamp) -> InboundEvent {
    // The sender's contact: by wa_id, else by user id, else the only one.
    let contact = contacts
        .iter()
        .find(|c| c.wa_id.is_some() && c.wa_id == m.from)
        .or_else(|| {
            contacts
                .iter()
                .find(|c| c.user_id.is_some() && c.user_id == m.from_user_id)
        })
        .or_else(|| (contacts.len() == 1).then(|| &contacts[0]));
    let phone = m
        .from
        .clone()
        .or_else(|| contact.and_then(|c| c.wa_id.clone()));
    let user_id = m
        .from_user_id
        .clone()
        .or_else(|| contact.and_then(|c| c.user_id.clone()));
    let name = contact
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.name.clone());
    let from = party(phone.as_deref(), user_id.as_deref(), name);
    let at = instant(m.timestamp.as_deref(), received_at);
    if m.kind == "system" {
        let system = m.rest.get("system");
        return InboundEvent::NumberChanged {
            from,
            new_wa_id: system
                .and_then(|s| s.get("wa_id"))
                .and_then(Value::as_str)
                .map(str::to_string),
            at,
        };
    }
    let content = content(&m);
    InboundEvent::Message(InboundMessage {
        from,
        id: m.id,
        at,
        content,
        reply_to: m.context.and_then(|c| c.id),
    })
}

fn str_of<'a>(v: Option<&'a Value>, field: &str) -> Option<&'a str> {
    v?.get(field)?.as_str()
}

fn content(m: &Message) -> Content {
    let body = m.rest.get(m.kind.as_str());
    let owned = |f: &str| str_of(body, f).map(str::to_string);
    match m.kind.as_str() {
        "text" => Content::Text {
            body: owned("body").unwrap_or_default(),
        },
        "button" => Content::Choice {
            id: owned("payload").unwrap_or_default(),
            title: owned("text").unwrap_or_default(),
        },
        "interactive" => {
            let kind = str_of(body, "type").unwrap_or_default();
            let reply = body.and_then(|b| b.get(kind));
            match kind {
                "button_reply" | "list_reply" => Content::Choice {
                    id: str_of(reply, "id").unwrap_or_default().to_string(),
                    title: str_of(reply, "title").unwrap_or_default().to_string(),
                },
                other => Content::Unsupported {
                    code: None,
                    detail: format!("interactive {other}"),
                },
            }
        }
        "image" | "document" | "audio" | "video" | "sticker" => Content::Media {
            media: m.kind.clone(),
            media_id: owned("id").unwrap_or_default(),
            mime_type: owned("mime_type"),
            sha256: owned("sha256"),
            caption: owned("caption"),
            filename: owned("filename"),
        },
        "location" => Content::Location {
            latitude: body
                .and_then(|b| b.get("latitude"))
                .and_then(Value::as_f64)
                .unwrap_or_default(),
            longitude: body
                .and_then(|b| b.get("longitude"))
                .and_then(Value::as_f64)
                .unwrap_or_default(),
            name: owned("name"),
        },
        "reaction" => Content::Reaction {
            to: owned("message_id").unwrap_or_default(),
            emoji: owned("emoji").filter(|e| !e.is_empty()),
        },
        "contacts" => Content::Contacts {
            count: body.and_then(Value::as_array).map_or(0, Vec::len),
        },
        other => {
            let error = m.errors.first();
            Content::Unsupported {
                code: error.and_then(|e| e.code),
                detail: match error {
                    Some(e) => format!(
                        "{other}: {}",
                        e.title.as_deref().or(e.message.as_deref()).unwrap_or("")
                    ),
                    None => other.to_string(),
                },
            }
        }
    }
}

fn status_event(s: Status, received_at: Timestamp) -> InboundEvent {
    InboundEvent::Status(StatusReport {
        provider_message_id: s.id,
        status: s.status,
        at: instant(s.timestamp.as_deref(), received_at),
        recipient: party(
            s.recipient_id.as_deref(),
            s.recipient_user_id.as_deref(),
            None,
        ),
        errors: s.errors.into_iter().map(ProviderError::from).collect(),
        pricing_category: s.pricing.as_ref().and_then(|p| p.category.clone()),
        billable: s.pricing.as_ref().and_then(|p| p.billable),
        conversation_id: s.conversation.and_then(|c| c.id),
        correlation: s.biz_opaque_callback_data,
    })
}
