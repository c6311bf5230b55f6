//! The webhook Lambda: builds its adapters once, then serves API Gateway requests.

use std::sync::Arc;

use cobro::ports::SystemClock;
use cobro::repo::Store;
use cobro::{lambda, logs};
use cobro_webhook::{router, Webhook};
use lambda_http::RequestExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init();
    let whatsapp = lambda::whatsapp_secrets().await?;
    if whatsapp.verify_token.is_empty() {
        return Err(
            "WHATSAPP_VERIFY_TOKEN (or verify_token in COBRO_WHATSAPP_SECRET_ARN) must be set"
                .into(),
        );
    }
    let state = Webhook {
        store: Store::new(lambda::table().await?),
        blobs: lambda::blobs().await?,
        inbound: lambda::queue("COBRO_INBOUND_QUEUE_URL").await?,
        clock: Arc::new(SystemClock),
        verify_token: whatsapp.verify_token,
        default_app_secret: Some(whatsapp.app_secret).filter(|s| !s.is_empty()),
        secrets: lambda::secrets().await,
        secrets_prefix: lambda::secrets_prefix(),
    };
    let app = logs::traced(
        router(Arc::new(state)),
        logs::HttpSpan {
            function: |_| "webhook",
            request_id: |r| r.lambda_context_ref().map(|c| c.request_id.clone()),
        },
    );
    lambda_http::run(app).await
}
