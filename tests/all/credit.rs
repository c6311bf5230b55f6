//! The debtor's credit against what the CRM states (`Store::upsert_account_at`,
//! `domain::credit`): its moves, their `CREDIT#` records and their ledger entries, on the
//! embedded store and on DynamoDB (moto), where the account's write is conditional on its
//! version and the credit's records are written in the same transaction.

use std::sync::Arc;

use cobro::adapters::sqlite::SqliteStore;
use cobro::domain::{
    Account, AccountId, AccountStatus, CreditNetted, Currency, DebtorId, PaymentId, TenantId,
};
use cobro::export::PaymentTime;
use cobro::ports::Table;
use cobro::repo::{LedgerEntry, PaymentConfirmed, PaymentOutcome, Store};
use cobro_tests::moto::{moto, serialized_writes, unique};
use cobro_tests::payment_before_write::{any_write, PaymentBeforeWrite};
use jiff::{SignedDuration, Timestamp};

fn tenant() -> TenantId {
    TenantId::parse("t").unwrap()
}

/// The account as the CRM states it: `owed` (zero: settled).
fn stated(id: &str, owed: i64) -> Account {
    Account::new(
        tenant(),
        AccountId::parse(id).unwrap(),
        DebtorId::parse("d-1").unwrap(),
        Currency::parse("CLP").unwrap(),
        100_000,
        owed,
        "2026-03-01".parse().unwrap(),
    )
}

fn payment(account: &str, id: &str, amount: i64) -> PaymentConfirmed {
    PaymentConfirmed {
        tenant: tenant(),
        account: AccountId::parse(account).unwrap(),
        payment_id: PaymentId::parse(id).unwrap(),
        amount_minor: amount,
        currency: Currency::parse("CLP").unwrap(),
        paid_at: "2026-03-16T15:00:00Z".parse().unwrap(),
        method: "transfer".into(),
        source: "test".into(),
    }
}

/// cobro's clock: an hour after the payments' `paid_at`, then a minute per step.
fn at(minutes: i64) -> Timestamp {
    "2026-03-16T16:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(minutes)
}

/// The CRM states `owed` at `now`, as `PUT /v1/accounts/{id}` does.
async fn state(store: &Store, id: &str, owed: i64, now: Timestamp) -> Account {
    store
        .upsert_account_at(&stated(id, owed), now, |_| None)
        .await
        .unwrap()
        .0
}

/// (balance, credit, credit netted) of the account as stored, and its credit moves recorded.
async fn books(store: &Store, id: &str) -> ((i64, i64, i64), Vec<CreditNetted>) {
    let view = store
        .account_view(&tenant(), &AccountId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let a = view.account;
    (
        (a.balance_minor, a.credit_minor, a.credit_netted_minor),
        view.credit_netted,
    )
}

/// The ledger's entries of 2026-03-16 by `by`, read `per_page` at a time, as (id, amount).
async fn ledger_of_the_day(store: &Store, by: PaymentTime, per_page: u32) -> Vec<(String, i64)> {
    let from: Timestamp = "2026-03-16T00:00:00Z".parse().unwrap();
    let until = from + SignedDuration::from_hours(24);
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .payments_page(
                &tenant(),
                by,
                "2026-03",
                (from.as_millisecond(), until.as_millisecond()),
                per_page,
                after,
            )
            .await
            .unwrap();
        entries.extend(page.entries.into_iter().map(|e| match e {
            LedgerEntry::Payment { payment, .. } => (payment.id.to_string(), payment.amount.minor),
            LedgerEntry::Credit(c) => (c.id, c.amount.minor),
        }));
        match page.next {
            Some(next) => after = Some(next),
            None => return entries,
        }
    }
}

/// An overpayment leaves credit; the CRM's rise takes from it, the same statement again moves
/// nothing, a lowered statement gives it back; each move is on the account, in its history and
/// in the ledger (the daily feed and the period ledger), once.
async fn statements_move_the_credit_once(table: Arc<dyn Table>) {
    let store = Store::new(table);
    state(&store, "A-1", 100_000, at(0)).await;

    let paid = store
        .apply_payment(&payment("A-1", "pay-1", 130_000), at(0))
        .await
        .unwrap();
    let PaymentOutcome::Applied {
        applied_minor,
        credit_minor,
        settled,
        ..
    } = paid
    else {
        panic!("{paid:?}")
    };
    assert_eq!(
        (applied_minor, credit_minor, settled),
        (100_000, 30_000, true)
    );
    assert_eq!(books(&store, "A-1").await, ((0, 30_000, 0), vec![]));

    // A fee of 20,000: the credit pays it, and the account stays settled.
    let written = state(&store, "A-1", 20_000, at(1)).await;
    assert_eq!(written.status, AccountStatus::Settled);
    let (numbers, moves) = books(&store, "A-1").await;
    assert_eq!(numbers, (0, 10_000, 20_000));
    let fee = CreditNetted {
        tenant: tenant(),
        account: AccountId::parse("A-1").unwrap(),
        id: CreditNetted::id_for(written.version),
        amount: cobro::domain::Money::new(20_000, written.currency),
        at: at(1),
        stated_minor: 20_000,
        balance_minor: 0,
        credit_minor: 10_000,
    };
    assert_eq!(moves, std::slice::from_ref(&fee));

    // The same statement again: a new version, nothing moved, nothing recorded.
    let again = state(&store, "A-1", 20_000, at(2)).await;
    assert_eq!(again.version, written.version + 1);
    assert_eq!(
        books(&store, "A-1").await,
        ((0, 10_000, 20_000), vec![fee.clone()])
    );

    // An instalment of 15,000: 10,000 from the credit, 5,000 owed.
    let raised = state(&store, "A-1", 35_000, at(3)).await;
    assert_eq!(raised.status, AccountStatus::Open);
    let (numbers, moves) = books(&store, "A-1").await;
    assert_eq!(numbers, (5_000, 0, 30_000));
    assert_eq!(
        moves
            .iter()
            .map(|m| (&m.id, m.amount.minor))
            .collect::<Vec<_>>(),
        [
            (&fee.id, 20_000),
            (&CreditNetted::id_for(raised.version), 10_000)
        ]
    );

    // It waives 15,000: 5,000 owed go, 10,000 the credit had paid come back.
    let lowered = state(&store, "A-1", 20_000, at(4)).await;
    let (numbers, moves) = books(&store, "A-1").await;
    assert_eq!(numbers, (0, 10_000, 20_000));
    let back = moves.last().unwrap();
    assert_eq!(
        (&back.id, back.amount.minor, back.credit_minor),
        (&CreditNetted::id_for(lowered.version), -10_000, 10_000)
    );
    assert_eq!(moves.len(), 3);

    // The ledger has the payment and the three moves, in order, whether read by when they
    // were recorded (the daily feed) or by when they happened (the period ledger), in one page
    // or a page at a time.
    let expected = [
        ("pay-1".to_string(), 130_000),
        (fee.id.clone(), 20_000),
        (CreditNetted::id_for(raised.version), 10_000),
        (CreditNetted::id_for(lowered.version), -10_000),
    ];
    for by in [PaymentTime::RecordedAt, PaymentTime::PaidAt] {
        for per_page in [100, 1] {
            assert_eq!(
                ledger_of_the_day(&store, by, per_page).await,
                expected,
                "{by:?}, {per_page} a page"
            );
        }
    }
}

/// Two statements of the same balance racing with a payment, on accounts that hold 30,000 of
/// credit: whatever the order, each write applies once: the statement takes 20,000 from the
/// credit once, the payment adds its 5,000 to the credit (or, first, is credit before it), and
/// nothing one wrote is lost to the other.
async fn racing_statements_and_a_payment_apply_once(table: Arc<dyn Table>, on: &str) {
    let store = Store::new(table);
    let accounts: Vec<String> = (0..6).map(|i| format!("R-{i}")).collect();
    for id in &accounts {
        state(&store, id, 100_000, at(0)).await;
        store
            .apply_payment(&payment(id, &format!("{id}-over"), 130_000), at(0))
            .await
            .unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for id in &accounts {
        for _ in 0..2 {
            let (store, id) = (store.clone(), id.clone());
            tasks.spawn(async move {
                state(&store, &id, 20_000, at(1)).await;
            });
        }
        let (store, id) = (store.clone(), id.clone());
        tasks.spawn(async move {
            let outcome = store
                .apply_payment(&payment(&id, &format!("{id}-late"), 5_000), at(1))
                .await
                .unwrap();
            assert!(
                matches!(outcome, PaymentOutcome::Applied { .. }),
                "{outcome:?}"
            );
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    for id in &accounts {
        let (numbers, moves) = books(&store, id).await;
        assert_eq!(numbers, (0, 15_000, 20_000), "{on}: {id}");
        assert_eq!(
            moves.iter().map(|m| m.amount.minor).collect::<Vec<_>>(),
            [20_000],
            "{on}: {id}: the credit moved once"
        );
        let account = store
            .account(&tenant(), &AccountId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        // Created, overpaid, then two statements and a payment: five writes.
        assert_eq!(account.version, 5, "{on}: {id}: every write applied once");
    }
    // The feed has each account's two payments and its one move.
    let feed = ledger_of_the_day(&store, PaymentTime::RecordedAt, 100).await;
    assert_eq!(feed.len(), accounts.len() * 3, "{feed:?}");
    assert_eq!(
        feed.iter()
            .filter(|(id, _)| id.starts_with("credit~"))
            .map(|(_, amount)| amount)
            .sum::<i64>(),
        20_000 * accounts.len() as i64
    );
}

/// A payment applied between a statement's read of the account and its write: the write is
/// turned away (the account's version moved) and the statement is made again over the
/// payment, whether it moves credit (a transaction with its records) or not (a put alone).
async fn a_payment_between_read_and_write_is_not_lost(table: Arc<dyn Table>) {
    let table = PaymentBeforeWrite::on(table, any_write);
    let store = Store::new(table.clone());
    for id in ["M-1", "S-1"] {
        state(&store, id, 100_000, at(0)).await;
        store
            .apply_payment(&payment(id, &format!("{id}-over"), 130_000), at(0))
            .await
            .unwrap();
    }

    // The statement moves credit (20,000 from 30,000); the payment came in just before.
    table.arm(payment("M-1", "M-1-late", 5_000), at(1));
    let written = state(&store, "M-1", 20_000, at(1)).await;
    let (numbers, moves) = books(&store, "M-1").await;
    assert_eq!(numbers, (0, 15_000, 20_000), "the payment's credit is kept");
    assert_eq!(
        moves
            .iter()
            .map(|m| (&m.id, m.amount.minor))
            .collect::<Vec<_>>(),
        [(&CreditNetted::id_for(written.version), 20_000)]
    );
    // Created, overpaid, paid, stated.
    assert_eq!(written.version, 4);

    // The statement moves nothing (the same again); the payment came in just before.
    state(&store, "S-1", 20_000, at(1)).await;
    table.arm(payment("S-1", "S-1-late", 5_000), at(1));
    let written = state(&store, "S-1", 20_000, at(1)).await;
    let (numbers, moves) = books(&store, "S-1").await;
    assert_eq!(numbers, (0, 15_000, 20_000), "the payment's credit is kept");
    assert_eq!(moves.len(), 1);
    assert_eq!(written.version, 5);
}

fn sqlite() -> Arc<dyn Table> {
    Arc::new(SqliteStore::open_in_memory().unwrap().table())
}

#[tokio::test]
async fn the_crm_statements_move_the_credit_once_and_the_ledger_has_each_move() {
    statements_move_the_credit_once(sqlite()).await;
    let Some(moto) = moto().await else { return };
    statements_move_the_credit_once(Arc::new(moto.create_table(&unique("credit")).await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_racing_with_a_payment_apply_each_once() {
    racing_statements_and_a_payment_apply_once(sqlite(), "sqlite").await;
    let Some(moto) = moto().await else { return };
    // moto does not isolate concurrent transactions (`serialized_writes`).
    racing_statements_and_a_payment_apply_once(
        serialized_writes(Arc::new(moto.create_table(&unique("credit")).await)),
        "moto",
    )
    .await;
}

#[tokio::test]
async fn a_payment_between_a_statements_read_and_its_write_is_kept() {
    a_payment_between_read_and_write_is_not_lost(sqlite()).await;
    let Some(moto) = moto().await else { return };
    a_payment_between_read_and_write_is_not_lost(Arc::new(
        moto.create_table(&unique("credit")).await,
    ))
    .await;
}
