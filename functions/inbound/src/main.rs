//! The inbound Lambda: an SQS consumer (WhatsApp deliveries the webhook kept, inbound SMS from
//! SNS) that reports partial batch failures.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

use cobro::ports::{MediaSource, SystemClock};
use cobro::repo::Store;
use cobro::whatsapp::client::{GraphClient, GraphConfig};
use cobro::{lambda, logs, metrics};
use cobro_inbound::{Inbound, InboundError};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init();
    let token = Some(lambda::whatsapp_secrets().await?.access_token).filter(|t| !t.is_empty());
    let media: Option<Arc<dyn MediaSource>> = match token {
        Some(token) => Some(Arc::new(GraphClient::built_on_first_use(
            GraphConfig::from_env(token)?,
        ))),
        None => None,
    };
    let inbound = Inbound {
        store: Store::new(lambda::table().await?),
        blobs: lambda::blobs().await?,
        bus: lambda::bus().await?,
        clock: Arc::new(SystemClock),
        media,
        outbound: Some(lambda::outbound_queue().await?),
        links: lambda::stripe_links()?,
    };
    let inbound = &inbound;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let invocation = logs::invocation("inbound", &event.context.request_id);
        let mut response = SqsBatchResponse::default();
        for record in event.payload.records {
            let body = record.body.as_deref().unwrap_or_default();
            let id = record.message_id.as_deref().unwrap_or_default();
            let span = invocation.in_scope(|| logs::message(id));
            match inbound.handle(body).instrument(span.clone()).await {
                Ok(report) => tracing::info!(?report, "applied"),
                Err(e) => {
                    // An unreadable message fails every time: the redrive keeps it in the DLQ.
                    if matches!(e, InboundError::Malformed(_)) {
                        tracing::error!(error = %cobro::logs::scrub(&e.to_string()), "unreadable; it will end in the dead-letter queue");
                    } else {
                        tracing::warn!(error = %cobro::logs::scrub(&e.to_string()), "will be received again");
                    }
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = record.message_id.unwrap_or_default();
                    response.batch_item_failures.push(failure);
                }
            }
        }
        invocation.in_scope(|| metrics::flush("inbound"));
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
