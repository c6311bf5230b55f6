//! What the SMS and e-mail adapters share about a failed send: the failures that are not one
//! service's own error codes mean the same for both (docs/channels.md has the table).

use aws_sdk_dynamodb::error::SdkError;

use crate::ports::channel::FailureClass;

/// An error answer without a known code, by its HTTP status.
pub(super) fn by_status(status: u16) -> FailureClass {
    match status {
        429 => FailureClass::Throttled,
        500..=599 => FailureClass::Transient,
        _ => FailureClass::Rejected,
    }
}

/// A failure before or instead of a service answer. A timeout or an unreadable answer leaves
/// the message possibly sent (at most one retry); a connection that failed did not send it.
pub(super) fn transport_class<Err, R>(e: &SdkError<Err, R>) -> FailureClass {
    match e {
        SdkError::TimeoutError(_) => FailureClass::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => FailureClass::Timeout,
        SdkError::DispatchFailure(_) => FailureClass::Transient,
        SdkError::ResponseError(_) => FailureClass::Timeout,
        // The request could not be serialized: sending it again would fail the same way.
        SdkError::ConstructionFailure(_) => FailureClass::Rejected,
        _ => FailureClass::Transient,
    }
}
