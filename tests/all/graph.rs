//! The Graph API's wire formats as cobro writes them, and media download through the fake
//! Graph API into the blob store.

use serde_json::{json, Value};
use std::sync::Arc;

use cobro::domain::{ChannelKind, Tenant, TenantKind};
use cobro::ports::Blobs;
use cobro::whatsapp::client::{GraphClient, GraphConfig};
use cobro::whatsapp::send::{Content, DocumentSource, ListRow, ListSection, SendRequest};
use cobro_tests::fake_graph::{FakeGraph, TOKEN};

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
