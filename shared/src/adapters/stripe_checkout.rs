//! `PaymentLinks` on Stripe: a Checkout Session for the amount, with the tenant, account, plan
//! and instalment in its metadata and in its PaymentIntent's, which is how the payment finds
//! its account when Stripe's event comes back (`payment-confirmed`).

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use crate::ports::{LinkError, LinkRequest, PaymentLink, PaymentLinks};

#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a local server in tests.
    pub base_url: String,
    pub secret_key: String,
    /// Pinned so Stripe's format does not change under cobro.
    pub api_version: String,
    pub success_url: String,
    pub cancel_url: String,
}

#[derive(Clone)]
pub struct StripeCheckout {
    http: crate::https::LazyClient,
    config: StripeConfig,
}

#[derive(Deserialize)]
struct Session {
    id: String,
    url: Option<String>,
    expires_at: Option<i64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Deserialize)]
struct StripeError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
}

impl StripeCheckout {
    /// The HTTPS client is built on the first link: only link requests need it.
    pub fn new(config: StripeConfig) -> Result<Self, LinkError> {
        let http = crate::https::LazyClient::new(|| {
            crate::https::client_builder().timeout(std::time::Duration::from_secs(15))
        });
        Ok(Self { http, config })
    }

    /// The form Stripe expects, in its nested-key notation.
    pub fn form(&self, r: &LinkRequest) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = vec![
            ("mode".into(), "payment".into()),
            ("line_items[0][quantity]".into(), "1".into()),
            (
                "line_items[0][price_data][currency]".into(),
                r.amount.currency.to_string().to_ascii_lowercase(),
            ),
            // Stripe's smallest unit is cobro's minor unit (CLP is zero-decimal in both).
            (
                "line_items[0][price_data][unit_amount]".into(),
                r.amount.minor.to_string(),
            ),
            (
                "line_items[0][price_data][product_data][name]".into(),
                r.description.clone(),
            ),
            ("expires_at".into(), r.expires_at.as_second().to_string()),
            ("success_url".into(), self.config.success_url.clone()),
            ("cancel_url".into(), self.config.cancel_url.clone()),
            ("client_reference_id".into(), r.account.to_string()),
        ];
        let mut meta = vec![
            ("tenant", r.tenant.to_string()),
            ("account", r.account.to_string()),
        ];
        if let Some(p) = &r.plan {
            meta.push(("plan", p.clone()));
        }
        if let Some(i) = r.instalment {
            meta.push(("instalment", i.to_string()));
        }
        for (k, v) in meta {
            f.push((format!("metadata[{k}]"), v.clone()));
            f.push((format!("payment_intent_data[metadata][{k}]"), v));
        }
        f
    }
}

#[async_trait]
impl PaymentLinks for StripeCheckout {
    async fn create(&self, r: &LinkRequest) -> Result<PaymentLink, LinkError> {
        // Stripe takes a session's expiry 30 minutes to 24 hours ahead.
        let ahead = r.expires_at.duration_since(Timestamp::now());
        if ahead < SignedDuration::from_mins(30) || ahead > SignedDuration::from_hours(24) {
            return Err(LinkError::Invalid {
                field: "expires_at".into(),
                reason: "a Stripe Checkout link expires 30 minutes to 24 hours from now".into(),
            });
        }
        if r.amount.minor <= 0 {
            return Err(LinkError::Invalid {
                field: "amount".into(),
                reason: "must be positive".into(),
            });
        }
        let response = self
            .http
            .get()
            .map_err(|e| LinkError::Transient(e.to_string()))?
            .post(format!(
                "{}/v1/checkout/sessions",
                self.config.base_url.trim_end_matches('/')
            ))
            .bearer_auth(&self.config.secret_key)
            .header("Idempotency-Key", &r.idempotency_key)
            .header("Stripe-Version", &self.config.api_version)
            .form(&self.form(r))
            .send()
            .await
            .map_err(|e| LinkError::Transient(format!("Stripe did not answer: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| LinkError::Transient(e.to_string()))?;
        if (200..300).contains(&status) {
            let s: Session = serde_json::from_slice(&body)
                .map_err(|e| LinkError::Transient(format!("unreadable Stripe answer: {e}")))?;
            let url = s
                .url
                .ok_or_else(|| LinkError::Rejected(format!("session {} has no url", s.id)))?;
            return Ok(PaymentLink {
                url,
                provider_id: Some(s.id),
                expires_at: s
                    .expires_at
                    .and_then(|t| Timestamp::from_second(t).ok())
                    .unwrap_or(r.expires_at),
            });
        }
        let e = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|b| b.error);
        let what = match &e {
            Some(e) => format!(
                "{} {}{}: {}",
                e.kind,
                e.code.as_deref().unwrap_or(""),
                e.param
                    .as_deref()
                    .map(|p| format!(" (param {p})"))
                    .unwrap_or_default(),
                e.message.as_deref().unwrap_or("")
            ),
            None => format!("HTTP {status} without a Stripe error object"),
        };
        Err(match status {
            401 | 403 => LinkError::Unauthorized(what),
            // 409: a request with the same idempotency key is still running; a retry gets its
            // saved result.
            409 | 429 | 500..=599 => LinkError::Transient(what),
            _ => LinkError::Rejected(what),
        })
    }
}
