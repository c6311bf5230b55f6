//! The Graph API client: sends messages and downloads media, over HTTPS (reqwest, rustls).
//! Errors come back classified (`errors::classify`), so the sender knows whether to retry,
//! fall back or stop.

use std::sync::Arc;
use std::time::Duration;

use super::errors::classify;
use super::send::{MediaInfo, SendRequest, SendResponse};
use super::tokens::{FixedToken, Tokens};
use crate::ports::{ChannelError, FailureClass};

#[derive(Clone)]
pub struct GraphConfig {
    /// `https://graph.facebook.com`, or a local server in tests.
    pub base_url: String,
    /// `v25.0`: Meta's 2026 examples use it; each version lives about two years.
    pub version: String,
    /// The access token per number (a system user's), asked on every call.
    pub tokens: Arc<dyn Tokens>,
    /// The number to send from when the tenant names none.
    pub default_phone_number_id: Option<String>,
    /// Per request. A send that times out is retried at most once (no idempotency key).
    pub timeout: Duration,
}

pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
pub const DEFAULT_VERSION: &str = "v25.0";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Without the tokens: they are secrets.
impl std::fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphConfig")
            .field("base_url", &self.base_url)
            .field("version", &self.version)
            .field("default_phone_number_id", &self.default_phone_number_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GraphConfig {
    /// One fixed token for every number (the local stack, tests).
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            version: DEFAULT_VERSION.into(),
            tokens: Arc::new(FixedToken::new(token)),
            default_phone_number_id: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// `WHATSAPP_GRAPH_URL`, `WHATSAPP_GRAPH_VERSION`, `WHATSAPP_PHONE_NUMBER_ID`,
    /// `WHATSAPP_TIMEOUT_MS`, each with its default.
    pub fn from_env(tokens: Arc<dyn Tokens>) -> Result<Self, Error> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let timeout =
            match var("WHATSAPP_TIMEOUT_MS") {
                Some(v) => Duration::from_millis(v.parse().map_err(|_| {
                    format!("WHATSAPP_TIMEOUT_MS={v} is not a number of milliseconds")
                })?),
                None => Duration::from_secs(10),
            };
        Ok(Self {
            base_url: var("WHATSAPP_GRAPH_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            version: var("WHATSAPP_GRAPH_VERSION").unwrap_or_else(|| DEFAULT_VERSION.into()),
            tokens,
            default_phone_number_id: var("WHATSAPP_PHONE_NUMBER_ID"),
            timeout,
        })
    }
}

#[derive(Clone)]
pub struct GraphClient {
    http: crate::https::LazyClient,
    config: GraphConfig,
}

impl GraphClient {
    /// Built now, once per process (the sender: every request sends); the connection pool is
    /// reused by every call.
    pub fn new(config: GraphConfig) -> Result<Self, Error> {
        let client = Self::built_on_first_use(config);
        Ok(Self {
            http: client.http.built()?,
            config: client.config,
        })
    }

    /// Its HTTPS client built on the first call: for a function that calls Graph only for
    /// some requests (inbound downloads media only for media messages).
    pub fn built_on_first_use(config: GraphConfig) -> Self {
        let timeout = config.timeout;
        let http = crate::https::LazyClient::new(move || {
            crate::https::client_builder()
                .timeout(timeout)
                .connect_timeout(Duration::from_secs(3))
                .user_agent(concat!("cobro/", env!("CARGO_PKG_VERSION")))
        });
        Self { http, config }
    }

    fn http(&self) -> Result<&reqwest::Client, ChannelError> {
        self.http.get().map_err(transport_error)
    }

    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.config.base_url.trim_end_matches('/'),
            self.config.version,
            path
        )
    }

    /// Sends one message from `phone_number_id`; Meta's answer means accepted, not delivered.
    pub async fn send(
        &self,
        phone_number_id: &str,
        request: &SendRequest,
    ) -> Result<SendResponse, ChannelError> {
        let token = self.config.tokens.token(phone_number_id).await?;
        let response = self
            .http()?
            .post(self.url(&format!("{phone_number_id}/messages")))
            .bearer_auth(token)
            .json(request)
            .send()
            .await
            .map_err(transport_error)?;
        json_or_error(response).await
    }

    /// Where to download a medium a webhook named (the URL lasts 5 minutes).
    pub async fn media(
        &self,
        media_id: &str,
        phone_number_id: &str,
    ) -> Result<MediaInfo, ChannelError> {
        let token = self.config.tokens.token(phone_number_id).await?;
        let response = self
            .http()?
            .get(self.url(media_id))
            .query(&[("phone_number_id", phone_number_id)])
            .bearer_auth(token)
            .send()
            .await
            .map_err(transport_error)?;
        json_or_error(response).await
    }

    /// The medium's bytes, from the URL `media` gave for `phone_number_id` (its token is
    /// needed here too).
    pub async fn download(
        &self,
        url: &str,
        phone_number_id: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, ChannelError> {
        let token = self.config.tokens.token(phone_number_id).await?;
        let response = self
            .http()?
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.map_err(transport_error)?;
            return Err(graph_error(status.as_u16(), &body));
        }
        if response
            .content_length()
            .is_some_and(|n| n as usize > max_bytes)
        {
            return Err(ChannelError::rejected(format!(
                "the medium is over {max_bytes} bytes"
            )));
        }
        let bytes = response.bytes().await.map_err(transport_error)?;
        if bytes.len() > max_bytes {
            return Err(ChannelError::rejected(format!(
                "the medium is over {max_bytes} bytes"
            )));
        }
        Ok(bytes.to_vec())
    }
}

fn transport_error(e: reqwest::Error) -> ChannelError {
    if e.is_timeout() {
        ChannelError::new(
            FailureClass::Timeout,
            None,
            format!("Graph API timed out: {e}"),
        )
    } else if e.is_connect() {
        // Nothing was sent: safe to retry.
        ChannelError::transient(format!("cannot reach the Graph API: {e}"))
    } else {
        ChannelError::new(
            FailureClass::Timeout,
            None,
            format!("Graph API request failed midway: {e}"),
        )
    }
}

async fn json_or_error<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ChannelError> {
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(transport_error)?;
    if (200..300).contains(&status) {
        return serde_json::from_slice(&body).map_err(|e| {
            // Accepted but unreadable: it may have been sent, so not retried blindly.
            ChannelError::new(
                FailureClass::Timeout,
                None,
                format!("the Graph API answered {status} with a body cobro cannot read: {e}"),
            )
        });
    }
    Err(graph_error(status, &body))
}

/// Meta's error object, classified by code and subcode (the HTTP status is a poor guide).
fn graph_error(status: u16, body: &[u8]) -> ChannelError {
    let error = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned());
    let field = |n: &str| error.as_ref().and_then(|e| e.get(n));
    let code = field("code").and_then(|v| v.as_i64());
    let subcode = field("error_subcode").and_then(|v| v.as_i64());
    let message = field("message").and_then(|v| v.as_str()).unwrap_or("");
    let details = field("error_data")
        .and_then(|d| d.get("details"))
        .and_then(|v| v.as_str());
    let trace = field("fbtrace_id").and_then(|v| v.as_str()).unwrap_or("-");
    let reason = match details {
        Some(d) => format!("HTTP {status}: {message} ({d}); fbtrace_id {trace}"),
        None if error.is_some() => format!("HTTP {status}: {message}; fbtrace_id {trace}"),
        None => format!(
            "HTTP {status} without a Graph error object: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    };
    ChannelError::new(classify(status, code, subcode), code, reason)
}
