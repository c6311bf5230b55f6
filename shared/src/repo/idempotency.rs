//! `Idempotency-Key` records: the first request with a key runs, and its response is kept (with
//! a TTL) for the retries; the same key with another request is refused, and a retry while the
//! first is still running is told to wait.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::TenantId;
use crate::ports::table::{is_expired, Condition, TableError, TTL};

/// How long a response is kept for retries.
pub const IDEMPOTENCY_FOR: SignedDuration = SignedDuration::from_hours(24);
/// A request still marked running after this is taken as crashed: a retry may run it again.
pub const IN_FLIGHT_LEASE: SignedDuration = SignedDuration::from_secs(120);

/// The response a request produced, as kept for its retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    /// SHA-256 of what was asked (method, path, body), hex.
    request: String,
    started_at: Timestamp,
    #[serde(default)]
    response: Option<SavedResponse>,
}

/// What to do with a request that carries an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// First time (or the earlier one expired or crashed): run it, then `finish_idempotent`.
    Run,
    /// Already answered: send this again.
    Replay(SavedResponse),
    /// The same key is running right now.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

impl Store {
    pub async fn begin_idempotent(
        &self,
        t: &TenantId,
        key: &str,
        request_hash: &str,
        now: Timestamp,
    ) -> Result<Begin, RepoError> {
        let item_key = keys::idempotency(t, key);
        let record = Record {
            request: request_hash.to_string(),
            started_at: now,
            response: None,
        };
        let mut item = to_item(item_key.clone(), "idempotency", &record);
        item.insert(TTL.into(), expiry(now).into());
        let current = self.table.get(&item_key).await?;
        let condition = match &current {
            None => Condition::NotExists,
            Some(c) if is_expired(c, now.as_second()) => Condition::Eq(
                "started_at".into(),
                c.get("started_at").cloned().unwrap_or_default(),
            ),
            Some(c) => {
                let old: Record = from_item(c.clone())?;
                if old.request != request_hash {
                    return Ok(Begin::Mismatch);
                }
                if let Some(r) = old.response {
                    return Ok(Begin::Replay(r));
                }
                if now.duration_since(old.started_at) < IN_FLIGHT_LEASE {
                    return Ok(Begin::InFlight);
                }
                Condition::Eq(
                    "started_at".into(),
                    c.get("started_at").cloned().unwrap_or_default(),
                )
            }
        };
        match self.table.put(item, Some(condition)).await {
            Ok(()) => Ok(Begin::Run),
            // Another request with the key got in between: it runs, this one waits.
            Err(TableError::ConditionFailed) => Ok(Begin::InFlight),
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps the response for the key's retries.
    pub async fn finish_idempotent(
        &self,
        t: &TenantId,
        key: &str,
        request_hash: &str,
        started_at: Timestamp,
        response: SavedResponse,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let record = Record {
            request: request_hash.to_string(),
            started_at,
            response: Some(response),
        };
        let mut item = to_item(keys::idempotency(t, key), "idempotency", &record);
        item.insert(TTL.into(), expiry(now).into());
        Ok(self.table.put(item, None).await?)
    }

    /// Forgets the key: the request failed in a way a retry may fix, so the retry runs it.
    pub async fn abandon_idempotent(&self, t: &TenantId, key: &str) -> Result<(), RepoError> {
        self.table.delete(&keys::idempotency(t, key), None).await?;
        Ok(())
    }
}

fn expiry(now: Timestamp) -> i64 {
    now.saturating_add(IDEMPOTENCY_FOR)
        .expect("in range")
        .as_second()
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::adapters::sqlite::SqliteStore;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_key_runs_once_replays_refuses_other_requests_and_expires() {
        let store = Store::new(Arc::new(SqliteStore::open_in_memory().unwrap().table()));
        let t = TenantId::parse("t").unwrap();
        let u = TenantId::parse("u").unwrap();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let at = |secs: i64| now + SignedDuration::from_secs(secs);
        assert_eq!(
            store.begin_idempotent(&t, "k", "h1", now).await.unwrap(),
            Begin::Run
        );
        assert_eq!(
            store.begin_idempotent(&t, "k", "h1", at(1)).await.unwrap(),
            Begin::InFlight
        );
        assert_eq!(
            store.begin_idempotent(&t, "k", "h2", at(1)).await.unwrap(),
            Begin::Mismatch
        );
        // Keys are per tenant.
        assert_eq!(
            store.begin_idempotent(&u, "k", "h2", at(1)).await.unwrap(),
            Begin::Run
        );
        let saved = SavedResponse {
            status: 201,
            content_type: Some("application/json".into()),
            body: "{}".into(),
        };
        store
            .finish_idempotent(&t, "k", "h1", now, saved.clone(), at(2))
            .await
            .unwrap();
        assert_eq!(
            store.begin_idempotent(&t, "k", "h1", at(3)).await.unwrap(),
            Begin::Replay(saved)
        );
        let day = IDEMPOTENCY_FOR.as_secs();
        assert_eq!(
            store
                .begin_idempotent(&t, "k", "h2", at(day + 10))
                .await
                .unwrap(),
            Begin::Run,
            "an expired key is free again"
        );
        // A crashed request's key is taken over after the lease.
        let lease = IN_FLIGHT_LEASE.as_secs();
        assert_eq!(
            store
                .begin_idempotent(&t, "k", "h2", at(day + 10 + lease + 1))
                .await
                .unwrap(),
            Begin::Run
        );
        store.abandon_idempotent(&t, "k").await.unwrap();
        assert_eq!(
            store
                .begin_idempotent(&t, "k", "h3", at(day + 20 + lease))
                .await
                .unwrap(),
            Begin::Run
        );
    }
}
