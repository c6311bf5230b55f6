//! Actions on an account: pause or resume collection, close, write off, mark a lawsuit or an
//! insolvency, close a dispute; and on the person: a pause on all their accounts, its end, the
//! end of their insolvency. Each records who (the API key) and why, and moves the accounts on
//! the due index: what stops collection takes them off, a resume puts them back. The reminders
//! and the sender re-check the account's status and holds before every contact, so nothing
//! already queued goes out after a stop. A refused action changes nothing, and a repeated one
//! (a retry) leaves things as one would.

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
        let (read, revision) = s
            .store
            .debtor_at_revision(&caller.tenant, &account.debtor)
            .await?
            .ok_or_else(Problem::internal)?;
        // Refused before anything is written: a request answered with an error changes
        // nothing, the debtor included.
        if action == Action::Resume && account.status == AccountStatus::Closed {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("account `{id}` is closed; it cannot resume"),
            ));
        }
        // An insolvency is the person's, so it holds on every account of the debtor, later
        // ones too; a resume ends the debtor's own pause as well (a person reviewed the case).
        // Written with the account in one transaction, so a pass that conflicts leaves the
        // debtor as it was and the next pass decides again from what is stored.
        let mut debtor = read.clone();
        match action {
            Action::Insolvency => debtor.holds.insolvency = true,
            Action::Resume => debtor.holds.lift_pause(),
            _ => {}
        }
        let debtor_write = (debtor.holds != read.holds).then_some((&debtor, revision));
        let holds = &mut account.holds;
        match action {
            // Added to a pause already holding, never shortening it.
            Action::Pause => holds.pause(input.until, reason.clone(), now),
            Action::Resume => {
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
        match s
            .store
            .apply_account_action_with_debtor(&account, next, &record, debtor_write)
            .await
        {
            Ok(account) => {
                // Every resume, not only the one that lifted the debtor's pause: a retry of a
                // resume whose first try lifted it and failed before this point finds the
                // pause gone, and must still put the other accounts back.
                if action == Action::Resume {
                    let others = Sweep {
                        skip: Some(&account.id),
                        record: None,
                        lift_insolvency: false,
                    };
                    sweep_accounts(s, &tenant, &debtor, &others, now).await?;
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
    Err(keeps_changing(format!("account `{id}`")))
}

fn keeps_changing(what: String) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "conflict",
        format!("{what} keeps changing; retry"),
    )
}

/// What a debtor-wide change does to each account of the debtor, besides putting the open
/// ones back where the schedule should next look at them (the reminders then decide each under
/// the debtor's holds as they are now).
struct Sweep<'a> {
    /// The account the action was posted on, already scheduled with it.
    skip: Option<&'a AccountId>,
    /// Recorded on each account changed or scheduled: the action on the person, in the
    /// history of every account it affects.
    record: Option<&'a AccountAction>,
    /// The person's insolvency ended: it ends on every account, the one it was posted on too.
    lift_insolvency: bool,
}

/// Applies `sweep` to every account of `debtor`. Safe to repeat: each account is decided again
/// from what is stored, so a retried request (a plain one, or one under the same
/// Idempotency-Key after a failure midway) finishes what the first left undone.
async fn sweep_accounts(
    s: &CrmApi,
    tenant: &cobro::domain::Tenant,
    debtor: &cobro::domain::Debtor,
    sweep: &Sweep<'_>,
    now: Timestamp,
) -> Result<(), Problem> {
    for account in s.store.accounts_of_debtor(&tenant.id, &debtor.id).await? {
        if Some(&account.id) == sweep.skip {
            continue;
        }
        sweep_account(s, tenant, debtor, sweep, account, now).await?;
    }
    Ok(())
}

async fn sweep_account(
    s: &CrmApi,
    tenant: &cobro::domain::Tenant,
    debtor: &cobro::domain::Debtor,
    sweep: &Sweep<'_>,
    mut account: cobro::domain::Account,
    now: Timestamp,
) -> Result<(), Problem> {
    for _ in 0..3 {
        let lifts = sweep.lift_insolvency && account.holds.insolvency;
        let open = account.status == AccountStatus::Open && account.balance_minor > 0;
        if !open && !lifts {
            return Ok(());
        }
        account.holds.insolvency &= !sweep.lift_insolvency;
        let next = if open {
            s.decider.first_action(tenant, &account, debtor, now)
        } else {
            None
        };
        let written = match sweep.record {
            Some(record) => s
                .store
                .apply_account_action(&account, next, record)
                .await
                .map(drop),
            None => s.store.reschedule_account(&account, next).await,
        };
        match written {
            Ok(()) => return Ok(()),
            // Changed meanwhile (a tick that read the debtor before the change may have just
            // taken it off the schedule): read it again and decide again.
            Err(RepoError::Conflict(_)) => match s.store.account(&tenant.id, &account.id).await? {
                Some(fresh) => account = fresh,
                None => return Ok(()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(keeps_changing(format!("account `{}`", account.id)))
}

/// The debtor's holds after a debtor-wide action.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DebtorHoldsOutput {
    pub debtor: String,
    #[schema(value_type = Object)]
    pub holds: Holds,
}

/// What is done to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DebtorAction {
    Pause,
    Resume,
    ResolveInsolvency,
}

impl DebtorAction {
    fn as_str(self) -> &'static str {
        match self {
            DebtorAction::Pause => "debtor_pause",
            DebtorAction::Resume => "debtor_resume",
            DebtorAction::ResolveInsolvency => "resolve_insolvency",
        }
    }
}

#[utoipa::path(post, path = "/v1/debtors/{id}/pause", tag = "actions",
    summary = "Pause collection on every account of the debtor, later ones too (a breathing space)",
    params(("id" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    request_body = ActionInput,
    responses((status = 200, body = DebtorHoldsOutput), (status = 400, body = crate::openapi::ProblemDoc), (status = 404, body = crate::openapi::ProblemDoc), (status = 409, body = crate::openapi::ProblemDoc)),
    security(("api_key" = ["accounts:write"])))]
pub(crate) async fn pause_debtor(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    debtor_act(&s, &caller, raw, &body, DebtorAction::Pause).await
}

#[utoipa::path(post, path = "/v1/debtors/{id}/resume", tag = "actions",
    summary = "End the debtor's own pause (from the chat or a debtor-wide pause)",
    params(("id" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    request_body = ActionInput,
    responses((status = 200, body = DebtorHoldsOutput), (status = 400, body = crate::openapi::ProblemDoc), (status = 404, body = crate::openapi::ProblemDoc), (status = 409, body = crate::openapi::ProblemDoc)),
    security(("api_key" = ["accounts:write"])))]
pub(crate) async fn resume_debtor(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    debtor_act(&s, &caller, raw, &body, DebtorAction::Resume).await
}

#[utoipa::path(post, path = "/v1/debtors/{id}/resolve-insolvency", tag = "actions",
    summary = "End the debtor's insolvency (proceedings dismissed or concluded): every account of theirs goes back on the schedule unless something else holds it",
    params(("id" = String, Path, description = "the debtor's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    request_body = ActionInput,
    responses((status = 200, body = DebtorHoldsOutput), (status = 400, body = crate::openapi::ProblemDoc), (status = 404, body = crate::openapi::ProblemDoc), (status = 409, body = crate::openapi::ProblemDoc)),
    security(("api_key" = ["accounts:write"])))]
pub(crate) async fn resolve_insolvency(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    debtor_act(&s, &caller, raw, &body, DebtorAction::ResolveInsolvency).await
}

/// An action on the person: a pause on every account (later ones too), its end, or the end of
/// their insolvency. The debtor changes first, then each account is recorded with the action
/// and scheduled again under the debtor's new holds; a repeat does the same again, so a retry
/// finishes what a failure midway left undone.
async fn debtor_act(
    s: &CrmApi,
    caller: &Caller,
    raw: String,
    body: &[u8],
    action: DebtorAction,
) -> Result<Response, Problem> {
    let id = id(cobro::domain::DebtorId::parse, raw, "id")?;
    let input: ActionInput = parse_json(body)?;
    let reason = input.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::invalid_field("reason", "1 to 500 characters"));
    }
    let now = s.clock.now();
    if input.until.is_some() && action != DebtorAction::Pause {
        return Err(Problem::invalid_field("until", "only a pause has an end"));
    }
    if input.until.is_some_and(|u| u <= now) {
        return Err(Problem::invalid_field("until", "must be in the future"));
    }
    let tenant = s.tenant(caller).await?;
    // The debtor before its accounts: an account put back on the schedule while the person's
    // hold still stood could be decided (and taken off again) before the hold went.
    let debtor = s
        .store
        .set_debtor_holds(&caller.tenant, &id, |h| match action {
            DebtorAction::Pause => h.pause(input.until, reason.clone(), now),
            DebtorAction::Resume => h.lift_pause(),
            DebtorAction::ResolveInsolvency => h.insolvency = false,
        })
        .await?
        .ok_or_else(|| Problem::not_found(format!("no debtor `{id}`")))?;
    tracing::info!(debtor = %debtor.id, action = action.as_str(), "debtor-wide action");
    let record = AccountAction {
        action: action.as_str().into(),
        at: now,
        by: caller.actor(),
        reason,
        until: input.until,
    };
    let sweep = Sweep {
        skip: None,
        record: Some(&record),
        lift_insolvency: action == DebtorAction::ResolveInsolvency,
    };
    sweep_accounts(s, &tenant, &debtor, &sweep, now).await?;
    Ok(Json(DebtorHoldsOutput {
        debtor: debtor.id.to_string(),
        holds: debtor.holds,
    })
    .into_response())
}
