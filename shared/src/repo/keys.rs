//! Every key cobro writes, in one place. The layout and the access pattern each key serves are
//! documented in docs/data-model.md; keep the two in step.
//!
//! Tenant first: every partition key of tenant data starts with `T#<tenant>#`, so no query can
//! reach another tenant's items. The only partitions without a tenant are the platform's
//! routing records (tenant registry, WhatsApp number → tenant, API key hash → tenant), which
//! hold no debtor data.

use crate::domain::{AccountId, DebtorId, Phone, TenantId};
use crate::ports::Key;

/// Shards of the due index per tenant: spreads a tenant's writes over several index partitions.
pub const DUE_SHARDS: u32 = 4;

pub fn tenant(t: &TenantId) -> Key {
    Key::new("TENANTS", format!("T#{t}"))
}

pub fn whatsapp_number(phone_number_id: &str) -> Key {
    Key::new(format!("WANUMBER#{phone_number_id}"), "ROUTE")
}

/// An API key by the SHA-256 of its secret: what a request's key is looked up by.
pub fn api_key(hash_hex: &str) -> Key {
    Key::new(format!("APIKEY#{hash_hex}"), "KEY")
}

/// The tenant's directory of API keys, by key id: for listing and revoking.
pub fn api_keys_of_tenant_pk(t: &TenantId) -> String {
    format!("T#{t}#APIKEYS")
}

pub fn api_key_of_tenant(t: &TenantId, key_id: &str) -> Key {
    Key::new(api_keys_of_tenant_pk(t), format!("KEY#{key_id}"))
}

pub fn debtor_pk(t: &TenantId, d: &DebtorId) -> String {
    format!("T#{t}#DEBTOR#{d}")
}

pub fn debtor(t: &TenantId, d: &DebtorId) -> Key {
    Key::new(debtor_pk(t, d), "PROFILE")
}

/// The tenant's directory of debtors: one small item per debtor, for listing them.
pub fn debtor_directory_pk(t: &TenantId) -> String {
    format!("T#{t}#DEBTORS")
}

pub fn debtor_directory(t: &TenantId, d: &DebtorId) -> Key {
    Key::new(debtor_directory_pk(t), format!("DEBTOR#{d}"))
}

pub fn account_pk(t: &TenantId, a: &AccountId) -> String {
    format!("T#{t}#ACCOUNT#{a}")
}

pub fn account(t: &TenantId, a: &AccountId) -> Key {
    Key::new(account_pk(t, a), "ACCOUNT")
}

/// An event about the account waiting to be published (an outbox entry), by its event id.
pub fn announcement(t: &TenantId, a: &AccountId, event_id: &str) -> Key {
    Key::new(account_pk(t, a), format!("ANNOUNCE#{event_id}"))
}

pub fn instalment(t: &TenantId, a: &AccountId, number: u32) -> Key {
    Key::new(account_pk(t, a), format!("INSTALMENT#{number:04}"))
}

pub fn payment(t: &TenantId, a: &AccountId, payment_id: &str) -> Key {
    Key::new(account_pk(t, a), format!("PAYMENT#{payment_id}"))
}

/// Credit a CRM statement moved (`domain::CreditNetted`), by the account version it wrote:
/// in order, once per write.
pub fn credit_netted(t: &TenantId, a: &AccountId, version: u64) -> Key {
    Key::new(account_pk(t, a), format!("CREDIT#{version:010}"))
}

pub fn plan(t: &TenantId, a: &AccountId, plan_id: &str) -> Key {
    Key::new(account_pk(t, a), format!("PLAN#{plan_id}"))
}

/// Payments cobro could not apply (unknown account, another currency): kept with the reason.
pub fn suspense(t: &TenantId, at_millis: i64, payment_id: &str) -> Key {
    Key::new(suspense_pk(t), format!("{at_millis:015}#{payment_id}"))
}

/// A payment listed in suspense because its id was applied to another account: one entry per
/// account it was sent for, so two such at the same millisecond keep apart.
pub fn suspense_elsewhere(
    t: &TenantId,
    at_millis: i64,
    payment_id: &str,
    asked_for: &AccountId,
) -> Key {
    Key::new(
        suspense_pk(t),
        format!("{at_millis:015}#{payment_id}#ELSEWHERE#{asked_for}"),
    )
}

pub fn suspense_pk(t: &TenantId) -> String {
    format!("T#{t}#SUSPENSE")
}

/// That a payment id is in suspense, as written before `payment_id` kept it: still checked,
/// so a payment suspended then is not listed twice. Nothing writes it any more.
pub fn suspended_id(t: &TenantId, payment_id: &str) -> Key {
    Key::new(format!("T#{t}#SUSPENDED#{payment_id}"), "PAYMENT")
}

/// A payment id, once per tenant: in suspense (which entry) or applied (to which account).
/// Written with `attribute_not_exists` by both, so one payment is applied to one account
/// once, and a suspended one that is applied later resolves its entry; the account's
/// `PAYMENT#` key alone would let the same id apply to a second account.
pub fn payment_id(t: &TenantId, payment_id: &str) -> Key {
    Key::new(payment_id_pk(t, payment_id), "PAYMENT")
}

fn payment_id_pk(t: &TenantId, payment_id: &str) -> String {
    format!("T#{t}#PAYID#{payment_id}")
}

/// That a payment id applied to one account was sent for `asked_for`, another, and is listed
/// in suspense for that: written with `attribute_not_exists` with the entry, so a redelivery
/// lists it once. Beside the id's record, in its partition.
pub fn payment_id_elsewhere(t: &TenantId, payment_id: &str, asked_for: &AccountId) -> Key {
    Key::new(
        payment_id_pk(t, payment_id),
        format!("ELSEWHERE#{asked_for}"),
    )
}

/// The tenant's payments by when cobro recorded them (applied them), one partition per UTC
/// month: the daily ledger feed reads a day's from here, so a payment reported late, with an
/// earlier `paid_at`, is in the feed of the day it arrived.
pub fn recorded_payments_pk(t: &TenantId, month: &str) -> String {
    format!("T#{t}#RECORDED#{month}")
}

pub fn recorded_payment(
    t: &TenantId,
    recorded_at: jiff::Timestamp,
    a: &AccountId,
    payment_id: &str,
) -> Key {
    let month = recorded_at.strftime("%Y-%m").to_string();
    Key::new(
        recorded_payments_pk(t, &month),
        gsi1_payment_sk(recorded_at.as_millisecond(), a, payment_id),
    )
}

/// A CRM API request's `Idempotency-Key` and the response it got (with a TTL).
pub fn idempotency(t: &TenantId, key: &str) -> Key {
    Key::new(format!("T#{t}#IDEM#{key}"), "REQUEST")
}

/// The chatbot's state of a conversation with the debtor.
pub fn chat_state(t: &TenantId, d: &DebtorId) -> Key {
    Key::new(debtor_pk(t, d), "CHAT")
}

/// The debtor's identity answers, hashed.
pub fn identity(t: &TenantId, d: &DebtorId) -> Key {
    Key::new(debtor_pk(t, d), "IDENTITY")
}

/// A reply in a conversation (the bot's or an agent's), waiting for or done by the sender.
pub fn reply(t: &TenantId, d: &DebtorId, id: &str) -> Key {
    Key::new(debtor_pk(t, d), format!("REPLY#{id}"))
}

/// The agents' tray: one item per conversation a person owns (deleted when handed back).
pub fn handoffs_pk(t: &TenantId) -> String {
    format!("T#{t}#HANDOFFS")
}

pub fn handoff(t: &TenantId, d: &DebtorId) -> Key {
    Key::new(handoffs_pk(t), format!("DEBTOR#{d}"))
}

/// What the CRM did to the account (pause, close, lawsuit …), with who and why.
pub fn account_action(t: &TenantId, a: &AccountId, at_millis: i64, action: &str) -> Key {
    Key::new(account_pk(t, a), format!("ACTION#{at_millis:015}#{action}"))
}

pub fn attempt(t: &TenantId, a: &AccountId, decision_id: &str) -> Key {
    Key::new(account_pk(t, a), format!("ATTEMPT#{decision_id}"))
}

pub fn decision(t: &TenantId, a: &AccountId, at_millis: i64, kind: &str) -> Key {
    Key::new(account_pk(t, a), format!("DECISION#{at_millis:015}#{kind}"))
}

/// A conversation message sorts by its provider timestamp; the provider id makes it unique, so
/// a redelivered webhook maps onto the same key (the dedupe).
pub fn message(t: &TenantId, d: &DebtorId, at_millis: i64, message_id: &str) -> Key {
    Key::new(debtor_pk(t, d), format!("MSG#{at_millis:015}#{message_id}"))
}

/// Inbound messages from numbers no debtor has: kept for inspection, never dropped.
pub fn unmatched_message(t: &TenantId, wa_id: &str, message_id: &str) -> Key {
    Key::new(
        format!("T#{t}#UNMATCHED#{wa_id}"),
        format!("MSG#{message_id}"),
    )
}

/// A provider's message id → the contact attempt it delivered: how status webhooks find the
/// attempt they are about.
pub fn provider_message(t: &TenantId, message_id: &str) -> Key {
    Key::new(format!("T#{t}#PROVIDERMSG#{message_id}"), "ATTEMPT")
}

/// An inbound message already applied: the deduplication record (with a TTL).
pub fn seen_inbound(t: &TenantId, channel: &str, message_id: &str) -> Key {
    Key::new(format!("T#{t}#SEEN#{channel}#{message_id}"), "SEEN")
}

/// A WhatsApp business-scoped user id → the debtors it was seen with: users who hide their
/// number arrive with only this id.
pub fn whatsapp_user(t: &TenantId, user_id: &str) -> Key {
    Key::new(format!("T#{t}#WAUSER#{user_id}"), "DEBTORS")
}

/// An SMS number (origination identity) → its tenant, for inbound SMS.
pub fn sms_number(number: &str) -> Key {
    Key::new(format!("SMSNUMBER#{number}"), "ROUTE")
}

/// Deliveries for numbers no tenant has: kept for an operator, by number.
pub fn unrouted(channel: &str, number: &str, at_millis: i64, blob: &str) -> Key {
    Key::new(
        format!("UNROUTED#{channel}#{number}"),
        format!("{at_millis:015}#{blob}"),
    )
}

/// Events of a kind cobro does not handle, kept per tenant with their raw body's blob.
pub fn unhandled(t: &TenantId, at_millis: i64, what: &str, n: usize) -> Key {
    Key::new(
        format!("T#{t}#UNHANDLED"),
        format!("{at_millis:015}#{what}#{n}"),
    )
}

/// A channel the tenant may not send on for now (an account-wide provider error).
pub fn channel_stops_pk(t: &TenantId) -> String {
    format!("T#{t}#CHANNELSTOPS")
}

pub fn channel_stop(t: &TenantId, channel: &str) -> Key {
    Key::new(channel_stops_pk(t), format!("STOP#{channel}"))
}

/// A template WhatsApp refused for a fault of its own (or the clear of that record), per
/// tenant and language (`es`, `pt`, `en`). The language first: a tenant's template name is
/// free text and may hold a `#`.
pub fn template_refusal(t: &TenantId, language: &str, name: &str) -> Key {
    Key::new(templates_pk(t), format!("REFUSED#{language}#{name}"))
}

/// The partition of a tenant's template records (the refusals above).
pub fn templates_pk(t: &TenantId) -> String {
    format!("T#{t}#TEMPLATES")
}

/// When the debtor last wrote on a channel: WhatsApp's 24-hour customer-service window.
pub fn inbound_window(t: &TenantId, d: &DebtorId, channel: &str) -> Key {
    Key::new(debtor_pk(t, d), format!("WINDOW#{channel}"))
}

/// The debtor's recent contacts on any account: what the compliance caps and gaps count.
pub fn contact_log(t: &TenantId, d: &DebtorId) -> Key {
    Key::new(debtor_pk(t, d), "CONTACTS")
}

/// When cobro last sent to the debtor on a channel: the per-recipient pacing gate.
pub fn recipient_gate(t: &TenantId, d: &DebtorId, channel: &str) -> Key {
    Key::new(debtor_pk(t, d), format!("GATE#{channel}"))
}

/// An export job, in the tenant's list of exports.
pub fn export_job(t: &TenantId, id: &str) -> Key {
    Key::new(format!("T#{t}#EXPORTS"), format!("EXPORT#{id}"))
}

/// The tenant's webhook endpoint (one per tenant).
pub fn webhook(t: &TenantId) -> Key {
    Key::new(format!("T#{t}#WEBHOOK"), "ENDPOINT")
}

/// One event's delivery to the tenant's webhook, by the event's id: the deduplication record
/// and the attempts' state (with a TTL).
pub fn webhook_delivery(t: &TenantId, event_id: &str) -> Key {
    Key::new(format!("T#{t}#DELIVERY#{event_id}"), "DELIVERY")
}

/// GSI1 partition: the tenant's deliveries that kept failing (sparse: only failed ones carry
/// it), by when they failed.
pub fn gsi1_failed_deliveries(t: &TenantId) -> String {
    format!("T#{t}#DELIVERIES#FAILED")
}

/// GSI1 partition: the tenant's payments received in one UTC month (`YYYY-MM`), so the
/// payments of a period are a few range queries, never a scan. Month partitions keep each
/// index partition bounded.
pub fn gsi1_payments(t: &TenantId, month: &str) -> String {
    format!("T#{t}#PAYMENTS#{month}")
}

/// GSI1 sort key of a payment: when it was paid (epoch milliseconds, zero-padded so strings
/// sort as times), then which. The recorded index's sort key has the same shape, with when it
/// was recorded.
pub fn gsi1_payment_sk(paid_at_millis: i64, a: &AccountId, payment_id: &str) -> String {
    format!("{paid_at_millis:015}#{a}#{payment_id}")
}

/// GSI1 partition: the tenant's plans whose interest changed a balance in one UTC month (an
/// acceptance added it, an unpaid end took the unearned part off), by the latest such change.
/// The aging export reads back what changed after its day from here.
pub fn gsi1_plans(t: &TenantId, month: &str) -> String {
    format!("T#{t}#PLANS#{month}")
}

/// GSI1 sort key of a plan: its latest interest change (epoch milliseconds), then which.
pub fn gsi1_plan_sk(changed_millis: i64, a: &AccountId, plan_id: &str) -> String {
    format!("{changed_millis:015}#{a}#{plan_id}")
}

/// GSI1 partition: a debtor's accounts (`ACCOUNT#…`).
pub fn gsi1_debtor_accounts(t: &TenantId, d: &DebtorId) -> String {
    format!("T#{t}#DEBTOR#{d}")
}

/// GSI1 partition: the debtors who have a phone number (`DEBTOR#…`).
pub fn gsi1_phone(t: &TenantId, p: &Phone) -> String {
    format!("T#{t}#PHONE#{}", p.as_str())
}

/// Due-index partition for one shard of a tenant.
pub fn due_pk(t: &TenantId, shard: u32) -> String {
    format!("T#{t}#DUE#{shard}")
}

/// Due-index sort key: when, then what. Seconds zero-padded so strings sort as numbers.
pub fn due_sk(at_epoch_secs: i64, what: &str) -> String {
    format!("{at_epoch_secs:012}#{what}")
}

/// The upper bound that selects everything due at or before `now`.
pub fn due_until(now_epoch_secs: i64) -> String {
    format!("{now_epoch_secs:012}#~")
}

/// A stable shard for an entity, so its due entry always lands in the same partition.
pub fn shard_of(id: &str) -> u32 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let h = id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    h % DUE_SHARDS
}

/// The UTC months (`YYYY-MM`) that `[start, end)` touches: the partitions of the payment and plan indexes.
pub fn months(start: jiff::Timestamp, end: jiff::Timestamp) -> Vec<String> {
    let mut out = Vec::new();
    if end <= start {
        return out;
    }
    let last = (end - jiff::SignedDuration::from_millis(1))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_month();
    let mut month = start
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_month();
    while month <= last {
        out.push(month.strftime("%Y-%m").to_string());
        month = match month.checked_add(jiff::Span::new().months(1)) {
            Ok(m) => m,
            Err(_) => break,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_time() {
        assert!(due_sk(99, "ACCOUNT#b") < due_sk(100, "ACCOUNT#a"));
        assert!(due_sk(100, "ACCOUNT#zzz") <= due_until(100));
        assert!(due_sk(101, "ACCOUNT#a") > due_until(100));
        assert_eq!(shard_of("LN-1"), shard_of("LN-1"));
        assert!((0..1000)
            .map(|i| shard_of(&i.to_string()))
            .all(|s| s < DUE_SHARDS));
    }
}
