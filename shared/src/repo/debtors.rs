//! Debtors, found by the CRM's id or by phone number (GSI1).

use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::{Debtor, DebtorId, Phone, TenantId};
use crate::ports::{table::GSI1, Query, SkRange, WriteOp};

impl Store {
    /// Creates or replaces the debtor (idempotent on the CRM's id). Returns true when created.
    pub async fn upsert_debtor(&self, debtor: &Debtor) -> Result<bool, RepoError> {
        let key = keys::debtor(&debtor.tenant, &debtor.id);
        let existed = self.table.get(&key).await?.is_some();
        let mut item = to_item(key, "debtor", debtor);
        item.insert(
            GSI1.pk.into(),
            keys::gsi1_phone(&debtor.tenant, &debtor.phone).into(),
        );
        item.insert(GSI1.sk.into(), format!("DEBTOR#{}", debtor.id).into());
        let mut entry = keys::debtor_directory(&debtor.tenant, &debtor.id).into_item();
        entry.insert("kind".into(), "debtor_entry".into());
        entry.insert("debtor".into(), debtor.id.as_str().into());
        // The profile and its directory entry change together.
        let ops = [item, entry]
            .into_iter()
            .map(|item| WriteOp::Put {
                item,
                condition: None,
            })
            .collect();
        self.table.transact_write(ops).await?;
        Ok(!existed)
    }

    pub async fn debtor(&self, t: &TenantId, d: &DebtorId) -> Result<Option<Debtor>, RepoError> {
        self.table
            .get(&keys::debtor(t, d))
            .await?
            .map(from_item)
            .transpose()
    }

    /// A page of the tenant's debtor ids, in id order.
    pub async fn debtor_ids(
        &self,
        t: &TenantId,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<(Vec<DebtorId>, Option<String>), RepoError> {
        let q = Query::table(
            keys::debtor_directory_pk(t),
            SkRange::BeginsWith("DEBTOR#".into()),
        )
        .limit(limit)
        .after(cursor);
        let page = self.table.query(q).await?;
        let ids = page
            .items
            .iter()
            .filter_map(|i| i.get("debtor")?.as_str())
            .map(DebtorId::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| RepoError::Corrupt(e.to_string()))?;
        Ok((ids, page.next))
    }

    pub async fn debtors_by_phone(
        &self,
        t: &TenantId,
        phone: &Phone,
    ) -> Result<Vec<Debtor>, RepoError> {
        let q = Query::index(
            GSI1,
            keys::gsi1_phone(t, phone),
            SkRange::BeginsWith("DEBTOR#".into()),
        );
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }
}
