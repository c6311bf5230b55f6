//! Debtors, found by the CRM's id or by phone number (GSI1).

use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::{Debtor, DebtorId, Phone, TenantId};
use crate::ports::{table::GSI1, Query, SkRange};

impl Store {
    /// Creates or replaces the debtor (idempotent on the CRM's id). Returns true when created.
    pub async fn upsert_debtor(&self, debtor: &Debtor) -> Result<bool, RepoError> {
        let key = keys::debtor(&debtor.tenant, &debtor.id);
        let existed = self.table.get(&key).await?.is_some();
        let mut item = to_item(key, "debtor", debtor);
        item.insert(GSI1.pk.into(), keys::gsi1_phone(&debtor.tenant, &debtor.phone).into());
        item.insert(GSI1.sk.into(), format!("DEBTOR#{}", debtor.id).into());
        self.table.put(item, None).await?;
        Ok(!existed)
    }

    pub async fn debtor(&self, t: &TenantId, d: &DebtorId) -> Result<Option<Debtor>, RepoError> {
        self.table.get(&keys::debtor(t, d)).await?.map(from_item).transpose()
    }

    pub async fn debtors_by_phone(&self, t: &TenantId, phone: &Phone) -> Result<Vec<Debtor>, RepoError> {
        let q = Query::index(GSI1, keys::gsi1_phone(t, phone), SkRange::BeginsWith("DEBTOR#".into()));
        self.query_all(q).await?.into_iter().map(from_item).collect()
    }
}
