//! Pages of the CRM API's lists. The cursor is the table's own (opaque, from the last key
//! read); a query only ever reads the caller's tenant's partition, so a cursor cannot reach
//! another tenant's items.

use super::{from_item, keys, RepoError, Store, SuspendedPayment};
use crate::domain::{ConversationMessage, Debtor, DebtorId, TenantId};
use crate::ports::{Query, SkRange, TableError};

/// One page of a list, and where the next one starts (none: this is the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl Store {
    /// The tenant's debtors, by id.
    pub async fn debtors_page(
        &self,
        t: &TenantId,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<Paged<Debtor>, RepoError> {
        let (ids, next) = self
            .debtor_ids(t, limit, cursor)
            .await
            .map_err(bad_cursor)?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            // The directory is written in the debtor's transaction, so the profile exists.
            if let Some(d) = self.debtor(t, &id).await? {
                items.push(d);
            }
        }
        Ok(Paged { items, next })
    }

    /// Payments in suspense, oldest first.
    pub async fn suspense_page(
        &self,
        t: &TenantId,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<Paged<SuspendedPayment>, RepoError> {
        let q = Query::table(keys::suspense_pk(t), SkRange::All)
            .limit(limit)
            .after(cursor);
        self.page(q).await
    }

    /// A debtor's conversation, newest first.
    pub async fn conversation_page(
        &self,
        t: &TenantId,
        d: &DebtorId,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<Paged<ConversationMessage>, RepoError> {
        let q = Query::table(keys::debtor_pk(t, d), SkRange::BeginsWith("MSG#".into()))
            .backward()
            .limit(limit)
            .after(cursor);
        self.page(q).await
    }

    /// One page of `q`'s items, a bad cursor reported as such.
    pub(super) async fn page<T: serde::de::DeserializeOwned>(
        &self,
        q: Query,
    ) -> Result<Paged<T>, RepoError> {
        let page = self
            .table
            .query(q)
            .await
            .map_err(RepoError::from)
            .map_err(bad_cursor)?;
        Ok(Paged {
            items: page
                .items
                .into_iter()
                .map(from_item)
                .collect::<Result<_, _>>()?,
            next: page.next,
        })
    }
}

/// The only invalid part of these queries a caller controls is the cursor.
fn bad_cursor(e: RepoError) -> RepoError {
    match e {
        RepoError::Table(TableError::Invalid(why)) => RepoError::Invalid(format!(
            "cursor: {why}; pass a `next_cursor` from this list"
        )),
        e => e,
    }
}
