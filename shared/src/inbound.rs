//! What comes back from the channels, whatever the provider: a debtor's message, a report on a
//! message cobro sent, a preference the debtor set, a changed number, a provider's error. The
//! WhatsApp webhook and two-way SMS both become these, and one processor applies them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::compliance::keywords::fold;
use crate::compliance::{classify_keyword, OptKeyword};
use crate::domain::{ChannelKind, Phone};

/// Button payloads that withdraw consent whatever the button's label says: a template's opt-out
/// quick reply should carry a stable one such as `OPTOUT` (Meta's advice), since labels are
/// translated and reworded. Folded as `fold` leaves them (lower case, `_` and `-` as spaces).
const OPT_OUT_PAYLOADS: &[&str] = &["optout", "opt out", "stop", "baja", "sair", "unsubscribe"];

/// The label of the opt-out button Meta offers on marketing templates, folded. The English one
/// is Meta's; the Spanish and Portuguese ones are what it says in those languages as we read
/// it, not checked against Meta's clients.
const MARKETING_OPT_OUT_LABELS: &[&str] =
    &["stop promotions", "detener promociones", "parar promocoes"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routed {
    pub channel: ChannelKind,
    /// The number the event came to: a WhatsApp phone number id, or an SMS number.
    pub to_number: String,
    pub event: InboundEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundEvent {
    Message(InboundMessage),
    Status(StatusReport),
    /// The debtor stopped or resumed a category of messages in the app (WhatsApp's
    /// `user_preferences`: marketing).
    Preference {
        from: Party,
        category: String,
        stop: bool,
        at: Timestamp,
    },
    /// The debtor moved to a new number (WhatsApp `system` message).
    NumberChanged {
        from: Party,
        new_wa_id: Option<String>,
        at: Timestamp,
    },
    /// Errors the provider reports about the account or the delivery as a whole.
    ProviderErrors {
        errors: Vec<ProviderError>,
    },
    /// A kind cobro does not handle; its raw body is kept.
    Unknown {
        what: String,
    },
}

/// Who wrote: a phone number, a business-scoped user id, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub phone: Option<Phone>,
    pub user_id: Option<String>,
    pub name: Option<String>,
}

impl Party {
    /// For logs and unmatched records: the masked phone, else the user id.
    pub fn label(&self) -> String {
        match (&self.phone, &self.user_id) {
            (Some(p), _) => p.wa_id().to_string(),
            (None, Some(u)) => u.clone(),
            (None, None) => "unknown".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub from: Party,
    /// The provider's id (the wamid): the deduplication key.
    pub id: String,
    pub at: Timestamp,
    pub content: Content,
    /// The message cobro sent that this one answers, when the provider says.
    #[serde(default)]
    pub reply_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    Text {
        body: String,
    },
    /// A button or list row the debtor chose, or a template's quick reply.
    Choice {
        id: String,
        title: String,
    },
    Media {
        /// image, document, audio, video, sticker.
        media: String,
        media_id: String,
        mime_type: Option<String>,
        sha256: Option<String>,
        caption: Option<String>,
        filename: Option<String>,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
    },
    Reaction {
        to: String,
        emoji: Option<String>,
    },
    Contacts {
        count: usize,
    },
    /// A message the provider could not pass on (WhatsApp `unsupported`, errors).
    Unsupported {
        code: Option<i64>,
        detail: String,
    },
}

/// A consent keyword a message carries, and how the debtor gave it, for the consent record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptSignal {
    pub keyword: OptKeyword,
    /// `STOP` for a text; `button:OPTOUT` for a button, by its payload or its label.
    pub said: String,
}

impl Content {
    /// STOP, BAJA, ALTA … as a whole text or caption. A button is read by its payload first (an
    /// opt-out payload, or Meta's marketing opt-out button), then by its label as a text.
    pub fn opt_signal(&self) -> Option<OptSignal> {
        if let Content::Choice { id, title } = self {
            return opt_out_button(id, title).or_else(|| {
                classify_keyword(title).map(|keyword| OptSignal {
                    keyword,
                    said: format!("button:{}", shout(title)),
                })
            });
        }
        let text = self.text()?;
        classify_keyword(text).map(|keyword| OptSignal {
            keyword,
            said: shout(text),
        })
    }

    /// What the debtor said, for keyword matching and the conversation log.
    pub fn text(&self) -> Option<&str> {
        match self {
            Content::Text { body } => Some(body),
            Content::Choice { title, .. } => Some(title),
            Content::Media { caption, .. } => caption.as_deref(),
            _ => None,
        }
    }

    /// One line for the conversation log.
    pub fn summary(&self) -> String {
        match self {
            Content::Text { body } => body.clone(),
            Content::Choice { title, .. } => title.clone(),
            Content::Media {
                media,
                caption,
                filename,
                ..
            } => {
                let name = filename.as_deref().or(caption.as_deref()).unwrap_or("");
                format!("[{media}] {name}").trim_end().to_string()
            }
            Content::Location { name, .. } => {
                format!("[location] {}", name.as_deref().unwrap_or(""))
                    .trim_end()
                    .to_string()
            }
            Content::Reaction { emoji, .. } => {
                format!("[reaction] {}", emoji.as_deref().unwrap_or("removed"))
            }
            Content::Contacts { count } => format!("[{count} contact(s)]"),
            Content::Unsupported { detail, .. } => format!("[unsupported] {detail}"),
        }
    }
}

/// An opt-out button, recognised by its payload, or by the label of Meta's marketing opt-out
/// button (whose payload cobro does not choose).
fn opt_out_button(payload: &str, label: &str) -> Option<OptSignal> {
    let (payload_folded, label_folded) = (fold(payload), fold(label));
    let by_payload = OPT_OUT_PAYLOADS.contains(&payload_folded.as_str())
        || MARKETING_OPT_OUT_LABELS.contains(&payload_folded.as_str());
    let said = if by_payload {
        payload
    } else if MARKETING_OPT_OUT_LABELS.contains(&label_folded.as_str()) {
        label
    } else {
        return None;
    };
    Some(OptSignal {
        keyword: OptKeyword::OptOut,
        said: format!("button:{}", shout(said)),
    })
}

/// A keyword as recorded: trimmed, upper case.
fn shout(text: &str) -> String {
    text.trim().to_uppercase()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub provider_message_id: String,
    /// sent, delivered, read, played, failed.
    pub status: String,
    pub at: Timestamp,
    pub recipient: Party,
    #[serde(default)]
    pub errors: Vec<ProviderError>,
    /// Pricing category (utility, marketing, service…) when the provider says.
    #[serde(default)]
    pub pricing_category: Option<String>,
    #[serde(default)]
    pub billable: Option<bool>,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub correlation: Option<String>,
}

impl StatusReport {
    /// Order of statuses: they arrive out of order and a report never moves an attempt back.
    /// `failed` is final, so it outranks everything.
    pub fn rank(&self) -> i64 {
        match self.status.as_str() {
            "sent" => 1,
            "delivered" => 2,
            "read" => 3,
            "played" => 4,
            "failed" => 9,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProviderError {
    pub code: Option<i64>,
    pub title: String,
    #[serde(default)]
    pub detail: Option<String>,
}

impl ProviderError {
    pub fn describe(&self) -> String {
        let code = self.code.map(|c| format!(" ({c})")).unwrap_or_default();
        match &self.detail {
            Some(d) => format!("{}{code}: {d}", self.title),
            None => format!("{}{code}", self.title),
        }
    }
}
