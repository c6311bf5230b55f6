//! The CRM API Lambda: builds the DynamoDB and EventBridge adapters once, then serves requests.

use std::sync::Arc;

use cobro::collect::Decider;
use cobro::lambda;
use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro_crm_api::{router, CrmApi};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_logging();
    let state = CrmApi {
        store: Store::new(lambda::table().await?),
        bus: lambda::bus().await?,
        clock: Arc::new(SystemClock),
        decider: Decider::default(),
        stripe: cobro::lambda::stripe_links()?,
        // Agents' replies in handed-off conversations go to the sender through it.
        outbound: lambda::queue_from_env("COBRO_OUTBOUND_QUEUE_URL").await?,
    };
    lambda_http::run(router(Arc::new(state))).await
}
