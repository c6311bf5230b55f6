//! The ledger's speed: payment events applied per second on the embedded store (each once,
//! with a duplicate of every tenth), and, with `COBRO_MOTO_URL` set, the DynamoDB requests per
//! payment on the real adapter against moto.
//!
//!     cargo run --release -p cobro-bench --bin payments-bench -- [--payments N]

use std::sync::Arc;
use std::time::Instant;

use cobro::adapters::sqlite::SqliteStore;
use cobro::domain::{Account, AccountId, Currency, DebtorId, PaymentId, TenantId};
use cobro::ports::Table;
use cobro::repo::{PaymentConfirmed, PaymentOutcome, Store};
use cobro_bench::cli::arg;
use cobro_bench::counting::{CountingTable, Counts};
use cobro_bench::fixtures;

fn account(i: usize) -> Account {
    let debtor = DebtorId::parse(format!("d-{i}")).unwrap();
    let tenant = TenantId::parse("bench").unwrap();
    fixtures::account(&tenant, &format!("A-{i}"), &debtor, 1_000_000, "2026-03-01")
}

fn payment(account: usize, n: usize) -> PaymentConfirmed {
    PaymentConfirmed {
        tenant: TenantId::parse("bench").unwrap(),
        account: AccountId::parse(format!("A-{account}")).unwrap(),
        payment_id: PaymentId::parse(format!("p-{account}-{n}")).unwrap(),
        amount_minor: 1_000,
        currency: Currency::parse("CLP").unwrap(),
        paid_at: "2026-03-16T15:00:00Z".parse().unwrap(),
        method: "transfer".into(),
        source: "bench".into(),
    }
}

/// Opens accounts `0..accounts`.
async fn open_accounts(store: &Store, accounts: usize) {
    for i in 0..accounts {
        store.upsert_account(&account(i), None).await.unwrap();
    }
}

/// `payments` payments spread over accounts `0..accounts`, plus a duplicate of every tenth;
/// (applied, duplicates).
async fn apply(store: &Store, accounts: usize, payments: usize) -> (usize, usize) {
    let (mut applied, mut dups) = (0, 0);
    for n in 0..payments {
        let p = payment(n % accounts, n);
        for _ in 0..if n % 10 == 0 { 2 } else { 1 } {
            match store
                .apply_payment(&p, jiff::Timestamp::now())
                .await
                .unwrap()
            {
                PaymentOutcome::Applied { .. } => applied += 1,
                PaymentOutcome::Duplicate => dups += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    (applied, dups)
}

#[tokio::main]
async fn main() {
    let payments = arg("--payments", 20_000);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("cobro.db")).unwrap();
    let store = Store::new(Arc::new(sqlite.table()));
    println!("== payments on the embedded store (SQLite file)");
    let start = Instant::now();
    // Over 1,000 accounts (fewer for fewer payments).
    let accounts = 1_000.min(payments.max(1));
    open_accounts(&store, accounts).await;
    let (applied, dups) = apply(&store, accounts, payments).await;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "  {applied} applied + {dups} duplicates in {secs:.2} s: {:.0} events/s",
        (applied + dups) as f64 / secs
    );
    if let Ok(endpoint) = std::env::var("COBRO_MOTO_URL") {
        std::env::set_var("COBRO_MOTO_URL", &endpoint);
        let moto = cobro_tests::moto::moto().await.expect("moto");
        let counts = Arc::new(Counts::default());
        let table: Arc<dyn Table> = Arc::new(CountingTable {
            inner: Arc::new(moto.create_table(&cobro_tests::moto::unique("pay")).await),
            counts: counts.clone(),
        });
        let store = Store::new(table);
        open_accounts(&store, 100).await;
        counts.reset();
        let (applied, dups) = apply(&store, 100, 200).await;
        println!(
            "== on moto: {applied} payments + {dups} duplicates: {:.2} DynamoDB reads and {:.2} writes per payment applied (duplicates included)",
            counts.reads() as f64 / applied as f64,
            counts.writes() as f64 / applied as f64
        );
    }
}
