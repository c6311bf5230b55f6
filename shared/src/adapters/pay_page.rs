//! `PaymentLinks` for lenders with their own pay page: a URL template filled with the request's
//! values (URL-encoded), optionally signed so the page can trust what it is given.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ports::{LinkError, LinkRequest, PaymentLink, PaymentLinks};

const PLACEHOLDERS: [&str; 7] = [
    "tenant",
    "account",
    "amount_minor",
    "currency",
    "plan",
    "instalment",
    "expires_at",
];

#[derive(Debug, Clone)]
pub struct PayPageLinks {
    template: String,
    /// Appends `sig=<hex HMAC-SHA256 of the URL before it>` when set.
    secret: Option<String>,
}

impl PayPageLinks {
    /// `template`: e.g. `https://pay.example.com/{tenant}/{account}?amount={amount_minor}`.
    /// Refuses placeholders it does not know, naming them.
    pub fn new(template: &str, secret: Option<String>) -> Result<Self, LinkError> {
        if !template.starts_with("https://") && !template.starts_with("http://") {
            return Err(LinkError::Invalid {
                field: "template".into(),
                reason: "must be an http(s) URL".into(),
            });
        }
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').ok_or_else(|| LinkError::Invalid {
                field: "template".into(),
                reason: "a `{` without its `}`".into(),
            })?;
            let name = &rest[open + 1..open + close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(LinkError::Invalid {
                    field: "template".into(),
                    reason: format!(
                        "unknown placeholder {{{name}}} (known: {})",
                        PLACEHOLDERS.join(", ")
                    ),
                });
            }
            rest = &rest[open + close + 1..];
        }
        Ok(Self {
            template: template.to_string(),
            secret,
        })
    }

    /// The signature a pay page checks: hex HMAC-SHA256 of the URL up to `&sig=`.
    pub fn sign(secret: &str, url: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(url.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[async_trait]
impl PaymentLinks for PayPageLinks {
    async fn create(&self, r: &LinkRequest) -> Result<PaymentLink, LinkError> {
        let values = [
            ("tenant", r.tenant.to_string()),
            ("account", r.account.to_string()),
            ("amount_minor", r.amount.minor.to_string()),
            ("currency", r.amount.currency.to_string()),
            ("plan", r.plan.clone().unwrap_or_default()),
            (
                "instalment",
                r.instalment.map(|i| i.to_string()).unwrap_or_default(),
            ),
            ("expires_at", r.expires_at.as_second().to_string()),
        ];
        let mut url = self.template.clone();
        for (name, value) in values {
            url = url.replace(&format!("{{{name}}}"), &encode(&value));
        }
        if let Some(secret) = &self.secret {
            let sep = if url.contains('?') { '&' } else { '?' };
            let sig = Self::sign(secret, &url);
            url = format!("{url}{sep}sig={sig}");
        }
        Ok(PaymentLink {
            url,
            provider_id: None,
            expires_at: r.expires_at,
        })
    }
}
