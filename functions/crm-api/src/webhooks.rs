//! The tenant's webhook: where cobro posts its events for tenants who cannot consume
//! EventBridge. Registering it shows the signing secret once; deliveries that kept failing are
//! listed and can be sent again. All of it takes the `admin` scope.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use cobro::events::webhook::{check_url, new_secret, wake_message};
use cobro::events::{is_published, published};
use cobro::http::{parse_json, Problem};
use cobro::ports::Outgoing;
use cobro::repo::{WebhookDelivery, WebhookEndpoint, ROTATION_OVERLAP};

use crate::{Caller, CrmApi, Guards};

const P: &str = "application/problem+json";

pub(crate) fn routes(r: Router<Arc<CrmApi>>, g: &Guards) -> Router<Arc<CrmApi>> {
    r.route(
        "/v1/webhook",
        get(get_webhook)
            .put(put_webhook)
            .delete(delete_webhook)
            .route_layer(g.admin()),
    )
    .route(
        "/v1/webhook/rotate-secret",
        post(rotate_secret).route_layer(g.admin()),
    )
    .route(
        "/v1/webhook/deliveries",
        get(failed_deliveries).route_layer(g.admin()),
    )
    .route(
        "/v1/webhook/deliveries/{id}",
        get(get_delivery).route_layer(g.admin()),
    )
    .route(
        "/v1/webhook/deliveries/{id}/redeliver",
        post(redeliver).route_layer(g.admin()),
    )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookInput {
    /// Where events are posted: `https://` to a public address (the local stack also takes
    /// `http://` to a loopback host). No credentials, fragment or backslash.
    #[schema(example = "https://crm.example.com/hooks/cobro")]
    url: String,
    /// The event types it takes (see docs/events.md); absent or empty: all of them.
    #[serde(default)]
    events: Vec<String>,
}

/// The webhook as the API shows it: never the secret, except once when it is made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct WebhookView {
    /// As events are posted to it: normalised (`HTTPS://CRM.example.com` is
    /// `https://crm.example.com/`).
    url: String,
    events: Vec<String>,
    /// The secret's first characters, to tell which one is in use.
    secret_hint: String,
    /// Shown only in the answer that created it (registration or rotation): keep it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// Until then, deliveries are signed with the previous secret too.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    previous_secret_until: Option<jiff::Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: jiff::Timestamp,
}

/// The tenant's webhook, or a 404 that says none is registered.
async fn registered(s: &CrmApi, caller: &Caller) -> Result<WebhookEndpoint, Problem> {
    s.store
        .webhook(&caller.tenant)
        .await?
        .ok_or_else(|| Problem::not_found("no webhook is registered"))
}

fn view(w: &WebhookEndpoint, show_secret: bool) -> WebhookView {
    WebhookView {
        url: w.url.clone(),
        events: w.events.clone(),
        secret_hint: format!("{}…", &w.secret[..w.secret.len().min(10)]),
        secret: show_secret.then(|| w.secret.clone()),
        previous_secret_until: w.previous_until.filter(|_| w.previous_secret.is_some()),
        created_at: w.created_at,
        updated_at: w.updated_at,
    }
}

#[utoipa::path(get, path = "/v1/webhook", tag = "webhook", summary = "The tenant's webhook",
    responses((status = 200, body = WebhookView), (status = 404, body = crate::openapi::ProblemDoc, content_type = P)),
    security(("api_key" = ["admin"])))]
pub(crate) async fn get_webhook(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, Problem> {
    let w = registered(&s, &caller).await?;
    Ok(Json(view(&w, false)).into_response())
}

#[utoipa::path(put, path = "/v1/webhook", tag = "webhook",
    summary = "Register the webhook, or change its URL or events (the secret stays)",
    request_body = WebhookInput,
    responses((status = 200, body = WebhookView, description = "changed"), (status = 201, body = WebhookView, description = "registered: the answer holds the secret, shown this once"),
        (status = 400, body = crate::openapi::ProblemDoc, content_type = P)),
    security(("api_key" = ["admin"])))]
pub(crate) async fn put_webhook(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: WebhookInput = parse_json(&body)?;
    // Kept as checked (normalised), which is how each send parses it again.
    let url = check_url(input.url.trim(), s.webhook_targets)
        .map_err(|e| Problem::invalid_field("url", e))?
        .to_string();
    for (i, e) in input.events.iter().enumerate() {
        if !is_published(e) {
            let known: Vec<_> = published().collect();
            return Err(Problem::invalid_field(
                format!("events[{i}]"),
                format!(
                    "`{e}` is not a published event; one of {}",
                    known.join(", ")
                ),
            ));
        }
    }
    let mut events = input.events;
    events.sort();
    events.dedup();
    let now = s.clock.now();
    let (w, created) = match s.store.webhook(&caller.tenant).await? {
        Some(w) => (
            WebhookEndpoint {
                url,
                events,
                updated_at: now,
                ..w
            },
            false,
        ),
        None => (
            WebhookEndpoint {
                tenant: caller.tenant.clone(),
                url,
                events,
                secret: new_secret(),
                previous_secret: None,
                previous_until: None,
                created_at: now,
                updated_at: now,
            },
            true,
        ),
    };
    s.store.put_webhook(&w).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&w, created))).into_response())
}

#[utoipa::path(delete, path = "/v1/webhook", tag = "webhook", summary = "Stop posting events (deliveries on their way are kept as failed)",
    responses((status = 204), (status = 404, body = crate::openapi::ProblemDoc, content_type = P)),
    security(("api_key" = ["admin"])))]
pub(crate) async fn delete_webhook(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, Problem> {
    if s.store.delete_webhook(&caller.tenant).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found("no webhook is registered"))
    }
}

#[utoipa::path(post, path = "/v1/webhook/rotate-secret", tag = "webhook",
    summary = "A new signing secret, shown once; the old one signs too for 24 hours",
    responses((status = 200, body = WebhookView), (status = 404, body = crate::openapi::ProblemDoc, content_type = P)),
    security(("api_key" = ["admin"])))]
pub(crate) async fn rotate_secret(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, Problem> {
    let w = registered(&s, &caller).await?;
    let now = s.clock.now();
    let w = WebhookEndpoint {
        previous_secret: Some(w.secret.clone()),
        previous_until: now.checked_add(ROTATION_OVERLAP).ok(),
        secret: new_secret(),
        updated_at: now,
        ..w
    };
    s.store.put_webhook(&w).await?;
    Ok(Json(view(&w, true)).into_response())
}

/// A delivery as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeliveryView {
    id: String,
    event_type: String,
    /// `pending`, `delivered` or `failed`.
    status: String,
    attempts: u32,
    last_status: Option<u16>,
    last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    last_attempt_at: Option<jiff::Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    delivered_at: Option<jiff::Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    failed_at: Option<jiff::Timestamp>,
    /// The body that is posted.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
}

fn delivery_view(d: WebhookDelivery) -> DeliveryView {
    DeliveryView {
        status: serde_json::to_value(d.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        payload: serde_json::from_str(&d.body).unwrap_or_default(),
        id: d.id,
        event_type: d.event_type,
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        last_attempt_at: d.last_attempt_at,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
        failed_at: d.failed_at,
    }
}

#[utoipa::path(get, path = "/v1/webhook/deliveries", tag = "webhook", summary = "Deliveries that failed every attempt, newest first (kept 30 days)",
    params(crate::paging::PageParams),
    responses((status = 200, body = Object, description = "`items` and `next_cursor`"), (status = 400, body = crate::openapi::ProblemDoc, content_type = P)),
    security(("api_key" = ["admin"])))]
pub(crate) async fn failed_deliveries(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    page: crate::paging::PageRequest,
) -> Result<Response, Problem> {
    let failed = s
        .store
        .failed_deliveries(&caller.tenant, page.limit, page.cursor)
        .await?;
    Ok(Json(crate::paging::Page {
        items: failed.items.into_iter().map(delivery_view).collect(),
        next_cursor: failed.next,
    })
    .into_response())
}

fn delivery_id(raw: &str) -> Result<&str, Problem> {
    let ok = raw.len() == 36
        && raw.starts_with("evt_")
        && raw[4..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(raw)
    } else {
        Err(Problem::invalid_field(
            "id",
            "is an event id: `evt_` and 32 hex digits",
        ))
    }
}

#[utoipa::path(get, path = "/v1/webhook/deliveries/{id}", tag = "webhook", summary = "One event's delivery",
    params(("id" = String, Path, description = "the event's id (the Cobro-Event-Id header)", pattern = r"^evt_[0-9a-f]{32}$")),
    responses((status = 200, body = DeliveryView), (status = 400, body = crate::openapi::ProblemDoc, content_type = P), (status = 404, body = crate::openapi::ProblemDoc, content_type = P)),
    security(("api_key" = ["admin"])))]
pub(crate) async fn get_delivery(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let id = delivery_id(&raw)?;
    let d = s
        .store
        .delivery(&caller.tenant, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no delivery `{id}`")))?;
    Ok(Json(delivery_view(d)).into_response())
}

#[utoipa::path(post, path = "/v1/webhook/deliveries/{id}/redeliver", tag = "webhook",
    summary = "Send a failed delivery again (a new round of attempts)",
    params(("id" = String, Path, description = "the event's id", pattern = r"^evt_[0-9a-f]{32}$")),
    responses((status = 202, body = DeliveryView), (status = 400, body = crate::openapi::ProblemDoc, content_type = P), (status = 404, body = crate::openapi::ProblemDoc, content_type = P), (status = 409, body = crate::openapi::ProblemDoc, content_type = P)),
    security(("api_key" = ["admin"])))]
pub(crate) async fn redeliver(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let id = delivery_id(&raw)?;
    let queue = s.events_out.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "webhook deliveries are not set up in this deployment",
        )
    })?;
    if s.store.webhook(&caller.tenant).await?.is_none() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "no webhook is registered: register one first",
        ));
    }
    let (d, restarted) = s
        .store
        .restart_delivery(&caller.tenant, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no delivery `{id}`")))?;
    if !restarted && d.status != cobro::repo::DeliveryStatus::Pending {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "only a failed delivery is sent again; this one was delivered",
        ));
    }
    // Queued on every call while it is pending, so a restart whose wake-up was lost is not
    // stuck; a duplicate wake-up finds the attempt claimed and does nothing.
    queue
        .send_batch(vec![Outgoing::new(
            "0",
            wake_message(&caller.tenant, &d.id),
        )])
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the redelivery was not queued");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the redelivery could not be queued; retry",
            )
        })?;
    Ok((StatusCode::ACCEPTED, Json(delivery_view(d))).into_response())
}
