//! The CRM API: what a lender's CRM calls to hand debtors and accounts to cobro, read them
//! back, and register payments. Authenticated per tenant with API keys.

mod actions;
mod auth;
mod chat;
pub mod exports;
pub mod idempotency;
mod imports;
mod inputs;
pub mod openapi;
mod paging;
mod picture;
mod plans;
mod settings;
mod webhooks;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde_json::json;
use std::sync::Arc;

use cobro::collect::Decider;
use cobro::domain::{AccountId, DebtorId};
use cobro::http::{parse_json, Problem};
use cobro::ports::{Bus, Clock, Event};
use cobro::repo::Store;
use paging::{Page, PageRequest};

pub use auth::{Caller, Guard, Guards};
pub use cobro::repo::Scope;
pub use inputs::{AccountInput, DebtorInput, PaymentInput};

/// The `PaymentConfirmed` event's detail type on the bus.
pub const PAYMENT_CONFIRMED: &str = "PaymentConfirmed";

pub struct CrmApi {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub clock: Arc<dyn Clock>,
    pub decider: Decider,
    /// The deployment's Stripe Checkout, for tenants without their own pay page.
    pub stripe: Option<Arc<dyn cobro::ports::PaymentLinks>>,
    /// The outbound queue: agents' replies go through the sender like the bot's.
    pub outbound: Option<Arc<dyn cobro::ports::Queue>>,
    /// The events-out queue: a failed webhook delivery sent again is woken up on it.
    pub events_out: Option<Arc<dyn cobro::ports::Queue>>,
    /// What a tenant's webhook URL may point at: public addresses in a deployment.
    pub webhook_targets: cobro::events::webhook::Targets,
}

#[cfg(feature = "lambda")]
impl CrmApi {
    /// What a deployed Lambda serves the API on, from its environment: the deployment's table,
    /// bus and Stripe Checkout, and a tenant's webhook reaching public addresses only, never
    /// what the functions can. `outbound` and `events_out` are for the routes that use them
    /// (agents' replies, failed webhook deliveries sent again); `None` where they are not served.
    pub async fn deployed(
        outbound: Option<Arc<dyn cobro::ports::Queue>>,
        events_out: Option<Arc<dyn cobro::ports::Queue>>,
    ) -> Result<Self, cobro::lambda::Error> {
        use cobro::lambda;
        Ok(Self {
            store: Store::new(lambda::table().await?),
            bus: lambda::bus().await?,
            clock: Arc::new(cobro::ports::SystemClock),
            decider: Decider::default(),
            stripe: lambda::stripe_links()?,
            outbound,
            events_out,
            webhook_targets: cobro::events::webhook::Targets::Public,
        })
    }
}

impl CrmApi {
    async fn tenant(&self, caller: &Caller) -> Result<cobro::domain::Tenant, Problem> {
        self.store.tenant(&caller.tenant).await?.ok_or_else(|| {
            tracing::error!(tenant = %caller.tenant, "an API key of a tenant that does not exist");
            Problem::internal()
        })
    }
}

/// Every route of the CRM API (the local stack serves them all in one process).
pub fn router(state: Arc<CrmApi>) -> Router {
    let g = Guards::new(&state);
    let api = core_routes(Router::new(), &g);
    webhooks::routes(chat::routes(plan_routes(api, &g), &g), &g)
        // Without a guard: it needs no key.
        .route("/v1/openapi.json", get(openapi::serve))
        .fallback(|| async { Problem::not_found("no such route") })
        .with_state(state)
}

/// Only the plan and promise routes: what the `plans` Lambda serves on AWS.
pub fn plans_router(state: Arc<CrmApi>) -> Router {
    plan_routes(Router::new(), &Guards::new(&state))
        .fallback(|| async { Problem::not_found("no such route") })
        .with_state(state)
}

fn plan_routes(r: Router<Arc<CrmApi>>, g: &Guards) -> Router<Arc<CrmApi>> {
    // A quote changes nothing: reading is enough.
    r.route(
        "/v1/accounts/{id}/plans/quote",
        post(plans::quote).route_layer(g.read()),
    )
    .route(
        "/v1/accounts/{id}/plans",
        post(plans::accept).route_layer(g.write()),
    )
    .route(
        "/v1/accounts/{id}/promises",
        post(plans::promise).route_layer(g.write()),
    )
    .route(
        "/v1/accounts/{id}/links",
        post(plans::link).route_layer(g.write()),
    )
}

fn core_routes(r: Router<Arc<CrmApi>>, g: &Guards) -> Router<Arc<CrmApi>> {
    r.route("/v1/debtors", get(list_debtors).route_layer(g.read()))
        .route(
            "/v1/debtors/{id}/conversation",
            get(get_conversation).route_layer(g.read()),
        )
        .route(
            "/v1/debtors/{id}",
            get(get_debtor)
                .route_layer(g.read())
                .merge(put(put_debtor).route_layer(g.write())),
        )
        .route(
            "/v1/accounts/{id}",
            get(picture::get_account)
                .route_layer(g.read())
                .merge(put(put_account).route_layer(g.write())),
        )
        .route(
            "/v1/accounts/{id}/decisions",
            get(get_decisions).route_layer(g.read()),
        )
        .route(
            "/v1/payments/suspense",
            get(get_suspense).route_layer(g.read()),
        )
        .route("/v1/payments", post(post_payment).route_layer(g.payments()))
        .route(
            "/v1/accounts/{id}/pause",
            post(actions::pause).route_layer(g.write()),
        )
        .route(
            "/v1/accounts/{id}/resume",
            post(actions::resume).route_layer(g.write()),
        )
        .route(
            "/v1/accounts/{id}/close",
            post(actions::close).route_layer(g.write()),
        )
        .route(
            "/v1/accounts/{id}/write-off",
            post(actions::write_off).route_layer(g.write()),
        )
        .route(
            "/v1/accounts/{id}/lawsuit",
            post(actions::lawsuit).route_layer(g.write()),
        )
        .route(
            "/v1/accounts/{id}/insolvency",
            post(actions::insolvency).route_layer(g.write()),
        )
        .route(
            "/v1/accounts/{id}/resolve-dispute",
            post(actions::resolve_dispute).route_layer(g.write()),
        )
        .route(
            "/v1/debtors/{id}/pause",
            post(actions::pause_debtor).route_layer(g.write()),
        )
        .route(
            "/v1/debtors/{id}/resume",
            post(actions::resume_debtor).route_layer(g.write()),
        )
        .route(
            "/v1/debtors/{id}/resolve-insolvency",
            post(actions::resolve_insolvency).route_layer(g.write()),
        )
        .route("/v1/imports", post(imports::import).route_layer(g.write()))
        .route(
            "/v1/debtors/{id}/consents",
            post(post_consent).route_layer(g.write()),
        )
        .route(
            "/v1/settings",
            get(settings::get_settings).route_layer(g.read()),
        )
        .route(
            "/v1/templates",
            get(settings::get_templates).route_layer(g.read()),
        )
        .route(
            "/v1/settings/policy",
            put(settings::put_policy).route_layer(g.admin()),
        )
        .route(
            "/v1/settings/strategies",
            put(settings::put_strategies).route_layer(g.admin()),
        )
        .route(
            "/v1/exports",
            post(exports::post_export).route_layer(g.exports()),
        )
        .route(
            "/v1/exports/{id}",
            get(exports::get_export).route_layer(g.exports()),
        )
}

/// A debtor with their accounts and latest messages.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DebtorPicture {
    #[schema(value_type = Object)]
    pub debtor: cobro::domain::Debtor,
    #[schema(value_type = Vec<Object>)]
    pub accounts: Vec<cobro::domain::Account>,
    #[schema(value_type = Vec<Object>)]
    pub conversation: Vec<cobro::domain::ConversationMessage>,
}

pub(crate) fn id<T>(
    parse: impl Fn(String) -> Result<T, cobro::domain::DomainError>,
    raw: String,
    field: &str,
) -> Result<T, Problem> {
    parse(raw).map_err(|e| Problem::invalid_field(field, e.to_string()))
}

fn created_or_ok(created: bool, body: serde_json::Value) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

#[utoipa::path(put, path = "/v1/debtors/{id}", tag = "debtors", summary = "Create or replace a debtor",
    params(("id" = String, Path, description = "the id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")), request_body = DebtorInput,
    responses((status = 200, body = Object, description = "replaced"), (status = 201, body = Object, description = "created"),
        (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:write"])))]
async fn put_debtor(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let id = id(DebtorId::parse, raw, "id")?;
    let input: DebtorInput = parse_json(&body)?;
    let debtor = input.into_debtor(caller.tenant.clone(), id, s.clock.now());
    let created = s.store.upsert_debtor(&debtor).await?;
    reschedule_debtor(&s, &caller, &debtor).await?;
    Ok(created_or_ok(created, json!(debtor)))
}

/// Puts the debtor's accounts where the schedule should next look at them: a new time zone or
/// a consent given again can move that.
async fn reschedule_debtor(
    s: &CrmApi,
    caller: &Caller,
    debtor: &cobro::domain::Debtor,
) -> Result<(), Problem> {
    let tenant = s.tenant(caller).await?;
    for account in s
        .store
        .accounts_of_debtor(&caller.tenant, &debtor.id)
        .await?
    {
        let next = s
            .decider
            .first_action(&tenant, &account, debtor, s.clock.now());
        if let Err(e) = s.store.reschedule_account(&account, next).await {
            tracing::warn!(account = %account.id, error = %e, "could not reschedule after a debtor change");
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/debtors/{id}/consents", tag = "debtors",
    summary = "Record a consent or an opt-out (kept as history; the latest per channel decides)",
    params(("id" = String, Path, description = "the id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")), request_body = inputs::ConsentInput,
    responses((status = 200, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:write"])))]
async fn post_consent(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    first: Option<Extension<idempotency::FirstAttempt>>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let id = id(DebtorId::parse, raw, "id")?;
    let input: inputs::ConsentInput = parse_json(&body)?;
    // Without `at`, the consent is as of the request; a retry under the same key is the same
    // request, so it records the same consent (kept once) rather than a second one.
    let now = first.map_or_else(|| s.clock.now(), |Extension(f)| f.at);
    let consent = input.into_consent(now);
    let event = cobro::events::consent_changed(&caller.tenant, &id, &consent, None);
    let debtor = s
        .store
        .record_consent(&caller.tenant, &id, consent)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no debtor `{id}`")))?;
    reschedule_debtor(&s, &caller, &debtor).await?;
    s.bus.publish(vec![event]).await.map_err(|e| {
        tracing::error!(error = %e, "the consent event was not published");
        Problem::internal()
    })?;
    Ok(Json(json!(debtor)).into_response())
}

#[utoipa::path(get, path = "/v1/debtors/{id}", tag = "debtors", summary = "A debtor with their accounts and latest messages",
    params(("id" = String, Path, description = "the id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    responses((status = 200, body = DebtorPicture), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:read"])))]
async fn get_debtor(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let id = id(DebtorId::parse, raw, "id")?;
    let debtor = s
        .store
        .debtor(&caller.tenant, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no debtor `{id}`")))?;
    let accounts = s.store.accounts_of_debtor(&caller.tenant, &id).await?;
    let conversation = s.store.conversation(&caller.tenant, &id, 50).await?;
    Ok(Json(DebtorPicture {
        debtor,
        accounts,
        conversation,
    })
    .into_response())
}

#[utoipa::path(put, path = "/v1/accounts/{id}", tag = "accounts", summary = "Create or replace an account",
    params(("id" = String, Path, description = "the id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")), request_body = AccountInput,
    responses((status = 200, body = Object, description = "replaced"), (status = 201, body = Object, description = "created"),
        (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:write"])))]
async fn put_account(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let id = id(AccountId::parse, raw, "id")?;
    let input: AccountInput = parse_json(&body)?;
    let current = s.store.account(&caller.tenant, &id).await?;
    let tenant = s.tenant(&caller).await?;
    let account = input.into_account(&tenant, id, current.as_ref())?;
    let debtor = s
        .store
        .debtor(&caller.tenant, &account.debtor)
        .await?
        .ok_or_else(|| {
            Problem::invalid_field(
                "debtor_id",
                format!(
                    "no debtor `{}`; create it first with PUT /v1/debtors/{{id}}",
                    account.debtor
                ),
            )
        })?;
    let now = s.clock.now();
    // Scheduled as written: the debtor's credit may have paid what the CRM raised.
    let next =
        |written: &cobro::domain::Account| s.decider.first_action(&tenant, written, &debtor, now);
    let (account, created) = s.store.upsert_account_at(&account, now, next).await?;
    Ok(created_or_ok(
        created,
        json!({ "account": account, "next_action_at": next(&account) }),
    ))
}

#[utoipa::path(get, path = "/v1/accounts/{id}/decisions", tag = "accounts", summary = "Why the debtor was or was not contacted",
    params(("id" = String, Path, description = "the id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    responses((status = 200, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:read"])))]
/// "Why did or didn't this person get a message?": every decision on the account, newest
/// first, each with the rule that decided it (`window`, `holiday`, `cap:…`, `gap`, `consent`,
/// `opt_out`, `stop:…`, `pause` …) and when it will be looked at again.
async fn get_decisions(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let id = id(AccountId::parse, raw, "id")?;
    let why = cobro::explain::why(&s.store, &caller.tenant, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no account `{id}`")))?;
    Ok(Json(why).into_response())
}

#[utoipa::path(get, path = "/v1/payments/suspense", tag = "payments", summary = "Payments that could not be applied",
    params(paging::PageParams),
    responses((status = 200, body = Page<Object>), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:read"])))]
/// Payments that could not be applied (unknown account, another currency, `paid_at` in the
/// future, a payment id applied to another account already: `applied_to` names it), with why,
/// oldest first; one applied after all (delivered again) carries `resolved` (`account`, `at`).
async fn get_suspense(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    page: PageRequest,
) -> Result<Response, Problem> {
    let items = s
        .store
        .suspense_page(&caller.tenant, page.limit, page.cursor)
        .await?;
    Ok(Json(Page::from(items)).into_response())
}

#[utoipa::path(get, path = "/v1/debtors", tag = "debtors", summary = "The tenant's debtors, by id",
    params(paging::PageParams),
    responses((status = 200, body = Page<Object>), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:read"])))]
/// The tenant's debtors, by id.
async fn list_debtors(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    page: PageRequest,
) -> Result<Response, Problem> {
    let items = s
        .store
        .debtors_page(&caller.tenant, page.limit, page.cursor)
        .await?;
    Ok(Json(Page::from(items)).into_response())
}

#[utoipa::path(get, path = "/v1/debtors/{id}/conversation", tag = "debtors", summary = "A debtor's messages, newest first",
    params(("id" = String, Path, description = "the id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$"), paging::PageParams),
    responses((status = 200, body = Page<Object>), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:read"])))]
/// A debtor's conversation on every channel, newest first.
async fn get_conversation(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    page: PageRequest,
) -> Result<Response, Problem> {
    let id = id(DebtorId::parse, raw, "id")?;
    if s.store.debtor(&caller.tenant, &id).await?.is_none() {
        return Err(Problem::not_found(format!("no debtor `{id}`")));
    }
    let items = s
        .store
        .conversation_page(&caller.tenant, &id, page.limit, page.cursor)
        .await?;
    Ok(Json(Page::from(items)).into_response())
}

#[utoipa::path(post, path = "/v1/payments", tag = "payments", summary = "Register a payment (applied once per payment id)",
    request_body = PaymentInput,
    responses((status = 202, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, body = crate::openapi::ProblemDoc, content_type = "application/problem+json", description = "the payment id was applied to another account already (`field`: `payment_id`; the detail names that account); nothing is queued"),
        (status = 503, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["payments:write"])))]
/// Registers a payment the CRM learned of. It goes on the bus as `PaymentConfirmed`, the same
/// event a payment provider produces, and is applied once by the payment-confirmed function.
/// A payment id applied to another account already is refused with a 409 naming it; sent
/// again for the account it was applied to, it is accepted (and changes nothing).
async fn post_payment(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: PaymentInput = parse_json(&body)?;
    let detail = input.into_event(caller.tenant.clone(), s.clock.now())?;
    // Checked before it is queued, so the CRM learns of it now: queued, it would only reach the
    // suspense list. Two requests racing for two accounts still apply it once (the ledger's
    // transaction), the other one listed in suspense.
    if let Some(applied_to) = s
        .store
        .payment_applied_to(&caller.tenant, &detail.payment_id)
        .await?
        .filter(|a| *a != detail.account)
    {
        return Err(Problem::conflicting_field(
            "payment_id",
            format!(
                "`{}` was applied to account `{applied_to}` already; it is not applied to `{}` (a payment is applied once)",
                detail.payment_id, detail.account
            ),
        ));
    }
    let account = s.store.account(&caller.tenant, &detail.account).await?;
    match account {
        None => {
            return Err(Problem::invalid_field(
                "account_id",
                format!("no account `{}`", detail.account),
            ))
        }
        Some(a) if a.currency != detail.currency => {
            return Err(Problem::invalid_field(
                "currency",
                format!("the account is in {}, not {}", a.currency, detail.currency),
            ))
        }
        Some(_) => {}
    }
    let event = Event::new(PAYMENT_CONFIRMED, json!(detail));
    s.bus.publish(vec![event]).await.map_err(|e| {
        tracing::error!(error = %e, "publishing a payment failed");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the payment could not be queued; retry",
        )
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": detail })).into_response(),
    )
        .into_response())
}
