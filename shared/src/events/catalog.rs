//! One struct per event: the detail of a bus event whose detail type is the struct's name.
//! A struct's doc comment is its description in `docs/events.md`, and each field's doc comment
//! the field's, so the catalog is written here once.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::chat::vulnerability::Sign;
use crate::compliance::Range;
use crate::domain::{AccountId, ChannelKind, Currency, DebtorId, PaymentId, TenantId};

/// The debtor's message an event of the chatbot answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Via {
    /// The channel the debtor wrote on.
    pub channel: ChannelKind,
    /// The provider's id of the debtor's message.
    pub message_id: String,
    /// When the debtor sent it (UTC).
    pub at: Timestamp,
}

/// What every payment event says about the payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PaymentRef {
    pub tenant: TenantId,
    pub account: AccountId,
    /// The payment's id at its source; the same payment always has the same id.
    pub payment_id: PaymentId,
    pub currency: Currency,
    /// When the payment was made (UTC).
    pub paid_at: Timestamp,
}

/// A payment lowered an account's balance (once per payment id, however often it was
/// confirmed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PaymentApplied {
    #[serde(flatten)]
    pub payment: PaymentRef,
    /// The payment's amount, in minor units of `currency`.
    pub amount_minor: i64,
    /// What went to the debt (at most the balance before it).
    pub applied_minor: i64,
    /// The balance after it.
    pub balance_minor: i64,
    /// Paid beyond the balance, kept on the account as a credit.
    pub credit_minor: i64,
    /// How it was paid, as the source said (`card`, `transfer`, `unknown` …).
    pub method: String,
    /// Who confirmed it (`crm`, `stripe`, a PSP's name …).
    pub source: String,
    /// The plan it counted toward, if the account had one.
    pub plan: Option<String>,
}

/// The last instalment of a plan was paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PlanCompleted {
    #[serde(flatten)]
    pub payment: PaymentRef,
    pub plan: String,
}

/// A payment reached the amount promised, by the day promised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PromiseKept {
    #[serde(flatten)]
    pub payment: PaymentRef,
}

/// A payment brought the balance to zero: collection on the account ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AccountSettled {
    #[serde(flatten)]
    pub payment: PaymentRef,
}

/// A payment plan was accepted, by the debtor in the chat or by the CRM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PlanAccepted {
    pub tenant: TenantId,
    pub account: AccountId,
    pub debtor: DebtorId,
    pub plan: String,
    /// `debtor` or `crm`.
    pub by: String,
    /// Instalments in the plan.
    pub instalments: u32,
    /// What the debtor pays in all, in minor units of `currency`.
    pub total_minor: i64,
    /// Forgiven by a settlement.
    pub discount_minor: i64,
    pub currency: Currency,
    /// The first instalment's due day.
    pub first_due: Option<Date>,
    /// When it was accepted (UTC).
    pub at: Timestamp,
    /// The debtor's message, when accepted in the chat.
    pub via: Option<Via>,
}

impl PlanAccepted {
    pub fn of(plan: &crate::plans::Plan, debtor: DebtorId, via: Option<Via>) -> Self {
        Self {
            tenant: plan.tenant.clone(),
            account: plan.account.clone(),
            debtor,
            plan: plan.id.clone(),
            by: plan.accepted_by.clone(),
            instalments: plan.terms.instalments.len() as u32,
            total_minor: plan.terms.total_minor,
            discount_minor: plan.terms.discount_minor,
            currency: plan.terms.currency,
            first_due: plan.terms.instalments.iter().map(|i| i.due).min(),
            at: plan.accepted_at,
            via,
        }
    }
}

/// An instalment of a plan is past the plan's grace days unpaid: the plan is broken and the
/// reminders go back to the whole debt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PlanBroken {
    pub tenant: TenantId,
    pub account: AccountId,
    pub debtor: DebtorId,
    pub plan: String,
    /// The due day of the instalment left unpaid.
    pub late_instalment_due: Date,
    /// The plan's grace days: the tenant's when the plan was agreed, kept with it.
    pub grace_days: u32,
    /// When it was found broken (UTC).
    pub at: Timestamp,
}

/// A promise to pay an amount by a day, made by the debtor in the chat or recorded by the CRM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PromiseMade {
    pub tenant: TenantId,
    pub account: AccountId,
    pub debtor: DebtorId,
    /// Minor units of the account's currency.
    pub amount_minor: i64,
    /// The last day (in the debtor's time zone) to pay it.
    pub by: Date,
    /// `debtor` or `crm`.
    pub made_by: String,
    /// When it was made (UTC).
    pub at: Timestamp,
    /// The debtor's message, when made in the chat.
    pub via: Option<Via>,
}

impl PromiseMade {
    pub fn of(
        account: &crate::domain::Account,
        p: &crate::domain::Promise,
        via: Option<Via>,
    ) -> Self {
        Self {
            tenant: account.tenant.clone(),
            account: account.id.clone(),
            debtor: account.debtor.clone(),
            amount_minor: p.amount_minor,
            by: p.by,
            made_by: p.made_by.clone(),
            at: p.made_at,
            via,
        }
    }
}

/// The promised day passed short of the amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PromiseBroken {
    pub tenant: TenantId,
    pub account: AccountId,
    pub debtor: DebtorId,
    pub promised_minor: i64,
    /// Paid toward it since it was made.
    pub paid_minor: i64,
    pub by: Date,
    /// When it was found broken (UTC).
    pub at: Timestamp,
}

/// The debtor opted out of a channel (a keyword such as BAJA, STOP or SAIR, or the CRM): nothing
/// more goes out to them on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OptedOut {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub channel: ChannelKind,
    /// `keyword` (the debtor wrote it) or what the CRM recorded as the source.
    pub source: String,
    /// The debtor's message, for a keyword.
    pub message_id: Option<String>,
    pub at: Timestamp,
}

/// The debtor gave (or gave back) consent to be contacted on a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConsentGiven {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub channel: ChannelKind,
    /// `keyword` (the debtor wrote it) or what the CRM recorded as the source.
    pub source: String,
    /// The debtor's message, for a keyword.
    pub message_id: Option<String>,
    pub at: Timestamp,
}

/// `ConsentGiven` or `OptedOut`, as the consent says.
pub fn consent_changed(
    tenant: &TenantId,
    debtor: &DebtorId,
    consent: &crate::domain::Consent,
    message_id: Option<String>,
) -> crate::ports::Event {
    use super::DomainEvent;
    // A keyword is recorded as `keyword:STOP`; the event says `keyword`.
    let source = match consent.source.split_once(':') {
        Some(("keyword", _)) => "keyword".to_string(),
        _ => consent.source.clone(),
    };
    if consent.granted {
        ConsentGiven {
            tenant: tenant.clone(),
            debtor: debtor.clone(),
            channel: consent.channel,
            source,
            message_id,
            at: consent.at,
        }
        .event()
    } else {
        OptedOut {
            tenant: tenant.clone(),
            debtor: debtor.clone(),
            channel: consent.channel,
            source,
            message_id,
            at: consent.at,
        }
        .event()
    }
}

/// The debtor disputes the debt: collection on the account stops until the CRM resolves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DisputeOpened {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub account: AccountId,
    /// What the debtor says: `not_mine`, `paid`, `amount` (the amount is wrong) or `other`.
    pub kind: String,
    #[serde(flatten)]
    pub via: Via,
}

/// A message showed a sign of vulnerability: collection pauses on every account of the debtor
/// until a person lifts it, and a handoff is requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VulnerabilityFlagged {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub sign: Sign,
    #[serde(flatten)]
    pub via: Via,
}

/// The conversation needs a person (asked for, vulnerability, identity, repeated
/// misunderstanding, legal hold, the tenant's rule). The bot stays silent until released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HandoffRequested {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub reason: String,
    /// Self-harm signs are urgent.
    pub urgent: bool,
    #[serde(flatten)]
    pub via: Via,
}

/// An agent handed the conversation back to the bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HandoffReleased {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub at: Timestamp,
}

/// An agent closed the handoff: the person is done with the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HandoffClosed {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub at: Timestamp,
}

/// A collection message's status, as the provider reported it (sent, delivered, read, failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MessageStatus {
    pub tenant: TenantId,
    pub account: AccountId,
    pub debtor: DebtorId,
    /// The decision that sent the message (see `GET /v1/accounts/{id}/decisions`).
    pub decision_id: String,
    pub channel: ChannelKind,
    pub provider_message_id: String,
    /// The provider's status word.
    pub status: String,
    /// Why it failed, in the provider's words.
    pub error: Option<String>,
    pub error_code: Option<i64>,
    /// How cobro treats the failure: `retry`, `another_channel`, `stop_debtor`, `stop_tenant` …
    pub error_class: Option<String>,
    /// WhatsApp's pricing category of the conversation (`utility`, `marketing`, `service` …).
    pub pricing_category: Option<String>,
    /// When the provider saw it happen (UTC).
    pub at: Timestamp,
}

/// A channel stopped for the whole tenant on an account-wide error (a payment problem at Meta,
/// a blocked number, a revoked token): nothing more goes out on it until an operator resumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChannelStopped {
    pub tenant: TenantId,
    pub channel: ChannelKind,
    pub reason: String,
    pub code: Option<i64>,
    pub at: Timestamp,
}

/// Too many wrong answers to the identity check: it is locked until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IdentityCheckLocked {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub until: Timestamp,
    #[serde(flatten)]
    pub via: Via,
}

/// The debtor asked for a pause: no collection message on these accounts until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CollectionPaused {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub accounts: Vec<AccountId>,
    /// The pause ends then; none: until a person lifts it.
    pub until: Option<Timestamp>,
    pub reason: String,
    #[serde(flatten)]
    pub via: Via,
}

/// The debtor chose a preferred channel or hours (they only narrow what the law allows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PreferencesChanged {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub preferred_channel: Option<ChannelKind>,
    pub hours: Option<Range>,
    #[serde(flatten)]
    pub via: Via,
}

/// The debtor sent a receipt (an image or a PDF): kept for a person to check against the bank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReceiptReceived {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    /// Where the file is kept (a key in the deployment's blob bucket), when it was downloaded.
    pub blob: Option<String>,
    #[serde(flatten)]
    pub via: Via,
}

/// The debtor stopped or resumed a category of messages in the WhatsApp app (Meta's user
/// preferences, for marketing messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DebtorPreferenceChanged {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub channel: ChannelKind,
    pub category: String,
    /// True when they stopped it.
    pub stop: bool,
    pub at: Timestamp,
}

/// WhatsApp says the debtor moved to a new number. The CRM owns the phone number: cobro tells
/// it and does not change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DebtorNumberChanged {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub channel: ChannelKind,
    /// Whether WhatsApp gave the new id (it is not put in the event: ask the debtor).
    pub new_wa_id_present: bool,
    pub at: Timestamp,
}

/// The provider reported errors about the account or a webhook as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProviderErrorReported {
    pub tenant: TenantId,
    pub channel: ChannelKind,
    pub errors: Vec<crate::inbound::ProviderError>,
    /// The raw webhook body, kept in the deployment's blob bucket.
    pub blob: String,
}

/// The debtor sent a file (image, document, audio …); it is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MediaReceived {
    pub tenant: TenantId,
    pub debtor: DebtorId,
    pub channel: ChannelKind,
    pub message_id: String,
    /// What it is: `image`, `document`, `audio`, `video` or `sticker`.
    pub media: String,
    pub mime_type: Option<String>,
    pub filename: Option<String>,
    /// Where the file is kept (a key in the deployment's blob bucket).
    pub blob: String,
    pub at: Timestamp,
}
