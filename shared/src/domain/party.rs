//! Tenants (creditors) and debtors.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{DebtorId, Language, Phone, TenantId, Zone};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Whatsapp,
    Sms,
    Email,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Sms => "sms",
            ChannelKind::Email => "email",
        }
    }
}

/// A creditor or a portfolio owner. Everything cobro stores belongs to one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// ISO 3166-1 alpha-2 country whose collection law applies by default.
    pub country: String,
    /// Channels this tenant may use, in order of preference. A third-party agency gets SMS and
    /// e-mail unless WhatsApp is enabled explicitly (Meta's policy on debt collection).
    pub channels: Vec<ChannelKind>,
}

/// A debtor's consent to be contacted on a channel, or its withdrawal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    pub channel: ChannelKind,
    pub granted: bool,
    pub at: Timestamp,
    /// Where it came from: "crm", "whatsapp_opt_in", "keyword:STOP", ...
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Debtor {
    pub tenant: TenantId,
    pub id: DebtorId,
    pub name: String,
    pub phone: Phone,
    #[serde(default)]
    pub email: Option<String>,
    pub time_zone: Zone,
    pub language: Language,
    #[serde(default)]
    pub consents: Vec<Consent>,
}

impl Debtor {
    /// The latest record for the channel decides; no record means no consent.
    pub fn has_consent(&self, channel: ChannelKind) -> bool {
        self.consents
            .iter()
            .filter(|c| c.channel == channel)
            .max_by_key(|c| c.at)
            .is_some_and(|c| c.granted)
    }
}
