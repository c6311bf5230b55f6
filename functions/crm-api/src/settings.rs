//! The tenant's own rules, read and replaced through the API: its compliance policy (which may
//! only tighten its country's preset) and its strategies (buckets, segments, steps). Replacing
//! them takes the `admin` scope; both are checked before anything is stored.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use std::sync::Arc;

use cobro::http::{parse_json, Problem};
use cobro::repo::RepoError;

use crate::{Caller, CrmApi};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Settings {
    pub country: String,
    /// The tenant's policy, composed with its country's preset (none: the preset alone).
    #[schema(value_type = Option<Object>)]
    pub policy: Option<cobro::compliance::Policy>,
    /// The tenant's strategy book (none: the built-in strategy).
    #[schema(value_type = Option<Object>)]
    pub strategies: Option<cobro::collect::StrategyBook>,
    #[schema(value_type = Object)]
    pub plan_rules: cobro::plans::PlanRules,
}

impl Settings {
    /// The settings as the API shows them: what `GET /v1/settings` reads and a replacement
    /// answers with.
    fn of(t: cobro::domain::Tenant) -> Self {
        Self {
            country: t.country,
            policy: t.policy,
            strategies: t.strategies,
            plan_rules: t.plan_rules,
        }
    }
}

const P: &str = "application/problem+json";

#[utoipa::path(get, path = "/v1/settings", tag = "settings", summary = "The tenant's policy, strategies and plan rules",
    responses((status = 200, body = Settings)),
    security(("api_key" = ["accounts:read"])))]
pub(crate) async fn get_settings(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, Problem> {
    let t = s.tenant(&caller).await?;
    Ok(Json(Settings::of(t)).into_response())
}

#[utoipa::path(put, path = "/v1/settings/policy", tag = "settings",
    summary = "Replace the tenant's compliance policy (only tighter than its country's preset)",
    request_body = Object,
    responses((status = 200, body = Settings), (status = 400, body = crate::openapi::ProblemDoc, content_type = P)),
    security(("api_key" = ["admin"])))]
pub(crate) async fn put_policy(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, Problem> {
    let policy: cobro::compliance::Policy = parse_json(&body)?;
    let mut t = s.tenant(&caller).await?;
    t.policy = Some(policy);
    store(&s, t).await
}

#[utoipa::path(put, path = "/v1/settings/strategies", tag = "settings",
    summary = "Replace the tenant's strategies, buckets and segments",
    request_body = Object,
    responses((status = 200, body = Settings), (status = 400, body = crate::openapi::ProblemDoc, content_type = P)),
    security(("api_key" = ["admin"])))]
pub(crate) async fn put_strategies(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, Problem> {
    let book: cobro::collect::StrategyBook = parse_json(&body)?;
    let named = book.named_templates();
    let mut t = s.tenant(&caller).await?;
    t.strategies = Some(book);
    let response = store(&s, t).await?;
    // A template the tenant names again may have been fixed at Meta: the sender tries it at
    // its next message rather than after the hold of a refusal (`cobro_sender`).
    s.store
        .clear_template_refusals(&caller.tenant, &named, s.clock.now())
        .await?;
    Ok(response)
}

async fn store(s: &CrmApi, t: cobro::domain::Tenant) -> Result<Response, Problem> {
    match s.store.put_tenant(&t).await {
        Ok(()) => {}
        // `put_tenant` names the field as `policy.<path>: why` or `strategies.<path>: why`.
        Err(RepoError::Invalid(msg)) => {
            let (field, why) = msg.split_once(": ").unwrap_or(("", &msg));
            return Err(if field.is_empty() {
                Problem::bad_request(msg.clone())
            } else {
                Problem::invalid_field(field, why)
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Json(Settings::of(t)).into_response())
}

/// A template as `GET /v1/templates` lists it (`cobro::collect::templates::TemplateSpec`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
pub struct TemplateDoc {
    name: String,
    /// Meta's language code: `es`, `pt_BR`, `en`.
    language: String,
    /// `UTILITY`.
    category: String,
    /// What `{{1}}`, `{{2}}` … hold, in order.
    parameters: Vec<String>,
    /// cobro's body with its placeholders; null for the tenant's own templates.
    body: Option<String>,
    /// `built-in`, or the strategy steps that name it.
    used_by: Vec<String>,
    /// The label of its one quick-reply button, the opt-out (payload `OPTOUT`); null for the
    /// receipt and for a tenant's template whose step does not declare `opt_out_button`.
    opt_out_button: Option<String>,
    /// Set while Meta's refusal of it holds it back: its messages make no call to Meta and go
    /// to the next channel until `until`. Null when it is tried as usual.
    held: Option<HeldDoc>,
}

/// Meta's refusal that holds a template back (docs/whatsapp-errors.md).
#[derive(utoipa::ToSchema, serde::Serialize)]
pub struct HeldDoc {
    /// Meta's error code (`132001`: missing in that language, `132015`: paused …).
    code: i64,
    /// Meta's words.
    reason: String,
    #[schema(value_type = String, format = DateTime)]
    refused_at: jiff::Timestamp,
    /// Tried again at the first message after this; replacing the strategies that name it
    /// clears the hold at once.
    #[schema(value_type = String, format = DateTime)]
    until: jiff::Timestamp,
}

/// A template as listed: what to register at Meta, and whether a refusal holds it back.
#[derive(serde::Serialize)]
struct TemplateView {
    #[serde(flatten)]
    spec: cobro::collect::templates::TemplateSpec,
    held: Option<HeldDoc>,
}

#[utoipa::path(get, path = "/v1/templates", tag = "settings",
    summary = "The WhatsApp templates the tenant's messages use, to register at Meta: cobro's, and those its strategies name",
    responses((status = 200, body = Vec<TemplateDoc>)),
    security(("api_key" = ["accounts:read"])))]
pub(crate) async fn get_templates(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, Problem> {
    use cobro::whatsapp::send::template_language;
    let t = s.tenant(&caller).await?;
    let refusals = s.store.held_template_refusals(&t.id, s.clock.now()).await?;
    let templates: Vec<TemplateView> =
        cobro::collect::templates::tenant_templates(t.strategies.as_ref())
            .into_iter()
            .map(|spec| {
                let held = refusals
                    .iter()
                    .find(|r| {
                        r.template == spec.name && template_language(r.language) == spec.language
                    })
                    .map(|r| HeldDoc {
                        code: r.code,
                        reason: r.reason.clone(),
                        refused_at: r.refused_at,
                        until: r.until,
                    });
                TemplateView { spec, held }
            })
            .collect();
    Ok(Json(templates).into_response())
}
