//! The local stack served over HTTP on a free loopback port, and the demo tenant's CRM API
//! called through it: what the end-to-end tests (slice, export, chat, the CRM API) start from.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

use cobro::ports::Clock;
use cobro_local::{LocalStack, Settings};

/// The demo tenant's API key as an `Authorization` header.
pub const DEMO_AUTH: &str = "Bearer cobro-demo-key";

pub struct LocalApi {
    pub stack: Arc<LocalStack>,
    /// Where the stack's router is served, e.g. `http://127.0.0.1:40123`.
    pub base: String,
    pub http: reqwest::Client,
    /// The stack's data directory, removed when the test ends.
    _dir: tempfile::TempDir,
}

impl LocalApi {
    /// The stack with the tests' settings, served.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// As `start`, with `configure` changing the tests' settings first.
    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::for_tests(dir.path().to_path_buf());
        configure(&mut settings);
        let stack = LocalStack::open(settings)
            .await
            .expect("local stack starts");
        let base = serve(stack.router()).await;
        Self {
            stack,
            base,
            http: crate::http(),
            _dir: dir,
        }
    }

    /// `method path` with the demo key: the status and the JSON body (or the text as a JSON
    /// string).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", DEMO_AUTH);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `call`, which must succeed; the body.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    /// Sets the local stack's clock (`POST /_local/clock`, an RFC 3339 instant).
    pub async fn set_clock(&self, at: &str) -> Value {
        self.ok("POST", "/_local/clock", Some(json!({ "set": at })))
            .await
    }

    /// The stack's clock date in UTC, shifted by `days`.
    pub fn date_in(&self, days: i64) -> jiff::civil::Date {
        self.stack
            .clock
            .now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .checked_add(jiff::Span::new().days(days))
            .unwrap()
    }

    /// Moves the local stack's clock on by `by` (`"11m"`, `"1d"`).
    pub async fn advance_clock(&self, by: &str) -> Value {
        self.ok("POST", "/_local/clock", Some(json!({ "advance": by })))
            .await
    }

    /// One reminders tick (`POST /_local/tick`); its report.
    pub async fn tick(&self) -> Value {
        self.ok("POST", "/_local/tick", None).await
    }

    /// What the sandbox channel sent to `phone` (E.164), oldest first, with each message's id.
    pub fn sent_to(&self, phone: &str) -> Vec<(String, cobro::ports::ChannelMessage)> {
        self.stack
            .channel
            .sent()
            .into_iter()
            .filter(|(_, m)| m.to.phone.as_str() == phone)
            .collect()
    }

    /// A confirmed payment (the `PaymentConfirmed` detail `payment`), applied.
    pub async fn pay(&self, payment: Value) -> cobro::repo::PaymentOutcome {
        self.stack
            .payment_handler
            .handle(payment)
            .await
            .expect("the payment is applied")
    }

    /// Runs the queues until empty (`POST /_local/drain`); its report.
    pub async fn drain(&self) -> Value {
        self.ok("POST", "/_local/drain", None).await
    }
}

/// Declares `struct $name(LocalApi)`, dereferencing to the `LocalApi`: a test file's stack,
/// for its own steps in an `impl $name`.
#[macro_export]
macro_rules! local_api_newtype {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        struct $name($crate::local::LocalApi);

        impl std::ops::Deref for $name {
            type Target = $crate::local::LocalApi;
            fn deref(&self) -> &$crate::local::LocalApi {
                &self.0
            }
        }
    };
}

/// `router` served on a free loopback port; its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}
