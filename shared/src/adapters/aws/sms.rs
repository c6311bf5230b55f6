//! `Channel` for SMS on AWS End User Messaging SMS (the `pinpoint-sms-voice-v2` API): one
//! `SendTextMessage` per message, transactional, from the tenant's origination identity.
//!
//! The client this adapter builds never retries by itself: `SendTextMessage` has no idempotency
//! key, so an SDK retry after a timeout could text the debtor twice. The sender decides what to
//! retry, from the `FailureClass` each error maps onto (docs/channels.md has the table).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::config::http::HttpResponse;
use aws_sdk_pinpointsmsvoicev2::config::retry::RetryConfig;
use aws_sdk_pinpointsmsvoicev2::config::timeout::TimeoutConfig;
use aws_sdk_pinpointsmsvoicev2::error::SdkError;
use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageError as E;
use aws_sdk_pinpointsmsvoicev2::types::{
    ConflictExceptionReason as Conflict, MessageType, ServiceQuotaExceededExceptionReason as Quota,
    ValidationExceptionReason as Invalid,
};
use aws_sdk_pinpointsmsvoicev2::Client;

use super::config::from_env;
use super::describe;
use super::send_failure::{by_status, transport_class};
use crate::ports::channel::{Channel, ChannelError, ChannelMessage, FailureClass};

/// How long one `SendTextMessage` may take, connection included, before it counts as a timeout.
pub const SMS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The key of the correlation in the message's `Context`, which AWS echoes in delivery events.
pub const SMS_CONTEXT_CORRELATION: &str = "correlation";

#[derive(Clone, Debug)]
pub struct SmsChannel {
    client: Client,
    origination: Option<String>,
    configuration_set: Option<String>,
}

impl SmsChannel {
    /// A channel on a client built from `sdk` with SDK retries off and a
    /// [`SMS_ATTEMPT_TIMEOUT`] per attempt. No default origination identity and no
    /// configuration set until [`Self::default_origination`] and [`Self::configuration_set`].
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::from_client(client(sdk, SMS_ATTEMPT_TIMEOUT))
    }

    /// A channel on a client the caller configured. It should not retry (see the module docs).
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            origination: None,
            configuration_set: None,
        }
    }

    /// From the environment: `COBRO_SMS_ORIGINATION` (required: a phone number, sender ID,
    /// pool or their ARN) and `COBRO_SMS_CONFIGURATION_SET` (optional).
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, String> {
        let channel = Self::new(sdk).default_origination(from_env("COBRO_SMS_ORIGINATION")?);
        Ok(match from_env("COBRO_SMS_CONFIGURATION_SET") {
            Ok(set) => channel.configuration_set(set),
            Err(_) => channel,
        })
    }

    /// The origination identity used when the message's `send_as.sms_origination` is unset.
    /// Without either, AWS picks one of the account's identities for the destination country.
    pub fn default_origination(mut self, identity: impl Into<String>) -> Self {
        self.origination = Some(identity.into());
        self
    }

    /// The configuration set whose event destinations receive the delivery events.
    pub fn configuration_set(mut self, name: impl Into<String>) -> Self {
        self.configuration_set = Some(name.into());
        self
    }
}

/// A client on `sdk` that never retries and gives up on an attempt after `attempt_timeout`.
fn client(sdk: &aws_config::SdkConfig, attempt_timeout: Duration) -> Client {
    let config = aws_sdk_pinpointsmsvoicev2::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build();
    Client::from_conf(config)
}

#[async_trait]
impl Channel for SmsChannel {
    async fn send(&self, message: &ChannelMessage) -> Result<String, ChannelError> {
        if message.text.trim().is_empty() {
            return Err(ChannelError::rejected("an SMS needs a text"));
        }
        let origination = message
            .send_as
            .sms_origination
            .as_ref()
            .or(self.origination.as_ref());
        let mut request = self
            .client
            .send_text_message()
            .destination_phone_number(message.to.phone.as_str())
            .set_origination_identity(origination.cloned())
            .message_body(&message.text)
            .message_type(MessageType::Transactional)
            .set_configuration_set_name(self.configuration_set.clone());
        if !message.correlation.is_empty() {
            request = request.context(SMS_CONTEXT_CORRELATION, &message.correlation);
        }
        let out = request.send().await.map_err(classify)?;
        out.message_id()
            .map(str::to_string)
            .ok_or_else(|| ChannelError::transient("SendTextMessage answered without a MessageId"))
    }
}

/// What an SMS failure means for the sender.
fn classify(e: SdkError<E, HttpResponse>) -> ChannelError {
    let reason = describe(&e);
    let (class, detail) = match &e {
        SdkError::ServiceError(s) => match s.err() {
            E::ThrottlingException(_) => (FailureClass::Throttled, None),
            E::ServiceQuotaExceededException(q) => {
                let class = match q.reason() {
                    // The month's spend limit does not come back by slowing down: someone has to
                    // raise it.
                    Some(Quota::MonthlySpendLimitReachedForText) => FailureClass::StopTenant,
                    _ => FailureClass::Throttled,
                };
                (class, q.reason().map(|r| r.as_str().to_string()))
            }
            E::InternalServerException(_) => (FailureClass::Transient, None),
            E::AccessDeniedException(a) => (
                FailureClass::StopTenant,
                a.reason().map(|r| r.as_str().to_string()),
            ),
            E::ResourceNotFoundException(r) => (
                FailureClass::StopTenant,
                r.resource_type()
                    .map(|t| format!("{} {}", t.as_str(), r.resource_id().unwrap_or_default())),
            ),
            E::ConflictException(c) => {
                let class = match c.reason() {
                    Some(
                        Conflict::DestinationPhoneNumberOptedOut
                        | Conflict::DestinationPhoneNumberNotVerified
                        | Conflict::DestinationPhoneNumberBlockedByProtectNumberOverride
                        | Conflict::DestinationCountryBlockedByProtectConfiguration,
                    ) => FailureClass::Unreachable,
                    // The origination identity or configuration set cannot send at all.
                    Some(Conflict::NoOriginationIdentitiesFound | Conflict::ResourceNotActive) => {
                        FailureClass::StopTenant
                    }
                    _ => FailureClass::Rejected,
                };
                (class, c.reason().map(|r| r.as_str().to_string()))
            }
            E::ValidationException(v) => {
                let about_destination = v
                    .fields()
                    .iter()
                    .any(|f| f.name() == "DestinationPhoneNumber");
                let class = match v.reason() {
                    Some(
                        Invalid::DestinationCountryBlocked
                        | Invalid::CountryNotEnabled
                        | Invalid::CountryCodeMismatch
                        | Invalid::InternationalSendingNotSupported
                        | Invalid::InvalidIdentityForDestinationCountry
                        | Invalid::CannotAddOptedOutNumber,
                    ) => FailureClass::Unreachable,
                    _ if about_destination => FailureClass::Unreachable,
                    _ => FailureClass::Rejected,
                };
                let mut detail: Vec<String> = v
                    .reason()
                    .map(|r| r.as_str().to_string())
                    .into_iter()
                    .collect();
                detail.extend(
                    v.fields()
                        .iter()
                        .map(|f| format!("{}: {}", f.name(), f.message())),
                );
                (class, (!detail.is_empty()).then(|| detail.join("; ")))
            }
            _ => (by_status(s.raw().status().as_u16()), None),
        },
        other => (transport_class(other), None),
    };
    let reason = match detail {
        Some(d) => format!("SMS: {reason} ({d})"),
        None => format!("SMS: {reason}"),
    };
    ChannelError::new(class, None, reason)
}
