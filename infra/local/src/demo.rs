//! The demo tenant, loaded into an empty data directory: a handful of debtors in different
//! countries and states, so the first run shows every path of the system.

use jiff::{civil::Date, Span, Timestamp};

use cobro::collect::Decider;
use cobro::domain::{
    Account, AccountId, ChannelKind, Consent, Currency, Debtor, DebtorId, DomainError, Language,
    Phone, SenderIds, Tenant, TenantId, TenantKind, Zone,
};
use cobro::ports::secrets::{self, Secrets, WhatsAppSecrets};
use cobro::repo::{RepoError, Scope, Store, WhatsAppNumber};

pub const TENANT: &str = "demo";
/// The demo number's id, as Meta would send it in `metadata.phone_number_id`.
/// What the demo debtors answer to the chatbot's identity check.
pub const DEMO_ID_LAST4: &str = "1234";

pub const PHONE_NUMBER_ID: &str = "100000000000001";
pub const DISPLAY_NUMBER: &str = "56900000000";

struct DemoDebtor {
    id: &'static str,
    name: &'static str,
    phone: &'static str,
    zone: &'static str,
    language: Language,
    whatsapp_consent: bool,
    account: &'static str,
    currency: &'static str,
    balance_minor: i64,
    /// Days from today to the due date (negative: already overdue).
    due_in_days: i64,
}

const DEBTORS: &[DemoDebtor] = &[
    DemoDebtor {
        id: "cl-maria",
        name: "María González",
        phone: "+56912340001",
        zone: "America/Santiago",
        language: Language::Es,
        whatsapp_consent: true,
        account: "CL-1001",
        currency: "CLP",
        balance_minor: 150_000,
        due_in_days: 3,
    },
    DemoDebtor {
        id: "br-joao",
        name: "João Silva",
        phone: "+5511987650002",
        zone: "America/Sao_Paulo",
        language: Language::Pt,
        whatsapp_consent: true,
        account: "BR-2002",
        currency: "BRL",
        balance_minor: 45_000,
        due_in_days: -7,
    },
    DemoDebtor {
        id: "co-ana",
        name: "Ana Torres",
        phone: "+573001230003",
        zone: "America/Bogota",
        language: Language::Es,
        whatsapp_consent: true,
        account: "CO-3003",
        currency: "COP",
        balance_minor: 120_000_000,
        due_in_days: 0,
    },
    DemoDebtor {
        id: "us-john",
        name: "John Smith",
        phone: "+14155550004",
        zone: "America/New_York",
        language: Language::En,
        whatsapp_consent: true,
        account: "US-4004",
        currency: "USD",
        balance_minor: 25_000,
        due_in_days: -15,
    },
    DemoDebtor {
        id: "pe-lucia",
        name: "Lucía Pérez",
        phone: "+51987650005",
        zone: "America/Lima",
        language: Language::Es,
        whatsapp_consent: false,
        account: "PE-5005",
        currency: "PEN",
        balance_minor: 80_000,
        due_in_days: -3,
    },
    DemoDebtor {
        id: "es-carmen",
        name: "Carmen Ruiz",
        phone: "+34600000006",
        zone: "Europe/Madrid",
        language: Language::Es,
        whatsapp_consent: true,
        account: "ES-6006",
        currency: "EUR",
        balance_minor: 0,
        due_in_days: -10,
    },
];

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Store(#[from] RepoError),
    #[error("demo data is invalid: {0}")]
    Domain(#[from] DomainError),
    #[error("storing the demo number's secret: {0}")]
    Secrets(String),
}

pub fn tenant_id() -> TenantId {
    TenantId::parse(TENANT).expect("valid id")
}

/// Loads the demo tenant unless it exists. Returns true when it loaded it.
pub async fn seed(
    store: &Store,
    api_key: &str,
    app_secret: &str,
    secrets: &dyn Secrets,
    now: Timestamp,
) -> Result<bool, SeedError> {
    let tenant_id = tenant_id();
    // On every start, so a changed `COBRO_DEMO_API_KEY` works and a data directory from before
    // keys had ids and scopes gets a readable record. The demo key may do everything, so the
    // README's examples work as they are.
    store
        .put_api_key_with_secret(&tenant_id, "demo", api_key, &Scope::ALL, now)
        .await?;
    if store.tenant(&tenant_id).await?.is_some() {
        return Ok(false);
    }
    let tenant = Tenant {
        id: tenant_id.clone(),
        name: "Crédito Andino".into(),
        country: "CL".into(),
        kind: TenantKind::Creditor,
        channels: vec![ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email],
        whatsapp_enabled: false,
        sender_ids: SenderIds {
            whatsapp_phone_number_id: Some(PHONE_NUMBER_ID.into()),
            sms_origination: Some("+56900000000".into()),
            email_from: Some("cobranzas@credito-andino.example".into()),
        },
        policy: None,
        strategies: None,
        plan_rules: Default::default(),
        pay_page: Some(
            "https://pay.credito-andino.example/{account}?amount={amount_minor}&currency={currency}&plan={plan}&i={instalment}&exp={expires_at}"
                .into(),
        ),
        chat: Default::default(),
    };
    store
        .put_whatsapp_number(&WhatsAppNumber {
            phone_number_id: PHONE_NUMBER_ID.into(),
            tenant: tenant_id.clone(),
            display_phone_number: DISPLAY_NUMBER.into(),
        })
        .await?;
    // The number's secrets live in the secrets store, as `cobro-admin whatsapp register`
    // keeps them; the local stack's prefix is empty.
    let own = WhatsAppSecrets {
        app_secret: app_secret.into(),
        ..Default::default()
    };
    secrets
        .put(
            &secrets::whatsapp_number_secret("", PHONE_NUMBER_ID),
            &own.to_json(),
        )
        .await
        .map_err(|e| SeedError::Secrets(e.to_string()))?;
    let decider = Decider::default();
    for d in DEBTORS {
        let debtor = Debtor {
            tenant: tenant_id.clone(),
            id: DebtorId::parse(d.id)?,
            name: d.name.into(),
            phone: Phone::parse(d.phone)?,
            email: None,
            time_zone: Zone::parse(d.zone)?,
            language: d.language,
            consents: vec![Consent {
                channel: ChannelKind::Whatsapp,
                granted: d.whatsapp_consent,
                at: now,
                source: "demo".into(),
            }],
            preferences: Default::default(),
            holds: Default::default(),
        };
        store.upsert_debtor(&debtor).await?;
        // The chatbot asks for the last 4 digits of the national id before showing a debt:
        // every demo debtor's ends in 1234 (`DEMO_ID_LAST4`).
        let facts = cobro::chat::IdentityFacts::from_raw(
            &tenant_id,
            &debtor.id,
            Some(&format!("00.000.{DEMO_ID_LAST4}")),
            None,
        )
        .expect("four digits");
        store
            .put_identity_facts(&tenant_id, &debtor.id, &facts)
            .await?;
        let today: Date = now.to_zoned(debtor.time_zone.tz()).date();
        let account = Account {
            product: Some("personal-loan".into()),
            ..Account::new(
                tenant_id.clone(),
                AccountId::parse(d.account)?,
                debtor.id.clone(),
                Currency::parse(d.currency)?,
                d.balance_minor.max(10_000),
                d.balance_minor,
                today
                    .checked_add(Span::new().days(d.due_in_days))
                    .expect("in range"),
            )
        };
        let next = decider.first_action(&tenant, &account, &debtor, now);
        store.upsert_account(&account, next).await?;
    }
    // Last, so a seed interrupted half-way runs again on the next start.
    store.put_tenant(&tenant).await?;
    Ok(true)
}
