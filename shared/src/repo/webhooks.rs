//! A tenant's webhook endpoint and the deliveries of events to it.
//!
//! A delivery is the record of truth; queue messages only wake it up. Each attempt is claimed
//! with a conditional update on the attempt count (and a short lease), so a duplicated wake-up
//! never posts the same attempt twice, and a worker that dies mid-attempt is taken over when the
//! lease lapses. Delivered ones expire after `DELIVERED_KEPT`; failed ones stay listed (a sparse
//! index) for `FAILED_KEPT`, to be sent again from the API.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{from_item, keys, to_item, written, Paged, RepoError, Store};
use crate::domain::TenantId;
use crate::ports::table::{Condition, Query, SkRange, TableError, Update, GSI1, TTL};

/// How long a delivered event is remembered: the same event published again within it is not
/// delivered again.
pub const DELIVERED_KEPT: SignedDuration = SignedDuration::from_hours(7 * 24);
/// How long a delivery that kept failing is kept for the tenant to see and send again.
pub const FAILED_KEPT: SignedDuration = SignedDuration::from_hours(30 * 24);
/// An attempt's claim: longer than the HTTP timeout, so only a dead worker's claim lapses.
pub const ATTEMPT_LEASE: SignedDuration = SignedDuration::from_secs(60);
/// How long a rotated-out secret still signs deliveries (beside the new one).
pub const ROTATION_OVERLAP: SignedDuration = SignedDuration::from_hours(24);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub tenant: TenantId,
    pub url: String,
    /// The detail types it receives; empty: every published one.
    #[serde(default)]
    pub events: Vec<String>,
    pub secret: String,
    /// The secret before the last rotation, still used to sign until `previous_until`.
    #[serde(default)]
    pub previous_secret: Option<String>,
    #[serde(default)]
    pub previous_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookEndpoint {
    pub fn wants(&self, detail_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == detail_type)
    }

    /// The secrets a delivery made at `now` is signed with: the current one, and the previous
    /// one during its overlap.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut out = vec![self.secret.as_str()];
        if let (Some(p), Some(until)) = (&self.previous_secret, self.previous_until) {
            if now < until {
                out.push(p);
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub tenant: TenantId,
    /// The event's id (`evt_…`).
    pub id: String,
    pub event_type: String,
    /// The exact JSON posted.
    pub body: String,
    pub status: DeliveryStatus,
    /// Attempts made (or claimed) so far.
    pub attempts: u32,
    /// Not before then (epoch milliseconds): the next attempt, or the lease of one in flight.
    pub next_attempt_ms: i64,
    #[serde(default)]
    pub last_status: Option<u16>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub delivered_at: Option<Timestamp>,
    #[serde(default)]
    pub failed_at: Option<Timestamp>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    Delivered {
        status: u16,
    },
    /// Try again at `next` (epoch ms).
    Retry {
        status: Option<u16>,
        error: String,
        next_ms: i64,
    },
    /// The last attempt failed: keep it as failed.
    GiveUp {
        status: Option<u16>,
        error: String,
    },
}

fn status_value(s: DeliveryStatus) -> serde_json::Value {
    serde_json::to_value(s).expect("enum")
}

fn epoch(t: Timestamp) -> i64 {
    t.as_second()
}

impl Store {
    pub async fn webhook(&self, t: &TenantId) -> Result<Option<WebhookEndpoint>, RepoError> {
        self.load(&keys::webhook(t)).await
    }

    pub async fn put_webhook(&self, w: &WebhookEndpoint) -> Result<(), RepoError> {
        let item = to_item(keys::webhook(&w.tenant), "webhook", w);
        self.table.put(item, None).await?;
        Ok(())
    }

    /// `Ok(false)` when there was none.
    pub async fn delete_webhook(&self, t: &TenantId) -> Result<bool, RepoError> {
        written(
            self.table
                .delete(&keys::webhook(t), Some(Condition::Exists))
                .await,
        )
    }

    /// Records a new delivery; when the event was seen already, returns the delivery as it is
    /// (`false`).
    pub async fn create_delivery(
        &self,
        d: &WebhookDelivery,
    ) -> Result<(WebhookDelivery, bool), RepoError> {
        self.create_once(
            keys::webhook_delivery(&d.tenant, &d.id),
            "delivery",
            &d.id,
            d,
        )
        .await
    }

    pub async fn delivery(
        &self,
        t: &TenantId,
        id: &str,
    ) -> Result<Option<WebhookDelivery>, RepoError> {
        self.load(&keys::webhook_delivery(t, id)).await
    }

    /// Claims attempt `attempts + 1` of a pending delivery that is due. `None`: another worker
    /// made or holds it, or it is not pending or not due.
    pub async fn claim_delivery_attempt(
        &self,
        d: &WebhookDelivery,
        now: Timestamp,
    ) -> Result<Option<WebhookDelivery>, RepoError> {
        let lease = now.checked_add(ATTEMPT_LEASE).unwrap_or(now);
        let condition = Condition::And(vec![
            Condition::eq("status", status_value(DeliveryStatus::Pending)),
            Condition::eq("attempts", d.attempts),
            Condition::lt("next_attempt_ms", now.as_millisecond() + 1),
        ]);
        let updates = vec![
            Update::set("attempts", d.attempts + 1),
            Update::set("next_attempt_ms", lease.as_millisecond()),
            Update::set("last_attempt_at", now.to_string()),
        ];
        match self
            .table
            .update(
                &keys::webhook_delivery(&d.tenant, &d.id),
                updates,
                Some(condition),
            )
            .await
        {
            Ok(item) => Ok(Some(from_item(item)?)),
            Err(TableError::ConditionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Records how the claimed attempt `d.attempts` ended. `Ok(false)`: the claim was lost.
    pub async fn end_delivery_attempt(
        &self,
        d: &WebhookDelivery,
        result: &AttemptResult,
        now: Timestamp,
    ) -> Result<bool, RepoError> {
        let mut updates = vec![];
        let (status, error) = match result {
            AttemptResult::Delivered { status } => {
                let expires = now.checked_add(DELIVERED_KEPT).unwrap_or(now);
                updates.extend([
                    Update::set("status", status_value(DeliveryStatus::Delivered)),
                    Update::set("delivered_at", now.to_string()),
                    Update::set(TTL, epoch(expires)),
                    Update::remove("gsi1pk"),
                    Update::remove("gsi1sk"),
                ]);
                (Some(*status), None)
            }
            AttemptResult::Retry {
                status,
                error,
                next_ms,
            } => {
                updates.push(Update::set("next_attempt_ms", *next_ms));
                (*status, Some(error))
            }
            AttemptResult::GiveUp { status, error } => {
                let expires = now.checked_add(FAILED_KEPT).unwrap_or(now);
                updates.extend([
                    Update::set("status", status_value(DeliveryStatus::Failed)),
                    Update::set("failed_at", now.to_string()),
                    Update::set(TTL, epoch(expires)),
                    Update::set("gsi1pk", keys::gsi1_failed_deliveries(&d.tenant)),
                    Update::set("gsi1sk", format!("{:015}#{}", now.as_millisecond(), d.id)),
                ]);
                (*status, Some(error))
            }
        };
        match status {
            Some(s) => updates.push(Update::set("last_status", s)),
            None => updates.push(Update::remove("last_status")),
        }
        match error {
            Some(e) => updates.push(Update::set("last_error", e.as_str())),
            None => updates.push(Update::remove("last_error")),
        }
        let condition = Condition::And(vec![
            Condition::eq("status", status_value(DeliveryStatus::Pending)),
            Condition::eq("attempts", d.attempts),
        ]);
        written(
            self.table
                .update(
                    &keys::webhook_delivery(&d.tenant, &d.id),
                    updates,
                    Some(condition),
                )
                .await,
        )
    }

    /// A failed delivery starts a new round of attempts. `None` when there is no such delivery;
    /// a delivery that is not failed is returned unchanged.
    pub async fn restart_delivery(
        &self,
        t: &TenantId,
        id: &str,
    ) -> Result<Option<(WebhookDelivery, bool)>, RepoError> {
        let updates = vec![
            Update::set("status", status_value(DeliveryStatus::Pending)),
            Update::set("attempts", 0),
            Update::set("next_attempt_ms", 0),
            Update::remove("failed_at"),
            Update::remove(TTL),
            Update::remove("gsi1pk"),
            Update::remove("gsi1sk"),
        ];
        let condition = Condition::eq("status", status_value(DeliveryStatus::Failed));
        match self
            .table
            .update(&keys::webhook_delivery(t, id), updates, Some(condition))
            .await
        {
            Ok(item) => Ok(Some((from_item(item)?, true))),
            Err(TableError::ConditionFailed) => Ok(self.delivery(t, id).await?.map(|d| (d, false))),
            Err(e) => Err(e.into()),
        }
    }

    /// The deliveries that kept failing, newest first.
    pub async fn failed_deliveries(
        &self,
        t: &TenantId,
        limit: u32,
        after: Option<String>,
    ) -> Result<Paged<WebhookDelivery>, RepoError> {
        let q = Query::index(GSI1, keys::gsi1_failed_deliveries(t), SkRange::All)
            .backward()
            .limit(limit)
            .after(after);
        self.page(q).await
    }
}
