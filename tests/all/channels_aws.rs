//! The SMS and e-mail channels on their AWS services. E-mail runs against moto (SES v2), and
//! skips like the other moto tests without `COBRO_MOTO_URL`. moto has no End User Messaging SMS
//! (pinpoint-sms-voice-v2), so SMS runs against a local server speaking that service's AWS
//! JSON 1.0 protocol: it records each request and answers what the test scripted, the way AWS
//! answers (`__type`, `Message`, `Reason`, `Fields`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};

use cobro::adapters::aws::{
    decode_tag_value, EmailChannel, SmsChannel, EMAIL_TAG_CORRELATION, SMS_CONTEXT_CORRELATION,
};
use cobro::domain::{ChannelKind, Language, Phone};
use cobro::ports::channel::{
    Channel, ChannelMessage, FailureClass, Form, Recipient, SendAs, TemplateRef,
};
use cobro_tests::moto::{moto, unique};

fn message(channel: ChannelKind) -> ChannelMessage {
    ChannelMessage {
        channel,
        to: Recipient {
            phone: Phone::parse("+5491122334455").unwrap(),
            email: Some("debtor@example.com".into()),
            whatsapp_user_id: None,
        },
        send_as: SendAs::default(),
        language: Language::Es,
        template: TemplateRef {
            name: "payment_due".into(),
            params: vec!["$ 1.500".into()],
            opt_out_button: false,
        },
        text: "Su cuota de $ 1.500 vence el 5/12. Responda BAJA para no recibir más mensajes."
            .into(),
        form: Form::Template,
        subject: None,
        correlation: "tenant-1|account-9|decision-3".into(),
        choices: None,
    }
}

/// An SDK configuration pointed at `endpoint` with test credentials.
async fn sdk(endpoint: &str) -> SdkConfig {
    cobro_tests::moto::sdk_config(endpoint).await
}

// --- the fake AWS service -----------------------------------------------------------------

/// One request as the fake service received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// What the fake service answers: a status, a JSON body, after a delay.
#[derive(Clone)]
struct Answer {
    status: StatusCode,
    body: Value,
    delay: Duration,
}

impl Answer {
    fn ok(message_id: &str) -> Self {
        Self::status(StatusCode::OK, json!({ "MessageId": message_id }))
    }

    fn status(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            delay: Duration::ZERO,
        }
    }

    /// An AWS JSON 1.0 error: `__type` names the exception.
    fn error(status: u16, kind: &str, extra: Value) -> Self {
        let mut body = json!({ "__type": kind, "Message": format!("{kind} from the fake") });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        Self::status(StatusCode::from_u16(status).unwrap(), body)
    }
}

struct FakeAws {
    endpoint: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeAws {
    async fn start(answer: Answer) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let handler = move |method: axum::http::Method,
                            uri: axum::http::Uri,
                            headers: HeaderMap,
                            body: Bytes| {
            let log = log.clone();
            let answer = answer.clone();
            async move {
                log.lock().unwrap().push(Received {
                    method: method.to_string(),
                    path: uri.path().to_string(),
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                tokio::time::sleep(answer.delay).await;
                let body = if answer.body.is_null() {
                    String::new()
                } else {
                    answer.body.to_string()
                };
                (
                    answer.status,
                    [
                        ("content-type", "application/x-amz-json-1.0"),
                        ("x-amzn-requestid", "fake-request-id"),
                    ],
                    body,
                )
                    .into_response()
            }
        };
        let router = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { endpoint, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn channel(&self) -> SmsChannel {
        SmsChannel::new(&sdk(&self.endpoint).await).default_origination("+15550000000")
    }
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn sms_sends_one_signed_transactional_send_text_message() {
    let fake = FakeAws::start(Answer::ok("sms-message-1")).await;
    let channel = fake.channel().await.configuration_set("cobro-sms-events");

    let id = channel.send(&message(ChannelKind::Sms)).await.unwrap();
    assert_eq!(id, "sms-message-1");

    let mut tenant = message(ChannelKind::Sms);
    tenant.send_as.sms_origination = Some("pool-0123456789abcdef".into());
    channel.send(&tenant).await.unwrap();

    let received = fake.received();
    assert_eq!(received.len(), 2, "one request per message, no retries");
    let first = &received[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/");
    assert_eq!(
        header(first, "x-amz-target"),
        "PinpointSMSVoiceV2.SendTextMessage"
    );
    assert_eq!(header(first, "content-type"), "application/x-amz-json-1.0");
    let auth = header(first, "authorization");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=testing/")
            && auth.contains("/us-east-1/sms-voice/aws4_request")
            && auth.contains("Signature="),
        "SigV4 for sms-voice: {auth}"
    );
    assert!(!header(first, "x-amz-date").is_empty());
    assert_eq!(
        first.body,
        json!({
            "DestinationPhoneNumber": "+5491122334455",
            "OriginationIdentity": "+15550000000",
            "MessageBody": message(ChannelKind::Sms).text,
            "MessageType": "TRANSACTIONAL",
            "ConfigurationSetName": "cobro-sms-events",
            "Context": { SMS_CONTEXT_CORRELATION: "tenant-1|account-9|decision-3" },
        })
    );
    // The tenant's own origination identity wins over the adapter's default.
    assert_eq!(
        received[1].body["OriginationIdentity"],
        "pool-0123456789abcdef"
    );
}

#[tokio::test]
async fn sms_without_origination_or_configuration_set_leaves_them_to_aws() {
    let fake = FakeAws::start(Answer::ok("sms-message-2")).await;
    let channel = SmsChannel::new(&sdk(&fake.endpoint).await);
    channel.send(&message(ChannelKind::Sms)).await.unwrap();
    let body = &fake.received()[0].body;
    assert!(body.get("OriginationIdentity").is_none(), "{body}");
    assert!(body.get("ConfigurationSetName").is_none(), "{body}");
}

#[tokio::test]
async fn sms_errors_map_onto_failure_classes() {
    use FailureClass::*;
    let cases = [
        (
            Answer::error(400, "ThrottlingException", json!({})),
            Throttled,
        ),
        (
            Answer::error(
                402,
                "ServiceQuotaExceededException",
                json!({ "Reason": "VERIFIED_DESTINATION_NUMBERS_PER_ACCOUNT" }),
            ),
            Throttled,
        ),
        (
            Answer::error(
                402,
                "ServiceQuotaExceededException",
                json!({ "Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT" }),
            ),
            StopTenant,
        ),
        (
            Answer::error(
                500,
                "InternalServerException",
                json!({ "RequestId": "r-1" }),
            ),
            Transient,
        ),
        (
            Answer::status(StatusCode::SERVICE_UNAVAILABLE, Value::Null),
            Transient,
        ),
        (
            Answer::error(
                409,
                "ConflictException",
                json!({
                    "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT",
                    "ResourceType": "opt-out-list",
                    "ResourceId": "Default",
                }),
            ),
            Unreachable,
        ),
        (
            Answer::error(
                409,
                "ConflictException",
                json!({ "Reason": "DESTINATION_PHONE_NUMBER_NOT_VERIFIED" }),
            ),
            Unreachable,
        ),
        (
            Answer::error(
                400,
                "ValidationException",
                json!({
                    "Reason": "INVALID_PARAMETER",
                    "Fields": [{ "Name": "DestinationPhoneNumber", "Message": "not a number" }],
                }),
            ),
            Unreachable,
        ),
        (
            Answer::error(
                400,
                "ValidationException",
                json!({ "Reason": "DESTINATION_COUNTRY_BLOCKED" }),
            ),
            Unreachable,
        ),
        (
            Answer::error(
                400,
                "ValidationException",
                json!({
                    "Reason": "FIELD_VALIDATION_FAILED",
                    "Fields": [{ "Name": "MessageBody", "Message": "too long" }],
                }),
            ),
            Rejected,
        ),
        (
            Answer::error(
                403,
                "AccessDeniedException",
                json!({ "Reason": "ACCOUNT_DISABLED" }),
            ),
            StopTenant,
        ),
        (
            Answer::error(
                404,
                "ResourceNotFoundException",
                json!({ "ResourceType": "phone-number", "ResourceId": "+15550000000" }),
            ),
            StopTenant,
        ),
    ];
    for (answer, class) in cases {
        let shown = answer.body.to_string();
        let fake = FakeAws::start(answer).await;
        let err = fake
            .channel()
            .await
            .send(&message(ChannelKind::Sms))
            .await
            .unwrap_err();
        assert_eq!(err.class, class, "{shown} gave {err}");
        assert!(err.reason.starts_with("SMS: "), "{err}");
        assert_eq!(fake.received().len(), 1, "{shown}: the SDK must not retry");
    }
}

#[tokio::test]
async fn sms_error_reasons_name_aws_code_and_reason() {
    let fake = FakeAws::start(Answer::error(
        409,
        "ConflictException",
        json!({ "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT" }),
    ))
    .await;
    let err = fake
        .channel()
        .await
        .send(&message(ChannelKind::Sms))
        .await
        .unwrap_err();
    assert!(err.reason.contains("ConflictException"), "{err}");
    assert!(
        err.reason.contains("DESTINATION_PHONE_NUMBER_OPTED_OUT"),
        "{err}"
    );
}

#[tokio::test]
async fn sms_that_times_out_is_a_timeout_and_is_not_retried() {
    let mut slow = Answer::ok("too-late");
    slow.delay = Duration::from_secs(5);
    let fake = FakeAws::start(slow).await;
    let config = aws_sdk_pinpointsmsvoicev2::config::Builder::from(&sdk(&fake.endpoint).await)
        .retry_config(aws_sdk_pinpointsmsvoicev2::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_pinpointsmsvoicev2::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(300))
                .build(),
        )
        .build();
    let channel = SmsChannel::from_client(aws_sdk_pinpointsmsvoicev2::Client::from_conf(config));
    let err = channel.send(&message(ChannelKind::Sms)).await.unwrap_err();
    assert_eq!(err.class, FailureClass::Timeout, "{err}");
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn sms_to_an_endpoint_that_refuses_connections_is_transient() {
    // A port nobody listens on: bound, then released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let channel = SmsChannel::new(&sdk(&format!("http://127.0.0.1:{port}")).await);
    let err = channel.send(&message(ChannelKind::Sms)).await.unwrap_err();
    assert_eq!(err.class, FailureClass::Transient, "{err}");
}

#[tokio::test]
async fn sms_without_text_is_rejected_without_calling_aws() {
    let fake = FakeAws::start(Answer::ok("never")).await;
    let mut m = message(ChannelKind::Sms);
    m.text = "  ".into();
    let err = fake.channel().await.send(&m).await.unwrap_err();
    assert_eq!(err.class, FailureClass::Rejected);
    assert!(fake.received().is_empty());
}

// --- e-mail ---------------------------------------------------------------------------------

#[tokio::test]
async fn email_without_an_address_is_unreachable_without_calling_aws() {
    // Any call would land on this server and be counted.
    let fake = FakeAws::start(Answer::status(StatusCode::INTERNAL_SERVER_ERROR, json!({}))).await;
    let channel = EmailChannel::new(&sdk(&fake.endpoint).await, "billing@acme.example");
    for email in [None, Some(""), Some("   "), Some("not-an-address")] {
        let mut m = message(ChannelKind::Email);
        m.to.email = email.map(str::to_string);
        let err = channel.send(&m).await.unwrap_err();
        assert_eq!(err.class, FailureClass::Unreachable, "{email:?}: {err}");
    }
    assert!(fake.received().is_empty(), "{:?}", fake.received());
}

/// The messages moto's SES holds, from its inspection endpoint (`/moto-api/data.json`, the
/// `ses` backend's `Message` models). That endpoint dumps every backend, and moto fails it
/// (HTTP 500, `NoSuchBucket`) once for each S3 multipart part it has not dumped before: the
/// export tests upload in parts on the same moto. Each failure settles a part, so asking again
/// gets through.
async fn moto_sent_emails(endpoint: &str) -> Vec<Value> {
    let http = cobro::https::client_builder().no_proxy().build().unwrap();
    let url = format!("{endpoint}/moto-api/data.json");
    for _ in 0..100 {
        let response = http.get(&url).send().await.expect("moto's data.json");
        if response.status().is_server_error() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        let data: Value = response.json().await.expect("JSON");
        return data["ses"]["Message"]
            .as_array()
            .cloned()
            .unwrap_or_default();
    }
    panic!("moto's data.json kept failing: {url}");
}

#[tokio::test]
async fn email_is_sent_through_ses_and_lands_in_moto() {
    let Some(moto) = moto().await else { return };
    let ses = aws_sdk_sesv2::Client::new(&moto.config);
    let from = format!("{}@acme.example", unique("billing"));
    let tenant_from = format!("{}@tenant.example", unique("cobranzas"));
    for identity in [&from, &tenant_from] {
        ses.create_email_identity()
            .email_identity(identity)
            .send()
            .await
            .expect("verify the sender with moto");
    }
    let set = unique("cobro-email-events");
    ses.create_configuration_set()
        .configuration_set_name(&set)
        .send()
        .await
        .expect("configuration set");
    let channel = EmailChannel::new(&moto.config, &from).configuration_set(&set);
    let channel_plain = EmailChannel::new(&moto.config, &from);

    let mut with_subject = message(ChannelKind::Email);
    with_subject.subject = Some("Su cuota vence pronto".into());
    let id = channel_plain.send(&with_subject).await.unwrap();
    assert!(!id.is_empty());

    let mut portuguese = message(ChannelKind::Email);
    portuguese.language = Language::Pt;
    portuguese.send_as.email_from = Some(tenant_from.clone());
    portuguese.to.email = Some("devedor@example.com".into());
    let id_pt = channel.send(&portuguese).await.unwrap();

    let sent = moto_sent_emails(&moto.endpoint).await;
    let find = |id: &str| {
        sent.iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{id} not among moto's sent messages"))
            .clone()
    };
    let first = find(&id);
    assert_eq!(first["source"], json!(from));
    assert_eq!(first["subject"], "Su cuota vence pronto");
    assert_eq!(first["body"], json!(with_subject.text));
    assert_eq!(
        first["destinations"]["ToAddresses"],
        json!(["debtor@example.com"])
    );
    let second = find(&id_pt);
    assert_eq!(second["source"], json!(tenant_from));
    assert_eq!(second["subject"], "Lembrete de pagamento");
    assert_eq!(
        second["destinations"]["ToAddresses"],
        json!(["devedor@example.com"])
    );
}

#[tokio::test]
async fn email_from_an_unverified_address_stops_the_tenant() {
    let Some(moto) = moto().await else { return };
    let unverified = format!("{}@nowhere.example", unique("billing"));
    let channel = EmailChannel::new(&moto.config, &unverified);
    let err = channel
        .send(&message(ChannelKind::Email))
        .await
        .unwrap_err();
    assert_eq!(err.class, FailureClass::StopTenant, "{err}");
    assert!(err.reason.contains("MessageRejected"), "{err}");
}

#[tokio::test]
async fn email_request_has_utf8_simple_content_tag_and_configuration_set() {
    // SES v2 is REST-JSON: `POST /v2/email/outbound-emails`, the same recording server.
    let fake = FakeAws::start(Answer::ok("email-message-1")).await;
    let channel = EmailChannel::new(&sdk(&fake.endpoint).await, "Acme <billing@acme.example>")
        .configuration_set("cobro-email-events");
    let id = channel.send(&message(ChannelKind::Email)).await.unwrap();
    assert_eq!(id, "email-message-1");
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v2/email/outbound-emails")
    );
    let auth = header(r, "authorization");
    assert!(auth.contains("/us-east-1/ses/aws4_request"), "{auth}");
    assert_eq!(
        r.body,
        json!({
            "FromEmailAddress": "Acme <billing@acme.example>",
            "Destination": { "ToAddresses": ["debtor@example.com"] },
            "Content": { "Simple": {
                "Subject": { "Data": "Recordatorio de pago", "Charset": "UTF-8" },
                "Body": { "Text": { "Data": message(ChannelKind::Email).text, "Charset": "UTF-8" } },
            } },
            "EmailTags": [{
                "Name": EMAIL_TAG_CORRELATION,
                "Value": "tenant-1_7Caccount-9_7Cdecision-3",
            }],
            "ConfigurationSetName": "cobro-email-events",
        })
    );
}

#[tokio::test]
async fn email_errors_map_onto_failure_classes() {
    use FailureClass::*;
    let cases = [
        (
            Answer::error(429, "TooManyRequestsException", json!({})),
            Throttled,
        ),
        (
            Answer::error(400, "LimitExceededException", json!({})),
            Throttled,
        ),
        (
            Answer::error(400, "AccountSuspendedException", json!({})),
            StopTenant,
        ),
        (
            Answer::error(400, "SendingPausedException", json!({})),
            StopTenant,
        ),
        (
            Answer::error(400, "MailFromDomainNotVerifiedException", json!({})),
            StopTenant,
        ),
        (
            Answer::error(404, "NotFoundException", json!({})),
            StopTenant,
        ),
        (Answer::error(400, "MessageRejected", json!({})), Rejected),
        (
            Answer::status(
                StatusCode::BAD_REQUEST,
                json!({
                    "__type": "MessageRejected",
                    "message": "Email address is not verified. The following identities failed \
                                the check in region US-EAST-1: debtor@example.com",
                }),
            ),
            Unreachable,
        ),
        (
            Answer::error(400, "BadRequestException", json!({})),
            Rejected,
        ),
        (Answer::error(500, "InternalFailure", json!({})), Transient),
        (
            Answer::status(StatusCode::BAD_GATEWAY, Value::Null),
            Transient,
        ),
    ];
    for (answer, class) in cases {
        let shown = answer.body.to_string();
        let fake = FakeAws::start(answer).await;
        let channel = EmailChannel::new(&sdk(&fake.endpoint).await, "billing@acme.example");
        let err = channel
            .send(&message(ChannelKind::Email))
            .await
            .unwrap_err();
        assert_eq!(err.class, class, "{shown} gave {err}");
        assert_eq!(fake.received().len(), 1, "{shown}: the SDK must not retry");
    }
}

#[test]
fn email_correlation_tag_decodes_back() {
    let tag = cobro::adapters::aws::encode_tag_value("tenant-1|account-9|decision-3");
    assert_eq!(EMAIL_TAG_CORRELATION, "cobro-correlation");
    assert_eq!(
        decode_tag_value(&tag).as_deref(),
        Some("tenant-1|account-9|decision-3")
    );
}
