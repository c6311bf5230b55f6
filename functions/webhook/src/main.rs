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
    // Read now to refuse to start without a verify token; requests read it again (cached).
    let whatsapp = lambda::whatsapp_secrets().await;
    if whatsapp.get().await?.verify_token.is_empty() {
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
        whatsapp,
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
