//! The collection domain: plain types that validate on construction. No I/O, no AWS.

mod account;
mod conversation;
mod credit;
mod ids;
mod locale;
mod money;
mod party;
mod phone;

pub use account::{
    check_creditor, Account, AccountStatus, Instalment, Payment, Promise, MAX_CREDITOR_CHARS,
};
pub use conversation::{AttemptStatus, ContactAttempt, ConversationMessage, Direction, Stated};
pub use credit::CreditNetted;
pub use ids::{AccountId, DebtorId, PaymentId, TenantId, MAX_ID_LEN};
pub use locale::{time_zone, Language, Zone};
pub use money::{Currency, Money, MAX_MINOR};
pub use party::{
    mask_email, ChannelKind, Consent, Debtor, Preferences, SenderIds, Tenant, TenantKind,
};
pub use phone::Phone;

/// A value that breaks a domain rule; the message says which, for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DomainError(pub String);

impl DomainError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
