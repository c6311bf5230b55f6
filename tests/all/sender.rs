//! The sender over HTTP against a local Graph API that speaks Meta's formats: what goes over
//! the wire, and what each class of failure leads to.

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

use cobro::adapters::local_bus::LocalBus;
use cobro::adapters::sandbox::SandboxChannel;
use cobro::adapters::sqlite::{SqliteQueue, SqliteStore};
use cobro::domain::{
    AccountId, AttemptStatus, ChannelKind, ContactAttempt, Debtor, DebtorId, Language, SenderIds,
    Tenant, TenantId,
};
use cobro::outbound::OutboundMessage;
use cobro::ports::{
    Bus, Channels, Clock, FixedClock, Outgoing, Pattern, Queue, QueueError, Received,
};
use cobro::repo::{Applied, Delivery, RepoError, Store};
use cobro::whatsapp::channel::WhatsAppChannel;
use cobro::whatsapp::client::{GraphClient, GraphConfig};
use cobro_sender::{Outcome, Pacer, Sender, MAX_TRIES};
use cobro_tests::fake_graph::{FakeGraph, Scripted, TOKEN};
use cobro_tests::fixtures;
use cobro_tests::flaky::FlakyBus;

const PHONE_NUMBER_ID: &str = "106540352242922";

/// The outbound queue as the sender sees it: passes every message on, keeping the delay each
/// was put back with.
struct Requeued {
    inner: Arc<SqliteQueue>,
    delays: std::sync::Mutex<Vec<Duration>>,
}

impl Requeued {
    fn delays(&self) -> Vec<Duration> {
        self.delays.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Queue for Requeued {
    async fn send_batch(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        self.delays
            .lock()
            .unwrap()
            .extend(messages.iter().map(|m| m.delay));
        self.inner.send_batch(messages).await
    }

    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        self.inner.receive(max, visibility).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(receipt).await
    }
}

struct Setup {
    store: Store,
    graph: FakeGraph,
    sms: Arc<SandboxChannel>,
    email: Arc<SandboxChannel>,
    queue: Arc<SqliteQueue>,
    requeued: Arc<Requeued>,
    dlq: Arc<SqliteQueue>,
    events: Arc<SqliteQueue>,
    clock: Arc<FixedClock>,
    sender: Arc<Sender>,
    tenant: TenantId,
}

/// Why a send failed; any other outcome fails the test.
fn failed(outcome: Outcome) -> String {
    let Outcome::Failed(reason) = outcome else {
        panic!("{outcome:?}")
    };
    reason
}

impl Setup {
    /// Debtor `d-<n>` opted out of `channel` (SMS and e-mail need no consent record in Chile,
    /// so only an opt-out keeps a message off them).
    async fn opted_out(&self, n: u32, channel: ChannelKind) {
        let d = DebtorId::parse(format!("d-{n}")).unwrap();
        let mut stop = fixtures::consent(channel);
        stop.granted = false;
        stop.at = "2026-02-01T00:00:00Z".parse().unwrap();
        stop.source = "keyword:BAJA".into();
        self.store
            .record_consent(&self.tenant, &d, stop)
            .await
            .unwrap();
    }

    async fn new() -> Self {
        Self::with_timeout(Duration::from_secs(5)).await
    }

    async fn with_timeout(timeout: Duration) -> Self {
        Self::with(timeout, |bus| bus).await
    }

    /// `wrap` gets the bus (which routes every event to `events`) and gives the sender's.
    async fn with(timeout: Duration, wrap: impl FnOnce(Arc<dyn Bus>) -> Arc<dyn Bus>) -> Self {
        Self::build(timeout, wrap, 80).await
    }

    /// A sender pacing each number at `rate` messages a second.
    async fn with_rate(rate: u32) -> Self {
        Self::build(Duration::from_secs(5), |bus| bus, rate).await
    }

    async fn build(
        timeout: Duration,
        wrap: impl FnOnce(Arc<dyn Bus>) -> Arc<dyn Bus>,
        rate: u32,
    ) -> Self {
        let graph = FakeGraph::start().await;
        let sqlite = SqliteStore::open_in_memory().unwrap();
        let store = Store::new(Arc::new(sqlite.table()));
        let queue = Arc::new(sqlite.queue("outbound", None));
        let dlq = Arc::new(sqlite.queue("outbound-dlq", None));
        let events = Arc::new(sqlite.queue("events", None));
        let bus = wrap(Arc::new(
            LocalBus::new().route(Pattern::default(), events.clone() as Arc<dyn Queue>),
        ));
        let clock = Arc::new(FixedClock::at("2026-03-16T15:00:00Z".parse().unwrap()));
        let mut config = GraphConfig::new(&graph.base_url, TOKEN);
        config.timeout = timeout;
        let whatsapp = WhatsAppChannel::new(GraphClient::new(config).unwrap());
        let sms = Arc::new(SandboxChannel::new());
        // An adapter for e-mail too: the tenant uses e-mail only where a test adds it.
        let email = Arc::new(SandboxChannel::new());
        let channels = Channels::new()
            .with(ChannelKind::Whatsapp, Arc::new(whatsapp))
            .with(ChannelKind::Sms, sms.clone())
            .with(ChannelKind::Email, email.clone());
        let requeued = Arc::new(Requeued {
            inner: queue.clone(),
            delays: Default::default(),
        });
        let tenant = TenantId::parse("t1").unwrap();
        store
            .put_tenant(&Tenant {
                sender_ids: SenderIds {
                    whatsapp_phone_number_id: Some(PHONE_NUMBER_ID.into()),
                    sms_origination: Some("+15550001111".into()),
                    email_from: None,
                },
                ..fixtures::creditor(&tenant)
            })
            .await
            .unwrap();
        let sender = Arc::new(Sender {
            store: store.clone(),
            channels,
            clock: clock.clone() as Arc<dyn Clock>,
            queue: requeued.clone(),
            dead_letters: Some(dlq.clone()),
            bus,
            pacer: Pacer::new(rate),
        });
        Self {
            store,
            graph,
            sms,
            email,
            queue,
            requeued,
            dlq,
            events,
            clock,
            sender,
            tenant,
        }
    }

    /// A debtor with an open account and a committed decision to remind them; the queue body.
    async fn decided(&self, n: u32, consents: &[ChannelKind]) -> String {
        self.decided_with(n, consents, |_| {}).await
    }

    /// `decided`, with the attempt changed before it is committed.
    async fn decided_with(
        &self,
        n: u32,
        consents: &[ChannelKind],
        change: impl FnOnce(&mut ContactAttempt),
    ) -> String {
        let debtor = Debtor {
            consents: consents.iter().map(|c| fixtures::consent(*c)).collect(),
            ..fixtures::debtor(
                &self.tenant,
                &format!("d-{n}"),
                &format!("+569111100{n:02}"),
            )
        };
        self.store.upsert_debtor(&debtor).await.unwrap();
        let account = fixtures::open_account(
            &self.tenant,
            &format!("A-{n}"),
            &debtor.id,
            300_000,
            "2026-03-13",
        );
        let (account, _) = self.store.upsert_account(&account, None).await.unwrap();
        let attempt = ContactAttempt {
            params: vec![
                "Ana".into(),
                "300000 CLP".into(),
                "Crédito Andino".into(),
                "2026-03-13".into(),
            ],
            ..fixtures::queued_reminder(
                &account,
                &debtor.phone,
                self.clock.now(),
                "Hola Ana, tu pago de 300000 CLP a Crédito Andino quedó pendiente el 2026-03-13.",
            )
        };
        let mut attempt = attempt;
        change(&mut attempt);
        let retry = self
            .clock
            .now()
            .checked_add(jiff::SignedDuration::from_mins(10))
            .unwrap();
        assert!(self
            .store
            .commit_contact(&account, &attempt, retry, None)
            .await
            .unwrap());
        serde_json::to_string(&OutboundMessage {
            tenant: self.tenant.clone(),
            account: account.id,
            decision_id: attempt.decision_id,
        })
        .unwrap()
    }

    /// The sender's handling of the queue message `body`, which must not fail.
    async fn send(&self, body: &str) -> Outcome {
        self.sender.handle(body).await.unwrap()
    }

    async fn attempt(&self, n: u32) -> ContactAttempt {
        self.store
            .attempt(
                &self.tenant,
                &AccountId::parse(format!("A-{n}")).unwrap(),
                "2026-03-13:d+3",
            )
            .await
            .unwrap()
            .unwrap()
    }

    /// The latest decision on account `A-<n>`'s record (the sender's note, after a send).
    async fn last_decision(&self, n: u32) -> cobro::repo::Decision {
        let view = self
            .store
            .account_view(&self.tenant, &AccountId::parse(format!("A-{n}")).unwrap())
            .await
            .unwrap()
            .unwrap();
        view.decisions.last().expect("a decision").clone()
    }

    async fn published(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for m in self
            .events
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap()
        {
            let v: Value = serde_json::from_str(&m.body).unwrap();
            out.push((
                v["detail-type"].as_str().unwrap().to_string(),
                v["detail"].clone(),
            ));
        }
        out
    }

    /// The `ChannelStopped` details published so far (drained with the rest).
    async fn alarms(&self) -> Vec<(String, Value)> {
        self.published()
            .await
            .into_iter()
            .filter(|(t, _)| t == "ChannelStopped")
            .collect()
    }
}

fn send_fixture(name: &str) -> Value {
    let path = crate::inbound::fixtures().join("whatsapp-send").join(name);
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[tokio::test]
async fn outside_the_window_the_template_goes_with_its_parameters() {
    let s = Setup::new().await;
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    let outcome = s.send(&body).await;
    let Outcome::Sent {
        channel,
        provider_message_id,
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(*channel, ChannelKind::Whatsapp);
    let sends = s.graph.sends();
    assert_eq!(sends.len(), 1);
    let (number, wire) = &sends[0];
    assert_eq!(number, PHONE_NUMBER_ID, "sent from the tenant's number");
    assert_eq!(wire["to"], "+56911110001", "E.164 with +");
    assert_eq!(wire["type"], "template");
    assert_eq!(wire["template"]["name"], "payment_reminder_overdue");
    assert_eq!(wire["template"]["language"]["code"], "es");
    let params: Vec<&str> = wire["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["Ana", "300000 CLP", "Crédito Andino", "2026-03-13"]
    );
    // Its way out: the opt-out quick reply, with the payload inbound reads as an opt-out.
    let button = &wire["template"]["components"][1];
    assert_eq!(button["type"], "button", "{wire}");
    assert_eq!(button["sub_type"], "quick_reply");
    assert_eq!(button["index"], 0);
    assert_eq!(button["parameters"][0]["payload"], "OPTOUT");
    assert_eq!(wire["biz_opaque_callback_data"], "t1|A-1|2026-03-13:d+3");
    let a = s.attempt(1).await;
    assert_eq!(a.status, AttemptStatus::Sent);
    assert_eq!(
        a.provider_message_id.as_ref(),
        Some(provider_message_id),
        "the wamid is stored"
    );
    // A redelivered queue message sends nothing.
    assert_eq!(s.send(&body).await, Outcome::Skipped("already handled"));
    assert_eq!(s.graph.sends().len(), 1);
}

#[tokio::test]
async fn inside_the_window_free_text_and_a_closed_window_falls_back_to_the_template() {
    let s = Setup::new().await;
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    let debtor = DebtorId::parse("d-1").unwrap();
    let an_hour_ago = s
        .clock
        .now()
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap();
    s.store
        .touch_inbound_window(&s.tenant, &debtor, ChannelKind::Whatsapp, an_hour_ago)
        .await
        .unwrap();
    // Meta says the window is closed after all (131047): the template, at once.
    s.graph
        .script([Scripted::error(400, 131047, "Re-engagement message")]);
    let outcome = s.send(&body).await;
    assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");
    let sends = s.graph.sends();
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[0].1["type"], "text");
    let text = sends[0].1["text"]["body"].as_str().unwrap();
    assert!(text.starts_with("Hola Ana"), "{text}");
    assert!(
        text.ends_with("Para no recibir más mensajes, responde BAJA."),
        "free text says how to stop, as SMS does: {text}"
    );
    assert_eq!(sends[1].1["type"], "template");
}

#[tokio::test]
async fn statuses_move_the_attempt_forward_only() {
    let s = Setup::new().await;
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    s.send(&body).await;
    let id = s.attempt(1).await.provider_message_id.unwrap();
    let at = s.clock.now();
    let report = |status: &str, rank: i64| Delivery {
        provider_message_id: id.clone(),
        status: status.into(),
        rank,
        failed: status == "failed",
        at,
        error: None,
        error_code: None,
    };
    let apply = |d: Delivery| {
        let store = s.store.clone();
        let t = s.tenant.clone();
        async move { store.apply_delivery(&t, &d).await.unwrap().unwrap().1 }
    };
    assert_eq!(apply(report("read", 3)).await, Applied::Now, "read");
    assert_eq!(
        apply(report("delivered", 2)).await,
        Applied::Stale,
        "a late delivered does not move it back"
    );
    assert_eq!(
        apply(report("read", 3)).await,
        Applied::Before,
        "a repeated read changes nothing, and says it was applied"
    );
    assert_eq!(s.attempt(1).await.delivery.as_deref(), Some("read"));
    assert_eq!(apply(report("failed", 9)).await, Applied::Now);
    assert_eq!(
        apply(report("read", 3)).await,
        Applied::Before,
        "failed is final: the read applied before only repeats"
    );
    assert_eq!(
        apply(report("delivered", 2)).await,
        Applied::Stale,
        "and a status never applied does nothing"
    );
    assert_eq!(s.attempt(1).await.status, AttemptStatus::Failed);
}

#[tokio::test]
async fn an_unreachable_number_falls_back_to_sms_with_the_opt_out_line() {
    let s = Setup::new().await;
    let body = s
        .decided(1, &[ChannelKind::Whatsapp, ChannelKind::Sms])
        .await;
    s.graph
        .script([Scripted::error(400, 131026, "Message undeliverable")]);
    let outcome = s.send(&body).await;
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    let sent = s.sms.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .1
            .text
            .ends_with("Para no recibir más mensajes, responde BAJA."),
        "{}",
        sent[0].1.text
    );
    assert_eq!(
        sent[0].1.send_as.sms_origination.as_deref(),
        Some("+15550001111")
    );
    // Opted out of SMS, there is nowhere else to go: failed, with why.
    let body = s.decided(2, &[ChannelKind::Whatsapp]).await;
    s.opted_out(2, ChannelKind::Sms).await;
    s.graph
        .script([Scripted::error(400, 131026, "Message undeliverable")]);
    let reason = failed(s.send(&body).await);
    assert!(reason.contains("unreachable"), "{reason}");
}

#[tokio::test]
async fn an_account_wide_error_stops_the_channel_and_raises_one_alarm() {
    let s = Setup::new().await;
    let token_error = send_fixture("error_190_invalid_oauth_token.json");
    // Only WhatsApp (opted out of SMS): the message waits for the channel to come back.
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    s.opted_out(1, ChannelKind::Sms).await;
    s.graph.script([Scripted::raw(401, token_error.clone())]);
    let outcome = s.send(&body).await;
    assert!(matches!(outcome, Outcome::Parked(_)), "{outcome:?}");
    assert_eq!(
        s.attempt(1).await.status,
        AttemptStatus::Queued,
        "kept on the outbox"
    );
    let stops = s.store.channel_stops(&s.tenant).await.unwrap();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].code, Some(190));
    // The next message does not even try WhatsApp: SMS, where the debtor consents.
    let body = s
        .decided(2, &[ChannelKind::Whatsapp, ChannelKind::Sms])
        .await;
    let outcome = s.send(&body).await;
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    assert_eq!(s.graph.sends().len(), 1, "one call to Meta in all");
    let alarms = s.alarms().await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].1["channel"], "whatsapp");
    // An operator resumes it.
    s.store
        .resume_channel(&s.tenant, ChannelKind::Whatsapp)
        .await
        .unwrap();
    assert!(s.store.channel_stops(&s.tenant).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stop_whose_alarm_failed_is_announced_by_the_next_message() {
    let s = Setup::with(Duration::from_secs(5), |bus| {
        FlakyBus::refusing(bus, 1, |e| e.detail_type == "ChannelStopped")
    })
    .await;
    let token_error = send_fixture("error_190_invalid_oauth_token.json");
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    s.graph.script([Scripted::raw(401, token_error)]);
    // The channel stops, then its alarm cannot be published: the message fails, to be retried.
    let err = s.sender.handle(&body).await.unwrap_err();
    assert!(err.to_string().contains("throttled"), "{err}");
    let stops = s.store.channel_stops(&s.tenant).await.unwrap();
    assert_eq!(stops.len(), 1);
    assert!(!stops[0].announced);
    assert!(s.published().await.is_empty());
    // The next message finds the stop unannounced and announces it, once.
    let body = s
        .decided(2, &[ChannelKind::Whatsapp, ChannelKind::Sms])
        .await;
    let outcome = s.send(&body).await;
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    let alarms = s.alarms().await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].1["at"], stops[0].at.to_string());
    assert!(s.store.channel_stops(&s.tenant).await.unwrap()[0].announced);
    let body = s.decided(3, &[ChannelKind::Sms]).await;
    s.send(&body).await;
    let again = s.alarms().await;
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn throttling_and_pair_rate_defer_with_a_delay_and_count_the_try() {
    let s = Setup::new().await;
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    s.graph.script([Scripted::raw(
        400,
        send_fixture("error_130429_rate_limit.json"),
    )]);
    let outcome = s.send(&body).await;
    let Outcome::Deferred { delay, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(delay >= Duration::from_secs(10), "{delay:?}");
    let a = s.attempt(1).await;
    assert_eq!(
        (a.status, a.tries, a.error_code),
        (AttemptStatus::Queued, 1, Some(130429))
    );
    assert_eq!(s.queue.depth().await.unwrap(), 1, "queued again");
    assert!(
        s.queue
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "but not before its delay"
    );
    // The number is paused: the next message waits without calling Meta.
    let body2 = s.decided(2, &[ChannelKind::Whatsapp]).await;
    let outcome = s.sender.handle(&body2).await.unwrap();
    assert!(matches!(outcome, Outcome::Deferred { .. }), "{outcome:?}");
    assert_eq!(s.graph.sends().len(), 1);
}

#[tokio::test]
async fn the_pair_rate_holds_one_message_per_debtor_per_six_seconds() {
    let s = Setup::new().await;
    let first = s.decided(1, &[ChannelKind::Whatsapp]).await;
    // A second account of the same debtor, decided at the same moment.
    let second = {
        let debtor = s
            .store
            .debtor(&s.tenant, &DebtorId::parse("d-1").unwrap())
            .await
            .unwrap()
            .unwrap();
        let account = fixtures::open_account(&s.tenant, "B-1", &debtor.id, 1000, "2026-03-13");
        let (account, _) = s.store.upsert_account(&account, None).await.unwrap();
        let mut attempt = s.attempt(1).await;
        attempt.account = account.id.clone();
        attempt.status = AttemptStatus::Queued;
        attempt.provider_message_id = None;
        // A receipt: Chile allows one collection contact a day, and the first message is it;
        // a receipt is not one, but it is paced like any message.
        attempt.receipt = true;
        let retry = s
            .clock
            .now()
            .checked_add(jiff::SignedDuration::from_mins(10))
            .unwrap();
        s.store
            .commit_contact(&account, &attempt, retry, None)
            .await
            .unwrap();
        serde_json::to_string(&OutboundMessage {
            tenant: s.tenant.clone(),
            account: account.id,
            decision_id: attempt.decision_id,
        })
        .unwrap()
    };
    assert!(matches!(
        s.sender.handle(&first).await.unwrap(),
        Outcome::Sent { .. }
    ));
    let outcome = s.sender.handle(&second).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Deferred {
            delay: Duration::from_secs(6),
            reason: "sent to this debtor less than 6 s ago".into()
        }
    );
    assert_eq!(s.attempt(1).await.tries, 0, "pacing is not a failure");
    s.clock.advance(jiff::SignedDuration::from_secs(6));
    assert!(matches!(
        s.sender.handle(&second).await.unwrap(),
        Outcome::Sent { .. }
    ));
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_then_give_up() {
    let s = Setup::new().await;
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    s.graph
        .script((0..MAX_TRIES).map(|_| Scripted::raw(500, Value::String("upstream".into()))));
    for i in 0..MAX_TRIES - 1 {
        let outcome = s.send(&body).await;
        assert!(
            matches!(outcome, Outcome::Deferred { .. }),
            "try {i}: {outcome:?}"
        );
        s.clock.advance(jiff::SignedDuration::from_secs(10));
    }
    let reason = failed(s.send(&body).await);
    assert!(reason.contains("gave up"), "{reason}");
}

#[tokio::test]
async fn request_errors_fail_at_once_with_the_reason() {
    let s = Setup::new().await;
    let body = s
        .decided(1, &[ChannelKind::Whatsapp, ChannelKind::Sms])
        .await;
    s.graph.script([Scripted::error(
        400,
        131008,
        "Required parameter is missing",
    )]);
    let reason = failed(s.send(&body).await);
    assert!(
        reason.contains("131008") && reason.contains("Required parameter"),
        "{reason}"
    );
    assert!(
        s.sms.sent().is_empty(),
        "a request error is not the debtor's: no fallback"
    );
    assert_eq!(s.attempt(1).await.status, AttemptStatus::Failed);
}

/// A template Meta refuses for a fault of its own (missing in the debtor's language, paused,
/// disabled …) must not stop collection on WhatsApp: the message goes on SMS, the account's
/// record names the template and the code, and an operator's metric counts it.
#[tokio::test]
async fn a_template_meta_refuses_sends_the_message_on_the_next_channel_and_says_why() {
    let s = Setup::new().await;
    let body = s
        .decided(1, &[ChannelKind::Whatsapp, ChannelKind::Sms])
        .await;
    s.graph.script([Scripted::error(
        404,
        132001,
        "Template name does not exist in the translation",
    )]);
    let outcome = s.send(&body).await;
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    assert_eq!(s.graph.sends().len(), 1, "the template was tried first");
    let sent = s.sms.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].1.text.starts_with("Hola Ana") && sent[0].1.text.ends_with("responde BAJA."),
        "{}",
        sent[0].1.text
    );
    let a = s.attempt(1).await;
    assert_eq!(
        (a.status, a.channel),
        (AttemptStatus::Sent, ChannelKind::Sms)
    );
    let note = s.last_decision(1).await;
    assert_eq!(note.outcome, "fallback");
    assert!(
        note.reason.contains("payment_reminder_overdue")
            && note.reason.contains("132001")
            && note.reason.contains("sms"),
        "{}",
        note.reason
    );
    let metrics = serde_json::to_string(&cobro::metrics::METRICS.drain("sender", 0)).unwrap();
    assert!(metrics.contains("TemplateRefused"), "{metrics}");

    // With no other channel (opted out of SMS): failed, naming the template. (Another
    // template: the one refused above is not tried again for a while.)
    let body = s
        .decided_with(2, &[ChannelKind::Whatsapp], |a| {
            a.template = "acme_mora".into()
        })
        .await;
    s.opted_out(2, ChannelKind::Sms).await;
    s.graph
        .script([Scripted::error(400, 132015, "Template is paused")]);
    let reason = failed(s.send(&body).await);
    assert!(
        reason.contains("acme_mora") && reason.contains("132015"),
        "{reason}"
    );
}

/// A template Meta refused is remembered for the tenant: while the refusal holds, the next
/// messages make no call to Meta with it (it would only be refused again) and go where a
/// refusal sends them, saying why on the account's record; free text inside the window still
/// goes. Once the hold ends the template is tried again, so one fixed at Meta works by itself.
#[tokio::test]
async fn a_template_meta_refused_is_not_tried_again_until_its_hold_ends() {
    let s = Setup::new().await;
    let both = [ChannelKind::Whatsapp, ChannelKind::Sms];
    let body = s.decided(1, &both).await;
    s.graph
        .script([Scripted::error(400, 132015, "Template is paused")]);
    let outcome = s.send(&body).await;
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    assert_eq!(s.graph.sends().len(), 1, "the template was tried");
    let n = s.last_decision(1).await;
    assert!(
        n.reason
            .contains("not tried again until 2026-03-16T16:00:00Z"),
        "{}",
        n.reason
    );

    // Ten minutes later, another debtor: straight to SMS, no call to Meta.
    s.clock.advance(jiff::SignedDuration::from_mins(10));
    let body = s.decided(2, &both).await;
    let outcome = s.send(&body).await;
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    assert_eq!(
        s.graph.sends().len(),
        1,
        "the refused template is not tried again"
    );
    let n = s.last_decision(2).await;
    assert_eq!(n.outcome, "fallback");
    assert!(
        n.reason.contains(
            "template `payment_reminder_overdue` (es) refused by Meta at 2026-03-16T15:00:00Z \
             (code 132015); not tried until 2026-03-16T16:00:00Z; sent on sms instead"
        ),
        "{}",
        n.reason
    );

    // No other channel: failed, saying why, still without a call.
    let body = s.decided(3, &[ChannelKind::Whatsapp]).await;
    s.opted_out(3, ChannelKind::Sms).await;
    let reason = failed(s.send(&body).await);
    assert!(
        reason.contains("refused by Meta at 2026-03-16T15:00:00Z (code 132015)"),
        "{reason}"
    );
    assert_eq!(s.graph.sends().len(), 1);

    // Inside the window free text needs no template: it goes on WhatsApp.
    let body = s.decided(4, &both).await;
    let d4 = DebtorId::parse("d-4").unwrap();
    s.store
        .touch_inbound_window(&s.tenant, &d4, ChannelKind::Whatsapp, s.clock.now())
        .await
        .unwrap();
    let outcome = s.send(&body).await;
    assert_eq!(
        sent_on(&outcome),
        Some(ChannelKind::Whatsapp),
        "{outcome:?}"
    );
    let sends = s.graph.sends();
    assert_eq!(
        (sends.len(), &sends[1].1["type"]),
        (2, &Value::from("text"))
    );
    // The window closed after all (131047): not the held template, SMS.
    let body = s.decided(5, &both).await;
    let d5 = DebtorId::parse("d-5").unwrap();
    s.store
        .touch_inbound_window(&s.tenant, &d5, ChannelKind::Whatsapp, s.clock.now())
        .await
        .unwrap();
    s.graph
        .script([Scripted::error(400, 131047, "Re-engagement message")]);
    let outcome = s.send(&body).await;
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    assert_eq!(s.graph.sends().len(), 3, "the free text only");

    // The hold over (an hour after the refusal): the template is tried again, and goes.
    s.clock
        .advance(jiff::SignedDuration::from_secs(50 * 60 + 1));
    let body = s.decided(6, &both).await;
    let outcome = s.send(&body).await;
    assert_eq!(
        sent_on(&outcome),
        Some(ChannelKind::Whatsapp),
        "{outcome:?}"
    );
    let sends = s.graph.sends();
    assert_eq!(sends.len(), 4);
    assert_eq!(sends[3].1["type"], "template");
    assert_eq!(sends[3].1["template"]["name"], "payment_reminder_overdue");
}

#[tokio::test]
async fn a_timeout_is_retried_once_only() {
    let s = Setup::with_timeout(Duration::from_millis(300)).await;
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    s.graph.script([
        Scripted::hang(Duration::from_secs(2)),
        Scripted::hang(Duration::from_secs(2)),
    ]);
    let outcome = s.send(&body).await;
    assert!(matches!(outcome, Outcome::Deferred { .. }), "{outcome:?}");
    s.clock.advance(jiff::SignedDuration::from_secs(10));
    let reason = failed(s.send(&body).await);
    assert!(reason.contains("timed out twice"), "{reason}");
}

#[tokio::test]
async fn an_unreadable_queue_message_goes_to_the_dead_letter_queue_with_its_reason() {
    let s = Setup::new().await;
    let outcome = s.sender.handle("{not json").await.unwrap();
    assert!(matches!(outcome, Outcome::DeadLettered(_)), "{outcome:?}");
    let dead = s.dlq.receive(10, Duration::from_secs(30)).await.unwrap();
    let v: Value = serde_json::from_str(&dead[0].body).unwrap();
    assert_eq!(v["body"], "{not json");
    assert!(!v["reason"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_withdrawn_consent_cancels_before_anything_is_sent() {
    let s = Setup::new().await;
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    let d = DebtorId::parse("d-1").unwrap();
    let mut stop = fixtures::consent(ChannelKind::Whatsapp);
    stop.granted = false;
    stop.at = s.clock.now();
    stop.source = "keyword:BAJA".into();
    s.store.record_consent(&s.tenant, &d, stop).await.unwrap();
    s.opted_out(1, ChannelKind::Sms).await;
    let outcome = s.send(&body).await;
    assert!(matches!(outcome, Outcome::Cancelled(_)), "{outcome:?}");
    assert!(s.graph.sends().is_empty());
    assert!(s.sms.sent().is_empty());
}

/// SMS needs no consent record under Chile's policy (WhatsApp does): a message the reminders
/// decided for SMS goes out on it, where the sender used to cancel it for want of a record
/// the policy does not ask for.
#[tokio::test]
async fn a_channel_the_policy_allows_without_a_consent_record_is_used() {
    let s = Setup::new().await;
    let body = s.decided(1, &[]).await;
    let outcome = s.send(&body).await;
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    assert!(s.graph.sends().is_empty(), "no WhatsApp without its opt-in");
    assert_eq!(s.sms.sent().len(), 1);
}

/// At one message a second, a batch larger than the invocation's time allows: what cannot get
/// a send slot before the deadline (less the margin for the send itself) goes back on the
/// queue for the next invocation, instead of the whole batch being cut off by the timeout and
/// received again (five times, then dead-lettered). What goes back leaves nothing that says it
/// went out: no contact in the debtor's log, no gate on the debtor, so it is sent when it
/// comes back; and it comes back no sooner than the gate's span.
#[tokio::test]
async fn a_batch_larger_than_the_invocation_allows_at_the_rate_goes_back_on_the_queue() {
    let s = Setup::with_rate(1).await;
    let mut records = Vec::new();
    for n in 1..=8 {
        let body = s.decided(n, &[ChannelKind::Whatsapp]).await;
        records.push((format!("m{n}"), body));
    }
    let deadline =
        std::time::Instant::now() + cobro_sender::SEND_MARGIN + Duration::from_millis(2500);
    let failed = cobro_sender::handle_batch(&s.sender, records, Some(deadline)).await;
    assert!(
        failed.is_empty(),
        "none is returned as a failure: {failed:?}"
    );
    let sent = s.graph.sends().len();
    let mut waiting = Vec::new();
    for n in 1..=8 {
        if s.attempt(n).await.status == AttemptStatus::Queued {
            waiting.push(n);
        }
    }
    assert!((1..=4).contains(&sent), "{sent} sent in 2.5 s at 1/s");
    assert_eq!(sent + waiting.len(), 8, "the rest wait on the outbox");
    for n in &waiting {
        let debtor = DebtorId::parse(format!("d-{n}")).unwrap();
        let log = s
            .store
            .contact_history(&s.tenant, &debtor, None)
            .await
            .unwrap();
        assert!(log.is_empty(), "d-{n} logged as contacted: {log:?}");
    }
    let delays = s.requeued.delays();
    assert_eq!(
        delays.len(),
        waiting.len(),
        "each put back on the queue once"
    );
    assert!(
        delays
            .iter()
            .all(|d| *d >= cobro_sender::pacing::RECIPIENT_GAP),
        "none back before the debtor's gate would let it through: {delays:?}"
    );
    assert_eq!(s.queue.depth().await.unwrap(), waiting.len() as u64);
    assert!(
        s.queue
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "not before their delay"
    );
    // Received again (the clock has not moved): the debtor's gate is free, so it goes out.
    let again = serde_json::to_string(&OutboundMessage {
        tenant: s.tenant.clone(),
        account: AccountId::parse(format!("A-{}", waiting[0])).unwrap(),
        decision_id: "2026-03-13:d+3".into(),
    })
    .unwrap();
    let outcome = s.sender.handle(&again).await.unwrap();
    assert_eq!(
        sent_on(&outcome),
        Some(ChannelKind::Whatsapp),
        "{outcome:?}"
    );
}

/// Messages that give up waiting for a number's slot together are told when their turns would
/// come at its rate, one interval apart, so they come back spread rather than all at once; the
/// delay they go back with is that turn, at least the floor, at most SQS's 15 minutes.
#[tokio::test]
async fn messages_out_of_time_are_told_their_turns_at_the_rate() {
    use cobro_sender::requeue_delay;
    let pacer = Arc::new(Pacer::new(2));
    pacer.ready("n").await;
    let deadline = std::time::Instant::now() + Duration::from_millis(100);
    let mut waits = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let pacer = pacer.clone();
        waits.spawn(async move { pacer.ready_before("n", Some(deadline)).await });
    }
    let mut turns: Vec<Duration> = waits
        .join_all()
        .await
        .into_iter()
        .map(|r| r.unwrap_err())
        .collect();
    turns.sort();
    let ms = |n| Duration::from_millis(n);
    assert_eq!(turns, vec![ms(500), ms(1000), ms(1500)]);
    // None of them took a slot: the next comes at the rate, not after three more.
    let start = std::time::Instant::now();
    pacer.ready("n").await;
    assert!(start.elapsed() < ms(600), "{:?}", start.elapsed());
    let gap = cobro_sender::pacing::RECIPIENT_GAP;
    assert_eq!(requeue_delay(ms(500), gap), gap);
    assert_eq!(
        requeue_delay(Duration::from_secs(40), gap),
        Duration::from_secs(40)
    );
    assert_eq!(
        requeue_delay(Duration::from_secs(5000), gap),
        Duration::from_secs(900)
    );
}

#[test]
fn backoff_grows_is_jittered_and_capped() {
    use cobro_sender::pacing::{backoff, pair_rate_delay};
    let base = Duration::from_secs(2);
    let cap = Duration::from_secs(300);
    for tries in 0..20 {
        let d = backoff(tries, base, cap);
        let ceiling = (base * 2u32.pow(tries.min(16))).min(cap);
        assert!(d <= ceiling && d >= ceiling / 2, "{tries}: {d:?}");
    }
    assert_eq!(pair_rate_delay(0), Duration::from_secs(1));
    assert_eq!(pair_rate_delay(2), Duration::from_secs(16));
    assert_eq!(pair_rate_delay(9), Duration::from_secs(900));
}

/// The channel a message went out on, if it went out.
fn sent_on(outcome: &Outcome) -> Option<ChannelKind> {
    match outcome {
        Outcome::Sent { channel, .. } => Some(*channel),
        _ => None,
    }
}

/// Handled ten minutes before Chile's window opens (08:00 in Santiago): not sent early, but put
/// back on the outbox for 08:00, and sent then.
#[tokio::test]
async fn a_message_handled_before_its_window_opens_waits_for_it() {
    let s = Setup::new().await;
    // Monday 07:50 in Santiago (UTC-3 in March).
    s.clock.set("2026-03-16T10:50:00Z".parse().unwrap());
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    let outcome = s.send(&body).await;
    let Outcome::Rescheduled { at, reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(at, "2026-03-16T11:00:00Z".parse().unwrap(), "{reason}");
    assert!(s.graph.sends().is_empty(), "nothing before 08:00");
    // On the account's record, with the rule, as the reminders' own decisions are.
    let held = s.last_decision(1).await;
    assert_eq!(held.outcome, "defer");
    assert_eq!(held.next_action_at, Some(at));
    assert!(held.reason.starts_with("[window]"), "{}", held.reason);
    s.clock.set(at);
    let outcome = s.send(&body).await;
    assert_eq!(
        sent_on(&outcome),
        Some(ChannelKind::Whatsapp),
        "{outcome:?}"
    );
}

/// A tenant that adopts Colombia's one channel a week (Ley 2300) on top of Chile's rules, as
/// its own tightening of the preset: WhatsApp was used on Monday, so
/// on Thursday an undeliverable WhatsApp message does not fall back to SMS, which the rule
/// does not allow until the week is over; it waits for when a channel is allowed. Asked as a
/// whole, the policy allows the contact (on WhatsApp), so only asking channel by channel
/// finds this.
#[tokio::test]
async fn a_fallback_channel_the_policy_does_not_allow_now_is_not_used() {
    let s = Setup::new().await;
    let mut tenant = s.store.tenant(&s.tenant).await.unwrap().unwrap();
    let mut policy = cobro::compliance::preset("CL").unwrap().clone();
    policy.one_channel_per_week = true;
    tenant.policy = Some(policy);
    s.store.put_tenant(&tenant).await.unwrap();
    let body = s
        .decided(1, &[ChannelKind::Whatsapp, ChannelKind::Sms])
        .await;
    // Monday's contact, on another account of the same debtor.
    s.store
        .log_contact(
            &s.tenant,
            &DebtorId::parse("d-1").unwrap(),
            cobro::repo::LoggedContact {
                at: "2026-03-16T15:00:00Z".parse().unwrap(),
                channel: ChannelKind::Whatsapp,
                account: AccountId::parse("Z-9").unwrap(),
                decision_id: "earlier".into(),
            },
        )
        .await
        .unwrap();
    // Thursday, noon in Santiago.
    s.clock.set("2026-03-19T15:00:00Z".parse().unwrap());
    s.graph
        .script([Scripted::error(400, 131026, "Message undeliverable")]);
    let outcome = s.send(&body).await;
    let Outcome::Rescheduled { at, reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(s.sms.sent().is_empty(), "no SMS in a WhatsApp week");
    assert_eq!(s.graph.sends().len(), 1, "WhatsApp was tried");
    assert!(reason.contains("one_channel_per_week"), "{reason}");
    assert!(reason.contains("undeliverable"), "{reason}");
    assert!(at > s.clock.now(), "{at}");
}

/// The debtor's contact log counts a message from when and where it went out: decided on
/// WhatsApp, sent by SMS a day later, it is logged as that SMS.
#[tokio::test]
async fn the_contact_log_counts_a_message_when_and_where_it_goes_out() {
    let s = Setup::new().await;
    let body = s
        .decided(1, &[ChannelKind::Whatsapp, ChannelKind::Sms])
        .await;
    let debtor = DebtorId::parse("d-1").unwrap();
    // As the reminders log it when deciding.
    s.store
        .log_contact(
            &s.tenant,
            &debtor,
            cobro::repo::LoggedContact {
                at: s.clock.now(),
                channel: ChannelKind::Whatsapp,
                account: AccountId::parse("A-1").unwrap(),
                decision_id: "2026-03-13:d+3".into(),
            },
        )
        .await
        .unwrap();
    s.clock.advance(jiff::SignedDuration::from_hours(24));
    s.graph
        .script([Scripted::error(400, 131026, "Message undeliverable")]);
    let outcome = s.send(&body).await;
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    let history = s
        .store
        .contact_history(&s.tenant, &debtor, None)
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "one entry per decision: {history:?}");
    assert_eq!(history[0].channel, ChannelKind::Sms);
    assert_eq!(history[0].at, s.clock.now());
}

/// A reminder's contact and the decision that made it are one write: when the account changed
/// under the decision, neither is kept; when it did not, the contact is queued with its reason
/// on the account's record, whatever happens to the tick afterwards.
#[tokio::test]
async fn a_contact_is_committed_with_its_reason_in_one_write() {
    let s = Setup::new().await;
    s.decided(1, &[ChannelKind::Whatsapp]).await;
    let (tenant, id) = (s.tenant.clone(), AccountId::parse("A-1").unwrap());
    let stale = s.store.account(&tenant, &id).await.unwrap().unwrap();
    let mut attempt = s.attempt(1).await;
    attempt.decision_id = "2026-03-20:d+7".into();
    attempt.status = AttemptStatus::Queued;
    let decision = cobro::repo::Decision {
        at: s.clock.now(),
        outcome: "contact".into(),
        reason: "d+7 step of the default strategy".into(),
        decision_id: Some(attempt.decision_id.clone()),
        next_action_at: None,
    };
    let retry = s.clock.now() + jiff::SignedDuration::from_mins(10);
    // Another writer moves the account on first.
    s.store.reschedule_account(&stale, None).await.unwrap();
    let err = s
        .store
        .commit_decided_contact(&stale, &attempt, retry, &decision)
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    let view = s.store.account_view(&tenant, &id).await.unwrap().unwrap();
    assert!(view.decisions.is_empty(), "{:?}", view.decisions);
    let fresh = s.store.account(&tenant, &id).await.unwrap().unwrap();
    assert!(s
        .store
        .commit_decided_contact(&fresh, &attempt, retry, &decision)
        .await
        .unwrap());
    let view = s.store.account_view(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(view.decisions, vec![decision]);
    assert_eq!(view.attempts.len(), 2);
}

/// A sender that stopped after handing a message to the provider, before writing down what
/// came back, leaves it marked: the next claim does not send it again (it may have been
/// delivered, and the providers have no idempotency key). One that stopped before handing it
/// over leaves nothing of the kind: it is sent.
#[tokio::test]
async fn a_message_a_stopped_sender_handed_over_is_not_sent_twice() {
    use cobro::repo::Claim;
    use cobro_sender::LEASE;
    let s = Setup::new().await;
    let handed = s.decided(1, &[ChannelKind::Whatsapp]).await;
    let not_handed = s.decided(2, &[ChannelKind::Whatsapp]).await;
    for (n, mark) in [(1, true), (2, false)] {
        let claim = s
            .store
            .claim_attempt(
                &s.tenant,
                &AccountId::parse(format!("A-{n}")).unwrap(),
                "2026-03-13:d+3",
                s.clock.now(),
                LEASE,
            )
            .await
            .unwrap();
        let Claim::Claimed(held) = claim else {
            panic!("{claim:?}")
        };
        if mark {
            s.store.mark_handed(&held, s.clock.now()).await.unwrap();
        }
    }
    // Both holders stop; their leases run out.
    s.clock.advance(jiff::SignedDuration::from_mins(6));
    let outcome = s.sender.handle(&handed).await.unwrap();
    let Outcome::Failed(reason) = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("may have been delivered"), "{reason}");
    assert!(s.graph.sends().is_empty());
    let outcome = s.sender.handle(&not_handed).await.unwrap();
    assert_eq!(
        sent_on(&outcome),
        Some(ChannelKind::Whatsapp),
        "{outcome:?}"
    );
    assert_eq!(s.graph.sends().len(), 1);
}

#[tokio::test]
async fn a_template_without_the_button_goes_without_it_and_a_texted_receipt_keeps_its_way_out() {
    let s = Setup::new().await;
    // A tenant's own template its step did not declare with cobro's opt-out button: no
    // button component (Meta would refuse one the template lacks, 132000).
    let body = s
        .decided_with(1, &[ChannelKind::Whatsapp], |a| {
            a.template = "acme_aviso".into();
            a.opt_out_button = Some(false);
        })
        .await;
    assert!(matches!(s.send(&body).await, Outcome::Sent { .. }));
    let sends = s.graph.sends();
    let wire = &sends[0].1;
    assert_eq!(wire["template"]["name"], "acme_aviso");
    let components = wire["template"]["components"].as_array().unwrap();
    assert_eq!(components.len(), 1, "the body only: {wire}");
    assert_eq!(components[0]["type"], "body");
    // A receipt by SMS still says how to stop the messages.
    let body = s
        .decided_with(2, &[ChannelKind::Sms], |a| {
            a.channel = ChannelKind::Sms;
            a.receipt = true;
            a.opt_out_button = Some(false);
        })
        .await;
    let outcome = s.send(&body).await;
    assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");
    let sent = s.sms.sent();
    let line = cobro::compliance::keywords::opt_out_line(Language::Es);
    assert!(sent[0].1.text.ends_with(line), "{}", sent[0].1.text);
}

/// The e-mail the tenant may use does not decide for the debtor who has no address: asked
/// about WhatsApp (no opt-in) and SMS (opted out) only, the engine refuses the contact for
/// want of consent, and the message is cancelled with that reason on the account's record.
/// Asked about e-mail too, it allowed the contact, and the message came back every day for
/// WhatsApp, which no day would allow. With an address, e-mail carries it.
#[tokio::test]
async fn a_channel_the_debtor_has_no_address_on_does_not_decide_for_the_others() {
    let s = Setup::new().await;
    let mut tenant = s.store.tenant(&s.tenant).await.unwrap().unwrap();
    tenant.channels = vec![ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email];
    s.store.put_tenant(&tenant).await.unwrap();
    let no_address = s.decided(1, &[]).await;
    s.opted_out(1, ChannelKind::Sms).await;
    let outcome = s.sender.handle(&no_address).await.unwrap();
    let Outcome::Cancelled(reason) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.starts_with("[consent]"), "{reason}");
    assert_eq!(s.attempt(1).await.status, AttemptStatus::Cancelled);
    let last = s.last_decision(1).await;
    assert_eq!(last.outcome, "cancel");
    assert!(last.reason.starts_with("[consent]"), "{}", last.reason);

    let with_address = s.decided(2, &[]).await;
    s.opted_out(2, ChannelKind::Sms).await;
    let id = DebtorId::parse("d-2").unwrap();
    let mut debtor = s.store.debtor(&s.tenant, &id).await.unwrap().unwrap();
    debtor.email = Some("ana@example.com".into());
    s.store.upsert_debtor(&debtor).await.unwrap();
    let outcome = s.sender.handle(&with_address).await.unwrap();
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Email), "{outcome:?}");
    assert!(s.graph.sends().is_empty() && s.sms.sent().is_empty());
    assert_eq!(s.email.sent().len(), 1);
}

/// A channel refused by a rule that names no instant it allows (a consent the policy requires
/// and the debtor never gave) does not keep a message for later: WhatsApp cannot reach the
/// debtor, SMS needs a consent they never gave (a tenant that requires one on SMS too), so the
/// message fails with both reasons instead of coming back every day to try WhatsApp again.
#[tokio::test]
async fn a_message_no_channel_may_ever_carry_is_not_kept_for_later() {
    let s = Setup::new().await;
    let mut tenant = s.store.tenant(&s.tenant).await.unwrap().unwrap();
    let mut policy = cobro::compliance::preset("CL").unwrap().clone();
    policy.consent_required = vec![ChannelKind::Whatsapp, ChannelKind::Sms];
    tenant.policy = Some(policy);
    s.store.put_tenant(&tenant).await.unwrap();
    let body = s.decided(1, &[ChannelKind::Whatsapp]).await;
    s.graph
        .script([Scripted::error(400, 131026, "Message undeliverable")]);
    let reason = failed(s.send(&body).await);
    assert!(reason.contains("undeliverable"), "{reason}");
    assert!(
        reason.contains("[consent]") && reason.contains("on sms"),
        "{reason}"
    );
    assert!(s.sms.sent().is_empty());
    let a = s.attempt(1).await;
    assert_eq!(a.status, AttemptStatus::Failed);
    assert_eq!(a.error.as_deref(), Some(reason.as_str()));
}

/// A chat reply waits for its send slot no longer than a reminder does: with no time left in
/// the invocation it goes back on the queue, unsent, for a later one.
#[tokio::test]
async fn a_reply_out_of_time_for_its_send_slot_goes_back_on_the_queue() {
    use cobro::repo::ReplyStatus;
    let s = Setup::with_rate(1).await;
    s.decided(1, &[]).await;
    let debtor = DebtorId::parse("d-1").unwrap();
    let body = bot_reply(&s, "in-1#0", "Tu saldo es 300000 CLP.", |_| {}).await;
    // Another reply took the number's slot of this second.
    s.sender.pacer.ready("sms:reply").await;
    let deadline =
        std::time::Instant::now() + cobro_sender::SEND_MARGIN + Duration::from_millis(200);
    let failed =
        cobro_sender::handle_batch(&s.sender, vec![("m1".into(), body)], Some(deadline)).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert!(s.sms.sent().is_empty(), "not sent after the deadline");
    let stored = s
        .store
        .reply(&s.tenant, &debtor, "in-1#0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ReplyStatus::Queued);
    assert_eq!(s.requeued.delays().len(), 1, "put back on the queue");
}

/// A bot reply to debtor `d-1` on SMS, answering a message of now; saved, with its queue body.
async fn bot_reply(
    s: &Setup,
    id: &str,
    body: &str,
    change: impl FnOnce(&mut cobro::repo::ChatReply),
) -> String {
    use cobro::outbound::{ReplyMessage, ReplyRef};
    use cobro::repo::{ChatReply, ReplyStatus};
    let debtor = DebtorId::parse("d-1").unwrap();
    let mut reply = ChatReply {
        tenant: s.tenant.clone(),
        debtor: debtor.clone(),
        id: id.into(),
        channel: ChannelKind::Sms,
        reply: cobro::chat::Reply::Text { body: body.into() },
        author: "bot".into(),
        answers_at: Some(s.clock.now()),
        created_at: s.clock.now(),
        status: ReplyStatus::Queued,
        provider_message_id: None,
        reason: None,
        tries: 0,
        claimed_at: None,
        confirms_opt_out: false,
        care: false,
        language: None,
    };
    change(&mut reply);
    assert!(s.store.put_reply(&reply).await.unwrap());
    serde_json::to_string(&ReplyMessage {
        reply: ReplyRef {
            tenant: s.tenant.clone(),
            debtor,
            id: reply.id.clone(),
        },
    })
    .unwrap()
}

/// The bot's replies to one message go out one after the other, each sent queueing the next.
/// When that queueing fails after the first is sent, its queue message comes back: finding the
/// reply sent, it queues the next (here the payment link), which is otherwise lost.
#[tokio::test]
async fn the_next_reply_is_queued_when_the_first_went_out_but_queueing_it_failed() {
    let s = Setup::new().await;
    s.decided(1, &[]).await;
    let first = bot_reply(&s, "in-1#0", "Tu saldo es 300000 CLP.", |_| {}).await;
    bot_reply(
        &s,
        "in-1#1",
        "Puedes pagar aquí: https://pay.example/x",
        |_| {},
    )
    .await;
    let sender = Sender {
        store: s.store.clone(),
        channels: Channels::new().with(ChannelKind::Sms, s.sms.clone()),
        clock: s.clock.clone() as Arc<dyn Clock>,
        queue: cobro_tests::flaky::FlakyQueue::new(s.queue.clone(), 1),
        dead_letters: None,
        bus: Arc::new(LocalBus::new()),
        pacer: Pacer::new(80),
    };
    let err = sender.handle(&first).await.unwrap_err();
    assert!(matches!(err, cobro_sender::SendError::Queue(_)), "{err:?}");
    assert_eq!(s.sms.sent().len(), 1, "the first reply went out");
    // Its queue message is received again.
    let again = sender.handle(&first).await.unwrap();
    assert_eq!(again, Outcome::Skipped("already handled"));
    assert_eq!(s.sms.sent().len(), 1, "not sent twice");
    let queued = s.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(queued.len(), 1, "the next reply is queued");
    let outcome = sender.handle(&queued[0].body).await.unwrap();
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    let sent = s.sms.sent();
    assert!(
        sent[1].1.text.starts_with("Puedes pagar aquí"),
        "{}",
        sent[1].1.text
    );
    // A third delivery of the first finds nothing left to queue.
    assert_eq!(
        sender.handle(&first).await.unwrap(),
        Outcome::Skipped("already handled")
    );
    assert!(s
        .queue
        .receive(10, Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
}

/// A debtor opted out of SMS: the bot's ordinary answer is cancelled, the crisis line goes out
/// (without the way out they already took), and the opt-out line of a reply is in the
/// conversation's language, not the CRM's.
#[tokio::test]
async fn care_goes_out_to_an_opted_out_debtor_and_the_opt_out_line_is_in_the_conversations_language(
) {
    let s = Setup::new().await;
    s.decided(1, &[]).await;
    let english = bot_reply(&s, "in-0#0", "Your balance is 300000 CLP.", |r| {
        r.language = Some(Language::En)
    })
    .await;
    let outcome = s.sender.handle(&english).await.unwrap();
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    let text = s.sms.sent()[0].1.text.clone();
    assert!(
        text.ends_with("Reply STOP to stop receiving these messages."),
        "{text}"
    );
    assert_eq!(s.sms.sent()[0].1.language, Language::En);

    s.opted_out(1, ChannelKind::Sms).await;
    let menu = bot_reply(&s, "in-1#0", "¿En qué te ayudo?", |_| {}).await;
    let outcome = s.sender.handle(&menu).await.unwrap();
    let Outcome::Cancelled(why) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(why.starts_with("opt_out"), "{why}");
    let line = bot_reply(&s, "in-2#0", "Llama a Salud Responde *4141.", |r| {
        r.care = true
    })
    .await;
    let outcome = s.sender.handle(&line).await.unwrap();
    assert_eq!(sent_on(&outcome), Some(ChannelKind::Sms), "{outcome:?}");
    let sent = s.sms.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1.text, "Llama a Salud Responde *4141.");
}

#[tokio::test]
async fn a_reminder_that_waited_does_not_state_a_debt_that_changed_since() {
    let s = Setup::new().await;
    let stated = |amount_minor| cobro::domain::Stated {
        due: "2026-03-13".parse().unwrap(),
        amount_minor,
    };
    // What the account still owes: it goes.
    let body = s
        .decided_with(1, &[ChannelKind::Whatsapp], |a| {
            a.states = Some(stated(300_000))
        })
        .await;
    let outcome = s.send(&body).await;
    assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");
    // Decided when 400 000 was owed; a payment brought it to 300 000 while it waited.
    let body = s
        .decided_with(2, &[ChannelKind::Whatsapp], |a| {
            a.states = Some(stated(400_000))
        })
        .await;
    let outcome = s.send(&body).await;
    let Outcome::Cancelled(reason) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("what is owed changed"), "{reason}");
    assert!(reason.contains("300000 CLP"), "{reason}");
    assert_eq!(s.attempt(2).await.status, AttemptStatus::Cancelled);
    assert_eq!(s.graph.sends().len(), 1);
}
