//! Stripe, in detail: the exact Checkout Session form and headers the adapter sends, every
//! error class, the local server's own Stripe-like validation, the lender's pay page (encoding,
//! signature, bad templates), and Stripe's events as documented (a paid session and its intent
//! map to one payment). `links.rs` holds the end-to-end happy paths.

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use cobro::adapters::pay_page::PayPageLinks;
use cobro::adapters::stripe_checkout::{StripeCheckout, StripeConfig};
use cobro::domain::{AccountId, Currency, Money, PaymentId, TenantId};
use cobro::ports::{LinkError, LinkRequest, PaymentLinks};
use cobro_payment_confirmed::stripe::{is_stripe_source, parse, StripeEvent};
use cobro_tests::fake_stripe::{FakeStripe, KEY};

const VERSION: &str = "2024-06-20";

fn in_minutes(m: i64) -> Timestamp {
    Timestamp::now()
        .checked_add(SignedDuration::from_mins(m))
        .unwrap()
}

fn request(expires_at: Timestamp) -> LinkRequest {
    LinkRequest {
        tenant: TenantId::parse("acme").unwrap(),
        account: AccountId::parse("LN-7").unwrap(),
        plan: Some("plan-1".into()),
        instalment: Some(3),
        amount: Money::new(45_500, Currency::parse("CLP").unwrap()),
        description: "Cuota 3 de 6".into(),
        expires_at,
        idempotency_key: "acme-LN-7-plan-1-3".into(),
    }
}

fn checkout(base: &str, key: &str) -> StripeCheckout {
    StripeCheckout::new(StripeConfig {
        base_url: format!("{base}/"), // a trailing slash must not double up in the path
        secret_key: key.into(),
        api_version: VERSION.into(),
        success_url: "https://acme.example/paid?s={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://acme.example/cancel".into(),
    })
    .unwrap()
}

fn sorted(mut form: Vec<(String, String)>) -> Vec<(String, String)> {
    form.sort();
    form
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    sorted(
        expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[tokio::test]
async fn stripe_checkout_form_and_headers_are_exactly_stripes() {
    let fake = FakeStripe::start().await;
    let expires = in_minutes(90);
    let link = checkout(&fake.base_url, KEY)
        .create(&request(expires))
        .await
        .unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    let exp = expires.as_second().to_string();
    // Every field, and nothing else: an extra or misspelt nested key is a 400 at Stripe.
    assert_eq!(
        sorted(call.form.clone()),
        pairs(&[
            ("mode", "payment"),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", "clp"),
            // CLP is zero-decimal at Stripe and has exponent 0 in cobro: the same number.
            ("line_items[0][price_data][unit_amount]", "45500"),
            (
                "line_items[0][price_data][product_data][name]",
                "Cuota 3 de 6"
            ),
            ("expires_at", &exp),
            (
                "success_url",
                "https://acme.example/paid?s={CHECKOUT_SESSION_ID}"
            ),
            ("cancel_url", "https://acme.example/cancel"),
            ("client_reference_id", "LN-7"),
            ("metadata[tenant]", "acme"),
            ("metadata[account]", "LN-7"),
            ("metadata[plan]", "plan-1"),
            ("metadata[instalment]", "3"),
            ("payment_intent_data[metadata][tenant]", "acme"),
            ("payment_intent_data[metadata][account]", "LN-7"),
            ("payment_intent_data[metadata][plan]", "plan-1"),
            ("payment_intent_data[metadata][instalment]", "3"),
        ])
    );
    assert_eq!(call.idempotency_key.as_deref(), Some("acme-LN-7-plan-1-3"));
    assert_eq!(call.stripe_version.as_deref(), Some(VERSION));
    // The session's own expiry is what the link reports.
    assert_eq!(link.expires_at.as_second(), expires.as_second());
}

#[tokio::test]
async fn stripe_metadata_without_a_plan_names_only_tenant_and_account() {
    let fake = FakeStripe::start().await;
    let mut r = request(in_minutes(60));
    r.plan = None;
    r.instalment = None;
    r.amount = Money::new(1_250, Currency::parse("USD").unwrap());
    checkout(&fake.base_url, KEY).create(&r).await.unwrap();
    let call = &fake.calls()[0];
    let metadata: Vec<&str> = call
        .form
        .iter()
        .filter(|(k, _)| k.contains("metadata"))
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        metadata,
        [
            "metadata[tenant]",
            "payment_intent_data[metadata][tenant]",
            "metadata[account]",
            "payment_intent_data[metadata][account]"
        ]
    );
    // USD has two decimals in both: 12.50 USD is 1250.
    assert_eq!(call.get("line_items[0][price_data][currency]"), Some("usd"));
    assert_eq!(
        call.get("line_items[0][price_data][unit_amount]"),
        Some("1250")
    );
}

#[tokio::test]
async fn stripe_refuses_expiry_and_amount_before_calling() {
    let fake = FakeStripe::start().await;
    let links = checkout(&fake.base_url, KEY);
    for minutes in [-5, 10, 29, 24 * 60 + 5, 48 * 60] {
        let err = links
            .create(&request(in_minutes(minutes)))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LinkError::Invalid { field, reason } if field == "expires_at" && reason.contains("30 minutes")),
            "{minutes} min: {err:?}"
        );
    }
    let mut zero = request(in_minutes(60));
    zero.amount = Money::new(0, Currency::parse("CLP").unwrap());
    assert!(matches!(
        links.create(&zero).await,
        Err(LinkError::Invalid { field, .. }) if field == "amount"
    ));
    assert!(fake.calls().is_empty(), "nothing reached Stripe");
    // Just inside the window both ends pass, and Stripe (the fake) agrees.
    for (minutes, key) in [(31, "near"), (23 * 60 + 50, "far")] {
        let mut r = request(in_minutes(minutes));
        r.idempotency_key = key.into();
        links.create(&r).await.unwrap();
    }
    assert_eq!(fake.calls().len(), 2);
}

fn stripe_error(kind: &str, code: Option<&str>, param: Option<&str>, message: &str) -> Value {
    json!({ "error": { "type": kind, "code": code, "param": param, "message": message,
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_x" } })
}

#[tokio::test]
async fn stripe_http_errors_fall_into_their_classes() {
    let fake = FakeStripe::start().await;
    let links = checkout(&fake.base_url, KEY);
    let r = request(in_minutes(120));
    let cases: Vec<(u16, Value)> = vec![
        (
            500,
            stripe_error("api_error", None, None, "Something went wrong"),
        ),
        (
            503,
            json!("<html>Service Unavailable</html>"), // a proxy's page, not Stripe's object
        ),
        (
            429,
            stripe_error(
                "invalid_request_error",
                Some("rate_limit"),
                None,
                "Too many requests",
            ),
        ),
    ];
    for (status, body) in cases {
        fake.script(status, body);
        let err = links.create(&r).await.unwrap_err();
        assert!(matches!(err, LinkError::Transient(_)), "{status}: {err:?}");
    }
    fake.script(
        403,
        stripe_error(
            "invalid_request_error",
            None,
            None,
            "The provided key 'rk_test_***' does not have the required permissions for this endpoint.",
        ),
    );
    assert!(matches!(
        links.create(&r).await,
        Err(LinkError::Unauthorized(_))
    ));
    for (status, kind, code, param) in [
        (402, "card_error", "card_declined", None),
        (
            404,
            "invalid_request_error",
            "resource_missing",
            Some("line_items[0][price_data][product]"),
        ),
        (
            400,
            "invalid_request_error",
            "amount_too_small",
            Some("line_items[0][price_data][unit_amount]"),
        ),
    ] {
        fake.script(status, stripe_error(kind, Some(code), param, "refused"));
        let Err(LinkError::Rejected(why)) = links.create(&r).await else {
            panic!("{status} should be Rejected")
        };
        assert!(why.contains(kind) && why.contains(code), "{why}");
        if let Some(p) = param {
            assert!(why.contains(p), "the reason names the param: {why}");
        }
    }
    // A 200 without a url (an embedded-mode session) is no link.
    fake.script(
        200,
        json!({ "id": "cs_test_x", "object": "checkout.session", "url": null, "expires_at": 1 }),
    );
    assert!(matches!(
        links.create(&r).await,
        Err(LinkError::Rejected(w)) if w.contains("cs_test_x")
    ));
    // Stripe's answer decides the expiry the link reports.
    fake.script(
        200,
        json!({ "id": "cs_test_y", "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_y", "expires_at": 1_900_000_000 }),
    );
    let link = links.create(&r).await.unwrap();
    assert_eq!(link.expires_at.as_second(), 1_900_000_000);
    assert_eq!(link.provider_id.as_deref(), Some("cs_test_y"));
}

/// The stand-in is only worth its tests if it refuses what Stripe refuses.
#[tokio::test]
async fn fake_stripe_validates_like_stripe() {
    let fake = FakeStripe::start().await;
    let http = cobro_tests::http();
    let url = format!("{}/v1/checkout/sessions", fake.base_url);
    let now = Timestamp::now().as_second();
    let good = |exp: i64| -> Vec<(String, String)> {
        pairs(&[
            ("mode", "payment"),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", "clp"),
            ("line_items[0][price_data][unit_amount]", "1000"),
            ("line_items[0][price_data][product_data][name]", "x"),
            ("success_url", "https://a.example/ok"),
            ("expires_at", &exp.to_string()),
        ])
    };
    let post = |form: Vec<(String, String)>, key: Option<&'static str>| {
        let mut rb = http.post(&url).bearer_auth(KEY).form(&form);
        if let Some(k) = key {
            rb = rb.header("Idempotency-Key", k);
        }
        async move {
            let resp = rb.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let without = |name: &str| -> Vec<(String, String)> {
        good(now + 3_600)
            .into_iter()
            .filter(|(k, _)| !k.starts_with(name))
            .collect()
    };
    for (form, param) in [
        (without("mode"), "mode"),
        (without("line_items"), "line_items"),
        (
            without("line_items[0][price_data][product_data]"),
            "line_items[0][price_data][product_data][name]",
        ),
        (
            without("line_items[0][quantity]"),
            "line_items[0][quantity]",
        ),
        (good(now + 600), "expires_at"),
        (good(now + 90_000), "expires_at"),
    ] {
        let (status, body) = post(form, None).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], param, "{body}");
    }
    // Wrong key; JSON instead of a form.
    let resp = http
        .post(&url)
        .bearer_auth("sk_test_other")
        .form(&good(now + 3_600))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = http
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({ "mode": "payment" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // Idempotency: the same key and body replay the session; another body is refused.
    let (s1, first) = post(good(now + 3_600), Some("k1")).await;
    let (s2, replay) = post(good(now + 3_600), Some("k1")).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first["id"], replay["id"]);
    let (s3, other) = post(good(now + 7_200), Some("k1")).await;
    assert_eq!(s3, 400);
    assert_eq!(other["error"]["type"], "idempotency_error");
    // Without a key, each request is a new session; metadata comes back on the session.
    let mut with_meta = good(now + 3_600);
    with_meta.push(("metadata[account]".into(), "LN-7".into()));
    let (_, a) = post(with_meta.clone(), None).await;
    let (_, b) = post(with_meta, None).await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["metadata"]["account"], "LN-7");
    assert_eq!(a["object"], "checkout.session");
}

#[tokio::test]
async fn pay_page_values_are_encoded_and_the_signature_covers_them() {
    let page = PayPageLinks::new(
        "https://pay.acme.example/{tenant}/{account}?amount={amount_minor}&currency={currency}&plan={plan}&i={instalment}&exp={expires_at}",
        Some("tenant-secret".into()),
    )
    .unwrap();
    let mut r = request(in_minutes(60));
    r.account = AccountId::parse("LN:2024@b").unwrap();
    r.plan = Some("p 1&i=9".into());
    let link = page.create(&r).await.unwrap();
    let (unsigned, sig) = link.url.rsplit_once("&sig=").unwrap();
    assert_eq!(
        unsigned,
        format!(
            "https://pay.acme.example/acme/LN%3A2024%40b?amount=45500&currency=CLP&plan=p%201%26i%3D9&i=3&exp={}",
            r.expires_at.as_second()
        ),
        "a value cannot add a query parameter of its own"
    );
    assert_eq!(sig.len(), 64, "hex SHA-256");
    assert_eq!(sig, PayPageLinks::sign("tenant-secret", unsigned));
    // The page detects a changed amount, and another tenant's secret does not verify.
    let tampered = unsigned.replace("amount=45500", "amount=100");
    assert_ne!(sig, PayPageLinks::sign("tenant-secret", &tampered));
    assert_ne!(sig, PayPageLinks::sign("other-secret", unsigned));
    assert_eq!(link.provider_id, None);
    assert_eq!(link.expires_at, r.expires_at);
    // Missing plan and instalment leave the parameters empty, not "None".
    r.plan = None;
    r.instalment = None;
    let link = page.create(&r).await.unwrap();
    assert!(link.url.contains("&plan=&i=&exp="), "{}", link.url);
}

#[tokio::test]
async fn pay_page_without_a_query_or_secret() {
    let signed = PayPageLinks::new("https://pay.acme.example/{account}", Some("s".into()))
        .unwrap()
        .create(&request(in_minutes(60)))
        .await
        .unwrap();
    let (unsigned, sig) = signed.url.split_once("?sig=").unwrap();
    assert_eq!(unsigned, "https://pay.acme.example/LN-7");
    assert_eq!(sig, PayPageLinks::sign("s", unsigned));
    let plain = PayPageLinks::new("https://pay.acme.example/{account}", None)
        .unwrap()
        .create(&request(in_minutes(60)))
        .await
        .unwrap();
    assert_eq!(plain.url, "https://pay.acme.example/LN-7");
}

#[test]
fn pay_page_templates_are_checked_when_configured() {
    let reason = |t: &str| match PayPageLinks::new(t, None) {
        Err(LinkError::Invalid { field, reason }) => {
            assert_eq!(field, "template");
            reason
        }
        other => panic!("{t}: {other:?}"),
    };
    assert!(reason("https://p.example/{amount}").contains("{amount}"));
    assert!(reason("https://p.example/{account}?x={Account}").contains("{Account}"));
    assert!(reason("https://p.example/{account").contains('}'));
    assert!(reason("ftp://p.example/{account}").contains("http"));
    assert!(reason("pay.example/{account}").contains("http"));
}

// Stripe's events, written from Stripe's documented Event, Checkout Session and PaymentIntent
// objects (API version 2024-06-20), as its EventBridge partner source delivers them.

fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id, "object": "event", "api_version": VERSION, "created": created,
        "data": { "object": object }, "livemode": false, "pending_webhooks": 0,
        "request": { "id": null, "idempotency_key": null }, "type": kind
    })
}

fn session(payment_status: &str) -> Value {
    json!({
        "id": "cs_test_a1B2c3", "object": "checkout.session", "after_expiration": null,
        "allow_promotion_codes": null, "amount_subtotal": 45500, "amount_total": 45500,
        "automatic_tax": { "enabled": false, "liability": null, "status": null },
        "billing_address_collection": null, "cancel_url": "https://acme.example/cancel",
        "client_reference_id": "LN-7", "consent": null, "created": 1773670000,
        "currency": "clp", "customer": null, "customer_creation": "if_required",
        "customer_details": { "address": null, "email": "ana@example.com", "name": "Ana",
            "phone": null, "tax_exempt": "none", "tax_ids": [] },
        "customer_email": null, "expires_at": 1773756400, "invoice": null, "livemode": false,
        "locale": null,
        "metadata": { "tenant": "acme", "account": "LN-7", "plan": "plan-1", "instalment": "3" },
        "mode": "payment", "payment_intent": "pi_3PabcDEF", "payment_link": null,
        "payment_method_types": ["card"], "payment_status": payment_status,
        "status": if payment_status == "unpaid" { "open" } else { "complete" },
        "success_url": "https://acme.example/paid", "total_details":
            { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "url": null
    })
}

fn intent() -> Value {
    json!({
        "id": "pi_3PabcDEF", "object": "payment_intent", "amount": 45500,
        "amount_capturable": 0, "amount_received": 45500, "application": null,
        "capture_method": "automatic_async", "client_secret": "pi_3PabcDEF_secret_x",
        "confirmation_method": "automatic", "created": 1773670100, "currency": "clp",
        "customer": null, "description": null, "last_payment_error": null,
        "latest_charge": "ch_3PabcDEF", "livemode": false,
        "metadata": { "tenant": "acme", "account": "LN-7", "plan": "plan-1", "instalment": "3" },
        "payment_method": "pm_1Pabc", "payment_method_types": ["card"],
        "status": "succeeded"
    })
}

fn payment(e: &Value) -> cobro::repo::PaymentConfirmed {
    match parse(e) {
        StripeEvent::Payment(p) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn stripe_events_session_and_intent_are_one_payment() {
    let by_session = payment(&event(
        "evt_1",
        "checkout.session.completed",
        1773670200,
        session("paid"),
    ));
    assert_eq!(by_session.tenant, TenantId::parse("acme").unwrap());
    assert_eq!(by_session.account, AccountId::parse("LN-7").unwrap());
    assert_eq!(
        by_session.payment_id,
        PaymentId::parse("pi_3PabcDEF").unwrap()
    );
    assert_eq!(by_session.amount_minor, 45_500);
    assert_eq!(by_session.currency, Currency::parse("CLP").unwrap());
    assert_eq!(by_session.paid_at.as_second(), 1773670200);
    assert_eq!(
        (by_session.method.as_str(), by_session.source.as_str()),
        ("stripe", "stripe")
    );
    let by_intent = payment(&event(
        "evt_2",
        "payment_intent.succeeded",
        1773670199,
        intent(),
    ));
    // The ledger dedups on the payment id: both name the PaymentIntent.
    assert_eq!(by_intent.payment_id, by_session.payment_id);
    assert_eq!(by_intent.amount_minor, by_session.amount_minor);
    assert_eq!(by_intent.account, by_session.account);
    // A delayed method (bank transfer) completes unpaid, then pays later.
    let later = payment(&event(
        "evt_3",
        "checkout.session.async_payment_succeeded",
        1773680000,
        session("paid"),
    ));
    assert_eq!(later.payment_id, by_session.payment_id);
}

#[test]
fn stripe_events_through_the_eventbridge_partner_source() {
    let detail = event(
        "evt_1",
        "checkout.session.completed",
        1773670200,
        session("paid"),
    );
    let envelope = json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "checkout.session.completed",
        "source": "aws.partner/stripe.com/ed_test_61RsaDoOWb8QAoD0116RsZ8hOqSQHoyl3y4RKKtxI5Fs",
        "account": "123456789012", "time": "2026-03-16T14:10:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1::event-source/aws.partner/stripe.com/ed_test_61RsaDoOWb8QAoD0116RsZ8hOqSQHoyl3y4RKKtxI5Fs"],
        "detail": detail
    });
    assert!(is_stripe_source(envelope["source"].as_str().unwrap()));
    assert!(!is_stripe_source("cobro.crm"));
    assert!(!is_stripe_source("aws.partner/example.com/stripe.com"));
    assert_eq!(
        payment(&envelope["detail"]).payment_id,
        PaymentId::parse("pi_3PabcDEF").unwrap()
    );
}

#[test]
fn stripe_events_that_are_not_payments_or_lack_metadata() {
    let ignored = |e: &Value| matches!(parse(e), StripeEvent::Ignored(_));
    let invalid = |e: &Value| match parse(e) {
        StripeEvent::Invalid(reason) => reason,
        other => panic!("{other:?}"),
    };
    // Completed but not paid: a bank transfer still pending, or nothing to pay.
    for status in ["unpaid", "no_payment_required"] {
        assert!(ignored(&event(
            "e",
            "checkout.session.completed",
            1,
            session(status)
        )));
    }
    for kind in [
        "checkout.session.expired",
        "payment_intent.created",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "charge.refunded",
    ] {
        assert!(ignored(&event("e", kind, 1, intent())), "{kind}");
    }
    // A payment on the lender's Stripe account that cobro did not make a link for.
    let mut foreign = intent();
    foreign["metadata"] = json!({ "order": "A-1" });
    assert!(invalid(&event("e", "payment_intent.succeeded", 1, foreign)).contains("metadata"));
    // A currency cobro does not hold accounts in.
    let mut yen = intent();
    yen["currency"] = json!("jpy");
    assert!(invalid(&event("e", "payment_intent.succeeded", 1, yen)).contains("currency"));
    // A paid session without its PaymentIntent cannot be keyed like its intent.
    let mut no_intent = session("paid");
    no_intent["payment_intent"] = Value::Null;
    assert!(
        invalid(&event("e", "checkout.session.completed", 1, no_intent)).contains("payment_intent")
    );
    // An amount_received missing (older shapes) falls back to amount.
    let mut old = intent();
    old.as_object_mut().unwrap().remove("amount_received");
    assert_eq!(
        payment(&event("e", "payment_intent.succeeded", 1, old)).amount_minor,
        45_500
    );
}
