//! `Secrets`: small JSON documents by name, as AWS Secrets Manager keeps them (WhatsApp tokens
//! and app secrets). Values never reach a log: `WhatsAppSecrets` prints redacted.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("invalid secret name `{0}`")]
    InvalidName(String),
    #[error("the secret `{name}` is not JSON with the expected keys: {reason}")]
    Malformed { name: String, reason: String },
    #[error("the secret store failed: {0}")]
    Backend(String),
    #[error("there is no secret `{0}`")]
    Missing(String),
}

#[async_trait]
pub trait Secrets: Send + Sync {
    /// The secret's JSON, or `None` when there is no secret by that name.
    async fn get(&self, name: &str) -> Result<Option<serde_json::Value>, SecretsError>;

    /// Creates the secret or stores a new version of it.
    async fn put(&self, name: &str, value: &serde_json::Value) -> Result<(), SecretsError>;
}

/// Names as Secrets Manager allows them: letters, digits and `/_+=.@-`, at most 512.
pub fn check_name(name: &str) -> Result<(), SecretsError> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
        && !name.split('/').any(|p| p == "." || p == "..");
    if ok {
        Ok(())
    } else {
        Err(SecretsError::InvalidName(name.to_string()))
    }
}

/// A WhatsApp deployment's or number's secrets, with the JSON keys the template's secrets use.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WhatsAppSecrets {
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub app_secret: String,
    #[serde(default)]
    pub verify_token: String,
}

impl std::fmt::Debug for WhatsAppSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("WhatsAppSecrets")
            .field("access_token", &shown(&self.access_token))
            .field("app_secret", &shown(&self.app_secret))
            .field("verify_token", &shown(&self.verify_token))
            .finish()
    }
}

impl WhatsAppSecrets {
    pub fn from_json(name: &str, value: serde_json::Value) -> Result<Self, SecretsError> {
        serde_json::from_value(value).map_err(|e| SecretsError::Malformed {
            name: name.to_string(),
            reason: e.to_string(),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("serializes")
    }
}

/// The name of a WhatsApp number's secret: `<prefix>whatsapp/<phone_number_id>`.
pub fn whatsapp_number_secret(prefix: &str, phone_number_id: &str) -> String {
    format!("{prefix}whatsapp/{phone_number_id}")
}

/// A number's WhatsApp secrets through any `Secrets`.
pub async fn whatsapp_number(
    secrets: &dyn Secrets,
    prefix: &str,
    phone_number_id: &str,
) -> Result<Option<WhatsAppSecrets>, SecretsError> {
    let name = whatsapp_number_secret(prefix, phone_number_id);
    check_name(&name)?;
    secrets
        .get(&name)
        .await?
        .map(|v| WhatsAppSecrets::from_json(&name, v))
        .transpose()
}

/// The deployment's WhatsApp secrets as a function uses them: fixed values (environment
/// variables: the local stack, tests), or a stored secret read on every use through a
/// `CachedSecrets`, so a rotation is picked up within its TTL without a redeploy.
#[derive(Clone)]
pub enum DeploymentSecrets {
    Fixed(WhatsAppSecrets),
    Stored {
        /// A `CachedSecrets`: every use reads it.
        secrets: Arc<dyn Secrets>,
        name: String,
    },
}

impl DeploymentSecrets {
    /// The values now; a stored secret that is gone is an error, not empty values.
    pub async fn get(&self) -> Result<WhatsAppSecrets, SecretsError> {
        match self {
            Self::Fixed(values) => Ok(values.clone()),
            Self::Stored { secrets, name } => {
                let value = secrets
                    .get(name)
                    .await?
                    .ok_or_else(|| SecretsError::Missing(name.clone()))?;
                WhatsAppSecrets::from_json(name, value)
            }
        }
    }
}

/// Reads through to another `Secrets` at most once per name per `ttl`: a Lambda execution
/// environment reads each secret once, and still picks up a rotation within `ttl`. Absent
/// secrets are remembered too, so unknown names do not cost a call each.
pub struct CachedSecrets {
    inner: Arc<dyn Secrets>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<serde_json::Value>)>>,
}

/// Long enough that a warm function rarely calls Secrets Manager, short enough for rotation.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

impl CachedSecrets {
    pub fn new(inner: Arc<dyn Secrets>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Secrets for CachedSecrets {
    async fn get(&self, name: &str) -> Result<Option<serde_json::Value>, SecretsError> {
        if let Some((at, value)) = self.cache.lock().expect("not poisoned").get(name) {
            if at.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        let value = self.inner.get(name).await?;
        self.cache
            .lock()
            .expect("not poisoned")
            .insert(name.to_string(), (Instant::now(), value.clone()));
        Ok(value)
    }

    async fn put(&self, name: &str, value: &serde_json::Value) -> Result<(), SecretsError> {
        self.inner.put(name, value).await?;
        self.cache.lock().expect("not poisoned").remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Default)]
    struct Counting {
        reads: AtomicU32,
        value: Mutex<Option<serde_json::Value>>,
    }

    #[async_trait]
    impl Secrets for Counting {
        async fn get(&self, _: &str) -> Result<Option<serde_json::Value>, SecretsError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.value.lock().unwrap().clone())
        }
        async fn put(&self, _: &str, v: &serde_json::Value) -> Result<(), SecretsError> {
            *self.value.lock().unwrap() = Some(v.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_cache_reads_once_per_ttl_and_forgets_on_put() {
        let inner = Arc::new(Counting::default());
        let cached = CachedSecrets::new(inner.clone(), Duration::from_secs(60));
        assert_eq!(cached.get("a").await.unwrap(), None);
        assert_eq!(cached.get("a").await.unwrap(), None);
        assert_eq!(inner.reads.load(Ordering::SeqCst), 1, "absence is cached");
        cached.put("a", &serde_json::json!({"k": 1})).await.unwrap();
        assert_eq!(
            cached.get("a").await.unwrap(),
            Some(serde_json::json!({"k": 1}))
        );
        assert_eq!(inner.reads.load(Ordering::SeqCst), 2);
        let expiring = CachedSecrets::new(inner.clone(), Duration::ZERO);
        expiring.get("a").await.unwrap();
        expiring.get("a").await.unwrap();
        assert_eq!(
            inner.reads.load(Ordering::SeqCst),
            4,
            "a zero TTL never caches"
        );
    }

    #[test]
    fn names_and_redaction() {
        assert!(check_name("cobro-prod/whatsapp/1122334455").is_ok());
        assert!(check_name("a/../b").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("").is_err());
        let s = WhatsAppSecrets {
            access_token: "EAAtoken".into(),
            app_secret: "s3cret".into(),
            verify_token: String::new(),
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("EAAtoken") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert_eq!(whatsapp_number_secret("p/", "12"), "p/whatsapp/12");
        let back = WhatsAppSecrets::from_json("x", s.to_json()).unwrap();
        assert_eq!(back, s);
        assert!(WhatsAppSecrets::from_json("x", serde_json::json!([1])).is_err());
    }
}
