//! Applies a confirmed payment to its account, exactly once however often the event arrives.

use std::sync::Arc;

use cobro::plans::PlanStatus;
use cobro::ports::{Bus, Event};
use cobro::repo::{PaymentConfirmed, PaymentOutcome, RepoError, Store};

pub const DETAIL_TYPE: &str = "PaymentConfirmed";

pub struct PaymentHandler {
    pub store: Store,
    /// Where `PaymentApplied`, `PlanCompleted` and `AccountSettled` go for CRMs; `None`
    /// publishes nothing.
    pub bus: Option<Arc<dyn Bus>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Will never apply: kept by the dead-letter queue for a person to look at.
    #[error("invalid PaymentConfirmed event: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] RepoError),
    #[error("the event bus failed: {0}")]
    Bus(String),
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
        self.announce(&payment, &outcome).await?;
        Ok(outcome)
    }

    /// What changed, for the CRM. A redelivery that changed nothing announces nothing.
    async fn announce(
        &self,
        p: &PaymentConfirmed,
        outcome: &PaymentOutcome,
    ) -> Result<(), PaymentError> {
        let Some(bus) = &self.bus else {
            return Ok(());
        };
        let PaymentOutcome::Applied {
            applied_minor,
            balance_minor,
            settled,
            credit_minor,
            plan,
            promise_kept,
        } = outcome
        else {
            return Ok(());
        };
        let base = serde_json::json!({
            "tenant": p.tenant, "account": p.account, "payment_id": p.payment_id,
            "currency": p.currency, "paid_at": p.paid_at,
        });
        let with = |extra: serde_json::Value| {
            let mut v = base.clone();
            v.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
            v
        };
        let mut events = vec![Event::new(
            "PaymentApplied",
            with(serde_json::json!({
                "amount_minor": p.amount_minor, "applied_minor": applied_minor,
                "balance_minor": balance_minor, "credit_minor": credit_minor,
                "method": p.method, "source": p.source,
                "plan": plan.as_ref().map(|(id, _)| id),
            })),
        )];
        if let Some((id, PlanStatus::Completed)) = plan {
            events.push(Event::new(
                "PlanCompleted",
                with(serde_json::json!({ "plan": id })),
            ));
        }
        if *promise_kept {
            events.push(Event::new("PromiseKept", with(serde_json::json!({}))));
        }
        if *settled {
            events.push(Event::new("AccountSettled", with(serde_json::json!({}))));
        }
        bus.publish(events)
            .await
            .map_err(|e| PaymentError::Bus(e.to_string()))
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
