//! The inbound Lambda: an SQS consumer (WhatsApp deliveries the webhook kept, inbound SMS from
//! SNS) that reports partial batch failures.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

use cobro::ports::{MediaSource, SystemClock};
use cobro::repo::Store;
use cobro::whatsapp::client::{GraphClient, GraphConfig};
use cobro::{lambda, logs, metrics};
use cobro_inbound::{Inbound, QueueRecord};
use jiff::Timestamp;
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init();
    let media: Option<Arc<dyn MediaSource>> = match lambda::whatsapp_tokens().await? {
        Some(tokens) => Some(Arc::new(GraphClient::built_on_first_use(
            GraphConfig::from_env(tokens)?,
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
        let records: Vec<QueueRecord> = event
            .payload
            .records
            .iter()
            .map(|r| QueueRecord {
                message_id: r.message_id.as_deref().unwrap_or_default(),
                body: r.body.as_deref().unwrap_or_default(),
                sent_at: r
                    .attributes
                    .get("SentTimestamp")
                    .and_then(|ms| ms.parse().ok())
                    .and_then(|ms| Timestamp::from_millisecond(ms).ok()),
            })
            .collect();
        let deadline = i64::try_from(event.context.deadline)
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok());
        let failed = inbound
            .handle_batch(&records, deadline)
            .instrument(invocation.clone())
            .await;
        let mut response = SqsBatchResponse::default();
        for id in failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        invocation.in_scope(|| metrics::flush("inbound"));
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
