//! The ledger under at-least-once delivery: duplicated, reordered and concurrent payment events
//! on the embedded store and on DynamoDB (moto), where concurrent transactions lose races.

use proptest::prelude::*;
use std::sync::Arc;

use cobro::adapters::sqlite::SqliteStore;
use cobro::domain::{Account, AccountId, AccountStatus, Currency, DebtorId, PaymentId, TenantId};
use cobro::ports::Table;
use cobro::repo::{AccountView, PaymentConfirmed, PaymentOutcome, Store};
use cobro_tests::fixtures;
use cobro_tests::moto::{moto, serialized_writes, unique};

/// The tenant of these tests' account.
fn tenant() -> TenantId {
    TenantId::parse("t").unwrap()
}

/// The account these tests pay: `A-1`.
fn a1() -> AccountId {
    AccountId::parse("A-1").unwrap()
}

/// `A-1`, open, owing `balance` of a principal of `balance` CLP, due on 2026-03-01.
fn account(balance: i64) -> Account {
    let debtor = DebtorId::parse("d-1").unwrap();
    fixtures::open_account(&tenant(), "A-1", &debtor, balance, "2026-03-01")
}

/// The account's whole record as stored now.
async fn view_of(store: &Store, account: &str) -> AccountView {
    store
        .account_view(&tenant(), &AccountId::parse(account).unwrap())
        .await
        .unwrap()
        .expect("the account")
}

fn payment(i: usize, amount: i64) -> PaymentConfirmed {
    PaymentConfirmed {
        tenant: tenant(),
        account: a1(),
        payment_id: PaymentId::parse(format!("pay-{i}")).unwrap(),
        amount_minor: amount,
        currency: Currency::parse("CLP").unwrap(),
        paid_at: "2026-03-16T15:00:00Z".parse().unwrap(),
        method: "transfer".into(),
        source: "test".into(),
    }
}

/// cobro's clock in these tests: an hour after the payments' `paid_at`.
fn applied_at() -> jiff::Timestamp {
    "2026-03-16T16:00:00Z".parse().unwrap()
}

fn clock() -> Arc<dyn cobro::ports::Clock> {
    Arc::new(cobro::ports::FixedClock::at(applied_at()))
}

/// `payment` applied at `applied_at()`, which must not fail; the outcome.
async fn apply(store: &Store, payment: &PaymentConfirmed) -> PaymentOutcome {
    store.apply_payment(payment, applied_at()).await.unwrap()
}

/// A store of its own in memory, holding `account`.
async fn store_with(account: Account) -> Store {
    let store = Store::new(Arc::new(SqliteStore::open_in_memory().unwrap().table()));
    store.upsert_account(&account, None).await.unwrap();
    store
}

/// Applies every delivery concurrently; returns (balance, credit, payments stored).
async fn deliver_all(
    table: Arc<dyn Table>,
    balance: i64,
    deliveries: Vec<PaymentConfirmed>,
) -> (i64, i64, usize) {
    let store = Store::new(table);
    store.upsert_account(&account(balance), None).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for p in deliveries {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .apply_payment(&p, applied_at())
                .await
                .expect("applied or duplicate")
        });
    }
    let mut applied = 0;
    while let Some(outcome) = tasks.join_next().await {
        if matches!(outcome.unwrap(), PaymentOutcome::Applied { .. }) {
            applied += 1;
        }
    }
    let view = view_of(&store, "A-1").await;
    assert_eq!(
        view.payments.len(),
        applied,
        "one stored payment per applied outcome"
    );
    (
        view.account.balance_minor,
        view.account.credit_minor,
        view.payments.len(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Whatever the duplicates, order and concurrency: the balance is the original minus the
    /// distinct payments (never below zero, the excess kept as credit), each applied once.
    #[test]
    fn the_balance_is_the_original_minus_each_distinct_payment_once(
        balance in 1i64..1_000_000,
        amounts in proptest::collection::vec(1i64..300_000, 1..8),
        copies in proptest::collection::vec(1usize..4, 8),
        seed in any::<u64>(),
    ) {
        let mut deliveries = Vec::new();
        for (i, a) in amounts.iter().enumerate() {
            for _ in 0..copies[i] {
                deliveries.push(payment(i, *a));
            }
        }
        fastrand::Rng::with_seed(seed).shuffle(&mut deliveries);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (left, credit, stored) = rt.block_on(async {
            let sqlite = SqliteStore::open_in_memory().unwrap();
            deliver_all(Arc::new(sqlite.table()), balance, deliveries).await
        });
        let paid: i64 = amounts.iter().sum();
        prop_assert_eq!(stored, amounts.len());
        prop_assert_eq!(left, (balance - paid).max(0));
        prop_assert_eq!(credit, (paid - balance).max(0));
    }
}

#[tokio::test]
async fn on_dynamodb_concurrent_payments_race_and_each_applies_once() {
    let Some(moto) = moto().await else { return };
    // moto does not isolate a transaction from concurrent writes (`serialized_writes`).
    let table = serialized_writes(Arc::new(moto.create_table(&unique("ledger")).await));
    // Six distinct payments, each delivered twice, all at once: transactions conflict on the
    // account's version and retry; duplicates find the payment item.
    let deliveries: Vec<PaymentConfirmed> = (0..6)
        .flat_map(|i| [payment(i, 1_000), payment(i, 1_000)])
        .collect();
    let (left, credit, stored) = deliver_all(table, 10_000, deliveries).await;
    assert_eq!((left, credit, stored), (4_000, 0, 6));
}

fn stripe_event(kind: &str, object: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": "evt_1", "object": "event", "api_version": "2024-06-20", "created": 1773673200,
        "livemode": false, "type": kind, "data": { "object": object }
    })
}

#[tokio::test]
async fn stripe_payments_apply_once_whether_the_session_or_the_intent_arrives() {
    use cobro_payment_confirmed::PaymentHandler;
    let store = store_with(account(50_000)).await;
    let handler = PaymentHandler {
        store: store.clone(),
        bus: None,
        outbound: None,
        clock: clock(),
    };
    let metadata = serde_json::json!({ "tenant": "t", "account": "A-1", "plan": "" });
    let session = stripe_event(
        "checkout.session.completed",
        serde_json::json!({
        "id": "cs_test_1", "object": "checkout.session", "payment_status": "paid", "status": "complete",
        "amount_total": 20000, "currency": "clp", "payment_intent": "pi_123", "metadata": metadata,
        "client_reference_id": "A-1" }),
    );
    let intent = stripe_event(
        "payment_intent.succeeded",
        serde_json::json!({
        "id": "pi_123", "object": "payment_intent", "amount": 20000, "amount_received": 20000,
        "currency": "clp", "status": "succeeded", "metadata": metadata }),
    );
    // Through the envelope EventBridge gives an SQS target, from Stripe's partner source.
    let envelope = serde_json::json!({ "version": "0", "id": "e1", "detail-type": "checkout.session.completed",
        "source": "aws.partner/stripe.com/ed_test_61ABC", "account": "000000000000",
        "time": "2026-03-16T15:00:00Z", "region": "us-east-1", "resources": [], "detail": session });
    let first = handler
        .handle_envelope(&envelope.to_string())
        .await
        .unwrap();
    assert!(
        matches!(
            first,
            PaymentOutcome::Applied {
                applied_minor: 20_000,
                ..
            }
        ),
        "{first:?}"
    );
    let second = handler.handle_stripe(intent).await.unwrap();
    assert_eq!(
        second,
        PaymentOutcome::Duplicate,
        "the intent of the same payment"
    );
    let view = view_of(&store, "A-1").await;
    assert_eq!(view.account.balance_minor, 30_000);
    assert_eq!(view.payments[0].id.as_str(), "pi_123");
    assert_eq!(view.payments[0].method, "stripe");
    // An unpaid session and other event types are not payments; a payment without the
    // metadata cobro put on it cannot be applied.
    let unpaid = stripe_event(
        "checkout.session.completed",
        serde_json::json!({
        "id": "cs_2", "payment_status": "unpaid", "amount_total": 1, "currency": "clp",
        "payment_intent": "pi_2", "metadata": metadata }),
    );
    assert!(matches!(
        handler.handle_stripe(unpaid).await.unwrap(),
        PaymentOutcome::Ignored { .. }
    ));
    let refund = stripe_event("charge.refunded", serde_json::json!({ "id": "ch_1" }));
    assert!(matches!(
        handler.handle_stripe(refund).await.unwrap(),
        PaymentOutcome::Ignored { .. }
    ));
    let bare = stripe_event(
        "payment_intent.succeeded",
        serde_json::json!({
        "id": "pi_9", "amount_received": 100, "currency": "clp", "metadata": {} }),
    );
    assert!(handler.handle_stripe(bare).await.is_err());
}

/// A bus that refuses its first publish and records the rest.
#[derive(Default)]
struct FlakyBus {
    refused: std::sync::atomic::AtomicBool,
    events: std::sync::Mutex<Vec<cobro::ports::Event>>,
}

#[async_trait::async_trait]
impl cobro::ports::Bus for FlakyBus {
    async fn publish(
        &self,
        events: Vec<cobro::ports::Event>,
    ) -> Result<(), cobro::ports::BusError> {
        if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(cobro::ports::BusError::Backend("throttled".into()));
        }
        self.events.lock().unwrap().extend(events);
        Ok(())
    }
}

/// The payment is applied but announcing it fails: the redelivered event finds it applied and
/// announces what it did, with the same details (so the same event ids for webhooks).
#[tokio::test]
async fn a_payment_announced_after_a_failed_publish_is_announced_on_redelivery() {
    use cobro_payment_confirmed::{PaymentError, PaymentHandler};
    let store = store_with(account(50_000)).await;
    let bus = Arc::new(FlakyBus::default());
    let handler = PaymentHandler {
        store: store.clone(),
        bus: Some(bus.clone()),
        outbound: None,
        clock: clock(),
    };
    let detail = serde_json::json!({
        "tenant": "t", "account": "A-1", "payment_id": "p-9", "amount_minor": 50_000,
        "currency": "CLP", "paid_at": "2026-03-16T15:00:00Z", "method": "transfer", "source": "crm"
    });
    let first = handler.handle(detail.clone()).await;
    assert!(matches!(first, Err(PaymentError::Bus(_))), "{first:?}");
    assert!(bus.events.lock().unwrap().is_empty());
    let again = handler.handle(detail.clone()).await.unwrap();
    assert_eq!(again, PaymentOutcome::Duplicate, "applied once");
    let kinds: Vec<String> = bus
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.detail_type.clone())
        .collect();
    assert_eq!(kinds, ["PaymentApplied", "AccountSettled"]);
    let applied = bus.events.lock().unwrap()[0].detail.clone();
    assert_eq!(applied["balance_minor"], 0);
    assert_eq!(applied["applied_minor"], 50_000);
    // A third delivery announces the same again: identical details, one webhook delivery each.
    handler.handle(detail).await.unwrap();
    let events = bus.events.lock().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0], events[2]);
}

/// A second delivery of one payment with other details (Stripe's payment intent after its
/// session, a CRM's retry without `paid_at`) announces the payment as it was first applied:
/// the same details, so the same event ids, and webhook receivers see it once.
#[tokio::test]
async fn a_redelivery_with_other_details_announces_the_payment_as_first_applied() {
    use cobro_payment_confirmed::PaymentHandler;
    let store = store_with(account(50_000)).await;
    // Refuses nothing: its one refusal is spent.
    let bus = Arc::new(FlakyBus::default());
    bus.refused.store(true, std::sync::atomic::Ordering::SeqCst);
    let handler = PaymentHandler {
        store: store.clone(),
        bus: Some(bus.clone()),
        outbound: None,
        clock: clock(),
    };
    let first = serde_json::json!({
        "tenant": "t", "account": "A-1", "payment_id": "p-7", "amount_minor": 20_000,
        "currency": "CLP", "paid_at": "2026-03-16T15:00:00Z", "method": "stripe", "source": "session"
    });
    let mut other = first.clone();
    other["paid_at"] = "2026-03-16T15:00:01Z".into();
    other["source"] = "intent".into();
    other["amount_minor"] = 20_001.into();
    assert!(matches!(
        handler.handle(first).await.unwrap(),
        PaymentOutcome::Applied { .. }
    ));
    assert_eq!(
        handler.handle(other).await.unwrap(),
        PaymentOutcome::Duplicate
    );
    let events = bus.events.lock().unwrap();
    assert_eq!(events.len(), 2, "one PaymentApplied per delivery");
    assert_eq!(
        events[1], events[0],
        "the same details, so the same event id"
    );
    assert_eq!(events[0].detail["paid_at"], "2026-03-16T15:00:00Z");
    assert_eq!(events[0].detail["amount_minor"], 20_000);
    assert_eq!(
        cobro::events::webhook::event_id(&events[1].detail_type, &events[1].detail),
        cobro::events::webhook::event_id(&events[0].detail_type, &events[0].detail)
    );
}

/// The payment is applied but announcing it fails before the debtor's receipt is queued: the
/// redelivery queues the receipt, once, however often it comes.
#[tokio::test]
async fn a_receipt_missed_after_a_failed_publish_is_queued_on_redelivery() {
    use cobro::domain::{Debtor, Tenant};
    use cobro::ports::Queue;
    use cobro_payment_confirmed::{PaymentError, PaymentHandler};
    let sqlite = SqliteStore::open_in_memory().unwrap();
    let store = Store::new(Arc::new(sqlite.table()));
    let tenant: Tenant = serde_json::from_value(serde_json::json!({
        "id": "t", "name": "Acme", "country": "CL", "channels": ["sms"]
    }))
    .unwrap();
    store.put_tenant(&tenant).await.unwrap();
    let debtor: Debtor = serde_json::from_value(serde_json::json!({
        "tenant": "t", "id": "d-1", "name": "Ana", "phone": "+56912345678",
        "time_zone": "America/Santiago", "language": "es",
        "consents": [{ "channel": "sms", "granted": true, "at": "2026-01-01T00:00:00Z", "source": "crm" }]
    }))
    .unwrap();
    store.upsert_debtor(&debtor).await.unwrap();
    store.upsert_account(&account(50_000), None).await.unwrap();
    let outbound = Arc::new(sqlite.queue("outbound", None));
    let handler = PaymentHandler {
        store: store.clone(),
        bus: Some(Arc::new(FlakyBus::default())),
        outbound: Some(outbound.clone()),
        clock: clock(),
    };
    let detail = serde_json::json!({
        "tenant": "t", "account": "A-1", "payment_id": "p-8", "amount_minor": 10_000,
        "currency": "CLP", "paid_at": "2026-03-16T15:00:00Z"
    });
    let first = handler.handle(detail.clone()).await;
    assert!(matches!(first, Err(PaymentError::Bus(_))), "{first:?}");
    for _ in 0..2 {
        assert_eq!(
            handler.handle(detail.clone()).await.unwrap(),
            PaymentOutcome::Duplicate
        );
    }
    let queued = outbound
        .receive(10, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(queued.len(), 1, "one receipt queued");
    let view = view_of(&store, "A-1").await;
    let receipts: Vec<_> = view.attempts.iter().filter(|a| a.receipt).collect();
    assert_eq!(receipts.len(), 1, "{:?}", view.attempts);
    assert!(receipts[0].text.contains("Ana"), "{}", receipts[0].text);
}

/// A settlement of 60 % paid with more than it asked: the agreed amount settles the account and
/// the rest is kept as the debtor's credit, so applied plus forgiven is the balance.
#[tokio::test]
async fn paying_more_than_a_settlement_keeps_the_excess_as_credit() {
    use cobro::plans::{build, Frequency, Plan, PlanRequest, PlanRules, SettlementRules};
    let store = store_with(account(100_000)).await;
    let (t, a) = (tenant(), a1());
    let rules = PlanRules {
        settlement: Some(SettlementRules {
            min_percent: 50,
            max_days: 30,
            max_instalments: 1,
        }),
        ..PlanRules::default()
    };
    let request = PlanRequest {
        instalments: 1,
        frequency: Frequency::Monthly,
        first_due: "2026-03-17".parse().unwrap(),
        down_payment_minor: 0,
        settlement_percent: Some(60),
    };
    let now: jiff::Timestamp = "2026-03-16T12:00:00Z".parse().unwrap();
    let current = store.account(&t, &a).await.unwrap().unwrap();
    let terms = build(
        current.balance(),
        &rules,
        &request,
        "2026-03-16".parse().unwrap(),
    )
    .unwrap();
    let plan = Plan::accepted(&current, terms, &request, &rules, now, "crm");
    store.accept_plan(&current, &plan, now).await.unwrap();

    let outcome = apply(&store, &payment(1, 80_000)).await;
    let PaymentOutcome::Applied {
        applied_minor,
        balance_minor,
        credit_minor,
        settled,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!((applied_minor, credit_minor), (60_000, 20_000));
    assert_eq!(balance_minor, 0);
    assert!(settled);
    let account = store.account(&t, &a).await.unwrap().unwrap();
    assert_eq!(account.credit_minor, 20_000);
    let plan = store.plan(&t, &a, &plan.id).await.unwrap().unwrap();
    assert_eq!(
        applied_minor + plan.terms.discount_minor,
        100_000,
        "applied and forgiven add up to the balance"
    );
    let view = store.account_view(&t, &a).await.unwrap().unwrap();
    assert_eq!(view.payments[0].applied_minor, 60_000);
    // What the settlement forgave is kept with the payment, for the aging of an earlier day.
    assert_eq!(view.payments[0].forgiven_minor, 40_000);
}

/// A payment that cannot be applied is kept in suspense once per payment id, even when its
/// deliveries give it different times (Stripe's session and payment intent of one payment).
#[tokio::test]
async fn a_payment_in_suspense_is_kept_once_whatever_time_each_delivery_gives_it() {
    let store = Store::new(Arc::new(SqliteStore::open_in_memory().unwrap().table()));
    let mut first = payment(1, 5_000);
    first.account = AccountId::parse("NO-SUCH").unwrap();
    let mut again = first.clone();
    again.paid_at = "2026-03-16T15:00:01Z".parse().unwrap();
    assert!(matches!(
        apply(&store, &first).await,
        PaymentOutcome::Suspense { .. }
    ));
    assert_eq!(apply(&store, &again).await, PaymentOutcome::Duplicate);
    let listed = store
        .suspended_payments(&TenantId::parse("t").unwrap())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].payment.paid_at, first.paid_at);
}

fn account_named(id: &str, balance: i64) -> Account {
    Account {
        id: AccountId::parse(id).unwrap(),
        ..account(balance)
    }
}

fn payment_to(account: &str, id: &str, amount: i64) -> PaymentConfirmed {
    PaymentConfirmed {
        account: AccountId::parse(account).unwrap(),
        payment_id: PaymentId::parse(id).unwrap(),
        ..payment(0, amount)
    }
}

async fn balance_of(store: &Store, account: &str) -> (i64, usize) {
    let view = view_of(store, account).await;
    (view.account.balance_minor, view.payments.len())
}

/// A payment id is applied once in the tenant, whichever accounts its deliveries name: one
/// that arrived before its account was imported is applied when it comes again and its
/// suspense entry says so; one applied to an account is not applied to another, and is listed
/// in suspense naming where it went, once per account it was sent for, however often.
async fn payment_ids_apply_once_per_tenant(table: Arc<dyn Table>) {
    let t = TenantId::parse("t").unwrap();
    let store = Store::new(table);
    store.upsert_account(&account(50_000), None).await.unwrap();
    let early = payment_to("A-9", "tx-1", 10_000);
    let outcome = apply(&store, &early).await;
    assert!(
        matches!(outcome, PaymentOutcome::Suspense { .. }),
        "{outcome:?}"
    );
    store
        .upsert_account(&account_named("A-9", 30_000), None)
        .await
        .unwrap();
    let later = applied_at() + jiff::SignedDuration::from_mins(30);
    let outcome = store.apply_payment(&early, later).await.unwrap();
    assert!(
        matches!(
            outcome,
            PaymentOutcome::Applied {
                applied_minor: 10_000,
                ..
            }
        ),
        "{outcome:?}"
    );
    let listed = store.suspended_payments(&t).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let resolved = listed[0].resolved.as_ref().expect("resolved once applied");
    assert_eq!((resolved.account.as_str(), resolved.at), ("A-9", later));
    assert_eq!(
        store.apply_payment(&early, later).await.unwrap(),
        PaymentOutcome::Duplicate
    );
    // The same id sent for another account: refused, naming the account it was applied to.
    assert_eq!(
        store
            .apply_payment(&payment_to("A-1", "tx-1", 10_000), later)
            .await
            .unwrap(),
        PaymentOutcome::AppliedElsewhere {
            account: AccountId::parse("A-9").unwrap()
        }
    );
    assert_eq!(balance_of(&store, "A-1").await, (50_000, 0));
    // Applied to A-1 by mistake, then "corrected" to A-9: A-9 is not paid a second time.
    store
        .apply_payment(&payment_to("A-1", "tx-2", 5_000), later)
        .await
        .unwrap();
    assert_eq!(
        store
            .apply_payment(&payment_to("A-9", "tx-2", 5_000), later)
            .await
            .unwrap(),
        PaymentOutcome::AppliedElsewhere {
            account: AccountId::parse("A-1").unwrap()
        }
    );
    assert_eq!(balance_of(&store, "A-1").await, (45_000, 1));
    assert_eq!(balance_of(&store, "A-9").await, (20_000, 1));
    // Sent for an account cobro does not know: not "no account" in suspense, it was applied
    // to A-1; listed as such.
    assert_eq!(
        store
            .apply_payment(&payment_to("NOPE", "tx-2", 5_000), later)
            .await
            .unwrap(),
        PaymentOutcome::AppliedElsewhere {
            account: AccountId::parse("A-1").unwrap()
        }
    );
    // Each refusal is listed once, naming the account it was applied to, and stays
    // unresolved: a redelivery adds nothing.
    for again in [("A-1", "tx-1"), ("A-9", "tx-2"), ("NOPE", "tx-2")] {
        let outcome = store
            .apply_payment(&payment_to(again.0, again.1, 5_000), later)
            .await
            .unwrap();
        assert!(
            matches!(outcome, PaymentOutcome::AppliedElsewhere { .. }),
            "{outcome:?}"
        );
    }
    let listed = store.suspended_payments(&t).await.unwrap();
    let elsewhere: Vec<_> = listed
        .iter()
        .filter_map(|e| {
            let to = e.applied_to.as_ref()?;
            Some((
                e.payment.account.as_str(),
                e.payment.payment_id.as_str(),
                to.as_str(),
            ))
        })
        .collect();
    assert_eq!(
        elsewhere,
        [
            ("A-1", "tx-1", "A-9"),
            ("A-9", "tx-2", "A-1"),
            ("NOPE", "tx-2", "A-1")
        ],
        "{listed:?}"
    );
    for e in listed.iter().filter(|e| e.applied_to.is_some()) {
        let to = e.applied_to.as_ref().unwrap().as_str();
        assert!(e.reason.contains(&format!("`{to}`")), "{}", e.reason);
        assert!(e.resolved.is_none(), "{e:?}");
    }
    // Still applied once, where it went.
    assert_eq!(balance_of(&store, "A-1").await, (45_000, 1));
    assert_eq!(balance_of(&store, "A-9").await, (20_000, 1));
    assert_eq!(
        store
            .payment_applied_to(&t, &PaymentId::parse("tx-2").unwrap())
            .await
            .unwrap()
            .map(|a| a.to_string()),
        Some("A-1".to_string())
    );
    assert_eq!(
        store
            .apply_payment(&payment_to("A-1", "tx-2", 5_000), later)
            .await
            .unwrap(),
        PaymentOutcome::Duplicate
    );
}

#[tokio::test]
async fn a_payment_id_is_applied_once_per_tenant_and_resolves_its_suspense() {
    let sqlite = SqliteStore::open_in_memory().unwrap();
    payment_ids_apply_once_per_tenant(Arc::new(sqlite.table())).await;
    let Some(moto) = moto().await else { return };
    payment_ids_apply_once_per_tenant(Arc::new(moto.create_table(&unique("payid")).await)).await;
}

/// One payment id sent for two accounts at once: one applies it, the other is refused naming
/// it, whichever wins the race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_payment_id_sent_for_two_accounts_at_once_applies_to_one() {
    for _ in 0..10 {
        let store = store_with(account(50_000)).await;
        store
            .upsert_account(&account_named("A-9", 50_000), None)
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for a in ["A-1", "A-9"] {
            let store = store.clone();
            tasks.spawn(async move {
                let outcome = apply(&store, &payment_to(a, "tx-c", 1_000)).await;
                (a, outcome)
            });
        }
        let mut winner = None;
        let mut refused = None;
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                (a, PaymentOutcome::Applied { .. }) => winner = Some(a),
                (_, PaymentOutcome::AppliedElsewhere { account }) => refused = Some(account),
                other => panic!("{other:?}"),
            }
        }
        let winner = winner.expect("one applies it");
        assert_eq!(refused.expect("one is refused").as_str(), winner);
        let total = balance_of(&store, "A-1").await.0 + balance_of(&store, "A-9").await.0;
        assert_eq!(total, 99_000, "paid once");
    }
}

/// A payment on an account already at zero is all credit and settles nothing again; on an
/// account the creditor closed, it applies but the account keeps the creditor's status.
#[tokio::test]
async fn payments_on_settled_and_closed_accounts_keep_their_status() {
    let (t, a) = (tenant(), a1());
    let mut settled = account(0);
    settled.status = AccountStatus::Settled;
    let store = store_with(settled).await;
    let outcome = apply(&store, &payment(1, 5_000)).await;
    assert!(
        matches!(
            outcome,
            PaymentOutcome::Applied {
                applied_minor: 0,
                credit_minor: 5_000,
                settled: false,
                ..
            }
        ),
        "{outcome:?}"
    );

    let mut closed = account(10_000);
    closed.status = AccountStatus::Closed;
    let store = store_with(closed).await;
    let outcome = apply(&store, &payment(2, 10_000)).await;
    assert!(
        matches!(
            outcome,
            PaymentOutcome::Applied {
                applied_minor: 10_000,
                settled: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    let after = store.account(&t, &a).await.unwrap().unwrap();
    assert_eq!(after.status, AccountStatus::Closed);
    assert_eq!(after.balance_minor, 0);
}

/// Plans with 24 % a year of simple interest, monthly, from the ledger tests' account.
mod interest {
    use super::*;
    use cobro::plans::{build, Frequency, Plan, PlanRequest, PlanRules, PlanStatus};
    use cobro::repo::{Accepted, Announcement};

    fn rules() -> PlanRules {
        PlanRules {
            annual_interest_bps: 2_400,
            ..PlanRules::default()
        }
    }

    /// Accepts a plan of `instalments` months built on what a plan is built on now.
    async fn accept(store: &Store, instalments: u32, now: &str) -> Plan {
        let now: jiff::Timestamp = now.parse().unwrap();
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let request = PlanRequest {
            instalments,
            frequency: Frequency::Monthly,
            first_due: today.checked_add(jiff::Span::new().days(7)).unwrap(),
            down_payment_minor: 0,
            settlement_percent: None,
        };
        let current = store.account(&tenant(), &a1()).await.unwrap().unwrap();
        let terms = build(current.plan_basis(), &rules(), &request, today).unwrap();
        let plan = Plan::accepted(&current, terms, &request, &rules(), now, "crm");
        match store.accept_plan(&current, &plan, now).await.unwrap() {
            Accepted::Created(p) | Accepted::Existing(p) => p,
        }
    }

    /// A payment dated later than cobro's clock allows (a typo, a debit scheduled for next
    /// month) is kept in suspense and changes nothing; one reported late is applied and the
    /// account's next decision is due from now, not from when it was paid. Sent again with
    /// its right time, the suspended one is applied and its entry resolved.
    #[tokio::test]
    async fn a_future_paid_at_is_suspended_and_the_next_decision_is_due_from_now() {
        let store = store_with(account(120_000)).await;
        accept(&store, 6, "2026-03-10T12:00:00Z").await;
        let before = store.account_view(&tenant(), &a1()).await.unwrap().unwrap();
        let mut scheduled = payment(1, 5_000);
        scheduled.paid_at = "2026-12-01T12:00:00Z".parse().unwrap();
        let outcome = apply(&store, &scheduled).await;
        let PaymentOutcome::Suspense { reason } = &outcome else {
            panic!("{outcome:?}")
        };
        assert!(reason.contains("`paid_at`"), "{reason}");
        let after = store.account_view(&tenant(), &a1()).await.unwrap().unwrap();
        assert_eq!(after.account, before.account);
        assert_eq!(after.next_action_at, before.next_action_at);
        assert!(after.payments.is_empty());
        // A provider's clock a little ahead: applied, due from now.
        let mut ahead = payment(2, 5_000);
        ahead.paid_at = applied_at() + jiff::SignedDuration::from_mins(4);
        let outcome = apply(&store, &ahead).await;
        assert!(
            matches!(outcome, PaymentOutcome::Applied { .. }),
            "{outcome:?}"
        );
        let view = store.account_view(&tenant(), &a1()).await.unwrap().unwrap();
        assert_eq!(view.next_action_at, Some(applied_at()));
        // Reported two days late: due from now too, not two days ago.
        let mut late = payment(3, 5_000);
        late.paid_at = "2026-03-14T10:00:00Z".parse().unwrap();
        let later = applied_at() + jiff::SignedDuration::from_mins(10);
        store.apply_payment(&late, later).await.unwrap();
        let view = store.account_view(&tenant(), &a1()).await.unwrap().unwrap();
        assert_eq!(view.next_action_at, Some(later));
        // The scheduled one again, with the time it was paid: applied, and resolved.
        scheduled.paid_at = "2026-03-16T15:30:00Z".parse().unwrap();
        let outcome = store.apply_payment(&scheduled, later).await.unwrap();
        assert!(
            matches!(outcome, PaymentOutcome::Applied { .. }),
            "{outcome:?}"
        );
        let listed = store.suspended_payments(&tenant()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].resolved.as_ref().unwrap().account, a1());
        let view = store.account_view(&tenant(), &a1()).await.unwrap().unwrap();
        assert_eq!(
            view.account.balance_minor,
            before.account.balance_minor - 15_000
        );
    }

    /// The same terms agreed again after the plan was replaced are a new plan under the next
    /// id, not the cancelled one given back; repeating that request finds the new one.
    #[tokio::test]
    async fn terms_agreed_again_after_their_plan_was_replaced_make_a_new_plan() {
        let store = store_with(account(120_000)).await;
        let day = "2026-03-16T12:00:00Z";
        let first = accept(&store, 6, day).await;
        let second = accept(&store, 3, day).await;
        assert_ne!(first.id, second.id);
        let again = accept(&store, 6, day).await;
        assert_eq!(again.id, format!("{}-2", first.id));
        assert_eq!(again.status, PlanStatus::Accepted);
        let account = store.account(&tenant(), &a1()).await.unwrap().unwrap();
        assert_eq!(account.plan.as_ref().unwrap().id, again.id);
        assert_eq!(account.balance_minor, again.terms.total_minor);
        let cancelled = store
            .plan(&tenant(), &a1(), &second.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cancelled.status, PlanStatus::Cancelled);
        // A retry of that request: the running plan, nothing changed.
        let retried = accept(&store, 6, day).await;
        assert_eq!(retried, again);
        assert_eq!(
            store.account(&tenant(), &a1()).await.unwrap().unwrap(),
            account
        );
    }

    /// A plan replaced after one of six instalments: the five unpaid ones' interest comes off
    /// before the new plan adds its own, so the new plan charges no interest on interest, and
    /// paying it in full settles the account to the minor unit.
    #[tokio::test]
    async fn a_replaced_plan_takes_its_unpaid_interest_off_before_the_new_one_adds_its_own() {
        let store = store_with(account(120_000)).await;
        let first = accept(&store, 6, "2026-03-16T12:00:00Z").await;
        // 120 000 at 24 % for 180 days.
        assert_eq!(first.terms.interest_minor, 14_203);
        let first_instalment = first.terms.instalments[0].amount_minor;
        apply(&store, &payment(1, first_instalment)).await;
        let now = store.account(&tenant(), &a1()).await.unwrap().unwrap();
        assert_eq!(now.balance_minor, 134_203 - first_instalment);
        // One instalment of six paid: a sixth of the interest is earned, the rest is not.
        let unearned = 14_203 - 14_203 / 6;
        assert_eq!(now.plan.as_ref().unwrap().unearned_interest_minor, unearned);
        assert_eq!(
            now.plan_basis().minor,
            134_203 - first_instalment - unearned
        );

        let second = accept(&store, 12, "2026-04-20T12:00:00Z").await;
        assert_eq!(
            second.terms.balance_minor,
            134_203 - first_instalment - unearned
        );
        let replaced = store
            .plan(&tenant(), &a1(), &first.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(replaced.status, PlanStatus::Cancelled);
        assert_eq!(replaced.interest_reversed_minor, unearned);
        let after = store.account(&tenant(), &a1()).await.unwrap().unwrap();
        assert_eq!(
            after.balance_minor,
            second.terms.balance_minor + second.terms.interest_minor
        );
        assert_eq!(after.balance_minor, second.terms.total_minor);
        // Paying the new plan in full settles the account exactly.
        for (i, inst) in second.terms.instalments.iter().enumerate() {
            apply(&store, &payment(10 + i, inst.amount_minor)).await;
        }
        let settled = store.account(&tenant(), &a1()).await.unwrap().unwrap();
        assert_eq!((settled.balance_minor, settled.credit_minor), (0, 0));
        assert_eq!(settled.status, AccountStatus::Settled);
    }

    /// Terms built on the whole balance, the replaced plan's unearned interest included, would
    /// not settle the account: refused as a conflict, and nothing changes.
    #[tokio::test]
    async fn a_plan_built_on_a_balance_still_carrying_interest_is_refused() {
        let store = store_with(account(120_000)).await;
        let first = accept(&store, 6, "2026-03-16T12:00:00Z").await;
        let before = store.account(&tenant(), &a1()).await.unwrap().unwrap();
        let now: jiff::Timestamp = "2026-03-20T12:00:00Z".parse().unwrap();
        let request = PlanRequest {
            instalments: 3,
            frequency: Frequency::Monthly,
            first_due: "2026-03-27".parse().unwrap(),
            down_payment_minor: 0,
            settlement_percent: None,
        };
        let terms = build(
            before.balance(),
            &rules(),
            &request,
            "2026-03-20".parse().unwrap(),
        )
        .unwrap();
        let plan = Plan::accepted(&before, terms, &request, &rules(), now, "crm");
        let err = store.accept_plan(&before, &plan, now).await.unwrap_err();
        assert!(
            matches!(err, cobro::repo::RepoError::Conflict(_)),
            "{err:?}"
        );
        assert_eq!(
            store.account(&tenant(), &a1()).await.unwrap().unwrap(),
            before
        );
        let kept = store
            .plan(&tenant(), &a1(), &first.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.status, PlanStatus::Accepted);
        assert!(store
            .plan(&tenant(), &a1(), &plan.id)
            .await
            .unwrap()
            .is_none());
    }

    /// A broken plan: the whole debt is owed again, without the interest of the instalments
    /// that were never paid.
    #[tokio::test]
    async fn a_broken_plan_takes_its_unpaid_interest_off() {
        let store = store_with(account(120_000)).await;
        let plan = accept(&store, 6, "2026-03-16T12:00:00Z").await;
        let first_instalment = plan.terms.instalments[0].amount_minor;
        apply(&store, &payment(1, first_instalment)).await;
        let current = store.account(&tenant(), &a1()).await.unwrap().unwrap();
        let plan = store
            .plan(&tenant(), &a1(), &plan.id)
            .await
            .unwrap()
            .unwrap();
        let unearned = plan.unearned_interest();
        assert_eq!(unearned, 14_203 - 14_203 / 6);
        let at: jiff::Timestamp = "2026-05-01T12:00:00Z".parse().unwrap();
        let event = cobro::events::PlanBroken {
            tenant: tenant(),
            account: a1(),
            debtor: current.debtor.clone(),
            plan: plan.id.clone(),
            late_instalment_due: plan.terms.instalments[1].due,
            grace_days: 5,
            at,
        };
        let announce = Announcement::of(&current, cobro::events::DomainEvent::event(&event));
        store
            .break_plan(&current, &plan, &announce, at)
            .await
            .unwrap();
        let after = store.account(&tenant(), &a1()).await.unwrap().unwrap();
        assert_eq!(after.plan, None);
        assert_eq!(after.balance_minor, 134_203 - first_instalment - unearned);
        // What was paid went to the debt and to the interest it earned.
        assert_eq!(
            after.balance_minor,
            120_000 - (first_instalment - 14_203 / 6)
        );
        let broken = store
            .plan(&tenant(), &a1(), &plan.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                broken.status,
                broken.interest_reversed_minor,
                broken.ended_at
            ),
            (PlanStatus::Broken, unearned, Some(at))
        );
    }
}

/// A plain plan paid in full while the CRM has added a fee to the balance: nothing is
/// forgiven, the fee stays owed and the reminders go back to the debt. A settlement forgives
/// its discount and no more: a fee added since stays owed too.
#[tokio::test]
async fn a_completed_plan_forgives_only_a_settlement_discount() {
    use cobro::plans::{build, Frequency, Plan, PlanRequest, PlanRules, SettlementRules};
    let (t, a) = (tenant(), a1());
    let now: jiff::Timestamp = "2026-03-16T12:00:00Z".parse().unwrap();
    let rules = PlanRules {
        settlement: Some(SettlementRules {
            min_percent: 50,
            max_days: 60,
            max_instalments: 2,
        }),
        ..PlanRules::default()
    };
    for (settlement, owed_after, forgiven) in [(None, 10_000, 0), (Some(60), 10_000, 40_000)] {
        let store = store_with(account(100_000)).await;
        let request = PlanRequest {
            instalments: 2,
            frequency: Frequency::Monthly,
            first_due: "2026-03-20".parse().unwrap(),
            down_payment_minor: 0,
            settlement_percent: settlement,
        };
        let current = store.account(&t, &a).await.unwrap().unwrap();
        let terms = build(
            current.plan_basis(),
            &rules,
            &request,
            "2026-03-16".parse().unwrap(),
        )
        .unwrap();
        let plan = Plan::accepted(&current, terms, &request, &rules, now, "crm");
        store.accept_plan(&current, &plan, now).await.unwrap();
        // The CRM adds a late fee of 10 000, keeping the plan.
        let mut with_fee = store.account(&t, &a).await.unwrap().unwrap();
        with_fee.balance_minor += 10_000;
        store.upsert_account(&with_fee, None).await.unwrap();
        for (i, inst) in plan.terms.instalments.iter().enumerate() {
            apply(&store, &payment(i, inst.amount_minor)).await;
        }
        let after = store.account(&t, &a).await.unwrap().unwrap();
        assert_eq!(after.balance_minor, owed_after, "settlement {settlement:?}");
        assert_eq!(
            after.status,
            AccountStatus::Open,
            "settlement {settlement:?}"
        );
        assert_eq!(after.plan, None);
        let view = store.account_view(&t, &a).await.unwrap().unwrap();
        let forgiven_total: i64 = view.payments.iter().map(|p| p.forgiven_minor).sum();
        assert_eq!(forgiven_total, forgiven, "settlement {settlement:?}");
        // Back on the due index, to be reminded of what is left.
        assert!(view.next_action_at.is_some(), "settlement {settlement:?}");
    }
}

/// What the debtor and the CRM do to an account: a payment, or the CRM stating what is owed
/// (a `PUT` of the account with that balance).
#[derive(Debug, Clone)]
enum Move {
    Pay(i64),
    State(i64),
}

/// The account's (balance, credit, credit netted), the credit moves recorded, and the payments'
/// (amounts, applied) summed.
async fn books(store: &Store) -> ((i64, i64, i64), Vec<i64>, (i64, i64)) {
    let view = view_of(store, "A-1").await;
    let a = &view.account;
    let moves = view.credit_netted.iter().map(|c| c.amount.minor).collect();
    let paid = view.payments.iter().map(|p| p.amount.minor).sum();
    let applied = view.payments.iter().map(|p| p.applied_minor).sum();
    (
        (a.balance_minor, a.credit_minor, a.credit_netted_minor),
        moves,
        (paid, applied),
    )
}

/// The CRM states `owed` at `at`, as `PUT /v1/accounts/{id}` does.
async fn state(store: &Store, owed: i64, at: jiff::Timestamp) -> Account {
    let mut stated = account(owed);
    stated.status = if owed == 0 {
        AccountStatus::Settled
    } else {
        AccountStatus::Open
    };
    store
        .upsert_account_at(&stated, at, |_| None)
        .await
        .unwrap()
        .0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Payments and CRM statements in any order: every minor unit paid is applied by a payment,
    /// held as credit, or paid by the credit against what the CRM stated, exactly; the
    /// balance is the statement less what the credit pays of it; a rise takes what the credit
    /// holds, up to the rise; the credit's moves are recorded and add up to what it paid; and
    /// the same statement again moves nothing.
    #[test]
    fn the_credit_pays_what_the_crm_adds_and_every_unit_is_accounted_for(
        opening in 0i64..200_000,
        moves in proptest::collection::vec(
            prop_oneof![
                (1i64..200_000).prop_map(Move::Pay),
                (0i64..300_000).prop_map(Move::State),
            ],
            1..10,
        ),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = store_with(account(opening)).await;
            let mut at = applied_at();
            for (i, m) in moves.iter().enumerate() {
                at += jiff::SignedDuration::from_mins(1);
                let ((balance, credit, netted), _, _) = books(&store).await;
                match *m {
                    Move::Pay(amount) => {
                        store.apply_payment(&payment(i, amount), at).await.unwrap();
                    }
                    Move::State(owed) => {
                        let written = state(&store, owed, at).await;
                        let ((b, c, n), recorded, _) = books(&store).await;
                        assert_eq!(b + n, owed, "{m:?}: the balance is the statement less the credit's part");
                        let rise = owed - (balance + netted);
                        if rise > 0 {
                            assert_eq!(n - netted, rise.min(credit), "{m:?}: the rise is paid from the credit");
                        } else {
                            assert!(n <= netted && c >= credit, "{m:?}: a fall takes no credit");
                        }
                        assert_eq!(b == 0, written.status == AccountStatus::Settled, "{m:?}: {written:?}");
                        // The same statement again: nothing moves, nothing more is recorded.
                        state(&store, owed, at + jiff::SignedDuration::from_secs(1)).await;
                        let again = books(&store).await;
                        assert_eq!((again.0, again.1.len()), ((b, c, n), recorded.len()), "{m:?} twice");
                    }
                }
                let ((b, c, n), recorded, (paid, applied)) = books(&store).await;
                assert!(b >= 0 && c >= 0 && n >= 0, "after {m:?}: {b} {c} {n}");
                assert_eq!(paid, applied + c + n, "after {m:?}: every unit paid is accounted for");
                assert_eq!(recorded.iter().sum::<i64>(), n, "after {m:?}: the moves add up");
                assert!(recorded.iter().all(|x| *x != 0));
            }
        });
    }
}
