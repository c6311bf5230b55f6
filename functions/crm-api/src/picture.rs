//! The account's whole picture in one call: balance, days past due, bucket, plan, promise,
//! last contacts and the next decision, with the payments, plans, decisions and actions behind
//! them.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use jiff::Timestamp;
use serde::Serialize;
use std::sync::Arc;

use cobro::domain::{Account, AccountId, ContactAttempt, Money};
use cobro::http::Problem;
use cobro::repo::{AccountAction, Decision};

use crate::{id, Caller, CrmApi};

/// Contacts and messages shown in the picture; the full lists have their own endpoints.
const LAST: usize = 10;

/// Buckets when the tenant defines none: the industry's usual 30-day bands.
const DEFAULT_BUCKETS: [(i64, Option<i64>, &str); 5] = [
    (0, Some(0), "current"),
    (1, Some(30), "1-30"),
    (31, Some(60), "31-60"),
    (61, Some(90), "61-90"),
    (91, None, "90+"),
];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountPicture {
    #[schema(value_type = Object)]
    pub account: Account,
    #[schema(value_type = Object)]
    pub balance: Money,
    pub days_past_due: i64,
    /// The tenant's bucket for the days past due (or current, 1-30, 31-60, 61-90, 90+).
    pub bucket: Option<String>,
    /// Whether the schedule may contact the debtor about it now (open, owed, no hold).
    pub collecting: bool,
    /// The running plan, if any.
    #[schema(value_type = Option<Object>)]
    pub plan: Option<cobro::plans::Plan>,
    #[schema(value_type = Option<Object>)]
    pub promise: Option<cobro::domain::Promise>,
    /// When the schedule looks at the account next; none: nothing is planned.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_action_at: Option<Timestamp>,
    /// The latest decision of the schedule, with its reason.
    #[schema(value_type = Option<Object>)]
    pub last_decision: Option<Decision>,
    /// The latest contact attempts, newest first.
    #[schema(value_type = Vec<Object>)]
    pub last_contacts: Vec<ContactAttempt>,
    #[schema(value_type = Vec<Object>)]
    pub last_messages: Vec<cobro::domain::ConversationMessage>,
    #[schema(value_type = Vec<Object>)]
    pub payments: Vec<cobro::domain::Payment>,
    #[schema(value_type = Vec<Object>)]
    pub plans: Vec<cobro::plans::Plan>,
    /// What the debtor's credit paid of later charges (a rise of `balance_minor` by a PUT or
    /// an import), or got back when the CRM lowered them, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub credit_netted: Vec<cobro::domain::CreditNetted>,
    #[schema(value_type = Vec<Object>)]
    pub attempts: Vec<ContactAttempt>,
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<Decision>,
    /// Pauses, closes, lawsuits … with who and why, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub actions: Vec<AccountAction>,
}

#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts",
    summary = "The account's whole picture",
    params(("id" = String, Path, description = "the account's id in the CRM", pattern = r"^[A-Za-z0-9._:@-]{1,128}$")),
    responses(
        (status = 200, body = AccountPicture),
        (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["accounts:read"])))]
pub(crate) async fn get_account(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let id = id(AccountId::parse, raw, "id")?;
    let view = s
        .store
        .account_view(&caller.tenant, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no account `{id}`")))?;
    let tenant = s.tenant(&caller).await?;
    let now = s.clock.now();
    let debtor = s.store.debtor(&caller.tenant, &view.account.debtor).await?;
    let zone = debtor
        .as_ref()
        .map_or(jiff::tz::TimeZone::UTC, |d| d.time_zone.tz());
    let today = now.to_zoned(zone).date();
    let days_past_due = view.account.days_past_due(today);
    let bucket = match tenant.strategies.as_ref().filter(|b| !b.buckets.is_empty()) {
        Some(book) => book.bucket_of(days_past_due).map(str::to_string),
        None => DEFAULT_BUCKETS
            .iter()
            .find(|(from, to, _)| *from <= days_past_due && to.is_none_or(|t| days_past_due <= t))
            .map(|(_, _, name)| name.to_string()),
    };
    let a = &view.account;
    // The debtor's own holds (an insolvency, a pause) hold on this account too.
    let holds = match &debtor {
        Some(d) => a.holds.with(&d.holds, now),
        None => a.holds.clone(),
    };
    let collecting = a.status.is_collectable()
        && a.balance_minor > 0
        && !holds.lawsuit_served
        && !holds.insolvency
        && !holds.dispute_open
        && holds.pause_at(now).is_none();
    let plan = a
        .plan
        .as_ref()
        .and_then(|p| view.plans.iter().find(|x| x.id == p.id).cloned());
    let mut last_contacts = view.attempts.clone();
    last_contacts.sort_by_key(|c| std::cmp::Reverse(c.decided_at));
    last_contacts.truncate(LAST);
    let last_messages = s
        .store
        .conversation(&caller.tenant, &a.debtor, LAST as u32)
        .await?;
    let actions = s.store.account_actions(&caller.tenant, &id).await?;
    let picture = AccountPicture {
        balance: a.balance(),
        days_past_due,
        bucket,
        collecting,
        plan,
        promise: a.promise.clone(),
        next_action_at: view.next_action_at,
        last_decision: view.decisions.last().cloned(),
        last_contacts,
        last_messages,
        account: view.account,
        payments: view.payments,
        plans: view.plans,
        credit_netted: view.credit_netted,
        attempts: view.attempts,
        decisions: view.decisions,
        actions,
    };
    Ok(Json(picture).into_response())
}
