//! The reminders tick when one item keeps failing: the rest of the pass goes on, across
//! tenants, and the failing item is tried again later.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cobro::adapters::local_bus::LocalBus;
use cobro::adapters::sqlite::{SqliteQueue, SqliteStore};
use cobro::collect::Decider;
use cobro::domain::{Account, Debtor, Promise, Tenant};
use cobro::outbound::OutboundMessage;
use cobro::ports::{Clock, FixedClock, Queue};
use cobro::repo::Store;
use cobro_reminders::{Reminders, TickError};
use cobro_tests::flaky::FlakyBus;
use jiff::SignedDuration;
use serde_json::json;

struct Setup {
    store: Store,
    queue: Arc<SqliteQueue>,
    clock: Arc<FixedClock>,
}

impl Setup {
    /// Tuesday 2026-03-24, noon in Santiago.
    async fn new() -> Self {
        let sqlite = SqliteStore::open_in_memory().unwrap();
        Self {
            store: Store::new(Arc::new(sqlite.table())),
            queue: Arc::new(sqlite.queue("outbound", None)),
            clock: Arc::new(FixedClock::at("2026-03-24T15:00:00Z".parse().unwrap())),
        }
    }

    /// A tenant in Chile with one SMS-consenting debtor `d-1` and its account `A-1`, overdue
    /// since March 1st and due for a decision now, with `promise` on it.
    async fn tenant_with_account(&self, tenant: &str, promise: Option<Promise>) {
        let t: Tenant = serde_json::from_value(json!({
            "id": tenant, "name": "Acme", "country": "CL", "channels": ["sms"]
        }))
        .unwrap();
        self.store.put_tenant(&t).await.unwrap();
        let debtor: Debtor = serde_json::from_value(json!({
            "tenant": tenant, "id": "d-1", "name": "Ana", "phone": "+56912345678",
            "time_zone": "America/Santiago", "language": "es",
            "consents": [{ "channel": "sms", "granted": true, "at": "2026-01-01T00:00:00Z",
                "source": "crm" }]
        }))
        .unwrap();
        self.store.upsert_debtor(&debtor).await.unwrap();
        let mut account: Account = serde_json::from_value(json!({
            "tenant": tenant, "id": "A-1", "debtor": "d-1", "currency": "CLP",
            "principal_minor": 50_000, "balance_minor": 50_000, "due_date": "2026-03-01",
            "status": "open"
        }))
        .unwrap();
        account.promise = promise;
        let now = self.clock.now();
        self.store
            .upsert_account(&account, Some(now))
            .await
            .unwrap();
    }

    fn reminders(&self, bus: Arc<FlakyBus>) -> Reminders {
        Reminders {
            store: self.store.clone(),
            queue: self.queue.clone(),
            clock: self.clock.clone(),
            decider: Decider::default(),
            bus: Some(bus),
        }
    }

    /// The tenants of the messages on the outbound queue, taken.
    async fn queued_tenants(&self) -> Vec<String> {
        let mut tenants = Vec::new();
        for m in self
            .queue
            .receive(10, Duration::from_secs(60))
            .await
            .unwrap()
        {
            let out: OutboundMessage = serde_json::from_str(&m.body).unwrap();
            tenants.push(out.tenant.to_string());
            self.queue.delete(&m.receipt).await.unwrap();
        }
        tenants
    }

    fn advance(&self, minutes: i64) {
        self.clock.advance(SignedDuration::from_mins(minutes));
    }
}

/// A promise broken on March 20th whose `PromiseBroken` the bus refuses, always: the tick
/// still decides the other tenant's account, says it failed, and tries the announcement again
/// on later ticks, each time after a longer wait.
#[tokio::test]
async fn an_item_that_keeps_failing_holds_up_nothing_else_and_is_retried_later() {
    let s = Setup::new().await;
    let promise = Promise {
        amount_minor: 10_000,
        by: "2026-03-20".parse().unwrap(),
        paid_minor: 0,
        made_at: "2026-03-16T15:00:00Z".parse().unwrap(),
        made_by: "crm".into(),
    };
    // t1 comes first in the pass, and its item first in its shard.
    s.tenant_with_account("t1", Some(promise)).await;
    s.tenant_with_account("t2", None).await;
    let bus = FlakyBus::refusing(Arc::new(LocalBus::new()), usize::MAX, |e| {
        e.detail["tenant"] == "t1"
    });
    let reminders = s.reminders(bus.clone());
    let calls = || bus.calls.load(Ordering::SeqCst);

    let failed = |r: Result<_, TickError>| match r {
        Err(TickError::Items { report, first }) => {
            assert!(first.contains("throttled"), "{first}");
            report
        }
        other => panic!("{other:?}"),
    };

    let report = failed(reminders.tick().await);
    assert_eq!((report.failed, report.contacted), (1, 1), "{report:?}");
    assert_eq!(
        s.queued_tenants().await,
        ["t2"],
        "t2's account is contacted despite t1"
    );
    assert_eq!(calls(), 1);

    // The announcement left on the outbox is tried by the next tick, and fails again; t1's
    // account, moved five minutes on by the failure, is not due yet, nor t2's.
    let report = failed(reminders.tick().await);
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(calls(), 2, "retried");
    // Then it waits: five minutes after one failure, ten after two.
    assert_eq!(reminders.tick().await.unwrap().failed, 0);
    assert_eq!(calls(), 2, "not at every tick");
    s.advance(6);
    let report = failed(reminders.tick().await);
    assert_eq!((report.failed, report.contacted), (1, 1), "{report:?}");
    assert_eq!(s.queued_tenants().await, ["t1"], "t1's account goes on");
    assert_eq!(calls(), 3);
    s.advance(9);
    reminders.tick().await.unwrap();
    assert_eq!(calls(), 3);
    s.advance(2);
    failed(reminders.tick().await);
    assert_eq!(calls(), 4);
}
