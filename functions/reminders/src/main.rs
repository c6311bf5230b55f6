//! The reminders Lambda, invoked by EventBridge Scheduler. The schedule's input is ignored:
//! every tick decides what is due at the time it runs.

use std::sync::Arc;

use cobro::collect::Decider;
use cobro::lambda;
use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro_reminders::{Reminders, TickReport};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_logging();
    let reminders = Reminders {
        store: Store::new(lambda::table().await?),
        queue: lambda::outbound_queue().await?,
        clock: Arc::new(SystemClock),
        decider: Decider::default(),
        bus: Some(lambda::bus().await?),
    };
    let reminders = &reminders;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            Ok::<TickReport, lambda_runtime::Error>(reminders.tick().await?)
        },
    ))
    .await
}
