//! The webhook Lambda: builds the DynamoDB adapter once, then serves API Gateway requests.

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
        clock: Arc::new(SystemClock),
        verify_token: lambda::env("WHATSAPP_VERIFY_TOKEN")?,
    };
    lambda_http::run(router(Arc::new(state))).await
}
