//! Applies a confirmed payment to its account, exactly once however often the event arrives.

use cobro::repo::{PaymentConfirmed, PaymentOutcome, RepoError, Store};

pub const DETAIL_TYPE: &str = "PaymentConfirmed";

pub struct PaymentHandler {
    pub store: Store,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Will never apply: kept by the dead-letter queue for a person to look at.
    #[error("invalid PaymentConfirmed event: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] RepoError),
}

impl PaymentHandler {
    /// Takes the event's `detail` (cobro's documented `PaymentConfirmed` schema).
    pub async fn handle(&self, detail: serde_json::Value) -> Result<PaymentOutcome, PaymentError> {
        let payment: PaymentConfirmed =
            serde_json::from_value(detail).map_err(|e| PaymentError::Invalid(e.to_string()))?;
        let outcome = self
            .store
            .apply_payment(&payment)
            .await
            .map_err(|e| match e {
                RepoError::Invalid(m) => PaymentError::Invalid(m),
                e => PaymentError::Store(e),
            })?;
        tracing::info!(account = %payment.account, payment = %payment.payment_id, ?outcome, "payment");
        Ok(outcome)
    }

    /// Takes an EventBridge envelope as delivered to an SQS target (the local stack's route).
    pub async fn handle_envelope(&self, body: &str) -> Result<PaymentOutcome, PaymentError> {
        let mut envelope: serde_json::Value =
            serde_json::from_str(body).map_err(|e| PaymentError::Invalid(e.to_string()))?;
        match envelope.get("detail-type").and_then(|v| v.as_str()) {
            Some(DETAIL_TYPE) => self.handle(envelope["detail"].take()).await,
            other => Err(PaymentError::Invalid(format!(
                "unexpected detail-type {other:?}"
            ))),
        }
    }
}
