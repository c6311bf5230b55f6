//! Repositories, written once over `Table`: the same code runs on SQLite and on DynamoDB.

pub mod keys;

mod accounts;
mod actions;
mod announcements;
mod api_keys;
mod attempts;
mod channel_state;
mod chat;
mod conversations;
mod credit;
mod debtors;
mod due;
mod exports;
mod idempotency;
mod inbound;
mod listing;
mod payment_backfill;
mod payments;
mod plans;
mod rows;
mod template_refusals;
mod tenants;
mod webhooks;

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::sync::Arc;

use crate::ports::{Condition, Item, Key, Query, Table, TableError};

pub use accounts::{currency_change, AccountView, Decision};
pub use actions::AccountAction;
pub use announcements::Announcement;
pub use api_keys::{ApiKeyRecord, IssuedKey, Scope, UnknownScope};
pub use attempts::{Applied, Claim, Delivery, OutboxEntry};
pub use channel_state::{ChannelStop, LoggedContact};
pub use chat::{
    ChatRecord, ChatReply, Handoff, Opened, OptOutNoticed, PendingStep, ReplyStatus, STEPPED_KEPT,
};
pub use due::DueEntry;
pub use exports::{ExportClaim, LedgerEntry, PaymentsPage, EXPORT_LEASE};
pub use idempotency::{Begin, SavedResponse, IDEMPOTENCY_FOR, IN_FLIGHT_LEASE};
pub use inbound::{SeenClaim, SeenLease, SmsNumber, SEEN_FOR, SEEN_LEASE};
pub use listing::Paged;
pub use payment_backfill::{BackfillConflict, BackfillOptions, BackfillStopped, PaymentBackfill};
pub use payments::{
    paid_at_too_late, PaymentConfirmed, PaymentOutcome, Resolved, SuspendedPayment, PAID_AT_LEEWAY,
};
pub use plans::Accepted;
pub use rows::RowWritten;
pub use template_refusals::{TemplateRefusal, CLEARED_KEPT};
pub use tenants::WhatsAppNumber;
pub use webhooks::{
    AttemptResult, DeliveryStatus, WebhookDelivery, WebhookEndpoint, ATTEMPT_LEASE, DELIVERED_KEPT,
    FAILED_KEPT, ROTATION_OVERLAP,
};

/// The attribute that names what an item is, for readers of a mixed partition.
pub const KIND: &str = "kind";

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{0} not found")]
    NotFound(String),
    /// Someone else changed the item first; reload and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// One field of the request is to blame (an account's currency changed).
    #[error("`{field}`: {detail}")]
    InvalidField { field: &'static str, detail: String },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Clone)]
pub struct Store {
    table: Arc<dyn Table>,
}

impl Store {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub fn table(&self) -> &dyn Table {
        self.table.as_ref()
    }

    /// The entity stored under `key`, if any.
    async fn load<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, RepoError> {
        self.table.get(key).await?.map(from_item).transpose()
    }

    /// Writes `value` (item kind `kind`, id `id`) under `key` unless an item is there already.
    /// Returns what is stored and whether this call wrote it: a repeat (a redelivered message)
    /// gets the first one's record, as it is now, instead of replacing it.
    async fn create_once<T>(
        &self,
        key: Key,
        kind: &str,
        id: &str,
        value: &T,
    ) -> Result<(T, bool), RepoError>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        let item = to_item(key.clone(), kind, value);
        if written(self.table.put(item, Some(Condition::NotExists)).await)? {
            return Ok((value.clone(), true));
        }
        let existing = self
            .load(&key)
            .await?
            .ok_or_else(|| RepoError::Conflict(format!("{kind} {id} vanished")))?;
        Ok((existing, false))
    }

    /// Every item of a query, following cursors.
    async fn query_all(&self, mut q: Query) -> Result<Vec<Item>, RepoError> {
        let mut items = Vec::new();
        loop {
            let page = self.table.query(q.clone()).await?;
            items.extend(page.items);
            match page.next {
                Some(c) => q.cursor = Some(c),
                None => return Ok(items),
            }
        }
    }
}

/// An entity as an item: its fields, its key and its kind.
fn to_item<T: Serialize>(key: Key, kind: &str, value: &T) -> Item {
    let Value::Object(mut item) =
        serde_json::to_value(value).expect("entities serialize to objects")
    else {
        unreachable!("entities serialize to objects")
    };
    item.extend(key.into_item());
    item.insert(KIND.into(), kind.into());
    item
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, RepoError> {
    serde_json::from_value(Value::Object(item)).map_err(|e| RepoError::Corrupt(e.to_string()))
}

/// Whether a conditional write went through: its condition failing is an answer (`false`: the
/// item was there already, was not there, or had moved on), not an error.
fn written<T>(result: Result<T, TableError>) -> Result<bool, RepoError> {
    match result {
        Ok(_) => Ok(true),
        Err(TableError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn kind_of(item: &Item) -> &str {
    item.get(KIND).and_then(Value::as_str).unwrap_or_default()
}
