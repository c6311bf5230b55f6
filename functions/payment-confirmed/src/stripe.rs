//! Stripe's events, as its EventBridge partner source delivers them (`source`
//! `aws.partner/stripe.com/…`, `detail-type` the Stripe event type, `detail` the Stripe event
//! object): a paid Checkout Session or a succeeded PaymentIntent becomes cobro's
//! `PaymentConfirmed`. Both carry the PaymentIntent's id as the payment id, so a session and its
//! intent never count twice.

use jiff::Timestamp;
use serde_json::Value;

use cobro::domain::{AccountId, Currency, PaymentId, TenantId};
use cobro::repo::PaymentConfirmed;

#[derive(Debug, Clone, PartialEq)]
pub enum StripeEvent {
    Payment(PaymentConfirmed),
    /// Not a payment cobro applies (another type, an unpaid session).
    Ignored(String),
    /// A payment without what cobro needs to apply it (metadata): kept, with the reason.
    Invalid(String),
}

/// Whether an EventBridge `source` is Stripe's partner event source.
pub fn is_stripe_source(source: &str) -> bool {
    source.starts_with("aws.partner/stripe.com")
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Maps one Stripe event object (`{"id","type","created","data":{"object":{…}}}`).
pub fn parse(event: &Value) -> StripeEvent {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let object = &event["data"]["object"];
    let (intent, amount, paid) = match kind {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            if object.get("payment_status").and_then(Value::as_str) != Some("paid") {
                return StripeEvent::Ignored("a checkout session that is not paid yet".into());
            }
            (
                str_at(object, &["payment_intent"]),
                object.get("amount_total").and_then(Value::as_i64),
                true,
            )
        }
        "payment_intent.succeeded" => (
            str_at(object, &["id"]),
            object
                .get("amount_received")
                .and_then(Value::as_i64)
                .or_else(|| object.get("amount").and_then(Value::as_i64)),
            true,
        ),
        other => return StripeEvent::Ignored(format!("Stripe event `{other}` is not a payment")),
    };
    debug_assert!(paid);
    let Some(intent) = intent else {
        return StripeEvent::Invalid("no payment_intent on the paid session".into());
    };
    let meta = |k: &str| str_at(object, &["metadata", k]);
    let (Some(tenant), Some(account)) = (meta("tenant"), meta("account")) else {
        return StripeEvent::Invalid(format!(
            "payment {intent} has no metadata.tenant and metadata.account"
        ));
    };
    let Some(amount) = amount.filter(|a| *a > 0) else {
        return StripeEvent::Invalid(format!("payment {intent} has no positive amount"));
    };
    let currency = match object
        .get("currency")
        .and_then(Value::as_str)
        .map(|c| Currency::parse(&c.to_ascii_uppercase()))
    {
        Some(Ok(c)) => c,
        _ => return StripeEvent::Invalid(format!("payment {intent} has no known currency")),
    };
    let paid_at = event
        .get("created")
        .and_then(Value::as_i64)
        .and_then(|s| Timestamp::from_second(s).ok());
    let (Ok(tenant), Ok(account), Ok(payment_id), Some(paid_at)) = (
        TenantId::parse(tenant),
        AccountId::parse(account),
        PaymentId::parse(intent),
        paid_at,
    ) else {
        return StripeEvent::Invalid(format!("payment {intent}: malformed ids or time"));
    };
    StripeEvent::Payment(PaymentConfirmed {
        tenant,
        account,
        payment_id,
        amount_minor: amount,
        currency,
        paid_at,
        method: "stripe".into(),
        source: "stripe".into(),
    })
}
