//! The portfolio the benchmarks run on: a Chilean creditor on WhatsApp, debtors who consented to
//! it, open accounts in pesos with nothing else on them. Each benchmark varies what it measures.

use cobro::domain::{
    Account, AccountId, AccountStatus, ChannelKind, Consent, Currency, Debtor, DebtorId, Language,
    Phone, Tenant, TenantId, TenantKind, Zone,
};

/// A creditor in Chile that contacts on WhatsApp, with Chile's preset rules.
pub fn tenant(id: &TenantId, name: &str) -> Tenant {
    Tenant {
        id: id.clone(),
        name: name.into(),
        country: "CL".into(),
        kind: TenantKind::Creditor,
        channels: vec![ChannelKind::Whatsapp],
        whatsapp_enabled: false,
        sender_ids: Default::default(),
        policy: None,
        strategies: None,
        plan_rules: Default::default(),
        pay_page: None,
        chat: Default::default(),
    }
}

/// A debtor in Santiago, in Spanish, who consented to WhatsApp through the CRM.
pub fn debtor(t: &TenantId, id: &str, phone: &str) -> Debtor {
    Debtor {
        tenant: t.clone(),
        id: DebtorId::parse(id).unwrap(),
        name: "Ana".into(),
        phone: Phone::parse(phone).unwrap(),
        email: None,
        time_zone: Zone::parse("America/Santiago").unwrap(),
        language: Language::Es,
        consents: vec![Consent {
            channel: ChannelKind::Whatsapp,
            granted: true,
            at: "2026-01-01T00:00:00Z".parse().unwrap(),
            source: "crm".into(),
        }],
        preferences: Default::default(),
        holds: Default::default(),
    }
}

/// An open account of `debtor` owing `owed_minor` pesos, due on `due_date` (`YYYY-MM-DD`).
pub fn account(
    t: &TenantId,
    id: &str,
    debtor: &DebtorId,
    owed_minor: i64,
    due_date: &str,
) -> Account {
    Account {
        status: AccountStatus::Open,
        ..Account::new(
            t.clone(),
            AccountId::parse(id).unwrap(),
            debtor.clone(),
            Currency::parse("CLP").unwrap(),
            owed_minor,
            owed_minor,
            due_date.parse().unwrap(),
        )
    }
}
