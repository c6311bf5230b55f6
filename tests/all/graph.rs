//! The Graph API's wire formats as cobro writes them, media download through the fake Graph API
//! into the blob store, and which access token each call carries.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

use cobro::domain::{ChannelKind, Language, Phone, Tenant, TenantKind};
use cobro::ports::channel::{
    Channel, ChannelMessage, FailureClass, Form, Recipient, SendAs, TemplateRef,
};
use cobro::ports::secrets::whatsapp_number_secret;
use cobro::ports::{Blobs, CachedSecrets, MediaSource, WhatsAppSecrets};
use cobro::whatsapp::channel::WhatsAppChannel;
use cobro::whatsapp::client::{GraphClient, GraphConfig};
use cobro::whatsapp::send::{Content, DocumentSource, ListRow, ListSection, SendRequest};
use cobro::whatsapp::tokens::SecretTokens;
use cobro_tests::fake_graph::{FakeGraph, TOKEN};
use cobro_tests::memory_secrets::MemorySecrets;

use crate::inbound::{fixtures, Harness};

#[test]
fn a_template_with_body_and_quick_replies_is_the_documented_request() {
    let path = fixtures().join("whatsapp-send/request_template_body_and_quick_reply_buttons.json");
    let expected: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let request = SendRequest::to(
        "121212121212",
        Content::template(
            "schedule_confirmation3",
            "pt_BR",
            &["Mauricio".into(), "04/11/2022".into(), "14:30".into()],
            &[
                "OP_YES_48547".into(),
                "OP_NO_48548".into(),
                "OP_CH_48549".into(),
            ],
        ),
    );
    assert_eq!(serde_json::to_value(&request).unwrap(), expected);
}

#[test]
fn interactive_messages_and_documents_follow_meta_and_its_limits() {
    let buttons = Content::buttons(
        "¿Cómo quieres pagar?",
        &[
            ("PAY_NOW".into(), "Pagar ahora".into()),
            ("PLAN".into(), "Ver un plan".into()),
        ],
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(SendRequest::to("+56911112222", buttons)).unwrap(),
        json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+56911112222",
            "type": "interactive", "interactive": { "type": "button",
              "body": { "text": "¿Cómo quieres pagar?" },
              "action": { "buttons": [
                { "type": "reply", "reply": { "id": "PAY_NOW", "title": "Pagar ahora" } },
                { "type": "reply", "reply": { "id": "PLAN", "title": "Ver un plan" } } ] } } })
    );
    let four: Vec<(String, String)> = (0..4).map(|i| (format!("b{i}"), "t".into())).collect();
    assert!(Content::buttons("x", &four).unwrap_err().contains("1 to 3"));
    assert!(
        Content::buttons("x", &[("a".into(), "a title longer than twenty".into())])
            .unwrap_err()
            .contains("20")
    );

    let row = |i: usize| ListRow {
        id: format!("r{i}"),
        title: format!("{i} cuotas"),
        description: None,
    };
    let list = Content::list(
        "Elige un plan",
        "Planes",
        vec![ListSection {
            title: "Planes".into(),
            rows: (1..=3).map(row).collect(),
        }],
    )
    .unwrap();
    let v = serde_json::to_value(SendRequest::to("+56911112222", list)).unwrap();
    assert_eq!(v["interactive"]["type"], "list");
    assert_eq!(v["interactive"]["action"]["button"], "Planes");
    assert_eq!(
        v["interactive"]["action"]["sections"][0]["rows"][2]["id"],
        "r3"
    );
    let eleven = vec![ListSection {
        title: "P".into(),
        rows: (0..11).map(row).collect(),
    }];
    assert!(Content::list("x", "y", eleven)
        .unwrap_err()
        .contains("10 rows"));

    let doc = Content::document(
        DocumentSource::Link("https://example.com/s.pdf".into()),
        "estado.pdf",
        Some("Tu estado de cuenta"),
    );
    assert_eq!(
        serde_json::to_value(SendRequest::to("+56911112222", doc)).unwrap()["document"],
        json!({ "link": "https://example.com/s.pdf", "filename": "estado.pdf", "caption": "Tu estado de cuenta" })
    );
}

#[tokio::test]
async fn a_receipt_is_downloaded_kept_and_announced() {
    let graph = FakeGraph::start().await;
    graph.add_media("MEDIA-1", b"%PDF-1.4 receipt", "application/pdf");
    let mut h = Harness::new().await;
    h.inbound.media = Some(Arc::new(
        GraphClient::new(GraphConfig::new(&graph.base_url, TOKEN)).unwrap(),
    ));
    let debtor = h.debtor("d-1", "+56911112222").await;
    let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "w", "changes": [{
        "field": "messages", "value": { "metadata": { "phone_number_id": "1122334455667" },
        "messages": [{ "from": "56911112222", "id": "wamid.doc", "timestamp": "1773673200",
            "type": "document", "document": { "id": "MEDIA-1", "mime_type": "application/pdf",
            "sha256": "abc", "filename": "comprobante.pdf" } }] } }] }] });
    h.post(
        &serde_json::to_vec(&body).unwrap(),
        Some("app-secret-of-the-fixture-number"),
    )
    .await
    .unwrap();
    assert_eq!(h.drain().await.messages, 1);
    let key = "media/t1/document/MEDIA-1";
    assert_eq!(
        h.blobs.get(key).await.unwrap().as_deref(),
        Some(&b"%PDF-1.4 receipt"[..])
    );
    let events = h.published().await;
    let (_, detail) = events
        .iter()
        .find(|(t, _)| t == "MediaReceived")
        .expect("announced");
    assert_eq!(detail["blob"], key);
    assert_eq!(detail["debtor"], "d-1");
    assert_eq!(detail["filename"], "comprobante.pdf");
    let conversation = h
        .store
        .conversation(&h.tenant, &debtor.id, 5)
        .await
        .unwrap();
    assert!(
        conversation[0].text.contains("comprobante.pdf"),
        "{}",
        conversation[0].text
    );
    // A medium Meta no longer has: the message is still recorded, without the file.
    let missing = body
        .to_string()
        .replace("MEDIA-1", "MEDIA-GONE")
        .replace("wamid.doc", "wamid.doc2");
    h.post(missing.as_bytes(), Some("app-secret-of-the-fixture-number"))
        .await
        .unwrap();
    assert_eq!(h.drain().await.messages, 1);
    assert_eq!(
        h.blobs.get("media/t1/document/MEDIA-GONE").await.unwrap(),
        None
    );
}

#[test]
fn an_agency_gets_whatsapp_only_when_it_is_enabled() {
    let mut agency = Tenant {
        id: cobro::domain::TenantId::parse("a").unwrap(),
        name: "Agencia".into(),
        country: "CO".into(),
        kind: TenantKind::Agency,
        channels: vec![ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email],
        whatsapp_enabled: false,
        sender_ids: Default::default(),
        policy: None,
        strategies: None,
        plan_rules: Default::default(),
        pay_page: None,
        chat: Default::default(),
    };
    assert_eq!(
        agency.usable_channels().collect::<Vec<_>>(),
        [ChannelKind::Sms, ChannelKind::Email]
    );
    assert_eq!(
        Tenant::default_channels(TenantKind::Agency),
        [ChannelKind::Sms, ChannelKind::Email]
    );
    agency.whatsapp_enabled = true;
    assert_eq!(agency.usable_channels().count(), 3);
    let creditor = Tenant {
        kind: TenantKind::Creditor,
        whatsapp_enabled: false,
        ..agency
    };
    assert_eq!(
        creditor.usable_channels().next(),
        Some(ChannelKind::Whatsapp)
    );
}

// ---------------------------------------------------------------------------------------------
// The access token, asked per call: a rotated deployment token is picked up by a warm client,
// and a number registered with its own credentials calls with its own token.
// ---------------------------------------------------------------------------------------------

const DEPLOYMENT_SECRET: &str = "cobro/test/whatsapp";
const PREFIX: &str = "cobro/test/";

fn token_only(token: &str) -> WhatsAppSecrets {
    WhatsAppSecrets {
        access_token: token.into(),
        ..Default::default()
    }
}

/// WhatsApp over `graph` with its tokens from `store`, read through a cache of `ttl`, as the
/// Lambdas build it when `COBRO_WHATSAPP_SECRET_ARN` is set.
fn stored_tokens(graph: &FakeGraph, store: Arc<MemorySecrets>, ttl: Duration) -> GraphClient {
    let cached = Arc::new(CachedSecrets::new(store, ttl));
    let mut config = GraphConfig::new(&graph.base_url, "not-this-one");
    config.tokens = Arc::new(SecretTokens::new(cached, DEPLOYMENT_SECRET, PREFIX));
    GraphClient::new(config).unwrap()
}

/// A template message sent from `number`, as the sender hands it to the channel.
fn from_number(number: &str) -> ChannelMessage {
    ChannelMessage {
        channel: ChannelKind::Whatsapp,
        to: Recipient {
            phone: Phone::parse("+56911112222").unwrap(),
            email: None,
            whatsapp_user_id: None,
        },
        send_as: SendAs {
            whatsapp_phone_number_id: Some(number.into()),
            ..Default::default()
        },
        language: Language::Es,
        template: TemplateRef {
            name: "payment_reminder_due_today".into(),
            params: vec!["Ana".into()],
            opt_out_button: true,
        },
        text: "Hola Ana".into(),
        form: Form::Template,
        subject: None,
        correlation: "t1|a1|d1".into(),
        choices: None,
    }
}

#[tokio::test]
async fn a_rotated_deployment_token_is_used_once_the_cache_expires() {
    let graph = FakeGraph::start().await;
    let store = MemorySecrets::new();
    store.set(DEPLOYMENT_SECRET, &token_only("old-token"));
    graph.set_tokens(&["old-token"]);
    let ttl = Duration::from_millis(50);
    let whatsapp = WhatsAppChannel::new(stored_tokens(&graph, store.clone(), ttl));
    whatsapp.send(&from_number("1000000000001")).await.unwrap();
    // The operator's rotation: a new token in the secret, then the old one revoked at Meta.
    store.set(DEPLOYMENT_SECRET, &token_only("new-token"));
    graph.set_tokens(&["new-token"]);
    tokio::time::sleep(ttl * 3).await;
    whatsapp
        .send(&from_number("1000000000001"))
        .await
        .expect("the same warm client sends with the new token");
    assert_eq!(graph.bearers(), ["old-token", "new-token"]);
}

#[tokio::test]
async fn a_number_with_its_own_token_sends_and_downloads_with_it() {
    let graph = FakeGraph::start().await;
    graph.add_media("MEDIA-1", b"%PDF-1.4", "application/pdf");
    let store = MemorySecrets::new();
    store.set(DEPLOYMENT_SECRET, &token_only("deployment-token"));
    let (own, app_only, none) = ("1000000000001", "1000000000002", "1000000000003");
    store.set(
        &whatsapp_number_secret(PREFIX, own),
        &WhatsAppSecrets {
            access_token: "own-token".into(),
            app_secret: "own-app-secret".into(),
            verify_token: String::new(),
        },
    );
    // Its own app secret only: it calls with the deployment's token.
    store.set(
        &whatsapp_number_secret(PREFIX, app_only),
        &WhatsAppSecrets {
            app_secret: "other-app-secret".into(),
            ..Default::default()
        },
    );
    graph.set_tokens(&["deployment-token", "own-token"]);
    let client = stored_tokens(&graph, store, Duration::from_secs(300));
    let whatsapp = WhatsAppChannel::new(client.clone());
    for number in [own, app_only, none] {
        whatsapp.send(&from_number(number)).await.unwrap();
    }
    let from: Vec<String> = graph.sends().into_iter().map(|(id, _)| id).collect();
    assert_eq!(from, [own, app_only, none]);
    assert_eq!(
        graph.bearers(),
        ["own-token", "deployment-token", "deployment-token"]
    );
    // A medium sent to the number: both the lookup and the download with its token.
    let medium = client.fetch("MEDIA-1", own).await.unwrap();
    assert_eq!(medium.bytes, b"%PDF-1.4");
    client.fetch("MEDIA-1", none).await.unwrap();
    assert_eq!(
        graph.bearers()[3..],
        [
            "own-token",
            "own-token",
            "deployment-token",
            "deployment-token"
        ]
    );
}

#[tokio::test]
async fn a_token_that_cannot_be_read_is_a_transient_failure_not_a_stop() {
    let graph = FakeGraph::start().await;
    graph.add_media("MEDIA-1", b"x", "text/plain");
    let store = MemorySecrets::new();
    store.set(DEPLOYMENT_SECRET, &token_only(TOKEN));
    let client = stored_tokens(&graph, store.clone(), Duration::ZERO);
    let whatsapp = WhatsAppChannel::new(client.clone());
    store.fail(true);
    let e = whatsapp
        .send(&from_number("1000000000001"))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Transient, "{e}");
    let e = client.fetch("MEDIA-1", "1000000000001").await.unwrap_err();
    assert_eq!(e.class, FailureClass::Transient, "{e}");
    // The deployment's secret gone, or its token emptied mid-rotation: retried too.
    store.fail(false);
    store.set(DEPLOYMENT_SECRET, &token_only(""));
    let e = whatsapp
        .send(&from_number("1000000000001"))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Transient, "{e}");
    let empty = MemorySecrets::new();
    let e = WhatsAppChannel::new(stored_tokens(&graph, empty, Duration::ZERO))
        .send(&from_number("1000000000001"))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Transient, "{e}");
    assert!(graph.bearers().is_empty(), "nothing reached Graph");
}
