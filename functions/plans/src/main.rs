//! The plans Lambda: `POST /v1/accounts/{id}/plans/quote`, `POST /v1/accounts/{id}/plans` and
//! `POST /v1/accounts/{id}/promises`, behind the same API keys as the CRM API. The plan
//! builder itself is the library `cobro::plans`, which the chatbot and the API call.

use std::sync::Arc;

use cobro::{lambda, logs};
use cobro_crm_api::{plans_router, CrmApi};
use lambda_http::RequestExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init();
    // Neither agents' replies nor webhook deliveries are among its routes.
    let state = CrmApi::deployed(None, None).await?;
    let app = logs::traced(
        plans_router(Arc::new(state)),
        logs::HttpSpan {
            function: |_| "plans",
            request_id: |r| r.lambda_context_ref().map(|c| c.request_id.clone()),
        },
    );
    lambda_http::run(app).await
}
