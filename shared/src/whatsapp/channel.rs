//! WhatsApp as a `Channel`: the Graph API client behind the port. Free-form text inside the
//! customer-service window, the approved template outside it (the sender decides which).

use async_trait::async_trait;

use super::client::GraphClient;
use super::send::{template_language, Content, SendRequest};
use crate::ports::{Channel, ChannelError, ChannelMessage, Form};

pub struct WhatsAppChannel {
    client: GraphClient,
}

impl WhatsAppChannel {
    pub fn new(client: GraphClient) -> Self {
        Self { client }
    }

    /// The request for a message: what goes over the wire.
    pub fn request(message: &ChannelMessage) -> SendRequest {
        let content = match message.form {
            Form::FreeForm => match &message.choices {
                Some(set) => Self::interactive(&message.text, set),
                None => Content::text(message.text.clone()),
            },
            Form::Template => {
                let opt_out = [crate::compliance::keywords::OPT_OUT_PAYLOAD.to_string()];
                let buttons: &[String] = if message.template.opt_out_button {
                    &opt_out
                } else {
                    &[]
                };
                Content::template(
                    message.template.name.clone(),
                    template_language(message.language),
                    &message.template.params,
                    buttons,
                )
            }
        };
        SendRequest::to(message.to.phone.as_str(), content).correlated(message.correlation.clone())
    }

    /// Up to three short choices as reply buttons, more (or any with a description) as a
    /// list; past Meta's limits, the numbered text, which always goes through.
    fn interactive(body: &str, set: &crate::ports::ChoiceSet) -> Content {
        let buttons = set.options.len() <= 3 && set.options.iter().all(|o| o.description.is_none());
        let built = if buttons {
            let pairs: Vec<(String, String)> = set
                .options
                .iter()
                .map(|o| (o.id.clone(), o.title.clone()))
                .collect();
            Content::buttons(body, &pairs)
        } else {
            let rows = set
                .options
                .iter()
                .map(|o| super::send::ListRow {
                    id: o.id.clone(),
                    title: o.title.clone(),
                    description: o.description.clone(),
                })
                .collect();
            let section = super::send::ListSection {
                title: set.button.chars().take(24).collect(),
                rows,
            };
            Content::list(body, &set.button, vec![section])
        };
        built.unwrap_or_else(|why| {
            tracing::warn!(%why, "choices beyond WhatsApp's limits; sent as numbered text");
            let mut text = body.to_string();
            for (i, o) in set.options.iter().enumerate() {
                text.push_str(&format!("\n{}. {}", i + 1, o.title));
            }
            Content::text(text)
        })
    }
}

#[async_trait]
impl Channel for WhatsAppChannel {
    async fn send(&self, message: &ChannelMessage) -> Result<String, ChannelError> {
        let from = message
            .send_as
            .whatsapp_phone_number_id
            .as_deref()
            .or(self.client.config().default_phone_number_id.as_deref())
            .ok_or_else(|| {
                ChannelError::new(
                    crate::ports::FailureClass::StopTenant,
                    None,
                    "no WhatsApp phone number id is configured for the tenant",
                )
            })?;
        let response = self.client.send(from, &Self::request(message)).await?;
        response
            .messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| {
                ChannelError::new(
                    crate::ports::FailureClass::Timeout,
                    None,
                    "the Graph API accepted the message but returned no message id",
                )
            })
    }
}

/// Media through the Graph API: the id gives a short-lived URL, the URL gives the bytes, both
/// with the receiving number's token.
#[async_trait]
impl crate::ports::MediaSource for GraphClient {
    async fn fetch(
        &self,
        media_id: &str,
        number: &str,
    ) -> Result<crate::ports::Medium, ChannelError> {
        let info = self.media(media_id, number).await?;
        let bytes = self
            .download(&info.url, number, crate::ports::media::MAX_MEDIUM_BYTES)
            .await?;
        Ok(crate::ports::Medium {
            bytes,
            mime_type: info.mime_type,
        })
    }
}
