//! DynamoDB's transaction conflicts, retried by the SDK like throttling.
//!
//! A write that meets an item inside another caller's transaction is refused with
//! `TransactionConflictException` (PutItem, UpdateItem, DeleteItem), and a transaction that
//! meets another is cancelled with the reason `TransactionConflict`. Both mean "try again
//! shortly"; neither means the write was wrong. The SDK's standard retry knows neither code, so
//! without this a CRM request or a payment racing another writer on the same account failed
//! with a 5xx (the caller's retry then succeeded) instead of being retried here, with the SDK's
//! backoff, a moment later. A cancellation for a failed condition is never retried: that is an
//! answer (`TableError::TransactionCanceled`).

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_types::retry::ErrorKind;

/// A DynamoDB client from the shared SDK configuration that retries transaction conflicts.
pub fn dynamodb_client(sdk: &aws_config::SdkConfig) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_classifier(TransactionConflicts)
        .build();
    Client::from_conf(config)
}

#[derive(Debug)]
struct TransactionConflicts;

impl ClassifyRetry for TransactionConflicts {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(error) = error.as_operation_error() else {
            return RetryAction::NoActionIndicated;
        };
        let single_item_code = error
            .downcast_ref::<PutItemError>()
            .and_then(|e| e.code())
            .or_else(|| {
                error
                    .downcast_ref::<UpdateItemError>()
                    .and_then(|e| e.code())
            })
            .or_else(|| {
                error
                    .downcast_ref::<DeleteItemError>()
                    .and_then(|e| e.code())
            });
        let conflict = match single_item_code {
            Some(code) => code == "TransactionConflictException",
            None => match error.downcast_ref::<TransactWriteItemsError>() {
                Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                    let codes: Vec<&str> = t
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None"))
                        .collect();
                    cancelled_only_by_conflicts(&codes)
                }
                _ => false,
            },
        };
        if conflict {
            RetryAction::retryable_error(ErrorKind::TransientError)
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "DynamoDB transaction conflict"
    }
}

/// A transaction cancelled because another was under way on one of its items, and for no other
/// reason: every operation's reason is `TransactionConflict` or `None` (not the one at fault).
fn cancelled_only_by_conflicts(codes: &[&str]) -> bool {
    codes.contains(&"TransactionConflict")
        && codes
            .iter()
            .all(|c| matches!(*c, "TransactionConflict" | "None"))
}

#[cfg(test)]
mod tests {
    use super::cancelled_only_by_conflicts;

    #[test]
    fn only_a_cancellation_by_conflicts_alone_is_retried() {
        assert!(cancelled_only_by_conflicts(&[
            "None",
            "TransactionConflict"
        ]));
        assert!(!cancelled_only_by_conflicts(&["None", "None"]));
        assert!(!cancelled_only_by_conflicts(&[
            "ConditionalCheckFailed",
            "TransactionConflict"
        ]));
        assert!(!cancelled_only_by_conflicts(&["ValidationError"]));
    }
}
