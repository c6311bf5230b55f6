//! The chatbot's speed: the engine alone (steps and replies per second over a mix of real
//! conversations), and the reply latency on the local stack, from the signed webhook POST to
//! the answer on the outbound queue (webhook, inbound processing with the engine and its
//! effects, reply queued), and on to the sandbox phone.
//!
//!     cargo run --release -p cobro-bench --bin chat-bench -- [--steps N] [--messages N]

use axum::http::{HeaderMap, HeaderValue};
use std::time::{Duration, Instant};

use cobro::chat::{step, ChatSettings, ChatState, IdentityFacts, Turn};
use cobro::domain::{ChannelKind, Debtor, Phone, Tenant, TenantId};
use cobro::inbound::Content;
use cobro::ports::Queue;
use cobro::whatsapp::signature;
use cobro_bench::cli::{arg, millis, percentile};
use cobro_bench::fixtures;
use cobro_local::{demo, LocalStack, Settings};

fn engine(steps: usize) {
    let tenant = Tenant {
        chat: ChatSettings::default(),
        ..fixtures::tenant(&TenantId::parse("t").unwrap(), "Acme")
    };
    let debtor = Debtor {
        consents: vec![],
        ..fixtures::debtor(&tenant.id, "d", "+56911112222")
    };
    let account = fixtures::account(&tenant.id, "L-1", &debtor.id, 150_000, "2026-11-10");
    let identity = IdentityFacts::from_raw(&tenant.id, &debtor.id, Some("12345678"), None).unwrap();
    // A conversation that touches most paths: greeting, identity, balance, plans, a promise,
    // a misunderstanding, and a long message checked against the vulnerability lexicon.
    let script = [
        "Hola, buenas tardes",
        "cuánto debo?",
        "5678",
        "quiero un plan de pagos",
        "2",
        "prometo pagar",
        "el viernes",
        "asdf qwer",
        "les escribo porque este mes se me complicó todo con el arriendo y los gastos del colegio",
        "ok gracias",
    ];
    let accounts = [account];
    let now: jiff::Timestamp = "2026-11-25T15:00:00Z".parse().unwrap();
    let mut state = ChatState::default();
    let mut replies = 0usize;
    let started = Instant::now();
    for i in 0..steps {
        let text = script[i % script.len()];
        if i % script.len() == 0 {
            state = ChatState::default();
        }
        let content = Content::Text { body: text.into() };
        let turn = Turn {
            tenant: &tenant,
            debtor: &debtor,
            accounts: &accounts,
            identity: Some(&identity),
            channel: ChannelKind::Whatsapp,
            content: &content,
            now,
            today: "2026-11-25".parse().unwrap(),
        };
        let s = step(&state, &turn);
        replies += s.replies.len();
        state = s.state;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "engine alone: {steps} messages in {:.2} s: {:.0} messages/s, {:.0} replies/s ({:.1} µs per message)",
        secs,
        steps as f64 / secs,
        replies as f64 / secs,
        secs * 1e6 / steps as f64
    );
}

async fn stack_latency(messages: usize) {
    let dir = tempfile::tempdir().unwrap();
    let stack = LocalStack::open(Settings::for_tests(dir.path().to_path_buf()))
        .await
        .unwrap();
    let texts = ["hola", "saldo", demo::DEMO_ID_LAST4, "quiero pagar", "plan"];
    let phones = [
        "+56912340001",
        "+5511987650002",
        "+14155550004",
        "+573001230003",
    ];
    let mut queued = Vec::with_capacity(messages);
    let mut delivered = Vec::with_capacity(messages);
    for i in 0..messages {
        let phone = Phone::parse(phones[i % phones.len()]).unwrap();
        let now = cobro::ports::Clock::now(stack.clock.as_ref());
        let wamid = format!("wamid.bench.{i}");
        let payload = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "waba", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": demo::DISPLAY_NUMBER, "phone_number_id": demo::PHONE_NUMBER_ID },
                "contacts": [{ "profile": { "name": "" }, "wa_id": phone.wa_id() }],
                "messages": [{ "from": phone.wa_id(), "id": wamid, "timestamp": now.as_second().to_string(),
                               "type": "text", "text": { "body": texts[(i / phones.len()) % texts.len()] } }]
            }}]}]
        });
        let raw = serde_json::to_vec(&payload).unwrap();
        let mut headers = HeaderMap::new();
        let sig = signature::sign(stack.settings.app_secret.as_bytes(), &raw);
        headers.insert("x-hub-signature-256", HeaderValue::from_str(&sig).unwrap());
        let started = Instant::now();
        stack.webhook.handle(&headers, &raw).await.unwrap();
        // The inbound function's part: the job the webhook queued, through the engine.
        for m in stack
            .inbound
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap()
        {
            stack.inbound_handler.handle(&m.body).await.unwrap();
            stack.inbound.delete(&m.receipt).await.unwrap();
        }
        queued.push(started.elapsed());
        stack.drain().await.unwrap();
        delivered.push(started.elapsed());
    }
    queued.sort();
    delivered.sort();
    println!(
        "local stack, {messages} messages: webhook to reply queued p50 {:.2} ms, p99 {:.2} ms; to the sandbox phone p50 {:.2} ms, p99 {:.2} ms",
        millis(percentile(&queued, 0.5)),
        millis(percentile(&queued, 0.99)),
        millis(percentile(&delivered, 0.5)),
        millis(percentile(&delivered, 0.99))
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    engine(arg("--steps", 200_000));
    stack_latency(arg("--messages", 400)).await;
}
