//! Events out: how fast published events reach a tenant's webhook. N `PaymentApplied` events go
//! on the events-out queue (the SQLite one of the local stack); the events-out handler takes
//! them in batches of ten, as its Lambda does, records each delivery, signs it and posts it to
//! a receiver on loopback that answers 200 at once (or after `--receiver-ms`). Reported:
//! deliveries per second and each message's handling time (claim, sign, post, record).
//!
//!     cargo run --release -p cobro-bench --bin events-bench -- [--events N] [--receiver-ms MS]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobro::events::webhook::SCHEDULE;
use cobro::events::{DomainEvent, PaymentApplied, PaymentRef};
use cobro::ports::{Clock, Outgoing, Queue, SystemClock};
use cobro::repo::{Store, WebhookEndpoint};
use cobro_bench::cli::{arg, millis, percentile};
use cobro_events_out::EventsOut;

#[tokio::main]
async fn main() {
    let n: u64 = arg("--events", 2_000);
    let delay = Duration::from_millis(arg("--receiver-ms", 0));

    let received = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                tokio::time::sleep(delay).await;
                counter.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let sqlite = cobro::adapters::sqlite::SqliteStore::open(&dir.path().join("bench.db")).unwrap();
    let store = Store::new(Arc::new(sqlite.table()));
    let queue = Arc::new(sqlite.queue("events-out", None));
    let tenant = cobro::domain::TenantId::parse("bench").unwrap();
    let now = SystemClock.now();
    store
        .put_webhook(&WebhookEndpoint {
            tenant: tenant.clone(),
            url,
            events: vec![],
            secret: cobro::events::webhook::new_secret(),
            previous_secret: None,
            previous_until: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    let out = Arc::new(EventsOut {
        store,
        queue: queue.clone(),
        clock: Arc::new(SystemClock),
        http: Default::default(),
        schedule: SCHEDULE.to_vec(),
    });

    // The events as EventBridge puts them on the queue.
    let mut messages = Vec::with_capacity(n as usize);
    for i in 0..n {
        let event = PaymentApplied {
            payment: PaymentRef {
                tenant: tenant.clone(),
                account: cobro::domain::AccountId::parse(format!("A-{}", i % 500)).unwrap(),
                payment_id: cobro::domain::PaymentId::parse(format!("p-{i}")).unwrap(),
                currency: cobro::domain::Currency::parse("CLP").unwrap(),
                paid_at: now,
            },
            amount_minor: 10_000,
            applied_minor: 10_000,
            balance_minor: 90_000,
            credit_minor: 0,
            method: "transfer".into(),
            source: "bench".into(),
            plan: None,
        }
        .event();
        let envelope = cobro::adapters::local_bus::envelope(&event, now);
        messages.push(Outgoing::new(i.to_string(), envelope.to_string()));
    }
    cobro::ports::queue::send_all(queue.as_ref(), messages)
        .await
        .unwrap();

    let mut times = Vec::with_capacity(n as usize);
    let started = Instant::now();
    loop {
        let batch = queue.receive(10, Duration::from_secs(60)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        // One batch at a time, concurrently within it, as the Lambda handles an SQS batch.
        let mut tasks = tokio::task::JoinSet::new();
        for m in batch {
            let out = out.clone();
            tasks.spawn(async move {
                let t = Instant::now();
                out.handle(&m.body).await.expect("handled");
                (t.elapsed(), m.receipt)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (took, receipt) = done.unwrap();
            times.push(took);
            queue.delete(&receipt).await.unwrap();
        }
    }
    let elapsed = started.elapsed();
    times.sort();
    let delivered = received.load(Ordering::Relaxed);
    assert_eq!(delivered, n, "every event delivered once");
    println!(
        "events-out: {n} events delivered in {:.2} s = {:.0} deliveries/s (receiver answers after {} ms)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        delay.as_millis()
    );
    println!(
        "per message (record, claim, sign, post, end): p50 {:.2} ms, p99 {:.2} ms",
        millis(percentile(&times, 0.50)),
        millis(percentile(&times, 0.99))
    );
}
