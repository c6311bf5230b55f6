//! The reminders at scale:
//!
//! 1. decisions per second in one process on the embedded store, over a portfolio of
//!    `--accounts` (default 1,000,000) accounts of which `--due` (default 100,000) are due;
//! 2. with `COBRO_MOTO_URL` set, the DynamoDB and SQS requests per reminder sent, counted on the
//!    real adapters against moto, for two portfolio sizes with the same number due: what a tick
//!    reads must grow with what is due, not with the portfolio.
//!
//!     cargo run --release -p cobro-bench --bin reminders-bench -- [--accounts N] [--due N]

use std::sync::Arc;
use std::time::Instant;

use cobro::adapters::sqlite::SqliteStore;
use cobro::collect::Decider;
use cobro::domain::{Account, Debtor, DebtorId, Tenant, TenantId};
use cobro::ports::{Clock, FixedClock, Queue, Table};
use cobro::repo::Store;
use cobro_bench::cli::arg;
use cobro_bench::counting::{CountingQueue, CountingTable, Counts};
use cobro_bench::fixtures;
use cobro_reminders::Reminders;

/// Monday 2026-03-16, 12:00 in Santiago: inside Chile's contact hours.
const NOW: &str = "2026-03-16T15:00:00Z";

fn tenant() -> Tenant {
    fixtures::tenant(&TenantId::parse("bench").unwrap(), "Bench")
}

fn debtor(t: &TenantId, i: usize) -> Debtor {
    fixtures::debtor(t, &format!("d-{i}"), &format!("+569{i:08}"))
}

fn account(t: &TenantId, i: usize, debtor: usize, due: bool) -> Account {
    // Due ones are 3 days late (a step today); the rest fall due in a month.
    let due_date = if due { "2026-03-13" } else { "2026-04-20" };
    let debtor = DebtorId::parse(format!("d-{debtor}")).unwrap();
    fixtures::account(t, &format!("A-{i}"), &debtor, 100_000, due_date)
}

/// `accounts` accounts over `due` debtors (one due account each, the rest spread over them).
async fn seed(store: &Store, accounts: usize, due: usize) {
    let t = tenant();
    store.put_tenant(&t).await.unwrap();
    let now: jiff::Timestamp = NOW.parse().unwrap();
    for i in 0..due {
        store.upsert_debtor(&debtor(&t.id, i)).await.unwrap();
    }
    for i in 0..accounts {
        let is_due = i < due;
        let next = is_due.then_some(now);
        store
            .upsert_account(&account(&t.id, i, i % due, is_due), next)
            .await
            .unwrap();
        if i > 0 && i % 100_000 == 0 {
            eprintln!("  seeded {i} accounts");
        }
    }
}

/// Ticks until a tick decides nothing; the number of contacts and of decisions.
async fn run_ticks(reminders: &Reminders) -> (u64, u64) {
    let (mut contacted, mut decisions) = (0u64, 0u64);
    loop {
        let r = reminders.tick().await.expect("tick");
        let n = u64::from(r.contacted + r.deferred + r.stopped + r.already_decided);
        contacted += u64::from(r.contacted);
        decisions += n;
        if n == 0 {
            return (contacted, decisions);
        }
    }
}

async fn embedded(accounts: usize, due: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("cobro.db")).unwrap();
    let store = Store::new(Arc::new(sqlite.table()));
    println!("== reminders on the embedded store: {accounts} accounts, {due} due");
    let start = Instant::now();
    seed(&store, accounts, due).await;
    println!("  seeded in {:.1} s", start.elapsed().as_secs_f64());
    let queue = Arc::new(sqlite.queue("outbound", None));
    let reminders = Reminders {
        store,
        queue: queue.clone(),
        clock: Arc::new(FixedClock::at(NOW.parse().unwrap())) as Arc<dyn Clock>,
        decider: Decider::default(),
        bus: None,
    };
    let start = Instant::now();
    let (contacted, decisions) = run_ticks(&reminders).await;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "  {decisions} decisions ({contacted} contacts) in {secs:.1} s: {:.0} decisions/s; {} messages queued",
        decisions as f64 / secs,
        queue.depth().await.unwrap()
    );
}

async fn on_moto(endpoint: &str, accounts: usize, due: usize) {
    std::env::set_var("COBRO_MOTO_URL", endpoint);
    let moto = cobro_tests::moto::moto().await.expect("moto");
    let table = moto.create_table(&cobro_tests::moto::unique("bench")).await;
    let (queue, _) = moto
        .create_queue(&cobro_tests::moto::unique("bench"), None)
        .await;
    let counts = Arc::new(Counts::default());
    let table: Arc<dyn Table> = Arc::new(CountingTable {
        inner: Arc::new(table),
        counts: counts.clone(),
    });
    let queue: Arc<dyn Queue> = Arc::new(CountingQueue {
        inner: Arc::new(queue),
        counts: counts.clone(),
    });
    let store = Store::new(table);
    seed(&store, accounts, due).await;
    counts.reset();
    let reminders = Reminders {
        store,
        queue,
        clock: Arc::new(FixedClock::at(NOW.parse().unwrap())) as Arc<dyn Clock>,
        decider: Decider::default(),
        bus: None,
    };
    let (contacted, _) = run_ticks(&reminders).await;
    let per = |n: u64| n as f64 / contacted.max(1) as f64;
    let sqs = counts.sqs_send.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "  {accounts:>6} accounts, {due} due: {contacted} reminders; per reminder: {:.2} DynamoDB reads, {:.2} DynamoDB writes, {:.2} SQS requests",
        per(counts.reads()),
        per(counts.writes()),
        per(sqs),
    );
}

#[tokio::main]
async fn main() {
    let accounts = arg("--accounts", 1_000_000);
    let due = arg("--due", 100_000);
    // `--accounts 0`: only the request counts on moto.
    if accounts > 0 {
        embedded(accounts, due).await;
    }
    if let Ok(endpoint) = std::env::var("COBRO_MOTO_URL") {
        println!("== requests per reminder, real adapters against moto (same number due, 4× the portfolio)");
        on_moto(&endpoint, 1_000, 100).await;
        on_moto(&endpoint, 4_000, 100).await;
    } else {
        println!("(set COBRO_MOTO_URL to count DynamoDB and SQS requests against moto)");
    }
}
