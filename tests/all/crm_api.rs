//! The CRM API over HTTP against the local stack: keys and scopes, idempotency keys, cursors,
//! the account's whole picture, actions and bulk imports.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

use cobro::domain::TenantId;
use cobro::ports::Clock;
use cobro::repo::Scope;
use cobro_local::demo;
use cobro_tests::fixtures;
use cobro_tests::local::{serve, LocalApi};

const DEMO_KEY: &str = "cobro-demo-key";

cobro_tests::local_api_newtype!(
    /// The local stack over HTTP, with requests that carry any key and headers.
    Api
);

/// One request's answer: status, headers and the JSON body (or the text as a JSON string).
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Api {
    async fn start() -> Self {
        Self(LocalApi::start().await)
    }

    /// The demo tenant as stored.
    async fn demo_tenant(&self) -> cobro::domain::Tenant {
        self.stack
            .store
            .tenant(&demo::tenant_id())
            .await
            .unwrap()
            .unwrap()
    }

    /// A second tenant, a copy of the demo one under another id.
    async fn other_tenant(&self, id: &str) -> TenantId {
        let mut t = self.demo_tenant().await;
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
        self.send_to(&self.base, key, method, path, body, headers)
            .await
    }

    /// As `send`, to the API served at `base`.
    async fn send_to(
        &self,
        base: &str,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{base}{path}"));
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

    /// The stack's CRM API with another bus and outbound queue (failing ones, in tests of
    /// failures), served on a port of its own; its base URL.
    async fn serve_with(
        &self,
        bus: Arc<dyn cobro::ports::Bus>,
        outbound: Option<Arc<dyn cobro::ports::Queue>>,
    ) -> String {
        self.serve_over(self.stack.crm.store.clone(), bus, outbound)
            .await
    }

    /// The stack's CRM API over another table (one that cancels a transaction, in tests of
    /// conflicts), served on a port of its own; its base URL.
    async fn serve_with_table(&self, table: Arc<dyn cobro::ports::Table>) -> String {
        let crm = &self.stack.crm;
        let store = cobro::repo::Store::new(table);
        self.serve_over(store, crm.bus.clone(), crm.outbound.clone())
            .await
    }

    async fn serve_over(
        &self,
        store: cobro::repo::Store,
        bus: Arc<dyn cobro::ports::Bus>,
        outbound: Option<Arc<dyn cobro::ports::Queue>>,
    ) -> String {
        let crm = &self.stack.crm;
        let api = cobro_crm_api::CrmApi {
            store,
            bus,
            clock: crm.clock.clone(),
            decider: cobro::collect::Decider::default(),
            stripe: None,
            outbound,
            events_out: crm.events_out.clone(),
            webhook_targets: crm.webhook_targets,
        };
        serve(cobro_crm_api::router(Arc::new(api))).await
    }

    /// The stack's CRM API over a bus that refuses its first publish (and the stack's outbound
    /// queue): its base URL, and the bus, to see what was published.
    async fn serve_with_a_bus_that_refuses_once(
        &self,
    ) -> (String, Arc<cobro_tests::flaky::FlakyBus>) {
        let crm = &self.stack.crm;
        let bus = cobro_tests::flaky::FlakyBus::new(crm.bus.clone(), 1);
        let base = self.serve_with(bus.clone(), crm.outbound.clone()).await;
        (base, bus)
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

    /// `GET path` with the demo key, which must succeed; the body.
    async fn get(&self, path: &str) -> Value {
        self.ok("GET", path, None).await
    }

    /// The account's whole picture (`GET /v1/accounts/{id}`).
    async fn picture(&self, account: &str) -> Value {
        self.get(&format!("/v1/accounts/{account}")).await
    }

    /// `POST path` with the demo key, which must succeed; the body.
    async fn post(&self, path: &str, body: Value) -> Value {
        self.ok("POST", path, Some(body)).await
    }

    /// `POST path` with the demo key, refused or not.
    async fn try_post(&self, path: &str, body: Value) -> Answer {
        self.call("POST", path, Some(body)).await
    }

    /// Upserts the debtor `id` (see `debtor`) with the demo key.
    async fn put_debtor(&self, id: &str, phone: &str) -> Value {
        self.ok("PUT", &format!("/v1/debtors/{id}"), Some(debtor(phone)))
            .await
    }

    /// Upserts the account `id` with the demo key.
    async fn put_account(&self, id: &str, body: Value) -> Value {
        self.ok("PUT", &format!("/v1/accounts/{id}"), Some(body))
            .await
    }

    /// Monday 2026-03-16, noon in Santiago (inside the contact window): debtor `debtor` at
    /// `phone` with `accounts`, each owing `amount` ten days past due.
    async fn on_a_monday_with_overdue_accounts(
        &self,
        debtor: &str,
        phone: &str,
        accounts: &[&str],
        amount: i64,
    ) {
        self.set_clock("2026-03-16T15:00:00Z").await;
        self.put_debtor(debtor, phone).await;
        for id in accounts {
            self.put_account(id, overdue_account(self, debtor, amount))
                .await;
        }
    }

    /// The debtor asked the bot for a pause (a vulnerability, open-ended): a hold on the
    /// person, as the chat would set it. The instant it was set.
    async fn debtor_asked_the_bot_for_a_pause(&self, debtor: &str) -> jiff::Timestamp {
        let d = cobro::domain::DebtorId::parse(debtor).unwrap();
        let now = self.stack.clock.now();
        self.stack
            .store
            .set_debtor_holds(&demo::tenant_id(), &d, |h| {
                h.pause(None, "vulnerability".into(), now)
            })
            .await
            .unwrap();
        now
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
async fn unknown_routes_are_404_with_or_without_a_key_and_the_document_needs_none() {
    let api = Api::start().await;
    for key in [None, Some(DEMO_KEY)] {
        let a = api.send(key, "GET", "/v1/no-such-thing", None, &[]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "key {key:?}: {}", a.body);
        assert_eq!(a.headers["content-type"], "application/problem+json");
        assert_eq!(a.body["status"], 404, "{}", a.body);
    }
    let doc = api.send(None, "GET", "/v1/openapi.json", None, &[]).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["paths"]["/v1/debtors"].is_object());
    // A known route without a key is 401, whatever its method.
    for (method, path) in [("GET", "/v1/debtors"), ("POST", "/v1/payments")] {
        let a = api.send(None, method, path, None, &[]).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

/// The plans Lambda's router: the plan and promise routes only, under the same guard.
#[tokio::test]
async fn the_plans_router_serves_only_plan_routes_under_the_same_guard() {
    let api = Api::start().await;
    let base = serve(cobro_crm_api::plans_router(api.stack.crm.clone())).await;
    let reader = api.key(&demo::tenant_id(), &[Scope::AccountsRead]).await;
    let quote = json!({"per_period_minor": 30000, "frequency": "monthly"});
    let send = |key: Option<String>, path: &str, body: Value| {
        let mut req = api.http.post(format!("{base}{path}")).json(&body);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        async move { req.send().await.expect("request").status() }
    };
    let quote_path = "/v1/accounts/CL-1001/plans/quote";
    assert_eq!(
        send(None, quote_path, quote.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(Some(reader.clone()), quote_path, quote.clone()).await,
        StatusCode::OK,
        "a quote changes nothing: reading is enough"
    );
    let accept = json!({"instalments": 3, "frequency": "monthly", "first_due": "2026-03-20"});
    assert_eq!(
        send(Some(reader), "/v1/accounts/CL-1001/plans", accept).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(Some(DEMO_KEY.into()), "/v1/payments", json!({})).await,
        StatusCode::NOT_FOUND,
        "the CRM API's other routes are not the plans function's"
    );
}

#[tokio::test]
async fn a_refusal_for_scope_is_not_kept_under_the_idempotency_key() {
    let api = Api::start().await;
    let demo = demo::tenant_id();
    let reader = api.key(&demo, &[Scope::AccountsRead]).await;
    let payment = json!({"account_id": "CL-1001", "payment_id": "p-scope", "amount_minor": 1000, "currency": "CLP"});
    let headers = [("idempotency-key", "pay-once")];
    let refused = api
        .send(
            Some(&reader),
            "POST",
            "/v1/payments",
            Some(payment.clone()),
            &headers,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    // The same request under the same key, now with a key that may register payments, runs.
    let accepted = api
        .send(
            Some(DEMO_KEY),
            "POST",
            "/v1/payments",
            Some(payment),
            &headers,
        )
        .await;
    assert!(
        accepted.status.is_success(),
        "{} {}",
        accepted.status,
        accepted.body
    );
    assert!(accepted.headers.get("idempotent-replayed").is_none());
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
    api.put_debtor("d-1", "+56911110000").await;
    api.put_account("A-1", account("d-1", 50_000)).await;
    let by = api.date_in(3);
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
    let view = api.picture("A-1").await;
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
        let page = api.get(&path).await;
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

/// The stack's clock date in UTC, shifted by `days`.
fn day(api: &Api, days: i64) -> String {
    api.date_in(days).to_string()
}

/// An account of `amount` owed by `debtor` (see `account`), ten days past due by the stack's
/// clock.
fn overdue_account(api: &Api, debtor: &str, amount: i64) -> Value {
    let mut a = account(debtor, amount);
    a["due_date"] = json!(day(api, -10));
    a
}

/// Plans and promises judge "today" where the debtor lives: 22:00 in Santiago on the 16th (the
/// 17th in UTC) still takes a first instalment, a down payment and a promise on the 16th; 00:30
/// in Madrid on the 17th (the 16th in UTC) no longer does.
#[tokio::test]
async fn plans_and_promises_take_today_in_the_debtors_zone() {
    let api = Api::start().await;
    let plan = |first_due: &str| {
        json!({ "instalments": 2, "frequency": "monthly", "first_due": first_due,
        "down_payment_minor": 10000 })
    };
    let promise = json!({ "amount_minor": 10000, "by": "2026-03-16" });

    // Santiago (UTC−3), 22:00 on Monday the 16th.
    api.set_clock("2026-03-17T01:00:00Z").await;
    api.put_debtor("d-scl", "+56911110001").await;
    api.put_account("SCL-1", account("d-scl", 50_000)).await;
    api.put_account("SCL-2", account("d-scl", 50_000)).await;
    let quote = api
        .ok(
            "POST",
            "/v1/accounts/SCL-1/plans/quote",
            Some(plan("2026-03-16")),
        )
        .await;
    assert_eq!(
        quote["options"][0]["instalments"][0]["due"], "2026-03-16",
        "{quote}"
    );
    let accepted = api
        .ok("POST", "/v1/accounts/SCL-1/plans", Some(plan("2026-03-16")))
        .await;
    let first = &accepted["terms"]["instalments"];
    assert_eq!(
        (&first[0]["number"], &first[0]["due"], &first[1]["due"]),
        (&json!(0), &json!("2026-03-16"), &json!("2026-03-16")),
        "the down payment is dated the debtor's today: {accepted}"
    );
    api.ok("POST", "/v1/accounts/SCL-2/promises", Some(promise.clone()))
        .await;

    // Madrid (UTC+1), 00:30 on Tuesday the 17th.
    api.set_clock("2026-03-16T23:30:00Z").await;
    let mut madrid = debtor("+34612345678");
    madrid["time_zone"] = json!("Europe/Madrid");
    api.ok("PUT", "/v1/debtors/d-mad", Some(madrid)).await;
    let mut acc = account("d-mad", 50_000);
    acc["currency"] = json!("EUR");
    api.put_account("MAD-1", acc).await;
    for path in ["/v1/accounts/MAD-1/plans/quote", "/v1/accounts/MAD-1/plans"] {
        let late = api.call("POST", path, Some(plan("2026-03-16"))).await;
        assert_eq!(
            late.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            late.body
        );
        assert_eq!(late.body["field"], "first_due", "{path}: {}", late.body);
        assert!(
            late.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("2026-03-17")),
            "{path}: {}",
            late.body
        );
    }
    let late = api
        .call("POST", "/v1/accounts/MAD-1/promises", Some(promise))
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.body);
    assert_eq!(late.body["field"], "by", "{}", late.body);
    let accepted = api
        .ok("POST", "/v1/accounts/MAD-1/plans", Some(plan("2026-03-17")))
        .await;
    assert_eq!(
        accepted["terms"]["instalments"][0]["due"], "2026-03-17",
        "{accepted}"
    );
}

#[tokio::test]
async fn actions_stop_and_restart_collection_and_say_who_and_why() {
    let api = Api::start().await;
    // Monday noon in Santiago: inside the contact window.
    api.set_clock("2026-03-16T15:00:00Z").await;
    api.put_debtor("d-1", "+56911110000").await;
    let acc = overdue_account(&api, "d-1", 50_000);
    api.put_account("A-1", acc.clone()).await;

    let picture = api.picture("A-1").await;
    assert_eq!(picture["days_past_due"], 10, "{picture}");
    assert_eq!(picture["bucket"], "1-30");
    assert_eq!(picture["balance"]["minor"], 50_000, "{picture}");
    assert_eq!(picture["collecting"], true);
    assert!(picture["next_action_at"].is_string(), "{picture}");

    // Bad input changes nothing.
    let bad = api
        .try_post("/v1/accounts/A-1/pause", json!({ "reason": " " }))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "reason");
    let bad = api
        .try_post(
            "/v1/accounts/A-1/close",
            json!({ "reason": "x", "until": "2030-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(bad.body["field"], "until", "{}", bad.body);
    let missing = api
        .try_post("/v1/accounts/NOPE/pause", json!({ "reason": "x" }))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(api.picture("A-1").await["actions"], json!([]));

    // A pause takes the account off the schedule: the tick contacts nobody about it.
    let paused = api
        .post(
            "/v1/accounts/A-1/pause",
            json!({ "reason": "breathing space" }),
        )
        .await;
    assert_eq!(paused["next_action_at"], Value::Null, "{paused}");
    assert_eq!(paused["account"]["holds"]["paused"], true);
    let tick = api.tick().await;
    let picture = api.picture("A-1").await;
    assert_eq!(picture["attempts"], json!([]), "{tick} {picture}");
    assert_eq!(picture["collecting"], false);
    let action = &picture["actions"][0];
    assert_eq!(action["action"], "pause");
    assert_eq!(action["reason"], "breathing space");
    assert!(
        action["by"].as_str().unwrap().starts_with("key:"),
        "{action}"
    );

    // A CRM update that does not restate the holds keeps the pause.
    api.put_account("A-1", acc.clone()).await;
    let picture = api.picture("A-1").await;
    assert_eq!(picture["account"]["holds"]["paused"], true, "{picture}");

    // Resuming puts it back on the schedule, and the tick contacts the debtor.
    let resumed = api
        .post(
            "/v1/accounts/A-1/resume",
            json!({ "reason": "plan agreed by phone" }),
        )
        .await;
    assert!(resumed["next_action_at"].is_string(), "{resumed}");
    assert_eq!(resumed["account"]["holds"]["paused"], false);

    let tick = api.tick().await;
    assert!(tick["contacted"].as_u64().unwrap() >= 1, "{tick}");
    let picture = api.picture("A-1").await;
    assert_eq!(picture["attempts"][0]["status"], "queued", "{picture}");

    // A lawsuit stops it by law: the message already queued is cancelled, not sent.
    api.post(
        "/v1/accounts/A-1/lawsuit",
        json!({ "reason": "served 2026-03-01" }),
    )
    .await;
    api.ok("POST", "/_local/drain", None).await;
    api.tick().await;
    assert!(api.stack.channel.sent().is_empty(), "nothing was sent");
    let picture = api.picture("A-1").await;
    assert_eq!(picture["account"]["holds"]["lawsuit_served"], true);
    assert_eq!(picture["next_action_at"], Value::Null);
    assert_eq!(
        picture["attempts"].as_array().unwrap().len(),
        1,
        "{picture}"
    );
    assert_eq!(picture["attempts"][0]["status"], "cancelled", "{picture}");
    let kinds: Vec<&str> = picture["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["pause", "resume", "lawsuit"]);

    // Closing is final: a resume is refused.
    api.post(
        "/v1/accounts/A-1/write-off",
        json!({ "reason": "uncollectable" }),
    )
    .await;
    let picture = api.picture("A-1").await;
    assert_eq!(picture["account"]["status"], "closed");
    let again = api
        .try_post("/v1/accounts/A-1/resume", json!({ "reason": "x" }))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

fn import_rows(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| {
            json!({
                "debtor_id": format!("{prefix}-d{}", i / 2),
                "name": format!("Deudor {i}"),
                "phone": format!("+569{:08}", 10_000_000 + i / 2),
                "time_zone": "America/Santiago",
                "whatsapp_consent": true,
                "account_id": format!("{prefix}-a{i}"),
                "currency": "CLP",
                "principal_minor": 10_000 + i,
                "balance_minor": 10_000 + i,
                "due_date": "2026-03-01",
                "tags": "import;test"
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn import(api: &Api, content_type: &str, body: String) -> Answer {
    let res = api
        .http
        .post(format!("{}/v1/imports", api.base))
        .header("authorization", format!("Bearer {DEMO_KEY}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

#[tokio::test]
async fn an_import_applies_good_rows_once_names_bad_ones_and_half_applies_none() {
    let api = Api::start().await;
    let mut lines: Vec<String> = import_rows(6, "n").lines().map(str::to_string).collect();
    // Row 2: a bad phone; row 4: an unknown currency; row 5: a repeated account.
    let mut r: Value = serde_json::from_str(&lines[1]).unwrap();
    r["phone"] = json!("555");
    lines[1] = r.to_string();
    let mut r: Value = serde_json::from_str(&lines[3]).unwrap();
    r["currency"] = json!("XXX");
    lines[3] = r.to_string();
    let mut r: Value = serde_json::from_str(&lines[4]).unwrap();
    r["account_id"] = json!("n-a0");
    lines[4] = r.to_string();
    let body = lines.join("\n");

    let report = import(&api, "application/x-ndjson", body.clone()).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let b = &report.body;
    assert_eq!(b["rows"], 6, "{b}");
    assert_eq!(b["applied"], 3, "{b}");
    assert_eq!(b["rejected"], 3, "{b}");
    let errors: Vec<(u64, &str)> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [(2, "phone"), (4, "currency"), (5, "account_id")],
        "{b}"
    );
    // Row 2's debtor (n-d0, with the bad phone) and account were not written: its debtor n-d0
    // exists only through row 1, with row 1's phone.
    let d0 = api.get("/v1/debtors/n-d0").await;
    assert_eq!(d0["debtor"]["phone"], "+56910000000");
    assert_eq!(
        api.call("GET", "/v1/accounts/n-a1", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call("GET", "/v1/debtors/n-d1", None).await.status,
        StatusCode::OK,
        "row 3 applied its debtor"
    );
    let a2 = api.picture("n-a2").await;
    assert_eq!(a2["account"]["tags"], json!(["import", "test"]));
    assert!(
        a2["next_action_at"].is_string(),
        "imported accounts are scheduled"
    );

    // The same file again creates nothing new.
    let again = import(&api, "application/x-ndjson", body).await;
    assert_eq!(again.body["applied"], 3);
    assert_eq!(again.body["debtors_created"], 0, "{}", again.body);
    assert_eq!(again.body["accounts_created"], 0);

    // CSV, with a missing column value named.
    let csv = "debtor_id,name,phone,time_zone,account_id,currency,principal_minor,balance_minor,due_date,whatsapp_consent\n\
               c-d1,Ana,+56920000001,America/Santiago,c-a1,CLP,5000,5000,2026-03-01,true\n\
               c-d2,Beto,+56920000002,America/Santiago,c-a2,CLP,lots,5000,2026-03-01,true\n";
    let report = import(&api, "text/csv", csv.to_string()).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert_eq!(report.body["applied"], 1, "{}", report.body);
    assert_eq!(report.body["errors"][0]["row"], 2);
    assert_eq!(
        report.body["errors"][0]["field"], "principal_minor",
        "{}",
        report.body
    );
    api.picture("c-a1").await;

    // Limits and formats.
    let wrong = import(&api, "application/json", "{}".into()).await;
    assert_eq!(wrong.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let empty = import(&api, "text/csv", "debtor_id\n".into()).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let huge = import(&api, "application/x-ndjson", "{}\n".repeat(10_001)).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", huge.body);
}

#[tokio::test]
async fn an_import_of_ten_thousand_rows_fits_in_one_request() {
    let api = Api::start().await;
    let body = import_rows(10_000, "big");
    let started = std::time::Instant::now();
    let report = import(&api, "application/x-ndjson", body).await;
    let took = started.elapsed();
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert_eq!(
        report.body["applied"], 10_000,
        "{}",
        report.body["errors"][0]
    );
    assert_eq!(report.body["debtors_created"], 5_000);
    println!("imported 10,000 rows on SQLite in {took:?}");
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_key_and_covers_the_routes() {
    let api = Api::start().await;
    let doc = api.send(None, "GET", "/v1/openapi.json", None, &[]).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    for p in [
        "/v1/debtors",
        "/v1/debtors/{id}",
        "/v1/accounts/{id}",
        "/v1/accounts/{id}/pause",
        "/v1/imports",
        "/v1/payments",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    assert_eq!(
        doc.body["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
}

/// The API serves a copy of the document made ahead of time (so the Lambda binary does not
/// carry utoipa's generation); it must be what the annotations generate now.
#[test]
fn the_served_openapi_document_is_what_the_annotations_generate() {
    let document = cobro_crm_api::openapi::document();
    let generated = serde_json::to_value(&document).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../functions/crm-api/openapi.json"
    );
    if std::env::var_os("COBRO_UPDATE_OPENAPI").is_some() {
        // The document itself, not `generated`: its fields keep utoipa's order.
        let text = serde_json::to_string_pretty(&document).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
        return;
    }
    let served: Value = serde_json::from_str(cobro_crm_api::openapi::DOCUMENT).unwrap();
    assert!(
        served == generated,
        "functions/crm-api/openapi.json is stale: run \
         COBRO_UPDATE_OPENAPI=1 cargo test -p cobro-tests openapi, and commit the file"
    );
}

#[tokio::test]
async fn consents_are_recorded_and_settings_take_admin_and_only_tighten() {
    let api = Api::start().await;
    let opt_out = json!({ "channel": "whatsapp", "granted": false, "source": "call-center" });
    let d = api
        .ok(
            "POST",
            "/v1/debtors/cl-maria/consents",
            Some(opt_out.clone()),
        )
        .await;
    let last = d["consents"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["granted"], false, "{d}");
    assert_eq!(last["source"], "call-center");
    let missing = api
        .call("POST", "/v1/debtors/nobody/consents", Some(opt_out))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad = api
        .try_post(
            "/v1/debtors/cl-maria/consents",
            json!({ "channel": "pigeon", "granted": true }),
        )
        .await;
    assert_eq!(bad.body["field"], "channel", "{}", bad.body);

    let settings = api.get("/v1/settings").await;
    assert_eq!(settings["country"], "CL", "{settings}");
    let writer = api.key(&demo::tenant_id(), &[Scope::AccountsWrite]).await;
    let refused = api
        .send(
            Some(&writer),
            "PUT",
            "/v1/settings/strategies",
            Some(json!({ "strategies": [] })),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // A book whose default strategy does not exist is refused, naming the field.
    let bad = api
        .call(
            "PUT",
            "/v1/settings/strategies",
            Some(json!({ "strategies": [], "default": "nope" })),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(
        bad.body["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("strategies.")),
        "{}",
        bad.body
    );
    assert_eq!(
        api.get("/v1/settings").await["strategies"],
        Value::Null,
        "a refused book stores nothing"
    );
}

#[tokio::test]
async fn templates_list_what_to_register_at_meta_with_the_tenants_own_names() {
    let api = Api::start().await;
    let all = api.get("/v1/templates").await;
    let all = all.as_array().unwrap();
    assert_eq!(
        all.len(),
        12,
        "three reminders and the receipt in es, pt_BR, en"
    );
    let before = all
        .iter()
        .find(|t| t["name"] == "payment_reminder_before_due" && t["language"] == "es")
        .unwrap();
    assert_eq!(before["category"], "UTILITY");
    assert_eq!(
        before["parameters"],
        json!(["name", "amount", "creditor", "due date"])
    );
    assert!(before["body"].as_str().unwrap().starts_with("Hola {{1}}"));
    let book = json!({
        "strategies": [{ "id": "soft", "steps": [
            { "day": -2, "templates": { "es": "acme_recordatorio" } },
            { "day": 10, "templates": { "pt": "acme_atraso" } }
        ]}],
        "default": "soft"
    });
    api.ok("PUT", "/v1/settings/strategies", Some(book)).await;
    let all = api.get("/v1/templates").await;
    let own: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["used_by"] != json!(["built-in"]))
        .collect();
    assert_eq!(own.len(), 2, "{all}");
    assert_eq!(own[0]["name"], "acme_recordatorio");
    assert_eq!(own[0]["used_by"], json!(["soft: day -2"]));
    assert_eq!(own[0]["body"], Value::Null);
    assert_eq!(own[1]["language"], "pt_BR");
    assert_eq!(own[1]["parameters"].as_array().unwrap().len(), 4);
}

/// A tenant replacing its strategies clears what the sender remembers of Meta refusing the
/// templates they name (it may have fixed them at Meta): they are tried at their next message.
/// The others stay held; a book refused as invalid clears nothing.
#[tokio::test]
async fn replacing_the_strategies_clears_the_refusals_of_the_templates_they_name() {
    use cobro::domain::Language;
    use cobro::repo::TemplateRefusal;

    let api = Api::start().await;
    let t = demo::tenant_id();
    let now = api.stack.clock.now();
    let refusal = |template: &str, language| TemplateRefusal {
        tenant: t.clone(),
        template: template.into(),
        language,
        code: 132001,
        reason: "Template name does not exist in the translation".into(),
        tried_at: now,
        refused_at: now,
        until: now + jiff::SignedDuration::from_hours(1),
    };
    let refused = [
        ("acme_recordatorio", Language::Es),
        ("acme_recordatorio", Language::Pt),
        ("payment_reminder_overdue", Language::Es),
    ];
    for (name, lang) in refused {
        assert!(api
            .stack
            .store
            .record_template_refusal(&refusal(name, lang))
            .await
            .unwrap());
    }
    let held = |name: &'static str, lang| {
        let store = api.stack.store.clone();
        let t = t.clone();
        async move {
            store
                .template_refusal(&t, name, lang, now)
                .await
                .unwrap()
                .is_some()
        }
    };
    let book = json!({
        "strategies": [{ "id": "soft", "steps": [
            { "day": -2, "templates": { "es": "acme_recordatorio" } }
        ]}],
        "default": "soft"
    });
    let mut invalid = book.clone();
    invalid["default"] = json!("nope");
    let bad = api
        .call("PUT", "/v1/settings/strategies", Some(invalid))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(held("acme_recordatorio", Language::Es).await);
    // The templates' list says which are held back, by whom and until when; the tenant's
    // own are listed only once its strategies name them.
    let listed = api.ok("GET", "/v1/templates", None).await;
    let listed_held: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["held"].is_null())
        .map(|t| (t["name"].clone(), t["language"].clone()))
        .collect();
    assert_eq!(
        listed_held,
        vec![(json!("payment_reminder_overdue"), json!("es"))],
        "{listed}"
    );
    let overdue = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "payment_reminder_overdue" && t["language"] == "es")
        .unwrap();
    assert_eq!(overdue["held"]["code"], 132001);
    assert_eq!(
        overdue["held"]["until"],
        json!((now + jiff::SignedDuration::from_hours(1)).to_string())
    );

    api.ok("PUT", "/v1/settings/strategies", Some(book.clone()))
        .await;
    assert!(!held("acme_recordatorio", Language::Es).await);
    let listed = api.ok("GET", "/v1/templates", None).await;
    let acme = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "acme_recordatorio")
        .unwrap();
    assert_eq!(acme["held"], Value::Null, "cleared by the new strategies");
    assert!(
        held("acme_recordatorio", Language::Pt).await,
        "not named in Portuguese"
    );
    assert!(held("payment_reminder_overdue", Language::Es).await);
    // Again: the same.
    api.ok("PUT", "/v1/settings/strategies", Some(book)).await;
    assert!(!held("acme_recordatorio", Language::Es).await);
}

/// The CRM API's own writes on DynamoDB (moto): keys issued, found and revoked in transactions,
/// idempotency records with their conditions, rows of an import and an account action.
#[tokio::test]
async fn keys_idempotency_rows_and_actions_hold_on_dynamodb() {
    use cobro::domain::{AccountId, AccountStatus, Debtor};
    use cobro::repo::{AccountAction, Begin, SavedResponse, Store};
    use cobro_tests::moto::{moto, unique};

    let Some(moto) = moto().await else { return };
    let store = Store::new(Arc::new(moto.create_table(&unique("crmapi")).await));
    let t = TenantId::parse("acme").unwrap();
    let now = jiff::Timestamp::from_second(1_790_000_000).unwrap();

    let issued = store
        .issue_api_key(&t, "crm", &[Scope::AccountsRead], now)
        .await
        .unwrap();
    assert_eq!(
        store.api_key(&issued.secret).await.unwrap(),
        Some(issued.record.clone())
    );
    assert!(store.revoke_api_key(&t, &issued.id, now).await.unwrap());
    assert!(store
        .api_key(&issued.secret)
        .await
        .unwrap()
        .unwrap()
        .is_revoked());
    assert_eq!(store.list_api_keys(&t).await.unwrap().len(), 1);

    assert_eq!(
        store.begin_idempotent(&t, "k", "h", now).await.unwrap(),
        Begin::Run { first_at: now }
    );
    assert_eq!(
        store.begin_idempotent(&t, "k", "h", now).await.unwrap(),
        Begin::InFlight
    );
    // A failed attempt frees the key; the retry runs as of the first attempt.
    let later = now + jiff::SignedDuration::from_secs(30);
    store
        .abandon_idempotent(&t, "k", "h", now, now, now)
        .await
        .unwrap();
    assert_eq!(
        store.begin_idempotent(&t, "k", "h", later).await.unwrap(),
        Begin::Run { first_at: now }
    );
    assert_eq!(
        store.begin_idempotent(&t, "k", "x", now).await.unwrap(),
        Begin::Mismatch
    );
    let saved = SavedResponse {
        status: 200,
        content_type: None,
        body: "{}".into(),
    };
    store
        .finish_idempotent(&t, "k", "h", now, saved.clone(), now)
        .await
        .unwrap();
    assert_eq!(
        store.begin_idempotent(&t, "k", "h", now).await.unwrap(),
        Begin::Replay(saved)
    );

    let rows = 100;
    let started = std::time::Instant::now();
    for i in 0..rows {
        let phone = format!("+5691000{:04}", i / 2);
        let debtor = Debtor {
            language: Default::default(),
            ..fixtures::debtor(&t, &format!("d{}", i / 2), &phone)
        };
        let account = fixtures::open_account(&t, &format!("a{i}"), &debtor.id, 1000, "2026-03-01");
        let (_, written) = store
            .upsert_debtor_and_account(
                &debtor,
                &account.id,
                now,
                |_| account.clone(),
                |_, _| Some(now),
            )
            .await
            .unwrap();
        assert_eq!(written.debtor_created, i % 2 == 0);
        assert!(written.account_created);
    }
    println!(
        "{rows} import rows on moto: {:.1} ms a row",
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(rows)
    );
    let a0 = AccountId::parse("a0").unwrap();
    let account = store.account(&t, &a0).await.unwrap().unwrap();
    assert_eq!(account.version, 1);
    let mut closed = account.clone();
    closed.status = AccountStatus::Closed;
    let action = AccountAction {
        action: "close".into(),
        at: now,
        by: "key:test".into(),
        reason: "sold".into(),
        until: None,
    };
    store
        .apply_account_action(&closed, None, &action)
        .await
        .unwrap();
    // The same stale version again is refused: the action is not recorded twice.
    assert!(store
        .apply_account_action(&closed, None, &action)
        .await
        .is_err());
    assert_eq!(store.account_actions(&t, &a0).await.unwrap(), vec![action]);
    assert_eq!(
        store.account(&t, &a0).await.unwrap().unwrap().status,
        AccountStatus::Closed
    );
}

#[tokio::test]
async fn a_key_record_from_before_scopes_is_refused_not_a_server_error() {
    use cobro::ports::Key;
    use sha2::Digest;
    let api = Api::start().await;
    let secret = "old-style-key";
    let hash = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
    let mut item = Key::new(format!("APIKEY#{hash}"), "KEY").into_item();
    item.insert("kind".into(), "api_key".into());
    item.insert("tenant".into(), "demo".into());
    item.insert("name".into(), "old".into());
    item.insert("scopes".into(), json!(["*"]));
    api.stack.store.table().put(item, None).await.unwrap();
    let a = api
        .send(Some(secret), "GET", "/v1/debtors/cl-maria", None, &[])
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
}

#[tokio::test]
async fn concurrent_retries_of_one_key_run_it_once() {
    let api = Api::start().await;
    let body = import_rows(2_000, "c");
    let send = || {
        api.http
            .post(format!("{}/v1/imports", api.base))
            .header("authorization", format!("Bearer {DEMO_KEY}"))
            .header("content-type", "application/x-ndjson")
            .header("idempotency-key", "import-1")
            .body(body.clone())
            .send()
    };
    let tasks: Vec<_> = (0..4).map(|_| tokio::spawn(send())).collect();
    let mut ran = 0;
    for task in tasks {
        let res = task.await.unwrap().expect("request");
        let replayed = res.headers().contains_key("idempotent-replayed");
        match res.status() {
            StatusCode::OK if !replayed => ran += 1,
            StatusCode::OK | StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ran, 1, "exactly one of the concurrent requests ran");
    let again = send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let report: Value = again.json().await.unwrap();
    assert_eq!(report["accounts_created"], 2_000, "the first run's report");
}

/// A hand-back to the bot is saved with its announcement, which is cleared once published: a
/// retry after a failed publish announces it, and only once.
#[tokio::test]
async fn a_hand_back_whose_announcement_failed_is_announced_on_retry() {
    use cobro::chat::Mode;
    use cobro::domain::DebtorId;

    let api = Api::start().await;
    let crm = &api.stack.crm;
    let (base, bus) = api.serve_with_a_bus_that_refuses_once().await;
    let (t, d) = (demo::tenant_id(), DebtorId::parse("cl-maria").unwrap());
    a_person_owns_the_conversation(&api, &d).await;
    let release = || async {
        let path = "/v1/conversations/cl-maria/release";
        let a = api
            .send_to(&base, Some(DEMO_KEY), "POST", path, None, &[])
            .await;
        (a.status, a.body)
    };
    // The bus refuses: the change is made, the announcement waits on the record.
    let (status, body) = release().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(bus.take().is_empty());
    assert!(crm.store.handoff(&t, &d).await.unwrap().is_none());
    let (waiting, _) = crm.store.chat_record(&t, &d).await.unwrap();
    assert_eq!(waiting.state.mode, Mode::Bot);
    assert!(waiting.announce.is_some());
    // The retry has nothing left to change, and announces it.
    let (status, body) = release().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], false, "{body}");
    let out = bus.take();
    let kinds: Vec<&str> = out.iter().map(|e| e.detail_type.as_str()).collect();
    assert_eq!(kinds, ["HandoffReleased"]);
    assert_eq!(out[0].detail["debtor"], "cl-maria");
    let (done, _) = crm.store.chat_record(&t, &d).await.unwrap();
    assert!(done.announce.is_none());
    // Once out, it is not announced again.
    let (status, _) = release().await;
    assert_eq!(status, StatusCode::OK);
    assert!(bus.take().is_empty());
}

/// A consent without `at` is as of the request. Retried under its `Idempotency-Key` after a
/// failed publish, it is the same request: one consent kept, and the same event announced.
#[tokio::test]
async fn a_consent_retried_after_a_server_error_is_recorded_once() {
    use cobro::domain::DebtorId;

    let api = Api::start().await;
    let crm = &api.stack.crm;
    let (base, bus) = api.serve_with_a_bus_that_refuses_once().await;
    let (t, d) = (demo::tenant_id(), DebtorId::parse("cl-maria").unwrap());
    let before = crm
        .store
        .debtor(&t, &d)
        .await
        .unwrap()
        .unwrap()
        .consents
        .len();
    let post = || async {
        let body = json!({ "channel": "sms", "granted": false, "source": "call-center" });
        let path = "/v1/debtors/cl-maria/consents";
        let key = [("idempotency-key", "opt-out-1")];
        let a = api
            .send_to(&base, Some(DEMO_KEY), "POST", path, Some(body), &key)
            .await;
        (a.status, a.body)
    };

    // The consent is recorded, its announcement refused.
    let (status, body) = post().await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(bus.take().is_empty());
    let first = crm.store.debtor(&t, &d).await.unwrap().unwrap().consents;
    assert_eq!(first.len(), before + 1);

    // A minute later the CRM retries with the same key.
    api.stack.clock.advance(jiff::SignedDuration::from_mins(1));
    let (status, body) = post().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = crm.store.debtor(&t, &d).await.unwrap().unwrap().consents;
    assert_eq!(now, first, "the retry records the same consent, once");
    let out = bus.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].detail_type, "OptedOut");
    assert_eq!(
        out[0].detail["at"],
        json!(first.last().unwrap().at),
        "{}",
        out[0].detail
    );

    // A third try is answered from the kept response.
    let (status, _) = post().await;
    assert_eq!(status, StatusCode::OK);
    assert!(bus.take().is_empty());
}

/// An export asked for without an id, under an `Idempotency-Key`, that could not be queued
/// (503): the retry is the same job, queued then, not a second one left queued forever.
#[tokio::test]
async fn an_export_retried_after_a_503_is_the_same_job() {
    let api = Api::start().await;
    let (base, bus) = api.serve_with_a_bus_that_refuses_once().await;
    let post = || async {
        let body = json!({
            "kind": "payments", "format": "csv",
            "period": { "from": "2026-03-01", "to": "2026-03-31" }
        });
        let key = [("idempotency-key", "ledger-march")];
        let a = api
            .send_to(
                &base,
                Some(DEMO_KEY),
                "POST",
                "/v1/exports",
                Some(body),
                &key,
            )
            .await;
        (a.status, a.body)
    };

    let (status, body) = post().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(bus.take().is_empty());

    // The retry finds the job the first attempt made (200, not a new job's 202) and queues it.
    let (status, body) = post().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["export"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["export"]["status"], "queued", "{body}");
    let out = bus.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].detail["job"], id.as_str(), "{}", out[0].detail);

    // Another key is another job.
    let other = api
        .send_to(
            &base,
            Some(DEMO_KEY),
            "POST",
            "/v1/exports",
            Some(json!({
                "kind": "payments", "format": "csv",
                "period": { "from": "2026-03-01", "to": "2026-03-31" }
            })),
            &[("idempotency-key", "ledger-march-2")],
        )
        .await;
    assert_eq!(other.status, StatusCode::ACCEPTED, "{}", other.body);
    assert_ne!(other.body["export"]["id"], id.as_str());
}

/// The demo debtor `d` wrote a minute ago and asked for a person, who took the conversation.
async fn a_person_owns_the_conversation(api: &Api, d: &cobro::domain::DebtorId) {
    use cobro::chat::Mode;
    use cobro::domain::ChannelKind;
    use cobro::repo::Handoff;

    let (t, store) = (demo::tenant_id(), &api.stack.store);
    let now = api.stack.clock.now();
    let wrote = now.checked_sub(jiff::SignedDuration::from_mins(1)).unwrap();
    store
        .touch_inbound_window(&t, d, ChannelKind::Whatsapp, wrote)
        .await
        .unwrap();
    let (mut record, version) = store.chat_record(&t, d).await.unwrap();
    record.state.mode = Mode::Agent {
        since: now,
        reason: "asked".into(),
    };
    store
        .save_chat_record(&t, d, &record, version)
        .await
        .unwrap();
    let handoff = Handoff {
        tenant: t.clone(),
        debtor: d.clone(),
        reason: "asked".into(),
        urgent: false,
        opened_at: now,
        agent: Some("carla".into()),
    };
    store.open_handoff(&handoff).await.unwrap();
}

/// An agent's reply saved but not queued (the queue failed) is queued by the retry under the
/// same `Idempotency-Key`, and reaches the debtor once.
#[tokio::test]
async fn an_agent_reply_whose_queueing_failed_is_queued_by_the_retry() {
    let api = Api::start().await;
    let crm = &api.stack.crm;
    let outbound = cobro_tests::flaky::FlakyQueue::new(crm.outbound.clone().unwrap(), 1);
    let base = api.serve_with(crm.bus.clone(), Some(outbound)).await;
    let d = cobro::domain::DebtorId::parse("cl-maria").unwrap();
    a_person_owns_the_conversation(&api, &d).await;
    let reply = || async {
        let path = "/v1/conversations/cl-maria/replies";
        let body = json!({ "text": "Hola María, soy Carla", "agent": "carla" });
        let headers = [("idempotency-key", "carla-1")];
        let a = api
            .send_to(&base, Some(DEMO_KEY), "POST", path, Some(body), &headers)
            .await;
        (a.status, a.body)
    };
    let (status, body) = reply().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = reply().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("agent-") && id.len() == 38, "{body}");
    api.stack.drain().await.unwrap();
    let to_maria = |sent: Vec<(String, cobro::ports::ChannelMessage)>| {
        sent.into_iter()
            .filter(|(_, m)| m.text == "Hola María, soy Carla")
            .count()
    };
    assert_eq!(to_maria(api.stack.channel.sent()), 1);
    // Once out, a third try queues nothing more.
    reply().await;
    api.stack.drain().await.unwrap();
    assert_eq!(to_maria(api.stack.channel.sent()), 1);
}

/// An insolvency is the debtor's: posted on one account, it stops every account of the
/// debtor, one the CRM sends later too. A pause never shortens a longer one; a debtor's own
/// pause (from the chat) is ended by a resume, and the debtor's other accounts go back on the
/// schedule.
#[tokio::test]
async fn holds_on_the_person_cover_all_their_accounts_and_pauses_never_shorten() {
    let api = Api::start().await;
    api.on_a_monday_with_overdue_accounts("d-1", "+56911110000", &["B-1", "B-2"], 50_000)
        .await;
    let overdue = |d: &str| overdue_account(&api, d, 50_000);
    api.post(
        "/v1/accounts/B-1/insolvency",
        json!({ "reason": "liquidation filed" }),
    )
    .await;
    api.put_account("B-3", overdue("d-1")).await;
    api.tick().await;
    for id in ["B-1", "B-2", "B-3"] {
        let picture = api.picture(id).await;
        assert_eq!(picture["attempts"], json!([]), "{id}: {picture}");
        assert_eq!(picture["collecting"], false, "{id}: {picture}");
    }
    let why = api.get("/v1/accounts/B-2/decisions").await;
    assert!(
        why.to_string().contains("insolvency"),
        "B-2 stops for the debtor's insolvency: {why}"
    );
    // A restated debtor keeps the hold.
    api.put_debtor("d-1", "+56911110000").await;
    let d = api.get("/v1/debtors/d-1").await;
    assert_eq!(d["debtor"]["holds"]["insolvency"], true, "{d}");

    // An open-ended pause stays open when a shorter one is posted.
    api.put_debtor("d-2", "+56911110002").await;
    api.put_account("C-1", overdue("d-2")).await;
    api.put_account("C-2", overdue("d-2")).await;
    api.post(
        "/v1/accounts/C-1/pause",
        json!({ "reason": "breathing space" }),
    )
    .await;
    let shorter = api
        .post(
            "/v1/accounts/C-1/pause",
            json!({ "reason": "asked for two weeks", "until": "2026-03-30T15:00:00Z" }),
        )
        .await;
    let holds = &shorter["account"]["holds"];
    assert_eq!(holds["paused"], true, "{shorter}");
    assert_eq!(holds["paused_until"], Value::Null, "{shorter}");
    assert_eq!(holds["pause_reason"], "breathing space", "{shorter}");
    assert_eq!(shorter["next_action_at"], Value::Null, "{shorter}");

    // The debtor asked the bot for a pause: on the person, so C-2 waits too.
    api.debtor_asked_the_bot_for_a_pause("d-2").await;
    api.tick().await;
    let c2 = api.picture("C-2").await;
    assert_eq!(c2["attempts"], json!([]), "{c2}");
    assert_eq!(c2["collecting"], false, "{c2}");
    assert!(c2["last_decision"]["reason"]
        .as_str()
        .unwrap()
        .contains("vulnerability"));
    // Reviewed: a resume ends the debtor's pause, and C-2 is back on the schedule.
    api.post(
        "/v1/accounts/C-1/resume",
        json!({ "reason": "reviewed with the debtor" }),
    )
    .await;
    let d = api.get("/v1/debtors/d-2").await;
    assert_eq!(d["debtor"]["holds"]["paused"], false, "{d}");
    let c2 = api.picture("C-2").await;
    assert_eq!(c2["collecting"], true, "{c2}");
    assert!(c2["next_action_at"].is_string(), "{c2}");
}

/// A breathing space covers the person: a debtor-wide pause holds on every account of the
/// debtor, one the CRM sends later too, until the debtor-wide resume.
#[tokio::test]
async fn a_debtor_wide_pause_covers_every_account_until_resumed() {
    let api = Api::start().await;
    api.on_a_monday_with_overdue_accounts("d-7", "+56911110007", &["F-1"], 30_000)
        .await;
    let bad = api
        .try_post(
            "/v1/debtors/d-7/resume",
            json!({ "reason": "x", "until": "2030-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(bad.body["field"], "until", "{}", bad.body);
    let missing = api
        .try_post("/v1/debtors/nobody/pause", json!({ "reason": "x" }))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let paused = api
        .post(
            "/v1/debtors/d-7/pause",
            json!({ "reason": "breathing space, moratorium 4471" }),
        )
        .await;
    assert_eq!(paused["holds"]["paused"], true, "{paused}");
    api.put_account("F-2", overdue_account(&api, "d-7", 30_000))
        .await;
    api.tick().await;
    for id in ["F-1", "F-2"] {
        let picture = api.picture(id).await;
        assert_eq!(picture["attempts"], json!([]), "{id}: {picture}");
        assert_eq!(picture["collecting"], false, "{id}: {picture}");
    }
    api.post(
        "/v1/debtors/d-7/resume",
        json!({ "reason": "moratorium ended" }),
    )
    .await;
    for id in ["F-1", "F-2"] {
        let picture = api.picture(id).await;
        assert_eq!(picture["collecting"], true, "{id}: {picture}");
        assert!(picture["next_action_at"].is_string(), "{id}: {picture}");
    }
}

/// A resume refused (a closed account) changes nothing, the debtor's pause included; a resume
/// whose write meets a concurrent one still ends the debtor's pause and puts the debtor's other
/// accounts back on the schedule, and so does the same resume again.
#[tokio::test]
async fn a_resume_is_refused_whole_and_a_retried_one_puts_the_other_accounts_back() {
    let api = Api::start().await;
    api.on_a_monday_with_overdue_accounts("d-8", "+56911110008", &["G-1", "G-2", "G-3"], 30_000)
        .await;
    api.post("/v1/accounts/G-3/close", json!({ "reason": "sold" }))
        .await;
    // The debtor asked the bot for a pause; the tick takes every account off the schedule.
    let t = demo::tenant_id();
    let now = api.debtor_asked_the_bot_for_a_pause("d-8").await;
    // Why G-2 is not contacted, before anything was decided: the person's pause.
    let why = api.get("/v1/accounts/G-2/decisions").await;
    assert_eq!(why["debtor_holds"]["paused"], true, "{why}");
    assert_eq!(
        why["debtor_holds"]["pause_reason"], "vulnerability",
        "{why}"
    );
    assert_eq!(why["holds"]["paused"], false, "{why}");
    // The tick defers G-2 a day, to look at the pause again.
    api.tick().await;
    let next_of = |picture: &Value| -> Option<jiff::Timestamp> {
        picture["next_action_at"]
            .as_str()
            .map(|t| t.parse().unwrap())
    };
    let g2 = api.picture("G-2").await;
    let deferred = next_of(&g2).expect("deferred");
    assert!(deferred > now, "{g2}");

    let closed = api
        .try_post("/v1/accounts/G-3/resume", json!({ "reason": "reviewed" }))
        .await;
    assert_eq!(closed.status, StatusCode::CONFLICT, "{}", closed.body);
    let d = api.get("/v1/debtors/d-8").await;
    assert_eq!(d["debtor"]["holds"]["paused"], true, "{d}");
    assert_eq!(d["debtor"]["holds"]["pause_reason"], "vulnerability", "{d}");
    let g3 = api.picture("G-3").await;
    assert_eq!(g3["actions"].as_array().unwrap().len(), 1, "{g3}");

    // The resume's first write is cancelled, as a concurrent change would have it.
    let table =
        cobro_tests::flaky::FlakyTable::cancelling(Arc::new(api.stack.table.clone()), 1, |ops| {
            cobro_tests::flaky::puts_kind(ops, "account_action")
        });
    let base = api.serve_with_table(table.clone()).await;
    let resumed = api
        .send_to(
            &base,
            Some(DEMO_KEY),
            "POST",
            "/v1/accounts/G-1/resume",
            Some(json!({ "reason": "reviewed with the debtor" })),
            &[],
        )
        .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert_eq!(table.cancelled.load(std::sync::atomic::Ordering::SeqCst), 1);
    let d = api.get("/v1/debtors/d-8").await;
    assert_eq!(d["debtor"]["holds"]["paused"], false, "{d}");
    // G-2 is looked at now, not when the pause's re-check would have come round.
    let g2 = api.picture("G-2").await;
    assert_eq!(g2["collecting"], true, "{g2}");
    assert!(next_of(&g2).is_some_and(|t| t < deferred), "{g2}");
    let g3 = api.picture("G-3").await;
    assert_eq!(g3["next_action_at"], Value::Null, "closed stays off: {g3}");

    // Deferred again (a tick that read the pause before it went), the same resume again puts
    // it back.
    let g2_id = cobro::domain::AccountId::parse("G-2").unwrap();
    let g2_account = api.stack.store.account(&t, &g2_id).await.unwrap().unwrap();
    api.stack
        .store
        .reschedule_account(&g2_account, Some(deferred))
        .await
        .unwrap();
    api.post(
        "/v1/accounts/G-1/resume",
        json!({ "reason": "reviewed with the debtor" }),
    )
    .await;
    let g2 = api.picture("G-2").await;
    assert!(next_of(&g2).is_some_and(|t| t < deferred), "{g2}");
}

/// An insolvency posted on one account is the person's; `resolve-insolvency` ends it on the
/// debtor and on every account, records why on each, and puts the open ones back on the
/// schedule.
#[tokio::test]
async fn a_debtors_insolvency_is_lifted_by_its_action_and_the_accounts_resume() {
    let api = Api::start().await;
    api.on_a_monday_with_overdue_accounts("d-9", "+56911110009", &["H-1", "H-2"], 30_000)
        .await;
    api.post(
        "/v1/accounts/H-1/insolvency",
        json!({ "reason": "liquidation filed" }),
    )
    .await;
    api.tick().await;
    let why = api.get("/v1/accounts/H-2/decisions").await;
    assert_eq!(why["debtor_holds"]["insolvency"], true, "{why}");
    for id in ["H-1", "H-2"] {
        let picture = api.picture(id).await;
        assert_eq!(picture["next_action_at"], Value::Null, "{id}: {picture}");
    }

    let bad = api
        .try_post(
            "/v1/debtors/d-9/resolve-insolvency",
            json!({ "reason": "x", "until": "2030-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "until", "{}", bad.body);
    let missing = api
        .try_post(
            "/v1/debtors/nobody/resolve-insolvency",
            json!({ "reason": "x" }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let lifted = api
        .post(
            "/v1/debtors/d-9/resolve-insolvency",
            json!({ "reason": "proceedings dismissed, case 88-2026" }),
        )
        .await;
    assert_eq!(lifted["holds"]["insolvency"], false, "{lifted}");
    for id in ["H-1", "H-2"] {
        let picture = api.picture(id).await;
        assert_eq!(
            picture["account"]["holds"]["insolvency"], false,
            "{id}: {picture}"
        );
        assert_eq!(picture["collecting"], true, "{id}: {picture}");
        assert!(picture["next_action_at"].is_string(), "{id}: {picture}");
        let last = picture["actions"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["action"], "resolve_insolvency", "{id}: {picture}");
        assert_eq!(last["reason"], "proceedings dismissed, case 88-2026");
    }
    // Collection resumes: the next tick contacts the debtor.
    api.tick().await;
    let contacted: usize = [api.picture("H-1").await, api.picture("H-2").await]
        .iter()
        .map(|p| p["attempts"].as_array().unwrap().len())
        .sum();
    assert!(contacted >= 1, "a contact after the insolvency ended");
}

/// A dispute the debtor opened in the chat survives the CRM restating the account's holds
/// without it; the CRM closes it with `resolve-dispute`, and collection resumes.
#[tokio::test]
async fn an_open_dispute_is_closed_by_its_action_not_by_a_restated_account() {
    let api = Api::start().await;
    api.set_clock("2026-03-16T15:00:00Z").await;
    api.put_debtor("d-5", "+56911110005").await;
    let mut acc = overdue_account(&api, "d-5", 40_000);
    api.put_account("E-1", acc.clone()).await;
    let e1 = cobro::domain::AccountId::parse("E-1").unwrap();
    api.stack
        .store
        .set_holds(&demo::tenant_id(), &e1, |h| h.dispute_open = true)
        .await
        .unwrap();
    acc["holds"] = json!({ "dispute_open": false, "lawsuit_served": false });
    api.put_account("E-1", acc).await;
    let picture = api.picture("E-1").await;
    assert_eq!(
        picture["account"]["holds"]["dispute_open"], true,
        "{picture}"
    );
    assert_eq!(picture["collecting"], false, "{picture}");
    let resolved = api
        .post(
            "/v1/accounts/E-1/resolve-dispute",
            json!({ "reason": "the debtor recognised the debt" }),
        )
        .await;
    assert_eq!(
        resolved["account"]["holds"]["dispute_open"], false,
        "{resolved}"
    );
    assert!(resolved["next_action_at"].is_string(), "{resolved}");
    assert_eq!(resolved["action"]["action"], "resolve_dispute");
}

/// An agency collects for someone else: its accounts must name the creditor, and the
/// reminders name that creditor, not the agency, as the one owed.
#[tokio::test]
async fn an_agencys_reminders_name_the_creditor_it_collects_for() {
    let api = Api::start().await;
    api.set_clock("2026-03-16T15:00:00Z").await;
    let mut agency = api.demo_tenant().await;
    agency.id = TenantId::parse("cobranzas-sur").unwrap();
    agency.name = "Cobranzas Sur".into();
    agency.kind = cobro::domain::TenantKind::Agency;
    agency.channels = vec![cobro::domain::ChannelKind::Sms];
    api.stack.store.put_tenant(&agency).await.unwrap();
    let key = api.key(&agency.id, &[Scope::Admin]).await;
    let put = |path: String, body: Value| {
        let (api, key) = (&api, key.clone());
        async move { api.send(Some(&key), "PUT", &path, Some(body), &[]).await }
    };
    let mut person = debtor("+56911110009");
    person["consents"] = json!([{ "channel": "sms", "granted": true }]);
    let d = put("/v1/debtors/d-9".into(), person).await;
    assert!(d.status.is_success(), "{}", d.body);
    let mut acc = overdue_account(&api, "d-9", 80_000);
    let refused = put("/v1/accounts/S-1".into(), acc.clone()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["field"], "creditor", "{}", refused.body);
    acc["creditor"] = json!("  Banco del Norte ");
    let ok = put("/v1/accounts/S-1".into(), acc).await;
    assert!(ok.status.is_success(), "{}", ok.body);
    assert_eq!(
        ok.body["account"]["creditor"], "Banco del Norte",
        "{}",
        ok.body
    );
    api.tick().await;
    api.stack.drain().await.unwrap();
    let texts: Vec<String> = api
        .stack
        .channel
        .sent()
        .into_iter()
        .filter(|(_, m)| m.to.phone.as_str() == "+56911110009")
        .map(|(_, m)| m.text)
        .collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("Banco del Norte"), "{}", texts[0]);
    assert!(!texts[0].contains("Cobranzas Sur"), "{}", texts[0]);
}

/// A 409 is not replayed: the same request under the same `Idempotency-Key`, once a person
/// owns the conversation, is sent. Keys alike in their first 64 characters are two replies.
#[tokio::test]
async fn an_agent_reply_refused_by_the_state_of_the_moment_runs_again_under_its_key() {
    let api = Api::start().await;
    let d = cobro::domain::DebtorId::parse("cl-maria").unwrap();
    let path = "/v1/conversations/cl-maria/replies";
    let send = |key: String, text: &'static str| {
        let api = &api;
        async move {
            let body = json!({ "text": text, "agent": "carla" });
            let headers = [("idempotency-key", key.as_str())];
            api.send(Some(DEMO_KEY), "POST", path, Some(body), &headers)
                .await
        }
    };
    let early = send("reply-1".into(), "Hola María").await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    assert_eq!(
        early.body["type"],
        "https://cobro.dev/problems/bot-owns-conversation"
    );
    a_person_owns_the_conversation(&api, &d).await;
    let later = send("reply-1".into(), "Hola María").await;
    assert_eq!(later.status, StatusCode::ACCEPTED, "{}", later.body);
    assert!(later.headers.get("idempotent-replayed").is_none());

    let long = "k".repeat(64);
    let one = send(format!("{long}-one"), "Primera").await;
    let two = send(format!("{long}-two"), "Segunda").await;
    assert_eq!(one.status, StatusCode::ACCEPTED, "{}", one.body);
    assert_eq!(two.status, StatusCode::ACCEPTED, "{}", two.body);
    assert_ne!(one.body["id"], two.body["id"]);
    api.stack.drain().await.unwrap();
    let texts: Vec<String> = api
        .stack
        .channel
        .sent()
        .into_iter()
        .map(|(_, m)| m.text)
        .collect();
    for text in ["Hola María", "Primera", "Segunda"] {
        assert_eq!(texts.iter().filter(|t| *t == text).count(), 1, "{texts:?}");
    }
}

/// An account keeps its currency: a PUT or an import row that changes it is refused, naming
/// the currency, and changes nothing (its credit, plan and payments are in the first one).
/// Amounts above `MAX_MINOR` are refused too, so no sum or percentage of them can overflow.
#[tokio::test]
async fn an_account_keeps_its_currency_and_amounts_stay_in_range() {
    let api = Api::start().await;
    api.put_debtor("D-1", "+56911110001").await;
    api.put_account("A-1", account("D-1", 50_000)).await;
    let mut usd = account("D-1", 50_000);
    usd["currency"] = "USD".into();
    let bad = api.call("PUT", "/v1/accounts/A-1", Some(usd.clone())).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["field"], "currency");
    assert!(
        bad.body["detail"].as_str().unwrap().contains("is in CLP"),
        "{}",
        bad.body
    );
    let view = api.picture("A-1").await;
    assert_eq!(view["account"]["currency"], "CLP");

    // The same change in an import row: that row is refused, not to be sent again.
    let row = json!({
        "debtor_id": "D-1", "name": "Test", "phone": "+56911110001",
        "time_zone": "America/Santiago", "account_id": "A-1", "currency": "USD",
        "principal_minor": 50_000, "balance_minor": 50_000, "due_date": "2026-03-13"
    });
    let answer = import(&api, "application/x-ndjson", format!("{row}\n")).await;
    assert_eq!(answer.body["applied"], 0, "{}", answer.body);
    let detail = answer.body["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("currency cannot change"), "{detail}");
    assert!(!detail.contains("send the row again"), "{detail}");
    assert_eq!(
        answer.body["errors"][0]["field"], "currency",
        "{}",
        answer.body
    );
    let view = api.picture("A-1").await;
    assert_eq!(view["account"]["currency"], "CLP");

    let huge = account("D-1", cobro::domain::MAX_MINOR + 1);
    let bad = api.call("PUT", "/v1/accounts/A-2", Some(huge)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "principal_minor");
    let payment = json!({
        "account_id": "A-1", "payment_id": "p-huge", "currency": "CLP",
        "amount_minor": cobro::domain::MAX_MINOR + 1
    });
    let bad = api.call("POST", "/v1/payments", Some(payment)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "amount_minor");
    // A `paid_at` later than now (a typo, a debit scheduled for next month) is refused: applied,
    // it would hold the account's reminders until then. A clock a little ahead is fine.
    let now = api.stack.clock.now();
    let at = |mins: i64| (now + jiff::SignedDuration::from_mins(mins)).to_string();
    let payment = |at: String| {
        json!({
            "account_id": "A-1", "payment_id": "p-later", "currency": "CLP",
            "amount_minor": 1_000, "paid_at": at
        })
    };
    let bad = api.call("POST", "/v1/payments", Some(payment(at(6)))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["field"], "paid_at");
    let ok = api.call("POST", "/v1/payments", Some(payment(at(4)))).await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.body);
}

/// A payment id applied to one account and posted again for another is refused at once (409
/// naming `payment_id` and the account it went to) and nothing is queued; posted again for the
/// account it went to, it is accepted and changes nothing. The same payment arriving on the bus
/// for the other account (a provider's event) is not applied either, and is listed in suspense
/// once, naming that account.
#[tokio::test]
async fn a_payment_id_applied_to_another_account_is_refused_and_listed_in_suspense() {
    let api = Api::start().await;
    api.put_debtor("d-pay", "+56911113333").await;
    for a in ["A-1", "A-9"] {
        api.ok(
            "PUT",
            &format!("/v1/accounts/{a}"),
            Some(account("d-pay", 50_000)),
        )
        .await;
    }
    let payment = |a: &str| json!({ "account_id": a, "payment_id": "bank-tx-7", "amount_minor": 10_000, "currency": "CLP" });
    let balance = |v: Value| v["account"]["balance_minor"].as_i64().unwrap();
    let first = api.call("POST", "/v1/payments", Some(payment("A-9"))).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let drained = api.ok("POST", "/_local/drain", None).await;
    assert_eq!(drained["payments_applied"], 1, "{drained}");

    let refused = api.call("POST", "/v1/payments", Some(payment("A-1"))).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.headers["content-type"], "application/problem+json");
    assert_eq!(refused.body["field"], "payment_id", "{}", refused.body);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("`A-9`") && detail.contains("`A-1`"),
        "{detail}"
    );
    let drained = api.ok("POST", "/_local/drain", None).await;
    assert_eq!(
        (
            drained["payments_applied"].as_u64(),
            drained["payments_applied_elsewhere"].as_u64()
        ),
        (Some(0), Some(0)),
        "nothing was queued: {drained}"
    );

    // The same payment for the account it went to: accepted as before, applied once.
    let again = api.call("POST", "/v1/payments", Some(payment("A-9"))).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    let drained = api.ok("POST", "/_local/drain", None).await;
    assert_eq!(drained["payments_duplicate"], 1, "{drained}");

    // On the bus (as a provider would send it) for A-1, twice: not applied, listed once.
    let detail = json!({ "tenant": "demo", "account": "A-1", "payment_id": "bank-tx-7",
        "amount_minor": 10_000, "currency": "CLP", "paid_at": api.stack.clock.now() });
    for _ in 0..2 {
        api.stack
            .crm
            .bus
            .publish(vec![cobro::ports::Event::new(
                "PaymentConfirmed",
                detail.clone(),
            )])
            .await
            .unwrap();
    }
    let drained = api.ok("POST", "/_local/drain", None).await;
    assert_eq!(
        (
            drained["payments_applied_elsewhere"].as_u64(),
            drained["payments_duplicate"].as_u64()
        ),
        (Some(2), Some(0)),
        "{drained}"
    );
    let suspense = api.get("/v1/payments/suspense").await;
    let items = suspense["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{suspense}");
    assert_eq!(items[0]["payment"]["account"], "A-1");
    assert_eq!(items[0]["applied_to"], "A-9");
    assert!(
        items[0]["reason"].as_str().unwrap().contains("`A-9`"),
        "{suspense}"
    );
    assert!(items[0]["resolved"].is_null(), "{suspense}");

    assert_eq!(balance(api.picture("A-1").await), 50_000);
    assert_eq!(balance(api.picture("A-9").await), 40_000);
}

/// An agent's reply answers the debtor on the channel they wrote on, within the day: on SMS,
/// where María has not written, it is refused (the reminders reach her, under their rules);
/// once she writes by SMS it goes out.
#[tokio::test]
async fn an_agent_replies_only_on_a_channel_the_debtor_wrote_on_within_the_day() {
    let api = Api::start().await;
    let d = cobro::domain::DebtorId::parse("cl-maria").unwrap();
    a_person_owns_the_conversation(&api, &d).await;
    let path = "/v1/conversations/cl-maria/replies";
    let body = json!({ "text": "Hola María, por SMS", "agent": "carla", "channel": "sms" });
    let refused = api.call("POST", path, Some(body.clone())).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("on sms in the last 24 hours"), "{detail}");
    api.stack
        .store
        .touch_inbound_window(
            &demo::tenant_id(),
            &d,
            cobro::domain::ChannelKind::Sms,
            api.stack.clock.now(),
        )
        .await
        .unwrap();
    api.ok("POST", path, Some(body)).await;
    api.stack.drain().await.unwrap();
    let conversation = api.get("/v1/debtors/cl-maria/conversation").await;
    let out: Vec<&Value> = conversation["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "outbound" && m["text"] == "Hola María, por SMS")
        .collect();
    assert_eq!(out.len(), 1, "{conversation}");
    assert_eq!(out[0]["channel"], "sms");
    assert!(out[0]["message_id"].is_string(), "sent: {conversation}");

    // Accepted while she had written within the day, but sent only after the day is over:
    // the sender's own check stops it.
    let late = json!({ "text": "Hola María, un día después", "agent": "carla", "channel": "sms" });
    let accepted = api.ok("POST", path, Some(late)).await;
    api.stack
        .clock
        .advance(jiff::SignedDuration::from_hours(25));
    api.stack.drain().await.unwrap();
    let reply = api
        .stack
        .store
        .reply(&demo::tenant_id(), &d, accepted["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reply.status,
        cobro::repo::ReplyStatus::Cancelled,
        "{reply:?}"
    );
    let reason = reply.reason.unwrap_or_default();
    assert!(reason.starts_with("outside_window"), "{reason}");
    let conversation = api.get("/v1/debtors/cl-maria/conversation").await;
    assert!(
        !conversation
            .to_string()
            .contains("Hola María, un día después"),
        "not sent: {conversation}"
    );
}

/// A person's reply more than an hour after the debtor wrote waits for the debtor's contact
/// hours (Chile: Monday to Saturday, 08:00 to 20:00) when they come before the reply window
/// closes, and is refused when they do not. Within the hour it goes at once.
#[tokio::test]
async fn an_agents_late_reply_waits_for_the_debtors_hours() {
    use cobro::domain::ChannelKind;
    let api = Api::start().await;
    let (t, d) = (
        demo::tenant_id(),
        cobro::domain::DebtorId::parse("cl-maria").unwrap(),
    );
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    // María wrote on Wednesday 2 December 2026 at 21:59 in Santiago (UTC−3); a person took
    // the conversation, and answers at 23:30.
    api.stack.clock.set(at("2026-12-03T01:00:00Z"));
    a_person_owns_the_conversation(&api, &d).await;
    api.stack.clock.set(at("2026-12-03T02:30:00Z"));
    let path = "/v1/conversations/cl-maria/replies";
    let text = "Hola María, te escribo mañana temprano";
    let accepted = api
        .post(path, json!({ "text": text, "agent": "carla" }))
        .await;
    // Thursday 08:00 in Santiago.
    assert_eq!(accepted["not_before"], "2026-12-03T11:00:00Z", "{accepted}");
    let report = api.stack.drain().await.unwrap();
    assert_eq!(report.deferred, 1, "{report:?}");
    let sent = |api: &Api| {
        api.stack
            .channel
            .sent()
            .into_iter()
            .filter(|(_, m)| m.text == text)
            .count()
    };
    assert_eq!(sent(&api), 0);
    let id = accepted["id"].as_str().unwrap();
    let waiting = api.stack.store.reply(&t, &d, id).await.unwrap().unwrap();
    assert_eq!(waiting.status, cobro::repo::ReplyStatus::Queued);
    let reason = waiting.reason.unwrap_or_default();
    assert!(reason.contains("[window]"), "{reason}");
    // At 08:00 the queue hands it back (SQS after the delay) and it goes.
    api.stack.clock.set(at("2026-12-03T11:00:30Z"));
    let message = json!({ "reply": { "tenant": t.as_str(), "debtor": "cl-maria", "id": id } });
    let outcome = api.stack.sender.handle(&message.to_string()).await.unwrap();
    assert!(
        matches!(outcome, cobro_sender::Outcome::Sent { .. }),
        "{outcome:?}"
    );
    assert_eq!(sent(&api), 1);

    // Saturday 5 December, 21:00 in Santiago; she wrote at 19:30. The next allowed time is
    // Monday 08:00, after the window closes on Sunday: refused, nothing queued.
    api.stack.clock.set(at("2026-12-06T00:00:00Z"));
    api.stack
        .store
        .touch_inbound_window(&t, &d, ChannelKind::Whatsapp, at("2026-12-05T22:30:00Z"))
        .await
        .unwrap();
    let refused = api
        .try_post(
            path,
            json!({ "text": "Hola María, el lunes", "agent": "carla" }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(
        refused.body["type"]
            .as_str()
            .map(|t| t.ends_with("outside-hours")),
        Some(true),
        "{}",
        refused.body
    );
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("2026-12-07T11:00:00Z"), "{detail}");

    // Within the hour of her message, at once whatever the hour.
    api.stack.clock.set(at("2026-12-05T23:00:00Z"));
    let now = api
        .post(
            path,
            json!({ "text": "Hola María, ya te respondo", "agent": "carla" }),
        )
        .await;
    assert!(now.get("not_before").is_none(), "{now}");
}

/// The CRM's nightly sync restates the debtor as its records had them before an opt-out it
/// posted itself: the opt-out stands, so the debtor is not reachable on WhatsApp again.
#[tokio::test]
async fn a_crm_opt_out_survives_the_crm_restating_an_older_grant() {
    use cobro::domain::{ChannelKind, DebtorId};

    let api = Api::start().await;
    let (t, d) = (demo::tenant_id(), DebtorId::parse("sync-1").unwrap());
    let body = debtor("+56911112222");
    api.ok("PUT", "/v1/debtors/sync-1", Some(body.clone()))
        .await;
    api.stack.clock.advance(jiff::SignedDuration::from_mins(5));
    api.post(
        "/v1/debtors/sync-1/consents",
        json!({ "channel": "whatsapp", "granted": false }),
    )
    .await;
    api.stack.clock.advance(jiff::SignedDuration::from_hours(8));
    api.ok("PUT", "/v1/debtors/sync-1", Some(body)).await;
    let stored = api.stack.crm.store.debtor(&t, &d).await.unwrap().unwrap();
    assert!(
        !stored.has_consent(ChannelKind::Whatsapp),
        "{:?}",
        stored.consents
    );
    assert_eq!(
        stored.consents.iter().filter(|c| !c.granted).count(),
        1,
        "the opt-out is kept once: {:?}",
        stored.consents
    );
}
