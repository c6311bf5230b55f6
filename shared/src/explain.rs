//! "Why did or didn't this person get a message?": the answer the CRM API's decisions route
//! and `cobro-admin why` both give, from the account's decisions and contact attempts.

use serde_json::{json, Value};

use crate::domain::{AccountId, TenantId};
use crate::repo::{RepoError, Store};

/// Every decision on the account, newest first, each with the rule that decided it
/// (`window`, `holiday`, `cap:…`, `gap`, `consent`, `opt_out`, `stop:…`, `pause` …) and when it
/// will be looked at again; `None` when there is no such account.
pub async fn why(
    store: &Store,
    tenant: &TenantId,
    account: &AccountId,
) -> Result<Option<Value>, RepoError> {
    let Some(view) = store.account_view(tenant, account).await? else {
        return Ok(None);
    };
    let decisions: Vec<Value> = view
        .decisions
        .iter()
        .rev()
        .map(|d| {
            let rule = d
                .reason
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map(|(rule, _)| rule.to_string());
            let mut v = json!(d);
            v["rule"] = json!(rule);
            v
        })
        .collect();
    Ok(Some(json!({
        "account": account,
        "status": view.account.status,
        "holds": view.account.holds,
        "next_action_at": view.next_action_at,
        "decisions": decisions,
        "attempts": view.attempts,
    })))
}
