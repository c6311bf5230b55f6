//! A WhatsApp webhook POST body → typed domain events, one per inbound message, status,
//! value-level error or preference change, in the order Meta sent them.
//!
//! Parsed by the documented schema (../shared/reference/whatsapp-cloud-api.md §2) and tolerant
//! of everything else: unknown fields are ignored, unknown `field`s and message `type`s become
//! `Event::Unknown`, and a message or status that does not fit its schema becomes
//! `Event::Malformed` without taking the rest of the batch with it. `parse` only fails when the
//! body is not JSON or not a `whatsapp_business_account` delivery at all, because a non-200
//! to Meta only buys 7 days of redeliveries of the same bytes.
//!
//! The body is read once into a `serde_json::Value`; each piece is then deserialized from a
//! borrow of it, and only pieces kept raw (unknown, malformed, referral, flow replies) move or
//! copy their JSON.

use std::fmt;

use jiff::Timestamp;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::errors::classify;
use crate::ports::FailureClass;

const OBJECT: &str = "whatsapp_business_account";

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("webhook body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a WhatsApp Business Account webhook: {0}")]
    NotWhatsApp(&'static str),
}

/// Where an event came from: the WABA (`entry.id`) and the business number it was sent to
/// (`metadata`). The number is absent on account-level fields such as template updates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub waba_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub display_phone_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub route: Route,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `messages[]`: something the user sent (or a system notice about them).
    Message(InboundMessage),
    /// `statuses[]`: what happened to a message the business sent.
    Status(StatusUpdate),
    /// `value.errors[]`: an app or system-level error not tied to one message.
    Error(WebhookError),
    /// `user_preferences[]`: the user stopped or resumed marketing messages.
    UserPreference(UserPreference),
    /// A `field`, message `type`, interactive type, status or list this parser does not know.
    /// `kind` is the message type (`order`), `interactive/<type>`, `status/<status>`, the
    /// unknown list's key, or the field itself for unknown fields.
    Unknown {
        field: String,
        kind: String,
        raw: Value,
    },
    /// A piece that does not fit its documented schema (no id, bad timestamp, wrong types).
    Malformed { reason: String, raw: Value },
}

/// What makes an event a repeat: Meta redelivers, and delivers to every subscribed app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DedupeKey<'a> {
    /// An inbound message, by its wamid.
    Message(&'a str),
    /// A status, by the wamid it is about and the status.
    Status(&'a str, StatusKind),
}

impl fmt::Display for DedupeKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DedupeKey::Message(id) => write!(f, "msg:{id}"),
            DedupeKey::Status(id, s) => write!(f, "status:{id}:{}", s.as_str()),
        }
    }
}

impl WebhookEvent {
    /// Inbound messages: the wamid; statuses: (wamid, status); anything else: none.
    pub fn dedupe_key(&self) -> Option<DedupeKey<'_>> {
        match &self.event {
            Event::Message(m) => Some(DedupeKey::Message(&m.id)),
            Event::Status(s) => Some(DedupeKey::Status(&s.id, s.status)),
            _ => None,
        }
    }

    pub fn message(&self) -> Option<&InboundMessage> {
        match &self.event {
            Event::Message(m) => Some(m),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<&StatusUpdate> {
        match &self.event {
            Event::Status(s) => Some(s),
            _ => None,
        }
    }
}

/// A WhatsApp user, by whatever Meta gave: the phone (`wa_id`), the business-scoped user id
/// (BSUID, `user_id`) or both, with the profile from the change's `contacts` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRef {
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub parent_user_id: Option<String>,
    pub name: Option<String>,
    pub username: Option<String>,
}

impl UserRef {
    fn is_identified(&self) -> bool {
        self.wa_id.is_some() || self.user_id.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The wamid.
    pub id: String,
    pub timestamp: Timestamp,
    pub from: UserRef,
    pub context: Option<MessageContext>,
    /// Click-to-WhatsApp ad data, kept as sent.
    pub referral: Option<Value>,
    /// Errors Meta attached to the message (unsupported kinds, unavailable messages).
    pub errors: Vec<WebhookError>,
    pub content: MessageContent,
}

/// The user replied to, quoted or forwarded a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageContext {
    /// The wamid replied to (for a template quick-reply: the template's).
    pub id: Option<String>,
    /// Who sent the message replied to (the business number).
    pub from: Option<String>,
    pub forwarded: bool,
    pub frequently_forwarded: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    Text {
        body: String,
    },
    /// Interactive `button_reply`: the user tapped a reply button of a free-form message.
    ButtonReply {
        id: String,
        title: String,
    },
    /// Interactive `list_reply`.
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
    /// Interactive `nfm_reply` (a Flow's answer), kept as sent.
    FlowReply {
        raw: Value,
    },
    /// Template quick-reply button (`type=button`).
    QuickReply {
        payload: String,
        text: String,
    },
    Media {
        kind: MediaKind,
        media: Media,
    },
    Location(Location),
    /// `emoji: None` means the reaction was removed.
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    Contacts(Vec<SharedContact>),
    System(SystemChange),
    /// `unsupported` (polls, edits, …), or any message Meta sent with `errors` that has no
    /// usable payload. `kind` is what Meta says it was.
    Unsupported {
        kind: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Document,
    Audio,
    Video,
    Sticker,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Document => "document",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Sticker => "sticker",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "image" => MediaKind::Image,
            "document" => MediaKind::Document,
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "sticker" => MediaKind::Sticker,
            _ => return None,
        })
    }
}

/// An inbound media object. `id` is what the media endpoint takes (it expires after 7 days);
/// `url` is only sent by newer deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Media {
    #[serde(deserialize_with = "id")]
    pub id: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Base64 in webhooks.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Audio recorded in the app.
    #[serde(default)]
    pub voice: Option<bool>,
    /// Animated sticker.
    #[serde(default)]
    pub animated: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// A contact card the user shared.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedContact {
    pub name: Option<String>,
    pub phones: Vec<SharedPhone>,
    pub emails: Vec<String>,
    /// The card as sent (addresses, org, urls, …).
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPhone {
    pub phone: Option<String>,
    pub wa_id: Option<String>,
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemKind {
    UserChangedNumber,
    CustomerIdentityChanged,
    Other(String),
}

/// `type=system`: the user changed number (the new `wa_id`) or identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemChange {
    pub kind: SystemKind,
    pub body: Option<String>,
    /// The user's new phone (`wa_id`, `new_wa_id` in older deliveries).
    pub new_wa_id: Option<String>,
    /// The user's new BSUID, when Meta sends one.
    pub new_user_id: Option<String>,
    pub customer: Option<String>,
    pub identity: Option<String>,
}

impl InboundMessage {
    /// The message type as Meta names it (`text`, `interactive`, `button`, `image`, …).
    pub fn kind(&self) -> &'static str {
        match &self.content {
            MessageContent::Text { .. } => "text",
            MessageContent::ButtonReply { .. }
            | MessageContent::ListReply { .. }
            | MessageContent::FlowReply { .. } => "interactive",
            MessageContent::QuickReply { .. } => "button",
            MessageContent::Media { kind, .. } => kind.as_str(),
            MessageContent::Location(_) => "location",
            MessageContent::Reaction { .. } => "reaction",
            MessageContent::Contacts(_) => "contacts",
            MessageContent::System(_) => "system",
            MessageContent::Unsupported { .. } => "unsupported",
        }
    }

    /// What the user wrote or chose, as they saw it, for keyword matching (STOP, BAJA, …):
    /// the text body, a quick-reply's text (its payload when the text is empty), a reply
    /// button's or list row's title, a media caption.
    pub fn text_for_matching(&self) -> Option<&str> {
        let text = match &self.content {
            MessageContent::Text { body } => body.as_str(),
            MessageContent::QuickReply { payload, text } => {
                if text.trim().is_empty() {
                    payload
                } else {
                    text
                }
            }
            MessageContent::ButtonReply { title, .. } | MessageContent::ListReply { title, .. } => {
                title
            }
            MessageContent::Media { media, .. } => media.caption.as_deref()?,
            _ => return None,
        };
        Some(text).filter(|t| !t.trim().is_empty())
    }

    /// The business-defined id of what the user chose, stable across languages: a quick-reply
    /// payload, a reply button's or list row's id.
    pub fn reply_payload(&self) -> Option<&str> {
        match &self.content {
            MessageContent::QuickReply { payload, .. } => Some(payload.as_str()),
            MessageContent::ButtonReply { id, .. } | MessageContent::ListReply { id, .. } => {
                Some(id.as_str())
            }
            _ => None,
        }
        .filter(|p| !p.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    Sent,
    Delivered,
    Read,
    /// A voice message was played; comes after `read`.
    Played,
    /// Terminal: nothing follows it.
    Failed,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Sent => "sent",
            StatusKind::Delivered => "delivered",
            StatusKind::Read => "read",
            StatusKind::Played => "played",
            StatusKind::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sent" => StatusKind::Sent,
            "delivered" => StatusKind::Delivered,
            "read" => StatusKind::Read,
            "played" => StatusKind::Played,
            "failed" => StatusKind::Failed,
            _ => return None,
        })
    }

    /// Progress along `sent < delivered < read ≤ played`; `failed` ranks above all, being
    /// terminal.
    pub fn rank(self) -> u8 {
        match self {
            StatusKind::Sent => 1,
            StatusKind::Delivered => 2,
            StatusKind::Read => 3,
            StatusKind::Played => 4,
            StatusKind::Failed => u8::MAX,
        }
    }

    pub fn is_terminal(self) -> bool {
        self == StatusKind::Failed
    }

    /// Whether this status may replace `prev` (Meta does not deliver statuses in order, and
    /// delivered+read at once arrives as `read` alone). Only forward moves apply; nothing
    /// follows `failed`; and `failed` only follows `sent`, because a message that reached the
    /// phone was delivered, and a late `failed` must not send it again on another channel.
    pub fn may_follow(self, prev: StatusKind) -> bool {
        match (prev, self) {
            (StatusKind::Failed, _) => false,
            (prev, StatusKind::Failed) => prev == StatusKind::Sent,
            (prev, next) => next.rank() > prev.rank(),
        }
    }
}

/// `statuses[]` entry: what happened to a message the business sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The wamid of the business's message.
    pub id: String,
    pub status: StatusKind,
    pub timestamp: Timestamp,
    pub recipient_id: Option<String>,
    pub recipient_user_id: Option<String>,
    /// The recipient with the change's `contacts` block, when Meta sent one.
    pub recipient: UserRef,
    /// Echo of the correlation string given at send time.
    pub biz_opaque_callback_data: Option<String>,
    pub pricing: Option<Pricing>,
    pub conversation: Option<Conversation>,
    /// Why a `failed` status failed.
    pub errors: Vec<WebhookError>,
}

impl StatusUpdate {
    /// For a `failed` status: what the sender does about it, by the first error's code.
    pub fn failure_class(&self) -> Option<FailureClass> {
        (self.status == StatusKind::Failed)
            .then(|| classify(0, self.errors.first().and_then(|e| e.code), None))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Pricing {
    /// `PMP` (`CBP` before July 2025).
    #[serde(default)]
    pub pricing_model: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    /// Being deprecated by Meta.
    #[serde(default)]
    pub billable: Option<bool>,
}

/// Omitted since v24 except in free-entry-point windows: never rely on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    pub id: Option<String>,
    pub expiration_timestamp: Option<Timestamp>,
    pub origin_type: Option<String>,
}

/// An error in a webhook (`statuses[].errors`, `messages[].errors`, `value.errors`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookError {
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
    /// `error_data.details`: the most specific text.
    pub details: Option<String>,
    pub href: Option<String>,
}

impl WebhookError {
    /// The same classes as a failed send (HTTP status unknown).
    pub fn class(&self) -> FailureClass {
        classify(0, self.code, None)
    }

    /// The most useful text: details, else message, else title.
    pub fn reason(&self) -> &str {
        [&self.details, &self.message, &self.title]
            .into_iter()
            .filter_map(|s| s.as_deref())
            .find(|s| !s.is_empty())
            .unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreferenceValue {
    Stop,
    Resume,
    Other(String),
}

/// `user_preferences[]`: the user stopped or resumed a category (`marketing_messages`) from
/// the WhatsApp client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPreference {
    pub user: UserRef,
    pub category: String,
    pub value: PreferenceValue,
    pub detail: Option<String>,
    pub timestamp: Option<Timestamp>,
}

/// Parses a webhook POST body. Fails only when it is not JSON, or not a WhatsApp Business
/// Account delivery (an object whose `object`, when present, is `whatsapp_business_account`,
/// with an `entry` array); every piece inside becomes an event, in order.
pub fn parse(raw: &[u8]) -> Result<Vec<WebhookEvent>, ParseError> {
    let body: Value = serde_json::from_slice(raw)?;
    let Value::Object(mut body) = body else {
        return Err(ParseError::NotWhatsApp("the body is not a JSON object"));
    };
    match body.get("object") {
        None => {}
        Some(Value::String(o)) if o == OBJECT => {}
        Some(_) => {
            return Err(ParseError::NotWhatsApp(
                "`object` is not whatsapp_business_account",
            ))
        }
    }
    let Some(Value::Array(entries)) = body.remove("entry") else {
        return Err(ParseError::NotWhatsApp("no `entry` array"));
    };
    let mut out = Vec::new();
    for entry in entries {
        parse_entry(entry, &mut out);
    }
    Ok(out)
}

fn parse_entry(entry: Value, out: &mut Vec<WebhookEvent>) {
    let Value::Object(mut entry) = entry else {
        out.push(malformed(Route::default(), "entry is not an object", entry));
        return;
    };
    let route = Route {
        waba_id: entry.get("id").and_then(id_of),
        ..Route::default()
    };
    match entry.remove("changes") {
        Some(Value::Array(changes)) => {
            for change in changes {
                parse_change(&route, change, out);
            }
        }
        changes => {
            if let Some(c) = changes {
                entry.insert("changes".into(), c);
            }
            out.push(malformed(
                route,
                "entry without a `changes` array",
                Value::Object(entry),
            ));
        }
    }
}

fn parse_change(entry_route: &Route, change: Value, out: &mut Vec<WebhookEvent>) {
    let Value::Object(mut change) = change else {
        out.push(malformed(
            entry_route.clone(),
            "change is not an object",
            change,
        ));
        return;
    };
    let Some(field) = change
        .get("field")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        out.push(malformed(
            entry_route.clone(),
            "change without a `field`",
            Value::Object(change),
        ));
        return;
    };
    let value = change.remove("value").unwrap_or(Value::Null);
    let mut route = entry_route.clone();
    if let Some(meta) = value.get("metadata") {
        route.phone_number_id = meta.get("phone_number_id").and_then(id_of);
        route.display_phone_number = meta.get("display_phone_number").and_then(id_of);
    }
    let ctx = Ctx { route, field };
    match (ctx.field.as_str(), value) {
        ("messages", Value::Object(value)) => parse_messages(&ctx, value, out),
        ("user_preferences", Value::Object(value)) => parse_preferences(&ctx, value, out),
        ("messages" | "user_preferences", value) => {
            out.push(ctx.malformed("change `value` is not an object", value))
        }
        (_, value) => out.push(ctx.unknown(ctx.field.clone(), value)),
    }
}

/// What every event of one change shares.
struct Ctx {
    route: Route,
    field: String,
}

impl Ctx {
    fn event(&self, event: Event) -> WebhookEvent {
        WebhookEvent {
            route: self.route.clone(),
            event,
        }
    }

    fn malformed(&self, reason: impl Into<String>, raw: Value) -> WebhookEvent {
        malformed(self.route.clone(), reason, raw)
    }

    fn unknown(&self, kind: String, raw: Value) -> WebhookEvent {
        self.event(Event::Unknown {
            field: self.field.clone(),
            kind,
            raw,
        })
    }
}

fn malformed(route: Route, reason: impl Into<String>, raw: Value) -> WebhookEvent {
    WebhookEvent {
        route,
        event: Event::Malformed {
            reason: reason.into(),
            raw,
        },
    }
}

/// The lists a `messages` change carries. Others (a future kind of update) come out as
/// `Unknown`, so nothing Meta sends as a list is dropped unseen.
fn parse_messages(ctx: &Ctx, mut value: Map<String, Value>, out: &mut Vec<WebhookEvent>) {
    let contacts = contacts_of(value.get("contacts"));
    // Meta reports payloads it could not render as value-level errors next to the message.
    let change_errors: Vec<WebhookError> = value
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| RawError::deserialize(e).ok().map(Into::into))
                .collect()
        })
        .unwrap_or_default();
    for item in take_list(ctx, &mut value, "messages", out) {
        out.push(ctx.event_or_fault(parse_message(&contacts, &change_errors, item)));
    }
    for item in take_list(ctx, &mut value, "statuses", out) {
        out.push(ctx.event_or_fault(parse_status(&contacts, item)));
    }
    for item in take_list(ctx, &mut value, "errors", out) {
        let event = match RawError::deserialize(&item) {
            Ok(e) => Ok(Event::Error(e.into())),
            Err(e) => Err(Fault::Malformed(format!("error: {e}"), item)),
        };
        out.push(ctx.event_or_fault(event));
    }
    unknown_lists(ctx, value, &["contacts"], out);
}

fn parse_preferences(ctx: &Ctx, mut value: Map<String, Value>, out: &mut Vec<WebhookEvent>) {
    let contacts = contacts_of(value.get("contacts"));
    for item in take_list(ctx, &mut value, "user_preferences", out) {
        out.push(ctx.event_or_fault(parse_preference(&contacts, item)));
    }
    unknown_lists(ctx, value, &["contacts"], out);
}

/// Removes `key` from the change's value; a non-list there is reported as malformed.
fn take_list(
    ctx: &Ctx,
    value: &mut Map<String, Value>,
    key: &str,
    out: &mut Vec<WebhookEvent>,
) -> Vec<Value> {
    match value.remove(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            out.push(ctx.malformed(format!("`{key}` is not a list"), other));
            Vec::new()
        }
    }
}

fn unknown_lists(
    ctx: &Ctx,
    value: Map<String, Value>,
    known: &[&str],
    out: &mut Vec<WebhookEvent>,
) {
    for (key, item) in value {
        if item.is_array() && !known.contains(&key.as_str()) {
            out.push(ctx.unknown(key, item));
        }
    }
}

/// Why a piece did not become a typed event; it keeps the piece's JSON.
enum Fault {
    Unknown(String, Value),
    Malformed(String, Value),
}

impl Ctx {
    fn event_or_fault(&self, r: Result<Event, Fault>) -> WebhookEvent {
        match r {
            Ok(event) => self.event(event),
            Err(Fault::Unknown(kind, raw)) => self.unknown(kind, raw),
            Err(Fault::Malformed(reason, raw)) => self.malformed(reason, raw),
        }
    }
}

// ---- contacts ----

#[derive(Deserialize)]
struct RawContact {
    #[serde(default, deserialize_with = "opt_id")]
    wa_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    parent_user_id: Option<String>,
    #[serde(default)]
    profile: Option<RawProfile>,
}

#[derive(Deserialize)]
struct RawProfile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

/// The change's `contacts` block. A contact that does not parse is only missing profile
/// data, so it is skipped rather than failing anything.
fn contacts_of(v: Option<&Value>) -> Vec<RawContact> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| RawContact::deserialize(c).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The user an event is about: the identifiers the event itself names, completed from the
/// contact that shares one of them; an event naming no one gets the change's only contact
/// (users known by BSUID alone arrive with no `from`).
fn user_of(contacts: &[RawContact], wa_id: Option<String>, user_id: Option<String>) -> UserRef {
    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
    let compatible = |a: &Option<String>, b: &Option<String>| a.is_none() || b.is_none() || a == b;
    let contact = contacts
        .iter()
        .find(|c| same(&c.wa_id, &wa_id) || same(&c.user_id, &user_id))
        .or_else(|| match contacts {
            [only] if compatible(&only.wa_id, &wa_id) && compatible(&only.user_id, &user_id) => {
                Some(only)
            }
            _ => None,
        });
    let Some(c) = contact else {
        return UserRef {
            wa_id,
            user_id,
            ..UserRef::default()
        };
    };
    let profile = c.profile.as_ref();
    UserRef {
        wa_id: wa_id.or_else(|| c.wa_id.clone()),
        user_id: user_id.or_else(|| c.user_id.clone()),
        parent_user_id: c.parent_user_id.clone(),
        name: profile.and_then(|p| p.name.clone()),
        username: profile.and_then(|p| p.username.clone()),
    }
}

// ---- messages ----

/// The fields every message has; the payload is read by `type` afterwards.
#[derive(Deserialize)]
struct RawMessage {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    from: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    from_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    from_parent_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_ts")]
    timestamp: Option<Timestamp>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    errors: Option<Vec<RawError>>,
}

#[derive(Deserialize, Default)]
struct RawContext {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    from: Option<String>,
    #[serde(default)]
    forwarded: Option<bool>,
    #[serde(default)]
    frequently_forwarded: Option<bool>,
}

fn parse_message(
    contacts: &[RawContact],
    change_errors: &[WebhookError],
    mut raw: Value,
) -> Result<Event, Fault> {
    let bad = |reason: String, raw: Value| Err(Fault::Malformed(reason, raw));
    let env = match RawMessage::deserialize(&raw) {
        Ok(env) => env,
        Err(e) => return bad(format!("message: {e}"), raw),
    };
    let Some(id) = env.id else {
        return bad("message without an `id`".into(), raw);
    };
    let Some(kind) = env.kind else {
        return bad("message without a `type`".into(), raw);
    };
    let Some(timestamp) = env.timestamp else {
        return bad("message without a `timestamp`".into(), raw);
    };
    let mut errors: Vec<WebhookError> = env
        .errors
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect();
    let content = match content_of(&kind, &raw) {
        Ok(content) => content,
        // Meta sends kinds it cannot render with `errors` (on the message, or on the change):
        // that is a typed unsupported message, still from the user.
        Err(_) if !errors.is_empty() || !change_errors.is_empty() => {
            if errors.is_empty() {
                errors = change_errors.to_vec();
            }
            MessageContent::Unsupported { kind: Some(kind) }
        }
        Err(Fault::Unknown(kind, _)) => return Err(Fault::Unknown(kind, raw)),
        Err(Fault::Malformed(reason, _)) => return bad(reason, raw),
    };
    let mut from = user_of(contacts, env.from, env.from_user_id);
    if from.parent_user_id.is_none() {
        from.parent_user_id = env.from_parent_user_id;
    }
    if !from.is_identified() && !matches!(content, MessageContent::System(_)) {
        return bad(
            "message without a sender (`from`, `from_user_id` or contact)".into(),
            raw,
        );
    }
    let context = raw
        .get("context")
        .and_then(|c| RawContext::deserialize(c).ok())
        .map(|c| MessageContext {
            id: c.id,
            from: c.from,
            forwarded: c.forwarded.unwrap_or(false),
            frequently_forwarded: c.frequently_forwarded.unwrap_or(false),
        });
    let referral = raw.as_object_mut().and_then(|m| m.remove("referral"));
    Ok(Event::Message(InboundMessage {
        id,
        timestamp,
        from,
        context,
        referral,
        errors,
        content,
    }))
}

/// The typed payload of a message of type `kind`. The `Value` in a `Fault` is a placeholder:
/// the caller attaches the whole message.
fn content_of(kind: &str, raw: &Value) -> Result<MessageContent, Fault> {
    let body = raw.get(kind);
    Ok(match kind {
        "text" => MessageContent::Text {
            body: payload::<RawText>(kind, body)?.body,
        },
        "button" => {
            let b = payload::<RawButton>(kind, body)?;
            MessageContent::QuickReply {
                payload: b.payload.unwrap_or_default(),
                text: b.text.unwrap_or_default(),
            }
        }
        "interactive" => interactive(body)?,
        "location" => MessageContent::Location(payload(kind, body)?),
        "reaction" => {
            let r = payload::<RawReaction>(kind, body)?;
            MessageContent::Reaction {
                message_id: r.message_id,
                emoji: r.emoji.filter(|e| !e.is_empty()),
            }
        }
        "contacts" => MessageContent::Contacts(shared_contacts(body)?),
        "system" => {
            let s = payload::<RawSystem>(kind, body)?;
            MessageContent::System(SystemChange {
                kind: match s.kind.as_deref() {
                    Some("user_changed_number") => SystemKind::UserChangedNumber,
                    Some("customer_identity_changed") => SystemKind::CustomerIdentityChanged,
                    other => SystemKind::Other(other.unwrap_or_default().to_owned()),
                },
                body: s.body,
                new_wa_id: s.wa_id.or(s.new_wa_id),
                new_user_id: s.user_id,
                customer: s.customer,
                identity: s.identity,
            })
        }
        // `unknown` is the older name of `unsupported`.
        "unsupported" | "unknown" => MessageContent::Unsupported {
            kind: body
                .and_then(|b| b.get("type"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        _ => match MediaKind::parse(kind) {
            Some(media_kind) => MessageContent::Media {
                kind: media_kind,
                media: payload(kind, body)?,
            },
            None => return Err(Fault::Unknown(kind.to_owned(), Value::Null)),
        },
    })
}

fn payload<T: serde::de::DeserializeOwned>(kind: &str, body: Option<&Value>) -> Result<T, Fault> {
    let Some(body) = body else {
        return Err(Fault::Malformed(
            format!("{kind} message without a `{kind}` object"),
            Value::Null,
        ));
    };
    T::deserialize(body).map_err(|e| Fault::Malformed(format!("{kind}: {e}"), Value::Null))
}

#[derive(Deserialize)]
struct RawText {
    body: String,
}

#[derive(Deserialize)]
struct RawButton {
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawReaction {
    #[serde(deserialize_with = "id")]
    message_id: String,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct RawSystem {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    wa_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    new_wa_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    user_id: Option<String>,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    identity: Option<String>,
}

#[derive(Deserialize)]
struct RawReply {
    #[serde(deserialize_with = "id")]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
}

fn interactive(body: Option<&Value>) -> Result<MessageContent, Fault> {
    let Some(body) = body else {
        return Err(Fault::Malformed(
            "interactive message without an `interactive` object".into(),
            Value::Null,
        ));
    };
    let Some(kind) = body.get("type").and_then(Value::as_str) else {
        return Err(Fault::Malformed(
            "interactive message without a `type`".into(),
            Value::Null,
        ));
    };
    let reply = || payload::<RawReply>(kind, body.get(kind));
    Ok(match kind {
        "button_reply" => {
            let r = reply()?;
            MessageContent::ButtonReply {
                id: r.id,
                title: r.title,
            }
        }
        "list_reply" => {
            let r = reply()?;
            MessageContent::ListReply {
                id: r.id,
                title: r.title,
                description: r.description,
            }
        }
        "nfm_reply" => MessageContent::FlowReply {
            raw: body.get(kind).cloned().unwrap_or(Value::Null),
        },
        other => return Err(Fault::Unknown(format!("interactive/{other}"), Value::Null)),
    })
}

#[derive(Deserialize)]
struct RawSharedContact {
    #[serde(default)]
    name: Option<RawSharedName>,
    #[serde(default)]
    phones: Option<Vec<RawSharedPhone>>,
    #[serde(default)]
    emails: Option<Vec<RawSharedEmail>>,
}

#[derive(Deserialize)]
struct RawSharedName {
    #[serde(default)]
    formatted_name: Option<String>,
}

#[derive(Deserialize)]
struct RawSharedPhone {
    #[serde(default, deserialize_with = "opt_id")]
    phone: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    wa_id: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct RawSharedEmail {
    #[serde(default)]
    email: Option<String>,
}

fn shared_contacts(body: Option<&Value>) -> Result<Vec<SharedContact>, Fault> {
    let Some(cards) = body.and_then(Value::as_array) else {
        return Err(Fault::Malformed(
            "contacts message without a `contacts` list".into(),
            Value::Null,
        ));
    };
    cards
        .iter()
        .map(|card| {
            let c = RawSharedContact::deserialize(card)
                .map_err(|e| Fault::Malformed(format!("contacts: {e}"), Value::Null))?;
            Ok(SharedContact {
                name: c.name.and_then(|n| n.formatted_name),
                phones: c
                    .phones
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| SharedPhone {
                        phone: p.phone,
                        wa_id: p.wa_id,
                        kind: p.kind,
                    })
                    .collect(),
                emails: c
                    .emails
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|e| e.email)
                    .collect(),
                raw: card.clone(),
            })
        })
        .collect()
}

// ---- statuses ----

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_ts")]
    timestamp: Option<Timestamp>,
    #[serde(default, deserialize_with = "opt_id")]
    recipient_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    recipient_user_id: Option<String>,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    errors: Option<Vec<RawError>>,
}

#[derive(Deserialize)]
struct RawConversation {
    #[serde(default, deserialize_with = "opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_ts")]
    expiration_timestamp: Option<Timestamp>,
    #[serde(default)]
    origin: Option<RawOrigin>,
}

#[derive(Deserialize)]
struct RawOrigin {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

fn parse_status(contacts: &[RawContact], raw: Value) -> Result<Event, Fault> {
    let bad = |reason: String, raw: Value| Err(Fault::Malformed(reason, raw));
    let s = match RawStatus::deserialize(&raw) {
        Ok(s) => s,
        Err(e) => return bad(format!("status: {e}"), raw),
    };
    let Some(id) = s.id else {
        return bad("status without an `id`".into(), raw);
    };
    let Some(name) = s.status else {
        return bad("status without a `status`".into(), raw);
    };
    let Some(status) = StatusKind::parse(&name) else {
        return Err(Fault::Unknown(format!("status/{name}"), raw));
    };
    let Some(timestamp) = s.timestamp else {
        return bad("status without a `timestamp`".into(), raw);
    };
    // Pricing and conversation are informative: a part that does not parse is left out.
    let pricing = raw
        .get("pricing")
        .and_then(|p| Pricing::deserialize(p).ok());
    let conversation = raw
        .get("conversation")
        .and_then(|c| RawConversation::deserialize(c).ok())
        .map(|c| Conversation {
            id: c.id,
            expiration_timestamp: c.expiration_timestamp,
            origin_type: c.origin.and_then(|o| o.kind),
        });
    Ok(Event::Status(StatusUpdate {
        recipient: user_of(
            contacts,
            s.recipient_id.clone(),
            s.recipient_user_id.clone(),
        ),
        id,
        status,
        timestamp,
        recipient_id: s.recipient_id,
        recipient_user_id: s.recipient_user_id,
        biz_opaque_callback_data: s.biz_opaque_callback_data,
        pricing,
        conversation,
        errors: s
            .errors
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

// ---- errors ----

#[derive(Deserialize)]
struct RawError {
    #[serde(default, deserialize_with = "opt_i64")]
    code: Option<i64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<RawErrorData>,
    #[serde(default)]
    href: Option<String>,
}

#[derive(Deserialize)]
struct RawErrorData {
    #[serde(default)]
    details: Option<String>,
}

impl From<RawError> for WebhookError {
    fn from(e: RawError) -> Self {
        WebhookError {
            code: e.code,
            title: e.title,
            message: e.message,
            details: e.error_data.and_then(|d| d.details),
            href: e.href,
        }
    }
}

// ---- user preferences ----

#[derive(Deserialize)]
struct RawPreference {
    #[serde(default, deserialize_with = "opt_id")]
    wa_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    user_id: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default, deserialize_with = "opt_ts")]
    timestamp: Option<Timestamp>,
}

fn parse_preference(contacts: &[RawContact], raw: Value) -> Result<Event, Fault> {
    let p = match RawPreference::deserialize(&raw) {
        Ok(p) => p,
        Err(e) => return Err(Fault::Malformed(format!("user preference: {e}"), raw)),
    };
    let (Some(category), Some(value)) = (p.category, p.value) else {
        return Err(Fault::Malformed(
            "user preference without `category` or `value`".into(),
            raw,
        ));
    };
    let user = user_of(contacts, p.wa_id, p.user_id);
    if !user.is_identified() {
        return Err(Fault::Malformed(
            "user preference without a user".into(),
            raw,
        ));
    }
    Ok(Event::UserPreference(UserPreference {
        user,
        category,
        value: match value.as_str() {
            "stop" => PreferenceValue::Stop,
            "resume" => PreferenceValue::Resume,
            _ => PreferenceValue::Other(value),
        },
        detail: p.detail,
        timestamp: p.timestamp,
    }))
}

// ---- lenient scalars ----

/// An identifier Meta sends as a string; a number is taken too (hand-written payloads).
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an integer id")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(IdVisitor)
}

fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    opt_id(d)?.ok_or_else(|| de::Error::custom("the id is null"))
}

/// Unix seconds, as a string (messages, statuses) or a number (user preferences).
struct SecondsVisitor;

impl SecondsVisitor {
    fn at<E: de::Error>(secs: i64) -> Result<Option<Timestamp>, E> {
        Timestamp::from_second(secs)
            .map(Some)
            .map_err(|_| E::custom(format!("timestamp {secs} is out of range")))
    }
}

impl<'de> Visitor<'de> for SecondsVisitor {
    type Value = Option<Timestamp>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("unix seconds, as a string or an integer")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let secs = v
            .trim()
            .parse::<i64>()
            .map_err(|_| E::custom(format!("timestamp {v:?} is not unix seconds")))?;
        Self::at(secs)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Self::at(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::at(i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))?)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn opt_ts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    d.deserialize_any(SecondsVisitor)
}

/// An error code: a number, or a number in a string.
struct CodeVisitor;

impl<'de> Visitor<'de> for CodeVisitor {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer error code")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.trim()
            .parse()
            .map(Some)
            .map_err(|_| E::custom(format!("error code {v:?} is not a number")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(Some)
            .map_err(|_| E::custom("error code out of range"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(CodeVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    /// `../shared/fixtures`, or `COBRO_FIXTURES`.
    fn fixtures() -> PathBuf {
        std::env::var_os("COBRO_FIXTURES")
            .map(Into::into)
            .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures").into())
    }

    fn webhook_fixtures() -> Vec<(String, Vec<u8>)> {
        let dir = fixtures().join("whatsapp-webhooks");
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    fn route(waba: &str, id: &str, display: &str) -> Route {
        Route {
            waba_id: some(waba),
            phone_number_id: some(id),
            display_phone_number: some(display),
        }
    }

    fn only(events: &[WebhookEvent]) -> &WebhookEvent {
        assert_eq!(events.len(), 1, "{events:#?}");
        &events[0]
    }

    fn msg(e: &WebhookEvent) -> &InboundMessage {
        e.message()
            .unwrap_or_else(|| panic!("not a message: {e:#?}"))
    }

    fn status(e: &WebhookEvent) -> &StatusUpdate {
        e.status().unwrap_or_else(|| panic!("not a status: {e:#?}"))
    }

    fn media(m: &InboundMessage) -> (MediaKind, &Media) {
        match &m.content {
            MessageContent::Media { kind, media } => (*kind, media),
            other => panic!("not media: {other:?}"),
        }
    }

    const BINDA: &str = "Mauricio Binda";
    const BINDA_ROUTE: (&str, &str, &str) = ("880480571844883", "409552778964973", "43330585569");
    const PYWA_USER: &str = "US.13491208655302741918";
    const PYWA_PARENT: &str = "US.ENT.11815799212886844830";
    const NBG: &str = "wamid.nBgN6TUyN2k5NzAzM5kzNhUCABI8FDNFQjAxQkE5REI4NEUzQ5Y5QTNgAA==";

    fn binda_route() -> Route {
        route(BINDA_ROUTE.0, BINDA_ROUTE.1, BINDA_ROUTE.2)
    }

    fn pywa_user() -> UserRef {
        UserRef {
            wa_id: some("972987654321"),
            user_id: some(PYWA_USER),
            parent_user_id: some(PYWA_PARENT),
            name: some("Test Name"),
            username: None,
        }
    }

    fn binda_user() -> UserRef {
        UserRef {
            wa_id: some("1111111111111"),
            name: some(BINDA),
            ..UserRef::default()
        }
    }

    /// One assertion set per fixture in `whatsapp-webhooks/`.
    fn check_fixture(name: &str, events: &[WebhookEvent]) {
        match name {
            "document_message_pdf_no_caption.json" => {
                let e = only(events);
                let id = "1111111111111";
                assert_eq!(e.route, route(id, id, id));
                let m = msg(e);
                assert_eq!(
                    m.id,
                    "wamid.HBgABIYNNTUyxMEFFk5NzATY2QT0TY2QT0zMDkzNhUCFDNFQjBFMNzARjFDQQ1AA=="
                );
                assert_eq!(m.timestamp, ts(1673034392));
                assert_eq!(m.from, binda_user());
                let (kind, d) = media(m);
                assert_eq!(kind, MediaKind::Document);
                assert_eq!(d.id, "848704520347750");
                assert_eq!(d.mime_type, some("application/pdf"));
                assert_eq!(
                    d.sha256,
                    some("mu/J5jGsroQM3Tbn4c6StBJG4C4glbTi8gT4jhRHSt0=")
                );
                assert_eq!(d.filename, some("4_641947.pdf"));
                assert_eq!((d.caption.as_ref(), d.url.as_ref()), (None, None));
                assert_eq!(m.text_for_matching(), None);
                assert_eq!(m.kind(), "document");
                assert_eq!(e.dedupe_key(), Some(DedupeKey::Message(&m.id)));
            }
            "image_message.json" => {
                let e = only(events);
                assert_eq!(
                    e.route,
                    route("1234567890987654321", "1122334455667", "972123456789")
                );
                let m = msg(e);
                assert_eq!(m.id, "wamid.xyzxyz");
                assert_eq!(m.timestamp, ts(1697043379));
                assert_eq!(m.from, pywa_user());
                let (kind, i) = media(m);
                assert_eq!(kind, MediaKind::Image);
                assert_eq!(i.id, "65463453");
                assert_eq!(i.mime_type, some("image/jpeg"));
                assert_eq!(i.sha256, some("4654+8g="));
                assert_eq!(i.caption, None);
                assert!(m.context.is_none() && m.errors.is_empty() && m.referral.is_none());
            }
            "location_message.json" => {
                let e = only(events);
                assert_eq!(e.route, binda_route());
                let m = msg(e);
                assert_eq!(m.from, binda_user());
                assert_eq!(m.timestamp, ts(1673641462));
                let MessageContent::Location(l) = &m.content else {
                    panic!("{m:?}")
                };
                assert_eq!(l.latitude, -10.93941311633);
                assert_eq!(l.longitude, -10.606395436721);
                // `\/` escapes decoded.
                assert_eq!(
                    l.url,
                    some("https://foursquare.com/v/5c42c5667d8497002c6e09f9")
                );
                assert_eq!((l.name.as_ref(), l.address.as_ref()), (None, None));
            }
            "multiple_messages.json" => {
                assert_eq!(events.len(), 2);
                let want = [("MESSAGE_BODY", 1669233778), ("MESSAGE_BODY2", 1669233779)];
                for (e, (body, secs)) in events.iter().zip(want) {
                    assert_eq!(
                        e.route,
                        route(
                            "WHATSAPP_BUSINESS_ACCOUNT_ID",
                            "PHONE_NUMBER_ID",
                            "PHONE_NUMBER"
                        )
                    );
                    let m = msg(e);
                    assert_eq!(m.content, MessageContent::Text { body: body.into() });
                    assert_eq!(m.text_for_matching(), Some(body));
                    assert_eq!(m.timestamp, ts(secs));
                    assert_eq!(m.from.wa_id, some("PHONE_NUMBER"));
                    assert_eq!(m.from.name, some("NAME"));
                    // The fixture reuses one wamid: the processor would see the second as a repeat.
                    assert_eq!(e.dedupe_key(), Some(DedupeKey::Message("wamid.ID")));
                }
            }
            "reaction_message.json" => {
                let e = only(events);
                assert_eq!(e.route, binda_route());
                let m = msg(e);
                assert_eq!(m.id, NBG);
                assert_eq!(m.timestamp, ts(1673026587));
                assert_eq!(
                    m.content,
                    MessageContent::Reaction {
                        message_id: NBG.into(),
                        emoji: some("👍")
                    }
                );
            }
            "status_delivered_cbp.json" => {
                let e = only(events);
                assert_eq!(e.route, binda_route());
                let s = status(e);
                assert_eq!(s.id, NBG);
                assert_eq!(s.status, StatusKind::Delivered);
                assert_eq!(s.timestamp, ts(1673020317));
                assert_eq!(s.recipient_id, some("1111111111111"));
                // No contacts block: the recipient is what the status names.
                assert_eq!(
                    s.recipient,
                    UserRef {
                        wa_id: some("1111111111111"),
                        ..UserRef::default()
                    }
                );
                assert_eq!(
                    s.conversation,
                    Some(Conversation {
                        id: some("8eb644d2350611f3746e7f0985bddfc1"),
                        expiration_timestamp: None,
                        origin_type: some("business_initiated"),
                    })
                );
                assert_eq!(
                    s.pricing,
                    Some(Pricing {
                        pricing_model: some("CBP"),
                        kind: None,
                        category: some("business_initiated"),
                        billable: Some(true),
                    })
                );
                assert!(s.errors.is_empty());
                assert_eq!(s.failure_class(), None);
                assert_eq!(
                    e.dedupe_key(),
                    Some(DedupeKey::Status(NBG, StatusKind::Delivered))
                );
            }
            "status_failed_130472.json" => {
                let e = only(events);
                assert_eq!(
                    e.route,
                    route("5467539754836534", "1122334455667", "972123456789")
                );
                let s = status(e);
                assert_eq!(
                    (s.id.as_str(), s.status),
                    ("wamid.xyzxyz", StatusKind::Failed)
                );
                assert_eq!(s.timestamp, ts(1689380458));
                assert_eq!(s.recipient, pywa_user());
                let title = "User's number is part of an experiment";
                assert_eq!(
                    s.errors,
                    vec![WebhookError {
                        code: Some(130472),
                        title: some(title),
                        message: some(title),
                        details: some("Failed to send message because this user's phone number is part of an experiment"),
                        href: some("https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"),
                    }]
                );
                assert_eq!(s.failure_class(), Some(FailureClass::Rejected));
                assert_eq!((s.pricing.as_ref(), s.conversation.as_ref()), (None, None));
            }
            "status_failed_131047.json" => {
                let e = only(events);
                assert_eq!(
                    e.route,
                    route("111111111111111", "109999999999999", "101010101010")
                );
                let s = status(e);
                assert_eq!(s.status, StatusKind::Failed);
                assert_eq!(
                    s.id,
                    "wamid.HBgNN5NzAzMDkTUyNzkzNhUEjA1MjUwNCAUIyNEYUQ0OTVGNTY0MwA="
                );
                assert_eq!(s.timestamp, ts(1682651887));
                assert_eq!(s.recipient_id, some("5511111111111"));
                assert_eq!(s.errors.len(), 1);
                assert_eq!(s.errors[0].code, Some(131047));
                assert_eq!(s.errors[0].title, some("Re-engagement message"));
                assert!(s.errors[0]
                    .reason()
                    .starts_with("Message failed to send because more than 24 hours"));
                assert_eq!(s.failure_class(), Some(FailureClass::OutsideWindow));
            }
            "status_failed_131053_media_upload.json" => {
                let s = status(only(events));
                assert_eq!(s.status, StatusKind::Failed);
                assert_eq!(s.timestamp, ts(1677783372));
                let err = &s.errors[0];
                assert_eq!(err.code, Some(131053));
                assert_eq!(err.href, None);
                assert_eq!(
                    err.details,
                    some("Unsupported Video mime type text/html. Please use one of video/3gpp, video/mp4.")
                );
                assert_eq!(err.class(), FailureClass::Rejected);
            }
            "status_read.json" => {
                let s = status(only(events));
                assert_eq!(
                    (s.id.as_str(), s.status),
                    ("wamid.xyzxyz", StatusKind::Read)
                );
                assert_eq!(s.timestamp, ts(1689380458));
                // The contacts block on a status names the recipient.
                assert_eq!(s.recipient, pywa_user());
                assert_eq!(
                    s.conversation,
                    Some(Conversation {
                        id: some("7270432eae37498234f4444b35ffc5"),
                        expiration_timestamp: None,
                        origin_type: some("service"),
                    })
                );
                let p = s.pricing.as_ref().unwrap();
                assert_eq!(
                    (p.pricing_model.as_deref(), p.category.as_deref()),
                    (Some("CBP"), Some("service"))
                );
            }
            "status_sent_cbp_business_initiated.json" => {
                let e = only(events);
                assert_eq!(e.route, binda_route());
                let s = status(e);
                assert_eq!((s.id.as_str(), s.status), (NBG, StatusKind::Sent));
                let c = s.conversation.as_ref().unwrap();
                assert_eq!(c.expiration_timestamp, Some(ts(1673031000)));
                assert_eq!(c.origin_type, some("business_initiated"));
                assert_eq!(s.pricing.as_ref().unwrap().billable, Some(true));
                assert_eq!(s.biz_opaque_callback_data, None);
            }
            "status_sent_with_biz_opaque_callback_data.json" => {
                let s = status(only(events));
                assert_eq!(s.status, StatusKind::Sent);
                assert_eq!(s.timestamp, ts(1698266945));
                assert_eq!(s.biz_opaque_callback_data, some("some data"));
                assert_eq!(
                    s.conversation.as_ref().unwrap().expiration_timestamp,
                    Some(ts(1698339900))
                );
                assert_eq!(s.recipient_user_id, None);
                assert_eq!(s.recipient.user_id, some(PYWA_USER));
            }
            "system_user_changed_number.json" => {
                let m = msg(only(events));
                assert_eq!(m.id, "wamid.xyzxyz==");
                assert_eq!(m.timestamp, ts(1753851315));
                assert_eq!(
                    m.from,
                    UserRef {
                        wa_id: some("972987654321"),
                        ..UserRef::default()
                    }
                );
                assert_eq!(
                    m.content,
                    MessageContent::System(SystemChange {
                        kind: SystemKind::UserChangedNumber,
                        body: some("User A changed from 972987654321 to 972912345678"),
                        new_wa_id: some("972912345678"),
                        new_user_id: None,
                        customer: None,
                        identity: None,
                    })
                );
                assert_eq!(m.text_for_matching(), None);
            }
            "template_button_quick_reply.json" => {
                let e = only(events);
                assert_eq!(e.route, binda_route());
                let m = msg(e);
                assert_eq!(m.from, binda_user());
                assert_eq!(m.timestamp, ts(1673023653));
                assert_eq!(
                    m.content,
                    MessageContent::QuickReply {
                        payload: "SIM".into(),
                        text: "SIM".into()
                    }
                );
                assert_eq!(
                    m.context,
                    Some(MessageContext {
                        id: some(NBG),
                        from: some("43330585569"),
                        forwarded: false,
                        frequently_forwarded: false,
                    })
                );
                assert_eq!(m.text_for_matching(), Some("SIM"));
                assert_eq!(m.reply_payload(), Some("SIM"));
                assert_eq!(m.kind(), "button");
            }
            "template_button_quick_reply_no_context.json" => {
                let m = msg(only(events));
                assert_eq!(m.id, "wamid.xsidjx");
                assert_eq!(m.timestamp, ts(1698269027));
                assert_eq!(m.from, pywa_user());
                assert_eq!(m.context, None);
                assert_eq!(m.text_for_matching(), Some("title"));
                assert_eq!(m.reply_payload(), Some("callback_data"));
            }
            "text_message_bsuid_only_no_from.json" => {
                let m = msg(only(events));
                assert_eq!(m.id, "wamid.ID");
                assert_eq!(
                    m.content,
                    MessageContent::Text {
                        body: "MESSAGE_BODY".into()
                    }
                );
                // No `from`: the sender is the change's only contact, known by BSUID alone.
                assert_eq!(
                    m.from,
                    UserRef {
                        user_id: some("BSUID_123"),
                        name: some("NAME"),
                        ..UserRef::default()
                    }
                );
            }
            "text_reply_with_context.json" => {
                let m = msg(only(events));
                assert_eq!(
                    m.content,
                    MessageContent::Text {
                        body: "replied text".into()
                    }
                );
                assert_eq!(m.timestamp, ts(1697044746));
                assert_eq!(m.from, pywa_user());
                let c = m.context.as_ref().unwrap();
                assert_eq!(
                    (c.id.as_deref(), c.from.as_deref()),
                    (Some("wamid.xyzxyz=="), Some("972123456789"))
                );
                assert!(!c.forwarded);
            }
            "value_errors_131000_with_message.json" => {
                assert_eq!(events.len(), 2, "{events:#?}");
                let error = WebhookError {
                    code: Some(131000),
                    title: some("Something went wrong"),
                    message: some("Something went wrong"),
                    details: some("Unsupported webhook payload"),
                    href: None,
                };
                // The interactive message came without its payload, and Meta said why next to it.
                let m = msg(&events[0]);
                assert_eq!(m.id, "wamid.wegrchytvwcggt=");
                assert_eq!(m.timestamp, ts(1700505494));
                assert_eq!(m.from, pywa_user());
                assert_eq!(
                    m.content,
                    MessageContent::Unsupported {
                        kind: some("interactive")
                    }
                );
                assert_eq!(m.errors, vec![error.clone()]);
                assert_eq!(m.context.as_ref().unwrap().id, some("wamid.gvwegfretge=="));
                assert_eq!(events[1].event, Event::Error(error.clone()));
                assert_eq!(events[1].route, events[0].route);
                assert_eq!(events[1].dedupe_key(), None);
                assert_eq!(error.class(), FailureClass::Transient);
            }
            other => panic!("no expectations written for fixture {other}"),
        }
    }

    #[test]
    fn every_webhook_fixture_parses_into_its_events() {
        let files = webhook_fixtures();
        assert_eq!(files.len(), 18, "fixtures in {}", fixtures().display());
        for (name, body) in files {
            let events = parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            check_fixture(&name, &events);
        }
    }

    // ---- synthetic payloads, in the documented shapes ----

    fn body(entries: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "object": OBJECT, "entry": entries })).unwrap()
    }

    fn entry(waba: &str, changes: Vec<Value>) -> Value {
        json!({ "id": waba, "changes": changes })
    }

    fn messages_change(phone_id: &str, mut value: Value) -> Value {
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] =
            json!({ "display_phone_number": "15550783881", "phone_number_id": phone_id });
        json!({ "field": "messages", "value": value })
    }

    fn text(id: &str, from: &str, body: &str) -> Value {
        json!({ "from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": { "body": body } })
    }

    fn typed(id: &str, kind: &str, payload: Value) -> Value {
        json!({ "from": "16505551234", "id": id, "timestamp": "1700000000", "type": kind, kind: payload })
    }

    fn status_json(id: &str, status: &str) -> Value {
        json!({ "id": id, "status": status, "timestamp": "1700000001", "recipient_id": "16505551234" })
    }

    fn parse_one(value: Value) -> Vec<WebhookEvent> {
        parse(&body(vec![entry(
            "waba",
            vec![messages_change("pn", value)],
        )]))
        .unwrap()
    }

    #[test]
    fn a_thousand_updates_in_one_post_all_come_back_in_order() {
        // 4 entries × 5 changes × (25 messages + 25 statuses).
        let kinds = ["sent", "delivered", "read", "failed", "played"];
        let mut entries = Vec::new();
        let mut want = Vec::new();
        for e in 0..4 {
            let mut changes = Vec::new();
            for c in 0..5 {
                let pn = format!("pn-{e}-{c}");
                let mut messages = Vec::new();
                let mut statuses = Vec::new();
                for i in 0..25 {
                    let id = format!("wamid.in.{e}.{c}.{i}");
                    messages.push(match i % 5 {
                        0 => text(&id, "16505551234", &format!("hola {i}")),
                        1 => typed(&id, "button", json!({ "payload": "PAY", "text": "Pagar" })),
                        2 => typed(&id, "interactive", json!({ "type": "button_reply", "button_reply": { "id": "b1", "title": "Sí" } })),
                        3 => typed(&id, "image", json!({ "id": format!("media{i}"), "mime_type": "image/jpeg", "sha256": "x" })),
                        _ => typed(&id, "reaction", json!({ "message_id": "wamid.out", "emoji": "👍" })),
                    });
                    want.push((pn.clone(), format!("msg:{id}")));
                }
                for i in 0..25 {
                    let id = format!("wamid.out.{e}.{c}.{i}");
                    let s = kinds[i % kinds.len()];
                    statuses.push(status_json(&id, s));
                    want.push((pn.clone(), format!("status:{id}:{s}")));
                }
                changes.push(messages_change(
                    &pn,
                    json!({ "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "16505551234" }],
                            "messages": messages, "statuses": statuses }),
                ));
            }
            entries.push(entry(&format!("waba-{e}"), changes));
        }
        let events = parse(&body(entries)).unwrap();
        assert_eq!(events.len(), 1000);
        let got: Vec<(String, String)> = events
            .iter()
            .map(|ev| {
                let key = ev
                    .dedupe_key()
                    .unwrap_or_else(|| panic!("untyped: {ev:#?}"))
                    .to_string();
                (ev.route.phone_number_id.clone().unwrap(), key)
            })
            .collect();
        assert_eq!(got, want);
        assert!(events
            .iter()
            .all(|e| e.route.waba_id.as_deref().unwrap().starts_with("waba-")));
    }

    #[test]
    fn a_three_megabyte_body_parses() {
        // Long texts full of escapes, as Meta writes them (`\/`, `\u00e9`).
        let chunk = "Pagu\\u00e9 el recibo https:\\/\\/pay.example\\/x ".repeat(75);
        let messages: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    r#"{{"from":"16505551234","id":"wamid.{i}","timestamp":"1700000000","type":"text","text":{{"body":"{chunk}"}}}}"#
                )
            })
            .collect();
        let raw = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"w","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"pn"}},"messages":[{}]}}}}]}}]}}"#,
            messages.join(",")
        );
        assert!(raw.len() >= 3_000_000, "{} bytes", raw.len());
        let started = std::time::Instant::now();
        let events = parse(raw.as_bytes()).unwrap();
        eprintln!("{} bytes parsed in {:?}", raw.len(), started.elapsed());
        assert_eq!(events.len(), 1000);
        let first = msg(&events[0]).text_for_matching().unwrap();
        assert!(
            first.starts_with("Pagué el recibo https://pay.example/x "),
            "{first}"
        );
        assert_eq!(msg(&events[999]).id, "wamid.999");
    }

    /// A short tag per event, to compare whole sequences.
    fn tag(e: &WebhookEvent) -> String {
        match &e.event {
            Event::Message(m) => format!("message {} {}", m.id, m.kind()),
            Event::Status(s) => format!("status {} {}", s.id, s.status.as_str()),
            Event::Error(err) => format!("error {:?}", err.code),
            Event::UserPreference(p) => format!("preference {:?}", p.value),
            Event::Unknown { field, kind, .. } => format!("unknown {field} {kind}"),
            Event::Malformed { .. } => "malformed".into(),
        }
    }

    #[test]
    fn unknown_and_malformed_pieces_never_fail_the_others() {
        let messages = json!([
            text("m1", "1", "hola"),
            typed("m2", "order", json!({ "catalog_id": "c", "product_items": [] })),
            { "from": "1", "timestamp": "1700000000", "type": "text", "text": { "body": "no id" } },
            { "from": "1", "id": "m4", "timestamp": "yesterday", "type": "text", "text": { "body": "x" } },
            typed("m5", "image", json!({ "mime_type": "image/jpeg" })),
            typed("m6", "interactive", json!({ "type": "call_permission_reply", "call_permission_reply": {} })),
            typed("m7", "location", json!({ "latitude": "north", "longitude": 1 })),
            "just a string",
            { "from": "1", "id": "m9", "timestamp": "1700000000", "type": "request_welcome" },
            { "from": "1", "id": "m10", "timestamp": "1700000000", "type": "unknown",
              "errors": [{ "code": 131051, "title": "Message type unknown" }] },
            { "from": "1", "id": "m11", "timestamp": "1700000000", "type": "poll",
              "errors": [{ "code": "131051" }] },
            { "id": "m12", "timestamp": "1700000000", "type": "text", "text": { "body": "nobody" } },
            { "from": "1", "id": {"x": 1}, "timestamp": "1700000000", "type": "text", "text": { "body": "x" } },
            { "from": "1", "id": "m14", "timestamp": "1700000000", "type": "text",
              "text": { "body": "with extras", "new": true }, "brand_new_field": [1, 2] },
        ]);
        let statuses = json!([
            status_json("s1", "deleted"),
            { "status": "sent", "timestamp": "1" },
            { "id": "s3", "status": "read", "timestamp": 99999999999999999i64 },
            status_json("s4", "delivered"),
        ]);
        let raw = body(vec![
            entry(
                "w1",
                vec![
                    messages_change(
                        "pn1",
                        json!({ "messages": messages, "statuses": statuses,
                                "message_echoes": [{ "id": "e1" }], "new_scalar": 5 }),
                    ),
                    json!({ "field": "message_template_status_update",
                            "value": { "event": "APPROVED", "message_template_id": 1 } }),
                    json!({ "field": "account_update", "value": { "phone_number": "1", "event": "VERIFIED_ACCOUNT" } }),
                    json!(42),
                    json!({ "value": {} }),
                    json!({ "field": "messages", "value": "x" }),
                    messages_change("pn2", json!({ "messages": { "not": "a list" } })),
                ],
            ),
            json!("nope"),
            json!({ "id": "w3" }),
            entry(
                "w4",
                vec![messages_change(
                    "pn4",
                    json!({ "messages": [text("m99", "1", "ok")] }),
                )],
            ),
        ]);
        let events = parse(&raw).unwrap();
        let tags: Vec<String> = events.iter().map(tag).collect();
        assert_eq!(
            tags,
            [
                "message m1 text",
                "unknown messages order",
                "malformed",
                "malformed",
                "malformed",
                "unknown messages interactive/call_permission_reply",
                "malformed",
                "malformed",
                "unknown messages request_welcome",
                "message m10 unsupported",
                "message m11 unsupported",
                "malformed",
                "malformed",
                "message m14 text",
                "unknown messages status/deleted",
                "malformed",
                "malformed",
                "status s4 delivered",
                "unknown messages message_echoes",
                "unknown message_template_status_update message_template_status_update",
                "unknown account_update account_update",
                "malformed",
                "malformed",
                "malformed",
                "malformed",
                "malformed",
                "malformed",
                "message m99 text",
            ]
        );
        // Reasons name the problem; raw keeps the piece as sent.
        let Event::Malformed { reason, raw } = &events[3].event else {
            unreachable!()
        };
        assert!(reason.contains("yesterday"), "{reason}");
        assert_eq!(raw["id"], "m4");
        let Event::Malformed { reason, .. } = &events[11].event else {
            unreachable!()
        };
        assert!(reason.contains("sender"), "{reason}");
        let Event::Unknown { raw, .. } = &events[1].event else {
            unreachable!()
        };
        assert_eq!(raw["order"]["catalog_id"], "c");
        let m11 = msg(&events[10]);
        assert_eq!(
            m11.content,
            MessageContent::Unsupported { kind: some("poll") }
        );
        assert_eq!(m11.errors[0].code, Some(131051));
        let Event::Unknown { raw, .. } = &events[19].event else {
            unreachable!()
        };
        assert_eq!(raw["event"], "APPROVED");
        // Route is per change: the template update has no number, its entry's WABA only.
        assert_eq!(
            events[19].route,
            Route {
                waba_id: some("w1"),
                ..Route::default()
            }
        );
        assert_eq!(events[0].route.phone_number_id, some("pn1"));
        assert_eq!(
            events[25].route,
            Route::default(),
            "entry that is not an object"
        );
        assert_eq!(events[26].route.waba_id, some("w3"));
        assert_eq!(events[27].route.phone_number_id, some("pn4"));
        // Unknown and malformed pieces are not deduplicated (kept every time, for inspection).
        assert!(events[1].dedupe_key().is_none() && events[2].dedupe_key().is_none());
    }

    #[test]
    fn bodies_that_are_not_whatsapp_deliveries_fail() {
        assert!(matches!(parse(b"not json"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b""), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"[1,2]"), Err(ParseError::NotWhatsApp(_))));
        assert!(matches!(
            parse(br#"{"object":"page","entry":[]}"#),
            Err(ParseError::NotWhatsApp(_))
        ));
        assert!(matches!(
            parse(br#"{"object":"whatsapp_business_account"}"#),
            Err(ParseError::NotWhatsApp(_))
        ));
        assert!(matches!(
            parse(br#"{"object":"whatsapp_business_account","entry":{}}"#),
            Err(ParseError::NotWhatsApp(_))
        ));
        assert_eq!(
            parse(br#"{"object":"whatsapp_business_account","entry":[]}"#).unwrap(),
            vec![]
        );
        // Without `object`, the shape alone is enough.
        assert_eq!(
            parse(br#"{"entry":[{"id":"w","changes":[]}]}"#).unwrap(),
            vec![]
        );
    }

    #[test]
    fn interactive_replies_media_and_the_other_kinds() {
        let events = parse_one(json!({
            "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "16505551234" }],
            "messages": [
                typed("b", "interactive", json!({ "type": "button_reply", "button_reply": { "id": "PAY:1", "title": "Pagar" } })),
                typed("l", "interactive", json!({ "type": "list_reply", "list_reply": { "id": "plan-3", "title": "3 cuotas", "description": "de $400" } })),
                typed("f", "interactive", json!({ "type": "nfm_reply", "nfm_reply": { "name": "flow", "body": "Sent", "response_json": "{\"a\":1}" } })),
                typed("a", "audio", json!({ "id": "au", "mime_type": "audio/ogg; codecs=opus", "sha256": "h", "voice": true })),
                typed("v", "video", json!({ "id": "vi", "mime_type": "video/mp4", "sha256": "h", "caption": "mira", "url": "https://lookaside.fbsbx.com/x" })),
                typed("s", "sticker", json!({ "id": "st", "mime_type": "image/webp", "sha256": "h", "animated": false })),
                typed("r1", "reaction", json!({ "message_id": "wamid.out" })),
                typed("r2", "reaction", json!({ "message_id": "wamid.out", "emoji": "" })),
                typed("c", "contacts", json!([{ "name": { "formatted_name": "Abogado", "first_name": "A" },
                    "phones": [{ "phone": "+1 650 555 0000", "wa_id": "16505550000", "type": "WORK" }],
                    "emails": [{ "email": "a@example.com", "type": "WORK" }], "org": { "company": "X" } }])),
                typed("y", "system", json!({ "type": "customer_identity_changed", "body": "changed", "customer": "16505551234", "identity": "abc" })),
                { "from": "16505551234", "id": "fw", "timestamp": 1700000000, "type": "text", "text": { "body": "BAJA" },
                  "context": { "forwarded": true, "frequently_forwarded": true },
                  "referral": { "source_url": "https://fb.me/x", "source_type": "ad", "ctwa_clid": "c1" } },
                { "from": "16505551234", "id": "u", "timestamp": "1700000000", "type": "unsupported",
                  "unsupported": { "type": "edit" }, "errors": [{ "code": 131051, "title": "Message type unknown",
                  "message": "Message type unknown", "error_data": { "details": "Message type is currently not supported." } }] },
            ]
        }));
        assert_eq!(events.len(), 12, "{events:#?}");
        let m: Vec<&InboundMessage> = events.iter().map(msg).collect();
        assert!(m.iter().all(|m| m.from.name.as_deref() == Some("Ana")));
        assert_eq!(
            m[0].content,
            MessageContent::ButtonReply {
                id: "PAY:1".into(),
                title: "Pagar".into()
            }
        );
        assert_eq!(
            (m[0].text_for_matching(), m[0].reply_payload()),
            (Some("Pagar"), Some("PAY:1"))
        );
        assert_eq!(
            m[1].content,
            MessageContent::ListReply {
                id: "plan-3".into(),
                title: "3 cuotas".into(),
                description: some("de $400")
            }
        );
        assert_eq!(m[1].text_for_matching(), Some("3 cuotas"));
        let MessageContent::FlowReply { raw } = &m[2].content else {
            panic!()
        };
        assert_eq!(raw["response_json"], "{\"a\":1}");
        assert_eq!(m[2].kind(), "interactive");
        let (k, a) = media(m[3]);
        assert_eq!(
            (k, a.id.as_str(), a.voice),
            (MediaKind::Audio, "au", Some(true))
        );
        let (k, v) = media(m[4]);
        assert_eq!(
            (k, v.caption.as_deref(), v.url.as_deref()),
            (
                MediaKind::Video,
                Some("mira"),
                Some("https://lookaside.fbsbx.com/x")
            )
        );
        assert_eq!(m[4].text_for_matching(), Some("mira"));
        let (k, s) = media(m[5]);
        assert_eq!((k, s.animated), (MediaKind::Sticker, Some(false)));
        // A removed reaction: no emoji, or an empty one.
        for r in &m[6..8] {
            assert_eq!(
                r.content,
                MessageContent::Reaction {
                    message_id: "wamid.out".into(),
                    emoji: None
                }
            );
        }
        let MessageContent::Contacts(cards) = &m[8].content else {
            panic!()
        };
        assert_eq!(cards[0].name, some("Abogado"));
        assert_eq!(
            cards[0].phones,
            vec![SharedPhone {
                phone: some("+1 650 555 0000"),
                wa_id: some("16505550000"),
                kind: some("WORK")
            }]
        );
        assert_eq!(cards[0].emails, vec!["a@example.com".to_string()]);
        assert_eq!(cards[0].raw["org"]["company"], "X");
        let MessageContent::System(sys) = &m[9].content else {
            panic!()
        };
        assert_eq!(sys.kind, SystemKind::CustomerIdentityChanged);
        assert_eq!(
            (sys.customer.as_deref(), sys.identity.as_deref()),
            (Some("16505551234"), Some("abc"))
        );
        let ctx = m[10].context.as_ref().unwrap();
        assert!(ctx.forwarded && ctx.frequently_forwarded && ctx.id.is_none());
        assert_eq!(m[10].referral.as_ref().unwrap()["ctwa_clid"], "c1");
        assert_eq!(m[10].timestamp, ts(1700000000), "numeric timestamp");
        assert_eq!(
            m[11].content,
            MessageContent::Unsupported { kind: some("edit") }
        );
        assert_eq!(
            m[11].errors[0].reason(),
            "Message type is currently not supported."
        );
        assert_eq!(m[11].text_for_matching(), None);
    }

    #[test]
    fn statuses_for_bsuid_users_with_pricing_and_played() {
        let events = parse_one(json!({
            "contacts": [{ "profile": { "name": "Ana" }, "user_id": "US.1", "parent_user_id": "US.ENT.1" }],
            "statuses": [
                { "id": "o1", "status": "sent", "timestamp": "1700000001", "recipient_user_id": "US.1",
                  "pricing": { "billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility" },
                  "biz_opaque_callback_data": "debt:123:step:4" },
                { "id": "o2", "status": "played", "timestamp": "1700000002", "recipient_user_id": "US.1",
                  "pricing": { "billable": "maybe" }, "conversation": 7 },
                { "id": "o3", "status": "failed", "timestamp": "1700000003", "recipient_id": "16505551234" },
            ]
        }));
        let s: Vec<&StatusUpdate> = events.iter().map(status).collect();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (
                s[0].recipient_id.as_ref(),
                s[0].recipient_user_id.as_deref()
            ),
            (None, Some("US.1"))
        );
        assert_eq!(
            s[0].recipient,
            UserRef {
                user_id: some("US.1"),
                parent_user_id: some("US.ENT.1"),
                name: some("Ana"),
                ..UserRef::default()
            }
        );
        assert_eq!(
            s[0].pricing,
            Some(Pricing {
                pricing_model: some("PMP"),
                kind: some("regular"),
                category: some("utility"),
                billable: Some(true)
            })
        );
        assert_eq!(s[0].biz_opaque_callback_data, some("debt:123:step:4"));
        // Garbled informative parts are left out, the status kept.
        assert_eq!(
            (
                s[1].status,
                s[1].pricing.as_ref(),
                s[1].conversation.as_ref()
            ),
            (StatusKind::Played, None, None)
        );
        // A failed status without errors: no code, so rejected with no reason to retry.
        assert_eq!(s[2].failure_class(), Some(FailureClass::Rejected));
        // The contact (BSUID only) does not contradict the phone, and is the only one: attached.
        assert_eq!(s[2].recipient.user_id, some("US.1"));
    }

    #[test]
    fn contacts_attach_to_the_right_sender() {
        let events = parse_one(json!({
            "contacts": [
                { "profile": { "name": "Ana" }, "wa_id": "111" },
                { "profile": { "name": "Beto" }, "wa_id": "222", "user_id": "US.2" },
            ],
            "messages": [
                text("a", "111", "x"),
                { "from_user_id": "US.2", "id": "b", "timestamp": "1", "type": "text", "text": { "body": "y" } },
                text("c", "333", "z"),
            ]
        }));
        let names: Vec<(Option<String>, Option<String>, Option<String>)> = events
            .iter()
            .map(msg)
            .map(|m| {
                (
                    m.from.name.clone(),
                    m.from.wa_id.clone(),
                    m.from.user_id.clone(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (some("Ana"), some("111"), None),
                (some("Beto"), some("222"), some("US.2")),
                (None, some("333"), None),
            ]
        );
        // A single contact that names someone else is not attached.
        let events = parse_one(json!({
            "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "111" }],
            "messages": [text("a", "999", "x")]
        }));
        assert_eq!(
            msg(&events[0]).from,
            UserRef {
                wa_id: some("999"),
                ..UserRef::default()
            }
        );
    }

    #[test]
    fn user_preferences_stop_and_resume() {
        let raw = body(vec![entry(
            "102290129340398",
            vec![json!({ "field": "user_preferences", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
                "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": "16505551234", "user_id": "US.134" }],
                "user_preferences": [
                    { "wa_id": "16505551234", "detail": "User requested to stop marketing messages",
                      "category": "marketing_messages", "value": "stop", "timestamp": 1731705721 },
                    { "user_id": "US.134", "category": "marketing_messages", "value": "resume", "timestamp": "1731705800" },
                    { "wa_id": "16505551234", "category": "marketing_messages" },
                ]
            }})],
        )]);
        let events = parse(&raw).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].route,
            route("102290129340398", "106540352242922", "15550783881")
        );
        let Event::UserPreference(stop) = &events[0].event else {
            panic!("{events:#?}")
        };
        assert_eq!(stop.value, PreferenceValue::Stop);
        assert_eq!(stop.category, "marketing_messages");
        assert_eq!(stop.timestamp, Some(ts(1731705721)));
        assert_eq!(
            stop.detail,
            some("User requested to stop marketing messages")
        );
        assert_eq!(
            stop.user,
            UserRef {
                wa_id: some("16505551234"),
                user_id: some("US.134"),
                name: some("Sheena Nelson"),
                ..UserRef::default()
            }
        );
        let Event::UserPreference(resume) = &events[1].event else {
            panic!()
        };
        assert_eq!(resume.value, PreferenceValue::Resume);
        assert_eq!(
            resume.user.wa_id,
            some("16505551234"),
            "completed from the contact"
        );
        assert!(matches!(events[2].event, Event::Malformed { .. }));
        assert_eq!(events[0].dedupe_key(), None);
    }

    #[test]
    fn statuses_only_move_forward_and_failed_is_final() {
        use StatusKind::*;
        let all = [Sent, Delivered, Read, Played, Failed];
        assert!(Sent.rank() < Delivered.rank() && Delivered.rank() < Read.rank());
        assert!(Played.rank() >= Read.rank());
        let allowed = [
            (Sent, Delivered),
            (Sent, Read),
            (Sent, Played),
            (Sent, Failed),
            (Delivered, Read),
            (Delivered, Played),
            (Read, Played),
        ];
        for prev in all {
            for next in all {
                assert_eq!(
                    next.may_follow(prev),
                    allowed.contains(&(prev, next)),
                    "{next:?} after {prev:?}"
                );
            }
            assert_eq!(StatusKind::parse(prev.as_str()), Some(prev));
        }
        assert!(Failed.is_terminal() && !Played.is_terminal());
        assert_eq!(StatusKind::parse("deleted"), None);
    }

    #[test]
    fn dedupe_keys_print_stably() {
        assert_eq!(DedupeKey::Message("wamid.A").to_string(), "msg:wamid.A");
        assert_eq!(
            DedupeKey::Status("wamid.A", StatusKind::Read).to_string(),
            "status:wamid.A:read"
        );
    }

    #[test]
    fn text_for_matching_falls_back_to_the_payload() {
        let events = parse_one(json!({ "messages": [
            typed("q", "button", json!({ "payload": "OPTOUT", "text": "" })),
            typed("e", "text", json!({ "body": "   " })),
        ]}));
        assert_eq!(msg(&events[0]).text_for_matching(), Some("OPTOUT"));
        assert_eq!(msg(&events[1]).text_for_matching(), None);
    }

    mod never_panics {
        use super::*;
        use proptest::prelude::*;

        const KEYS: &[&str] = &[
            "object",
            "entry",
            "id",
            "changes",
            "field",
            "value",
            "messages",
            "statuses",
            "errors",
            "contacts",
            "metadata",
            "phone_number_id",
            "display_phone_number",
            "type",
            "text",
            "body",
            "from",
            "from_user_id",
            "timestamp",
            "interactive",
            "button_reply",
            "list_reply",
            "nfm_reply",
            "button",
            "payload",
            "title",
            "image",
            "document",
            "location",
            "latitude",
            "reaction",
            "emoji",
            "message_id",
            "system",
            "wa_id",
            "user_id",
            "status",
            "recipient_id",
            "pricing",
            "conversation",
            "origin",
            "expiration_timestamp",
            "code",
            "error_data",
            "details",
            "context",
            "referral",
            "user_preferences",
            "category",
            "profile",
            "name",
            "unsupported",
            "sent",
            "failed",
        ];

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                prop::sample::select(KEYS).prop_map(Value::from),
                "[0-9]{0,20}".prop_map(Value::from),
                ".{0,12}".prop_map(Value::from),
            ];
            leaf.prop_recursive(5, 96, 8, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec(
                        (
                            prop_oneof![
                                prop::sample::select(KEYS).prop_map(String::from),
                                "[a-z_]{1,6}"
                            ],
                            inner
                        ),
                        0..8
                    )
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        /// Replaces the node at a pseudo-random path with `new`.
        fn graft(v: &mut Value, mut path: u64, new: Value) {
            let mut node = v;
            loop {
                let len = match &*node {
                    Value::Array(a) => a.len(),
                    Value::Object(m) => m.len(),
                    _ => 0,
                };
                if len == 0 || path.is_multiple_of(4) {
                    *node = new;
                    return;
                }
                let i = (path as usize / 4) % len;
                path /= 7;
                node = match node {
                    Value::Array(a) => &mut a[i],
                    Value::Object(m) => m.values_mut().nth(i).unwrap(),
                    _ => unreachable!(),
                };
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                let _ = parse(&bytes);
            }

            #[test]
            fn on_arbitrary_json(v in json()) {
                let _ = parse(&serde_json::to_vec(&v).unwrap());
            }

            /// Whatever the messages and statuses are, each becomes exactly one event.
            #[test]
            fn one_event_per_piece(messages in prop::collection::vec(json(), 0..6),
                                   statuses in prop::collection::vec(json(), 0..6)) {
                let (m, s) = (messages.len(), statuses.len());
                let events = parse_one(json!({ "messages": messages, "statuses": statuses }));
                prop_assert_eq!(events.len(), m + s);
            }

            /// Real payloads with one node swapped for arbitrary JSON.
            #[test]
            fn on_mutated_fixtures(which in any::<prop::sample::Index>(), path in any::<u64>(), new in json()) {
                let files = webhook_fixtures();
                let (_, raw) = which.get(&files);
                let mut v: Value = serde_json::from_slice(raw).unwrap();
                graft(&mut v, path, new);
                let _ = parse(&serde_json::to_vec(&v).unwrap());
            }
        }
    }
}
