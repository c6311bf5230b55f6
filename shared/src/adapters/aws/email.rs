//! `Channel` for e-mail on Amazon SES (API v2): one `SendEmail` per message, simple content
//! (subject and a plain-text body), from the tenant's verified address.
//!
//! As for SMS, the client this adapter builds never retries by itself (`SendEmail` has no
//! idempotency key): the sender decides from the `FailureClass` (docs/channels.md).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::config::timeout::TimeoutConfig;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::operation::send_email::SendEmailError as E;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageTag};
use aws_sdk_sesv2::Client;

use super::config::from_env;
use super::describe;
use super::send_failure::{by_status, transport_class};
use crate::domain::Language;
use crate::ports::channel::{Channel, ChannelError, ChannelMessage, FailureClass};

/// How long one `SendEmail` may take, connection included, before it counts as a timeout.
pub const EMAIL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The message tag that carries the correlation into SES events (`mail.tags`), encoded with
/// [`encode_tag_value`].
pub const EMAIL_TAG_CORRELATION: &str = "cobro-correlation";

#[derive(Clone, Debug)]
pub struct EmailChannel {
    client: Client,
    from: String,
    configuration_set: Option<String>,
}

impl EmailChannel {
    /// A channel on a client built from `sdk` with SDK retries off and an
    /// [`EMAIL_ATTEMPT_TIMEOUT`] per attempt, sending from `default_from` when the message's
    /// `send_as.email_from` is unset. The address (or its domain) must be a verified identity.
    pub fn new(sdk: &aws_config::SdkConfig, default_from: impl Into<String>) -> Self {
        Self::from_client(client(sdk, EMAIL_ATTEMPT_TIMEOUT), default_from)
    }

    /// A channel on a client the caller configured. It should not retry (see the module docs).
    pub fn from_client(client: Client, default_from: impl Into<String>) -> Self {
        Self {
            client,
            from: default_from.into(),
            configuration_set: None,
        }
    }

    /// From the environment: `COBRO_EMAIL_FROM` (required; `Name <address>` works too) and
    /// `COBRO_EMAIL_CONFIGURATION_SET` (optional).
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, String> {
        let channel = Self::new(sdk, from_env("COBRO_EMAIL_FROM")?);
        Ok(match from_env("COBRO_EMAIL_CONFIGURATION_SET") {
            Ok(set) => channel.configuration_set(set),
            Err(_) => channel,
        })
    }

    /// The configuration set whose event destinations receive delivery, bounce and complaint
    /// events.
    pub fn configuration_set(mut self, name: impl Into<String>) -> Self {
        self.configuration_set = Some(name.into());
        self
    }
}

fn client(sdk: &aws_config::SdkConfig, attempt_timeout: Duration) -> Client {
    let config = aws_sdk_sesv2::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// The subject of a reminder whose message has none.
pub fn default_subject(language: Language) -> &'static str {
    match language {
        Language::Es => "Recordatorio de pago",
        Language::Pt => "Lembrete de pagamento",
        Language::En => "Payment reminder",
    }
}

/// `value` in the characters SES allows in a tag value (ASCII letters, digits, `_`, `-`):
/// every other byte, and `_` itself, becomes `_` and two hex digits, so it decodes back
/// ([`decode_tag_value`]). `tenant|account` becomes `tenant_7Caccount`.
pub fn encode_tag_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

/// The value [`encode_tag_value`] encoded, or `None` if it is not such an encoding.
pub fn decode_tag_value(encoded: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'_' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// A plausible single address: one `@` with something on each side and no spaces. SES says
/// more; this only keeps an address that cannot work from being sent at all.
fn plausible_address(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !address.chars().any(|c| c.is_whitespace() || c == ',')
        }
        None => false,
    }
}

fn utf8(text: &str) -> Result<Content, ChannelError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| ChannelError::rejected(format!("e-mail content: {e}")))
}

#[async_trait]
impl Channel for EmailChannel {
    async fn send(&self, message: &ChannelMessage) -> Result<String, ChannelError> {
        let to = match message.to.email.as_deref().map(str::trim) {
            Some(to) if plausible_address(to) => to,
            Some(to) if !to.is_empty() => {
                return Err(ChannelError::new(
                    FailureClass::Unreachable,
                    None,
                    format!("`{to}` is not an e-mail address"),
                ))
            }
            _ => {
                return Err(ChannelError::new(
                    FailureClass::Unreachable,
                    None,
                    "the debtor has no e-mail address",
                ))
            }
        };
        if message.text.trim().is_empty() {
            return Err(ChannelError::rejected("an e-mail needs a text"));
        }
        let from = message.send_as.email_from.as_deref().unwrap_or(&self.from);
        let subject = message
            .subject
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(default_subject(message.language));
        let content = EmailContent::builder()
            .simple(
                Message::builder()
                    .subject(utf8(subject)?)
                    .body(Body::builder().text(utf8(&message.text)?).build())
                    .build(),
            )
            .build();
        let mut request = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(content)
            .set_configuration_set_name(self.configuration_set.clone());
        let tag = encode_tag_value(&message.correlation);
        // SES takes at most 256 characters; a longer correlation is left out, not cut.
        if !tag.is_empty() && tag.len() <= 256 {
            let tag = MessageTag::builder()
                .name(EMAIL_TAG_CORRELATION)
                .value(tag)
                .build()
                .map_err(|e| ChannelError::rejected(format!("e-mail tag: {e}")))?;
            request = request.email_tags(tag);
        }
        let out = request.send().await.map_err(|e| classify(e, from, to))?;
        out.message_id()
            .map(str::to_string)
            .ok_or_else(|| ChannelError::transient("SendEmail answered without a MessageId"))
    }
}

/// What an e-mail failure means for the sender, for a message from `from` to `to`.
fn classify(e: SdkError<E, HttpResponse>, from: &str, to: &str) -> ChannelError {
    let reason = format!("e-mail: {}", describe(&e));
    let class = match &e {
        SdkError::ServiceError(s) => match s.err() {
            E::TooManyRequestsException(_) | E::LimitExceededException(_) => {
                FailureClass::Throttled
            }
            E::AccountSuspendedException(_)
            | E::SendingPausedException(_)
            | E::MailFromDomainNotVerifiedException(_)
            | E::NotFoundException(_) => FailureClass::StopTenant,
            E::MessageRejected(m) => not_verified(m.message().unwrap_or_default(), from, to),
            E::BadRequestException(_) => FailureClass::Rejected,
            _ => by_status(s.raw().status().as_u16()),
        },
        other => transport_class(other),
    };
    ChannelError::new(class, None, reason)
}

/// `MessageRejected` for an identity that is not verified: SES names the identities that failed
/// ("Email address is not verified. The following identities failed the check …: a@x, b@y").
/// The sender's address failing stops every e-mail of the tenant; only the recipient's (an
/// account still in the SES sandbox) means this debtor cannot be reached. Anything else SES
/// rejected (content, a virus) is this message's problem.
fn not_verified(text: &str, from: &str, to: &str) -> FailureClass {
    let text = text.to_ascii_lowercase();
    if !text.contains("not verified") {
        return FailureClass::Rejected;
    }
    let named = |address: &str| {
        // `Name <a@x>` is verified as `a@x`; a domain identity is named by the domain.
        let address = address
            .rsplit_once('<')
            .map(|(_, a)| a.trim_end_matches('>'))
            .unwrap_or(address)
            .trim()
            .to_ascii_lowercase();
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        text.split(|c: char| c.is_whitespace() || c == ',')
            .map(|word| word.trim_end_matches(['.', ';']))
            .any(|word| word == address || (!domain.is_empty() && word == domain))
    };
    if named(to) && !named(from) {
        FailureClass::Unreachable
    } else {
        FailureClass::StopTenant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_round_trip_through_the_characters_ses_allows() {
        for value in [
            "tenant|account|decision",
            "a_b",
            "ñandú@x.y",
            "",
            "plain-123",
        ] {
            let encoded = encode_tag_value(value);
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{encoded}"
            );
            assert_eq!(decode_tag_value(&encoded).as_deref(), Some(value));
        }
        assert_eq!(encode_tag_value("t|a"), "t_7Ca");
        assert_eq!(decode_tag_value("bad_7"), None);
    }

    #[test]
    fn an_unverified_sender_stops_the_tenant_an_unverified_recipient_is_unreachable() {
        let from = "Acme <billing@acme.example>";
        let sandbox = "Email address is not verified. The following identities failed the check \
                       in region US-EAST-1: debtor@example.com";
        assert_eq!(
            not_verified(sandbox, from, "debtor@example.com"),
            FailureClass::Unreachable
        );
        let both = "Email address is not verified. The following identities failed the check \
                    in region US-EAST-1: billing@acme.example, debtor@example.com";
        assert_eq!(
            not_verified(both, from, "debtor@example.com"),
            FailureClass::StopTenant
        );
        // moto's wording.
        assert_eq!(
            not_verified(
                "Email address not verified billing@acme.example",
                "billing@acme.example",
                "d@example.com"
            ),
            FailureClass::StopTenant
        );
        assert_eq!(
            not_verified("Message contains a virus", from, "d@example.com"),
            FailureClass::Rejected
        );
    }

    #[test]
    fn addresses_that_cannot_work_are_caught() {
        assert!(plausible_address("debtor@example.com"));
        assert!(!plausible_address("debtor"));
        assert!(!plausible_address("a@b@c"));
        assert!(!plausible_address("a b@c"));
        assert!(!plausible_address("a@b.com, c@d.com"));
        assert!(!plausible_address("@example.com"));
    }

    #[test]
    fn every_language_has_a_subject() {
        assert_eq!(default_subject(Language::Es), "Recordatorio de pago");
        assert_eq!(default_subject(Language::Pt), "Lembrete de pagamento");
        assert_eq!(default_subject(Language::En), "Payment reminder");
    }
}
