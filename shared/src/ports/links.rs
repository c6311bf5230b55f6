//! `PaymentLinks`: a link where the debtor pays an account or one instalment, with an expiry:
//! Stripe Checkout, or the lender's own pay page.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, Money, TenantId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRequest {
    pub tenant: TenantId,
    pub account: AccountId,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub instalment: Option<u32>,
    pub amount: Money,
    /// What the debtor sees on the pay page.
    pub description: String,
    pub expires_at: Timestamp,
    /// The same key asks for the same link (a retried request makes no second one).
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentLink {
    pub url: String,
    /// The provider's id (a Checkout Session's `cs_…`), when there is one.
    pub provider_id: Option<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The request breaks a rule of the provider; `field` names what.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// Worth retrying (rate limited, the provider down).
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The provider refused it for good.
    #[error("refused: {0}")]
    Rejected(String),
    /// The key or the account at the provider is wrong: nothing will work until fixed.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
}

#[async_trait]
pub trait PaymentLinks: Send + Sync {
    async fn create(&self, request: &LinkRequest) -> Result<PaymentLink, LinkError>;
}
