//! Channel benchmarks, on the embedded store (a SQLite file, as the local stack uses):
//!
//! 1. the webhook's time per POST (verify, keep the raw body, queue it), p50 and p99, for one
//!    message and for a 1,000-update batch; and the inbound processor's time to apply them;
//! 2. the sender's throughput against the local Graph API with 100 ms added to every call, as
//!    a ratio of the configured per-number rate, with one instance (Lambda batches of 100).
//!
//!     cargo run --release -p cobro-bench -- [--posts N] [--messages N] [--rate N]

use axum::http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobro::adapters::dir_blobs::DirBlobs;
use cobro::adapters::local_bus::LocalBus;
use cobro::adapters::sqlite::SqliteStore;
use cobro::domain::{
    AttemptStatus, ChannelKind, ContactAttempt, Debtor, Language, SenderIds, Tenant, TenantId,
};
use cobro::outbound::OutboundMessage;
use cobro::ports::{Channels, Clock, Outgoing, Queue, SystemClock};
use cobro::repo::{Store, WhatsAppNumber};
use cobro::whatsapp::channel::WhatsAppChannel;
use cobro::whatsapp::client::{GraphClient, GraphConfig};
use cobro::whatsapp::signature;
use cobro_bench::cli::{arg, millis, percentile};
use cobro_bench::fixtures;
use cobro_inbound::Inbound;
use cobro_sender::{handle_batch, Pacer, Sender};
use cobro_tests::fake_graph::{FakeGraph, TOKEN};
use cobro_webhook::Webhook;

const NUMBER: &str = "100000000000001";
const SECRET: &str = "bench-app-secret";
/// The sender's SQS batch size in template.yaml.
const BATCH: usize = 500;

fn ms(d: Duration) -> String {
    format!("{:.2} ms", millis(d))
}

fn tenant(id: &TenantId) -> Tenant {
    Tenant {
        sender_ids: SenderIds {
            whatsapp_phone_number_id: Some(NUMBER.into()),
            ..SenderIds::default()
        },
        ..fixtures::tenant(id, "Bench")
    }
}

fn debtor(t: &TenantId, i: usize) -> Debtor {
    fixtures::debtor(t, &format!("d-{i}"), &format!("+5691{i:07}"))
}

fn delivery(messages: usize, statuses: usize, first: usize, text_len: usize) -> Vec<u8> {
    let filler = "x".repeat(text_len);
    let msgs: Vec<Value> = (0..messages)
        .map(|i| {
            let n = first + i;
            json!({ "from": format!("5691{:07}", n % 1000), "id": format!("wamid.b{n}"),
                    "timestamp": "1773673200", "type": "text", "text": { "body": format!("mensaje {n} {filler}") } })
        })
        .collect();
    let sts: Vec<Value> = (0..statuses)
        .map(|i| {
            json!({ "id": format!("wamid.s{}", first + i), "status": "delivered",
                         "timestamp": "1773673200", "recipient_id": "56910000001" })
        })
        .collect();
    serde_json::to_vec(
        &json!({ "object": "whatsapp_business_account", "entry": [{ "id": "waba",
        "changes": [{ "field": "messages", "value": { "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "56900000000", "phone_number_id": NUMBER },
            "messages": msgs, "statuses": sts } }] }] }),
    )
    .unwrap()
}

async fn webhook_bench(posts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("cobro.db")).unwrap();
    let store = Store::new(Arc::new(sqlite.table()));
    let t = TenantId::parse("bench").unwrap();
    store.put_tenant(&tenant(&t)).await.unwrap();
    store
        .put_whatsapp_number(&WhatsAppNumber {
            phone_number_id: NUMBER.into(),
            tenant: t.clone(),
            display_phone_number: "56900000000".into(),
        })
        .await
        .unwrap();
    let secrets = Arc::new(cobro::adapters::dir_secrets::DirSecrets::new(
        dir.path().join("secrets"),
    ));
    let own = cobro::ports::WhatsAppSecrets {
        app_secret: SECRET.into(),
        ..Default::default()
    };
    cobro::ports::Secrets::put(
        secrets.as_ref(),
        &cobro::ports::secrets::whatsapp_number_secret("", NUMBER),
        &own.to_json(),
    )
    .await
    .unwrap();
    for i in 0..1000 {
        store.upsert_debtor(&debtor(&t, i)).await.unwrap();
    }
    let blobs = Arc::new(DirBlobs::new(dir.path().join("blobs")));
    let queue = Arc::new(sqlite.queue("inbound", None));
    let events = Arc::new(sqlite.queue("events", None));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let webhook = Webhook {
        store: store.clone(),
        blobs: blobs.clone(),
        inbound: queue.clone(),
        clock: clock.clone(),
        whatsapp: cobro::ports::DeploymentSecrets::Fixed(cobro::ports::WhatsAppSecrets {
            verify_token: "x".into(),
            ..Default::default()
        }),
        secrets: Arc::new(cobro::ports::CachedSecrets::new(
            secrets,
            cobro::ports::secrets::DEFAULT_TTL,
        )),
        secrets_prefix: String::new(),
    };
    let inbound = Inbound {
        store: store.clone(),
        blobs,
        bus: Arc::new(LocalBus::new().route(Default::default(), events as Arc<dyn Queue>)),
        clock,
        media: None,
        outbound: None,
        links: None,
    };
    println!("== webhook: verify, keep, queue (embedded store, SQLite file)");
    let mut first = 0;
    let batches = (posts / 10).max(10);
    for (label, messages, statuses, text_len, runs) in [
        ("1 message", 1, 0, 0, posts),
        (
            "1,000 updates (600 messages, 400 statuses)",
            600,
            400,
            0,
            batches,
        ),
        ("1,000 updates in 3 MB", 600, 400, 4950, batches),
    ] {
        let mut post_times = Vec::new();
        let mut apply_times = Vec::new();
        for _ in 0..runs {
            let raw = delivery(messages, statuses, first, text_len);
            first += messages.max(1);
            let mut headers = HeaderMap::new();
            let sig = signature::sign(SECRET.as_bytes(), &raw);
            headers.insert("x-hub-signature-256", HeaderValue::from_str(&sig).unwrap());
            let start = Instant::now();
            webhook.handle(&headers, &raw).await.expect("accepted");
            post_times.push(start.elapsed());
            let job = queue
                .receive(1, Duration::from_secs(60))
                .await
                .unwrap()
                .remove(0);
            let start = Instant::now();
            inbound.handle(&job.body).await.expect("applied");
            apply_times.push(start.elapsed());
            queue.delete(&job.receipt).await.unwrap();
        }
        post_times.sort();
        apply_times.sort();
        println!(
            "  {label}, {} bytes, {runs} POSTs: handler p50 {}  p99 {}   | inbound apply p50 {}  p99 {}",
            delivery(messages, statuses, 0, text_len).len(),
            ms(percentile(&post_times, 0.5)),
            ms(percentile(&post_times, 0.99)),
            ms(percentile(&apply_times, 0.5)),
            ms(percentile(&apply_times, 0.99)),
        );
    }
}

async fn sender_bench(messages: usize, rate: u32) {
    let graph = FakeGraph::start().await;
    graph.set_latency(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("cobro.db")).unwrap();
    let store = Store::new(Arc::new(sqlite.table()));
    let t = TenantId::parse("bench").unwrap();
    store.put_tenant(&tenant(&t)).await.unwrap();
    let queue = Arc::new(sqlite.queue("outbound", None));
    // A weekday noon in the debtors' zone: on the real clock, a run at night found every
    // message outside the hours the law allows and sent none.
    let clock: Arc<dyn Clock> = Arc::new(cobro::ports::FixedClock::at(
        "2026-03-16T15:00:00Z".parse().unwrap(),
    ));
    let now = clock.now();
    let mut outgoing = Vec::new();
    for i in 0..messages {
        let d = debtor(&t, i);
        store.upsert_debtor(&d).await.unwrap();
        let account = fixtures::account(&t, &format!("A-{i}"), &d.id, 100_000, "2026-03-13");
        let (account, _) = store.upsert_account(&account, None).await.unwrap();
        let attempt = ContactAttempt {
            tenant: t.clone(),
            account: account.id.clone(),
            debtor: d.id.clone(),
            decision_id: "2026-03-13:d+3".into(),
            channel: ChannelKind::Whatsapp,
            template: "payment_reminder_overdue".into(),
            status: AttemptStatus::Queued,
            decided_at: now,
            text: "Hola Ana".into(),
            to: d.phone.clone(),
            language: Language::Es,
            provider_message_id: None,
            error: None,
            claimed_at: None,
            params: vec![
                "Ana".into(),
                "1000 CLP".into(),
                "Bench".into(),
                "2026-03-13".into(),
            ],
            tries: 0,
            delivery: None,
            error_code: None,
            receipt: false,
            opt_out_button: None,
            states: None,
        };
        let retry = now
            .checked_add(jiff::SignedDuration::from_hours(1))
            .unwrap();
        store
            .commit_contact(&account, &attempt, retry, None)
            .await
            .unwrap();
        let body = serde_json::to_string(&OutboundMessage {
            tenant: t.clone(),
            account: account.id,
            decision_id: attempt.decision_id,
        })
        .unwrap();
        outgoing.push(Outgoing::new(i.to_string(), body));
    }
    cobro::ports::queue::send_all(queue.as_ref(), outgoing)
        .await
        .unwrap();
    let whatsapp =
        WhatsAppChannel::new(GraphClient::new(GraphConfig::new(&graph.base_url, TOKEN)).unwrap());
    let sender = Arc::new(Sender {
        store,
        channels: Channels::new().with(ChannelKind::Whatsapp, Arc::new(whatsapp)),
        clock,
        queue: queue.clone(),
        dead_letters: None,
        bus: Arc::new(LocalBus::new()),
        pacer: Pacer::new(rate),
    });
    println!("== sender: {messages} messages, Graph API +100 ms per call, {rate}/s per number, one instance, batches of {BATCH}");
    let start = Instant::now();
    let mut sent = 0;
    loop {
        // What the Lambda poller hands one instance: up to BATCH messages (template.yaml).
        let mut batch = Vec::new();
        for _ in 0..BATCH / 10 {
            let got = queue.receive(10, Duration::from_secs(60)).await.unwrap();
            if got.is_empty() {
                break;
            }
            batch.extend(got);
        }
        if batch.is_empty() {
            break;
        }
        let records = batch
            .iter()
            .map(|m| (m.message_id.clone(), m.body.clone()))
            .collect();
        let failed = handle_batch(&sender, records, None).await;
        assert!(failed.is_empty(), "{} failed", failed.len());
        for m in &batch {
            queue.delete(&m.receipt).await.unwrap();
        }
        sent += batch.len();
    }
    let elapsed = start.elapsed();
    assert_eq!(
        graph.sends().len(),
        messages,
        "every message reached the Graph API once"
    );
    let per_second = sent as f64 / elapsed.as_secs_f64();
    println!(
        "  {sent} sent in {:.2} s: {per_second:.1} messages/s = {:.3} of the configured rate",
        elapsed.as_secs_f64(),
        per_second / f64::from(rate)
    );
}

#[tokio::main]
async fn main() {
    let posts = arg("--posts", 200);
    let messages = arg("--messages", 2000);
    let rate: u32 = arg("--rate", 80);
    webhook_bench(posts).await;
    sender_bench(messages, rate).await;
}
