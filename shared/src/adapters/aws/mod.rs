//! The AWS adapters: thin translations of the ports onto DynamoDB, SQS and EventBridge.

pub mod config;
mod dynamodb;
mod dynamodb_retry;
#[cfg(feature = "email")]
mod email;
mod eventbridge;
pub mod partitions;
#[cfg(feature = "s3-http")]
mod s3_http;
mod secrets_manager;
#[cfg(any(feature = "sms", feature = "email"))]
mod send_failure;
#[cfg(feature = "sms")]
mod sms;
mod sqs;

pub use dynamodb::DynamoTable;
pub use dynamodb_retry::dynamodb_client;
#[cfg(feature = "email")]
pub use email::{
    decode_tag_value, default_subject, encode_tag_value, EmailChannel, EMAIL_ATTEMPT_TIMEOUT,
    EMAIL_TAG_CORRELATION,
};
pub use eventbridge::EventBridgeBus;
#[cfg(feature = "s3-http")]
pub use s3_http::{S3Endpoint, S3Http, MIN_PART_SIZE, PART_SIZE};
pub use secrets_manager::SecretsManager;
#[cfg(feature = "sms")]
pub use sms::{SmsChannel, SMS_ATTEMPT_TIMEOUT, SMS_CONTEXT_CORRELATION};
pub use sqs::SqsQueue;

// The SDK crates re-export one `SdkError` and one `ProvideErrorMetadata` from the smithy
// runtime, so one function describes the errors of all three.
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// What AWS said, for error messages: the service's error code and message. A response without
/// a code (an emulator's or a proxy's bare 500) gives its HTTP status instead, and a request that
/// never got an answer (DNS, TLS, timeout) the SDK's whole chain of causes.
fn describe<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (e.as_service_error(), e.raw_response()) {
        (Some(s), _) if s.code().is_some() => format!(
            "{}: {}",
            s.code().unwrap_or_default(),
            s.message().unwrap_or_default()
        ),
        (_, Some(raw)) => {
            // The start of the body is what says what went wrong (an HTML error page, a stack
            // trace); the whole response would bury it.
            let body = raw.body().bytes().map(String::from_utf8_lossy);
            let body: String = body
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            format!(
                "HTTP {} without an error code: {}",
                raw.status().as_u16(),
                body.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        }
        _ => DisplayErrorContext(e).to_string(),
    }
}

/// The service's error code, if the service answered with one.
fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}
