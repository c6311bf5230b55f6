//! Observability: a full flow on the local stack logged at TRACE into a buffer never shows a
//! debtor's phone number (E.164 or wa_id digits), e-mail address or message text, and does
//! show the tenant and the request ids; the Secrets Manager adapter on moto.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;

use cobro::adapters::aws::SecretsManager;
use cobro::ports::{CachedSecrets, Secrets};
use cobro::whatsapp::signature;
use cobro_local::{demo, settings, LocalStack, Settings};

const PHONE: &str = "+56987650123";
const WA_ID: &str = "56987650123";
const EMAIL: &str = "juana.perez@correo.example";
const REPLY: &str = "hola, pago el viernes sin falta";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(&self, id: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", "Bearer cobro-demo-key")
            .header("x-request-id", id);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }
}

/// The debtor's reply as Meta sends it, to the demo number, signed with its app secret.
fn reply() -> Vec<u8> {
    let path = format!(
        "{}/../../shared/fixtures/whatsapp-webhooks/text_reply_with_context.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let value = &mut v["entry"][0]["changes"][0]["value"];
    value["metadata"]["phone_number_id"] = demo::PHONE_NUMBER_ID.into();
    value["contacts"][0]["wa_id"] = WA_ID.into();
    value["messages"][0]["from"] = WA_ID.into();
    value["messages"][0]["text"]["body"] = REPLY.into();
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn a_full_flow_logs_no_phone_email_or_message_text_but_tenant_and_request_ids() {
    let captured = Capture::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::registry()
        .with(cobro::logs::json_layer(move || writer.clone()))
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    // This test's thread only (the runtime is single-threaded): other tests log elsewhere.
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let stack = LocalStack::open(Settings::for_tests(dir.path().to_path_buf()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = Client {
        base: format!("http://{}", listener.local_addr().unwrap()),
        http: cobro_tests::http(),
    };
    let router = stack.router();
    tokio::spawn(async move { axum::serve(listener, router).await });

    c.call(
        "obs-clock",
        "POST",
        "/_local/clock",
        Some(json!({ "set": "2026-03-16T15:00:00Z" })),
    )
    .await;
    c.call(
        "obs-debtor",
        "PUT",
        "/v1/debtors/d-obs",
        Some(json!({
            "name": "Juana Pérez", "phone": PHONE, "email": EMAIL, "time_zone": "America/Santiago",
            "language": "es", "consents": [{ "channel": "whatsapp", "granted": true }]
        })),
    )
    .await;
    c.call(
        "obs-account",
        "PUT",
        "/v1/accounts/A-obs",
        Some(json!({
            "debtor_id": "d-obs", "currency": "CLP", "principal_minor": 450000,
            "balance_minor": 450000, "due_date": "2026-03-13"
        })),
    )
    .await;
    let tick = c.call("obs-tick", "POST", "/_local/tick", None).await;
    assert!(tick["contacted"].as_u64().unwrap() >= 1, "{tick}");
    // The provider refuses the first send quoting the recipient, as providers do: the error
    // is logged, scrubbed.
    stack
        .channel
        .fail_next([cobro::ports::ChannelError::transient(format!(
            "recipient {PHONE} ({WA_ID}, <{EMAIL}>) is busy"
        ))]);
    let drained = c.call("obs-drain-1", "POST", "/_local/drain", None).await;
    assert_eq!(drained["deferred"], 1, "{drained}");
    // The outbox puts it back on the queue at a later tick, and it goes.
    c.call(
        "obs-retry",
        "POST",
        "/_local/clock",
        Some(json!({ "advance": "11m" })),
    )
    .await;
    c.call("obs-tick-1", "POST", "/_local/tick", None).await;
    let drained = c.call("obs-drain-1b", "POST", "/_local/drain", None).await;
    assert!(drained["sent"].as_u64().unwrap() >= 1, "{drained}");

    let raw = reply();
    let res = c
        .http
        .post(format!("{}/webhooks/whatsapp", c.base))
        .header("x-request-id", "obs-webhook")
        .header(
            "x-hub-signature-256",
            signature::sign(settings::DEFAULT_APP_SECRET.as_bytes(), &raw),
        )
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    c.call("obs-pay", "POST", "/v1/payments", Some(json!({
        "account_id": "A-obs", "payment_id": "psp-obs", "amount_minor": 100000, "currency": "CLP"
    })))
    .await;
    let drained = c.call("obs-drain-2", "POST", "/_local/drain", None).await;
    assert_eq!(drained["inbound_applied"], 1, "{drained}");
    assert_eq!(drained["payments_applied"], 1, "{drained}");
    // The receipt waits out Meta's pair rate on the outbox; a later tick sends it.
    c.call(
        "obs-later",
        "POST",
        "/_local/clock",
        Some(json!({ "advance": "11m" })),
    )
    .await;
    c.call("obs-tick-2", "POST", "/_local/tick", None).await;
    c.call("obs-drain-3", "POST", "/_local/drain", None).await;

    // What the debtor was sent, and what they wrote, must be somewhere real first.
    let texts: Vec<String> = stack
        .channel
        .sent()
        .into_iter()
        .filter(|(_, m)| m.to.phone.as_str() == PHONE)
        .map(|(_, m)| m.text)
        .collect();
    assert!(texts.len() >= 2, "a reminder and a receipt: {texts:?}");
    let debtor = c.call("obs-read", "GET", "/v1/debtors/d-obs", None).await;
    assert!(debtor.to_string().contains(REPLY), "{debtor}");

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.len() > 20,
        "TRACE captured the flow: {} lines",
        lines.len()
    );
    let mut secrets = vec![
        PHONE.to_string(),
        WA_ID.to_string(),
        EMAIL.to_string(),
        REPLY.into(),
    ];
    secrets.extend(texts);
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "`{secret}` is in the log:\n{log}"
        );
    }
    let failed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "send failed")
        .expect("the refusal is logged");
    assert!(
        failed["fields"]["reason"]
            .as_str()
            .unwrap()
            .contains("+56…23"),
        "{failed}"
    );
    for needle in [
        r#""tenant":"demo""#,
        r#""request_id":"obs-debtor""#,
        r#""request_id":"obs-webhook""#,
        r#""function":"sender""#,
        r#""function":"inbound""#,
        r#""function":"payment-confirmed""#,
    ] {
        assert!(log.contains(needle), "{needle} is not in the log:\n{log}");
    }
    // Lines logged inside the sender's handling name their tenant.
    let sent = lines
        .iter()
        .find(|l| l["fields"]["message"] == "sent")
        .expect("the sender logged the send");
    assert!(
        sent["spans"].to_string().contains(r#""tenant":"demo""#),
        "{sent}"
    );
    assert_ne!(sent["fields"]["to"], PHONE, "{sent}");
}

#[tokio::test]
async fn secrets_manager_round_trip_on_moto() {
    let Some(moto) = cobro_tests::moto::moto().await else {
        return;
    };
    let manager = SecretsManager::new(aws_sdk_secretsmanager::Client::new(&moto.config));
    let name = format!(
        "{}/whatsapp/1122334455667",
        cobro_tests::moto::unique("cobro-test")
    );
    assert_eq!(
        manager.get(&name).await.unwrap(),
        None,
        "absent is None, not an error"
    );
    let first = json!({ "access_token": "t1", "app_secret": "s1", "verify_token": "v" });
    manager.put(&name, &first).await.unwrap();
    assert_eq!(manager.get(&name).await.unwrap(), Some(first.clone()));
    let second = json!({ "access_token": "t2", "app_secret": "s2", "verify_token": "v" });
    manager.put(&name, &second).await.unwrap();
    assert_eq!(
        manager.get(&name).await.unwrap(),
        Some(second.clone()),
        "a rotation"
    );

    // The cache serves the value it read until its TTL, and a put through it refreshes it.
    let cached = CachedSecrets::new(
        Arc::new(manager.clone()),
        std::time::Duration::from_secs(300),
    );
    assert_eq!(cached.get(&name).await.unwrap(), Some(second.clone()));
    manager.put(&name, &first).await.unwrap();
    assert_eq!(cached.get(&name).await.unwrap(), Some(second), "cached");
    let found = cobro::ports::secrets::whatsapp_number(
        &cached,
        &name[..name.len() - "whatsapp/1122334455667".len()],
        "1122334455667",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(found.app_secret, "s2");
    assert!(
        !format!("{found:?}").contains("s2"),
        "Debug never shows a secret"
    );
}
