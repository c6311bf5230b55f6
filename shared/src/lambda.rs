//! Wiring for the Lambda binaries: the AWS adapters built from environment variables, once per
//! execution environment, secrets read through a per-process cache, and JSON logs.
//!
//! What every request of a function needs (its table, the webhook's bucket and queue) is built
//! before the first poll of the Runtime API; what only some requests need (the bus, the
//! outbound queue, Secrets Manager) is built on its first use (`Lazy`), so a cold start does
//! not pay for a client the request may never touch. Settings are still read at start, so a
//! missing one stops the function there.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::adapters::aws::{config, DynamoTable, EventBridgeBus, SecretsManager, SqsQueue};
use crate::adapters::sandbox::SandboxChannel;
use crate::ports::bus::BusError;
use crate::ports::queue::{Outgoing, QueueError, Received};
use crate::ports::secrets::{SecretsError, DEFAULT_TTL};
use crate::ports::{
    Bus, CachedSecrets, Channels, DeploymentSecrets, Event, Queue, Secrets, Table, WhatsAppSecrets,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One SDK configuration per process: loading it resolves region and credentials, so it is
/// done once and shared by every client.
static SDK_CONFIG: OnceCell<aws_config::SdkConfig> = OnceCell::const_new();

async fn sdk() -> &'static aws_config::SdkConfig {
    SDK_CONFIG.get_or_init(config::sdk_config).await
}

/// A required environment variable, or an error that names it.
pub fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("the environment variable {name} must be set").into())
}

/// An optional setting: unset and empty (a template parameter left blank) are the same.
pub fn set(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Secrets Manager behind one cache per process: each secret is read once per execution
/// environment and again after `DEFAULT_TTL`, so a rotation is picked up within minutes; a
/// store that fails is bridged by the value read last for `DEFAULT_GRACE`.
pub async fn secrets() -> Arc<dyn Secrets> {
    static SECRETS: OnceCell<Arc<dyn Secrets>> = OnceCell::const_new();
    SECRETS
        .get_or_init(|| async {
            // Built on first use: a function may never read a secret (a sandbox sender).
            let manager = Lazy::new(String::new(), |sdk, _| {
                SecretsManager::new(aws_sdk_secretsmanager::Client::new(sdk))
            });
            Arc::new(CachedSecrets::new(Arc::new(manager), DEFAULT_TTL)) as Arc<dyn Secrets>
        })
        .await
        .clone()
}

/// `COBRO_SECRETS_PREFIX`: per-number secrets are `<prefix>whatsapp/<phone_number_id>`.
pub fn secrets_prefix() -> String {
    set("COBRO_SECRETS_PREFIX").unwrap_or_default()
}

/// The deployment's WhatsApp secrets: the JSON secret at `COBRO_WHATSAPP_SECRET_ARN` when it
/// is set, read through `secrets()` on every use (a rotation is picked up within
/// `DEFAULT_TTL`), else `WHATSAPP_ACCESS_TOKEN`, `WHATSAPP_APP_SECRET` and
/// `WHATSAPP_VERIFY_TOKEN` (the local stack, tests). Unset values are empty.
pub async fn whatsapp_secrets() -> DeploymentSecrets {
    match set("COBRO_WHATSAPP_SECRET_ARN") {
        Some(name) => DeploymentSecrets::Stored {
            secrets: secrets().await,
            name,
        },
        None => DeploymentSecrets::Fixed(WhatsAppSecrets {
            access_token: set("WHATSAPP_ACCESS_TOKEN").unwrap_or_default(),
            app_secret: set("WHATSAPP_APP_SECRET").unwrap_or_default(),
            verify_token: set("WHATSAPP_VERIFY_TOKEN").unwrap_or_default(),
        }),
    }
}

/// The Graph API token source, if the deployment has an access token now (read at start, as
/// whether WhatsApp is configured is decided there): each number's own token, else the
/// deployment's, read through the cache on every call when they are stored secrets; else the
/// fixed `WHATSAPP_ACCESS_TOKEN`.
#[cfg(feature = "whatsapp")]
pub async fn whatsapp_tokens() -> Result<Option<Arc<dyn crate::whatsapp::tokens::Tokens>>, Error> {
    use crate::whatsapp::tokens::{FixedToken, SecretTokens};
    let deployment = whatsapp_secrets().await;
    let token = deployment.get().await?.access_token;
    if token.is_empty() {
        return Ok(None);
    }
    Ok(Some(match deployment {
        DeploymentSecrets::Stored { secrets, name } => {
            Arc::new(SecretTokens::new(secrets, name, secrets_prefix()))
        }
        DeploymentSecrets::Fixed(_) => Arc::new(FixedToken::new(token)),
    }))
}

/// The table named by `COBRO_TABLE`.
pub async fn table() -> Result<Arc<dyn Table>, Error> {
    let name = env("COBRO_TABLE")?;
    Ok(Arc::new(DynamoTable::new(
        crate::adapters::aws::dynamodb_client(sdk().await),
        name,
    )))
}

/// The outbound queue at `COBRO_OUTBOUND_QUEUE_URL`, its client built on first use: only
/// requests that decide to send something send to it.
pub async fn outbound_queue() -> Result<Arc<dyn Queue>, Error> {
    lazy_queue("COBRO_OUTBOUND_QUEUE_URL")
}

/// The queue whose URL is in the environment variable `name`, built now: for a function whose
/// every request sends to it (the webhook's inbound queue).
pub async fn queue(name: &str) -> Result<Arc<dyn Queue>, Error> {
    let url = env(name)?;
    Ok(Arc::new(SqsQueue::new(
        aws_sdk_sqs::Client::new(sdk().await),
        url,
    )))
}

/// The queue whose URL is in the environment variable `name`, its client built on first use:
/// for a queue only some requests send to.
pub fn lazy_queue(name: &str) -> Result<Arc<dyn Queue>, Error> {
    Ok(Arc::new(Lazy::new(env(name)?, |sdk, url| {
        SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url)
    })))
}

/// The bucket named by `COBRO_BLOB_BUCKET`: raw webhook bodies and media, as plain signed
/// HTTP requests (no SDK client to build: see `S3Http`).
#[cfg(feature = "s3-http")]
pub async fn blobs() -> Result<Arc<dyn crate::ports::Blobs>, Error> {
    Ok(Arc::new(s3_http(env("COBRO_BLOB_BUCKET")?).await?))
}

/// `bucket` over signed HTTP, with the SDK configuration's region and credentials; path-style
/// when an endpoint is set (an emulator has no per-bucket host names).
#[cfg(feature = "s3-http")]
async fn s3_http(bucket: String) -> Result<crate::adapters::aws::S3Http, Error> {
    use crate::adapters::aws::{S3Endpoint, S3Http};
    let sdk = sdk().await;
    let region = sdk
        .region()
        .ok_or("no AWS region: set AWS_REGION")?
        .to_string();
    let credentials = sdk
        .credentials_provider()
        .ok_or("no AWS credentials provider")?;
    Ok(S3Http::new(
        bucket,
        region,
        S3Endpoint::from_env(),
        credentials,
    ))
}

/// A queue whose URL is in the environment variable `name`, if it is set; its client is built
/// on first use.
pub async fn queue_from_env(name: &str) -> Result<Option<Arc<dyn Queue>>, Error> {
    match std::env::var(name) {
        Ok(url) if !url.is_empty() => Ok(Some(lazy_queue(name)?)),
        _ => Ok(None),
    }
}

/// The event bus named by `COBRO_EVENT_BUS`; its client is built on the first publish (most
/// requests publish nothing).
pub async fn bus() -> Result<Arc<dyn Bus>, Error> {
    Ok(Arc::new(Lazy::new(env("COBRO_EVENT_BUS")?, |sdk, name| {
        EventBridgeBus::new(aws_sdk_eventbridge::Client::new(sdk), name)
    })))
}

/// The event bus named by `COBRO_EVENT_BUS`, built now: for a function whose every request
/// publishes (payment-confirmed announces every payment it applies).
pub async fn bus_now() -> Result<Arc<dyn Bus>, Error> {
    let name = env("COBRO_EVENT_BUS")?;
    Ok(Arc::new(EventBridgeBus::new(
        aws_sdk_eventbridge::Client::new(sdk().await),
        name,
    )))
}

/// The channel adapters. `COBRO_CHANNEL=sandbox` gives the sandbox on every channel (no
/// message leaves); `live` gives the providers this deployment is configured for. An unknown
/// value stops the function at start rather than at the first send.
pub async fn channels() -> Result<Channels, Error> {
    match env("COBRO_CHANNEL")?.as_str() {
        "sandbox" => Ok(Channels::all(Arc::new(SandboxChannel::new()))),
        "live" => live_channels().await,
        other => Err(format!("COBRO_CHANNEL={other} is not known (known: sandbox, live)").into()),
    }
}

#[allow(unused_mut)]
async fn live_channels() -> Result<Channels, Error> {
    let mut channels = Channels::new();
    #[cfg(feature = "whatsapp")]
    if let Some(tokens) = whatsapp_tokens().await? {
        let config = crate::whatsapp::client::GraphConfig::from_env(tokens)?;
        let client = crate::whatsapp::client::GraphClient::new(config)?;
        channels = channels.with(
            crate::domain::ChannelKind::Whatsapp,
            Arc::new(crate::whatsapp::channel::WhatsAppChannel::new(client)),
        );
    }
    // SMS and e-mail when their sender identity is configured.
    #[cfg(feature = "sms")]
    if set("COBRO_SMS_ORIGINATION").is_some() {
        let sms = crate::adapters::aws::SmsChannel::from_env(sdk().await)?;
        channels = channels.with(crate::domain::ChannelKind::Sms, Arc::new(sms));
    }
    #[cfg(feature = "email")]
    if set("COBRO_EMAIL_FROM").is_some() {
        let email = crate::adapters::aws::EmailChannel::from_env(sdk().await)?;
        channels = channels.with(crate::domain::ChannelKind::Email, Arc::new(email));
    }
    Ok(channels)
}

/// Stripe Checkout for payment links when `STRIPE_SECRET_KEY` is set (with
/// `STRIPE_SUCCESS_URL`, `STRIPE_CANCEL_URL`, optional `STRIPE_API_URL` and `STRIPE_API_VERSION`).
#[cfg(feature = "checkout")]
pub fn stripe_links() -> Result<Option<Arc<dyn crate::ports::PaymentLinks>>, Error> {
    use crate::adapters::stripe_checkout::{StripeCheckout, StripeConfig};
    let Some(secret_key) = set("STRIPE_SECRET_KEY") else {
        return Ok(None);
    };
    let config = StripeConfig {
        base_url: set("STRIPE_API_URL").unwrap_or_else(|| "https://api.stripe.com".into()),
        secret_key,
        api_version: set("STRIPE_API_VERSION").unwrap_or_else(|| "2024-06-20".into()),
        success_url: env("STRIPE_SUCCESS_URL")?,
        cancel_url: env("STRIPE_CANCEL_URL")?,
    };
    Ok(Some(Arc::new(
        StripeCheckout::new(config).map_err(|e| e.to_string())?,
    )))
}

/// Without the `checkout` feature there is no Stripe: links come from tenants' pay pages.
#[cfg(not(feature = "checkout"))]
pub fn stripe_links() -> Result<Option<Arc<dyn crate::ports::PaymentLinks>>, Error> {
    Ok(None)
}

/// What every Lambda binary does first: JSON logs for CloudWatch, filtered by `COBRO_LOG`
/// (default `info`, see `crate::logs`), then the SDK's endpoint partitions cut to
/// the region's (`partitions`). It sets an environment variable, so it runs before anything
/// else, while the process has one thread.
pub fn init() {
    crate::logs::init();
    let partitions = crate::adapters::aws::partitions::use_commercial_only();
    tracing::debug!(?partitions, "the SDK's endpoint partitions");
}

/// The exports bucket named by `COBRO_EXPORT_BUCKET`: finance export files, written in parts
/// (the export function).
#[cfg(feature = "s3-http")]
pub async fn export_files() -> Result<Arc<dyn crate::ports::blobs::LargeBlobs>, Error> {
    Ok(Arc::new(s3_http(env("COBRO_EXPORT_BUCKET")?).await?))
}

/// Download links to the exports bucket named by `COBRO_EXPORT_BUCKET` (the CRM API), signed
/// with the function's own credentials.
#[cfg(feature = "s3-http")]
pub async fn export_links() -> Result<Arc<dyn crate::ports::blobs::DownloadLinks>, Error> {
    Ok(Arc::new(s3_http(env("COBRO_EXPORT_BUCKET")?).await?))
}

/// An adapter whose SDK client is built on its first use, from the shared SDK configuration
/// and a setting read at start (a queue URL, a bus name).
struct Lazy<T> {
    cell: OnceCell<T>,
    setting: String,
    build: fn(&aws_config::SdkConfig, String) -> T,
}

impl<T> Lazy<T> {
    fn new(setting: String, build: fn(&aws_config::SdkConfig, String) -> T) -> Self {
        Self {
            cell: OnceCell::new(),
            setting,
            build,
        }
    }

    async fn get(&self) -> &T {
        self.cell
            .get_or_init(|| async { (self.build)(sdk().await, self.setting.clone()) })
            .await
    }
}

#[async_trait]
impl Bus for Lazy<EventBridgeBus> {
    async fn publish(&self, events: Vec<Event>) -> Result<(), BusError> {
        self.get().await.publish(events).await
    }
}

#[async_trait]
impl Queue for Lazy<SqsQueue> {
    async fn send_batch(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        self.get().await.send_batch(messages).await
    }

    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        self.get().await.receive(max, visibility).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.get().await.delete(receipt).await
    }
}

#[async_trait]
impl Secrets for Lazy<SecretsManager> {
    async fn get(&self, name: &str) -> Result<Option<serde_json::Value>, SecretsError> {
        Lazy::get(self).await.get(name).await
    }

    async fn put(&self, name: &str, value: &serde_json::Value) -> Result<(), SecretsError> {
        Lazy::get(self).await.put(name, value).await
    }
}
