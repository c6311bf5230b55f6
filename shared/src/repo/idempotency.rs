//! `Idempotency-Key` records: the first request with a key runs, and its response is kept (with
//! a TTL) for the retries; the same key with another request is refused, and a retry while the
//! first is still running is told to wait. A request that failed in a way a retry may fix (a
//! server error) is not answered again: its retry runs, as of the first attempt's time, so that
//! what the first attempt recorded before failing is recorded again the same, not twice.

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
    /// When the key was first used for this request: the time its retries run as of.
    /// Records kept before it existed read as `started_at`.
    #[serde(default)]
    first_at: Option<Timestamp>,
    /// The request failed in a way a retry may fix: the next one with the key runs.
    #[serde(default)]
    abandoned: bool,
}

impl Record {
    fn first_at(&self) -> Timestamp {
        self.first_at.unwrap_or(self.started_at)
    }
}

/// What to do with a request that carries an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// First time (or the earlier one expired, crashed or failed): run it as of `first_at`,
    /// then `finish_idempotent` or `abandon_idempotent`. `first_at` is when this request was
    /// first tried under the key: now, unless this is a retry of one that crashed or failed.
    Run { first_at: Timestamp },
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
        let current = self.table.get(&item_key).await?;
        let same_start = |c: &crate::ports::table::Item| {
            Condition::Eq(
                "started_at".into(),
                c.get("started_at").cloned().unwrap_or_default(),
            )
        };
        let (condition, first_at) = match &current {
            None => (Condition::NotExists, now),
            Some(c) if is_expired(c, now.as_second()) => (same_start(c), now),
            Some(c) => {
                let old: Record = from_item(c.clone())?;
                if old.abandoned {
                    // Failed: the key is free again, and a retry of the same request keeps
                    // its first attempt's time.
                    let first = if old.request == request_hash {
                        old.first_at()
                    } else {
                        now
                    };
                    (same_start(c), first)
                } else {
                    if old.request != request_hash {
                        return Ok(Begin::Mismatch);
                    }
                    if let Some(r) = old.response {
                        return Ok(Begin::Replay(r));
                    }
                    if now.duration_since(old.started_at) < IN_FLIGHT_LEASE {
                        return Ok(Begin::InFlight);
                    }
                    // Crashed: taken over, as of the first attempt's time.
                    (same_start(c), old.first_at())
                }
            }
        };
        let record = Record {
            request: request_hash.to_string(),
            started_at: now,
            response: None,
            first_at: Some(first_at),
            abandoned: false,
        };
        let mut item = to_item(item_key, "idempotency", &record);
        item.insert(TTL.into(), expiry(now).into());
        match self.table.put(item, Some(condition)).await {
            Ok(()) => Ok(Begin::Run { first_at }),
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
            first_at: None,
            abandoned: false,
        };
        let mut item = to_item(keys::idempotency(t, key), "idempotency", &record);
        item.insert(TTL.into(), expiry(now).into());
        Ok(self.table.put(item, None).await?)
    }

    /// Frees the key: the request failed in a way a retry may fix, so the retry runs it, as of
    /// `first_at` (what `begin_idempotent` gave) when it is the same request.
    pub async fn abandon_idempotent(
        &self,
        t: &TenantId,
        key: &str,
        request_hash: &str,
        started_at: Timestamp,
        first_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let record = Record {
            request: request_hash.to_string(),
            started_at,
            response: None,
            first_at: Some(first_at),
            abandoned: true,
        };
        let mut item = to_item(keys::idempotency(t, key), "idempotency", &record);
        item.insert(TTL.into(), expiry(now).into());
        Ok(self.table.put(item, None).await?)
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
        let run = |first_at| Begin::Run { first_at };
        assert_eq!(
            store.begin_idempotent(&t, "k", "h1", now).await.unwrap(),
            run(now)
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
            run(at(1))
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
        let later = at(day + 10);
        assert_eq!(
            store.begin_idempotent(&t, "k", "h2", later).await.unwrap(),
            run(later),
            "an expired key is free again"
        );
        // A crashed request's key is taken over after the lease, as of its first attempt.
        let lease = IN_FLIGHT_LEASE.as_secs();
        let takeover = at(day + 10 + lease + 1);
        assert_eq!(
            store
                .begin_idempotent(&t, "k", "h2", takeover)
                .await
                .unwrap(),
            run(later)
        );
    }

    #[tokio::test]
    async fn a_failed_request_runs_again_as_of_its_first_attempt() {
        let store = Store::new(Arc::new(SqliteStore::open_in_memory().unwrap().table()));
        let t = TenantId::parse("t").unwrap();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let at = |secs: i64| now + SignedDuration::from_secs(secs);
        let run = |first_at| Begin::Run { first_at };

        assert_eq!(
            store.begin_idempotent(&t, "k", "h", now).await.unwrap(),
            run(now)
        );
        store
            .abandon_idempotent(&t, "k", "h", now, now, at(1))
            .await
            .unwrap();
        // The retry runs at once (no in-flight wait) and as of the first attempt.
        assert_eq!(
            store.begin_idempotent(&t, "k", "h", at(5)).await.unwrap(),
            run(now)
        );
        store
            .abandon_idempotent(&t, "k", "h", at(5), now, at(6))
            .await
            .unwrap();
        assert_eq!(
            store.begin_idempotent(&t, "k", "h", at(60)).await.unwrap(),
            run(now),
            "every retry keeps the first attempt's time"
        );
        let saved = SavedResponse {
            status: 200,
            content_type: None,
            body: "{}".into(),
        };
        store
            .finish_idempotent(&t, "k", "h", at(60), saved.clone(), at(61))
            .await
            .unwrap();
        assert_eq!(
            store.begin_idempotent(&t, "k", "h", at(70)).await.unwrap(),
            Begin::Replay(saved)
        );

        // Another request may take a failed key, as of its own time.
        assert_eq!(
            store.begin_idempotent(&t, "j", "h", now).await.unwrap(),
            run(now)
        );
        store
            .abandon_idempotent(&t, "j", "h", now, now, at(1))
            .await
            .unwrap();
        assert_eq!(
            store
                .begin_idempotent(&t, "j", "other", at(9))
                .await
                .unwrap(),
            run(at(9))
        );
    }
}
