//! API keys of the CRM API: issued per tenant with scopes, shown once, stored only as the
//! SHA-256 of the secret, revocable.
//!
//! Two items per key, written together: the lookup item under the hash (the one read a request
//! makes, a single get) and the tenant's directory item (for listing and revoking by id).

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::TenantId;
use crate::ports::{Condition, Query, SkRange, TableError, Update, WriteOp};

/// What a key may do. Routes name the scope they need; `Admin` grants every scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    AccountsRead,
    AccountsWrite,
    PaymentsWrite,
    Exports,
    Agent,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::AccountsRead,
        Scope::AccountsWrite,
        Scope::PaymentsWrite,
        Scope::Exports,
        Scope::Agent,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AccountsRead => "accounts:read",
            Scope::AccountsWrite => "accounts:write",
            Scope::PaymentsWrite => "payments:write",
            Scope::Exports => "exports",
            Scope::Agent => "agent",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}` (known: accounts:read, accounts:write, payments:write, exports, agent, admin)")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_string()))
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A key as stored and listed: never its secret nor its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub tenant: TenantId,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<jiff::Timestamp>,
}

impl ApiKeyRecord {
    /// Whether the key grants the scope (`admin` grants them all).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// A key just issued: the secret is in here and nowhere else, ever.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub id: String,
    pub secret: String,
    pub record: ApiKeyRecord,
}

/// The attribute of the directory item that points at the lookup item.
const HASH: &str = "hash";

impl Store {
    /// Issues a new key with a random secret (`cobro_<id>_<32 random bytes, base64url>`).
    pub async fn issue_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: &[Scope],
        now: jiff::Timestamp,
    ) -> Result<IssuedKey, RepoError> {
        let id = hex::encode(random_bytes::<8>()?);
        let secret = format!(
            "cobro_{id}_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
        );
        let record = self
            .store_api_key(tenant, &id, name, &secret, scopes, now)
            .await?;
        Ok(IssuedKey { id, secret, record })
    }

    /// Stores a key whose secret the operator chose (the local stack's demo key, tests).
    /// Issuing the same secret again replaces its scopes and name under the same id.
    pub async fn put_api_key_with_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        secret: &str,
        scopes: &[Scope],
        now: jiff::Timestamp,
    ) -> Result<ApiKeyRecord, RepoError> {
        if secret.trim().len() < 8 {
            return Err(RepoError::Invalid(
                "an API key secret needs at least 8 characters".into(),
            ));
        }
        // A stable id from the hash, so seeding twice does not list the key twice.
        let id = hash_secret(secret)[..16].to_string();
        self.store_api_key(tenant, &id, name, secret, scopes, now)
            .await
    }

    async fn store_api_key(
        &self,
        tenant: &TenantId,
        id: &str,
        name: &str,
        secret: &str,
        scopes: &[Scope],
        now: jiff::Timestamp,
    ) -> Result<ApiKeyRecord, RepoError> {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let record = ApiKeyRecord {
            id: id.to_string(),
            tenant: tenant.clone(),
            name: name.to_string(),
            scopes,
            created_at: now,
            revoked_at: None,
        };
        let hash = hash_secret(secret);
        let mut directory = to_item(keys::api_key_of_tenant(tenant, id), "api_key", &record);
        directory.insert(HASH.into(), hash.clone().into());
        let lookup = to_item(keys::api_key(&hash), "api_key", &record);
        self.table
            .transact_write(vec![
                WriteOp::Put {
                    item: lookup,
                    condition: None,
                },
                WriteOp::Put {
                    item: directory,
                    condition: None,
                },
            ])
            .await?;
        Ok(record)
    }

    /// Revokes a key of the tenant: from then on it gets 401. False when the tenant has no such
    /// key. Revoking twice keeps the first time.
    pub async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
        now: jiff::Timestamp,
    ) -> Result<bool, RepoError> {
        let dir_key = keys::api_key_of_tenant(tenant, key_id);
        let Some(item) = self.table.get(&dir_key).await? else {
            return Ok(false);
        };
        if item.get("revoked_at").is_some_and(|v| !v.is_null()) {
            return Ok(true);
        }
        let hash = item
            .get(HASH)
            .and_then(|v| v.as_str())
            .ok_or_else(|| RepoError::Corrupt(format!("API key `{key_id}` has no hash")))?;
        let at = serde_json::to_value(now).expect("timestamps serialize");
        let update = |key| WriteOp::Update {
            key,
            updates: vec![Update::Set("revoked_at".into(), at.clone())],
            condition: Some(Condition::Exists),
        };
        match self
            .table
            .transact_write(vec![update(dir_key), update(keys::api_key(hash))])
            .await
        {
            Ok(()) => Ok(true),
            Err(TableError::TransactionCanceled(_)) => Err(RepoError::Corrupt(format!(
                "API key `{key_id}` lacks its lookup item"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's keys, revoked ones included, without secrets or hashes.
    pub async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, RepoError> {
        let q = Query::table(
            keys::api_keys_of_tenant_pk(tenant),
            SkRange::BeginsWith("KEY#".into()),
        );
        self.query_all(q)
            .await?
            .into_iter()
            .map(|mut item| {
                item.remove(HASH);
                from_item(item)
            })
            .collect()
    }

    /// The key a request presents, by the hash of its secret: one get. Revoked keys are
    /// returned too (with `revoked_at`); the caller refuses them.
    pub async fn api_key(&self, secret: &str) -> Result<Option<ApiKeyRecord>, RepoError> {
        self.load(&keys::api_key(&hash_secret(secret))).await
    }
}

fn hash_secret(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], RepoError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| RepoError::Table(TableError::Backend(format!("no randomness: {e}"))))?;
    Ok(buf)
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::adapters::sqlite::SqliteStore;
    use std::sync::Arc;

    fn store() -> Store {
        let sqlite = SqliteStore::open_in_memory().expect("sqlite");
        Store::new(Arc::new(sqlite.table()))
    }

    #[test]
    fn scopes_round_trip_as_strings() {
        for s in Scope::ALL {
            assert_eq!(s.to_string().parse::<Scope>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!("accounts:delete".parse::<Scope>().is_err());
        assert!(serde_json::from_str::<Scope>("\"*\"").is_err());
    }

    #[tokio::test]
    async fn issued_keys_are_found_by_secret_listed_without_it_and_revoked() {
        let store = store();
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let a = TenantId::parse("acme").unwrap();
        let b = TenantId::parse("other").unwrap();
        let issued = store
            .issue_api_key(&a, "crm", &[Scope::AccountsWrite, Scope::AccountsRead], now)
            .await
            .unwrap();
        let other = store
            .issue_api_key(&a, "crm", &[Scope::AccountsWrite], now)
            .await
            .unwrap();
        assert_ne!(issued.secret, other.secret);
        assert_ne!(issued.id, other.id);
        assert!(issued.secret.starts_with(&format!("cobro_{}_", issued.id)));
        assert!(issued.secret.len() > 40);

        let found = store.api_key(&issued.secret).await.unwrap().unwrap();
        assert_eq!(found, issued.record);
        assert!(found.allows(Scope::AccountsRead));
        assert!(!found.allows(Scope::PaymentsWrite));
        assert!(store.api_key("cobro_nope").await.unwrap().is_none());

        let listed = store.list_api_keys(&a).await.unwrap();
        assert_eq!(listed.len(), 2);
        let raw = serde_json::to_string(&listed).unwrap();
        assert!(!raw.contains(&issued.secret));
        assert!(!raw.contains(&hash_secret(&issued.secret)));
        assert!(store.list_api_keys(&b).await.unwrap().is_empty());

        // Another tenant cannot revoke it.
        assert!(!store.revoke_api_key(&b, &issued.id, now).await.unwrap());
        assert!(store.revoke_api_key(&a, &issued.id, now).await.unwrap());
        let later = now + jiff::SignedDuration::from_secs(60);
        assert!(store.revoke_api_key(&a, &issued.id, later).await.unwrap());
        let found = store.api_key(&issued.secret).await.unwrap().unwrap();
        assert_eq!(found.revoked_at, Some(now));
        assert!(!store
            .api_key(&other.secret)
            .await
            .unwrap()
            .unwrap()
            .is_revoked());
        assert!(!store.revoke_api_key(&a, "missing", now).await.unwrap());
    }

    #[tokio::test]
    async fn a_chosen_secret_is_stored_once_and_admin_allows_all() {
        let store = store();
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let t = TenantId::parse("demo").unwrap();
        store
            .put_api_key_with_secret(&t, "demo", "cobro-demo-key", &[Scope::Admin], now)
            .await
            .unwrap();
        store
            .put_api_key_with_secret(&t, "demo", "cobro-demo-key", &Scope::ALL, now)
            .await
            .unwrap();
        assert_eq!(store.list_api_keys(&t).await.unwrap().len(), 1);
        let k = store.api_key("cobro-demo-key").await.unwrap().unwrap();
        assert!(Scope::ALL.iter().all(|s| k.allows(*s)));
        assert!(store
            .put_api_key_with_secret(&t, "x", "short", &[Scope::Admin], now)
            .await
            .is_err());
    }
}
