//! The webhook and the inbound processor together, on the embedded adapters: what Meta sends
//! (real payloads from ../shared/fixtures, and synthetic batches), what is kept, what is
//! applied, exactly once.

use axum::http::{HeaderMap, HeaderValue};
use jiff::Timestamp;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cobro::adapters::dir_blobs::DirBlobs;
use cobro::adapters::dir_secrets::DirSecrets;
use cobro::adapters::local_bus::LocalBus;
use cobro::adapters::sqlite::{SqliteQueue, SqliteStore};
use cobro::domain::{ChannelKind, Debtor, DebtorId, TenantId};
use cobro::inbound::{Content, InboundEvent};
use cobro::ports::secrets::whatsapp_number_secret;
use cobro::ports::{
    Blobs, CachedSecrets, Clock, DeploymentSecrets, FixedClock, Pattern, Queue, Received, Secrets,
    WhatsAppSecrets,
};
use cobro::repo::{SmsNumber, Store, WhatsAppNumber};
use cobro::whatsapp::signature;
use cobro_inbound::{whatsapp, Inbound, Report};
use cobro_tests::fixtures;
use cobro_tests::flaky::FlakyBus;
use cobro_tests::hooked_table::{HookedTable, Hooks};
use cobro_webhook::Webhook;

const NUMBER: &str = "1122334455667";
const SECRET: &str = "app-secret-of-the-fixture-number";
const DEFAULT_SECRET: &str = "the-deployment-app-secret";

pub fn fixtures() -> PathBuf {
    std::env::var_os("COBRO_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/fixtures"
            ))
        })
}

/// The deployment's secrets as fixed values (environment variables, the local stack).
fn deployment(app_secret: &str) -> DeploymentSecrets {
    DeploymentSecrets::Fixed(WhatsAppSecrets {
        app_secret: app_secret.into(),
        verify_token: "verify-token".into(),
        ..Default::default()
    })
}

pub fn webhook_fixture(name: &str) -> Vec<u8> {
    let path = fixtures().join("whatsapp-webhooks").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub struct Harness {
    pub store: Store,
    /// The table behind `store`.
    pub table: Arc<dyn cobro::ports::Table>,
    pub blobs: Arc<DirBlobs>,
    pub queue: Arc<SqliteQueue>,
    /// Every event the processor publishes.
    pub events: Arc<SqliteQueue>,
    pub webhook: Webhook,
    pub inbound: Inbound,
    pub tenant: TenantId,
    pub secrets: Arc<dyn Secrets>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open_in_memory().unwrap();
        let table: Arc<dyn cobro::ports::Table> = Arc::new(sqlite.table());
        let store = Store::new(table.clone());
        let blobs = Arc::new(DirBlobs::new(dir.path().join("blobs")));
        let queue = Arc::new(sqlite.queue("inbound", None));
        let events = Arc::new(sqlite.queue("events", None));
        let bus =
            Arc::new(LocalBus::new().route(Pattern::default(), events.clone() as Arc<dyn Queue>));
        let clock: Arc<dyn Clock> =
            Arc::new(FixedClock::at("2026-03-16T15:00:00Z".parse().unwrap()));
        let tenant = TenantId::parse("t1").unwrap();
        store
            .put_tenant(&fixtures::creditor(&tenant))
            .await
            .unwrap();
        store
            .put_whatsapp_number(&WhatsAppNumber {
                phone_number_id: NUMBER.into(),
                tenant: tenant.clone(),
                display_phone_number: "972123456789".into(),
            })
            .await
            .unwrap();
        let secrets: Arc<dyn Secrets> = Arc::new(DirSecrets::new(dir.path().join("secrets")));
        let own = WhatsAppSecrets {
            app_secret: SECRET.into(),
            ..Default::default()
        };
        secrets
            .put(&whatsapp_number_secret("", NUMBER), &own.to_json())
            .await
            .unwrap();
        store
            .put_sms_number(&SmsNumber {
                number: "+15550001111".into(),
                tenant: tenant.clone(),
            })
            .await
            .unwrap();
        let webhook = Webhook {
            store: store.clone(),
            blobs: blobs.clone(),
            inbound: queue.clone(),
            clock: clock.clone(),
            whatsapp: deployment(DEFAULT_SECRET),
            secrets: secrets.clone(),
            secrets_prefix: String::new(),
        };
        let inbound = Inbound {
            store: store.clone(),
            blobs: blobs.clone(),
            bus,
            clock,
            media: None,
            outbound: None,
            links: None,
        };
        Self {
            store,
            table,
            blobs,
            queue,
            events,
            webhook,
            inbound,
            tenant,
            secrets,
            _dir: dir,
        }
    }

    pub async fn debtor(&self, id: &str, phone: &str) -> Debtor {
        let d = Debtor {
            consents: vec![
                fixtures::consent(ChannelKind::Whatsapp),
                fixtures::consent(ChannelKind::Sms),
            ],
            ..fixtures::debtor(&self.tenant, id, phone)
        };
        self.store.upsert_debtor(&d).await.unwrap();
        d
    }

    pub async fn post(&self, raw: &[u8], secret: Option<&str>) -> Result<String, u16> {
        let mut headers = HeaderMap::new();
        if let Some(s) = secret {
            let sig = signature::sign(s.as_bytes(), raw);
            headers.insert("x-hub-signature-256", HeaderValue::from_str(&sig).unwrap());
        }
        self.webhook
            .handle(&headers, raw)
            .await
            .map_err(|p| p.status)
    }

    /// The debtor as stored now.
    pub async fn stored_debtor(&self, id: &DebtorId) -> Debtor {
        self.store
            .debtor(&self.tenant, id)
            .await
            .unwrap()
            .expect("the debtor")
    }

    /// The debtor's conversation, newest first, at most `limit` messages.
    pub async fn conversation(
        &self,
        debtor: &DebtorId,
        limit: u32,
    ) -> Vec<cobro::domain::ConversationMessage> {
        self.store
            .conversation(&self.tenant, debtor, limit)
            .await
            .unwrap()
    }

    /// Queues one raw message for the processor, as SQS would deliver it.
    pub async fn enqueue(&self, body: impl Into<String>) {
        self.queue
            .send_batch(vec![cobro::ports::Outgoing::new("0", body)])
            .await
            .unwrap();
    }

    /// The account as stored now.
    pub async fn account(&self, id: &cobro::domain::AccountId) -> cobro::domain::Account {
        self.store
            .account(&self.tenant, id)
            .await
            .unwrap()
            .expect("the account")
    }

    /// Applies everything queued; the sum of the reports.
    pub async fn drain(&self) -> Report {
        let mut total = Report::default();
        loop {
            let got = self
                .queue
                .receive(10, Duration::from_secs(30))
                .await
                .unwrap();
            if got.is_empty() {
                return total;
            }
            for m in got {
                let r = self.inbound.handle(&m.body).await.expect("applied");
                self.queue.delete(&m.receipt).await.unwrap();
                total.messages += r.messages;
                total.statuses += r.statuses;
                total.duplicates += r.duplicates;
                total.unmatched += r.unmatched;
                total.statuses_unmatched += r.statuses_unmatched;
                total.opt_changes += r.opt_changes;
                total.preferences += r.preferences;
                total.errors += r.errors;
                total.unhandled += r.unhandled;
                total.unrouted += r.unrouted;
                total.other += r.other;
            }
        }
    }

    /// The detail types published so far (drained).
    pub async fn published(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        loop {
            let got = self
                .events
                .receive(10, Duration::from_secs(30))
                .await
                .unwrap();
            if got.is_empty() {
                return out;
            }
            for m in got {
                let v: Value = serde_json::from_str(&m.body).unwrap();
                out.push((
                    v["detail-type"].as_str().unwrap().to_string(),
                    v["detail"].clone(),
                ));
                self.events.delete(&m.receipt).await.unwrap();
            }
        }
    }
}

/// Meta's fixture, re-addressed to the harness's number so it routes to the tenant.
fn routed_fixture(name: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&webhook_fixture(name)).unwrap();
    for entry in v["entry"].as_array_mut().unwrap() {
        for change in entry["changes"].as_array_mut().unwrap() {
            change["value"]["metadata"]["phone_number_id"] = NUMBER.into();
        }
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn every_real_payload_parses_into_typed_events() {
    let at: Timestamp = "2026-03-16T15:00:00Z".parse().unwrap();
    let dir = fixtures().join("whatsapp-webhooks");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 18, "{names:?}");
    for name in &names {
        let events = whatsapp::events(&webhook_fixture(name), at);
        assert!(!events.is_empty(), "{name}: no events");
        for e in &events {
            assert!(
                !matches!(e.event, InboundEvent::Unknown { .. }),
                "{name}: not understood: {e:?}"
            );
        }
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| match &e.event {
                InboundEvent::Message(m) => match &m.content {
                    Content::Text { .. } => "text",
                    Content::Choice { .. } => "choice",
                    Content::Media { .. } => "media",
                    Content::Location { .. } => "location",
                    Content::Reaction { .. } => "reaction",
                    Content::Contacts { .. } => "contacts",
                    Content::Unsupported { .. } => "unsupported",
                },
                InboundEvent::Status(_) => "status",
                InboundEvent::Preference { .. } => "preference",
                InboundEvent::NumberChanged { .. } => "number_changed",
                InboundEvent::ProviderErrors { .. } => "errors",
                InboundEvent::Unknown { .. } => "unknown",
            })
            .collect();
        let expected: &[&str] = match name.as_str() {
            n if n.starts_with("status_") => &["status"],
            "image_message.json" | "document_message_pdf_no_caption.json" => &["media"],
            "location_message.json" => &["location"],
            "reaction_message.json" => &["reaction"],
            "system_user_changed_number.json" => &["number_changed"],
            n if n.starts_with("template_button_quick_reply") => &["choice"],
            "text_message_bsuid_only_no_from.json" | "text_reply_with_context.json" => &["text"],
            "value_errors_131000_with_message.json" => &["unsupported", "errors"],
            _ => &[],
        };
        if !expected.is_empty() {
            assert_eq!(kinds, expected, "{name}");
        }
    }
}

#[tokio::test]
async fn fields_are_read_by_the_documented_schema() {
    let at: Timestamp = "2026-03-16T15:00:00Z".parse().unwrap();
    let one = |name: &str| whatsapp::events(&webhook_fixture(name), at).remove(0).event;

    let InboundEvent::Message(m) = one("text_message_bsuid_only_no_from.json") else {
        panic!()
    };
    assert_eq!(m.from.phone, None, "no wa_id, no from");
    assert_eq!(m.from.user_id.as_deref(), Some("BSUID_123"));
    assert_eq!(
        m.at,
        Timestamp::from_second(1669233778).unwrap(),
        "the payload's time"
    );

    let InboundEvent::Message(m) = one("text_reply_with_context.json") else {
        panic!()
    };
    assert!(m.reply_to.is_some(), "context.id is the message answered");
    assert!(m.from.phone.is_some());

    let InboundEvent::Status(s) = one("status_failed_131047.json") else {
        panic!()
    };
    assert_eq!(s.status, "failed");
    assert_eq!(s.errors[0].code, Some(131047));
    assert!(s.errors[0].detail.as_deref().unwrap().contains("24 hours"));

    let InboundEvent::Status(s) = one("status_sent_with_biz_opaque_callback_data.json") else {
        panic!()
    };
    assert!(
        s.correlation.is_some(),
        "biz_opaque_callback_data is echoed"
    );

    let InboundEvent::Message(m) = one("image_message.json") else {
        panic!()
    };
    let Content::Media {
        media,
        media_id,
        mime_type,
        ..
    } = &m.content
    else {
        panic!()
    };
    assert_eq!(media, "image");
    assert!(!media_id.is_empty() && mime_type.is_some());

    let InboundEvent::NumberChanged { new_wa_id, .. } = one("system_user_changed_number.json")
    else {
        panic!()
    };
    assert_eq!(new_wa_id.as_deref(), Some("972912345678"));
}

#[tokio::test]
async fn every_message_kind_has_its_typed_content() {
    let at: Timestamp = "2026-03-16T15:00:00Z".parse().unwrap();
    let m = |kind: &str, body: Value| {
        let mut msg = json!({ "from": "56911112222", "id": format!("wamid.{kind}"),
                              "timestamp": "1700000000", "type": kind });
        msg[kind] = body;
        msg
    };
    let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "w", "changes": [{
        "field": "messages", "value": { "metadata": { "phone_number_id": NUMBER }, "messages": [
            m("interactive", json!({ "type": "button_reply", "button_reply": { "id": "PAY", "title": "Pagar" } })),
            m("interactive", json!({ "type": "list_reply", "list_reply": { "id": "P3", "title": "3 cuotas", "description": "x" } })),
            m("button", json!({ "payload": "OPTOUT", "text": "No más mensajes" })),
            m("audio", json!({ "id": "A1", "mime_type": "audio/ogg; codecs=opus" })),
            m("video", json!({ "id": "V1", "mime_type": "video/mp4", "caption": "mira" })),
            m("sticker", json!({ "id": "S1", "mime_type": "image/webp", "animated": false })),
            m("contacts", json!([{ "name": { "formatted_name": "Ana" } }, { "name": { "formatted_name": "Bo" } }])),
            m("reaction", json!({ "message_id": "wamid.sent", "emoji": "" })),
            json!({ "from": "56911112222", "id": "wamid.u", "timestamp": "1700000000", "type": "unsupported",
                    "errors": [{ "code": 131051, "title": "Message type unknown" }] }),
        ] } }] }] });
    let events = whatsapp::events(&serde_json::to_vec(&body).unwrap(), at);
    let contents: Vec<Content> = events
        .into_iter()
        .map(|e| match e.event {
            InboundEvent::Message(m) => m.content,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        contents[0],
        Content::Choice {
            id: "PAY".into(),
            title: "Pagar".into()
        }
    );
    assert_eq!(
        contents[1],
        Content::Choice {
            id: "P3".into(),
            title: "3 cuotas".into()
        }
    );
    assert_eq!(
        contents[2],
        Content::Choice {
            id: "OPTOUT".into(),
            title: "No más mensajes".into()
        }
    );
    for (i, media) in [(3, "audio"), (4, "video"), (5, "sticker")] {
        let Content::Media {
            media: got,
            media_id,
            ..
        } = &contents[i]
        else {
            panic!("{:?}", contents[i])
        };
        assert_eq!((got.as_str(), media_id.is_empty()), (media, false));
    }
    assert_eq!(contents[6], Content::Contacts { count: 2 });
    assert_eq!(
        contents[7],
        Content::Reaction {
            to: "wamid.sent".into(),
            emoji: None
        },
        "an empty emoji is a removal"
    );
    assert!(matches!(
        contents[8],
        Content::Unsupported {
            code: Some(131051),
            ..
        }
    ));
}

#[tokio::test]
async fn unknown_kinds_and_malformed_pieces_do_not_sink_a_batch() {
    let at: Timestamp = "2026-03-16T15:00:00Z".parse().unwrap();
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "w", "changes": [
            { "field": "message_template_status_update", "value": { "event": "APPROVED" } },
            { "field": "messages", "value": {
                "metadata": { "phone_number_id": NUMBER },
                "messages": [
                    { "no_id": true },
                    { "from": "56911112222", "id": "wamid.ok", "timestamp": "1700000000",
                      "type": "poll_v9", "poll_v9": {} },
                    { "from": "56911112222", "id": "wamid.ok2", "timestamp": "1700000000",
                      "type": "text", "text": { "body": "hola" }, "brand_new_field": [1, 2] }
                ],
                "statuses": [{ "status": "delivered" }]
            }},
            { "field": "user_preferences", "value": {
                "metadata": { "phone_number_id": NUMBER },
                "user_preferences": [{ "wa_id": "56911112222", "category": "marketing_messages",
                                       "value": "stop", "timestamp": 1700000000 }]
            }}
        ]}]
    });
    let events = whatsapp::events(&serde_json::to_vec(&body).unwrap(), at);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match &e.event {
            InboundEvent::Unknown { what } => {
                format!("unknown:{}", what.split(':').next().unwrap())
            }
            InboundEvent::Message(m) => format!("message:{}", m.id),
            InboundEvent::Preference { stop, .. } => format!("preference:stop={stop}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "unknown:message_template_status_update",
            "unknown:malformed messages",
            "message:wamid.ok",
            "message:wamid.ok2",
            "unknown:malformed statuses",
            "preference:stop=true",
        ]
    );
    assert_eq!(
        whatsapp::events(b"not json", at).len(),
        1,
        "even garbage gives one event to keep"
    );
}

#[tokio::test]
async fn nothing_is_kept_without_a_valid_signature() {
    let h = Harness::new().await;
    let raw = routed_fixture("text_reply_with_context.json");
    assert_eq!(h.post(&raw, None).await, Err(401));
    assert_eq!(h.post(&raw, Some("wrong")).await, Err(401));
    // The deployment's secret does not verify a number that has its own.
    assert_eq!(h.post(&raw, Some(DEFAULT_SECRET)).await, Err(401));
    assert_eq!(h.queue.depth().await.unwrap(), 0, "nothing queued");
    assert_eq!(h.drain().await, Report::default());
    let key = h.post(&raw, Some(SECRET)).await.expect("accepted");
    // The body travels in the queue message; inbound keeps it before applying it.
    assert_eq!(h.blobs.get(&key).await.unwrap(), None, "not stored twice");
    h.drain().await;
    assert_eq!(
        h.blobs.get(&key).await.unwrap().as_deref(),
        Some(raw.as_slice()),
        "kept as it came"
    );
}

#[tokio::test]
async fn a_delivery_too_large_for_a_queue_message_is_stored_by_the_webhook() {
    let h = Harness::new().await;
    h.debtor("d-1", "+972987654321").await;
    let mut raw: serde_json::Value =
        serde_json::from_slice(&routed_fixture("text_reply_with_context.json")).unwrap();
    // Padding Meta could send (a long text, many changes): over what a message carries.
    raw["padding"] = serde_json::Value::String("x".repeat(cobro_webhook::INLINE_MAX));
    let raw = serde_json::to_vec(&raw).unwrap();
    let key = h.post(&raw, Some(SECRET)).await.expect("accepted");
    assert_eq!(
        h.blobs.get(&key).await.unwrap().as_deref(),
        Some(raw.as_slice()),
        "stored before it was queued"
    );
    let got = h.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1);
    let job: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(job["blob"], key.as_str());
    assert!(
        job.get("body").is_none(),
        "the message carries only the key: {job}"
    );
    assert!(got[0].body.len() < 1024);
    // Applied from the bucket, as a small one is from the message.
    let report = h.inbound.handle(&got[0].body).await.expect("applied");
    assert_eq!(report.messages, 1, "{report:?}");
    h.queue.delete(&got[0].receipt).await.unwrap();
    // A small body is applied once even when its message comes twice (SQS at least once).
    let mut small: Value =
        serde_json::from_slice(&routed_fixture("text_reply_with_context.json")).unwrap();
    small["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.small".into();
    let small = serde_json::to_vec(&small).unwrap();
    let key = h.post(&small, Some(SECRET)).await.unwrap();
    let got = h.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1);
    let message = got[0].body.clone();
    assert!(message.contains("\"body\""), "inline: {message}");
    let first = h.inbound.handle(&message).await.expect("applied");
    let again = h.inbound.handle(&message).await.expect("applied");
    assert_eq!((first.messages, first.duplicates), (1, 0), "{first:?}");
    assert_eq!((again.messages, again.duplicates), (0, 1), "{again:?}");
    h.queue.delete(&got[0].receipt).await.unwrap();
    assert_eq!(
        h.blobs.get(&key).await.unwrap().as_deref(),
        Some(small.as_slice())
    );
}

#[tokio::test]
async fn a_redelivered_message_is_applied_once_and_opens_the_window() {
    let h = Harness::new().await;
    let debtor = h.debtor("d-1", "+972987654321").await;
    let raw = routed_fixture("text_reply_with_context.json");
    h.post(&raw, Some(SECRET)).await.unwrap();
    h.post(&raw, Some(SECRET)).await.unwrap();
    let report = h.drain().await;
    assert_eq!((report.messages, report.duplicates), (1, 1), "{report:?}");
    let conversation = h.conversation(&debtor.id, 10).await;
    assert_eq!(conversation.len(), 1);
    let window = h
        .store
        .last_inbound(&h.tenant, &debtor.id, ChannelKind::Whatsapp)
        .await
        .unwrap();
    assert_eq!(
        window,
        Some(conversation[0].at),
        "the 24-hour window runs from the message"
    );
}

#[tokio::test]
async fn unknown_numbers_and_senders_are_kept_not_dropped() {
    let h = Harness::new().await;
    // A number no tenant has, signed with the deployment's secret: 200, and kept.
    let raw = webhook_fixture("text_reply_with_context.json");
    let other = String::from_utf8(raw).unwrap().replace(NUMBER, "999999999");
    let key = h
        .post(other.as_bytes(), Some(DEFAULT_SECRET))
        .await
        .expect("accepted");
    let report = h.drain().await;
    assert_eq!(report.unrouted, 1, "{report:?}");
    let item = h
        .store
        .table()
        .query(cobro::ports::Query::table(
            "UNROUTED#whatsapp#999999999",
            cobro::ports::SkRange::All,
        ))
        .await
        .unwrap();
    assert_eq!(item.items[0]["blob"], key.as_str());
    // A sender who is no debtor: kept as unmatched.
    h.post(
        &routed_fixture("text_reply_with_context.json"),
        Some(SECRET),
    )
    .await
    .unwrap();
    assert_eq!(h.drain().await.unmatched, 1);
}

/// What is kept of an unrouted or unhandled event is keyed on when the delivery came, not when
/// it was applied: a queue redelivery a minute later keeps nothing twice.
#[tokio::test]
async fn an_unrouted_or_unhandled_event_delivered_again_is_kept_once() {
    let mut h = Harness::new().await;
    let clock = on_a_moving_clock(&mut h);
    let raw = webhook_fixture("text_reply_with_context.json");
    let unrouted = String::from_utf8(raw).unwrap().replace(NUMBER, "999999999");
    h.post(unrouted.as_bytes(), Some(DEFAULT_SECRET))
        .await
        .unwrap();
    let order = serde_json::to_vec(&json!({ "object": "whatsapp_business_account", "entry": [{
        "id": "w", "changes": [{ "field": "business_capability_update",
        "value": { "metadata": { "phone_number_id": NUMBER }, "max_daily_conversation_per_phone": 1000 } }] }] }))
    .unwrap();
    h.post(&order, Some(SECRET)).await.unwrap();
    let got = h.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 2);
    for _ in 0..2 {
        for m in &got {
            h.inbound.handle(&m.body).await.unwrap();
        }
        clock.advance(jiff::SignedDuration::from_mins(1));
    }
    let kept = |pk: String| {
        let table = h.store.table();
        async move {
            table
                .query(cobro::ports::Query::table(pk, cobro::ports::SkRange::All))
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert_eq!(kept("UNROUTED#whatsapp#999999999".into()).await, 1);
    assert_eq!(kept(format!("T#{}#UNHANDLED", h.tenant)).await, 1);
}

#[tokio::test]
async fn a_thousand_updates_in_three_megabytes_are_all_applied() {
    let h = Harness::new().await;
    let debtor = h.debtor("d-1", "+56911112222").await;
    let raw = largest_delivery();
    h.post(&raw, Some(SECRET)).await.expect("accepted");
    let report = h.drain().await;
    assert_eq!(report.messages, 600, "{report:?}");
    assert_eq!(report.statuses_unmatched, 400, "{report:?}");
    let conversation = h.conversation(&debtor.id, 1000).await;
    assert_eq!(conversation.len(), 600);
}

#[tokio::test]
async fn stop_and_baja_withdraw_consent_and_a_crm_update_does_not_undo_it() {
    let h = Harness::new().await;
    let debtor = h.debtor("d-1", "+56911112222").await;
    let text = |id: &str, body: &str| message_delivery(id, "1773673200", text(body));
    // Not a keyword: a sentence that merely mentions it.
    h.post(
        &text("wamid.1", "no quiero que me den de baja todavía"),
        Some(SECRET),
    )
    .await
    .unwrap();
    assert_eq!(h.drain().await.opt_changes, 0);
    h.post(&text("wamid.2", "  Bája! "), Some(SECRET))
        .await
        .unwrap();
    assert_eq!(h.drain().await.opt_changes, 1);
    let now = h.stored_debtor(&debtor.id).await;
    assert!(
        !now.has_consent(ChannelKind::Whatsapp),
        "opted out on WhatsApp"
    );
    assert!(
        now.has_consent(ChannelKind::Sms),
        "only the channel it came on"
    );
    let published = h.published().await;
    assert!(
        published
            .iter()
            .any(|(t, d)| t == "OptedOut" && d["channel"] == "whatsapp"),
        "{published:?}"
    );
    // The CRM restates the debtor as it had it: the opt-out stands.
    h.store.upsert_debtor(&debtor).await.unwrap();
    let after = h.stored_debtor(&debtor.id).await;
    assert!(
        !after.has_consent(ChannelKind::Whatsapp),
        "{:?}",
        after.consents
    );
    // The debtor opts back in.
    h.post(&text("wamid.3", "ALTA"), Some(SECRET))
        .await
        .unwrap();
    h.drain().await;
    let back = h.stored_debtor(&debtor.id).await;
    assert!(back.has_consent(ChannelKind::Whatsapp));
}

#[tokio::test]
async fn an_inbound_sms_stop_withdraws_sms_consent() {
    let h = Harness::new().await;
    let debtor = h.debtor("d-1", "+56911112222").await;
    // As SNS delivers it to SQS: the notification envelope around End User Messaging's JSON.
    let message = json!({
        "originationNumber": "+56911112222", "destinationNumber": "+15550001111",
        "messageKeyword": "STOP", "messageBody": "STOP", "inboundMessageId": "sms-1",
        "previousPublishedMessageId": "x"
    });
    let envelope = json!({ "Type": "Notification", "MessageId": "n-1",
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:cobro-dev-inbound-sms",
        "Message": message.to_string(), "Timestamp": "2026-03-16T15:00:00.000Z" });
    h.enqueue(envelope.to_string()).await;
    h.enqueue(envelope.to_string()).await;
    let report = h.drain().await;
    assert_eq!(
        (report.messages, report.duplicates, report.opt_changes),
        (1, 1, 1),
        "{report:?}"
    );
    let d = h.stored_debtor(&debtor.id).await;
    assert!(!d.has_consent(ChannelKind::Sms));
    assert!(d.has_consent(ChannelKind::Whatsapp));
    // The STOP is confirmed; a text the number sends later gets nothing on SMS (a text to a
    // number that sent STOP is allowed once, right after it), not the opted-out notice.
    let reply = |id: &'static str| {
        let (store, t, d) = (h.store.clone(), h.tenant.clone(), debtor.id.clone());
        async move { store.reply(&t, &d, id).await.unwrap() }
    };
    assert!(reply("sms-1#0").await.is_some(), "the STOP's confirmation");
    let later = json!({ "originationNumber": "+56911112222", "destinationNumber": "+15550001111",
        "messageBody": "hola, cuanto debo", "inboundMessageId": "sms-3" });
    h.enqueue(later.to_string()).await;
    assert_eq!(h.drain().await.messages, 1);
    assert!(
        reply("sms-3#0").await.is_none(),
        "nothing to a number that sent STOP"
    );
    // An SMS to a number no tenant has is kept.
    let stray = json!({ "originationNumber": "+56911112222", "destinationNumber": "+19999999999",
        "messageBody": "hola", "inboundMessageId": "sms-2" });
    h.enqueue(stray.to_string()).await;
    assert_eq!(h.drain().await.unrouted, 1);
}

// ---------------------------------------------------------------------------------------------
// Claims on inbound messages: a run that dies after claiming a message does not make it a
// duplicate, and an invocation running out of time leaves the rest of its batch to come again.
// ---------------------------------------------------------------------------------------------

/// The debtor's consent on `channel` as stored now.
async fn consents(h: &Harness, debtor: &DebtorId, channel: ChannelKind) -> bool {
    h.stored_debtor(debtor).await.has_consent(channel)
}

/// Puts the harness's processor on a clock the test moves; returns it.
fn on_a_moving_clock(h: &mut Harness) -> Arc<FixedClock> {
    let clock = Arc::new(FixedClock::at("2026-03-16T15:00:00Z".parse().unwrap()));
    h.inbound.clock = clock.clone();
    clock
}

/// Queue messages as a Lambda batch hands them over.
fn queue_records(got: &[Received]) -> Vec<cobro_inbound::QueueRecord<'_>> {
    got.iter()
        .map(|m| cobro_inbound::QueueRecord {
            message_id: &m.message_id,
            body: &m.body,
            sent_at: None,
        })
        .collect()
}

#[tokio::test]
async fn a_message_claimed_by_a_run_that_died_is_retried_then_applied_once_the_lease_ran_out() {
    use cobro::repo::{SeenClaim, SEEN_LEASE};
    let mut h = Harness::new().await;
    let clock = on_a_moving_clock(&mut h);
    let debtor = h.debtor("d-1", "+56911112222").await;
    // A run claimed the message and died (killed, timed out, or its claim not released because
    // the store failed): nothing else of it happened.
    let claim = h
        .store
        .claim_seen(&h.tenant, "whatsapp", "wamid.died", clock.now())
        .await
        .unwrap();
    assert!(matches!(claim, SeenClaim::Claimed(_)), "{claim:?}");
    let raw = message_delivery("wamid.died", "1773673200", text("STOP"));
    h.post(&raw, Some(SECRET)).await.unwrap();
    let got = h
        .queue
        .receive(1, Duration::from_secs(0))
        .await
        .unwrap()
        .remove(0);
    // Redelivered while the claim's lease runs: a failure to receive again, not a duplicate.
    clock.advance(SEEN_LEASE - jiff::SignedDuration::from_secs(1));
    let err = h.inbound.handle(&got.body).await.unwrap_err();
    assert!(
        matches!(err, cobro_inbound::InboundError::InProgress(1)),
        "{err}"
    );
    assert!(consents(&h, &debtor.id, ChannelKind::Whatsapp).await);
    // Once the lease ran out, the redelivery takes the claim over and applies the message.
    clock.advance(jiff::SignedDuration::from_secs(2));
    let report = h.inbound.handle(&got.body).await.expect("applied");
    assert_eq!(
        (report.messages, report.opt_changes, report.duplicates),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(!consents(&h, &debtor.id, ChannelKind::Whatsapp).await);
    let conversation = h.conversation(&debtor.id, 10).await;
    assert_eq!(conversation.len(), 1);
    // Done: any later delivery is a duplicate, however late.
    clock.advance(SEEN_LEASE * 2);
    let report = h.inbound.handle(&got.body).await.expect("a duplicate");
    assert_eq!((report.messages, report.duplicates), (0, 1), "{report:?}");
}

#[tokio::test]
async fn a_failed_message_is_released_for_its_redelivery_and_a_held_one_fails_its_record() {
    let mut h = Harness::new().await;
    let clock = on_a_moving_clock(&mut h);
    let debtor = h.debtor("d-1", "+56911112222").await;
    // The first try fails on the bus: its claim is released, so the redelivery applies it at
    // once, without waiting out the lease.
    let raw = message_delivery("wamid.retried", "1773673200", text("STOP"));
    let got = applied_while_the_bus_refuses(&mut h, &raw).await;
    let report = h.inbound.handle(&got.body).await.expect("applied");
    assert_eq!((report.messages, report.duplicates), (1, 0), "{report:?}");
    assert!(!consents(&h, &debtor.id, ChannelKind::Whatsapp).await);
    h.queue.delete(&got.receipt).await.unwrap();
    // In a batch, a message another run holds is a batch item failure; the others are applied.
    h.store
        .claim_seen(&h.tenant, "whatsapp", "wamid.held", clock.now())
        .await
        .unwrap();
    for (id, ts) in [("wamid.held", "1773673300"), ("wamid.free", "1773673400")] {
        let raw = message_delivery(id, ts, text("hola"));
        h.post(&raw, Some(SECRET)).await.unwrap();
    }
    let got = h.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    let records = queue_records(&got);
    let deadline = clock.now() + jiff::SignedDuration::from_secs(30);
    let failed = h.inbound.handle_batch(&records, Some(deadline)).await;
    let held = got.iter().find(|m| m.body.contains("wamid.held")).unwrap();
    assert_eq!(failed, [held.message_id.as_str()]);
    let conversation = h.conversation(&debtor.id, 10).await;
    let ids: Vec<&str> = conversation.iter().map(|m| m.message_id.as_str()).collect();
    assert!(
        ids.contains(&"wamid.free") && !ids.contains(&"wamid.held"),
        "{ids:?}"
    );
}

#[tokio::test]
async fn records_left_when_the_invocation_is_nearly_out_of_time_are_not_started() {
    let mut h = Harness::new().await;
    let clock = on_a_moving_clock(&mut h);
    let debtor = h.debtor("d-1", "+56911112222").await;
    let raw = message_delivery("wamid.late", "1773673200", text("STOP"));
    h.post(&raw, Some(SECRET)).await.unwrap();
    let got = h.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    let records = queue_records(&got);
    let nearly_up = clock.now() + cobro_inbound::RECORD_MARGIN - jiff::SignedDuration::from_secs(1);
    let failed = h.inbound.handle_batch(&records, Some(nearly_up)).await;
    assert_eq!(
        failed,
        [got[0].message_id.as_str()],
        "reported to come again"
    );
    assert!(
        consents(&h, &debtor.id, ChannelKind::Whatsapp).await,
        "not started"
    );
    // With time enough, the same record is applied.
    let failed = h
        .inbound
        .handle_batch(
            &records,
            Some(nearly_up + jiff::SignedDuration::from_secs(2)),
        )
        .await;
    assert!(failed.is_empty(), "{failed:?}");
    assert!(!consents(&h, &debtor.id, ChannelKind::Whatsapp).await);
}
// ---------------------------------------------------------------------------------------------
// An inbound SMS received again after a partial failure is the same message: its time is the
// delivery's (SNS's `Timestamp`, else SQS's `SentTimestamp`), not when it was processed.
// ---------------------------------------------------------------------------------------------

/// The SNS notification of an inbound SMS from the harness's debtor, as SQS delivers it.
fn sms_notification(id: &str, body: &str, sns_timestamp: &str) -> String {
    let message = json!({
        "originationNumber": "+56911112222", "destinationNumber": "+15550001111",
        "messageKeyword": "KEYWORD_X", "messageBody": body, "inboundMessageId": id
    });
    json!({ "Type": "Notification", "MessageId": format!("n-{id}"),
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:cobro-dev-inbound-sms",
        "Message": message.to_string(), "Timestamp": sns_timestamp })
    .to_string()
}

/// The harness with an outbound queue that refuses its first send (the bot's reply); returns
/// the queue behind it.
fn replies_fail_once(h: &mut Harness) -> Arc<SqliteQueue> {
    let outbound = Arc::new(
        SqliteStore::open_in_memory()
            .unwrap()
            .queue("outbound", None),
    );
    h.inbound.outbound = Some(cobro_tests::flaky::FlakyQueue::new(outbound.clone(), 1));
    outbound
}

/// What the debtor's STOP by SMS left: conversation rows, SMS opt-outs on record, and the
/// distinct `OptedOut` events published (by event id).
async fn stop_records(h: &Harness, debtor: &DebtorId) -> (usize, usize, usize) {
    let conversation = h.conversation(debtor, 10).await;
    let d = h.stored_debtor(debtor).await;
    let opt_outs = d
        .consents
        .iter()
        .filter(|c| c.channel == ChannelKind::Sms && !c.granted)
        .count();
    let events: std::collections::HashSet<String> = h
        .published()
        .await
        .iter()
        .filter(|(t, _)| t == "OptedOut")
        .map(|(t, d)| cobro::events::webhook::event_id(t, d))
        .collect();
    (conversation.len(), opt_outs, events.len())
}

#[tokio::test]
async fn an_inbound_sms_received_again_after_a_failure_is_recorded_once() {
    let mut h = Harness::new().await;
    let clock = on_a_moving_clock(&mut h);
    let outbound = replies_fail_once(&mut h);
    let debtor = h.debtor("d-1", "+56911112222").await;
    let notification = sms_notification("sms-again", "STOP", "2026-03-16T14:59:58.120Z");
    h.enqueue(notification).await;
    let got = h
        .queue
        .receive(1, Duration::from_secs(30))
        .await
        .unwrap()
        .remove(0);
    // The opt-out is recorded, then queueing the bot's confirmation fails.
    let err = h.inbound.handle(&got.body).await.unwrap_err();
    assert!(err.to_string().contains("queue"), "{err}");
    // Received again minutes later: the same message, at the same time.
    clock.advance(jiff::SignedDuration::from_mins(3));
    let report = h.inbound.handle(&got.body).await.expect("applied");
    assert_eq!((report.messages, report.opt_changes), (1, 1), "{report:?}");
    assert_eq!(stop_records(&h, &debtor.id).await, (1, 1, 1));
    let conversation = h.conversation(&debtor.id, 10).await;
    assert_eq!(conversation[0].at.to_string(), "2026-03-16T14:59:58.12Z");
    let queued = outbound.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(queued.len(), 1, "the confirmation, queued once");
}

#[tokio::test]
async fn a_bare_inbound_sms_takes_its_time_from_the_queue_message() {
    let mut h = Harness::new().await;
    let clock = on_a_moving_clock(&mut h);
    replies_fail_once(&mut h);
    let debtor = h.debtor("d-1", "+56911112222").await;
    // SNS's raw message delivery: End User Messaging's JSON alone, with no time in it.
    let bare = json!({ "originationNumber": "+56911112222", "destinationNumber": "+15550001111",
        "messageBody": "STOP", "inboundMessageId": "sms-bare" })
    .to_string();
    let sent_at: Timestamp = "2026-03-16T14:59:50Z".parse().unwrap();
    let record = cobro_inbound::QueueRecord {
        message_id: "q-bare",
        body: &bare,
        sent_at: Some(sent_at),
    };
    let deadline = clock.now() + jiff::SignedDuration::from_secs(30);
    let failed = h.inbound.handle_batch(&[record], Some(deadline)).await;
    assert_eq!(failed, ["q-bare"], "the bot's reply was not queued");
    clock.advance(jiff::SignedDuration::from_mins(3));
    let deadline = clock.now() + jiff::SignedDuration::from_secs(30);
    let failed = h.inbound.handle_batch(&[record], Some(deadline)).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(stop_records(&h, &debtor.id).await, (1, 1, 1));
    let conversation = h.conversation(&debtor.id, 10).await;
    assert_eq!(conversation[0].at, sent_at);
}
// ---------------------------------------------------------------------------------------------
// Opt-out buttons: read by their payload (stable), whatever their label says.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_template_opt_out_button_withdraws_whatsapp_consent_by_its_payload() {
    let h = Harness::new().await;
    let debtor = h.debtor("d-1", "+56911112222").await;
    // A template's quick reply, as Meta sends it: the payload cobro chose, the label shown.
    let button = json!({ "type": "button",
        "button": { "payload": "OPTOUT", "text": "Stop promotions" } });
    h.post(
        &message_delivery("wamid.optout", "1773673200", button),
        Some(SECRET),
    )
    .await
    .unwrap();
    assert_eq!(h.drain().await.opt_changes, 1);
    let d = h.stored_debtor(&debtor.id).await;
    assert!(!d.has_consent(ChannelKind::Whatsapp), "{:?}", d.consents);
    assert!(
        d.has_consent(ChannelKind::Sms),
        "only the channel it came on"
    );
    let withdrawn = d
        .consents
        .iter()
        .find(|c| c.channel == ChannelKind::Whatsapp && !c.granted)
        .expect("the opt-out on record");
    assert_eq!(withdrawn.source, "keyword:button:OPTOUT");
    assert_eq!(withdrawn.at.to_string(), "2026-03-16T15:00:00Z");
    let published = h.published().await;
    let (_, event) = published
        .iter()
        .find(|(t, _)| t == "OptedOut")
        .expect("announced");
    assert_eq!(
        (event["channel"].as_str(), event["message_id"].as_str()),
        (Some("whatsapp"), Some("wamid.optout"))
    );
}

#[test]
fn buttons_are_read_for_opt_outs_by_payload_then_by_label() {
    use cobro::compliance::OptKeyword;
    let said = |id: &str, title: &str| {
        Content::Choice {
            id: id.into(),
            title: title.into(),
        }
        .opt_signal()
        .map(|s| (s.keyword, s.said))
    };
    let out = |said: &str| Some((OptKeyword::OptOut, said.to_string()));
    // Opt-out payloads in any case or spelling, whatever the label says.
    assert_eq!(said("OPTOUT", "Stop promotions"), out("button:OPTOUT"));
    assert_eq!(said("opt_out", "No gracias"), out("button:OPT_OUT"));
    assert_eq!(said("Baja", "Darme de baja"), out("button:BAJA"));
    assert_eq!(said("stop", "Parar"), out("button:STOP"));
    // Meta's marketing opt-out button, whatever payload it came with.
    assert_eq!(said("", "Stop promotions"), out("button:STOP PROMOTIONS"));
    assert_eq!(
        said("Stop promotions", "Stop promotions"),
        out("button:STOP PROMOTIONS")
    );
    // Else the label is read as a text would be.
    assert_eq!(said("x-1", "BAJA"), out("button:BAJA"));
    assert_eq!(
        said("x-2", "ALTA"),
        Some((OptKeyword::OptIn, "button:ALTA".to_string()))
    );
    // Ordinary choices are no opt-out.
    assert_eq!(said("SIM", "SIM"), None);
    assert_eq!(said("menu:pay", "Pagar"), None);
    assert_eq!(said("STOPPED_PAYMENTS", "Ya pagué"), None);
}
/// A status report on the message `id` sent to the debtor of `whatsapp_attempt_sent`.
fn status(id: &str, status: &str, timestamp: &str) -> Value {
    json!({ "id": id, "status": status, "timestamp": timestamp, "recipient_id": "56911112222" })
}

/// The raw body of a WhatsApp delivery of these statuses to the tenant's number.
fn statuses_delivery(statuses: Vec<Value>) -> Vec<u8> {
    let delivery = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "w", "changes": [{
        "field": "messages", "value": { "metadata": { "phone_number_id": NUMBER }, "statuses": statuses } }] }] });
    serde_json::to_vec(&delivery).unwrap()
}

/// A debtor, an account and a WhatsApp contact attempt sent as `provider_id`.
async fn whatsapp_attempt_sent(
    h: &Harness,
    provider_id: &str,
) -> (cobro::domain::Account, cobro::domain::ContactAttempt) {
    let debtor = h.debtor("d-1", "+56911112222").await;
    let now: Timestamp = "2026-03-16T15:00:00Z".parse().unwrap();
    let account = fixtures::open_account(&h.tenant, "A-1", &debtor.id, 1000, "2026-03-13");
    let (account, _) = h.store.upsert_account(&account, None).await.unwrap();
    let attempt = fixtures::queued_reminder(&account, &debtor.phone, now, "Hola");
    let later = now
        .checked_add(jiff::SignedDuration::from_mins(10))
        .unwrap();
    h.store
        .commit_contact(&account, &attempt, later, None)
        .await
        .unwrap();
    let cobro::repo::Claim::Claimed(held) = h
        .store
        .claim_attempt(
            &h.tenant,
            &account.id,
            &attempt.decision_id,
            now,
            jiff::SignedDuration::from_mins(5),
        )
        .await
        .unwrap()
    else {
        panic!("claimed")
    };
    h.store
        .finish_sent(&held, ChannelKind::Whatsapp, provider_id)
        .await
        .unwrap();
    (account, attempt)
}

#[tokio::test]
async fn a_message_whatsapp_reports_undeliverable_goes_out_on_the_next_channel() {
    use cobro::domain::AttemptStatus;
    let mut h = Harness::new().await;
    let outbound = Arc::new(
        SqliteStore::open_in_memory()
            .unwrap()
            .queue("outbound", None),
    );
    h.inbound.outbound = Some(outbound.clone());
    let (account, attempt) = whatsapp_attempt_sent(&h, "wamid.sent1").await;
    let mut failed = status("wamid.sent1", "failed", "1773673300");
    failed["errors"] = json!([{ "code": 131026, "title": "Message undeliverable",
                                "error_data": { "details": "not a WhatsApp user" } }]);
    let raw = statuses_delivery(vec![failed]);
    h.post(&raw, Some(SECRET)).await.unwrap();
    h.post(&raw, Some(SECRET)).await.unwrap();
    let report = h.drain().await;
    assert_eq!((report.statuses, report.duplicates), (1, 1), "{report:?}");
    let now_attempt = h
        .store
        .attempt(&h.tenant, &account.id, &attempt.decision_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now_attempt.status, AttemptStatus::Queued, "reopened");
    assert_eq!(
        now_attempt.channel,
        ChannelKind::Sms,
        "for the next channel"
    );
    assert_eq!(now_attempt.error_code, Some(131026));
    let queued = outbound.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        queued.len(),
        1,
        "one message to send, however often the status came"
    );
    let events = h.published().await;
    let (_, d) = events.iter().find(|(t, _)| t == "MessageFailed").unwrap();
    assert_eq!(d["error_class"], "unreachable");
}

/// A status reporting an account-wide failure (131031: the business account is locked) stops
/// WhatsApp for the tenant, as a refused send does, and raises the alarm once, however often
/// the status comes.
#[tokio::test]
async fn a_status_reporting_the_account_locked_stops_whatsapp_for_the_tenant() {
    let h = Harness::new().await;
    whatsapp_attempt_sent(&h, "wamid.sent3").await;
    let mut failed = status("wamid.sent3", "failed", "1773673300");
    failed["errors"] = json!([{ "code": 131031, "title": "Business Account locked" }]);
    let raw = statuses_delivery(vec![failed]);
    h.post(&raw, Some(SECRET)).await.unwrap();
    h.post(&raw, Some(SECRET)).await.unwrap();
    h.drain().await;
    let stops = h.store.channel_stops(&h.tenant).await.unwrap();
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0].channel, ChannelKind::Whatsapp);
    assert_eq!(stops[0].code, Some(131031));
    assert!(stops[0].announced);
    let events = h.published().await;
    let alarms: Vec<_> = events
        .iter()
        .filter(|(t, _)| t == "ChannelStopped")
        .collect();
    assert_eq!(alarms.len(), 1, "{events:?}");
    assert_eq!(alarms[0].1["channel"], "whatsapp");
    let (_, d) = events.iter().find(|(t, _)| t == "MessageFailed").unwrap();
    assert_eq!(d["error_class"], "stop_tenant");
}

#[tokio::test]
async fn a_status_whose_announcement_failed_is_announced_when_it_comes_again() {
    let mut h = Harness::new().await;
    let (_, attempt) = whatsapp_attempt_sent(&h, "wamid.sent2").await;
    let delivered = statuses_delivery(vec![status("wamid.sent2", "delivered", "1773673300")]);
    // The attempt moves, then the announcement fails: the queue message is not done with.
    let got = applied_while_the_bus_refuses(&mut h, &delivered).await;
    let moved = h
        .store
        .attempt(&h.tenant, &attempt.account, &attempt.decision_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.delivery.as_deref(), Some("delivered"));
    assert!(h.published().await.is_empty());
    // Delivered again (by SQS, or by Meta): the status is a duplicate, and announced now.
    let report = h.inbound.handle(&got.body).await.unwrap();
    assert_eq!((report.statuses, report.duplicates), (0, 1), "{report:?}");
    let events = h.published().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "MessageDelivered");
    assert_eq!(events[0].1["decision_id"], attempt.decision_id.to_string());
    // Again: the same details, so the same event id, which the CRM's webhook delivery dedupes.
    h.inbound.handle(&got.body).await.unwrap();
    let again = h.published().await;
    assert_eq!(
        cobro::events::webhook::event_id(&again[0].0, &again[0].1),
        cobro::events::webhook::event_id(&events[0].0, &events[0].1)
    );
    h.queue.delete(&got.receipt).await.unwrap();
    // A late, older status is not announced.
    let sent = statuses_delivery(vec![status("wamid.sent2", "sent", "1773673200")]);
    h.post(&sent, Some(SECRET)).await.unwrap();
    let report = h.drain().await;
    assert_eq!(report.duplicates, 1);
    assert!(h.published().await.is_empty());
}

#[tokio::test]
async fn api_gateway_base64_bodies_are_verified_on_their_decoded_bytes() {
    use base64::Engine;
    use tower::ServiceExt;
    let h = Harness::new().await;
    let raw = routed_fixture("text_reply_with_context.json");
    let sig = signature::sign(SECRET.as_bytes(), &raw);
    // The event API Gateway (HTTP API, payload 2.0) hands the Lambda for a POST.
    let event = json!({
        "version": "2.0", "routeKey": "POST /webhooks/whatsapp", "rawPath": "/webhooks/whatsapp",
        "rawQueryString": "", "headers": { "content-type": "application/json", "x-hub-signature-256": sig },
        "requestContext": { "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "http": { "method": "POST", "path": "/webhooks/whatsapp",
            "protocol": "HTTP/1.1", "sourceIp": "173.252.0.1", "userAgent": "facebookexternalua" },
            "requestId": "r1", "routeKey": "POST /webhooks/whatsapp", "stage": "$default",
            "time": "16/Mar/2026:15:00:00 +0000", "timeEpoch": 1773673200000u64 },
        "body": base64::engine::general_purpose::STANDARD.encode(&raw),
        "isBase64Encoded": true
    });
    let request = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
    let (parts, body) = request.into_parts();
    let request = axum::http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
    let webhook = Webhook {
        store: h.store.clone(),
        blobs: h.blobs.clone(),
        inbound: h.queue.clone(),
        clock: Arc::new(FixedClock::at("2026-03-16T15:00:00Z".parse().unwrap())),
        whatsapp: deployment(""),
        secrets: h.secrets.clone(),
        secrets_prefix: String::new(),
    };
    let response = cobro_webhook::router(Arc::new(webhook))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.queue.depth().await.unwrap(), 1, "kept and queued");
}

#[tokio::test]
async fn a_user_known_only_by_their_whatsapp_id_is_found_once_seen_with_their_number() {
    let h = Harness::new().await;
    let debtor = h.debtor("d-1", "+56911112222").await;
    let message = |id: &str, from: Option<&str>| {
        let mut m = json!({ "id": id, "from_user_id": "CL.123456789", "timestamp": "1773673200",
                            "type": "text", "text": { "body": "hola" } });
        if let Some(f) = from {
            m["from"] = f.into();
        }
        serde_json::to_vec(
            &json!({ "object": "whatsapp_business_account", "entry": [{ "id": "w",
            "changes": [{ "field": "messages", "value": { "metadata": { "phone_number_id": NUMBER },
                "contacts": [{ "profile": { "name": "Ana" }, "user_id": "CL.123456789" }],
                "messages": [m] } }] }] }),
        )
        .unwrap()
    };
    // Only the user id, never seen: kept as unmatched.
    h.post(&message("wamid.1", None), Some(SECRET))
        .await
        .unwrap();
    assert_eq!(h.drain().await.unmatched, 1);
    // Both: matched by number, and the id is learned.
    h.post(&message("wamid.2", Some("56911112222")), Some(SECRET))
        .await
        .unwrap();
    assert_eq!(h.drain().await.messages, 1);
    // Only the id again: now it is the debtor.
    h.post(&message("wamid.3", None), Some(SECRET))
        .await
        .unwrap();
    assert_eq!(h.drain().await.messages, 1);
    let conversation = h.conversation(&debtor.id, 10).await;
    assert_eq!(conversation.len(), 2);
}

#[tokio::test]
async fn asking_not_to_be_contacted_at_all_withdraws_every_channel() {
    let h = Harness::new().await;
    let debtor = h.debtor("d-1", "+56911112222").await;
    let body = message_delivery("wamid.all", "1773673200", text("¡No me contacten más!"));
    h.post(&body, Some(SECRET)).await.unwrap();
    assert_eq!(h.drain().await.opt_changes, 1);
    let d = h.stored_debtor(&debtor.id).await;
    for c in [ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email] {
        assert!(!d.has_consent(c), "{c:?} withdrawn");
    }
    assert_eq!(
        cobro::compliance::classify_keyword("Não me contatem"),
        Some(cobro::compliance::OptKeyword::OptOutAll)
    );
    assert_eq!(
        cobro::compliance::classify_keyword("SAIR"),
        Some(cobro::compliance::OptKeyword::OptOut)
    );
    assert_eq!(cobro::compliance::classify_keyword("quiero pagar"), None);
}

#[tokio::test]
async fn a_correctly_signed_post_always_gets_200_even_when_it_is_not_a_webhook() {
    let h = Harness::new().await;
    let mut report = Report::default();
    for body in [
        &b"not json at all"[..],
        b"{\"object\":\"page\"}",
        b"[]",
        b"{\"entry\":[{\"changes\":[{}]}]}",
    ] {
        let key = h.post(body, Some(DEFAULT_SECRET)).await.expect("accepted");
        let applied = h.drain().await;
        report.messages += applied.messages;
        report.statuses += applied.statuses;
        report.unrouted += applied.unrouted;
        assert_eq!(
            h.blobs.get(&key).await.unwrap().as_deref(),
            Some(body),
            "kept as it came"
        );
    }
    assert_eq!(report.messages + report.statuses, 0, "{report:?}");
    assert!(report.unrouted >= 1, "kept for inspection: {report:?}");
}

#[tokio::test]
async fn the_statuses_of_one_delivery_are_announced_in_one_publish() {
    let mut h = Harness::new().await;
    let bus = FlakyBus::new(h.inbound.bus.clone(), 0);
    h.inbound.bus = bus.clone();
    whatsapp_attempt_sent(&h, "wamid.sent3").await;
    let delivery = statuses_delivery(vec![
        status("wamid.sent3", "delivered", "1773673300"),
        status("wamid.sent3", "read", "1773673400"),
    ]);
    h.post(&delivery, Some(SECRET)).await.unwrap();
    let report = h.drain().await;
    assert_eq!(report.statuses, 2, "{report:?}");
    let kinds: Vec<String> = h.published().await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(kinds, ["MessageDelivered", "MessageRead"]);
    assert_eq!(bus.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// The raw body of a WhatsApp delivery of one message from +56 9 1111 2222 (the debtor of
/// `whatsapp_attempt_sent`) to the tenant's number: `content` is the message's type and body.
fn message_delivery(id: &str, timestamp: &str, content: Value) -> Vec<u8> {
    let mut message = json!({ "from": "56911112222", "id": id, "timestamp": timestamp });
    for (k, v) in content.as_object().unwrap() {
        message[k] = v.clone();
    }
    let delivery = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "w", "changes": [{
        "field": "messages", "value": { "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "972123456789", "phone_number_id": NUMBER },
            "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "56911112222" }],
            "messages": [message] } }] }] });
    serde_json::to_vec(&delivery).unwrap()
}

fn text(body: &str) -> Value {
    json!({ "type": "text", "text": { "body": body } })
}

fn choice(id: &str) -> Value {
    json!({ "type": "interactive", "interactive": { "type": "button_reply",
        "button_reply": { "id": id, "title": id } } })
}

/// Posts `raw` and applies it once with the bus refusing to publish: the try fails and
/// announces nothing. Returns the queue message, not done with.
async fn applied_while_the_bus_refuses(h: &mut Harness, raw: &[u8]) -> Received {
    let bus = h.inbound.bus.clone();
    h.inbound.bus = FlakyBus::new(bus.clone(), 1);
    h.post(raw, Some(SECRET)).await.unwrap();
    let mut got = h.queue.receive(1, Duration::from_secs(0)).await.unwrap();
    let err = h.inbound.handle(&got[0].body).await.unwrap_err();
    assert!(err.to_string().contains("bus"), "{err}");
    assert!(h.published().await.is_empty());
    h.inbound.bus = bus;
    got.remove(0)
}

/// Applies one queued delivery with the bus refusing its first publish, then again twice as
/// SQS would redeliver it: the first try fails on the bus and announces nothing; the second
/// announces (what it returns); the third finds the message applied and announces nothing.
async fn announced_after_a_failed_publish(h: &mut Harness, raw: &[u8]) -> Vec<(String, Value)> {
    let got = applied_while_the_bus_refuses(h, raw).await;
    h.inbound.handle(&got.body).await.unwrap();
    let first = h.published().await;
    let report = h.inbound.handle(&got.body).await.unwrap();
    assert_eq!(report.duplicates, 1, "{report:?}");
    assert!(h.published().await.is_empty());
    h.queue.delete(&got.receipt).await.unwrap();
    first
}

#[tokio::test]
async fn a_handoff_whose_announcement_failed_is_announced_when_the_message_comes_again() {
    let mut h = Harness::new().await;
    let (_, attempt) = whatsapp_attempt_sent(&h, "wamid.out1").await;
    let raw = message_delivery(
        "wamid.in1",
        "1773673300",
        text("quiero hablar con una persona"),
    );
    let first = announced_after_a_failed_publish(&mut h, &raw).await;
    let kinds: Vec<&str> = first.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["HandoffRequested"], "{first:?}");
    assert_eq!(first[0].1["debtor"], attempt.debtor.to_string());
    let open = h.store.handoff(&h.tenant, &attempt.debtor).await.unwrap();
    assert!(open.is_some_and(|o| o.opened_at.to_string() == "2026-03-16T15:01:40Z"));
    // A later ask while that one is open is not announced again.
    let later = message_delivery(
        "wamid.in2",
        "1773673400",
        text("quiero hablar con una persona"),
    );
    h.post(&later, Some(SECRET)).await.unwrap();
    h.drain().await;
    assert!(h.published().await.is_empty());
}

/// The debtor of `whatsapp_attempt_sent` passes the identity check and asks to promise; the
/// bot waits for the day.
async fn asked_to_promise(h: &Harness) -> cobro::domain::Account {
    let (account, attempt) = whatsapp_attempt_sent(h, "wamid.out1").await;
    let facts = cobro::chat::IdentityFacts::from_raw(
        &h.tenant,
        &attempt.debtor,
        Some("12.345.678-5"),
        None,
    )
    .unwrap();
    h.store
        .put_identity_facts(&h.tenant, &attempt.debtor, &facts)
        .await
        .unwrap();
    for (n, content) in [text("saldo"), text("6785"), choice("menu:promise")]
        .into_iter()
        .enumerate()
    {
        let ts = (1773673300 + 10 * n).to_string();
        h.post(
            &message_delivery(&format!("wamid.in{n}"), &ts, content),
            Some(SECRET),
        )
        .await
        .unwrap();
        h.drain().await;
    }
    h.published().await;
    account
}

#[tokio::test]
async fn a_promise_whose_announcement_failed_is_announced_when_the_message_comes_again() {
    let mut h = Harness::new().await;
    let account = asked_to_promise(&h).await;
    let raw = message_delivery("wamid.in9", "1773673400", text("mañana"));
    let first = announced_after_a_failed_publish(&mut h, &raw).await;
    let kinds: Vec<&str> = first.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["PromiseMade"], "{first:?}");
    assert_eq!(first[0].1["account"], account.id.to_string());
    assert_eq!(first[0].1["by"], "2026-03-17");
    let made = h
        .account(&account.id)
        .await
        .promise
        .expect("the promise is kept");
    assert_eq!(made.made_at.to_string(), "2026-03-16T15:03:20Z");
}

/// A promise step finished late (its queue retries ran out, the debtor wrote again) does not
/// replace a newer promise the CRM made meanwhile.
#[tokio::test]
async fn a_promise_step_finished_late_leaves_a_newer_crm_promise_standing() {
    let mut h = Harness::new().await;
    let account = asked_to_promise(&h).await;
    let raw = message_delivery("wamid.in9", "1773673400", text("mañana"));
    let got = applied_while_the_bus_refuses(&mut h, &raw).await;
    // Its retries run out: the queue message is gone, the step is left half applied.
    h.queue.delete(&got.receipt).await.unwrap();
    let current = h.account(&account.id).await;
    let crm_at: Timestamp = "2026-03-16T15:10:00Z".parse().unwrap();
    let crm = cobro::domain::Promise {
        amount_minor: 500,
        by: "2026-03-25".parse().unwrap(),
        paid_minor: 0,
        made_at: crm_at,
        made_by: "crm".into(),
    };
    h.store.make_promise(&current, &crm, crm_at).await.unwrap();
    // The debtor writes again: the earlier step is finished first, and leaves the CRM's.
    h.post(
        &message_delivery("wamid.in10", "1773674000", text("hola")),
        Some(SECRET),
    )
    .await
    .unwrap();
    h.drain().await;
    let promise = h.account(&account.id).await.promise.expect("a promise");
    assert_eq!(
        (promise.made_by.as_str(), promise.amount_minor),
        ("crm", 500)
    );
}
/// A message whose step was saved but not fully applied, then finished by a later message of
/// the debtor, is not run through the bot again when it comes back: the step it took stands.
#[tokio::test]
async fn a_message_whose_step_a_later_message_finished_is_not_run_through_the_bot_again() {
    let mut h = Harness::new().await;
    let account = asked_to_promise(&h).await;
    // The step is saved, the promise made, and announcing it fails: the message comes again.
    let first = message_delivery("wamid.in9", "1773673400", text("mañana"));
    let got = applied_while_the_bus_refuses(&mut h, &first).await;
    // Its queue message is kept aside, to come again after the next one.
    h.queue.delete(&got.receipt).await.unwrap();
    // Meanwhile the debtor writes again: that message finishes the first one's step.
    let later = message_delivery("wamid.in10", "1773673500", text("hola"));
    h.post(&later, Some(SECRET)).await.unwrap();
    h.drain().await;
    let kinds: Vec<String> = h.published().await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(kinds, ["PromiseMade"]);
    let before = h
        .store
        .chat_record(&h.tenant, &account.debtor)
        .await
        .unwrap();
    // The first message comes again: applied, and the bot's conversation is as it was.
    let report = h.inbound.handle(&got.body).await.expect("applied");
    assert_eq!(report.messages, 1, "{report:?}");
    let after = h
        .store
        .chat_record(&h.tenant, &account.debtor)
        .await
        .unwrap();
    assert_eq!(after, before, "the engine did not run on it again");
    assert!(h.published().await.is_empty());
}
#[test]
fn the_chat_record_keeps_the_ids_of_the_latest_messages_stepped_on() {
    use cobro::repo::{ChatRecord, STEPPED_KEPT};
    let mut record = ChatRecord::default();
    for n in 0..=STEPPED_KEPT {
        record.stepped = record.stepped_with(&format!("wamid.{n}"));
    }
    assert_eq!(record.stepped.len(), STEPPED_KEPT);
    assert!(!record.stepped_on("wamid.0"), "the oldest is dropped");
    assert!(record.stepped_on("wamid.1") && record.stepped_on(&format!("wamid.{STEPPED_KEPT}")));
}

// ---------------------------------------------------------------------------------------------
// The webhook as it is served: through its router (body limit, error shape), and what it reads
// of a delivery before the signature is verified.
// ---------------------------------------------------------------------------------------------

/// The harness's webhook behind its router, as the Lambda and the local stack serve it.
fn served(h: &Harness) -> axum::Router {
    served_on(h, h.store.clone())
}

/// The same, reading numbers from `store`.
fn served_on(h: &Harness, store: Store) -> axum::Router {
    cobro_webhook::router(Arc::new(Webhook {
        store,
        blobs: h.blobs.clone(),
        inbound: h.queue.clone(),
        clock: Arc::new(FixedClock::at("2026-03-16T15:00:00Z".parse().unwrap())),
        whatsapp: deployment(DEFAULT_SECRET),
        secrets: h.secrets.clone(),
        secrets_prefix: String::new(),
    }))
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

/// `raw` POSTed through the router, signed with `secret`.
async fn post_served(h: &Harness, raw: Vec<u8>, secret: &str) -> Answer {
    post_to(served(h), raw, secret).await
}

async fn post_to(router: axum::Router, raw: Vec<u8>, secret: &str) -> Answer {
    use tower::ServiceExt;
    let request = axum::http::Request::post(cobro_webhook::PATH)
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            signature::sign(secret.as_bytes(), &raw),
        )
        .body(axum::body::Body::from(raw))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// A problem+json answer's body.
fn problem(answer: &Answer) -> Value {
    assert_eq!(answer.content_type, "application/problem+json");
    serde_json::from_slice(&answer.body).expect("a JSON body")
}

/// Meta's largest delivery: 1,000 updates (600 messages from the harness's debtor, 400 statuses
/// of unknown messages), over 3 MB, spread over several entries and changes.
fn largest_delivery() -> Vec<u8> {
    let long = "x".repeat(4950);
    let messages: Vec<Value> = (0..600)
        .map(|i| {
            json!({ "from": "56911112222", "id": format!("wamid.big{i}"),
                    "timestamp": (1_700_000_000 + i).to_string(), "type": "text",
                    "text": { "body": format!("{i} {long}") } })
        })
        .collect();
    let statuses: Vec<Value> = (0..400)
        .map(|i| {
            json!({ "id": format!("wamid.unknown{i}"), "status": "delivered",
                    "timestamp": "1700000000", "recipient_id": "56911112222" })
        })
        .collect();
    let change = |messages: &[Value], statuses: &[Value]| {
        json!({ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "972123456789", "phone_number_id": NUMBER },
            "contacts": [{ "profile": { "name": "Ana" }, "wa_id": "56911112222" }],
            "messages": messages, "statuses": statuses }})
    };
    let body = json!({ "object": "whatsapp_business_account", "entry": [
        { "id": "w", "changes": [change(&messages[..300], &statuses[..200]), change(&messages[300..], &[])] },
        { "id": "w", "changes": [change(&[], &statuses[200..])] },
    ]});
    let raw = serde_json::to_vec(&body).unwrap();
    assert!(raw.len() > 3_000_000, "{} bytes", raw.len());
    raw
}

#[tokio::test]
async fn the_largest_delivery_meta_sends_passes_the_router_and_is_applied() {
    let h = Harness::new().await;
    let debtor = h.debtor("d-1", "+56911112222").await;
    let answer = post_served(&h, largest_delivery(), SECRET).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let report = h.drain().await;
    assert_eq!(report.messages, 600, "{report:?}");
    assert_eq!(report.statuses_unmatched, 400, "{report:?}");
    let conversation = h.conversation(&debtor.id, 1000).await;
    assert_eq!(conversation.len(), 600);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_as_problem_json_and_nothing_is_kept() {
    let h = Harness::new().await;
    let padding = "x".repeat(cobro_webhook::MAX_BODY);
    let raw = serde_json::to_vec(&json!({ "object": "whatsapp_business_account",
                                          "padding": padding }))
    .unwrap();
    let answer = post_served(&h, raw, SECRET).await;
    assert_eq!(answer.status, 413);
    let p = problem(&answer);
    assert_eq!(p["status"], 413, "{p}");
    assert_eq!(p["type"], "https://cobro.dev/problems/too-large", "{p}");
    assert_eq!(h.queue.depth().await.unwrap(), 0, "nothing queued");
}

/// The harness's table, counting the reads made through it.
/// Counts the reads of the table it hooks.
#[derive(Default)]
struct CountedReads {
    reads: std::sync::atomic::AtomicUsize,
}

impl CountedReads {
    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Hooks for CountedReads {
    fn reading(&self) {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The harness's webhook behind its router, with the store's reads counted.
fn served_counting(h: &Harness) -> (axum::Router, Arc<HookedTable<CountedReads>>) {
    let counted = HookedTable::new(h.table.clone(), CountedReads::default());
    let router = served_on(h, Store::new(counted.clone()));
    (router, counted)
}

/// A delivery of one status per number, for each of `numbers`.
fn delivery_for(numbers: &[String]) -> Vec<u8> {
    let changes: Vec<Value> = numbers
        .iter()
        .enumerate()
        .map(|(i, number)| {
            json!({ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "972123456789", "phone_number_id": number },
                "statuses": [{ "id": format!("wamid.s{i}"), "status": "delivered",
                               "timestamp": "1773673200", "recipient_id": "56911112222" }] }})
        })
        .collect();
    serde_json::to_vec(&json!({ "object": "whatsapp_business_account",
                                "entry": [{ "id": "w", "changes": changes }] }))
    .unwrap()
}

/// `count` distinct numbers, the harness's own first.
fn numbers(count: usize) -> Vec<String> {
    std::iter::once(NUMBER.to_string())
        .chain((1..count).map(|i| format!("{}", 1_000_000_000_000_000u64 + i as u64)))
        .collect()
}

#[tokio::test]
async fn numbers_that_are_no_phone_number_ids_are_refused_before_any_lookup() {
    let h = Harness::new().await;
    for bad in [
        "9".repeat(3000),
        "1".repeat(21),
        "PHONE_NUMBER_ID".into(),
        String::new(),
    ] {
        let (router, counted) = served_counting(&h);
        let raw = delivery_for(&[NUMBER.to_string(), bad.clone()]);
        // Not signed by Meta: nothing in it may be read before the signature is checked.
        let answer = post_to(router, raw, "not-the-app-secret").await;
        assert_eq!(answer.status, 400, "{}", &bad[..bad.len().min(30)]);
        let p = problem(&answer);
        assert_eq!(
            p["field"], "entry[].changes[].value.metadata.phone_number_id",
            "{p}"
        );
        assert_eq!(counted.reads(), 0, "looked up before the signature");
    }
    // 20 digits are an id: unknown, so the deployment's secret verifies it.
    let answer = post_served(&h, delivery_for(&["1".repeat(20)]), DEFAULT_SECRET).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        h.queue.depth().await.unwrap(),
        1,
        "only the last one is kept"
    );
}

#[tokio::test]
async fn a_delivery_for_more_numbers_than_the_limit_is_refused_before_any_lookup() {
    let h = Harness::new().await;
    let max = cobro_webhook::MAX_NUMBERS;
    // Unsigned, for a thousand numbers: no read at all, rather than a thousand.
    let (router, counted) = served_counting(&h);
    let answer = post_to(router, delivery_for(&numbers(1000)), "not-the-app-secret").await;
    assert_eq!(answer.status, 400);
    assert_eq!(problem(&answer)["status"], 400);
    assert_eq!(counted.reads(), 0, "looked up before the signature");
    // Signed, one number over the limit: still refused, nothing kept.
    let answer = post_served(&h, delivery_for(&numbers(max + 1)), SECRET).await;
    assert_eq!(answer.status, 400);
    assert_eq!(h.queue.depth().await.unwrap(), 0, "nothing queued");
    // At the limit (the same number repeated counts once): accepted.
    let mut at_limit = numbers(max);
    at_limit.push(NUMBER.into());
    let answer = post_served(&h, delivery_for(&at_limit), SECRET).await;
    assert_eq!(answer.status, 200);
    assert_eq!(h.queue.depth().await.unwrap(), 1);
}

#[tokio::test]
async fn a_rotated_deployment_app_secret_and_verify_token_are_used_once_the_cache_expires() {
    use tower::ServiceExt;
    let h = Harness::new().await;
    let name = "cobro/test/whatsapp";
    let store = cobro_tests::memory_secrets::MemorySecrets::new();
    let values = |app_secret: &str, verify_token: &str| WhatsAppSecrets {
        access_token: "EAAG".into(),
        app_secret: app_secret.into(),
        verify_token: verify_token.into(),
    };
    store.set(name, &values("old-app-secret", "old-verify"));
    let ttl = Duration::from_millis(50);
    let grace = Duration::from_secs(1);
    // As the Lambda builds it with COBRO_WHATSAPP_SECRET_ARN set.
    let router = cobro_webhook::router(Arc::new(Webhook {
        store: h.store.clone(),
        blobs: h.blobs.clone(),
        inbound: h.queue.clone(),
        clock: Arc::new(FixedClock::at("2026-03-16T15:00:00Z".parse().unwrap())),
        whatsapp: DeploymentSecrets::Stored {
            secrets: Arc::new(CachedSecrets::new(store.clone(), ttl).with_grace(grace)),
            name: name.into(),
        },
        secrets: h.secrets.clone(),
        secrets_prefix: String::new(),
    }));
    let handshake = |token: &str| {
        let request = axum::http::Request::get(format!(
            "{}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=42",
            cobro_webhook::PATH
        ))
        .body(axum::body::Body::empty())
        .unwrap();
        let router = router.clone();
        async move { router.oneshot(request).await.unwrap().status().as_u16() }
    };
    // For a number not registered: the deployment's app secret verifies it.
    let raw = || delivery_for(&["1".repeat(15)]);
    let post_signed = |secret: &'static str| post_to(router.clone(), raw(), secret);
    assert_eq!(post_signed("old-app-secret").await.status, 200);
    assert_eq!(handshake("old-verify").await, 200);
    // The operator's rotation, in the secret only: no redeploy, the same warm function.
    store.set(name, &values("new-app-secret", "new-verify"));
    tokio::time::sleep(ttl * 3).await;
    assert_eq!(post_signed("new-app-secret").await.status, 200);
    assert_eq!(post_signed("old-app-secret").await.status, 401);
    assert_eq!(handshake("new-verify").await, 200);
    assert_eq!(handshake("old-verify").await, 403);
    assert_eq!(h.queue.depth().await.unwrap(), 2);
    // The secret unreadable once the cache expired: the values read last, for the grace.
    store.fail(true);
    tokio::time::sleep(ttl * 3).await;
    assert_eq!(post_signed("new-app-secret").await.status, 200);
    assert_eq!(handshake("new-verify").await, 200);
    assert_eq!(h.queue.depth().await.unwrap(), 3);
    // Past the grace: 503, so Meta redelivers; nothing kept.
    tokio::time::sleep(grace).await;
    let answer = post_signed("new-app-secret").await;
    assert_eq!(answer.status, 503, "{}", problem(&answer));
    assert_eq!(handshake("new-verify").await, 503);
    assert_eq!(h.queue.depth().await.unwrap(), 3);
}
