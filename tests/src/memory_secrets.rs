//! `Secrets` in memory, changed behind the function's back as an operator's `put-secret-value`
//! is, and able to fail every read (Secrets Manager unreachable).

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cobro::ports::{Secrets, SecretsError, WhatsAppSecrets};

#[derive(Default)]
pub struct MemorySecrets {
    values: Mutex<HashMap<String, serde_json::Value>>,
    failing: AtomicBool,
}

impl MemorySecrets {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Stores `value` under `name` directly: a cache in front does not hear of it.
    pub fn set(&self, name: &str, value: &WhatsAppSecrets) {
        self.values
            .lock()
            .unwrap()
            .insert(name.into(), value.to_json());
    }

    /// Every read fails from now on, or no more.
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[async_trait]
impl Secrets for MemorySecrets {
    async fn get(&self, name: &str) -> Result<Option<serde_json::Value>, SecretsError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(SecretsError::Backend("the store is unreachable".into()));
        }
        Ok(self.values.lock().unwrap().get(name).cloned())
    }

    async fn put(&self, name: &str, value: &serde_json::Value) -> Result<(), SecretsError> {
        self.values
            .lock()
            .unwrap()
            .insert(name.into(), value.clone());
        Ok(())
    }
}
