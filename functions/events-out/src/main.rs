//! The events-out Lambda: an SQS consumer of the bus's published events and of its own retry
//! wake-ups. The clients are built once per execution environment.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;
use tracing::Instrument;

use cobro::events::webhook::SCHEDULE;
use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro::{lambda, logs, metrics};
use cobro_events_out::{handle_batch, EventsOut};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init();
    let out = Arc::new(EventsOut {
        store: Store::new(lambda::table().await?),
        // Only retries (wake-ups) are sent to it.
        queue: lambda::lazy_queue("COBRO_EVENTS_OUT_QUEUE_URL")?,
        clock: Arc::new(SystemClock),
        // A tenant's URL reaches public addresses only, never what this function can.
        http: cobro_events_out::HttpClient::public(),
        schedule: SCHEDULE.to_vec(),
    });
    let out = &out;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let span = logs::invocation("events-out", &event.context.request_id);
        async move {
            let records = event
                .payload
                .records
                .into_iter()
                .map(|r| (r.message_id.unwrap_or_default(), r.body.unwrap_or_default()))
                .collect();
            let mut response = SqsBatchResponse::default();
            for id in handle_batch(out, records).await {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
            metrics::flush("events-out");
            Ok::<_, lambda_runtime::Error>(response)
        }
        .instrument(span)
    }))
    .await
}
