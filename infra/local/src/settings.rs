//! The local stack's settings, from environment variables with documented defaults (the
//! README's settings table lists the same).

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `PORT`, default 3000. Bound on 127.0.0.1 only.
    pub port: u16,
    /// `COBRO_DATA_DIR`, default `./.cobro`: holds `cobro.db`.
    pub data_dir: PathBuf,
    /// `WHATSAPP_APP_SECRET`: signs the demo number's webhooks.
    pub app_secret: String,
    /// `WHATSAPP_VERIFY_TOKEN`: the GET handshake's token.
    pub verify_token: String,
    /// `COBRO_DEMO_API_KEY`: the demo tenant's CRM API key.
    pub demo_api_key: String,
    /// `COBRO_TICK_SECONDS`, default 60: how often the reminders schedule fires (0: never by
    /// itself; use `POST /_local/tick`).
    pub tick_every: Option<Duration>,
    /// `COBRO_WORKER_MILLIS`, default 500: how often the queue worker polls (0: never by
    /// itself; use `POST /_local/drain`).
    pub poll_every: Option<Duration>,
    /// `WHATSAPP_GRAPH_URL`: send WhatsApp through a Graph API server at this URL (a local
    /// one that speaks Meta's formats) instead of the sandbox; unset: the sandbox.
    pub graph_url: Option<String>,
    /// `WHATSAPP_ACCESS_TOKEN`: the token sent to that server.
    pub graph_token: String,
    /// `COBRO_WEBHOOK_RETRY_SECONDS`: the pauses before each attempt to post an event to a
    /// tenant's webhook, comma-separated seconds (default: as deployed, 0,30,120,600,3600,
    /// 10800,21600,43200,86400; after the last the delivery is kept as failed).
    pub webhook_schedule: Vec<Duration>,
    /// Tests: the clock starts at this instant, before the demo is loaded, so the demo's dates
    /// (due dates, consents) are fixed relative to it whatever day the test runs.
    pub start_at: Option<jiff::Timestamp>,
}

pub const DEFAULT_APP_SECRET: &str = "local-app-secret";
pub const DEFAULT_VERIFY_TOKEN: &str = "local-verify-token";
pub const DEFAULT_DEMO_API_KEY: &str = "cobro-demo-key";

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_string());
        let number = |name: &str, default: &str| -> Result<u64, String> {
            var(name, default)
                .parse::<u64>()
                .map_err(|_| format!("{name} must be a whole number"))
        };
        let every = |n: u64, unit: fn(u64) -> Duration| (n > 0).then(|| unit(n));
        Ok(Self {
            port: u16::try_from(number("PORT", "3000")?)
                .map_err(|_| "PORT must be 0 to 65535".to_string())?,
            data_dir: PathBuf::from(var("COBRO_DATA_DIR", ".cobro")),
            app_secret: var("WHATSAPP_APP_SECRET", DEFAULT_APP_SECRET),
            verify_token: var("WHATSAPP_VERIFY_TOKEN", DEFAULT_VERIFY_TOKEN),
            demo_api_key: var("COBRO_DEMO_API_KEY", DEFAULT_DEMO_API_KEY),
            tick_every: every(number("COBRO_TICK_SECONDS", "60")?, Duration::from_secs),
            poll_every: every(number("COBRO_WORKER_MILLIS", "500")?, Duration::from_millis),
            graph_url: std::env::var("WHATSAPP_GRAPH_URL")
                .ok()
                .filter(|v| !v.trim().is_empty()),
            graph_token: var("WHATSAPP_ACCESS_TOKEN", "local-token"),
            webhook_schedule: match std::env::var("COBRO_WEBHOOK_RETRY_SECONDS") {
                Ok(v) if !v.trim().is_empty() => v
                    .split(',')
                    .map(|n| n.trim().parse::<u64>().map(Duration::from_secs))
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        "COBRO_WEBHOOK_RETRY_SECONDS must be whole seconds, comma-separated"
                            .to_string()
                    })?,
                _ => cobro::events::webhook::SCHEDULE.to_vec(),
            },
            start_at: None,
        })
    }

    /// Settings for tests: an in-memory-like temp dir chosen by the caller, nothing in the
    /// background.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            port: 0,
            data_dir,
            app_secret: DEFAULT_APP_SECRET.into(),
            verify_token: DEFAULT_VERIFY_TOKEN.into(),
            demo_api_key: DEFAULT_DEMO_API_KEY.into(),
            tick_every: None,
            poll_every: None,
            graph_url: None,
            graph_token: "local-token".into(),
            // Three attempts, no pauses: a test sees retries and the give-up in one drain.
            webhook_schedule: vec![Duration::ZERO; 3],
            start_at: None,
        }
    }
}
