//! Applies a confirmed payment to its account, exactly once however often the event arrives.

pub mod stripe;

use std::sync::Arc;

use stripe::StripeEvent;

use cobro::collect::templates::{receipt, RECEIPT_TEMPLATE};
use cobro::domain::{AttemptStatus, ContactAttempt, Money};
use cobro::events::{
    AccountSettled, DomainEvent, PaymentApplied, PaymentRef, PlanCompleted, PromiseKept,
};
use cobro::outbound::OutboundMessage;
use cobro::plans::PlanStatus;
use cobro::ports::{Bus, Clock, Outgoing, Queue};
use cobro::repo::{PaymentConfirmed, PaymentOutcome, RepoError, Store};

pub const DETAIL_TYPE: &str = "PaymentConfirmed";

pub struct PaymentHandler {
    pub store: Store,
    /// Where `PaymentApplied`, `PlanCompleted` and `AccountSettled` go for CRMs; `None`
    /// publishes nothing.
    pub bus: Option<Arc<dyn Bus>>,
    /// The outbound queue, for the receipt to the debtor; `None` sends none.
    pub outbound: Option<Arc<dyn Queue>>,
    /// Now: a `paid_at` later than this (and a little leeway) is kept in suspense, and the
    /// account's next decision is due from it.
    pub clock: Arc<dyn Clock>,
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
        cobro::logs::record_tenant(&payment.tenant);
        let outcome = self
            .store
            .apply_payment(&payment, self.clock.now())
            .await
            .map_err(|e| match e {
                RepoError::Invalid(_) | RepoError::InvalidField { .. } => {
                    PaymentError::Invalid(e.to_string())
                }
                e => PaymentError::Store(e),
            })?;
        tracing::info!(account = %payment.account, payment = %payment.payment_id, ?outcome, "payment");
        if matches!(outcome, PaymentOutcome::Applied { .. }) {
            cobro::metrics::count(cobro::metrics::PAYMENTS_APPLIED, 1);
        }
        // A redelivery does what the first delivery did again, from the payment as it was
        // first applied: the same details, so the same event ids, and the same receipt (kept
        // once on the outbox). An announcement or a receipt that failed after the payment was
        // applied is not lost.
        let (applied, applied_outcome) = match outcome {
            PaymentOutcome::Duplicate => match self.store.applied_payment(&payment).await? {
                Some(first) => first,
                None => return Ok(PaymentOutcome::Duplicate),
            },
            ref o => (payment, o.clone()),
        };
        self.announce(&applied, &applied_outcome).await?;
        if let PaymentOutcome::Applied { balance_minor, .. } = &applied_outcome {
            self.queue_receipt(&applied, *balance_minor).await?;
        }
        Ok(outcome)
    }

    /// A receipt to the debtor on the first channel the tenant uses and the debtor consents
    /// to, committed on the outbox (once per payment) and queued for the sender, which applies
    /// the time rules, consent and opt-outs like for any message.
    async fn queue_receipt(
        &self,
        p: &PaymentConfirmed,
        balance_minor: i64,
    ) -> Result<(), PaymentError> {
        let Some(outbound) = &self.outbound else {
            return Ok(());
        };
        let Some(account) = self.store.account(&p.tenant, &p.account).await? else {
            return Ok(());
        };
        let (Some(tenant), Some(debtor)) = (
            self.store.tenant(&p.tenant).await?,
            self.store.debtor(&p.tenant, &account.debtor).await?,
        ) else {
            return Ok(());
        };
        let Some(channel) = tenant.usable_channels().find(|c| debtor.has_consent(*c)) else {
            tracing::info!(account = %account.id, "no channel with consent: no receipt");
            return Ok(());
        };
        let amount = Money::new(p.amount_minor, p.currency).display();
        let balance = Money::new(balance_minor, p.currency).display();
        let creditor = account.creditor_name(&tenant).to_string();
        let attempt = ContactAttempt {
            tenant: p.tenant.clone(),
            account: p.account.clone(),
            debtor: debtor.id.clone(),
            decision_id: format!("receipt:{}", p.payment_id),
            channel,
            template: RECEIPT_TEMPLATE.into(),
            status: AttemptStatus::Queued,
            decided_at: p.paid_at,
            text: receipt(debtor.language, &debtor.name, &amount, &creditor, &balance),
            to: debtor.phone.clone(),
            language: debtor.language,
            provider_message_id: None,
            error: None,
            claimed_at: None,
            params: vec![debtor.name.clone(), amount, creditor, balance],
            tries: 0,
            delivery: None,
            error_code: None,
            receipt: true,
            opt_out_button: Some(false),
            states: None,
        };
        // On the outbox ten minutes ahead: a lost queue message is sent by a later tick.
        let retry = p.paid_at + jiff::SignedDuration::from_mins(10);
        if self.store.commit_message(&attempt, retry).await? {
            let m = OutboundMessage {
                tenant: attempt.tenant.clone(),
                account: attempt.account.clone(),
                decision_id: attempt.decision_id.clone(),
            };
            outbound
                .send_batch(vec![Outgoing::new(
                    "0",
                    serde_json::to_string(&m).expect("serializes"),
                )])
                .await
                .map_err(|e| PaymentError::Bus(format!("outbound queue: {e}")))?;
        }
        Ok(())
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
        let payment = PaymentRef {
            tenant: p.tenant.clone(),
            account: p.account.clone(),
            payment_id: p.payment_id.clone(),
            currency: p.currency,
            paid_at: p.paid_at,
        };
        let mut events = vec![PaymentApplied {
            payment: payment.clone(),
            amount_minor: p.amount_minor,
            applied_minor: *applied_minor,
            balance_minor: *balance_minor,
            credit_minor: *credit_minor,
            method: p.method.clone(),
            source: p.source.clone(),
            plan: plan.as_ref().map(|(id, _)| id.clone()),
        }
        .event()];
        if let Some((id, PlanStatus::Completed)) = plan {
            events.push(
                PlanCompleted {
                    payment: payment.clone(),
                    plan: id.clone(),
                }
                .event(),
            );
        }
        if *promise_kept {
            events.push(
                PromiseKept {
                    payment: payment.clone(),
                }
                .event(),
            );
        }
        if *settled {
            events.push(AccountSettled { payment }.event());
        }
        bus.publish(events)
            .await
            .map_err(|e| PaymentError::Bus(e.to_string()))
    }

    /// Takes a Stripe event (the `detail` of its partner event source): a paid Checkout
    /// Session or a succeeded PaymentIntent is applied like any `PaymentConfirmed`.
    pub async fn handle_stripe(
        &self,
        detail: serde_json::Value,
    ) -> Result<PaymentOutcome, PaymentError> {
        match stripe::parse(&detail) {
            StripeEvent::Payment(p) => {
                self.handle(serde_json::to_value(&p).expect("serializes"))
                    .await
            }
            StripeEvent::Ignored(reason) => Ok(PaymentOutcome::Ignored { reason }),
            // Without its tenant it cannot go to a suspense list: the rule's dead-letter
            // queue keeps it, with this reason in the logs.
            StripeEvent::Invalid(reason) => {
                tracing::error!(%reason, "a Stripe payment cobro cannot apply");
                Err(PaymentError::Invalid(reason))
            }
        }
    }

    /// Takes an EventBridge envelope as delivered to an SQS target (the local stack's route).
    pub async fn handle_envelope(&self, body: &str) -> Result<PaymentOutcome, PaymentError> {
        let mut envelope: serde_json::Value =
            serde_json::from_str(body).map_err(|e| PaymentError::Invalid(e.to_string()))?;
        let source = envelope
            .get("source")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if stripe::is_stripe_source(source) {
            return self.handle_stripe(envelope["detail"].take()).await;
        }
        match envelope.get("detail-type").and_then(|v| v.as_str()) {
            Some(DETAIL_TYPE) => self.handle(envelope["detail"].take()).await,
            other => Err(PaymentError::Invalid(format!(
                "unexpected detail-type {other:?}"
            ))),
        }
    }
}
