//! Payment plans for CRMs: quote (what plans the tenant's rules allow for this account, or
//! what the debtor can afford) and accept one. Accepting moves the account's reminders to the
//! plan's instalments.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use cobro::domain::{Account, AccountId, Money};
use cobro::events::{DomainEvent, PlanAccepted, PromiseMade};
use cobro::http::{parse_json, Problem};
use cobro::plans::{affordable, build, Frequency, Plan, PlanRequest};
use cobro::repo::Accepted;

use crate::{id, Caller, CrmApi};

enum QuoteInput {
    Afford(AffordInput),
    Plan(PlanRequest),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AffordInput {
    per_period_minor: i64,
    frequency: Frequency,
}

fn problem(e: cobro::compliance::PolicyError) -> Problem {
    Problem::invalid_field(e.field, e.message)
}

async fn open_account(s: &CrmApi, caller: &Caller, raw: String) -> Result<Account, Problem> {
    let id = id(AccountId::parse, raw, "id")?;
    let account = s
        .store
        .account(&caller.tenant, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no account `{id}`")))?;
    if !account.status.is_collectable() || account.balance_minor == 0 {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("account `{id}` is not open with a balance"),
        ));
    }
    Ok(account)
}

/// Today where the account's debtor lives: the day a first instalment, a down payment or a
/// promise is judged by, as the chat and the reminders judge it (not the server's UTC day).
async fn debtor_today(
    s: &CrmApi,
    caller: &Caller,
    account: &Account,
    now: jiff::Timestamp,
) -> Result<jiff::civil::Date, Problem> {
    let debtor = s
        .store
        .debtor(&caller.tenant, &account.debtor)
        .await?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("the account's debtor `{}` is missing", account.debtor),
            )
        })?;
    Ok(now.to_zoned(debtor.time_zone.tz()).date())
}

#[utoipa::path(post, path = "/v1/accounts/{id}/plans/quote", tag = "plans", summary = "Quote plans by affordability or by terms",
    params(("id" = String, Path, description = "the account's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")), request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 409, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:read"])))]
pub(crate) async fn quote(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    // What the debtor can pay (`per_period_minor`, `frequency`), or a plan as asked
    // (`instalments`, `frequency`, `first_due` …).
    let afford = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .is_some_and(|v| v.get("per_period_minor").is_some());
    let input = if afford {
        QuoteInput::Afford(parse_json(&body)?)
    } else {
        QuoteInput::Plan(parse_json(&body)?)
    };
    let account = open_account(&s, &caller, raw).await?;
    let tenant = s.tenant(&caller).await?;
    let today = debtor_today(&s, &caller, &account, s.clock.now()).await?;
    // A running plan's unearned interest comes off when a new plan replaces it.
    let balance = account.plan_basis();
    let options = match input {
        QuoteInput::Afford(a) => affordable(
            balance,
            &tenant.plan_rules,
            Money::new(a.per_period_minor, account.currency),
            a.frequency,
            today,
        )
        .map_err(problem)?,
        QuoteInput::Plan(r) => {
            vec![build(balance, &tenant.plan_rules, &r, today).map_err(problem)?]
        }
    };
    Ok(Json(json!({ "account": account.id, "options": options })).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptInput {
    instalments: u32,
    /// `weekly`, `biweekly` or `monthly`.
    #[schema(value_type = String)]
    frequency: Frequency,
    #[schema(value_type = String, format = Date)]
    first_due: jiff::civil::Date,
    #[serde(default)]
    down_payment_minor: i64,
    #[serde(default)]
    settlement_percent: Option<u32>,
    /// Who agreed: `crm` (default) or `debtor`.
    #[serde(default)]
    accepted_by: Option<String>,
}

#[utoipa::path(post, path = "/v1/accounts/{id}/plans", tag = "plans", summary = "Accept a plan",
    params(("id" = String, Path, description = "the account's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")), request_body = AcceptInput,
    responses((status = 200, body = Object), (status = 201, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 409, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:write"])))]
pub(crate) async fn accept(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: AcceptInput = parse_json(&body)?;
    let request = PlanRequest {
        instalments: input.instalments,
        frequency: input.frequency,
        first_due: input.first_due,
        down_payment_minor: input.down_payment_minor,
        settlement_percent: input.settlement_percent,
    };
    let by = input.accepted_by.unwrap_or_else(|| "crm".into());
    if by != "crm" && by != "debtor" {
        return Err(Problem::invalid_field(
            "accepted_by",
            "is `crm` or `debtor`",
        ));
    }
    let account = open_account(&s, &caller, raw).await?;
    let tenant = s.tenant(&caller).await?;
    let now = s.clock.now();
    let today = debtor_today(&s, &caller, &account, now).await?;
    let terms =
        build(account.plan_basis(), &tenant.plan_rules, &request, today).map_err(problem)?;
    // The same request for the same debt is the same plan: a retried POST changes nothing.
    let plan = Plan::accepted(&account, terms, &request, &tenant.plan_rules, now, &by);
    let (status, p) = match s.store.accept_plan(&account, &plan, now).await? {
        Accepted::Created(p) => (StatusCode::CREATED, p),
        Accepted::Existing(p) => (StatusCode::OK, p),
    };
    // Published again on a retried request (the same detail, so webhooks see one event): a
    // failed publish the first time is not lost.
    s.bus
        .publish(vec![
            PlanAccepted::of(&p, account.debtor.clone(), None).event()
        ])
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "PlanAccepted not published");
            Problem::internal()
        })?;
    Ok((status, Json(json!(p))).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PromiseInput {
    amount_minor: i64,
    #[schema(value_type = String, format = Date)]
    by: jiff::civil::Date,
    /// `crm` (default) or `debtor`.
    #[serde(default)]
    made_by: Option<String>,
}

#[utoipa::path(post, path = "/v1/accounts/{id}/promises", tag = "plans", summary = "Record a promise to pay",
    params(("id" = String, Path, description = "the account's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")), request_body = PromiseInput,
    responses((status = 201, body = Object), (status = 200, body = Object, description = "the same promise, standing already"), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 409, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:write"])))]
/// A promise to pay `amount_minor` by `by` (within the tenant's limit): the reminders wait for
/// it, with one the day before; payments keep it, and its day passing short of it breaks it.
pub(crate) async fn promise(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: PromiseInput = parse_json(&body)?;
    let account = open_account(&s, &caller, raw).await?;
    let tenant = s.tenant(&caller).await?;
    let now = s.clock.now();
    let today = debtor_today(&s, &caller, &account, now).await?;
    let limit = today
        .checked_add(jiff::Span::new().days(i64::from(tenant.plan_rules.max_promise_days)))
        .map_err(|e| Problem::invalid_field("by", e.to_string()))?;
    if input.by < today || input.by > limit {
        return Err(Problem::invalid_field(
            "by",
            format!("must be between {today} and {limit}"),
        ));
    }
    let made_by = input.made_by.unwrap_or_else(|| "crm".into());
    if made_by != "crm" && made_by != "debtor" {
        return Err(Problem::invalid_field("made_by", "is `crm` or `debtor`"));
    }
    // The promise standing already (a retried request): kept as it is, with what was paid
    // toward it, and announced again under the same details, so webhooks see one event.
    if let Some(standing) = account.promise.as_ref().filter(|p| {
        (p.amount_minor, p.by, p.made_by.as_str()) == (input.amount_minor, input.by, &made_by)
    }) {
        publish_promise(&s, &account, standing).await?;
        return Ok((StatusCode::OK, Json(json!(standing))).into_response());
    }
    if input.amount_minor <= 0 || input.amount_minor > account.balance_minor {
        return Err(Problem::invalid_field(
            "amount_minor",
            format!("must be 1 to the balance ({})", account.balance_minor),
        ));
    }
    let promise = cobro::domain::Promise {
        amount_minor: input.amount_minor,
        by: input.by,
        paid_minor: 0,
        made_at: now,
        made_by,
    };
    s.store.make_promise(&account, &promise, now).await?;
    publish_promise(&s, &account, &promise).await?;
    Ok((StatusCode::CREATED, Json(json!(promise))).into_response())
}

async fn publish_promise(
    s: &CrmApi,
    account: &cobro::domain::Account,
    promise: &cobro::domain::Promise,
) -> Result<(), Problem> {
    s.bus
        .publish(vec![PromiseMade::of(account, promise, None).event()])
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "PromiseMade not published");
            Problem::internal()
        })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkInput {
    /// One instalment of the running plan (its number); none: the plan's next instalment, or
    /// the whole balance without a plan.
    #[serde(default)]
    instalment: Option<u32>,
    /// Default 23 hours (Stripe allows 30 minutes to 24 hours).
    #[serde(default)]
    expires_in_minutes: Option<u32>,
}

#[utoipa::path(post, path = "/v1/accounts/{id}/links", tag = "plans", summary = "A payment link for the account or an instalment",
    params(("id" = String, Path, description = "the account's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")), request_body = LinkInput,
    responses((status = 201, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 409, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["accounts:write"])))]
/// A payment link for the account or one of its plan's instalments: the tenant's own pay page
/// when it has one, else Stripe Checkout.
pub(crate) async fn link(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: LinkInput = parse_json(&body)?;
    let account = open_account(&s, &caller, raw).await?;
    let tenant = s.tenant(&caller).await?;
    let now = s.clock.now();
    let minutes = input.expires_in_minutes.unwrap_or(23 * 60);
    if !(30..=24 * 60).contains(&minutes) {
        return Err(Problem::invalid_field(
            "expires_in_minutes",
            "must be 30 to 1440",
        ));
    }
    let plan = match &account.plan {
        Some(r) => s.store.plan(&caller.tenant, &account.id, &r.id).await?,
        None => None,
    };
    let (amount_minor, plan_id, instalment) = match (input.instalment, &plan) {
        (Some(n), Some(p)) => {
            let (i, inst) = p
                .terms
                .instalments
                .iter()
                .enumerate()
                .find(|(_, i)| i.number == n)
                .ok_or_else(|| {
                    Problem::invalid_field("instalment", format!("the plan has no instalment {n}"))
                })?;
            let open = inst.amount_minor - p.paid_minor[i];
            if open <= 0 {
                return Err(Problem::invalid_field(
                    "instalment",
                    format!("instalment {n} is paid"),
                ));
            }
            (open, Some(p.id.clone()), Some(n))
        }
        (Some(_), None) => {
            return Err(Problem::invalid_field(
                "instalment",
                "the account has no running plan",
            ))
        }
        (None, _) => match &account.plan {
            Some(r) => (r.next_amount_minor, Some(r.id.clone()), None),
            None => (account.balance_minor, None, None),
        },
    };
    // Whole minutes, so that a retry within the same minute sends Stripe the very same
    // request (its idempotency key refuses a changed one): from the next minute, at most
    // 24 hours from now.
    let minute = now.as_second().div_euclid(60);
    let expires_at = jiff::Timestamp::from_second(
        ((minute + 1) * 60 + i64::from(minutes) * 60).min(minute * 60 + 24 * 3600),
    )
    .map_err(|e| Problem::invalid_field("expires_in_minutes", e.to_string()))?;
    let request = cobro::ports::LinkRequest {
        tenant: caller.tenant.clone(),
        account: account.id.clone(),
        plan: plan_id.clone(),
        instalment,
        amount: Money::new(amount_minor, account.currency),
        description: format!("{} · {}", tenant.name, account.id),
        expires_at,
        // One link per account, plan, instalment, amount and expiry a minute: a retried call
        // gets the same one.
        idempotency_key: format!(
            "{}:{}:{}:{}:{}:{}:{}",
            caller.tenant,
            account.id,
            plan_id.unwrap_or_default(),
            instalment.unwrap_or(0),
            amount_minor,
            minutes,
            minute
        ),
    };
    let provider: Arc<dyn cobro::ports::PaymentLinks> = match &tenant.pay_page {
        Some(template) => Arc::new(
            cobro::adapters::pay_page::PayPageLinks::new(template, None)
                .map_err(|e| Problem::new(StatusCode::CONFLICT, "conflict", format!("the tenant's pay page: {e}")))?,
        ),
        None => s.stripe.clone().ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "no payment link provider: the tenant has no pay page and the deployment no Stripe key",
            )
        })?,
    };
    let link = provider.create(&request).await.map_err(|e| match e {
        cobro::ports::LinkError::Invalid { field, reason } => Problem::invalid_field(field, reason),
        other => Problem::new(StatusCode::BAD_GATEWAY, "bad-gateway", other.to_string()),
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "link": link, "amount_minor": amount_minor })),
    )
        .into_response())
}
