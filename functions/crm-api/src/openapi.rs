//! The OpenAPI 3.1 document, generated from the handlers' annotations and the input and output
//! types, served at `/v1/openapi.json` without a key.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// RFC 9457 problem details: every error of the API has this shape.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only; `cobro::http::Problem` is what is sent
pub struct ProblemDoc {
    /// A URI naming the kind of problem.
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// The offending field's path, when one is to blame.
    field: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cobro CRM API",
        version = "1",
        description = "Hand debtors and accounts to cobro, read them back, act on them and register payments. Authenticate with `Authorization: Bearer <API key>`; every POST honours `Idempotency-Key`; lists page by `cursor`."
    ),
    paths(
        crate::list_debtors,
        crate::get_debtor,
        crate::put_debtor,
        crate::get_conversation,
        crate::put_account,
        crate::picture::get_account,
        crate::get_decisions,
        crate::get_suspense,
        crate::post_payment,
        crate::plans::quote,
        crate::plans::accept,
        crate::plans::promise,
        crate::plans::link,
        crate::actions::pause,
        crate::actions::resume,
        crate::actions::close,
        crate::actions::write_off,
        crate::actions::lawsuit,
        crate::actions::insolvency,
        crate::actions::resolve_dispute,
        crate::actions::pause_debtor,
        crate::actions::resume_debtor,
        crate::actions::resolve_insolvency,
        crate::imports::import,
        crate::post_consent,
        crate::settings::get_settings,
        crate::settings::put_policy,
        crate::settings::put_strategies,
        crate::settings::get_templates,
        crate::exports::post_export,
        crate::exports::get_export,
        crate::chat::list_handoffs,
        crate::chat::conversation,
        crate::chat::agent_reply,
        crate::chat::release,
        crate::chat::close,
        crate::chat::put_identity,
        crate::webhooks::get_webhook,
        crate::webhooks::put_webhook,
        crate::webhooks::delete_webhook,
        crate::webhooks::rotate_secret,
        crate::webhooks::failed_deliveries,
        crate::webhooks::get_delivery,
        crate::webhooks::redeliver,
    ),
    components(schemas(ProblemDoc, crate::imports::ImportRow)),
    modifiers(&BearerKey),
    tags(
        (name = "debtors"), (name = "accounts"), (name = "payments"), (name = "plans"),
        (name = "actions", description = "Each records who and why; stops or restarts collection"),
        (name = "imports"),
        (name = "exports", description = "Finance files: payments ledger, balances, aging, plans, contact log"),
        (name = "conversations", description = "The chatbot's handoffs to people, and agents' replies"),
        (name = "settings", description = "The tenant's compliance policy and strategies"),
        (name = "webhook", description = "Where cobro posts its events (docs/events.md): signed, retried, kept when they keep failing"),
    )
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A tenant's API key; its scopes decide what it may call (403 otherwise)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as utoipa generates it from the annotations. The API serves `DOCUMENT`, the
/// same document generated ahead of time: generating it at run time put utoipa's builders for
/// every path and schema in the Lambda binary (about 1 MB) for one rarely called route.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `functions/crm-api/openapi.json`: what `document()` generates, checked in. A test in
/// `tests/` fails when they differ; `COBRO_UPDATE_OPENAPI=1 cargo test -p cobro-tests openapi`
/// rewrites the file.
pub const DOCUMENT: &str = include_str!("../openapi.json");

pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
