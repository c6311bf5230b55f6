//! The CRM API Lambda: builds the DynamoDB and EventBridge adapters once, then serves requests.

use std::sync::Arc;

use cobro::{lambda, logs};
use cobro_crm_api::{router, CrmApi};
use lambda_http::RequestExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init();
    let state = CrmApi::deployed(
        // Agents' replies in handed-off conversations go to the sender through it.
        lambda::queue_from_env("COBRO_OUTBOUND_QUEUE_URL").await?,
        // Failed webhook deliveries sent again are woken up on the events-out queue.
        lambda::queue_from_env("COBRO_EVENTS_OUT_QUEUE_URL").await?,
    )
    .await?;
    let app = logs::traced(
        router(Arc::new(state)),
        logs::HttpSpan {
            function: |_| "crm-api",
            request_id: |r| r.lambda_context_ref().map(|c| c.request_id.clone()),
        },
    );
    lambda_http::run(app).await
}
