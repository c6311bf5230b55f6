//! The webhook Lambda: builds its adapters once, then serves API Gateway requests.

use std::sync::Arc;

use cobro::lambda;
use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro_webhook::{router, Webhook};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_logging();
    let state = Webhook {
        store: Store::new(lambda::table().await?),
        blobs: lambda::blobs().await?,
        inbound: lambda::queue("COBRO_INBOUND_QUEUE_URL").await?,
        clock: Arc::new(SystemClock),
        verify_token: lambda::env("WHATSAPP_VERIFY_TOKEN")?,
        default_app_secret: lambda::set("WHATSAPP_APP_SECRET"),
    };
    lambda_http::run(router(Arc::new(state))).await
}
