//! The records the integration tests start from, built one way: a creditor tenant, a debtor in
//! Santiago, an open account, a consent from the CRM, a reminder queued on WhatsApp. Each test
//! changes only what it is about (`Account { balance_minor: 0, ..open_account(...) }`).

use cobro::domain::{
    Account, AccountId, AccountStatus, AttemptStatus, ChannelKind, Consent, ContactAttempt,
    Currency, Debtor, DebtorId, Language, Phone, SenderIds, Tenant, TenantId, TenantKind, Zone,
};
use jiff::Timestamp;

/// A creditor in Chile ("Crédito Andino") reminding on WhatsApp and SMS, with no sender ids,
/// policy or strategies of its own.
pub fn creditor(id: &TenantId) -> Tenant {
    Tenant {
        id: id.clone(),
        name: "Crédito Andino".into(),
        country: "CL".into(),
        kind: TenantKind::Creditor,
        channels: vec![ChannelKind::Whatsapp, ChannelKind::Sms],
        whatsapp_enabled: false,
        sender_ids: SenderIds::default(),
        policy: None,
        strategies: None,
        plan_rules: Default::default(),
        pay_page: None,
        chat: Default::default(),
    }
}

/// Debtor `id` ("Ana", in Santiago, speaking Spanish) at `phone`, with no consents on record.
pub fn debtor(tenant: &TenantId, id: &str, phone: &str) -> Debtor {
    Debtor {
        tenant: tenant.clone(),
        id: DebtorId::parse(id).unwrap(),
        name: "Ana".into(),
        phone: Phone::parse(phone).unwrap(),
        email: None,
        time_zone: Zone::parse("America/Santiago").unwrap(),
        language: Language::Es,
        consents: vec![],
        preferences: Default::default(),
        holds: Default::default(),
    }
}

/// A consent to `channel` the CRM recorded on 2026-01-01.
pub fn consent(channel: ChannelKind) -> Consent {
    Consent {
        channel,
        granted: true,
        at: "2026-01-01T00:00:00Z".parse().unwrap(),
        source: "crm".into(),
    }
}

/// An open account `id` of `debtor` in CLP, owing its whole principal `balance_minor`, due on
/// `due` (YYYY-MM-DD); no holds, plan, promise or credit.
pub fn open_account(
    tenant: &TenantId,
    id: &str,
    debtor: &DebtorId,
    balance_minor: i64,
    due: &str,
) -> Account {
    Account {
        status: AccountStatus::Open,
        ..Account::new(
            tenant.clone(),
            AccountId::parse(id).unwrap(),
            debtor.clone(),
            Currency::parse("CLP").unwrap(),
            balance_minor,
            balance_minor,
            due.parse().unwrap(),
        )
    }
}

/// The reminder three days past due ("2026-03-13:d+3", template `payment_reminder_overdue`)
/// queued on WhatsApp for `account`'s debtor at `to`, decided at `decided_at`, saying `text`.
pub fn queued_reminder(
    account: &Account,
    to: &Phone,
    decided_at: Timestamp,
    text: &str,
) -> ContactAttempt {
    ContactAttempt {
        tenant: account.tenant.clone(),
        account: account.id.clone(),
        debtor: account.debtor.clone(),
        decision_id: "2026-03-13:d+3".into(),
        channel: ChannelKind::Whatsapp,
        template: "payment_reminder_overdue".into(),
        status: AttemptStatus::Queued,
        decided_at,
        text: text.into(),
        to: to.clone(),
        language: Language::Es,
        provider_message_id: None,
        error: None,
        claimed_at: None,
        params: vec![],
        tries: 0,
        delivery: None,
        error_code: None,
        receipt: false,
        opt_out_button: None,
        states: None,
    }
}
