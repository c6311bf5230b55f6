//! Events out: the catalog in docs/events.md is the code's, and a tenant's webhook gets every
//! published event signed, retried on failure, once per event, and kept when it keeps failing,
//! all over HTTP against the local stack and a receiver on loopback.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::StatusCode as Status;
use serde_json::{json, Value};

use cobro::events::webhook::{verify, SIGNATURE_HEADER, TOLERANCE};
use cobro::events::{Audience, CATALOG};
use cobro::ports::{Clock, Queue};
use cobro_tests::local::{serve, LocalApi};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md");
const MARKER: &str = "<!-- The catalog below is generated";

// --- the catalog --------------------------------------------------------------------------------

/// The generated part of docs/events.md: one section per event with its JSON Schema.
fn catalog_markdown() -> String {
    let mut out = String::new();
    out.push_str("<!-- The catalog below is generated from shared/src/events by tests/all/events.rs; rewrite it with `COBRO_UPDATE_DOCS=1 cargo test -p cobro-tests --test all events::` -->\n");
    let mut group = "";
    for e in CATALOG {
        if e.group != group {
            group = e.group;
            out.push_str(&format!("\n### {group}\n"));
        }
        let schema = serde_json::to_value((e.schema)()).expect("a schema is JSON");
        let description = schema["description"].as_str().unwrap_or_default();
        let direction = match e.audience {
            Audience::Out => "Published by cobro.",
            Audience::In => "Published **to** cobro, for it to act on.",
        };
        out.push_str(&format!(
            "\n#### `{}`\n\n{} *{direction}*\n\n<details><summary>JSON Schema of the detail</summary>\n\n```json\n{}\n```\n\n</details>\n",
            e.detail_type,
            description.replace('\n', " "),
            serde_json::to_string_pretty(&schema).expect("prints")
        ));
    }
    out
}

#[test]
fn the_catalog_in_docs_is_the_codes() {
    let doc = std::fs::read_to_string(DOC).expect("docs/events.md");
    let at = doc
        .find(MARKER)
        .expect("docs/events.md has the catalog marker");
    let generated = catalog_markdown();
    if std::env::var("COBRO_UPDATE_DOCS").is_ok() {
        std::fs::write(DOC, format!("{}{generated}", &doc[..at])).expect("writes");
        return;
    }
    assert!(
        doc[at..] == generated,
        "docs/events.md is out of date with shared/src/events: run COBRO_UPDATE_DOCS=1 cargo test -p cobro-tests --test all events::"
    );
    for e in CATALOG {
        let schema = serde_json::to_value((e.schema)()).unwrap();
        assert!(
            schema["description"].as_str().is_some_and(|d| d.len() > 20),
            "{} has no description",
            e.detail_type
        );
    }
}

fn validator(detail_type: &str) -> jsonschema::Validator {
    let entry = CATALOG
        .iter()
        .find(|e| e.detail_type == detail_type)
        .unwrap_or_else(|| panic!("{detail_type} is not in the catalog"));
    let schema = serde_json::to_value((entry.schema)()).unwrap();
    jsonschema::validator_for(&schema).expect("a valid schema")
}

fn assert_valid(detail_type: &str, detail: &Value) {
    let v = validator(detail_type);
    let errors: Vec<String> = v.iter_errors(detail).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{detail_type} {detail} breaks its schema: {errors:?}"
    );
}

// --- a receiver ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Post {
    headers: HeaderMap,
    body: Bytes,
}

impl Post {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    /// Whether the post's signature is `secret`'s, checked at `now`.
    fn signed_with(&self, secret: &str, now: jiff::Timestamp) -> Result<(), &'static str> {
        verify(
            secret,
            self.header(SIGNATURE_HEADER),
            &self.body,
            now,
            TOLERANCE,
        )
    }
}

#[derive(Default)]
struct Receiver {
    posts: Mutex<Vec<Post>>,
    /// The statuses to answer posts of an event type with, in turn; then 200.
    answers: Mutex<std::collections::HashMap<String, VecDeque<u16>>>,
    /// Answer every post with this, when set.
    always: Mutex<Option<u16>>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let post = Post { headers, body };
    let kind = post.header("cobro-event-type").to_string();
    r.posts.lock().unwrap().push(post);
    let code = (*r.always.lock().unwrap())
        .or_else(|| r.answers.lock().unwrap().get_mut(&kind)?.pop_front())
        .unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

async fn start_receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hooks/cobro", axum::routing::post(receive))
        .with_state(receiver.clone());
    let url = format!("{}/hooks/cobro", serve(app).await);
    (receiver, url)
}

// --- the stack ----------------------------------------------------------------------------------

cobro_tests::local_api_newtype!(
    /// The local stack over HTTP, with what seeding the demo published drained.
    Api
);

impl Api {
    async fn start() -> Self {
        let api = LocalApi::start().await;
        // Drain what seeding the demo published: the tests count only their own events.
        api.stack.drain().await.unwrap();
        Self(api)
    }

    /// Registers the webhook; returns its secret.
    async fn register(&self, url: &str, events: &[&str]) -> String {
        let (status, body) = self
            .call(
                "PUT",
                "/v1/webhook",
                Some(json!({ "url": url, "events": events })),
            )
            .await;
        assert_eq!(status, Status::CREATED, "{body}");
        body["secret"]
            .as_str()
            .expect("the secret, once")
            .to_string()
    }

    async fn pay(&self, account: &str, payment_id: &str, amount: i64) {
        let (status, body) = self
            .call(
                "POST",
                "/v1/payments",
                Some(json!({
                    "account_id": account, "payment_id": payment_id, "amount_minor": amount,
                    "currency": "CLP", "method": "transfer"
                })),
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
    }

    /// Up to ten messages of the events-out queue, as the deployed function gets them: (id,
    /// body).
    async fn events_out_records(&self) -> Vec<(String, String)> {
        let got = self
            .stack
            .events_out
            .receive(10, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        got.into_iter().map(|m| (m.message_id, m.body)).collect()
    }

    /// Asks for the webhook delivery `id` to be sent again: the status and the body.
    async fn redeliver(&self, id: &str) -> (Status, Value) {
        let path = format!("/v1/webhook/deliveries/{id}/redeliver");
        self.call("POST", &path, None).await
    }

    /// Runs the stack's queues until empty, in process.
    async fn drain(&self) {
        self.stack.drain().await.unwrap();
    }
}

// --- the tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_webhook_gets_signed_events_once_each_and_retries_until_delivered() {
    let api = Api::start().await;
    let (receiver, url) = start_receiver().await;
    let secret = api.register(&url, &[]).await;
    // The first attempt meets a server error, the second a timeout-like 503; the third lands.
    receiver
        .answers
        .lock()
        .unwrap()
        .insert("PaymentApplied".into(), VecDeque::from([500, 503]));
    api.pay("CL-1001", "pay-ev-1", 150_000).await;
    api.drain().await;

    let posts = receiver.posts.lock().unwrap().clone();
    let applied: Vec<_> = posts
        .iter()
        .filter(|p| p.header("cobro-event-type") == "PaymentApplied")
        .collect();
    assert_eq!(applied.len(), 3, "two failures, then delivered");
    let ids: std::collections::HashSet<_> =
        applied.iter().map(|p| p.header("cobro-event-id")).collect();
    assert_eq!(ids.len(), 1, "every attempt carries the same event id");
    let attempts: Vec<_> = applied
        .iter()
        .map(|p| p.header("cobro-delivery-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    let now = api.stack.clock.now();
    for p in &applied {
        p.signed_with(&secret, now)
            .expect("signed with the tenant's secret");
        assert!(p.signed_with("whsec_other", now).is_err());
        assert_eq!(p.header("content-type"), "application/json");
    }
    let body = applied[0].json();
    assert_eq!(body["type"], "PaymentApplied");
    assert_eq!(body["id"], applied[0].header("cobro-event-id"));
    assert_eq!(body["data"]["tenant"], "demo");
    assert_eq!(body["data"]["account"], "CL-1001");
    assert_eq!(body["data"]["balance_minor"], 0);
    assert_valid("PaymentApplied", &body["data"]);

    // The balance went to zero: the account is settled, delivered at once.
    let settled: Vec<_> = posts
        .iter()
        .filter(|p| p.header("cobro-event-type") == "AccountSettled")
        .collect();
    assert_eq!(settled.len(), 1);
    assert_valid("AccountSettled", &settled[0].json()["data"]);

    // The delivery's record says what happened.
    let id = applied[0].header("cobro-event-id").to_string();
    let (status, d) = api
        .call("GET", &format!("/v1/webhook/deliveries/{id}"), None)
        .await;
    assert_eq!(status, Status::OK, "{d}");
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["last_status"], 200);

    // The same event published again (an at-least-once publisher retrying) is not delivered
    // again, and a redelivered queue message of it finds the attempt done.
    let again = applied[0].json()["data"].clone();
    api.stack
        .crm
        .bus
        .publish(vec![cobro::ports::Event::new("PaymentApplied", again)])
        .await
        .unwrap();
    api.drain().await;
    let count = receiver
        .posts
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.header("cobro-event-id") == id)
        .count();
    assert_eq!(count, 3, "one delivery per event");
}

/// A deployment posts to public addresses only: a URL on loopback (where the Lambda Runtime
/// API listens), private or link-local (the metadata endpoint) is refused when it is
/// registered and again at each send, and nothing reaches it.
#[tokio::test]
async fn a_deployment_posts_to_public_addresses_only() {
    use cobro::events::webhook::{check_url, Targets};
    use cobro_events_out::{handle_batch, EventsOut, HttpClient};

    let api = Api::start().await;
    let (receiver, url) = start_receiver().await;
    // The local stack lets a receiver on this machine in; a deployment would not.
    api.register(&url, &["PromiseMade"]).await;
    let refused = check_url(&url, Targets::Public).unwrap_err();
    assert!(refused.contains("public address"), "{refused}");
    let by = api.date_in(3);
    let (status, body) = api
        .call(
            "POST",
            "/v1/accounts/CL-1001/promises",
            Some(json!({ "amount_minor": 50_000, "by": by.to_string() })),
        )
        .await;
    assert_eq!(status, Status::CREATED, "{body}");
    // The published event, handled by a deployment's events-out.
    let deployed = Arc::new(EventsOut {
        store: api.stack.store.clone(),
        queue: api.stack.events_out.clone(),
        clock: api.stack.clock.clone(),
        http: HttpClient::public(),
        schedule: vec![std::time::Duration::ZERO],
    });
    let records = api.events_out_records().await;
    assert!(!records.is_empty());
    handle_batch(&deployed, records).await;
    assert!(receiver.posts.lock().unwrap().is_empty(), "nothing posted");
    let (_, list) = api.call("GET", "/v1/webhook/deliveries", None).await;
    let failed = &list["items"][0];
    assert_eq!(failed["status"], "failed", "{list}");
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("public address"),
        "{failed}"
    );
}

/// An address the URL writes in another form (one number, hex, a short form, IPv4 inside
/// IPv6) is the address the HTTP client connects to: registration keeps the URL normalised,
/// and each send checks and posts the same parsed URL. A URL stored before that (never
/// normalised) is refused by a deployment at send and reaches the local stack's receiver.
#[tokio::test]
async fn a_url_is_checked_and_posted_as_the_address_it_names() {
    use cobro_events_out::{handle_batch, EventsOut, HttpClient};

    let api = Api::start().await;
    let (receiver, url) = start_receiver().await;
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    api.register(
        &format!("http://2130706433:{port}/hooks/cobro"),
        &["PromiseMade"],
    )
    .await;
    let (_, shown) = api.call("GET", "/v1/webhook", None).await;
    assert_eq!(shown["url"], url, "kept as it is posted to");

    let tenant = cobro::domain::TenantId::parse("demo").unwrap();
    let deployed = Arc::new(EventsOut {
        store: api.stack.store.clone(),
        queue: api.stack.events_out.clone(),
        clock: api.stack.clock.clone(),
        http: HttpClient::public(),
        schedule: vec![std::time::Duration::ZERO],
    });
    let api = &api;
    let publish = |n: i64| async move {
        let detail = json!({ "tenant": "demo", "account": "CL-1001", "amount_minor": n });
        api.stack
            .crm
            .bus
            .publish(vec![cobro::ports::Event::new("PromiseMade", detail)])
            .await
            .unwrap();
    };
    let raw = [
        format!("https://2130706433:{port}/hooks/cobro"),
        format!("https://0x7f.0.0.1:{port}/hooks/cobro"),
        format!("https://127.1:{port}/hooks/cobro"),
        format!("https://127.0.0.1.:{port}/hooks/cobro"),
        format!("https://%31%32%37.0.0.1:{port}/hooks/cobro"),
        format!("https://[::127.0.0.1]:{port}/hooks/cobro"),
        format!("https://[::ffff:7f00:1]:{port}/hooks/cobro"),
    ];
    for (i, raw) in raw.iter().enumerate() {
        // Stored as an older version would have stored it.
        let mut endpoint = api.stack.store.webhook(&tenant).await.unwrap().unwrap();
        endpoint.url = raw.clone();
        api.stack.store.put_webhook(&endpoint).await.unwrap();
        publish(i as i64).await;
        let records = api.events_out_records().await;
        handle_batch(&deployed, records).await;
        assert!(receiver.posts.lock().unwrap().is_empty(), "{raw} reached");
        let (_, list) = api.call("GET", "/v1/webhook/deliveries", None).await;
        let refused = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["status"] == "failed"
                    && d["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("public address"))
            })
            .count();
        assert_eq!(refused, i + 1, "{raw}: {list}");
    }

    // The local stack posts a never-normalised loopback URL to the address it names.
    let mut endpoint = api.stack.store.webhook(&tenant).await.unwrap().unwrap();
    endpoint.url = format!("http://0x7f.1:{port}/hooks/cobro");
    api.stack.store.put_webhook(&endpoint).await.unwrap();
    publish(77_000).await;
    api.drain().await;
    let posts = receiver.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].json()["data"]["amount_minor"], 77_000);
}

/// A host name is checked when it is resolved too: one that names only loopback (a name
/// pointed at 127.0.0.1, DNS rebinding) resolves to nothing a deployment may reach.
#[tokio::test]
async fn a_name_resolving_to_loopback_only_is_refused() {
    use cobro_events_out::resolve::PublicResolver;
    use reqwest::dns::Resolve;
    for host in ["localhost", "127.0.0.1"] {
        let Err(e) = PublicResolver.resolve(host.parse().unwrap()).await else {
            panic!("{host} resolved")
        };
        assert!(e.to_string().contains("no public address"), "{e}");
    }
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_kept_listed_and_sent_again() {
    let api = Api::start().await;
    let (receiver, url) = start_receiver().await;
    api.register(&url, &["PromiseMade"]).await;
    *receiver.always.lock().unwrap() = Some(503);
    let (status, body) = api
        .call(
            "POST",
            "/v1/accounts/CL-1001/promises",
            Some(json!({ "amount_minor": 50_000, "by": api.date_in(3).to_string() })),
        )
        .await;
    assert_eq!(status, Status::CREATED, "{body}");
    // Another type the webhook did not ask for is not posted.
    api.pay("CL-1001", "pay-ev-2", 1_000).await;
    api.drain().await;
    {
        let posts = receiver.posts.lock().unwrap();
        assert_eq!(
            posts.len(),
            3,
            "the test schedule's three attempts, nothing else"
        );
        assert!(posts
            .iter()
            .all(|p| p.header("cobro-event-type") == "PromiseMade"));
        assert_valid("PromiseMade", &posts[0].json()["data"]);
        assert_eq!(posts[0].json()["data"]["made_by"], "crm");
    }

    let (status, list) = api.call("GET", "/v1/webhook/deliveries", None).await;
    assert_eq!(status, Status::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let failed = &items[0];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["attempts"], 3);
    assert_eq!(failed["last_status"], 503);
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 503"),
        "{failed}"
    );
    assert_eq!(failed["payload"]["type"], "PromiseMade");

    // The receiver is fixed; the tenant sends it again.
    *receiver.always.lock().unwrap() = None;
    let id = failed["id"].as_str().unwrap();
    let (status, body) = api.redeliver(id).await;
    assert_eq!(status, Status::ACCEPTED, "{body}");
    api.drain().await;
    assert_eq!(receiver.posts.lock().unwrap().len(), 4);
    let (_, d) = api
        .call("GET", &format!("/v1/webhook/deliveries/{id}"), None)
        .await;
    assert_eq!(d["status"], "delivered", "{d}");
    let (_, list) = api.call("GET", "/v1/webhook/deliveries", None).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "no longer listed as failed"
    );
    // A delivered one is not sent again.
    let (status, _) = api.redeliver(id).await;
    assert_eq!(status, Status::CONFLICT);
}

#[tokio::test]
async fn registering_a_webhook_is_checked_and_the_secret_shown_once_and_rotated() {
    let api = Api::start().await;
    let (status, body) = api.call("GET", "/v1/webhook", None).await;
    assert_eq!(status, Status::NOT_FOUND, "{body}");
    for (input, field) in [
        (json!({ "url": "http://crm.example.com/hook" }), "url"),
        (json!({ "url": "not a url" }), "url"),
        (
            json!({ "url": "https://crm.example.com/hook", "events": ["PaymentApplied", "Nope"] }),
            "events[1]",
        ),
        (
            json!({ "url": "https://crm.example.com/hook", "events": ["PaymentConfirmed"] }),
            "events[0]",
        ),
        (
            json!({ "url": "https://crm.example.com/hook", "extra": 1 }),
            "extra",
        ),
    ] {
        let (status, body) = api.call("PUT", "/v1/webhook", Some(input.clone())).await;
        assert_eq!(status, Status::BAD_REQUEST, "{input} → {body}");
        assert!(
            body.to_string().contains(field),
            "{input} → {body} should name {field}"
        );
    }
    let (status, _) = api.call("GET", "/v1/webhook", None).await;
    assert_eq!(status, Status::NOT_FOUND, "a bad request changed nothing");

    let (receiver, url) = start_receiver().await;
    let secret = api.register(&url, &[]).await;
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    let (status, shown) = api.call("GET", "/v1/webhook", None).await;
    assert_eq!(status, Status::OK);
    assert!(shown.get("secret").is_none(), "never shown again: {shown}");
    assert_eq!(shown["url"], url);
    // Changing the URL or the events keeps the secret.
    let (status, changed) = api
        .call(
            "PUT",
            "/v1/webhook",
            Some(json!({ "url": url, "events": ["OptedOut"] })),
        )
        .await;
    assert_eq!(status, Status::OK, "{changed}");
    assert!(changed.get("secret").is_none());
    assert_eq!(changed["secret_hint"], shown["secret_hint"]);

    // After a rotation, deliveries carry a signature under each secret for a day.
    let (status, rotated) = api.call("POST", "/v1/webhook/rotate-secret", None).await;
    assert_eq!(status, Status::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, secret);
    let (status, _) = api
        .call(
            "POST",
            "/v1/debtors/cl-maria/consents",
            Some(json!({ "channel": "whatsapp", "granted": false, "source": "call-center" })),
        )
        .await;
    assert_eq!(status, Status::OK);
    api.drain().await;
    let posts = receiver.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    let now = api.stack.clock.now();
    posts[0].signed_with(&new, now).unwrap();
    posts[0].signed_with(&secret, now).unwrap();
    let data = posts[0].json()["data"].clone();
    assert_eq!(data["source"], "call-center");
    assert_eq!(data["channel"], "whatsapp");
    assert_valid("OptedOut", &data);

    let (status, _) = api.call("DELETE", "/v1/webhook", None).await;
    assert_eq!(status, Status::NO_CONTENT);
    let (status, _) = api.call("DELETE", "/v1/webhook", None).await;
    assert_eq!(status, Status::NOT_FOUND);
}

/// Every typed event the code can build validates against the schema docs/events.md shows.
#[test]
fn typed_events_match_their_schemas() {
    use cobro::domain::{AccountId, ChannelKind, Currency, DebtorId, PaymentId, TenantId};
    use cobro::events::*;
    let t = TenantId::parse("t-1").unwrap();
    let d = DebtorId::parse("d-1").unwrap();
    let a = AccountId::parse("a-1").unwrap();
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let via = Via {
        channel: ChannelKind::Whatsapp,
        message_id: "wamid.1".into(),
        at,
    };
    let payment = PaymentRef {
        tenant: t.clone(),
        account: a.clone(),
        payment_id: PaymentId::parse("p-1").unwrap(),
        currency: Currency::parse("CLP").unwrap(),
        paid_at: at,
    };
    let events: Vec<cobro::ports::Event> = vec![
        PaymentApplied {
            payment: payment.clone(),
            amount_minor: 10,
            applied_minor: 10,
            balance_minor: 0,
            credit_minor: 0,
            method: "card".into(),
            source: "crm".into(),
            plan: None,
        }
        .event(),
        PromiseKept { payment }.event(),
        VulnerabilityFlagged {
            tenant: t.clone(),
            debtor: d.clone(),
            sign: cobro::chat::vulnerability::Sign::Bereavement,
            via: via.clone(),
        }
        .event(),
        CollectionPaused {
            tenant: t.clone(),
            debtor: d.clone(),
            accounts: vec![a.clone()],
            until: None,
            reason: "illness".into(),
            via: via.clone(),
        }
        .event(),
        PreferencesChanged {
            tenant: t.clone(),
            debtor: d.clone(),
            preferred_channel: None,
            hours: Some(cobro::compliance::Range::hours(9, 13)),
            via,
        }
        .event(),
        HandoffClosed {
            tenant: t,
            debtor: d,
            at,
        }
        .event(),
    ];
    for e in &events {
        assert_valid(&e.detail_type, &e.detail);
    }
    // And the schema is strict enough to catch a wrong shape.
    let mut wrong = events[0].detail.clone();
    wrong["amount_minor"] = json!("10");
    assert!(!validator("PaymentApplied").is_valid(&wrong));
}

/// The delivery record's conditions hold on both stores: one claim per attempt, a lost claim
/// cannot end an attempt, failed ones are listed (sparse index) until restarted.
async fn delivery_records_behave(store: cobro::repo::Store) {
    use cobro::repo::{AttemptResult, DeliveryStatus, WebhookDelivery};
    let t = cobro::domain::TenantId::parse("t-del").unwrap();
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let fresh = WebhookDelivery {
        tenant: t.clone(),
        id: "evt_00000000000000000000000000000001".into(),
        event_type: "PaymentApplied".into(),
        body: "{}".into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_ms: 0,
        last_status: None,
        last_error: None,
        last_attempt_at: None,
        created_at: now,
        delivered_at: None,
        failed_at: None,
    };
    let (d, created) = store.create_delivery(&fresh).await.unwrap();
    assert!(created);
    let (_, again) = store.create_delivery(&fresh).await.unwrap();
    assert!(!again, "one delivery per event id");

    let claimed = store
        .claim_delivery_attempt(&d, now)
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(claimed.attempts, 1);
    assert!(
        store
            .claim_delivery_attempt(&d, now)
            .await
            .unwrap()
            .is_none(),
        "the same attempt is claimed once"
    );
    assert!(
        store
            .claim_delivery_attempt(&claimed, now)
            .await
            .unwrap()
            .is_none(),
        "the next attempt waits for the lease"
    );
    let retry = AttemptResult::Retry {
        status: Some(500),
        error: "HTTP 500".into(),
        next_ms: now.as_millisecond(),
    };
    assert!(
        !store.end_delivery_attempt(&d, &retry, now).await.unwrap(),
        "a stale claim"
    );
    assert!(store
        .end_delivery_attempt(&claimed, &retry, now)
        .await
        .unwrap());
    let second = store
        .claim_delivery_attempt(&claimed, now)
        .await
        .unwrap()
        .expect("due again");
    let give_up = AttemptResult::GiveUp {
        status: None,
        error: "refused".into(),
    };
    assert!(store
        .end_delivery_attempt(&second, &give_up, now)
        .await
        .unwrap());
    let failed = store.failed_deliveries(&t, 10, None).await.unwrap().items;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, DeliveryStatus::Failed);
    assert_eq!(failed[0].last_error.as_deref(), Some("refused"));
    assert_eq!(failed[0].last_status, None);

    let (restarted, changed) = store
        .restart_delivery(&t, &fresh.id)
        .await
        .unwrap()
        .unwrap();
    assert!(changed);
    assert_eq!(
        (restarted.status, restarted.attempts),
        (DeliveryStatus::Pending, 0)
    );
    assert!(store
        .failed_deliveries(&t, 10, None)
        .await
        .unwrap()
        .items
        .is_empty());
    let (_, changed) = store
        .restart_delivery(&t, &fresh.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!changed, "only a failed one restarts");
    let third = store
        .claim_delivery_attempt(&restarted, now)
        .await
        .unwrap()
        .unwrap();
    let done = AttemptResult::Delivered { status: 204 };
    assert!(store
        .end_delivery_attempt(&third, &done, now)
        .await
        .unwrap());
    let d = store.delivery(&t, &fresh.id).await.unwrap().unwrap();
    assert_eq!(
        (d.status, d.last_status),
        (DeliveryStatus::Delivered, Some(204))
    );
    assert!(store
        .restart_delivery(&t, "evt_nope")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn delivery_records_on_sqlite() {
    let sqlite = cobro::adapters::sqlite::SqliteStore::open_in_memory().unwrap();
    delivery_records_behave(cobro::repo::Store::new(Arc::new(sqlite.table()))).await;
}

#[tokio::test]
async fn delivery_records_on_moto() {
    let Some(moto) = cobro_tests::moto::moto().await else {
        return;
    };
    let table = moto
        .create_table(&cobro_tests::moto::unique("deliveries"))
        .await;
    delivery_records_behave(cobro::repo::Store::new(Arc::new(table))).await;
}

/// The rule that feeds the events-out queue lists exactly the published events, in
/// template.yaml and in the CDK app.
#[test]
fn the_events_out_rule_takes_every_published_event() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let published: Vec<&str> = cobro::events::published().collect();
    let template = std::fs::read_to_string(format!("{root}/template.yaml")).unwrap();
    let rule = &template[template.find("  EventsOutRule:").expect("the rule")..];
    let line = rule
        .lines()
        .find_map(|l| l.trim().strip_prefix("detail-type: ["))
        .expect("its detail types");
    let listed: Vec<&str> = line
        .trim_end_matches(']')
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(listed, published, "template.yaml's EventsOutRule");

    let cdk = std::fs::read_to_string(format!("{root}/infra/cdk/lib/cobro-stack.ts")).unwrap();
    let rule = &cdk[cdk.find("'EventsOutRule'").expect("the CDK rule")..];
    let line = rule
        .lines()
        .find_map(|l| l.trim().strip_prefix("detailType: ["))
        .expect("its detail types");
    let listed: Vec<String> = line
        .trim_end_matches(',')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().trim_matches('\'').to_string())
        .collect();
    assert_eq!(listed, published, "the CDK app's EventsOutRule");
}
