//! A local stand-in for Meta's Graph API, speaking its real request and response formats: the
//! messages endpoint (bearer token, JSON body, `{"messaging_product","contacts","messages"}` on
//! success, Meta's error object on failure), the media lookup and the media download. Tests
//! script its answers and read back what it received (bodies and bearer tokens); it can add
//! latency to every call, and accept other tokens than `TOKEN` (a rotation, a number's own).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TOKEN: &str = "test-system-user-token";
pub const VERSION: &str = "v25.0";

/// One scripted failure: the HTTP status and Meta's error object.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub body: Value,
    /// Hold the request this long first (past the client's timeout, to make one).
    pub delay: Duration,
}

impl Scripted {
    /// Meta's error envelope for `code`.
    pub fn error(status: u16, code: i64, message: &str) -> Self {
        Self {
            status,
            body: json!({ "error": {
                "message": format!("(#{code}) {message}"),
                "type": "OAuthException",
                "code": code,
                "error_data": { "messaging_product": "whatsapp", "details": message },
                "fbtrace_id": "AbCdEfGhIjK"
            }}),
            delay: Duration::ZERO,
        }
    }

    /// A body read verbatim (e.g. a fixture from ../shared/fixtures/whatsapp-send/).
    pub fn raw(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn hang(delay: Duration) -> Self {
        Self {
            status: 200,
            body: Value::Null,
            delay,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// phone number id → scripted answers, in order; empty means success.
    script: Mutex<VecDeque<Scripted>>,
    /// (phone number id, body) of every send received.
    sends: Mutex<Vec<(String, Value)>>,
    media: Mutex<HashMap<String, (Vec<u8>, String)>>,
    latency: Mutex<Duration>,
    counter: AtomicU64,
    /// The access tokens it takes; any other gets error 190.
    tokens: Mutex<Vec<String>>,
    /// The bearer token of every request, in order, taken or not.
    bearers: Mutex<Vec<String>>,
}

#[derive(Clone)]
pub struct FakeGraph {
    inner: Arc<Inner>,
    pub base_url: String,
}

impl FakeGraph {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner {
            tokens: Mutex::new(vec![TOKEN.into()]),
            ..Inner::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let me = Self { inner, base_url };
        let router = Router::new()
            .route("/{version}/{id}/messages", post(send))
            .route("/{version}/{id}", get(media_info))
            .route("/download/{id}", get(download))
            .with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        me
    }

    /// Added to every call (a slow provider).
    pub fn set_latency(&self, d: Duration) {
        *self.inner.latency.lock().unwrap() = d;
    }

    /// The next sends answer these, in order; then sends succeed again.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    pub fn sends(&self) -> Vec<(String, Value)> {
        self.inner.sends.lock().unwrap().clone()
    }

    /// Makes a medium available under `id`.
    pub fn add_media(&self, id: &str, bytes: &[u8], mime: &str) {
        self.inner
            .media
            .lock()
            .unwrap()
            .insert(id.into(), (bytes.to_vec(), mime.into()));
    }

    /// The tokens it takes from now on, instead of `TOKEN` (the others are revoked).
    pub fn set_tokens(&self, tokens: &[&str]) {
        *self.inner.tokens.lock().unwrap() = tokens.iter().map(|t| t.to_string()).collect();
    }

    /// The bearer token of every request received (sends, media lookups, downloads), in order.
    pub fn bearers(&self) -> Vec<String> {
        self.inner.bearers.lock().unwrap().clone()
    }

    /// Records the request's bearer token; whether it is one it takes.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.inner.bearers.lock().unwrap().push(token.to_string());
        self.inner.tokens.lock().unwrap().iter().any(|t| t == token)
    }
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": {
            "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Fake"
        }})),
    )
        .into_response()
}

/// What Meta checks before it takes a message: the token, the product, a `+`-prefixed
/// recipient, a known type and its object.
fn invalid(body: &Value) -> Option<String> {
    if body["messaging_product"] != "whatsapp" {
        return Some("messaging_product must be whatsapp".into());
    }
    let Some(to) = body["to"].as_str().or(body["recipient"].as_str()) else {
        return Some("no recipient".into());
    };
    if !to.starts_with('+') && body["recipient"].is_null() {
        return Some(format!(
            "`to` without + ({to}) would get the business's country code"
        ));
    }
    let Some(kind) = body["type"].as_str() else {
        return Some("no type".into());
    };
    if !["text", "template", "interactive", "document"].contains(&kind) || body[kind].is_null() {
        return Some(format!("type {kind} without its object"));
    }
    if kind == "template" && body["template"]["language"]["code"].as_str().is_none() {
        return Some("template without language.code".into());
    }
    None
}

async fn send(
    State(g): State<FakeGraph>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = *g.inner.latency.lock().unwrap();
    tokio::time::sleep(latency).await;
    if !g.authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    }
    if version != VERSION {
        return error(StatusCode::BAD_REQUEST, 100, "Unknown version");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, 100, "Invalid JSON");
    };
    if let Some(why) = invalid(&body) {
        return error(
            StatusCode::BAD_REQUEST,
            100,
            &format!("Invalid parameter: {why}"),
        );
    }
    let scripted = g.inner.script.lock().unwrap().pop_front();
    if let Some(s) = scripted {
        tokio::time::sleep(s.delay).await;
        if s.status != 200 || !s.body.is_null() {
            g.inner.sends.lock().unwrap().push((id, body));
            return (StatusCode::from_u16(s.status).unwrap(), Json(s.body)).into_response();
        }
    }
    let n = g.inner.counter.fetch_add(1, Ordering::Relaxed);
    let to = body["to"].as_str().unwrap_or_default().to_string();
    g.inner.sends.lock().unwrap().push((id, body));
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to.trim_start_matches('+') }],
        "messages": [{ "id": format!("wamid.fake.{n:08}") }]
    }))
    .into_response()
}

async fn media_info(
    State(g): State<FakeGraph>,
    Path((_version, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !g.authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    }
    if !q.contains_key("phone_number_id") {
        return error(StatusCode::BAD_REQUEST, 100, "phone_number_id is required");
    }
    let media = g.inner.media.lock().unwrap().get(&id).cloned();
    match media {
        Some((bytes, mime)) => Json(json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/download/{id}", g.base_url),
            "mime_type": mime,
            "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            "file_size": bytes.len(),
            "id": id,
        }))
        .into_response(),
        None => error(
            StatusCode::BAD_REQUEST,
            100,
            "Unsupported get request. Object with ID does not exist",
        ),
    }
}

async fn download(
    State(g): State<FakeGraph>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !g.authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match g.inner.media.lock().unwrap().get(&id).cloned() {
        Some((bytes, mime)) => ([("content-type", mime)], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
