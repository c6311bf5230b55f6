//! The CRM API over HTTP against the local stack: keys and scopes, idempotency keys, cursors,
//! the account's whole picture, actions and bulk imports.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

use cobro::domain::TenantId;
use cobro::ports::Clock;
use cobro::repo::Scope;
use cobro_local::{demo, LocalStack, Settings};

const DEMO_KEY: &str = "cobro-demo-key";

struct Api {
    stack: Arc<LocalStack>,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// One request's answer: status, headers and the JSON body (or the text as a JSON string).
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Api {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let stack = LocalStack::open(Settings::for_tests(dir.path().to_path_buf()))
            .await
            .expect("local stack starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let router = stack.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            stack,
            base,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// A second tenant, a copy of the demo one under another id.
    async fn other_tenant(&self, id: &str) -> TenantId {
        let mut t = self
            .stack
            .store
            .tenant(&demo::tenant_id())
            .await
            .unwrap()
            .unwrap();
        t.id = TenantId::parse(id).unwrap();
        self.stack.store.put_tenant(&t).await.unwrap();
        t.id
    }

    async fn key(&self, tenant: &TenantId, scopes: &[Scope]) -> String {
        let now = self.stack.clock.now();
        self.stack
            .store
            .issue_api_key(tenant, "test", scopes, now)
            .await
            .unwrap()
            .secret
    }

    async fn send(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.send(Some(DEMO_KEY), method, path, body, &[]).await
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let a = self.call(method, path, body).await;
        assert!(
            a.status.is_success(),
            "{method} {path}: {} {}",
            a.status,
            a.body
        );
        a.body
    }
}

fn debtor(phone: &str) -> Value {
    json!({
        "name": "Test", "phone": phone, "time_zone": "America/Santiago",
        "consents": [{ "channel": "whatsapp", "granted": true }]
    })
}

fn account(debtor: &str, amount: i64) -> Value {
    json!({
        "debtor_id": debtor, "currency": "CLP", "principal_minor": amount,
        "balance_minor": amount, "due_date": "2026-03-13"
    })
}

#[tokio::test]
async fn keys_authenticate_scopes_authorize_and_tenants_stay_apart() {
    let api = Api::start().await;
    let demo = demo::tenant_id();
    let other = api.other_tenant("other").await;

    let none = api
        .send(None, "GET", "/v1/debtors/cl-maria", None, &[])
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers["content-type"], "application/problem+json");
    assert_eq!(none.body["status"], 401, "{}", none.body);
    let wrong = api
        .send(
            Some("cobro_nope_nope"),
            "GET",
            "/v1/debtors/cl-maria",
            None,
            &[],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    // A read-only key reads, but may not write or register payments.
    let reader = api.key(&demo, &[Scope::AccountsRead]).await;
    let read = api
        .send(Some(&reader), "GET", "/v1/debtors/cl-maria", None, &[])
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let write = api
        .send(
            Some(&reader),
            "PUT",
            "/v1/debtors/d-new",
            Some(debtor("+56911112222")),
            &[],
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.body);
    assert!(write.body["detail"]
        .as_str()
        .unwrap()
        .contains("accounts:write"));
    assert_eq!(
        api.call("GET", "/v1/debtors/d-new", None).await.status,
        StatusCode::NOT_FOUND,
        "a refused write stores nothing"
    );
    let pay = api
        .send(
            Some(&reader),
            "POST",
            "/v1/payments",
            Some(json!({"account_id": "CL-1001", "payment_id": "p1", "amount_minor": 1, "currency": "CLP"})),
            &[],
        )
        .await;
    assert_eq!(pay.status, StatusCode::FORBIDDEN);

    // A writer without read may write but not read.
    let writer = api.key(&demo, &[Scope::AccountsWrite]).await;
    let put = api
        .send(
            Some(&writer),
            "PUT",
            "/v1/debtors/d-new",
            Some(debtor("+56911112222")),
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    let get = api
        .send(Some(&writer), "GET", "/v1/debtors/d-new", None, &[])
        .await;
    assert_eq!(get.status, StatusCode::FORBIDDEN);

    // Another tenant's key with every scope never sees the demo tenant's debtor or account.
    let foreign = api.key(&other, &[Scope::Admin]).await;
    for path in ["/v1/debtors/cl-maria", "/v1/accounts/CL-1001"] {
        let a = api.send(Some(&foreign), "GET", path, None, &[]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {}", a.body);
    }
    let listed = api
        .send(Some(&foreign), "GET", "/v1/debtors", None, &[])
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);

    // A revoked key gets 401 from then on.
    let issued = api
        .stack
        .store
        .list_api_keys(&demo)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.scopes == vec![Scope::AccountsRead])
        .unwrap();
    let now = api.stack.clock.now();
    assert!(api
        .stack
        .store
        .revoke_api_key(&demo, &issued.id, now)
        .await
        .unwrap());
    let revoked = api
        .send(Some(&reader), "GET", "/v1/debtors/cl-maria", None, &[])
        .await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_runs_once_and_lists_page_by_cursor() {
    let api = Api::start().await;
    api.ok("PUT", "/v1/debtors/d-1", Some(debtor("+56911110000")))
        .await;
    api.ok("PUT", "/v1/accounts/A-1", Some(account("d-1", 50_000)))
        .await;
    let by = api
        .stack
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().days(3))
        .unwrap();
    let promise = json!({ "amount_minor": 20000, "by": by.to_string() });
    let path = "/v1/accounts/A-1/promises";
    let key = [("idempotency-key", "promise-1")];
    let first = api
        .send(Some(DEMO_KEY), "POST", path, Some(promise.clone()), &key)
        .await;
    assert!(first.status.is_success(), "{}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = api
        .send(Some(DEMO_KEY), "POST", path, Some(promise.clone()), &key)
        .await;
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body, "the retry gets the first answer");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let mut other = promise.clone();
    other["amount_minor"] = json!(30000);
    let reused = api
        .send(Some(DEMO_KEY), "POST", path, Some(other), &key)
        .await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reused.body
    );
    let view = api.ok("GET", "/v1/accounts/A-1", None).await;
    assert_eq!(view["account"]["promise"]["amount_minor"], 20000, "{view}");
    // Another tenant's same key is its own.
    let other_tenant = api.other_tenant("other").await;
    let foreign = api.key(&other_tenant, &[Scope::Admin]).await;
    let theirs = api
        .send(Some(&foreign), "POST", path, Some(promise), &key)
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);
    let bad = api
        .send(
            Some(DEMO_KEY),
            "POST",
            path,
            Some(json!({})),
            &[("idempotency-key", "")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "Idempotency-Key");

    // Debtors page by cursor: every one exactly once, in id order.
    for i in 0..7 {
        api.ok(
            "PUT",
            &format!("/v1/debtors/p-{i}"),
            Some(debtor(&format!("+5691111200{i}"))),
        )
        .await;
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/debtors?limit=3".to_string(),
            Some(c) => format!("/v1/debtors?limit=3&cursor={c}"),
        };
        let page = api.ok("GET", &path, None).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|d| d["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in order, none twice");
    assert!(seen.len() >= 8, "{seen:?}");
    for i in 0..7 {
        assert!(seen.contains(&format!("p-{i}")));
    }
    let bad = api.call("GET", "/v1/debtors?limit=0", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "limit");
    let bad = api.call("GET", "/v1/debtors?cursor=garbage", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}
