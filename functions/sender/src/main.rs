//! The sender Lambda: an SQS consumer that reports partial batch failures, so one failed
//! message is retried alone.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

use cobro::lambda;
use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro_sender::Sender;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_logging();
    let sender = Sender {
        store: Store::new(lambda::table().await?),
        channel: lambda::channel()?,
        clock: Arc::new(SystemClock),
    };
    let sender = &sender;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let mut response = SqsBatchResponse::default();
        for record in event.payload.records {
            let id = record.message_id.clone().unwrap_or_default();
            let body = record.body.as_deref().unwrap_or_default();
            match sender.handle(body).await {
                Ok(outcome) => tracing::info!(?outcome, "handled"),
                Err(e) => {
                    tracing::warn!(error = %e, "will be retried");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
            }
        }
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
