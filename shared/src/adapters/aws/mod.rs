//! The AWS adapters: thin translations of the ports onto DynamoDB, SQS and EventBridge.

pub mod config;
mod dynamodb;
mod eventbridge;
mod sqs;

pub use dynamodb::DynamoTable;
pub use eventbridge::EventBridgeBus;
pub use sqs::SqsQueue;

/// The service's error code and message, for errors that say what AWS said.
fn describe<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("unknown error"),
            s.message().unwrap_or_default()
        ),
        None => format!("{e:?}"),
    }
}
