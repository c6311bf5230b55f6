//! The payment-confirmed Lambda, the target of the bus rule for `PaymentConfirmed`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro::{lambda, logs, metrics};
use cobro_payment_confirmed::PaymentHandler;
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init();
    let handler = PaymentHandler {
        store: Store::new(lambda::table().await?),
        // Every applied payment is announced on the bus; a receipt is queued only for some.
        bus: Some(lambda::bus_now().await?),
        outbound: Some(lambda::outbound_queue().await?),
        clock: Arc::new(SystemClock),
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let span = logs::invocation("payment-confirmed", &event.context.request_id);
            async move {
                let result =
                    if cobro_payment_confirmed::stripe::is_stripe_source(&event.payload.source) {
                        handler.handle_stripe(event.payload.detail).await
                    } else {
                        handler.handle(event.payload.detail).await
                    };
                metrics::flush("payment-confirmed");
                Ok::<_, lambda_runtime::Error>(format!("{:?}", result?))
            }
            .instrument(span)
        },
    ))
    .await
}
