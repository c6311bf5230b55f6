//! "Why did or didn't this person get a message?": the answer the CRM API's decisions route
//! and `cobro-admin why` both give, from the account's decisions and contact attempts, and what
//! holds it: the account's holds and the debtor's.

use serde_json::{json, Value};

use crate::domain::{AccountId, TenantId};
use crate::repo::{RepoError, Store};

/// Every decision on the account, newest first, each with the rule that decided it
/// (`window`, `holiday`, `cap:…`, `gap`, `consent`, `opt_out`, `stop:…`, `pause` …) and when it
/// will be looked at again; the account's holds and, as `debtor_holds`, the person's (an
/// insolvency, a debtor-wide pause), which hold on every account of theirs and may be all that
/// stops this one; `None` when there is no such account.
pub async fn why(
    store: &Store,
    tenant: &TenantId,
    account: &AccountId,
) -> Result<Option<Value>, RepoError> {
    let Some(view) = store.account_view(tenant, account).await? else {
        return Ok(None);
    };
    // The person's holds stop this account as much as its own: without them an account held
    // by a debtor-wide pause would show nothing that holds it.
    let debtor_holds = store
        .debtor(tenant, &view.account.debtor)
        .await?
        .map(|d| d.holds);
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
        "debtor_holds": debtor_holds,
        "next_action_at": view.next_action_at,
        "decisions": decisions,
        "attempts": view.attempts,
    })))
}
