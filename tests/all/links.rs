//! Payment links: Stripe Checkout against a local server in Stripe's formats, and the lender's
//! own pay page.

use jiff::{SignedDuration, Timestamp};

use cobro::adapters::pay_page::PayPageLinks;
use cobro::adapters::stripe_checkout::{StripeCheckout, StripeConfig};
use cobro::domain::{AccountId, Currency, Money, TenantId};
use cobro::ports::{LinkError, LinkRequest, PaymentLinks};
use cobro_tests::fake_stripe::{FakeStripe, KEY};

fn request(hours: i64) -> LinkRequest {
    LinkRequest {
        tenant: TenantId::parse("demo").unwrap(),
        account: AccountId::parse("LN-1").unwrap(),
        plan: Some("p1".into()),
        instalment: Some(2),
        amount: Money::new(30_000, Currency::parse("CLP").unwrap()),
        description: "Cuota 2 de 3".into(),
        expires_at: Timestamp::now()
            .checked_add(SignedDuration::from_hours(hours))
            .unwrap(),
        idempotency_key: "link-LN-1-p1-2".into(),
    }
}

fn stripe(base: &str, key: &str) -> StripeCheckout {
    StripeCheckout::new(StripeConfig {
        base_url: base.into(),
        secret_key: key.into(),
        api_version: "2024-06-20".into(),
        success_url: "https://pay.example.com/ok".into(),
        cancel_url: "https://pay.example.com/cancel".into(),
    })
    .unwrap()
}

#[tokio::test]
async fn a_checkout_session_carries_the_amount_and_the_metadata() {
    let fake = FakeStripe::start().await;
    let links = stripe(&fake.base_url, KEY);
    let req = request(2);
    let link = links.create(&req).await.unwrap();
    assert!(
        link.url.starts_with("https://checkout.stripe.com/"),
        "{link:?}"
    );
    assert!(link.provider_id.as_deref().unwrap().starts_with("cs_test_"));
    let form = &fake.requests()[0];
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("mode"), Some("payment"));
    assert_eq!(get("line_items[0][price_data][currency]"), Some("clp"));
    assert_eq!(get("line_items[0][price_data][unit_amount]"), Some("30000"));
    assert_eq!(
        get("line_items[0][price_data][product_data][name]"),
        Some("Cuota 2 de 3")
    );
    for prefix in ["metadata", "payment_intent_data[metadata]"] {
        assert_eq!(get(&format!("{prefix}[tenant]")), Some("demo"));
        assert_eq!(get(&format!("{prefix}[account]")), Some("LN-1"));
        assert_eq!(get(&format!("{prefix}[plan]")), Some("p1"));
        assert_eq!(get(&format!("{prefix}[instalment]")), Some("2"));
    }
    // The same request again (a retry): the same session, not a second one.
    let again = links.create(&req).await.unwrap();
    assert_eq!(again.provider_id, link.provider_id);
}

#[tokio::test]
async fn stripe_errors_are_classified() {
    let fake = FakeStripe::start().await;
    assert!(matches!(
        stripe(&fake.base_url, "sk_wrong").create(&request(2)).await,
        Err(LinkError::Unauthorized(_))
    ));
    let links = stripe(&fake.base_url, KEY);
    assert!(
        matches!(links.create(&request(48)).await, Err(LinkError::Invalid { field, .. }) if field == "expires_at")
    );
    fake.script(429, serde_json::json!({ "error": { "type": "rate_limit_error", "message": "Too many requests" } }));
    assert!(matches!(
        links.create(&request(2)).await,
        Err(LinkError::Transient(_))
    ));
    fake.script(400, serde_json::json!({ "error": { "type": "invalid_request_error", "code": "parameter_invalid_integer", "param": "line_items[0][price_data][unit_amount]", "message": "Invalid integer" } }));
    let Err(LinkError::Rejected(why)) = links.create(&request(2)).await else {
        panic!()
    };
    assert!(why.contains("unit_amount"), "{why}");
    // The same key with another body is refused by Stripe, as it would be.
    links.create(&request(2)).await.unwrap();
    let mut other = request(2);
    other.description = "otra".into();
    assert!(
        matches!(links.create(&other).await, Err(LinkError::Rejected(w)) if w.contains("idempotency"))
    );
}

#[tokio::test]
async fn the_lenders_own_pay_page_gets_encoded_signed_values() {
    let page = PayPageLinks::new(
        "https://pay.example.com/{tenant}/{account}?amount={amount_minor}&currency={currency}&plan={plan}&i={instalment}&exp={expires_at}",
        Some("page-secret".into()),
    )
    .unwrap();
    let mut r = request(2);
    r.account = AccountId::parse("LN 1/é").unwrap_or(r.account);
    let link = page.create(&r).await.unwrap();
    let (unsigned, sig) = link.url.rsplit_once("&sig=").unwrap();
    assert_eq!(
        sig,
        PayPageLinks::sign("page-secret", unsigned),
        "verifiable by the page"
    );
    assert!(
        unsigned.contains("amount=30000&currency=CLP&plan=p1&i=2&exp="),
        "{unsigned}"
    );
    assert!(!unsigned.contains(' '));
    let bad = PayPageLinks::new("https://pay.example.com/{debtor}", None).unwrap_err();
    assert!(
        matches!(bad, LinkError::Invalid { ref reason, .. } if reason.contains("{debtor}")),
        "{bad:?}"
    );
}
