//! The reminders Lambda, invoked by EventBridge Scheduler. The schedule's input is ignored:
//! every tick decides what is due at the time it runs.

use std::sync::Arc;

use cobro::collect::Decider;
use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro::{lambda, logs, metrics};
use cobro_reminders::{Reminders, TickReport};
use lambda_runtime::{service_fn, LambdaEvent};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init();
    let reminders = Reminders {
        store: Store::new(lambda::table().await?),
        queue: lambda::outbound_queue().await?,
        clock: Arc::new(SystemClock),
        decider: Decider::default(),
        bus: Some(lambda::bus().await?),
    };
    let reminders = &reminders;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let span = logs::invocation("reminders", &event.context.request_id);
        async move {
            let report = reminders.tick().await;
            metrics::flush("reminders");
            // Items that failed leave the rest decided and fail the invocation (the errors
            // alarm); Lambda's two retries find them moved later and do not hammer them.
            Ok::<TickReport, lambda_runtime::Error>(report?)
        }
        .instrument(span)
    }))
    .await
}
