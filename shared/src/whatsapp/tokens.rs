//! Where the Graph API access token for a number comes from. Asked on every call, not kept by
//! the client: a warm function must pick up a rotated token before the old one is revoked, and
//! a number registered with its own credentials must call with its own token.

use async_trait::async_trait;
use std::sync::Arc;

use crate::ports::secrets::{whatsapp_number, DeploymentSecrets, Secrets, SecretsError};
use crate::ports::ChannelError;

#[async_trait]
pub trait Tokens: Send + Sync {
    /// The access token to call the Graph API with for `phone_number_id`.
    async fn token(&self, phone_number_id: &str) -> Result<String, ChannelError>;
}

/// One token for every number, fixed at start: the local stack, tests, `WHATSAPP_ACCESS_TOKEN`.
pub struct FixedToken(String);

impl FixedToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

#[async_trait]
impl Tokens for FixedToken {
    async fn token(&self, _: &str) -> Result<String, ChannelError> {
        Ok(self.0.clone())
    }
}

/// From the secrets store: the number's own `access_token` (`<prefix>whatsapp/<id>`) when it
/// has a non-empty one, else the deployment secret's. Both are read on every call through the
/// `CachedSecrets` given, so a rotation is picked up within its TTL, and a store that fails
/// for a while is bridged by the token read last (its grace) before sends fail, transiently.
pub struct SecretTokens {
    secrets: Arc<dyn Secrets>,
    deployment: DeploymentSecrets,
    prefix: String,
}

impl SecretTokens {
    /// `secrets` should be a `CachedSecrets`; `deployment` names the deployment's secret.
    pub fn new(
        secrets: Arc<dyn Secrets>,
        deployment: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            deployment: DeploymentSecrets::Stored {
                secrets: secrets.clone(),
                name: deployment.into(),
            },
            secrets,
            prefix: prefix.into(),
        }
    }
}

/// A store that cannot be read now says nothing about the account: retried, never a stop (a
/// stop would need an operator to resume the tenant).
fn unreadable(e: SecretsError) -> ChannelError {
    ChannelError::transient(format!("cannot read the WhatsApp access token: {e}"))
}

#[async_trait]
impl Tokens for SecretTokens {
    async fn token(&self, phone_number_id: &str) -> Result<String, ChannelError> {
        let own = whatsapp_number(&*self.secrets, &self.prefix, phone_number_id)
            .await
            .map_err(unreadable)?
            .map(|s| s.access_token)
            .filter(|t| !t.is_empty());
        if let Some(token) = own {
            return Ok(token);
        }
        let token = self
            .deployment
            .get()
            .await
            .map_err(unreadable)?
            .access_token;
        if token.is_empty() {
            // Emptied after start (a rotation half done): calling Graph without a token would
            // stop the tenant on error 190.
            return Err(ChannelError::transient(
                "the deployment's WhatsApp secret has no access_token",
            ));
        }
        Ok(token)
    }
}
