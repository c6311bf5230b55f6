//! Wiring for the Lambda binaries: the AWS adapters built from environment variables, once per
//! execution environment, and JSON logs.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::adapters::aws::{config, DynamoTable, EventBridgeBus, SqsQueue};
use crate::adapters::sandbox::SandboxChannel;
use crate::ports::{Bus, Channel, Queue, Table};

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

/// The table named by `COBRO_TABLE`.
pub async fn table() -> Result<Arc<dyn Table>, Error> {
    let name = env("COBRO_TABLE")?;
    Ok(Arc::new(DynamoTable::new(
        aws_sdk_dynamodb::Client::new(sdk().await),
        name,
    )))
}

/// The outbound queue at `COBRO_OUTBOUND_QUEUE_URL`.
pub async fn outbound_queue() -> Result<Arc<dyn Queue>, Error> {
    let url = env("COBRO_OUTBOUND_QUEUE_URL")?;
    Ok(Arc::new(SqsQueue::new(
        aws_sdk_sqs::Client::new(sdk().await),
        url,
    )))
}

/// The event bus named by `COBRO_EVENT_BUS`.
pub async fn bus() -> Result<Arc<dyn Bus>, Error> {
    let name = env("COBRO_EVENT_BUS")?;
    Ok(Arc::new(EventBridgeBus::new(
        aws_sdk_eventbridge::Client::new(sdk().await),
        name,
    )))
}

/// The channel named by `COBRO_CHANNEL`. Only `sandbox` exists until the WhatsApp Cloud API
/// adapter lands; an unknown name stops the function at start rather than at the first send.
pub fn channel() -> Result<Arc<dyn Channel>, Error> {
    match env("COBRO_CHANNEL")?.as_str() {
        "sandbox" => Ok(Arc::new(SandboxChannel::new())),
        other => {
            Err(format!("COBRO_CHANNEL={other} is not a known channel (known: sandbox)").into())
        }
    }
}

/// JSON logs for CloudWatch, filtered by `RUST_LOG` (default `info`). No timestamps: Lambda
/// adds its own.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .init();
}
