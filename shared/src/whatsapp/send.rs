//! The body of `POST /{version}/{phone-number-id}/messages`, as Meta documents it: text,
//! template (body and button parameters), interactive buttons and lists, and documents.

use serde::{Deserialize, Serialize};

use crate::domain::Language;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendRequest {
    pub messaging_product: &'static str,
    pub recipient_type: &'static str,
    /// E.164 with `+`: without it Meta prepends the business number's country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A business-scoped user id, for users known only by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(flatten)]
    pub content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ReplyContext>,
    /// Echoed back on every status webhook of this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
}

impl SendRequest {
    pub fn to(phone_e164: &str, content: Content) -> Self {
        Self {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to: Some(phone_e164.to_string()),
            recipient: None,
            content,
            context: None,
            biz_opaque_callback_data: None,
        }
    }

    pub fn correlated(mut self, data: impl Into<String>) -> Self {
        self.biz_opaque_callback_data = Some(data.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplyContext {
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    Text { text: Text },
    Template { template: Template },
    Interactive { interactive: Interactive },
    Document { document: Document },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Text {
    pub preview_url: bool,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    pub name: String,
    pub language: TemplateLanguage,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateLanguage {
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Component {
    Body {
        parameters: Vec<Parameter>,
    },
    Button {
        sub_type: ButtonKind,
        index: u8,
        parameters: Vec<Parameter>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonKind {
    QuickReply,
    Url,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Parameter {
    Text { text: String },
    Payload { payload: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Interactive {
    Button {
        body: InteractiveText,
        action: ButtonAction,
    },
    List {
        body: InteractiveText,
        action: ListAction,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractiveText {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ButtonAction {
    pub buttons: Vec<ReplyButton>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplyButton {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub reply: ReplyChoice,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplyChoice {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListAction {
    pub button: String,
    pub sections: Vec<ListSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListSection {
    pub title: String,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// Meta's limits on interactive messages; a message over them is refused before it is sent.
pub mod limits {
    pub const BUTTONS: usize = 3;
    pub const BUTTON_TITLE: usize = 20;
    pub const BUTTON_ID: usize = 256;
    pub const BODY: usize = 1024;
    pub const LIST_ROWS: usize = 10;
    pub const LIST_SECTIONS: usize = 10;
    pub const ROW_TITLE: usize = 24;
    pub const ROW_ID: usize = 200;
    pub const ROW_DESCRIPTION: usize = 72;
    pub const LIST_BUTTON: usize = 20;
    pub const CAPTION: usize = 1024;
}

impl Content {
    pub fn text(body: impl Into<String>) -> Self {
        Content::Text {
            text: Text {
                preview_url: false,
                body: body.into(),
            },
        }
    }

    /// A template with its body parameters in order, and quick-reply button payloads.
    pub fn template(
        name: impl Into<String>,
        language: &str,
        body: &[String],
        quick_replies: &[String],
    ) -> Self {
        let mut components = Vec::new();
        if !body.is_empty() {
            components.push(Component::Body {
                parameters: body
                    .iter()
                    .map(|t| Parameter::Text { text: t.clone() })
                    .collect(),
            });
        }
        for (i, payload) in quick_replies.iter().enumerate() {
            components.push(Component::Button {
                sub_type: ButtonKind::QuickReply,
                index: i as u8,
                parameters: vec![Parameter::Payload {
                    payload: payload.clone(),
                }],
            });
        }
        Content::Template {
            template: Template {
                name: name.into(),
                language: TemplateLanguage {
                    code: language.to_string(),
                },
                components,
            },
        }
    }

    /// Reply buttons (at most 3). `Err` names the limit broken.
    pub fn buttons(body: &str, choices: &[(String, String)]) -> Result<Self, String> {
        check(
            body.chars().count() <= limits::BODY,
            "body over 1024 characters",
        )?;
        check(
            !choices.is_empty() && choices.len() <= limits::BUTTONS,
            "1 to 3 buttons",
        )?;
        for (id, title) in choices {
            check(
                title.chars().count() <= limits::BUTTON_TITLE,
                "button title over 20 characters",
            )?;
            check(
                id.len() <= limits::BUTTON_ID,
                "button id over 256 characters",
            )?;
        }
        Ok(Content::Interactive {
            interactive: Interactive::Button {
                body: InteractiveText { text: body.into() },
                action: ButtonAction {
                    buttons: choices
                        .iter()
                        .map(|(id, title)| ReplyButton {
                            kind: "reply",
                            reply: ReplyChoice {
                                id: id.clone(),
                                title: title.clone(),
                            },
                        })
                        .collect(),
                },
            },
        })
    }

    /// A list (at most 10 rows in all). `Err` names the limit broken.
    pub fn list(body: &str, button: &str, sections: Vec<ListSection>) -> Result<Self, String> {
        check(
            body.chars().count() <= limits::BODY,
            "body over 1024 characters",
        )?;
        check(
            button.chars().count() <= limits::LIST_BUTTON,
            "list button over 20 characters",
        )?;
        check(
            !sections.is_empty() && sections.len() <= limits::LIST_SECTIONS,
            "1 to 10 sections",
        )?;
        let rows: Vec<&ListRow> = sections.iter().flat_map(|s| &s.rows).collect();
        check(
            !rows.is_empty() && rows.len() <= limits::LIST_ROWS,
            "1 to 10 rows in all",
        )?;
        for r in rows {
            check(
                r.title.chars().count() <= limits::ROW_TITLE,
                "row title over 24 characters",
            )?;
            check(r.id.len() <= limits::ROW_ID, "row id over 200 characters")?;
            check(
                r.description
                    .as_ref()
                    .is_none_or(|d| d.chars().count() <= limits::ROW_DESCRIPTION),
                "row description over 72 characters",
            )?;
        }
        Ok(Content::Interactive {
            interactive: Interactive::List {
                body: InteractiveText { text: body.into() },
                action: ListAction {
                    button: button.into(),
                    sections,
                },
            },
        })
    }

    pub fn document(link_or_id: DocumentSource, filename: &str, caption: Option<&str>) -> Self {
        let (id, link) = match link_or_id {
            DocumentSource::MediaId(id) => (Some(id), None),
            DocumentSource::Link(url) => (None, Some(url)),
        };
        Content::Document {
            document: Document {
                id,
                link,
                filename: Some(filename.into()),
                caption: caption.map(|c| c.chars().take(limits::CAPTION).collect()),
            },
        }
    }
}

pub enum DocumentSource {
    MediaId(String),
    Link(String),
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

/// The language code of cobro's templates as registered at Meta.
pub fn template_language(language: Language) -> &'static str {
    match language {
        Language::Es => "es",
        Language::Pt => "pt_BR",
        Language::En => "en",
    }
}

/// What Meta answers to an accepted send. Accepted, not delivered: statuses come by webhook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SendResponse {
    #[serde(default)]
    pub contacts: Vec<SendContact>,
    pub messages: Vec<SentMessage>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SendContact {
    #[serde(default)]
    pub input: String,
    #[serde(default)]
    pub wa_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SentMessage {
    pub id: String,
    /// `accepted`, or `held_for_quality_assessment` for templates under pacing.
    #[serde(default)]
    pub message_status: Option<String>,
}

/// `GET /{version}/{media-id}`: where to download a medium (the URL lasts 5 minutes).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MediaInfo {
    pub url: String,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub file_size: Option<serde_json::Value>,
    #[serde(default)]
    pub id: String,
}
