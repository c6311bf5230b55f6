//! `cobro-admin payments backfill` on payments stored the old way (before the payment-id
//! record, `recorded_at` and its recorded-index entry, or the month index), on the local
//! stack's store and on DynamoDB (moto), where every write it makes is conditional on what it
//! read still being missing: it writes once, a dry run writes nothing, and a payment id
//! applied to two accounts is reported, not changed.

use clap::Parser;
use serde_json::json;
use std::sync::Arc;

use cobro::domain::{AccountId, Currency, PaymentId};
use cobro::ports::{Item, Table};
use cobro::repo::{BackfillOptions, PaymentConfirmed, Store};

use cobro_admin::{execute, Cli, Target};
use cobro_local::{demo, LocalStack, Settings};
use cobro_tests::memory_secrets::MemorySecrets;
use cobro_tests::moto::{moto, unique};
use cobro_tests::payment_before_write::PaymentBeforeWrite;

/// A payment as cobro stored it before the payment-id record and `recorded_at` existed: the
/// payment item alone, on the month index or (older still) not.
fn old_payment(
    account: &str,
    currency: &str,
    id: &str,
    paid_at: &str,
    month_index: bool,
) -> cobro::ports::Item {
    let t = demo::tenant_id();
    let a = cobro::domain::AccountId::parse(account).unwrap();
    let paid: jiff::Timestamp = paid_at.parse().unwrap();
    let key = cobro::repo::keys::payment(&t, &a, id);
    let mut item = json!({
        "pk": key.pk, "sk": key.sk, "kind": "payment",
        "tenant": "demo", "account": account, "id": id,
        "amount": { "minor": 1_000, "currency": currency }, "paid_at": paid_at,
        "method": "transfer", "source": "crm", "applied_minor": 1_000
    });
    if month_index {
        let month = paid.strftime("%Y-%m").to_string();
        item["gsi1pk"] = json!(cobro::repo::keys::gsi1_payments(&t, &month));
        item["gsi1sk"] = json!(cobro::repo::keys::gsi1_payment_sk(
            paid.as_millisecond(),
            &a,
            id
        ));
    }
    item.as_object().unwrap().clone()
}

/// The payments of one UTC day on the recorded index (the daily file) or the month index (the
/// period ledger): (account, payment id, recorded_at).
async fn payments_of_day(
    store: &cobro::repo::Store,
    by: cobro::export::PaymentTime,
    day: &str,
) -> Vec<(String, String, Option<jiff::Timestamp>)> {
    let from: jiff::Timestamp = format!("{day}T00:00:00Z").parse().unwrap();
    let until = from + jiff::SignedDuration::from_hours(24);
    let month = from.strftime("%Y-%m").to_string();
    let page = store
        .payments_page(
            &demo::tenant_id(),
            by,
            &month,
            (from.as_millisecond(), until.as_millisecond()),
            100,
            None,
        )
        .await
        .unwrap();
    page.entries
        .into_iter()
        .filter_map(|e| match e {
            cobro::repo::LedgerEntry::Payment {
                payment,
                recorded_at,
            } => Some((
                payment.account.to_string(),
                payment.id.to_string(),
                recorded_at,
            )),
            cobro::repo::LedgerEntry::Credit(_) => None,
        })
        .collect()
}

/// Runs `cobro-admin <args>` on `target`; `flag` names it as the command line would.
async fn admin(target: &Target, flag: &[&str], args: &[&str]) -> Result<String, String> {
    let mut argv = vec!["cobro-admin"];
    argv.extend_from_slice(flag);
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    execute(target, cli.command)
        .await
        .map_err(|e| e.to_string())
}

/// The backfill on `target`, whose store holds the demo tenant as seeded (`demo::seed`).
async fn backfills_once(target: &Target, flag: &[&str]) {
    use cobro::export::PaymentTime::{PaidAt, RecordedAt};
    use cobro::ports::table::Update;
    let t = demo::tenant_id();
    let table = target.store.table();
    for item in [
        old_payment("CL-1001", "CLP", "old-1", "2026-02-10T12:00:00Z", true),
        old_payment("BR-2002", "BRL", "old-2", "2026-01-05T09:00:00Z", false),
        // One id applied to two accounts, before cobro kept one account per payment id.
        old_payment("CL-1001", "CLP", "dup-1", "2026-02-10T13:00:00Z", true),
        old_payment("US-4004", "USD", "dup-1", "2026-02-10T13:00:00Z", true),
    ] {
        table.put(item, None).await.unwrap();
    }
    // Applied with a payment-id record that says when, but no `recorded_at` on the payment nor
    // entry on the recorded index: that time is the one to keep.
    let applied: jiff::Timestamp = "2026-03-02T08:00:00Z".parse().unwrap();
    let pen = |account: &str, id: &str| cobro::repo::PaymentConfirmed {
        tenant: t.clone(),
        account: cobro::domain::AccountId::parse(account).unwrap(),
        payment_id: cobro::domain::PaymentId::parse(id).unwrap(),
        amount_minor: 1_000,
        currency: cobro::domain::Currency::parse("PEN").unwrap(),
        paid_at: "2026-03-01T10:00:00Z".parse().unwrap(),
        method: "transfer".into(),
        source: "crm".into(),
    };
    for id in ["half-1", "new-1"] {
        target
            .store
            .apply_payment(&pen("PE-5005", id), applied)
            .await
            .unwrap();
    }
    let pe = cobro::domain::AccountId::parse("PE-5005").unwrap();
    table
        .update(
            &cobro::repo::keys::payment(&t, &pe, "half-1"),
            vec![Update::remove("recorded_at")],
            None,
        )
        .await
        .unwrap();
    table
        .delete(
            &cobro::repo::keys::recorded_payment(&t, applied, &pe, "half-1"),
            None,
        )
        .await
        .unwrap();
    let old_1 = cobro::domain::PaymentId::parse("old-1").unwrap();
    assert_eq!(
        target.store.payment_applied_to(&t, &old_1).await.unwrap(),
        None
    );
    assert!(payments_of_day(&target.store, RecordedAt, "2026-02-10")
        .await
        .is_empty());

    let run = |args: &'static [&'static str]| async move {
        let mut argv = vec!["payments", "backfill", "--tenant", "demo"];
        argv.extend_from_slice(args);
        let out = admin(target, flag, &argv).await.unwrap();
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let counts = |v: &serde_json::Value| {
        [
            "payments",
            "markers_written",
            "recorded_at_written",
            "recorded_at_from_paid_at",
            "recorded_index_written",
            "month_index_written",
            "complete",
        ]
        .map(|k| v[k].as_u64().unwrap())
    };
    // What it would write: a payment-id record for old-1, old-2 and dup-1 (on CL-1001, the
    // first walked: cl-maria sorts before us-john), `recorded_at` and its entry for all but
    // new-1 (complete), the month index for old-2. dup-1 on US-4004 is a conflict, found
    // without writing anything.
    let dry = run(&["--dry-run"]).await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(counts(&dry), [6, 3, 5, 4, 5, 1, 1], "{dry}");
    let conflicts = dry["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{dry}");
    assert_eq!(
        (
            conflicts[0]["account"].as_str(),
            conflicts[0]["payment_id"].as_str()
        ),
        (Some("US-4004"), Some("dup-1"))
    );
    assert!(
        conflicts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("`CL-1001`"),
        "{dry}"
    );
    assert_eq!(dry["last_debtor"], "us-john");
    assert_eq!(
        target.store.payment_applied_to(&t, &old_1).await.unwrap(),
        None,
        "a dry run writes nothing"
    );
    assert!(payments_of_day(&target.store, RecordedAt, "2026-02-10")
        .await
        .is_empty());

    let done = run(&[]).await;
    assert_eq!(done["dry_run"], false);
    assert_eq!(counts(&done), counts(&dry), "{done}");
    assert_eq!(done["conflicts"], dry["conflicts"]);
    // The cross-account check finds them now.
    let cl = cobro::domain::AccountId::parse("CL-1001").unwrap();
    assert_eq!(
        target.store.payment_applied_to(&t, &old_1).await.unwrap(),
        Some(cl.clone())
    );
    let dup_1 = cobro::domain::PaymentId::parse("dup-1").unwrap();
    assert_eq!(
        target.store.payment_applied_to(&t, &dup_1).await.unwrap(),
        Some(cl),
        "the first record stands"
    );
    // The daily file of their paid_at's day has them (recorded_at = paid_at), dup-1 on both
    // accounts, as the balances had it.
    let at = |s: &str| Some(s.parse::<jiff::Timestamp>().unwrap());
    assert_eq!(
        payments_of_day(&target.store, RecordedAt, "2026-02-10").await,
        [
            ("CL-1001".into(), "old-1".into(), at("2026-02-10T12:00:00Z")),
            ("CL-1001".into(), "dup-1".into(), at("2026-02-10T13:00:00Z")),
            ("US-4004".into(), "dup-1".into(), at("2026-02-10T13:00:00Z")),
        ]
    );
    // The one whose applying time was known keeps it; the one without the month index has it.
    let recorded_on = |day| payments_of_day(&target.store, RecordedAt, day);
    assert_eq!(
        recorded_on("2026-03-02").await,
        [
            ("PE-5005".into(), "half-1".into(), Some(applied)),
            ("PE-5005".into(), "new-1".into(), Some(applied)),
        ]
    );
    assert_eq!(
        payments_of_day(&target.store, PaidAt, "2026-01-05").await,
        [("BR-2002".into(), "old-2".into(), at("2026-01-05T09:00:00Z"))]
    );

    // Again: nothing left to write, the conflict still reported.
    let again = run(&[]).await;
    assert_eq!(counts(&again), [6, 0, 0, 0, 0, 0, 6], "{again}");
    assert_eq!(again["conflicts"], dry["conflicts"]);
    // Resumed after a debtor: only the debtors after it.
    let resumed = run(&["--after-debtor", "pe-lucia"]).await;
    assert_eq!(
        (resumed["debtors"].as_u64(), resumed["payments"].as_u64()),
        (Some(1), Some(1)),
        "{resumed}"
    );
    let e = admin(target, flag, &["payments", "backfill", "--tenant", "nope"])
        .await
        .unwrap_err();
    assert!(e.contains("no tenant `nope`"), "{e}");
}

#[tokio::test]
async fn payments_stored_before_their_records_are_backfilled_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The local stack seeds the demo tenant into its data directory's store.
    let _stack = LocalStack::open(Settings::for_tests(data.clone()))
        .await
        .unwrap();
    let local = Target::local(&data).unwrap();
    backfills_once(&local, &["--local", data.to_str().unwrap()]).await;

    let Some(moto) = moto().await else { return };
    let table = unique("backfill");
    moto.create_table(&table).await;
    let aws = Target::aws(&moto.config, &table, &format!("{}/", unique("cobro")));
    let now = jiff::Timestamp::now();
    demo::seed(
        &aws.store,
        "demo-key",
        "demo-secret",
        &*MemorySecrets::new(),
        now,
    )
    .await
    .unwrap();
    backfills_once(&aws, &["--aws"]).await;
}

/// A write of a payment id's record (`PAYID`).
fn writes_a_payment_id_record(puts: &[&Item]) -> bool {
    puts.iter().any(|item| {
        item.get("pk")
            .and_then(|v| v.as_str())
            .is_some_and(|pk| pk.contains("#PAYID#"))
    })
}

/// An old payment's id delivered for another account while the backfill runs, between its
/// read of the id's record and its write: the delivery's record stands, the backfill reports
/// it and changes nothing; run again, it reports the id applied to two accounts.
async fn a_delivery_during_the_backfill_stands(table: Arc<dyn Table>) {
    let t = demo::tenant_id();
    let table = PaymentBeforeWrite::on(table, writes_a_payment_id_record);
    let store = Store::new(table.clone());
    demo::seed(
        &store,
        "demo-key",
        "demo-secret",
        &*MemorySecrets::new(),
        jiff::Timestamp::now(),
    )
    .await
    .unwrap();
    let old = old_payment("CL-1001", "CLP", "old-1", "2026-02-10T12:00:00Z", true);
    table.put(old, None).await.unwrap();
    table.arm(
        PaymentConfirmed {
            tenant: t.clone(),
            account: AccountId::parse("US-4004").unwrap(),
            payment_id: PaymentId::parse("old-1").unwrap(),
            amount_minor: 1_000,
            currency: Currency::parse("USD").unwrap(),
            paid_at: "2026-02-10T12:00:00Z".parse().unwrap(),
            method: "transfer".into(),
            source: "crm".into(),
        },
        jiff::Timestamp::now(),
    );

    let done = store
        .backfill_payments(&t, &BackfillOptions::default())
        .await
        .unwrap();
    assert!(!table.is_armed(), "delivered");
    assert_eq!(done.markers_written, 0, "{done:?}");
    assert_eq!(done.conflicts.len(), 1, "{done:?}");
    assert!(
        done.conflicts[0]
            .detail
            .contains("written while backfilling"),
        "{done:?}"
    );
    let old_1 = PaymentId::parse("old-1").unwrap();
    let us = AccountId::parse("US-4004").unwrap();
    assert_eq!(
        store.payment_applied_to(&t, &old_1).await.unwrap(),
        Some(us.clone()),
        "the delivery's record stands"
    );

    let again = store
        .backfill_payments(&t, &BackfillOptions::default())
        .await
        .unwrap();
    assert_eq!(again.markers_written, 0, "{again:?}");
    let conflicts: Vec<_> = again
        .conflicts
        .iter()
        .map(|c| (c.account.to_string(), c.payment_id.as_str()))
        .collect();
    assert_eq!(conflicts, [("CL-1001".to_string(), "old-1")], "{again:?}");
    assert!(again.conflicts[0].detail.contains("`US-4004`"), "{again:?}");
    assert_eq!(
        store.payment_applied_to(&t, &old_1).await.unwrap(),
        Some(us)
    );
}

#[tokio::test]
async fn a_payment_delivered_during_the_backfill_keeps_its_record() {
    a_delivery_during_the_backfill_stands(Arc::new(
        cobro::adapters::sqlite::SqliteStore::open_in_memory()
            .unwrap()
            .table(),
    ))
    .await;
    let Some(moto) = moto().await else { return };
    a_delivery_during_the_backfill_stands(Arc::new(moto.create_table(&unique("backfill")).await))
        .await;
}
