//! The reminders: a tick when one item keeps failing (the rest of the pass goes on, across
//! tenants, and the failing item is tried again later), and the contact log their caps count.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cobro::adapters::local_bus::LocalBus;
use cobro::adapters::sqlite::{SqliteQueue, SqliteStore};
use cobro::collect::Decider;
use cobro::compliance::{evaluate, Cap, Decision, Facts, Holds};
use cobro::domain::{Account, AccountId, ChannelKind, Debtor, DebtorId, Promise, Tenant, TenantId};
use cobro::outbound::OutboundMessage;
use cobro::ports::{Clock, FixedClock, Queue};
use cobro::repo::{LoggedContact, Store};
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

/// A tenant's cap over 60 days counts contacts older than a month: the log keeps them.
#[tokio::test]
async fn a_cap_over_sixty_days_counts_every_contact_of_the_sixty_days() {
    let s = Setup::new().await;
    let (tenant, debtor) = (
        TenantId::parse("t").unwrap(),
        DebtorId::parse("d-1").unwrap(),
    );
    // Tuesday 2026-01-06, noon in Santiago; day 41 is Monday 2026-02-16, same hour.
    let day = |n: i64| {
        "2026-01-06T15:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .saturating_add(SignedDuration::from_hours(24 * n))
            .unwrap()
    };
    for n in [0, 8, 16, 24, 32, 40] {
        let entry = LoggedContact {
            at: day(n),
            channel: ChannelKind::Sms,
            account: AccountId::parse("A-1").unwrap(),
            decision_id: format!("day-{n}"),
        };
        s.store.log_contact(&tenant, &debtor, entry).await.unwrap();
    }
    let history = s
        .store
        .contact_history(&tenant, &debtor, None)
        .await
        .unwrap();
    // Chile's preset with its gap and weekly caps swapped for a cap of 6 in 60 days: nothing
    // else refuses the contact on day 41.
    let mut policy = cobro::compliance::preset("CL").unwrap().clone();
    policy.min_days_between = 0;
    policy.caps = vec![Cap {
        group: None,
        channels: vec![],
        max: 6,
        days: 60,
    }];
    policy.validate().unwrap();
    let ana: Debtor = serde_json::from_value(json!({
        "tenant": "t", "id": "d-1", "name": "Ana", "phone": "+56912345678",
        "time_zone": "America/Santiago", "language": "es", "consents": []
    }))
    .unwrap();
    let facts = Facts {
        debtor: &ana,
        holds: &Holds::default(),
        history: &history,
        channels: &[ChannelKind::Sms],
        now: day(41),
    };
    let decision = evaluate(&policy, &facts);
    assert_eq!(decision.rule(), Some("cap:all:60d"), "{decision:?}");
    let Decision::Contact { at, .. } = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(at, day(60), "when day 0 leaves the window");
    assert_eq!(history.len(), 6, "{history:?}");
}
