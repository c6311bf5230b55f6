//! Tenants and the platform's routing records: WhatsApp number → tenant (API keys: api_keys.rs).

use serde::{Deserialize, Serialize};

use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::{Tenant, TenantId};
use crate::ports::{Query, SkRange};

/// A tenant's WhatsApp Business phone number, as Meta identifies it in webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatsAppNumber {
    pub phone_number_id: String,
    pub tenant: TenantId,
    pub display_phone_number: String,
    // The number's app secret and token are not here: they are in the `Secrets` port, named
    // `<prefix>whatsapp/<phone_number_id>` (a record read before this field went ignores it).
}

impl Store {
    /// Stores a tenant after checking its own rules: its strategies must be valid, and its
    /// compliance policy valid and no looser than its country's preset in any rule. The error
    /// names the field.
    pub async fn put_tenant(&self, tenant: &Tenant) -> Result<(), RepoError> {
        if let Some(book) = &tenant.strategies {
            book.validate()
                .map_err(|e| RepoError::Invalid(format!("strategies.{e}")))?;
        }
        if let Some(policy) = &tenant.policy {
            policy
                .validate()
                .map_err(|e| RepoError::Invalid(format!("policy.{e}")))?;
            let preset = crate::compliance::preset(&tenant.country).ok_or_else(|| {
                RepoError::Invalid(format!(
                    "country: no compliance preset for `{}`, so no policy can be checked",
                    tenant.country
                ))
            })?;
            policy
                .check_tightens(preset)
                .map_err(|e| RepoError::Invalid(format!("policy.{e}")))?;
        }
        tenant
            .chat
            .validate()
            .map_err(|(field, why)| RepoError::Invalid(format!("{field}: {why}")))?;
        let item = to_item(keys::tenant(&tenant.id), "tenant", tenant);
        Ok(self.table.put(item, None).await?)
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, RepoError> {
        self.load(&keys::tenant(id)).await
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, RepoError> {
        let q = Query::table("TENANTS", SkRange::BeginsWith("T#".into()));
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    pub async fn put_whatsapp_number(&self, number: &WhatsAppNumber) -> Result<(), RepoError> {
        let item = to_item(
            keys::whatsapp_number(&number.phone_number_id),
            "whatsapp_number",
            number,
        );
        Ok(self.table.put(item, None).await?)
    }

    pub async fn whatsapp_number(
        &self,
        phone_number_id: &str,
    ) -> Result<Option<WhatsAppNumber>, RepoError> {
        self.load(&keys::whatsapp_number(phone_number_id)).await
    }
}
