//! The thin slice of every flow, end to end, over HTTP against the local stack: a CRM upserts a
//! debtor and an account, the schedule decides and queues one message, the sender delivers it
//! once, the debtor's WhatsApp answer lands on the conversation once, and a payment lowers the
//! balance once, however often each step is repeated.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

use cobro::outbound::OutboundMessage;
use cobro::ports::secrets::whatsapp_number_secret;
use cobro::ports::{Outgoing, Queue, Secrets, WhatsAppSecrets};
use cobro::repo::WhatsAppNumber;
use cobro::whatsapp::signature;
use cobro_local::demo;
use cobro_tests::local::LocalApi;

/// The number the fixture was sent to, registered for the demo tenant in this test.
const FIXTURE_NUMBER_ID: &str = "1122334455667";

cobro_tests::local_api_newtype!(
    /// The local stack over HTTP, with this file's steps.
    Stack
);

impl Stack {
    async fn start() -> Self {
        Self(LocalApi::start().await)
    }

    /// A stack whose clock reads Monday 2026-03-16, 12:00 in Santiago: inside every demo
    /// debtor's contact window.
    async fn start_on_a_monday() -> Self {
        let s = Self::start().await;
        s.set_clock("2026-03-16T15:00:00Z").await;
        s
    }

    /// A debtor who consents to WhatsApp, with one open account of `amount` due on `due`.
    async fn debtor_with_account(
        &self,
        debtor: &str,
        phone: &str,
        zone: &str,
        account: (&str, &str, i64, &str),
    ) {
        let (account, currency, amount, due) = account;
        self.ok(
            "PUT",
            &format!("/v1/debtors/{debtor}"),
            Some(json!({
                "name": "Test", "phone": phone, "time_zone": zone,
                "consents": [{ "channel": "whatsapp", "granted": true }]
            })),
        )
        .await;
        self.ok("PUT", &format!("/v1/accounts/{account}"), Some(json!({
            "debtor_id": debtor, "currency": currency, "principal_minor": amount, "balance_minor": amount,
            "due_date": due
        }))).await;
    }

    /// `debtor_with_account` in Santiago, the account in CLP.
    async fn chilean_debtor_with_account(
        &self,
        debtor: &str,
        phone: &str,
        account: (&str, i64, &str),
    ) {
        let (account, amount, due) = account;
        let account = (account, "CLP", amount, due);
        self.debtor_with_account(debtor, phone, "America/Santiago", account)
            .await;
    }

    /// The CRM records the debtor's promise to pay `amount_minor` on `account` by `by`.
    async fn promise(&self, account: &str, amount_minor: i64, by: &str) {
        let path = format!("/v1/accounts/{account}/promises");
        let body = json!({ "amount_minor": amount_minor, "by": by });
        self.ok("POST", &path, Some(body)).await;
    }

    async fn post_webhook(&self, raw: &[u8], signature: Option<String>) -> StatusCode {
        let mut req = self
            .http
            .post(format!("{}/webhooks/whatsapp", self.base))
            .header("content-type", "application/json")
            .body(raw.to_vec());
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        req.send().await.expect("request").status()
    }
}

/// The debtor, a Chilean number: Meta's example payload comes from an Israeli one, and a debtor
/// in a country without a preset is never sent a reminder.
const DEBTOR_PHONE: &str = "+56987654321";

/// A real payload, from `DEBTOR_PHONE` instead of the sender in Meta's example.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/fixtures/whatsapp-webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    raw.replace("972987654321", &DEBTOR_PHONE[1..]).into_bytes()
}

/// A confirmed CLP payment to the demo tenant's `account`, as the payment-confirmed function
/// gets it.
fn demo_payment(account: &str, payment_id: &str, amount_minor: i64, paid_at: &str) -> Value {
    json!({ "tenant": "demo", "account": account, "payment_id": payment_id,
        "amount_minor": amount_minor, "currency": "CLP", "paid_at": paid_at })
}

/// `sent` is one message, and it says each of `parts`.
fn assert_one_message_saying(sent: &[(String, cobro::ports::ChannelMessage)], parts: &[&str]) {
    assert_eq!(sent.len(), 1, "{sent:?}");
    let text = &sent[0].1.text;
    assert!(parts.iter().all(|p| text.contains(p)), "{text}");
}

#[tokio::test]
async fn a_debt_goes_from_crm_to_reminder_to_reply_to_payment() {
    let s = Stack::start_on_a_monday().await;

    // --- The CRM upserts a debtor and an account; a bad body changes nothing.
    let debtor = json!({
        "name": "Test Name", "phone": DEBTOR_PHONE, "time_zone": "America/Santiago", "language": "es",
        "consents": [{ "channel": "whatsapp", "granted": true }]
    });
    let (status, _) = s.call("PUT", "/v1/debtors/d-1", Some(debtor.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = s.call("PUT", "/v1/debtors/d-1", Some(debtor)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same upsert again is not a new debtor"
    );
    let account = json!({
        "debtor_id": "d-1", "currency": "CLP", "principal_minor": 300000, "balance_minor": 300000,
        "due_date": "2026-03-13"
    });
    let mut bad = account.clone();
    bad["balance_minor"] = json!("lots");
    let (status, body) = s.call("PUT", "/v1/accounts/A-1", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "balance_minor", "{body}");
    let (status, _) = s.call("GET", "/v1/accounts/A-1", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a rejected body stores nothing"
    );
    let (status, _) = s
        .call("PUT", "/v1/accounts/A-1", Some(account.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = s.call("PUT", "/v1/accounts/A-1", Some(account)).await;
    assert_eq!(status, StatusCode::OK);

    // --- The schedule decides once, however often it fires.
    let first = s.tick().await;
    assert!(first["contacted"].as_u64().unwrap() >= 1, "{first}");
    let second = s.tick().await;
    assert_eq!(second["contacted"], 0, "{second}");
    let view = s.ok("GET", "/v1/accounts/A-1", None).await;
    let attempts = view["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{view}");
    assert_eq!(attempts[0]["decision_id"], "2026-03-13:d+3");
    assert_eq!(view["days_past_due"], 3);

    // --- The sender delivers it once, even when the queue delivers it twice.
    s.drain().await;
    let duplicate = OutboundMessage {
        tenant: demo::tenant_id(),
        account: cobro::domain::AccountId::parse("A-1").unwrap(),
        decision_id: "2026-03-13:d+3".into(),
    };
    s.stack
        .outbound
        .send_batch(vec![Outgoing::new(
            "dup",
            serde_json::to_string(&duplicate).unwrap(),
        )])
        .await
        .unwrap();
    let drained = s.drain().await;
    assert_eq!(drained["skipped"], 1, "{drained}");
    let to_us: Vec<_> = s.sent_to(DEBTOR_PHONE);
    assert_eq!(to_us.len(), 1, "one message per decision");
    assert!(
        to_us[0].1.text.contains("300000 CLP"),
        "{}",
        to_us[0].1.text
    );
    let view = s.ok("GET", "/v1/accounts/A-1", None).await;
    assert_eq!(view["attempts"][0]["status"], "sent");

    // --- The debtor answers on WhatsApp: Meta's real payload, signed, delivered twice.
    s.stack
        .store
        .put_whatsapp_number(&WhatsAppNumber {
            phone_number_id: FIXTURE_NUMBER_ID.into(),
            tenant: demo::tenant_id(),
            display_phone_number: "972123456789".into(),
        })
        .await
        .unwrap();
    s.stack
        .secrets
        .put(
            &whatsapp_number_secret("", FIXTURE_NUMBER_ID),
            &WhatsAppSecrets {
                app_secret: "fixture-secret".into(),
                ..Default::default()
            }
            .to_json(),
        )
        .await
        .unwrap();
    let raw = fixture("text_reply_with_context.json");
    let good = signature::sign(b"fixture-secret", &raw);
    assert_eq!(s.post_webhook(&raw, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.post_webhook(&raw, Some(signature::sign(b"wrong", &raw)))
            .await,
        StatusCode::UNAUTHORIZED
    );
    let conversation = |v: &Value| v["conversation"].as_array().unwrap().clone();
    let before = conversation(&s.ok("GET", "/v1/debtors/d-1", None).await);
    assert_eq!(before.len(), 1, "only the reminder so far: {before:?}");
    assert_eq!(
        s.post_webhook(&raw, Some(good.clone())).await,
        StatusCode::OK
    );
    assert_eq!(s.post_webhook(&raw, Some(good)).await, StatusCode::OK);
    // The webhook only keeps and queues; the inbound worker applies.
    let drained = s.drain().await;
    assert_eq!(drained["inbound_applied"], 2, "{drained}");
    let after = conversation(&s.ok("GET", "/v1/debtors/d-1", None).await);
    assert_eq!(after.len(), 2, "the reply is recorded once: {after:?}");
    let inbound: Vec<_> = after
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .collect();
    assert_eq!(inbound.len(), 1, "{after:?}");
    assert_eq!(inbound[0]["text"], "replied text");

    // --- A payment lowers the balance once, even when registered and delivered twice.
    let payment = json!({ "account_id": "A-1", "payment_id": "psp-77", "amount_minor": 100000, "currency": "CLP" });
    s.ok("POST", "/v1/payments", Some(payment.clone())).await;
    s.ok("POST", "/v1/payments", Some(payment)).await;
    let drained = s.drain().await;
    assert_eq!(
        (
            drained["payments_applied"].as_u64(),
            drained["payments_duplicate"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let view = s.ok("GET", "/v1/accounts/A-1", None).await;
    assert_eq!(view["account"]["balance_minor"], 200000);
    assert_eq!(view["payments"].as_array().unwrap().len(), 1);
    let (status, body) = s
        .call("POST", "/v1/payments", Some(json!({ "account_id": "A-1", "payment_id": "x", "amount_minor": 5, "currency": "EUR" })))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("currency"))
    );

    // --- Paid in full: settled, off the schedule, and the next step is never sent.
    s.ok("POST", "/v1/payments", Some(json!({ "account_id": "A-1", "payment_id": "psp-78", "amount_minor": 200000, "currency": "CLP" }))).await;
    s.drain().await;
    let view = s.ok("GET", "/v1/accounts/A-1", None).await;
    assert_eq!(view["account"]["status"], "settled");
    assert_eq!(view["account"]["balance_minor"], 0);
    assert!(view["next_action_at"].is_null(), "{view}");
    s.advance_clock("10d").await;
    s.tick().await;
    s.drain().await;
    // The two receipts go 6 s apart at least (Meta's pair rate): the second one waits on the
    // outbox, and a later tick sends it.
    s.advance_clock("11m").await;
    s.tick().await;
    s.drain().await;
    let view = s.ok("GET", "/v1/accounts/A-1", None).await;
    let attempts = view["attempts"].as_array().unwrap();
    let (receipts, reminders): (Vec<_>, Vec<_>) =
        attempts.iter().partition(|a| a["receipt"] == true);
    assert_eq!(reminders.len(), 1, "no reminder after settlement");
    // A receipt for each payment, sent even though the account is settled.
    assert_eq!(receipts.len(), 2, "{attempts:?}");
    assert!(
        receipts.iter().all(|r| r["status"] == "sent"),
        "{receipts:?}"
    );
    assert!(receipts[0]["text"]
        .as_str()
        .unwrap()
        .contains("recibimos tu pago"));
}

#[tokio::test]
async fn a_payment_between_decision_and_send_cancels_the_message() {
    let s = Stack::start_on_a_monday().await;
    s.chilean_debtor_with_account("d-2", "+56911112222", ("A-2", 1000, "2026-03-16"))
        .await;
    s.tick().await;
    // Paid after the decision, applied before the sender runs.
    s.pay(demo_payment("A-2", "p-1", 1000, "2026-03-16T15:01:00Z"))
        .await;
    let drained = s.drain().await;
    assert!(drained["cancelled"].as_u64().unwrap() >= 1, "{drained}");
    // The reminder is cancelled; only the payment's receipt reaches the debtor.
    let to_debtor: Vec<String> = s
        .sent_to("+56911112222")
        .into_iter()
        .map(|(_, m)| m.text)
        .collect();
    assert_eq!(to_debtor.len(), 1, "{to_debtor:?}");
    assert!(to_debtor[0].contains("recibimos tu pago"), "{to_debtor:?}");
    let view = s.ok("GET", "/v1/accounts/A-2", None).await;
    let reminder = view["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["receipt"] != true)
        .unwrap();
    assert_eq!(reminder["status"], "cancelled");
}

#[tokio::test]
async fn the_local_stack_serves_health_sandbox_and_the_handshake() {
    let s = Stack::start().await;
    // A clock set to something that is no instant says what it wants.
    let (status, body) = s
        .call("POST", "/_local/clock", Some(json!({ "set": "tomorrow" })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "set", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("RFC 3339"),
        "{body}"
    );
    assert_eq!(s.ok("GET", "/health", None).await["status"], "ok");
    let page = s.ok("GET", "/sandbox", None).await;
    assert!(page.as_str().unwrap().contains("cobro sandbox"));
    let chats = s.ok("GET", "/_local/sandbox/chats", None).await;
    assert!(
        chats["chats"].as_array().unwrap().len() >= 5,
        "the demo tenant is loaded"
    );
    let ok = s
        .ok("GET", "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=local-verify-token&hub.challenge=1158201444", None)
        .await;
    assert_eq!(ok, json!(1158201444));
    let (status, _) = s
        .call(
            "GET",
            "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The right token with a handshake missing a part: 400 naming it.
    for (query, field) in [
        ("hub.mode=subscribe", "hub.challenge"),
        ("hub.mode=unsubscribe&hub.challenge=1", "hub.mode"),
    ] {
        let path = format!("/webhooks/whatsapp?{query}&hub.verify_token=local-verify-token");
        let (status, body) = s.call("GET", &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
    let (status, body) = s.call("GET", "/v1/accounts/CL-1001", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let unauth = s
        .http
        .get(format!("{}/v1/accounts/CL-1001", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_lost_queue_message_is_sent_by_a_later_tick_and_a_retryable_failure_is_retried() {
    use cobro::ports::ChannelError;
    use std::time::Duration;

    let s = Stack::start_on_a_monday().await;
    s.debtor_with_account(
        "d-3",
        "+5511999990003",
        "America/Sao_Paulo",
        ("A-3", "BRL", 9990, "2026-03-09"),
    )
    .await;
    s.tick().await;
    // The queue loses every message (as if the send had failed after the commit).
    loop {
        let got = s
            .stack
            .outbound
            .receive(10, Duration::from_secs(3600))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        for m in got {
            s.stack.outbound.delete(&m.receipt).await.unwrap();
        }
    }
    assert!(s.stack.channel.sent().is_empty());
    // Before the outbox retry time nothing is re-enqueued; after it, the tick finds the attempt.
    let early = s.tick().await;
    assert_eq!(early["requeued"], 0, "{early}");
    s.advance_clock("11m").await;
    let late = s.tick().await;
    assert!(late["requeued"].as_u64().unwrap() >= 1, "{late}");

    // The channel fails once, temporarily: the attempt goes back to queued, then is sent once.
    s.stack
        .channel
        .fail_next([ChannelError::transient("503 service unavailable")]);
    let message = s
        .stack
        .outbound
        .receive(10, Duration::from_secs(3600))
        .await
        .unwrap();
    let mine: Vec<_> = message.iter().filter(|m| m.body.contains("A-3")).collect();
    assert_eq!(mine.len(), 1);
    let deferred = s.stack.sender.handle(&mine[0].body).await.unwrap();
    assert!(
        matches!(deferred, cobro_sender::Outcome::Deferred { .. }),
        "a temporary failure is queued again with a delay: {deferred:?}"
    );
    let view = s.ok("GET", "/v1/accounts/A-3", None).await;
    assert_eq!(view["attempts"][0]["status"], "queued", "{view}");
    assert_eq!(view["attempts"][0]["tries"], 1, "{view}");
    // Meta's pair rate: nothing to the same debtor within 6 s.
    s.advance_clock("7s").await;
    let outcome = s.stack.sender.handle(&mine[0].body).await.unwrap();
    assert!(
        matches!(outcome, cobro_sender::Outcome::Sent { .. }),
        "{outcome:?}"
    );
    let again = s.stack.sender.handle(&mine[0].body).await.unwrap();
    assert_eq!(again, cobro_sender::Outcome::Skipped("already handled"));
    let to_rui = s.sent_to("+5511999990003").len();
    assert_eq!(to_rui, 1);
    // Sent: off the outbox, so later ticks leave it alone.
    s.advance_clock("11m").await;
    let after = s.tick().await;
    assert_eq!(after["requeued"], 0, "{after}");
}

#[tokio::test]
async fn the_law_decides_and_the_api_says_why() {
    let s = Stack::start().await;
    // Sunday 2026-03-15, 12:00 in Santiago: Chile allows no contact on Sundays.
    s.set_clock("2026-03-15T15:00:00Z").await;
    s.chilean_debtor_with_account("law-1", "+56977770001", ("L-1", 50000, "2026-03-12"))
        .await;
    s.tick().await;
    let why = s.ok("GET", "/v1/accounts/L-1/decisions", None).await;
    assert_eq!(why["decisions"][0]["outcome"], "defer", "{why}");
    assert_eq!(why["decisions"][0]["rule"], "window", "{why}");
    assert!(
        why["next_action_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-16T11:00"),
        "Monday 08:00 local: {why}"
    );
    // Monday: contacted once; a second account of the same debtor waits for the next day.
    s.ok(
        "PUT",
        "/v1/accounts/L-2",
        Some(json!({
        "debtor_id": "law-1", "currency": "CLP", "principal_minor": 1000, "balance_minor": 1000,
        "due_date": "2026-03-12" })),
    )
    .await;
    s.set_clock("2026-03-16T12:00:00Z").await;
    let tick = s.tick().await;
    assert_eq!(tick["contacted"], 1, "{tick}");
    let second = s.ok("GET", "/v1/accounts/L-2/decisions", None).await;
    let first = s.ok("GET", "/v1/accounts/L-1/decisions", None).await;
    let rules: Vec<&str> = [&first, &second]
        .iter()
        .map(|v| v["decisions"][0]["rule"].as_str().unwrap_or("-"))
        .collect();
    assert!(
        rules.contains(&"max_per_day"),
        "one message a day to a debtor: {rules:?}"
    );
    // A lawsuit served stops collection on the account, by law.
    s.ok(
        "PUT",
        "/v1/accounts/L-2",
        Some(json!({
        "debtor_id": "law-1", "currency": "CLP", "principal_minor": 1000, "balance_minor": 1000,
        "due_date": "2026-03-12", "holds": { "lawsuit_served": true } })),
    )
    .await;
    s.advance_clock("1d").await;
    s.tick().await;
    let stopped = s.ok("GET", "/v1/accounts/L-2/decisions", None).await;
    assert_eq!(
        stopped["decisions"][0]["rule"], "stop:lawsuit_served",
        "{stopped}"
    );
    assert_eq!(stopped["decisions"][0]["outcome"], "stop", "{stopped}");
    assert!(stopped["next_action_at"].is_null());
    // A bad hold is refused, naming the field.
    let (status, body) = s
        .call(
            "PUT",
            "/v1/accounts/L-2",
            Some(json!({
        "debtor_id": "law-1", "currency": "CLP", "principal_minor": 1000, "balance_minor": 1000,
        "due_date": "2026-03-12", "holds": { "lawsuit": true } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["field"].as_str().unwrap().contains("holds"), "{body}");
    // A debtor whose phone is in a country without a preset (Ecuador, where weekend
    // collection is banned) is not contacted under Chile's rules: stopped, naming the country.
    s.set_clock("2026-03-17T11:30:00Z").await;
    s.debtor_with_account(
        "law-ec",
        "+593991234567",
        "America/Guayaquil",
        ("E-1", "CLP", 50000, "2026-03-12"),
    )
    .await;
    // A Chilean number recorded in a zone that is not Chile's: read on every Chilean zone, so
    // Tuesday 08:30 in Santiago waits for 08:00 on Easter Island (UTC-5 in March), 13:00Z.
    s.debtor_with_account(
        "law-tz",
        "+56977770009",
        "Etc/GMT+3",
        ("T-1", "CLP", 50000, "2026-03-12"),
    )
    .await;
    s.tick().await;
    let abroad = s.ok("GET", "/v1/accounts/E-1/decisions", None).await;
    let last = &abroad["decisions"][0];
    assert_eq!(
        (&last["outcome"], &last["rule"]),
        (&json!("stop"), &json!("unknown_jurisdiction")),
        "{abroad}"
    );
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("+593991234567 is in EC"),
        "{abroad}"
    );
    let zoned = s.ok("GET", "/v1/accounts/T-1/decisions", None).await;
    let last = &zoned["decisions"][0];
    assert_eq!(
        (&last["outcome"], &last["rule"]),
        (&json!("defer"), &json!("window")),
        "{zoned}"
    );
    assert!(
        last["reason"].as_str().unwrap().contains("Pacific/Easter"),
        "{zoned}"
    );
    assert!(
        zoned["next_action_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-17T13:00"),
        "{zoned}"
    );
}

#[tokio::test]
async fn a_plan_is_quoted_accepted_reminded_paid_and_completed() {
    let s = Stack::start_on_a_monday().await;
    s.chilean_debtor_with_account("plan-1", "+56977770002", ("P-1", 90000, "2026-03-01"))
        .await;
    // What can be done for 30,000 a month: the shortest plan that fits first.
    let quote = s
        .ok(
            "POST",
            "/v1/accounts/P-1/plans/quote",
            Some(json!({
        "per_period_minor": 30000, "frequency": "monthly" })),
        )
        .await;
    assert_eq!(
        quote["options"][0]["instalments"].as_array().unwrap().len(),
        3,
        "{quote}"
    );
    // A bad request names the field.
    let (status, body) = s
        .call(
            "POST",
            "/v1/accounts/P-1/plans",
            Some(json!({
        "instalments": 3, "frequency": "fortnightly", "first_due": "2026-03-20" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "frequency", "{body}");
    let accept = json!({ "instalments": 3, "frequency": "monthly", "first_due": "2026-03-20" });
    let (status, plan) = s
        .call("POST", "/v1/accounts/P-1/plans", Some(accept.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    let (status, again) = s.call("POST", "/v1/accounts/P-1/plans", Some(accept)).await;
    assert_eq!(
        (status, &again["id"]),
        (StatusCode::OK, &plan["id"]),
        "the same request is the same plan"
    );
    // A link to pay the next instalment, on the demo lender's own pay page.
    let link = s
        .ok("POST", "/v1/accounts/P-1/links", Some(json!({})))
        .await;
    assert_eq!(link["amount_minor"], 30000, "{link}");
    let url = link["link"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://pay.credito-andino.example/P-1?amount=30000&currency=CLP"),
        "{url}"
    );
    let (status, body) = s
        .call(
            "POST",
            "/v1/accounts/P-1/links",
            Some(json!({ "instalment": 9 })),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("instalment")),
        "{body}"
    );
    // The reminders now follow the first instalment (30,000 on 2026-03-20), not the whole debt.
    let view = s.ok("GET", "/v1/accounts/P-1", None).await;
    assert_eq!(
        view["account"]["plan"]["next_amount_minor"], 30000,
        "{view}"
    );
    s.set_clock("2026-03-17T15:00:00Z").await;
    s.tick().await;
    s.drain().await;
    assert_one_message_saying(&s.sent_to("+56977770002"), &["30000 CLP", "2026-03-20"]);
    // Payments go to the oldest instalment; the plan completes and the account settles.
    let pay = |id: &str, amount: i64| demo_payment("P-1", id, amount, "2026-03-17T15:00:00Z");
    s.pay(pay("pp-1", 40000)).await;
    let view = s.ok("GET", "/v1/accounts/P-1", None).await;
    assert_eq!(view["plans"][0]["status"], "active", "{view}");
    assert_eq!(view["plans"][0]["paid_minor"], json!([30000, 10000, 0]));
    assert_eq!(view["account"]["plan"]["next_amount_minor"], 20000);
    let outcome = s.pay(pay("pp-2", 55000)).await;
    assert!(
        matches!(
            outcome,
            cobro::repo::PaymentOutcome::Applied {
                settled: true,
                credit_minor: 5000,
                ..
            }
        ),
        "{outcome:?}"
    );
    let view = s.ok("GET", "/v1/accounts/P-1", None).await;
    assert_eq!(view["plans"][0]["status"], "completed");
    assert_eq!(view["account"]["status"], "settled");
    assert_eq!(
        view["account"]["credit_minor"], 5000,
        "the overpayment is kept as a credit"
    );
    // A payment for an account cobro does not know is kept in suspense, once.
    let stray = demo_payment("NOPE", "px", 100, "2026-03-17T15:00:00Z");
    s.pay(stray.clone()).await;
    s.pay(stray).await;
    let suspense = s.ok("GET", "/v1/payments/suspense", None).await;
    assert_eq!(suspense["items"].as_array().unwrap().len(), 1, "{suspense}");
    assert!(suspense["items"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("NOPE"));
}

#[tokio::test]
async fn a_promise_to_pay_holds_the_reminders_and_is_kept_or_broken() {
    let s = Stack::start_on_a_monday().await; // 2026-03-16
    s.chilean_debtor_with_account("prom-1", "+56977770003", ("PR-1", 50000, "2026-03-01"))
        .await;
    let (status, body) = s
        .call(
            "POST",
            "/v1/accounts/PR-1/promises",
            Some(json!({
        "amount_minor": 20000, "by": "2026-04-30" })),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("by")),
        "beyond the tenant's limit: {body}"
    );
    s.promise("PR-1", 20000, "2026-03-20").await;
    // Until the day before, nothing; on the 19th one reminder of what was promised.
    s.tick().await;
    let why = s.ok("GET", "/v1/accounts/PR-1/decisions", None).await;
    assert_eq!(why["decisions"][0]["outcome"], "defer", "{why}");
    s.set_clock("2026-03-19T15:00:00Z").await;
    s.tick().await;
    s.drain().await;
    assert_one_message_saying(&s.sent_to("+56977770003"), &["20000 CLP", "2026-03-20"]);
    // Paid in two parts: kept when the promised amount is reached.
    let pay = |id: &str, amount: i64| demo_payment("PR-1", id, amount, "2026-03-19T15:00:00Z");
    s.pay(pay("pr-a", 5000)).await;
    let view = s.ok("GET", "/v1/accounts/PR-1", None).await;
    assert_eq!(view["account"]["promise"]["paid_minor"], 5000, "{view}");
    // The same promise posted again (a retry without a key) is the standing one, paid part
    // and all: not a new promise of the whole amount.
    let (status, again) = s
        .call(
            "POST",
            "/v1/accounts/PR-1/promises",
            Some(json!({ "amount_minor": 20000, "by": "2026-03-20" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, view["account"]["promise"]);
    let outcome = s.pay(pay("pr-b", 15000)).await;
    assert!(
        matches!(
            outcome,
            cobro::repo::PaymentOutcome::Applied {
                promise_kept: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(s.ok("GET", "/v1/accounts/PR-1", None).await["account"]["promise"].is_null());

    // A second promise passes unpaid: broken at the next tick, and the reminders resume.
    s.promise("PR-1", 10000, "2026-03-23").await;
    s.set_clock("2026-03-24T15:00:00Z").await;
    s.tick().await;
    let view = s.ok("GET", "/v1/accounts/PR-1", None).await;
    assert!(view["account"]["promise"].is_null(), "broken: {view}");
    assert!(view["decisions"].as_array().unwrap().len() >= 3, "{view}");
}

/// A broken promise's `PromiseBroken` is written to the outbox with the change: when the tick's
/// publish fails, the next tick publishes it, once.
#[tokio::test]
async fn a_broken_promise_whose_announcement_failed_is_announced_by_the_next_tick() {
    let s = Stack::start_on_a_monday().await; // 2026-03-16
    s.chilean_debtor_with_account("prom-2", "+56977770004", ("PR-2", 50000, "2026-03-01"))
        .await;
    s.promise("PR-2", 10000, "2026-03-20").await;
    s.set_clock("2026-03-24T15:00:00Z").await;
    let (reminders, bus) = reminders_refusing(&s, "PromiseBroken", "PR-2");
    let broken = |events: Vec<cobro::ports::Event>| of(events, "PromiseBroken", "PR-2");
    // The promise is broken, then the publish fails: the tick fails, the change stands.
    let err = reminders.tick().await.unwrap_err();
    assert!(err.to_string().contains("throttled"), "{err}");
    let view = s.ok("GET", "/v1/accounts/PR-2", None).await;
    assert!(view["account"]["promise"].is_null(), "broken: {view}");
    assert!(broken(bus.take()).is_empty());
    // The next tick finds the announcement on the outbox and publishes it.
    let report = reminders.tick().await.unwrap();
    assert_eq!(report.announced, 1, "{report:?}");
    let out = broken(bus.take());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].detail["promised_minor"], 10000);
    assert_eq!(out[0].detail["by"], "2026-03-20");
    // Then it is off the outbox.
    let report = reminders.tick().await.unwrap();
    assert_eq!(report.announced, 0, "{report:?}");
    assert!(broken(bus.take()).is_empty());
}

/// A plan late past the grace days is broken by the tick, with its `PlanBroken` on the outbox:
/// when the publish fails, the next tick publishes it, once.
#[tokio::test]
async fn a_broken_plan_whose_announcement_failed_is_announced_by_the_next_tick() {
    let s = Stack::start_on_a_monday().await; // 2026-03-16
    s.chilean_debtor_with_account("plan-2", "+56977770005", ("PL-2", 90000, "2026-03-01"))
        .await;
    let plan = s
        .ok(
            "POST",
            "/v1/accounts/PL-2/plans",
            Some(json!({ "instalments": 3, "frequency": "monthly", "first_due": "2026-03-20" })),
        )
        .await;
    let plan_id = plan["id"].as_str().expect("a plan id").to_string();
    // Nothing paid; 2026-03-20 plus the default 5 grace days has passed.
    s.set_clock("2026-03-27T15:00:00Z").await;
    let (reminders, bus) = reminders_refusing(&s, "PlanBroken", "PL-2");
    let broken = |events: Vec<cobro::ports::Event>| of(events, "PlanBroken", "PL-2");
    reminders.tick().await.unwrap_err();
    let view = s.ok("GET", "/v1/accounts/PL-2", None).await;
    assert!(view["account"]["plan"].is_null(), "off the account: {view}");
    let plans = view["plans"].to_string();
    assert!(plans.contains("\"broken\""), "{plans}");
    assert!(broken(bus.take()).is_empty());
    let report = reminders.tick().await.unwrap();
    assert_eq!(report.announced, 1, "{report:?}");
    let out = broken(bus.take());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].detail["plan"], plan_id.as_str());
    assert_eq!(out[0].detail["late_instalment_due"], "2026-03-20");
    reminders.tick().await.unwrap();
    assert!(broken(bus.take()).is_empty());
}

/// A plan is broken by the grace days agreed with it, not by the tenant's rules changed since:
/// agreed with 10, it stands 4 and 10 days late after the tenant moved to 3, and is broken past
/// them, saying 10.
#[tokio::test]
async fn a_plan_is_broken_by_its_own_grace_days_not_the_tenants_current_ones() {
    let s = Stack::start_on_a_monday().await; // 2026-03-16
    s.chilean_debtor_with_account("plan-3", "+56977770006", ("PL-3", 90000, "2026-03-01"))
        .await;
    let store = &s.stack.store;
    let mut tenant = store.tenant(&demo::tenant_id()).await.unwrap().unwrap();
    tenant.plan_rules.grace_days = 10;
    store.put_tenant(&tenant).await.unwrap();
    let plan = s
        .ok(
            "POST",
            "/v1/accounts/PL-3/plans",
            Some(json!({ "instalments": 3, "frequency": "monthly", "first_due": "2026-03-20" })),
        )
        .await;
    assert_eq!(plan["grace_days"], 10, "{plan}");
    tenant.plan_rules.grace_days = 3;
    store.put_tenant(&tenant).await.unwrap();
    // Nothing to refuse: the bus only keeps what was published.
    let (reminders, bus) = reminders_refusing(&s, "none", "PL-3");
    let broken = |events: Vec<cobro::ports::Event>| of(events, "PlanBroken", "PL-3");
    // 4 and then 10 days late (Santiago): past the tenant's 3, within the plan's 10.
    for at in ["2026-03-24T15:00:00Z", "2026-03-30T15:00:00Z"] {
        s.set_clock(at).await;
        reminders.tick().await.unwrap();
        let view = s.ok("GET", "/v1/accounts/PL-3", None).await;
        assert_eq!(view["account"]["plan"]["id"], plan["id"], "{at}: {view}");
        assert_eq!(view["plans"][0]["status"], "accepted", "{at}: {view}");
        assert!(broken(bus.take()).is_empty(), "{at}");
    }
    // Past the plan's 10 (at the account's next step, 2026-04-04): broken, saying 10.
    s.set_clock("2026-04-04T15:00:00Z").await;
    reminders.tick().await.unwrap();
    let view = s.ok("GET", "/v1/accounts/PL-3", None).await;
    assert!(view["account"]["plan"].is_null(), "{view}");
    assert_eq!(view["plans"][0]["status"], "broken", "{view}");
    let out = broken(bus.take());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].detail["grace_days"], 10);
    assert_eq!(out[0].detail["late_instalment_due"], "2026-03-20");
}

/// Two instalments late (within generous grace days): the reminder asks for both, from the
/// first one's day.
#[tokio::test]
async fn a_reminder_asks_for_every_instalment_due() {
    let s = Stack::start_on_a_monday().await; // 2026-03-16
    s.chilean_debtor_with_account("plan-4", "+56977770007", ("PL-4", 90000, "2026-03-01"))
        .await;
    let store = &s.stack.store;
    let mut tenant = store.tenant(&demo::tenant_id()).await.unwrap().unwrap();
    tenant.plan_rules.grace_days = 60;
    store.put_tenant(&tenant).await.unwrap();
    s.ok(
        "POST",
        "/v1/accounts/PL-4/plans",
        Some(json!({ "instalments": 3, "frequency": "monthly", "first_due": "2026-03-20" })),
    )
    .await;
    // 2026-04-22: the instalments of 03-20 and 04-20 are both unpaid.
    s.set_clock("2026-04-22T15:00:00Z").await;
    s.tick().await;
    let view = s.ok("GET", "/v1/accounts/PL-4", None).await;
    assert_eq!(view["plans"][0]["status"], "accepted", "{view}");
    let text = view["attempts"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("60000 CLP") && text.contains("2026-03-20"),
        "{text}: {view}"
    );
}

/// The local stack's reminders, publishing through a bus that refuses the first `kind` event
/// about `account`.
fn reminders_refusing(
    s: &Stack,
    kind: &'static str,
    account: &'static str,
) -> (
    cobro_reminders::Reminders,
    Arc<cobro_tests::flaky::FlakyBus>,
) {
    let local = &s.stack.reminders;
    let bus = cobro_tests::flaky::FlakyBus::refusing(s.stack.crm.bus.clone(), 1, move |e| {
        e.detail_type == kind && e.detail["account"] == account
    });
    let reminders = cobro_reminders::Reminders {
        store: local.store.clone(),
        queue: local.queue.clone(),
        clock: local.clock.clone(),
        decider: cobro::collect::Decider::default(),
        bus: Some(bus.clone()),
    };
    (reminders, bus)
}

/// The `kind` events about `account` among `events`.
fn of(events: Vec<cobro::ports::Event>, kind: &str, account: &str) -> Vec<cobro::ports::Event> {
    events
        .into_iter()
        .filter(|e| e.detail_type == kind && e.detail["account"] == account)
        .collect()
}
