//! `Secrets`: small JSON documents by name, as AWS Secrets Manager keeps them (WhatsApp tokens
//! and app secrets). Values never reach a log: `WhatsAppSecrets` prints redacted.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
// tokio's: std's outside a test whose clock is paused.
use tokio::time::Instant;

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
/// `CachedSecrets`, so a rotation is picked up within its TTL without a redeploy (and a failing
/// store is bridged by the last value for its grace).
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
///
/// When the store fails after `ttl` (an outage, throttling), the last value read is used for up
/// to `grace` more, with a warning: it is very likely still valid, and failing every send until
/// the store is back would stop all traffic for nothing. Only then does the error show. Callers
/// asking for the same name while it is being read wait for that read and share its outcome
/// (one read for a burst after expiry), and a failed read is not repeated for `retry`.
pub struct CachedSecrets {
    inner: Arc<dyn Secrets>,
    ttl: Duration,
    grace: Duration,
    retry: Duration,
    /// One slot per name, each behind its own async lock, held across its read.
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

#[derive(Default)]
struct Slot {
    /// The last value read, and when.
    read: Option<(Instant, Option<serde_json::Value>)>,
    /// The last read that failed, and when.
    failed: Option<(Instant, SecretsError)>,
}

/// Long enough that a warm function rarely calls Secrets Manager, short enough for rotation.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// How long past `ttl` the last value stands in for a store that cannot be read.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
/// How long a failed read's outcome is reused before the store is asked again.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(5);

impl CachedSecrets {
    pub fn new(inner: Arc<dyn Secrets>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            grace: DEFAULT_GRACE,
            retry: DEFAULT_RETRY,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// How long past `ttl` the last value is used while the store fails (`DEFAULT_GRACE`).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long a failed read's outcome is reused before asking again (`DEFAULT_RETRY`).
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// After a failed read: the last value if the store's failure is one (not a bad name) and
    /// the value is within `ttl + grace`, else the error.
    fn stale(
        &self,
        slot: &Slot,
        error: SecretsError,
    ) -> Result<(Option<serde_json::Value>, Duration), SecretsError> {
        match (&error, &slot.read) {
            (SecretsError::Backend(_), Some((at, value)))
                if at.elapsed() < self.ttl.saturating_add(self.grace) =>
            {
                Ok((value.clone(), at.elapsed()))
            }
            _ => Err(error),
        }
    }
}

#[async_trait]
impl Secrets for CachedSecrets {
    async fn get(&self, name: &str) -> Result<Option<serde_json::Value>, SecretsError> {
        let asked = Instant::now();
        let slot = self
            .slots
            .lock()
            .expect("not poisoned")
            .entry(name.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some((at, value)) = &slot.read {
            if at.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        // A read that failed while this caller waited for it, or just before: its outcome,
        // rather than another call to a store that is failing.
        let shared = slot
            .failed
            .as_ref()
            .filter(|(at, _)| *at >= asked || at.elapsed() < self.retry)
            .map(|(_, e)| e.clone());
        if let Some(error) = shared {
            return self.stale(&slot, error).map(|(value, _)| value);
        }
        match self.inner.get(name).await {
            Ok(value) => {
                slot.read = Some((Instant::now(), value.clone()));
                slot.failed = None;
                Ok(value)
            }
            Err(error) => {
                slot.failed = Some((Instant::now(), error.clone()));
                let (value, age) = self.stale(&slot, error.clone())?;
                tracing::warn!(
                    secret = name,
                    error = %error,
                    age_s = age.as_secs(),
                    "the secret store failed; using the value last read"
                );
                Ok(value)
            }
        }
    }

    async fn put(&self, name: &str, value: &serde_json::Value) -> Result<(), SecretsError> {
        self.inner.put(name, value).await?;
        // A read in flight finishes on the slot removed: the next get reads the new value.
        self.slots.lock().expect("not poisoned").remove(name);
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

    /// A store that counts its reads, takes a while to answer, and fails on demand.
    #[derive(Default)]
    struct Flaky {
        reads: AtomicU32,
        failing: std::sync::atomic::AtomicBool,
        value: Mutex<Option<serde_json::Value>>,
    }

    #[async_trait]
    impl Secrets for Flaky {
        async fn get(&self, _: &str) -> Result<Option<serde_json::Value>, SecretsError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(SecretsError::Backend("throttled".into()));
            }
            Ok(self.value.lock().unwrap().clone())
        }
        async fn put(&self, _: &str, v: &serde_json::Value) -> Result<(), SecretsError> {
            *self.value.lock().unwrap() = Some(v.clone());
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_store_is_bridged_by_the_last_value_for_the_grace_only() {
        let inner = Arc::new(Flaky::default());
        *inner.value.lock().unwrap() = Some(serde_json::json!({"access_token": "t1"}));
        let cached = CachedSecrets::new(inner.clone(), Duration::from_secs(300))
            .with_grace(Duration::from_secs(3600))
            .with_retry(Duration::from_secs(5));
        let t1 = Some(serde_json::json!({"access_token": "t1"}));
        assert_eq!(cached.get("wa").await.unwrap(), t1);

        inner.failing.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(
            cached.get("wa").await.unwrap(),
            t1,
            "expired, the store failing"
        );
        assert_eq!(inner.reads.load(Ordering::SeqCst), 2);
        // Within `retry` the failure is not asked again.
        assert_eq!(cached.get("wa").await.unwrap(), t1);
        assert_eq!(inner.reads.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(cached.get("wa").await.unwrap(), t1);
        assert_eq!(
            inner.reads.load(Ordering::SeqCst),
            3,
            "asked again after retry"
        );

        // Past the grace, the error shows.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(
            cached.get("wa").await,
            Err(SecretsError::Backend("throttled".into()))
        );

        // The store back: its value, fresh for another ttl.
        tokio::time::advance(Duration::from_secs(6)).await;
        inner.failing.store(false, Ordering::SeqCst);
        *inner.value.lock().unwrap() = Some(serde_json::json!({"access_token": "t2"}));
        assert_eq!(
            cached.get("wa").await.unwrap(),
            Some(serde_json::json!({"access_token": "t2"}))
        );

        // Nothing read yet: nothing to bridge with.
        inner.failing.store(true, Ordering::SeqCst);
        assert!(cached.get("other").await.is_err());
        // A bad name is not the store failing: never bridged.
        let named = CachedSecrets::new(Arc::new(BadName::default()), Duration::ZERO);
        assert!(named.get("x").await.is_ok());
        assert_eq!(
            named.get("x").await,
            Err(SecretsError::InvalidName("x".into()))
        );
    }

    /// Answers once, then calls the name invalid.
    #[derive(Default)]
    struct BadName(std::sync::atomic::AtomicBool);

    #[async_trait]
    impl Secrets for BadName {
        async fn get(&self, name: &str) -> Result<Option<serde_json::Value>, SecretsError> {
            if self.0.swap(true, Ordering::SeqCst) {
                Err(SecretsError::InvalidName(name.into()))
            } else {
                Ok(None)
            }
        }
        async fn put(&self, _: &str, _: &serde_json::Value) -> Result<(), SecretsError> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_after_expiry_reads_the_store_once() {
        let inner = Arc::new(Flaky::default());
        *inner.value.lock().unwrap() = Some(serde_json::json!({"k": 1}));
        let cached = Arc::new(CachedSecrets::new(inner.clone(), Duration::from_secs(300)));
        cached.get("wa").await.unwrap();
        tokio::time::advance(Duration::from_secs(301)).await;
        *inner.value.lock().unwrap() = Some(serde_json::json!({"k": 2}));
        let burst = |cached: &Arc<CachedSecrets>| {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..20 {
                let cached = cached.clone();
                tasks.spawn(async move { cached.get("wa").await });
            }
            tasks.join_all()
        };
        let got = burst(&cached).await;
        assert!(got
            .iter()
            .all(|v| v.as_ref().unwrap() == &Some(serde_json::json!({"k": 2}))));
        assert_eq!(inner.reads.load(Ordering::SeqCst), 2, "one read for twenty");

        // A failing store: one read for the burst too, each caller bridged.
        tokio::time::advance(Duration::from_secs(301)).await;
        inner.failing.store(true, Ordering::SeqCst);
        let got = burst(&cached).await;
        assert!(got
            .iter()
            .all(|v| v.as_ref().unwrap() == &Some(serde_json::json!({"k": 2}))));
        assert_eq!(
            inner.reads.load(Ordering::SeqCst),
            3,
            "one failed read for twenty"
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
