//! Finance exports: over HTTP against the local stack (request → queue → file → download),
//! the payments ledger tying out with the balances on a generated portfolio, a job that runs
//! once however often it is delivered, and the S3 adapter's multipart upload and presigned
//! links against moto.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

use cobro::adapters::dir_blobs::DirBlobs;
use cobro::adapters::sqlite::SqliteStore;
use cobro::domain::{Account, AccountId, Currency, Debtor, DebtorId, TenantId, Zone};
use cobro::export::{parse_decimal, ExportJob, ExportRequest, Format, JobStatus, Kind, Period};
use cobro::plans::{build, Frequency, Plan, PlanRequest, PlanRules};
use cobro::ports::blobs::{Blobs, DownloadLinks, LargeBlobs};
use cobro::ports::{Clock, Queue, ShiftedClock};
use cobro::repo::{PaymentConfirmed, Store};
use cobro_export::{Exporter, Outcome};
use cobro_tests::fixtures;
use cobro_tests::local::{LocalApi, DEMO_AUTH};
use cobro_tests::moto::{moto, unique};

cobro_tests::local_api_newtype!(
    /// The local stack over HTTP, its clock on 2026-04-02, with this file's steps.
    Stack
);

impl Stack {
    async fn start() -> Self {
        let api = LocalApi::start().await;
        api.stack.clock.set("2026-04-02T15:00:00Z".parse().unwrap());
        Self(api)
    }

    async fn download(&self, url: &str) -> (String, Vec<u8>) {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        };
        let res = self.http.get(url).send().await.expect("download");
        assert_eq!(res.status(), StatusCode::OK);
        let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
        (content_type, res.bytes().await.expect("bytes").to_vec())
    }

    /// Requests an export, runs the queue, and returns the finished job and its file.
    async fn export(&self, request: Value) -> (Value, Vec<u8>) {
        let (status, body) = self.call("POST", "/v1/exports", Some(request)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id = body["export"]["id"].as_str().unwrap().to_string();
        assert_eq!(body["export"]["status"], "queued");
        let report = self.drain().await;
        assert_eq!(report["exports_done"], 1, "{report}");
        let status = self.ok("GET", &format!("/v1/exports/{id}"), None).await;
        assert_eq!(status["export"]["status"], "done", "{status}");
        let url = status["download_url"].as_str().expect("a download link");
        let (_, bytes) = self.download(url).await;
        assert_eq!(status["export"]["bytes"], bytes.len() as u64);
        (status, bytes)
    }
}

fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut lines = std::str::from_utf8(bytes).expect("UTF-8").lines();
    let header: Vec<String> = lines
        .next()
        .expect("a header")
        .split(',')
        .map(String::from)
        .collect();
    let rows = lines
        .map(|l| {
            // These tests' values hold no commas or quotes, so a split is a faithful parse.
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

#[tokio::test]
async fn an_export_over_http_is_requested_run_once_and_downloaded() {
    let s = Stack::start().await;
    s.ok(
        "PUT",
        "/v1/debtors/exp-d1",
        Some(json!({
            "name": "Ana", "phone": "+56912345671", "time_zone": "America/Santiago",
            "consents": [{ "channel": "whatsapp", "granted": true }]
        })),
    )
    .await;
    for (account, currency, amount) in [("EXP-CLP", "CLP", 150_000), ("EXP-EUR", "EUR", 10_000)] {
        s.ok(
            "PUT",
            &format!("/v1/accounts/{account}"),
            Some(json!({
                "debtor_id": "exp-d1", "currency": currency, "principal_minor": amount,
                "balance_minor": amount, "due_date": "2026-02-01"
            })),
        )
        .await;
    }
    let payments = [
        ("EXP-CLP", "p-1", 50_000, "CLP", "2026-03-05T12:00:00Z"),
        ("EXP-EUR", "p-2", 12_000, "EUR", "2026-03-10T12:00:00Z"),
        // Outside the period: not in the ledger.
        ("EXP-CLP", "p-3", 1_000, "CLP", "2026-04-01T12:00:00Z"),
    ];
    for (account, id, amount, currency, at) in payments {
        s.ok(
            "POST",
            "/v1/payments",
            Some(json!({
                "account_id": account, "payment_id": id, "amount_minor": amount,
                "currency": currency, "paid_at": at
            })),
        )
        .await;
    }
    let report = s.drain().await;
    assert_eq!(report["payments_applied"], 3);

    let request = json!({
        "kind": "payments", "format": "csv", "id": "march-ledger",
        "period": { "from": "2026-03-01", "to": "2026-03-31" }
    });
    let (status, bytes) = s.export(request.clone()).await;
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(header[..3], ["paid_at_utc", "paid_at_local", "payment_id"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(status["export"]["rows"], 2);
    assert_eq!(rows[0]["payment_id"], "p-1");
    assert_eq!(rows[0]["amount"], "50000");
    assert_eq!(rows[0]["paid_at_local"], "2026-03-05T09:00:00.000-03:00");
    // An overpayment: recorded whole, 100.00 applied, 20.00 kept as a credit.
    assert_eq!(rows[1]["amount"], "120.00");
    assert_eq!(rows[1]["applied"], "100.00");
    assert_eq!(rows[1]["credit"], "20.00");
    assert_eq!(status["export"]["totals"]["EUR"]["applied"], "100.00");
    assert_eq!(status["export"]["totals"]["CLP"]["amount"], "50000");
    assert_eq!(status["export"]["time_zone"], "America/Santiago");

    // The same request again: the same job, not a second file.
    let (code, again) = s.call("POST", "/v1/exports", Some(request)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(again["export"]["status"], "done");
    let report = s.drain().await;
    assert_eq!(report["exports_done"], 0);
    // The same id with other parameters is refused.
    let (code, body) = s
        .call(
            "POST",
            "/v1/exports",
            Some(json!({
                "kind": "accounts", "format": "csv", "id": "march-ledger",
                "period": { "from": "2026-03-01", "to": "2026-03-31" }
            })),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");

    // Accounts in JSON Lines: balances now, days past due on the period's last day.
    let (_, bytes) = s
        .export(json!({
            "kind": "accounts", "format": "jsonl",
            "period": { "from": "2026-03-01", "to": "2026-03-31" }
        }))
        .await;
    let accounts: Vec<Value> = std::str::from_utf8(&bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|a: &Value| a["debtor_id"] == "exp-d1")
        .collect();
    assert_eq!(accounts.len(), 2);
    let clp = accounts
        .iter()
        .find(|a| a["account_id"] == "EXP-CLP")
        .unwrap();
    assert_eq!(clp["balance"], "99000");
    assert_eq!(clp["days_past_due"], 58);
    assert_eq!(clp["aging_bucket"], "31-60");
    let eur = accounts
        .iter()
        .find(|a| a["account_id"] == "EXP-EUR")
        .unwrap();
    assert_eq!(
        (
            eur["balance"].as_str(),
            eur["status"].as_str(),
            eur["credit"].as_str()
        ),
        (Some("0.00"), Some("settled"), Some("20.00"))
    );

    // The aging report and the contact log in XLSX: real workbooks.
    for kind in ["aging", "contacts", "plans"] {
        let (status, bytes) = s
            .export(json!({
                "kind": kind, "format": "xlsx", "time_zone": "UTC",
                "period": { "from": "2026-03-01", "to": "2026-03-31" }
            }))
            .await;
        assert_eq!(&bytes[..2], b"PK", "{kind}: a zip");
        assert!(status["download_url"].as_str().unwrap().ends_with(".xlsx"));
    }
}

#[tokio::test]
async fn bad_export_requests_name_the_field_and_change_nothing() {
    let s = Stack::start().await;
    let period = json!({ "from": "2026-03-01", "to": "2026-03-31" });
    let cases = [
        (
            json!({ "kind": "ledger", "format": "csv", "period": period }),
            "kind",
        ),
        (
            json!({ "kind": "payments", "format": "pdf", "period": period }),
            "format",
        ),
        (
            json!({ "kind": "payments", "format": "csv", "period": { "from": "2026-03-31", "to": "2026-03-01" } }),
            "period",
        ),
        (
            json!({ "kind": "payments", "format": "csv", "period": { "from": "2026-02-30", "to": "2026-03-01" } }),
            "period.from",
        ),
        (
            json!({ "kind": "payments", "format": "csv", "period": { "from": "2024-01-01", "to": "2026-03-01" } }),
            "period",
        ),
        (
            json!({ "kind": "payments", "format": "csv", "period": period, "id": "a/b" }),
            "id",
        ),
        (
            json!({ "kind": "payments", "format": "csv", "period": period, "time_zone": "Mars/Olympus" }),
            "time_zone",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = s.call("POST", "/v1/exports", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (status, _) = s.call("GET", "/v1/exports/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let report = s.drain().await;
    assert_eq!(report["exports_done"], 0);
    // Without a key: refused.
    let res = s
        .http
        .get(format!("{}/v1/exports/x", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let stack_status = s.ok("GET", "/_local/status", None).await;
    assert_eq!(stack_status["queues"]["exports"], 0);
}

#[tokio::test]
async fn the_daily_schedule_exports_yesterday_once() {
    let s = Stack::start().await;
    let first = s.ok("POST", "/_local/exports/daily", Some(json!({}))).await;
    assert_eq!(first["queued"], cobro_export::DAILY.len());
    let report = s.drain().await;
    assert_eq!(report["exports_done"], cobro_export::DAILY.len());
    // The demo tenant is in Chile: 2026-04-02 15:00 UTC is 12:00 there, so yesterday is 04-01.
    let job = s
        .ok("GET", "/v1/exports/daily-2026-04-01-payments", None)
        .await;
    assert_eq!(job["export"]["status"], "done");
    assert_eq!(job["export"]["requested_by"], "schedule");
    // The schedule fires again (at least once delivery): nothing new to do.
    let again = s.ok("POST", "/_local/exports/daily", Some(json!({}))).await;
    assert_eq!(again["queued"], 0);
}

/// The daily payments feed takes what cobro recorded that day: Monday's transfer that a CRM
/// reports on Tuesday, after Monday's file was built, is in Tuesday's file with its `paid_at`
/// (once), while the ledger of a period still files it on Monday.
#[tokio::test]
async fn a_payment_reported_after_its_days_file_is_in_the_next_days_file() {
    let s = Stack::start().await;
    // Tuesday 07:00 in Santiago (UTC−3): the schedule exports Monday.
    s.stack.clock.set("2026-03-17T10:00:00Z".parse().unwrap());
    s.ok(
        "PUT",
        "/v1/debtors/day-d1",
        Some(json!({ "name": "Ana", "phone": "+56912345672", "time_zone": "America/Santiago" })),
    )
    .await;
    s.ok(
        "PUT",
        "/v1/accounts/DAY-1",
        Some(json!({
            "debtor_id": "day-d1", "currency": "CLP", "principal_minor": 100_000,
            "balance_minor": 100_000, "due_date": "2026-02-01"
        })),
    )
    .await;
    s.ok("POST", "/_local/exports/daily", Some(json!({}))).await;
    s.drain().await;
    // Tuesday 10:00 there: Monday's transfer of 15:00 comes in.
    s.stack.clock.set("2026-03-17T13:00:00Z".parse().unwrap());
    s.ok(
        "POST",
        "/v1/payments",
        Some(json!({
            "account_id": "DAY-1", "payment_id": "tr-mon", "amount_minor": 25_000,
            "currency": "CLP", "paid_at": "2026-03-16T18:00:00Z"
        })),
    )
    .await;
    let report = s.drain().await;
    assert_eq!(report["payments_applied"], 1, "{report}");
    // Wednesday 07:00 there: Tuesday's file.
    s.stack.clock.set("2026-03-18T10:00:00Z".parse().unwrap());
    s.ok("POST", "/_local/exports/daily", Some(json!({}))).await;
    s.drain().await;
    async fn file(s: &Stack, day: &str) -> Vec<BTreeMap<String, String>> {
        let job = s
            .ok("GET", &format!("/v1/exports/daily-{day}-payments"), None)
            .await;
        assert_eq!(job["export"]["status"], "done", "{job}");
        assert_eq!(job["export"]["payments_by"], "recorded_at", "{job}");
        let (_, bytes) = s.download(job["download_url"].as_str().unwrap()).await;
        csv_rows(&bytes).1
    }
    assert!(
        file(&s, "2026-03-16").await.is_empty(),
        "built before it came"
    );
    let tuesday = file(&s, "2026-03-17").await;
    assert_eq!(tuesday.len(), 1, "{tuesday:?}");
    assert_eq!(tuesday[0]["payment_id"], "tr-mon");
    assert_eq!(tuesday[0]["paid_at_utc"], "2026-03-16T18:00:00.000Z");
    // The local stack's clock moves on from where it was set.
    assert!(
        tuesday[0]["recorded_at_utc"].starts_with("2026-03-17T13:00:0"),
        "{tuesday:?}"
    );
    assert_eq!(tuesday[0]["applied"], "25000");
    // The ledger of a period asked for files it by when it was paid.
    let (_, bytes) = s
        .export(json!({
            "kind": "payments", "format": "csv", "id": "monday",
            "period": { "from": "2026-03-16", "to": "2026-03-16" }
        }))
        .await;
    let monday = csv_rows(&bytes).1;
    assert_eq!(monday.len(), 1);
    assert_eq!(monday[0]["payment_id"], "tr-mon");
}

fn tenant() -> TenantId {
    TenantId::parse("ledger-t").unwrap()
}

fn debtor(i: usize) -> Debtor {
    let phone = format!("+569{:08}", 10_000_000 + i);
    Debtor {
        name: "Test".into(),
        ..fixtures::debtor(&tenant(), &format!("d-{i}"), &phone)
    }
}

fn account(i: usize, currency: Currency, balance: i64) -> Account {
    let debtor = DebtorId::parse(format!("d-{}", i / 2)).unwrap();
    Account {
        currency,
        ..fixtures::open_account(&tenant(), &format!("A-{i}"), &debtor, balance, "2026-01-15")
    }
}

/// Balances owed per currency now.
async fn balances(store: &Store, accounts: &[Account]) -> BTreeMap<&'static str, i64> {
    let mut out = BTreeMap::new();
    for a in accounts {
        let now = store.account(&a.tenant, &a.id).await.unwrap().unwrap();
        *out.entry(code(now.currency)).or_insert(0) += now.balance_minor;
    }
    out
}

fn code(c: Currency) -> &'static str {
    match c.code() {
        "CLP" => "CLP",
        "EUR" => "EUR",
        _ => "USD",
    }
}

struct Ledger {
    store: Store,
    exporter: Exporter,
    clock: Arc<ShiftedClock>,
    files: Arc<DirBlobs>,
    _dir: tempfile::TempDir,
}

fn ledger() -> Ledger {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    let store = Store::new(Arc::new(sqlite.table()));
    let files = Arc::new(DirBlobs::new(dir.path().join("files")));
    let clock = Arc::new(ShiftedClock::new());
    clock.set("2026-04-02T12:00:00Z".parse().unwrap());
    let exporter = Exporter {
        store: store.clone(),
        files: files.clone(),
        jobs: Arc::new(sqlite.queue("exports", None)) as Arc<dyn Queue>,
        clock: clock.clone(),
        tempdir: dir.path().to_path_buf(),
    };
    Ledger {
        store,
        exporter,
        clock,
        files,
        _dir: dir,
    }
}

async fn job(l: &Ledger, id: &str, kind: Kind, format: Format, period: Period) -> ExportJob {
    let request = ExportRequest {
        kind,
        period,
        format,
        time_zone: None,
        id: None,
    };
    let zone = Zone::parse("America/Santiago").unwrap();
    let job = ExportJob::new(tenant(), id.into(), &request, zone, l.clock.now(), "test");
    l.store.create_export_job(&job).await.unwrap();
    job
}

#[tokio::test]
async fn the_payments_ledger_ties_out_with_the_balance_reductions_of_its_period() {
    let l = ledger();
    let currencies = ["CLP", "EUR", "USD"].map(|c| Currency::parse(c).unwrap());
    let mut rng = fastrand::Rng::with_seed(7);
    let mut accounts = Vec::new();
    // Enough payments in the period for more than one page (500) of the month index.
    for i in 0..400 {
        if i % 2 == 0 {
            l.store.upsert_debtor(&debtor(i / 2)).await.unwrap();
        }
        let currency = currencies[i % 3];
        let a = account(i, currency, rng.i64(1_000..200_000));
        l.store.upsert_account(&a, None).await.unwrap();
        accounts.push(a);
    }
    // March in Santiago (UTC−3): from 03:00Z on the 1st to 03:00Z on April 1st.
    let period = Period {
        from: "2026-03-01".parse().unwrap(),
        to: "2026-03-31".parse().unwrap(),
    };
    let start: jiff::Timestamp = "2026-03-01T03:00:00Z".parse().unwrap();
    let end: jiff::Timestamp = "2026-04-01T03:00:00Z".parse().unwrap();
    let ms = jiff::SignedDuration::from_millis;
    let mut n = 0;
    let mut pay = |a: &Account, at: jiff::Timestamp, rng: &mut fastrand::Rng| {
        n += 1;
        PaymentConfirmed {
            tenant: tenant(),
            account: a.id.clone(),
            payment_id: cobro::domain::PaymentId::parse(format!("pay-{n}")).unwrap(),
            // Some pay more than they owe: recorded whole, only the balance is reduced.
            amount_minor: rng.i64(1..a.principal_minor / 2),
            currency: a.currency,
            paid_at: at,
            method: "transfer".into(),
            source: "test".into(),
        }
    };
    // Before the period (the last one a millisecond before it starts).
    for a in &accounts {
        let at = start - jiff::SignedDuration::from_hours(rng.i64(0..500)) - ms(1);
        l.store
            .apply_payment(&pay(a, at, &mut rng), l.clock.now())
            .await
            .unwrap();
    }
    let before = balances(&l.store, &accounts).await;
    let mut in_period = 0;
    for round in 0..3 {
        for a in &accounts {
            if !rng.bool() {
                continue;
            }
            let at = match round {
                0 => start,
                1 => end - ms(1),
                _ => start + ms(rng.i64(0..end.as_millisecond() - start.as_millisecond())),
            };
            l.store
                .apply_payment(&pay(a, at, &mut rng), l.clock.now())
                .await
                .unwrap();
            in_period += 1;
        }
    }
    let after = balances(&l.store, &accounts).await;
    // After the period: not counted (the first exactly when it ends).
    for a in accounts.iter().take(30) {
        let at = end + ms(rng.i64(0..86_400_000));
        l.store
            .apply_payment(&pay(a, at, &mut rng), l.clock.now())
            .await
            .unwrap();
    }

    let march = job(&l, "march", Kind::Payments, Format::Csv, period).await;
    let outcome = l.exporter.run(&tenant(), "march").await.unwrap();
    let bytes = l.files.get(&march.object_key).await.unwrap().unwrap();
    assert_eq!(
        outcome,
        Outcome::Exported {
            rows: in_period,
            bytes: bytes.len() as u64
        }
    );
    let (_, rows) = csv_rows(&bytes);
    assert_eq!(rows.len() as u64, in_period);
    assert!(in_period > 500, "more than one page: {in_period}");
    let mut applied: BTreeMap<&str, i64> = BTreeMap::new();
    for row in &rows {
        let c = Currency::parse(&row["currency"]).unwrap();
        let at: jiff::Timestamp = row["paid_at_utc"].parse().unwrap();
        assert!(at >= start && at < end, "{at} is outside the period");
        *applied.entry(code(c)).or_insert(0) += parse_decimal(&row["applied"], c).unwrap();
    }
    for c in ["CLP", "EUR", "USD"] {
        let reduction = before[c] - after[c];
        assert!(reduction > 0);
        assert_eq!(
            applied[c], reduction,
            "{c}: the ledger must equal the balance reductions"
        );
    }
    // The job's totals say the same as the file.
    let done = l
        .store
        .export_job(&tenant(), "march")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, JobStatus::Done);
    for c in currencies {
        let total = parse_decimal(&done.totals[c.code()]["applied"], c).unwrap();
        assert_eq!(total, applied[code(c)]);
    }

    // The aging report as of the period's last day adds up to what the accounts owed then:
    // the payments after the period (before the export runs) are put back.
    job(&l, "aging", Kind::Aging, Format::Csv, period).await;
    l.exporter.run(&tenant(), "aging").await.unwrap();
    let aging_job = l
        .store
        .export_job(&tenant(), "aging")
        .await
        .unwrap()
        .unwrap();
    let owed_now = balances(&l.store, &accounts).await;
    for c in currencies {
        let total = parse_decimal(&aging_job.totals[c.code()]["balance"], c).unwrap();
        assert_eq!(total, after[code(c)], "{c}: owed at the period's end");
        assert!(owed_now[code(c)] < after[code(c)], "{c}: paid since");
    }
}

#[tokio::test]
async fn a_job_runs_once_and_a_dead_run_is_taken_over() {
    let l = ledger();
    let period = Period {
        from: "2026-03-01".parse().unwrap(),
        to: "2026-03-31".parse().unwrap(),
    };
    job(&l, "j1", Kind::Accounts, Format::Jsonl, period).await;
    // A worker claims it and dies.
    let claim = l
        .store
        .claim_export_job(&tenant(), "j1", l.clock.now())
        .await
        .unwrap();
    assert!(matches!(claim, cobro::repo::ExportClaim::Claimed { .. }));
    // A redelivery while the lease holds: busy, retried later.
    assert!(matches!(
        l.exporter.run(&tenant(), "j1").await,
        Err(cobro_export::ExportError::Busy)
    ));
    // After the lease: taken over and done.
    l.clock.advance(jiff::SignedDuration::from_mins(17));
    assert!(matches!(
        l.exporter.run(&tenant(), "j1").await.unwrap(),
        Outcome::Exported { rows: 0, .. }
    ));
    let done = l.store.export_job(&tenant(), "j1").await.unwrap().unwrap();
    assert_eq!((done.status, done.tries), (JobStatus::Done, 2));
    // Delivered again: nothing more.
    assert_eq!(
        l.exporter.run(&tenant(), "j1").await.unwrap(),
        Outcome::AlreadyFinished
    );
    assert_eq!(
        l.exporter.run(&tenant(), "nope").await.unwrap(),
        Outcome::Missing
    );
    // The message shapes: the bus envelope and a bare job reference.
    let envelope = json!({ "detail-type": "ExportRequested", "source": "cobro", "detail": { "tenant": "ledger-t", "job": "j1" } });
    assert_eq!(
        l.exporter.handle(&envelope.to_string()).await.unwrap(),
        Outcome::AlreadyFinished
    );
    assert!(l.exporter.handle("{\"tenant\": 1}").await.is_err());
}

#[tokio::test]
async fn s3_multipart_uploads_and_presigned_links_on_moto() {
    let Some(moto) = moto().await else { return };
    let s3 = moto.create_bucket(&unique("exports")).await;
    let links = &s3;
    // 12 MiB in 64 KiB writes: parts of 5 MiB, 5 MiB and 2 MiB.
    let mut rng = fastrand::Rng::with_seed(1);
    let data: Vec<u8> = (0..12 << 20).map(|_| rng.u8(..)).collect();
    let mut upload = s3
        .start_upload_with("exports/t/big.bin", "application/octet-stream", 5 << 20)
        .await
        .unwrap();
    for chunk in data.chunks(64 << 10) {
        upload.write(chunk).await.unwrap();
    }
    // Nothing is visible before the upload completes.
    assert_eq!(s3.get("exports/t/big.bin").await.unwrap(), None);
    assert_eq!(upload.finish().await.unwrap(), data.len() as u64);
    assert!(s3.get("exports/t/big.bin").await.unwrap().unwrap() == data);
    let link = links
        .download_link("exports/t/big.bin", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .expect("a link");
    assert!(link.contains("X-Amz-Signature="), "{link}");
    assert!(link.contains("X-Amz-Expires=60"), "{link}");
    let fetched = cobro_tests::http()
        .get(&link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(fetched.as_ref() == data.as_slice());
    // A key with a character S3 wants encoded in the signed path.
    s3.put("exports/t/month=2026-11.csv", b"a,b\n".to_vec(), "text/csv")
        .await
        .unwrap();
    let link = links
        .download_link(
            "exports/t/month=2026-11.csv",
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap()
        .expect("a link");
    assert!(link.contains("/exports/t/month%3D2026-11.csv?"), "{link}");
    let fetched = cobro_tests::http().get(&link).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), b"a,b\n");
    // An empty object is one empty part.
    let upload = s3
        .start_upload("exports/t/empty.csv", "text/csv")
        .await
        .unwrap();
    assert_eq!(upload.finish().await.unwrap(), 0);
    assert_eq!(s3.get("exports/t/empty.csv").await.unwrap(), Some(vec![]));
    // Aborted: nothing stored.
    let mut upload = s3
        .start_upload("exports/t/gone.csv", "text/csv")
        .await
        .unwrap();
    upload.write(&data[..6 << 20]).await.unwrap();
    upload.abort().await.unwrap();
    assert_eq!(s3.get("exports/t/gone.csv").await.unwrap(), None);
    assert_eq!(
        links
            .download_link("exports/t/gone.csv", std::time::Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
}

#[test]
fn a_period_reads_every_utc_month_it_touches() {
    let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    assert_eq!(
        cobro_export::months(t("2026-01-31T03:00:00Z"), t("2026-03-01T03:00:00Z")),
        ["2026-01", "2026-02", "2026-03"]
    );
    assert_eq!(
        cobro_export::months(t("2026-02-01T00:00:00Z"), t("2026-03-01T00:00:00Z")),
        ["2026-02"]
    );
    assert!(cobro_export::months(t("2026-02-01T00:00:00Z"), t("2026-02-01T00:00:00Z")).is_empty());
}

/// Accepts a plan of `instalments` months at 24 % a year on the account, at `now`.
async fn accept_plan(l: &Ledger, id: &str, instalments: u32, now: jiff::Timestamp) -> Plan {
    let rules = PlanRules {
        annual_interest_bps: 2_400,
        ..PlanRules::default()
    };
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let request = PlanRequest {
        instalments,
        frequency: Frequency::Monthly,
        first_due: today.checked_add(jiff::Span::new().days(7)).unwrap(),
        down_payment_minor: 0,
        settlement_percent: None,
    };
    let a = l
        .store
        .account(&tenant(), &AccountId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let terms = build(a.plan_basis(), &rules, &request, today).unwrap();
    let plan = Plan::accepted(&a, terms, &request, &rules, now, "crm");
    l.store.accept_plan(&a, &plan, now).await.unwrap();
    plan
}

/// The aging of a day before a plan was accepted, replaced or broken shows the balances of
/// that day: the interest a later plan added is left out, and the unearned interest a later
/// replacement or break took off is put back.
#[tokio::test]
async fn the_aging_of_an_earlier_day_undoes_the_interest_of_later_plans() {
    let l = ledger();
    let clp = Currency::parse("CLP").unwrap();
    l.store.upsert_debtor(&debtor(0)).await.unwrap();
    l.store.upsert_debtor(&debtor(1)).await.unwrap();
    for i in 0..4 {
        l.store
            .upsert_account(&account(i, clp, 120_000), None)
            .await
            .unwrap();
    }
    let march: jiff::Timestamp = "2026-03-16T12:00:00Z".parse().unwrap();
    let april: jiff::Timestamp = "2026-04-01T12:00:00Z".parse().unwrap();
    // a plan in March, replaced in April. A-1: a plan in March, broken in April.
    // a plan in April only. A-3: no plan.
    accept_plan(&l, "A-0", 6, march).await;
    let broken = accept_plan(&l, "A-1", 6, march).await;
    let owed_end_of_march = 4 * 120_000 + 2 * broken.terms.interest_minor;
    accept_plan(&l, "A-0", 12, april).await;
    accept_plan(&l, "A-2", 3, april).await;
    let a1 = l
        .store
        .account(&tenant(), &AccountId::parse("A-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let event = cobro::events::PlanBroken {
        tenant: tenant(),
        account: a1.id.clone(),
        debtor: a1.debtor.clone(),
        plan: broken.id.clone(),
        late_instalment_due: broken.terms.instalments[0].due,
        grace_days: 5,
        at: april,
    };
    let announce = cobro::repo::Announcement::of(&a1, cobro::events::DomainEvent::event(&event));
    l.store
        .break_plan(&a1, &broken, &announce, april)
        .await
        .unwrap();
    let owed_now = balances(
        &l.store,
        &(0..4).map(|i| account(i, clp, 0)).collect::<Vec<_>>(),
    )
    .await["CLP"];
    assert_ne!(owed_now, owed_end_of_march, "the plans of April changed it");

    let period = Period {
        from: "2026-03-01".parse().unwrap(),
        to: "2026-03-31".parse().unwrap(),
    };
    job(&l, "aging", Kind::Aging, Format::Csv, period).await;
    l.exporter.run(&tenant(), "aging").await.unwrap();
    let done = l
        .store
        .export_job(&tenant(), "aging")
        .await
        .unwrap()
        .unwrap();
    let total = parse_decimal(&done.totals["CLP"]["balance"], clp).unwrap();
    assert_eq!(total, owed_end_of_march);
}

// ---------------------------------------------------------------------------------------------
// Free text from the CRM and API callers in the files (formulas, quotes, line breaks, length),
// read back as a spreadsheet would.
// ---------------------------------------------------------------------------------------------

/// RFC 4180: quoted fields may hold `,`, `"` (doubled), `;` and line breaks; a record ends
/// with `\n` (what the exporter writes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (_, c) => field.push(c),
        }
    }
    assert!(!quoted && field.is_empty(), "the file ends a record");
    records
}

/// The rows of a CSV export by column name.
fn csv_records(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut records = parse_csv(std::str::from_utf8(bytes).expect("UTF-8")).into_iter();
    let header = records.next().expect("a header");
    records
        .map(|r| {
            assert_eq!(r.len(), header.len(), "every row has every column: {r:?}");
            header.iter().cloned().zip(r).collect()
        })
        .collect()
}

/// Puts a debtor and its account on the local stack, as the CRM does.
async fn put_account(s: &Stack, account: &str, product: &str, tags: &[&str]) {
    s.ok(
        "PUT",
        "/v1/debtors/txt-d1",
        Some(json!({ "name": "Ana", "phone": "+56912345679", "time_zone": "America/Santiago" })),
    )
    .await;
    s.ok(
        "PUT",
        &format!("/v1/accounts/{account}"),
        Some(json!({
            "debtor_id": "txt-d1", "currency": "EUR", "principal_minor": 10_000,
            "balance_minor": 10_000, "due_date": "2026-02-01", "product": product, "tags": tags
        })),
    )
    .await;
}

fn march(kind: &str, format: &str) -> Value {
    json!({
        "kind": kind, "format": format,
        "period": { "from": "2026-03-01", "to": "2026-03-31" }
    })
}

#[tokio::test]
async fn csv_exports_write_text_that_looks_like_a_formula_as_text() {
    let s = Stack::start().await;
    put_account(&s, "TXT-1", "-2+3", &["=1+1", "vip"]).await;
    let method = "=HYPERLINK(\"http://x\",\"ok\")";
    s.ok(
        "POST",
        "/v1/payments",
        Some(json!({
            "account_id": "TXT-1", "payment_id": "txt-p1", "amount_minor": 12_000,
            "currency": "EUR", "paid_at": "2026-03-10T12:00:00Z", "method": method
        })),
    )
    .await;
    s.drain().await;

    let (_, bytes) = s.export(march("payments", "csv")).await;
    let payments = csv_records(&bytes);
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["method"], format!("'{method}"));
    // Amounts are numbers the exporter writes: a credit or a negative never gets a quote.
    assert_eq!(payments[0]["credit"], "20.00");

    let (_, bytes) = s.export(march("accounts", "csv")).await;
    let accounts = csv_records(&bytes);
    let account = accounts
        .iter()
        .find(|a| a["account_id"] == "TXT-1")
        .unwrap();
    assert_eq!(account["product"], "'-2+3");
    assert_eq!(account["tags"], "'=1+1;vip");
    // Quoted, so a spreadsheet that splits on `;` keeps the tags one cell.
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains(",\"'=1+1;vip\""), "{text}");

    // JSON Lines is data: written as sent.
    let (_, bytes) = s.export(march("payments", "jsonl")).await;
    let line: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(line["method"], method);
}

#[tokio::test]
async fn a_csv_export_keeps_quotes_commas_and_line_breaks_in_one_field() {
    let s = Stack::start().await;
    let product = "Loan \"Plus\", 12 months\nline two\r\nsemi;colon and a nul \u{0} byte";
    put_account(&s, "TXT-2", product, &["a,b", "c\"d"]).await;
    let (_, bytes) = s.export(march("accounts", "csv")).await;
    let accounts = csv_records(&bytes);
    let account = accounts
        .iter()
        .find(|a| a["account_id"] == "TXT-2")
        .unwrap();
    assert_eq!(account["product"], product);
    assert_eq!(account["tags"], "a,b;c\"d");
    assert_eq!(account["balance"], "100.00");
}

/// The text of an XLSX string cell (`C2`, …) in a sheet's XML; panics on a formula.
fn xlsx_text_cell(sheet: &str, cell: &str) -> String {
    let start = sheet
        .find(&format!("<c r=\"{cell}\""))
        .unwrap_or_else(|| panic!("no cell {cell}"));
    let xml = &sheet[start..start + sheet[start..].find("</c>").unwrap()];
    assert!(xml.contains("t=\"inlineStr\""), "{cell} is a string: {xml}");
    assert!(!xml.contains("<f>"), "{cell} is no formula: {xml}");
    let text = &xml[xml.find("<t").unwrap()..];
    let text = &text[text.find('>').unwrap() + 1..text.find("</t>").unwrap()];
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn an_xlsx_export_cuts_text_longer_than_excel_holds_and_is_done() {
    let l = ledger();
    l.store.upsert_debtor(&debtor(0)).await.unwrap();
    let long: String = "abcdefghij".repeat(4_000);
    let a = Account {
        creditor: None,
        product: Some(long.clone()),
        tags: vec!["=1+1".into()],
        ..account(0, Currency::parse("EUR").unwrap(), 5_000)
    };
    l.store.upsert_account(&a, None).await.unwrap();
    let period = Period {
        from: "2026-03-01".parse().unwrap(),
        to: "2026-03-31".parse().unwrap(),
    };
    let asked = job(&l, "long", Kind::Accounts, Format::Xlsx, period).await;
    let outcome = l.exporter.run(&tenant(), "long").await;
    assert!(
        matches!(outcome, Ok(Outcome::Exported { rows: 1, .. })),
        "{outcome:?}"
    );
    let done = l
        .store
        .export_job(&tenant(), "long")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, JobStatus::Done, "{:?}", done.error);

    let file = l.files.get(&asked.object_key).await.unwrap().unwrap();
    let sheet = String::from_utf8(unzip(&file, "xl/worksheets/sheet1.xml")).unwrap();
    let product = xlsx_text_cell(&sheet, "C2");
    assert_eq!(product.encode_utf16().count(), 32_767, "Excel's limit");
    assert_eq!(product, format!("{}…", &long[..32_766]));
    // A string cell is never run: written as it is, with no `'`.
    assert_eq!(xlsx_text_cell(&sheet, "O2"), "=1+1");
}

/// One file of a zip, found through the central directory (the XLSX writer streams its zip, so
/// the local headers carry no sizes).
fn unzip(zip: &[u8], name: &str) -> Vec<u8> {
    let u16_at = |i: usize| usize::from(u16::from_le_bytes([zip[i], zip[i + 1]]));
    let u32_at = |i: usize| u32::from_le_bytes(zip[i..i + 4].try_into().unwrap()) as usize;
    let end = (0..zip.len() - 21)
        .rev()
        .find(|&i| u32_at(i) == 0x0605_4b50)
        .expect("an end of central directory");
    let mut entry = u32_at(end + 16);
    for _ in 0..u16_at(end + 10) {
        assert_eq!(u32_at(entry), 0x0201_4b50, "a central directory entry");
        let name_len = u16_at(entry + 28);
        let entry_name = &zip[entry + 46..entry + 46 + name_len];
        if entry_name == name.as_bytes() {
            let (method, local) = (u16_at(entry + 10), u32_at(entry + 42));
            let data = local + 30 + u16_at(local + 26) + u16_at(local + 28);
            let size = u32_at(entry + 20);
            return match method {
                0 => zip[data..data + size].to_vec(),
                8 => inflate(&zip[data..data + size]),
                other => panic!("compression method {other}"),
            };
        }
        entry += 46 + name_len + u16_at(entry + 30) + u16_at(entry + 32);
    }
    panic!("no {name} in the zip")
}

/// DEFLATE's bits, least significant first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u32,
    count: u32,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> u32 {
        while self.count < n {
            self.buf |= u32::from(self.data[self.pos]) << self.count;
            self.pos += 1;
            self.count += 8;
        }
        let v = self.buf & ((1 << n) - 1);
        self.buf >>= n;
        self.count -= n;
        v
    }

    /// Drops what is left of the current byte (a stored block starts on the next).
    fn align(&mut self) {
        self.buf = 0;
        self.count = 0;
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    counts: [i32; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Self {
        let mut counts = [0; 16];
        for &l in lengths {
            counts[usize::from(l)] += 1;
        }
        counts[0] = 0;
        let mut offsets = [0usize; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len] as usize;
        }
        let mut symbols = vec![0; lengths.len()];
        for (symbol, &l) in lengths.iter().enumerate().filter(|(_, l)| **l != 0) {
            symbols[offsets[usize::from(l)]] = symbol as u16;
            offsets[usize::from(l)] += 1;
        }
        Huffman { counts, symbols }
    }

    fn decode(&self, bits: &mut Bits) -> usize {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.take(1) as i32;
            let count = self.counts[len];
            if code - first < count {
                return usize::from(self.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        panic!("not a Huffman code")
    }
}

/// RFC 1951, enough to read what a zip writer deflates: stored, fixed and dynamic blocks.
fn inflate(data: &[u8]) -> Vec<u8> {
    let mut bits = Bits {
        data,
        pos: 0,
        buf: 0,
        count: 0,
    };
    let mut out = Vec::new();
    loop {
        let last = bits.take(1) == 1;
        match bits.take(2) {
            0 => {
                bits.align();
                let len = usize::from(u16::from_le_bytes([data[bits.pos], data[bits.pos + 1]]));
                let start = bits.pos + 4;
                out.extend_from_slice(&data[start..start + len]);
                bits.pos = start + len;
            }
            1 => {
                let mut lengths = [8u8; 288];
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                let (literals, distances) = (Huffman::new(&lengths), Huffman::new(&[5; 30]));
                inflate_block(&mut bits, &literals, &distances, &mut out);
            }
            2 => {
                let (literals, distances) = dynamic_codes(&mut bits);
                inflate_block(&mut bits, &literals, &distances, &mut out);
            }
            _ => panic!("a reserved block type"),
        }
        if last {
            return out;
        }
    }
}

fn dynamic_codes(bits: &mut Bits) -> (Huffman, Huffman) {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let literals = bits.take(5) as usize + 257;
    let distances = bits.take(5) as usize + 1;
    let code_lengths = bits.take(4) as usize + 4;
    let mut lengths = [0u8; 19];
    for &i in &ORDER[..code_lengths] {
        lengths[i] = bits.take(3) as u8;
    }
    let lengths_code = Huffman::new(&lengths);
    let mut lengths: Vec<u8> = Vec::new();
    while lengths.len() < literals + distances {
        let (value, repeat) = match lengths_code.decode(bits) {
            symbol @ 0..=15 => (symbol as u8, 1),
            16 => (*lengths.last().unwrap(), 3 + bits.take(2)),
            17 => (0, 3 + bits.take(3)),
            _ => (0, 11 + bits.take(7)),
        };
        lengths.extend(std::iter::repeat_n(value, repeat as usize));
    }
    (
        Huffman::new(&lengths[..literals]),
        Huffman::new(&lengths[literals..]),
    )
}

fn inflate_block(bits: &mut Bits, literals: &Huffman, distances: &Huffman, out: &mut Vec<u8>) {
    const LENGTH: [usize; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LENGTH_EXTRA: [u32; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DISTANCE: [usize; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DISTANCE_EXTRA: [u32; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];
    loop {
        match literals.decode(bits) {
            byte @ 0..=255 => out.push(byte as u8),
            256 => return,
            symbol => {
                let i = symbol - 257;
                let len = LENGTH[i] + bits.take(LENGTH_EXTRA[i]) as usize;
                let d = distances.decode(bits);
                let distance = DISTANCE[d] + bits.take(DISTANCE_EXTRA[d]) as usize;
                for _ in 0..len {
                    out.push(out[out.len() - distance]);
                }
            }
        }
    }
}

/// An overpayment's credit pays what the CRM adds to the account later (a fee by `PUT`, an
/// instalment by an import), once however often the CRM says it, and comes back when the CRM
/// takes a charge back. The payments ledger holds each move beside the payment (no money in,
/// applied, credit taken), so its totals tie out: `applied` is what the balance came down
/// by against what the CRM added, and `credit` what the debtor holds.
#[tokio::test]
async fn a_credit_pays_later_charges_once_and_the_ledger_ties_out() {
    let s = Stack::start().await;
    s.ok(
        "PUT",
        "/v1/debtors/cr-d1",
        Some(json!({
            "name": "Ana", "phone": "+56912345679", "time_zone": "America/Santiago",
            "consents": [{ "channel": "whatsapp", "granted": true }]
        })),
    )
    .await;
    let owed = |balance: i64| {
        json!({
            "debtor_id": "cr-d1", "currency": "CLP", "principal_minor": 100_000,
            "balance_minor": balance, "due_date": "2026-04-20"
        })
    };
    s.ok("PUT", "/v1/accounts/CR-1", Some(owed(100_000))).await;
    s.ok(
        "POST",
        "/v1/payments",
        Some(json!({
            "account_id": "CR-1", "payment_id": "p-over", "amount_minor": 130_000,
            "currency": "CLP", "paid_at": "2026-04-02T12:00:00Z"
        })),
    )
    .await;
    let report = s.drain().await;
    assert_eq!(report["payments_applied"], 1, "{report}");
    let figures = |body: &Value| {
        let a = &body["account"];
        (
            a["balance_minor"].as_i64().unwrap(),
            a["credit_minor"].as_i64().unwrap(),
            a["credit_netted_minor"].as_i64().unwrap(),
            a["status"].as_str().unwrap().to_string(),
        )
    };
    let settled = |b, c, n| (b, c, n, "settled".to_string());
    let open = |b, c, n| (b, c, n, "open".to_string());
    let view = s.ok("GET", "/v1/accounts/CR-1", None).await;
    assert_eq!(figures(&view), settled(0, 30_000, 0));

    // A fee of 20,000: paid from the credit; nothing to remind of. Sent again, nothing moves.
    for _ in 0..2 {
        let put = s.ok("PUT", "/v1/accounts/CR-1", Some(owed(20_000))).await;
        assert_eq!(figures(&put), settled(0, 10_000, 20_000), "{put}");
        assert_eq!(put["next_action_at"], Value::Null, "{put}");
    }
    // An instalment of 15,000 more, by an import an hour later: 10,000 from the credit, 5,000
    // owed and reminded of.
    s.stack.clock.set("2026-04-02T16:00:00Z".parse().unwrap());
    let row = json!({
        "debtor_id": "cr-d1", "name": "Ana", "phone": "+56912345679",
        "time_zone": "America/Santiago", "account_id": "CR-1", "currency": "CLP",
        "principal_minor": 100_000, "balance_minor": 35_000, "due_date": "2026-04-20"
    });
    for _ in 0..2 {
        let res = s
            .http
            .post(format!("{}/v1/imports", s.base))
            .header("authorization", DEMO_AUTH)
            .header("content-type", "application/x-ndjson")
            .body(format!("{row}\n"))
            .send()
            .await
            .unwrap();
        let report: Value = res.json().await.unwrap();
        assert_eq!(report["applied"], 1, "{report}");
    }
    let view = s.ok("GET", "/v1/accounts/CR-1", None).await;
    assert_eq!(figures(&view), open(5_000, 0, 30_000));
    assert!(view["next_action_at"].is_string(), "{view}");
    let moved: Vec<i64> = view["credit_netted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount"]["minor"].as_i64().unwrap())
        .collect();
    assert_eq!(moved, [20_000, 10_000], "{view}");

    let ledger = |id: &str| {
        json!({
            "kind": "payments", "format": "csv", "id": id,
            "period": { "from": "2026-04-02", "to": "2026-04-02" }
        })
    };
    let (status, bytes) = s.export(ledger("april-2")).await;
    let (_, rows) = csv_rows(&bytes);
    let cells = |r: &BTreeMap<String, String>| {
        ["amount", "applied", "credit", "method"].map(|c| r[c].clone())
    };
    assert_eq!(
        rows.iter().map(cells).collect::<Vec<_>>(),
        [
            ["130000", "100000", "30000", "unknown"],
            ["0", "20000", "-20000", "credit"],
            ["0", "10000", "-10000", "credit"],
        ]
        .map(|r| r.map(String::from)),
        "{rows:?}"
    );
    // Added by the CRM: 100,000, 20,000, 15,000; owed now 5,000; held as credit now: none.
    let totals = &status["export"]["totals"]["CLP"];
    assert_eq!(totals["amount"], "130000");
    assert_eq!(totals["applied"], (135_000 - 5_000).to_string());
    assert_eq!(totals["credit"], "0");

    // The CRM takes the instalment back (35,000 → 20,000): the 5,000 owed goes, and the 10,000
    // the credit paid of it comes back.
    let put = s.ok("PUT", "/v1/accounts/CR-1", Some(owed(20_000))).await;
    assert_eq!(figures(&put), settled(0, 10_000, 20_000), "{put}");
    let (status, bytes) = s.export(ledger("april-2-again")).await;
    let (_, rows) = csv_rows(&bytes);
    assert_eq!(rows.len(), 4);
    assert_eq!(
        cells(&rows[3]),
        ["0", "-10000", "10000", "credit"].map(String::from)
    );
    let totals = &status["export"]["totals"]["CLP"];
    assert_eq!(totals["credit"], "10000", "what the debtor holds");
    assert_eq!(totals["applied"], "120000");

    // The daily feed (by when cobro recorded them) holds the same moves.
    let day = (
        "2026-04-02T03:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond(),
        "2026-04-03T03:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond(),
    );
    let tenant = cobro_local::demo::tenant_id();
    let feed = s
        .stack
        .store
        .payments_page(
            &tenant,
            cobro::export::PaymentTime::RecordedAt,
            "2026-04",
            day,
            100,
            None,
        )
        .await
        .unwrap();
    let credit_moves: Vec<i64> = feed
        .entries
        .iter()
        .filter_map(|e| match e {
            cobro::repo::LedgerEntry::Credit(c) => Some(c.amount.minor),
            cobro::repo::LedgerEntry::Payment { .. } => None,
        })
        .collect();
    assert_eq!(credit_moves, [20_000, 10_000, -10_000]);
}
