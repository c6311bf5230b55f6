//! Exports at scale: a payments ledger of 100,000 and of 1,000,000 payments (one month, one
//! tenant) streamed from the embedded store into a CSV file, in the dir store and, with
//! `COBRO_MOTO_URL` set, in moto's S3 (multipart). Each export runs in a child process of its
//! own, so its peak resident memory (VmHWM) is its own: the point is that it does not grow with
//! the row count.
//!
//!     cargo run --release -p cobro-bench --bin export-bench -- [--rows 1000000] [--small 100000] [--formats csv,xlsx]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cobro::adapters::dir_blobs::DirBlobs;
use cobro::adapters::sqlite::SqliteStore;
use cobro::domain::{AccountId, Currency, Money, Payment, PaymentId, TenantId, Zone};
use cobro::export::{ExportJob, ExportRequest, Format, Kind, Period};
use cobro::ports::blobs::LargeBlobs;
use cobro::ports::table::GSI1;
use cobro::ports::{Clock, Queue, SystemClock, Table};
use cobro::repo::{keys, Store};
use cobro_bench::cli::value;
use cobro_export::{Exporter, Outcome};

fn tenant() -> TenantId {
    TenantId::parse("bench").unwrap()
}

/// Peak resident set size of this process, in KiB (Linux's VmHWM).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `n` payments in March 2026, written as `apply_payment` writes them (the payment item with
/// its month index key): applying a million through the ledger would measure the ledger.
/// The export's row count is checked against `n`, so a layout that drifted would show.
async fn generate(table: &dyn Table, n: usize) {
    let clp = Currency::parse("CLP").unwrap();
    let start: jiff::Timestamp = "2026-03-01T04:00:00Z".parse().unwrap();
    let mut rng = fastrand::Rng::with_seed(42);
    let mut batch = Vec::with_capacity(5_000);
    for i in 0..n {
        let account = AccountId::parse(format!("A-{}", i % 50_000)).unwrap();
        let payment = Payment {
            tenant: tenant(),
            account: account.clone(),
            id: PaymentId::parse(format!("pay-{i:08}")).unwrap(),
            amount: Money::new(rng.i64(1_000..500_000), clp),
            paid_at: start + jiff::SignedDuration::from_secs(rng.i64(0..29 * 86_400)),
            method: "transfer".into(),
            source: "bench".into(),
            applied_minor: 1_000,
            forgiven_minor: 0,
        };
        let serde_json::Value::Object(mut item) = serde_json::to_value(&payment).unwrap() else {
            unreachable!()
        };
        item.extend(keys::payment(&tenant(), &account, payment.id.as_str()).into_item());
        item.insert("kind".into(), "payment".into());
        item.insert(
            GSI1.pk.into(),
            keys::gsi1_payments(&tenant(), "2026-03").into(),
        );
        item.insert(
            GSI1.sk.into(),
            keys::gsi1_payment_sk(
                payment.paid_at.as_millisecond(),
                &account,
                payment.id.as_str(),
            )
            .into(),
        );
        batch.push(item);
        if batch.len() == batch.capacity() {
            table
                .batch_write(std::mem::take(&mut batch), vec![])
                .await
                .unwrap();
        }
    }
    if !batch.is_empty() {
        table.batch_write(batch, vec![]).await.unwrap();
    }
}

/// One export in this process: prints `rows seconds peak_kib bytes`.
async fn child(db: &Path, target: &str, format: Format) {
    let sqlite = SqliteStore::open(db).unwrap();
    let store = Store::new(Arc::new(sqlite.table()));
    let work = tempfile::tempdir().unwrap();
    let files: Arc<dyn LargeBlobs> = match target {
        "dir" => Arc::new(DirBlobs::new(work.path().join("files"))),
        _ => {
            let moto = cobro_tests::moto::moto().await.expect("COBRO_MOTO_URL");
            Arc::new(
                moto.create_bucket(&cobro_tests::moto::unique("export-bench"))
                    .await,
            )
        }
    };
    let exporter = Exporter {
        store: store.clone(),
        files,
        jobs: Arc::new(sqlite.queue("exports", None)) as Arc<dyn Queue>,
        clock: Arc::new(SystemClock),
        tempdir: work.path().to_path_buf(),
    };
    let request = ExportRequest {
        kind: Kind::Payments,
        period: Period {
            from: "2026-03-01".parse().unwrap(),
            to: "2026-03-31".parse().unwrap(),
        },
        format,
        time_zone: None,
        id: None,
    };
    let id = format!("bench-{}", uuid_suffix());
    let job = ExportJob::new(
        tenant(),
        id.clone(),
        &request,
        Zone::parse("America/Santiago").unwrap(),
        SystemClock.now(),
        "bench",
    );
    store.create_export_job(&job).await.unwrap();
    let started = Instant::now();
    let outcome = exporter.run(&tenant(), &id).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let Outcome::Exported { rows, bytes } = outcome else {
        panic!("export did not run: {outcome:?}");
    };
    println!("{rows} {secs:.3} {} {bytes}", peak_rss_kib());
}

fn uuid_suffix() -> String {
    format!("{:x}", fastrand::u64(..))
}

#[tokio::main]
async fn main() {
    if let Some(db) = value("--child") {
        let target = value("--target").unwrap_or_else(|| "dir".into());
        let format = match value("--format").as_deref() {
            Some("xlsx") => Format::Xlsx,
            Some("jsonl") => Format::Jsonl,
            _ => Format::Csv,
        };
        child(Path::new(&db), &target, format).await;
        return;
    }
    let rows: usize = value("--rows")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let small: usize = value("--small")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let formats = value("--formats").unwrap_or_else(|| "csv".into());
    let with_moto = std::env::var("COBRO_MOTO_URL").is_ok();
    let dir = tempfile::tempdir().unwrap();
    let me = std::env::current_exe().unwrap();
    println!("| payments | format | target | rows/s | seconds | peak RSS (MiB) | file (MiB) |");
    println!("|---:|---|---|---:|---:|---:|---:|");
    for n in [small, rows] {
        let db = dir.path().join(format!("bench-{n}.db"));
        let started = Instant::now();
        {
            let sqlite = SqliteStore::open(&db).unwrap();
            generate(&sqlite.table(), n).await;
        }
        eprintln!(
            "generated {n} payments in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut targets = vec!["dir"];
        if with_moto {
            targets.push("s3");
        }
        for format in formats.split(',') {
            for target in &targets {
                // XLSX against moto adds nothing the CSV run does not show.
                if format == "xlsx" && *target == "s3" {
                    continue;
                }
                let out = std::process::Command::new(&me)
                    .args([
                        "--child",
                        db.to_str().unwrap(),
                        "--target",
                        target,
                        "--format",
                        format,
                    ])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let line = String::from_utf8(out.stdout).unwrap();
                let v: Vec<f64> = line
                    .split_whitespace()
                    .map(|x| x.parse().unwrap())
                    .collect();
                assert_eq!(v[0] as usize, n, "every payment exported once");
                println!(
                    "| {n} | {format} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
                    if *target == "dir" {
                        "dir store"
                    } else {
                        "moto S3 (multipart)"
                    },
                    v[0] / v[1],
                    v[1],
                    v[2] / 1024.0,
                    v[3] / (1024.0 * 1024.0)
                );
            }
        }
        std::fs::remove_file(&db).ok();
    }
}
