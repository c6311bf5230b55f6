//! The sender Lambda: an SQS consumer that handles a batch concurrently and reports partial
//! batch failures, so one failed message is retried alone.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro::{lambda, logs, metrics};
use cobro_sender::{handle_batch, Pacer, Sender};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init();
    let rate = match std::env::var("COBRO_SEND_RATE_PER_SECOND") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("COBRO_SEND_RATE_PER_SECOND={v} is not a whole number"))?,
        Err(_) => 80,
    };
    let sender = Arc::new(Sender {
        store: Store::new(lambda::table().await?),
        channels: lambda::channels().await?,
        clock: Arc::new(SystemClock),
        queue: lambda::outbound_queue().await?,
        dead_letters: lambda::queue_from_env("COBRO_OUTBOUND_DLQ_URL").await?,
        bus: lambda::bus().await?,
        pacer: Pacer::new(rate),
    });
    let sender = &sender;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let span = logs::invocation("sender", &event.context.request_id);
        handle(sender, event).instrument(span)
    }))
    .await
}

async fn handle(
    sender: &Arc<Sender>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let records = event
        .payload
        .records
        .into_iter()
        .map(|r| (r.message_id.unwrap_or_default(), r.body.unwrap_or_default()))
        .collect();
    // The invocation's deadline (ms since the epoch) as an instant of this process's clock.
    let left = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|now| std::time::Duration::from_millis(event.context.deadline).checked_sub(now))
        .unwrap_or_default();
    let deadline = (event.context.deadline > 0).then(|| std::time::Instant::now() + left);
    let mut response = SqsBatchResponse::default();
    for id in handle_batch(sender, records, deadline).await {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    metrics::flush("sender");
    Ok(response)
}
