//! Actions on an account: pause or resume collection, close, write off, mark a lawsuit or an
//! insolvency. Each records who (the API key) and why, and moves the account on the due index:
//! what stops collection takes it off, a resume puts it back. The reminders and the sender
//! re-check the account's status and holds before every contact, so nothing already queued
//! goes out after a stop.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use cobro::compliance::Holds;
use cobro::domain::{AccountId, AccountStatus};
use cobro::http::{parse_json, Problem};
use cobro::repo::{AccountAction, RepoError};

use crate::{id, Caller, CrmApi};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Close,
    WriteOff,
    Lawsuit,
    Insolvency,
    ResolveDispute,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Close => "close",
            Action::WriteOff => "write_off",
            Action::Lawsuit => "lawsuit",
            Action::Insolvency => "insolvency",
            Action::ResolveDispute => "resolve_dispute",
        }
    }
}

/// Why, and for a pause, until when (none: until resumed).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    /// Why, in words a later reader understands (1 to 500 characters).
    pub reason: String,
    /// Pause only: when collection resumes by itself (RFC 3339, in the future).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
}

/// The account after the action, and the action's record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActionOutput {
    #[schema(value_type = Object)]
    pub account: cobro::domain::Account,
    #[schema(value_type = Object)]
    pub action: AccountAction,
    /// When the schedule looks at the account next; none: collection is stopped.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_action_at: Option<Timestamp>,
}

macro_rules! action_handler {
    ($name:ident, $action:expr, $path:literal, $summary:literal) => {
        #[utoipa::path(post, path = $path, tag = "actions", summary = $summary,
                    params(("id" = String, Path, description = "the account's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
                    request_body = ActionInput,
                    responses(
                        (status = 200, body = ActionOutput),
                        (status = 400, body = crate::openapi::ProblemDoc),
                        (status = 404, body = crate::openapi::ProblemDoc),
                        (status = 409, body = crate::openapi::ProblemDoc),
                    ),
                    security(("api_key" = ["accounts:write"])))]
        pub(crate) async fn $name(
            State(s): State<Arc<CrmApi>>,
            Extension(caller): Extension<Caller>,
            Path(raw): Path<String>,
            body: Bytes,
        ) -> Result<Response, Problem> {
            act(&s, &caller, raw, &body, $action).await
        }
    };
}

action_handler!(
    pause,
    Action::Pause,
    "/v1/accounts/{id}/pause",
    "Pause collection"
);
action_handler!(
    resume,
    Action::Resume,
    "/v1/accounts/{id}/resume",
    "Resume collection"
);
action_handler!(
    close,
    Action::Close,
    "/v1/accounts/{id}/close",
    "Close the account"
);
action_handler!(
    write_off,
    Action::WriteOff,
    "/v1/accounts/{id}/write-off",
    "Write the account off"
);
action_handler!(
    lawsuit,
    Action::Lawsuit,
    "/v1/accounts/{id}/lawsuit",
    "Mark a lawsuit served (stops collection)"
);
action_handler!(
    insolvency,
    Action::Insolvency,
    "/v1/accounts/{id}/insolvency",
    "Mark an insolvency (stops collection)"
);
action_handler!(
    resolve_dispute,
    Action::ResolveDispute,
    "/v1/accounts/{id}/resolve-dispute",
    "Close the account's dispute (collection resumes unless something else holds it)"
);

async fn act(
    s: &CrmApi,
    caller: &Caller,
    raw: String,
    body: &[u8],
    action: Action,
) -> Result<Response, Problem> {
    let id = id(AccountId::parse, raw, "id")?;
    let input: ActionInput = parse_json(body)?;
    let reason = input.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::invalid_field("reason", "1 to 500 characters"));
    }
    let now = s.clock.now();
    if input.until.is_some() && action != Action::Pause {
        return Err(Problem::invalid_field("until", "only a pause has an end"));
    }
    if input.until.is_some_and(|u| u <= now) {
        return Err(Problem::invalid_field("until", "must be in the future"));
    }
    let tenant = s.tenant(caller).await?;
    for _ in 0..3 {
        let mut account = s
            .store
            .account(&caller.tenant, &id)
            .await?
            .ok_or_else(|| Problem::not_found(format!("no account `{id}`")))?;
        let debtor = s
            .store
            .debtor(&caller.tenant, &account.debtor)
            .await?
            .ok_or_else(Problem::internal)?;
        // An insolvency is the person's, so it holds on every account of the debtor, later
        // ones too; a resume ends the debtor's own pause as well (a person reviewed the case).
        let lifts_debtor_pause = action == Action::Resume && debtor.holds.pause_at(now).is_some();
        let debtor = match action {
            Action::Insolvency if !debtor.holds.insolvency => s
                .store
                .set_debtor_holds(&caller.tenant, &debtor.id, |h| h.insolvency = true)
                .await?
                .ok_or_else(Problem::internal)?,
            Action::Resume if lifts_debtor_pause => s
                .store
                .set_debtor_holds(&caller.tenant, &debtor.id, Holds::lift_pause)
                .await?
                .ok_or_else(Problem::internal)?,
            _ => debtor,
        };
        let holds = &mut account.holds;
        match action {
            // Added to a pause already holding, never shortening it.
            Action::Pause => holds.pause(input.until, reason.clone(), now),
            Action::Resume => {
                if account.status == AccountStatus::Closed {
                    return Err(Problem::new(
                        StatusCode::CONFLICT,
                        "conflict",
                        format!("account `{id}` is closed; it cannot resume"),
                    ));
                }
                holds.lift_pause();
                if account.status == AccountStatus::Paused {
                    account.status = AccountStatus::Open;
                }
            }
            Action::Close | Action::WriteOff => account.status = AccountStatus::Closed,
            Action::Lawsuit => holds.lawsuit_served = true,
            Action::Insolvency => holds.insolvency = true,
            Action::ResolveDispute => holds.dispute_open = false,
        }
        let next = match action {
            // A timed pause: the schedule looks again when it ends (the longer pause's end,
            // when one already held).
            Action::Pause => match account.holds.pause_at(now) {
                Some(Some(until)) => s
                    .decider
                    .first_action(&tenant, &account, &debtor, until)
                    .map(|t| t.max(until)),
                _ => None,
            },
            Action::Resume | Action::ResolveDispute => {
                s.decider.first_action(&tenant, &account, &debtor, now)
            }
            Action::Close | Action::WriteOff | Action::Lawsuit | Action::Insolvency => None,
        };
        let record = AccountAction {
            action: action.as_str().into(),
            at: now,
            by: caller.actor(),
            reason: reason.clone(),
            until: input.until,
        };
        match s.store.apply_account_action(&account, next, &record).await {
            Ok(account) => {
                if lifts_debtor_pause {
                    reschedule_others(s, &tenant, &debtor, &account.id, now).await?;
                }
                return Ok(Json(ActionOutput {
                    account,
                    action: record,
                    next_action_at: next,
                })
                .into_response());
            }
            Err(RepoError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Problem::new(
        StatusCode::CONFLICT,
        "conflict",
        format!("account `{id}` keeps changing; retry"),
    ))
}

/// The debtor's other open accounts, which the debtor's pause had taken off the schedule, are
/// put back on it (each decided again at its first allowed instant).
async fn reschedule_others(
    s: &CrmApi,
    tenant: &cobro::domain::Tenant,
    debtor: &cobro::domain::Debtor,
    resumed: &AccountId,
    now: jiff::Timestamp,
) -> Result<(), Problem> {
    for other in s.store.accounts_of_debtor(&tenant.id, &debtor.id).await? {
        if &other.id == resumed || other.status != AccountStatus::Open || other.balance_minor <= 0 {
            continue;
        }
        let next = s.decider.first_action(tenant, &other, debtor, now);
        match s.store.reschedule_account(&other, next).await {
            // Changed meanwhile: whatever changed it scheduled it too.
            Ok(()) | Err(RepoError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The debtor's holds after a debtor-wide pause or resume.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DebtorHoldsOutput {
    pub debtor: String,
    #[schema(value_type = Object)]
    pub holds: Holds,
}

#[utoipa::path(post, path = "/v1/debtors/{id}/pause", tag = "actions",
    summary = "Pause collection on every account of the debtor, later ones too (a breathing space)",
    params(("id" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    request_body = ActionInput,
    responses((status = 200, body = DebtorHoldsOutput), (status = 400, body = crate::openapi::ProblemDoc), (status = 404, body = crate::openapi::ProblemDoc)),
    security(("api_key" = ["accounts:write"])))]
pub(crate) async fn pause_debtor(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    debtor_act(&s, &caller, raw, &body, true).await
}

#[utoipa::path(post, path = "/v1/debtors/{id}/resume", tag = "actions",
    summary = "End the debtor's own pause (from the chat or a debtor-wide pause)",
    params(("id" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    request_body = ActionInput,
    responses((status = 200, body = DebtorHoldsOutput), (status = 400, body = crate::openapi::ProblemDoc), (status = 404, body = crate::openapi::ProblemDoc)),
    security(("api_key" = ["accounts:write"])))]
pub(crate) async fn resume_debtor(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    debtor_act(&s, &caller, raw, &body, false).await
}

/// A pause on the person (every account, later ones too), or its end; each open account is
/// scheduled again under the debtor's new holds.
async fn debtor_act(
    s: &CrmApi,
    caller: &Caller,
    raw: String,
    body: &[u8],
    pause: bool,
) -> Result<Response, Problem> {
    let id = id(cobro::domain::DebtorId::parse, raw, "id")?;
    let input: ActionInput = parse_json(body)?;
    let reason = input.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::invalid_field("reason", "1 to 500 characters"));
    }
    let now = s.clock.now();
    if input.until.is_some() && !pause {
        return Err(Problem::invalid_field("until", "only a pause has an end"));
    }
    if input.until.is_some_and(|u| u <= now) {
        return Err(Problem::invalid_field("until", "must be in the future"));
    }
    let tenant = s.tenant(caller).await?;
    let debtor = s
        .store
        .set_debtor_holds(&caller.tenant, &id, |h| {
            if pause {
                h.pause(input.until, reason.clone(), now);
            } else {
                h.lift_pause();
            }
        })
        .await?
        .ok_or_else(|| Problem::not_found(format!("no debtor `{id}`")))?;
    tracing::info!(debtor = %debtor.id, pause, "debtor-wide pause changed");
    for account in s
        .store
        .accounts_of_debtor(&caller.tenant, &debtor.id)
        .await?
    {
        if account.status != AccountStatus::Open || account.balance_minor <= 0 {
            continue;
        }
        let next = s.decider.first_action(&tenant, &account, &debtor, now);
        match s.store.reschedule_account(&account, next).await {
            // Changed meanwhile: whatever changed it scheduled it under the new holds.
            Ok(()) | Err(RepoError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(DebtorHoldsOutput {
        debtor: debtor.id.to_string(),
        holds: debtor.holds,
    })
    .into_response())
}
