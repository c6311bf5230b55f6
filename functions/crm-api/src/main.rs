//! The CRM API Lambda: builds the DynamoDB and EventBridge adapters once, then serves requests.

use std::sync::Arc;

use cobro::collect::Decider;
use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro::{lambda, logs};
use cobro_crm_api::{router, CrmApi};
use lambda_http::RequestExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init();
    let state = CrmApi {
        store: Store::new(lambda::table().await?),
        bus: lambda::bus().await?,
        clock: Arc::new(SystemClock),
        decider: Decider::default(),
        stripe: cobro::lambda::stripe_links()?,
        // Agents' replies in handed-off conversations go to the sender through it.
        outbound: lambda::queue_from_env("COBRO_OUTBOUND_QUEUE_URL").await?,
        // Failed webhook deliveries sent again are woken up on the events-out queue.
        events_out: lambda::queue_from_env("COBRO_EVENTS_OUT_QUEUE_URL").await?,
        // A tenant's webhook reaches public addresses only, never what the functions can.
        webhook_targets: cobro::events::webhook::Targets::Public,
    };
    let app = logs::traced(
        router(Arc::new(state)),
        logs::HttpSpan {
            function: |_| "crm-api",
            request_id: |r| r.lambda_context_ref().map(|c| c.request_id.clone()),
        },
    );
    lambda_http::run(app).await
}
