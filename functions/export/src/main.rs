//! The export Lambda: an SQS consumer of export jobs (one message per job, from the CRM API's
//! `ExportRequested` events and from the daily schedule). Jobs run one at a time: each streams
//! a whole file, and a failed one is reported alone so only it is retried.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro::{lambda, logs};
use cobro_export::Exporter;
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init();
    let exporter = Arc::new(Exporter {
        store: Store::new(lambda::table().await?),
        files: lambda::export_files().await?,
        // Only the daily schedule's message queues jobs.
        jobs: lambda::lazy_queue("COBRO_EXPORT_QUEUE_URL")?,
        clock: Arc::new(SystemClock),
        tempdir: std::env::temp_dir(),
    });
    let exporter = &exporter;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let invocation = logs::invocation("export", &event.context.request_id);
        let mut response = SqsBatchResponse::default();
        for record in event.payload.records {
            let body = record.body.unwrap_or_default();
            let span = invocation
                .in_scope(|| logs::message(record.message_id.as_deref().unwrap_or_default()));
            if let Err(e) = exporter.handle(&body).instrument(span).await {
                let error = logs::scrub(&e.to_string());
                invocation.in_scope(|| tracing::warn!(%error, "export will be retried"));
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
