//! A local stand-in for Stripe's Checkout Sessions endpoint, in Stripe's formats: bearer secret
//! key, form-encoded body with nested keys, the session object on success, Stripe's error
//! object (`{"error":{"type","code","message","param"}}`) on failure, and `Idempotency-Key`
//! (the same key and body give the same session; the same key with another body is an
//! `idempotency_error`). localstripe (PyPI) does not serve Checkout Sessions, hence this:
//! localstripe 1.15.10 answers `POST /v1/checkout/sessions` with a plain 404 while it does
//! create PaymentIntents (checked by hand, not part of the test run).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const KEY: &str = "sk_test_cobro";

/// A decoded form body, in order.
type Form = Vec<(String, String)>;

/// One authenticated form request as received: the decoded body and the headers that change
/// what Stripe does with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub form: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
}

impl Call {
    /// The value of one form field, by its full nested name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    /// Form bodies received, decoded.
    requests: Mutex<Vec<Form>>,
    calls: Mutex<Vec<Call>>,
    by_key: Mutex<HashMap<String, (Form, Value)>>,
    /// Scripted (status, body) answers for the next requests.
    script: Mutex<Vec<(u16, Value)>>,
}

#[derive(Clone)]
pub struct FakeStripe {
    inner: Arc<Inner>,
    pub base_url: String,
}

fn error(
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    param: Option<&str>,
) -> Response {
    (
        status,
        Json(
            json!({ "error": { "type": kind, "code": code, "message": message, "param": param } }),
        ),
    )
        .into_response()
}

impl FakeStripe {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let me = Self {
            inner: Arc::new(Inner::default()),
            base_url,
        };
        let router = Router::new()
            .route("/v1/checkout/sessions", post(create))
            .with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        me
    }

    pub fn requests(&self) -> Vec<Vec<(String, String)>> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Every authenticated form request, with its headers.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    pub fn script(&self, status: u16, body: Value) {
        self.inner.script.lock().unwrap().push((status, body));
    }
}

async fn create(State(s): State<FakeStripe>, headers: HeaderMap, body: String) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided",
            None,
        );
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/x-www-form-urlencoded")
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_invalid",
            "form body expected",
            None,
        );
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    s.inner.requests.lock().unwrap().push(form.clone());
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    s.inner.calls.lock().unwrap().push(Call {
        form: form.clone(),
        idempotency_key: header("idempotency-key"),
        stripe_version: header("stripe-version"),
    });
    if let Some((status, body)) = {
        let mut script = s.inner.script.lock().unwrap();
        (!script.is_empty()).then(|| script.remove(0))
    } {
        return (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
    }
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let missing = |param: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_missing",
            &format!("Missing required param: {param}."),
            Some(param),
        )
    };
    // Stripe names the outermost missing parameter: `mode` first, then `line_items` as a
    // whole, then the fields inside the first item.
    if get("mode").is_none() {
        return missing("mode");
    }
    if get("mode").as_deref() == Some("payment")
        && !form.iter().any(|(k, _)| k.starts_with("line_items["))
    {
        return missing("line_items");
    }
    // A price_data needs its product, as an id or inline.
    if get("line_items[0][price_data][product]").is_none()
        && get("line_items[0][price_data][product_data][name]").is_none()
    {
        return missing("line_items[0][price_data][product_data][name]");
    }
    if let Some(v) = get("line_items[0][price_data][unit_amount]") {
        if v.parse::<i64>().map_or(true, |n| n < 0) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "parameter_invalid_integer",
                &format!("Invalid non-negative integer: {v}"),
                Some("line_items[0][price_data][unit_amount]"),
            );
        }
    }
    for required in [
        "line_items[0][price_data][currency]",
        "line_items[0][price_data][unit_amount]",
        "line_items[0][quantity]",
        "success_url",
    ] {
        if get(required).is_none() {
            return missing(required);
        }
    }
    let now = jiff::Timestamp::now().as_second();
    let expires: i64 = get("expires_at")
        .and_then(|v| v.parse().ok())
        .unwrap_or(now + 86_400);
    if expires < now + 1_800 || expires > now + 86_400 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_invalid_integer",
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            Some("expires_at"),
        );
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(k) = &key {
        if let Some((previous, session)) = s.inner.by_key.lock().unwrap().get(k).cloned() {
            if previous != form {
                return error(StatusCode::BAD_REQUEST, "idempotency_error", "idempotency_key_in_use",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.", None);
            }
            return Json(session).into_response();
        }
    }
    let n = s.inner.requests.lock().unwrap().len();
    let id = format!("cs_test_{n:04}");
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("metadata[")?.strip_suffix(']')?.to_string(),
                Value::String(v.clone()),
            ))
        })
        .collect();
    let session = json!({
        "id": id, "object": "checkout.session", "mode": "payment", "status": "open",
        "payment_status": "unpaid", "url": format!("https://checkout.stripe.com/c/pay/{id}"),
        "expires_at": expires, "amount_total": get("line_items[0][price_data][unit_amount]").and_then(|v| v.parse::<i64>().ok()),
        "currency": get("line_items[0][price_data][currency]"), "metadata": metadata,
        "client_reference_id": get("client_reference_id"),
    });
    if let Some(k) = key {
        s.inner
            .by_key
            .lock()
            .unwrap()
            .insert(k, (form, session.clone()));
    }
    Json(session).into_response()
}
