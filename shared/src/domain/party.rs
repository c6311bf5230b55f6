//! Tenants (creditors) and debtors.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{DebtorId, Language, Phone, TenantId, Zone};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// Whose debts the tenant collects. It decides the channels a tenant gets by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantKind {
    /// Collects its own customers' payments (a lender, a utility): payment reminders are the
    /// creditor's own service messages, which WhatsApp accepts as utility templates.
    #[default]
    Creditor,
    /// Collects for others. Meta's Business Messaging Policy lists debt collection among
    /// prohibited uses, so an agency gets SMS and e-mail unless WhatsApp is enabled explicitly.
    Agency,
}

/// The tenant's own sender identities on each channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderIds {
    /// The WhatsApp Business phone number id messages are sent from.
    #[serde(default)]
    pub whatsapp_phone_number_id: Option<String>,
    /// End User Messaging SMS origination identity (phone number, sender id or pool).
    #[serde(default)]
    pub sms_origination: Option<String>,
    #[serde(default)]
    pub email_from: Option<String>,
}

/// A creditor or a portfolio owner. Everything cobro stores belongs to one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// ISO 3166-1 alpha-2 country whose collection law applies by default.
    pub country: String,
    /// Stored as `tenant_kind`: `kind` names every item's type in the table.
    #[serde(default, rename = "tenant_kind")]
    pub kind: TenantKind,
    /// Channels this tenant uses, in order of preference: the fallback order when a channel
    /// cannot reach the debtor.
    pub channels: Vec<ChannelKind>,
    /// Required for an agency to use WhatsApp at all (see `TenantKind::Agency`).
    #[serde(default)]
    pub whatsapp_enabled: bool,
    #[serde(default)]
    pub sender_ids: SenderIds,
    /// The tenant's own compliance rules, composed with the presets that apply (the strictest
    /// of each rule wins, so a tenant can only tighten). Checked against its country's preset
    /// when set (`Policy::check_tightens`).
    #[serde(default)]
    pub policy: Option<crate::compliance::Policy>,
    /// The tenant's strategies, buckets and segments; `None`: the built-in strategy.
    #[serde(default)]
    pub strategies: Option<crate::collect::StrategyBook>,
    /// What payment plans the tenant offers (lengths, frequencies, interest, settlements).
    #[serde(default)]
    pub plan_rules: crate::plans::PlanRules,
    /// The lender's own pay page, as a URL template (`adapters::pay_page`); without one,
    /// links are Stripe Checkout sessions when the deployment has a Stripe key.
    #[serde(default)]
    pub pay_page: Option<String>,
    /// The chatbot: identity check, pauses, handoff rules, wording.
    #[serde(default)]
    pub chat: crate::chat::ChatSettings,
}

impl Tenant {
    /// The channels a new tenant of this kind gets when it names none.
    pub fn default_channels(kind: TenantKind) -> Vec<ChannelKind> {
        match kind {
            TenantKind::Creditor => {
                vec![ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email]
            }
            TenantKind::Agency => vec![ChannelKind::Sms, ChannelKind::Email],
        }
    }

    /// The channels cobro may actually use for this tenant, in its order: WhatsApp only for a
    /// creditor, or an agency that enabled it explicitly.
    pub fn usable_channels(&self) -> impl Iterator<Item = ChannelKind> + '_ {
        self.channels.iter().copied().filter(move |c| {
            *c != ChannelKind::Whatsapp
                || self.kind == TenantKind::Creditor
                || self.whatsapp_enabled
        })
    }
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
    /// What the debtor asked for in the chat: kept across CRM updates, like consents.
    #[serde(default)]
    pub preferences: Preferences,
    /// Holds on the person, not on one debt: an insolvency, a pause the debtor asked for or a
    /// vulnerability showed. They hold on every account of the debtor, those the CRM sends
    /// later included; kept across CRM updates.
    #[serde(default)]
    pub holds: crate::compliance::Holds,
}

/// How the debtor would rather be reached. Preferences only narrow what the law and the
/// tenant allow: a preferred channel goes first, preferred hours cut the allowed window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    #[serde(default)]
    pub channel: Option<ChannelKind>,
    #[serde(default)]
    pub hours: Option<crate::compliance::Range>,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
}

impl Debtor {
    /// Whether the debtor has an address on the channel (the phone serves WhatsApp and SMS).
    pub fn reachable_on(&self, channel: ChannelKind) -> bool {
        channel != ChannelKind::Email || self.email.as_deref().is_some_and(|e| !e.is_empty())
    }

    /// The latest record for the channel decides; no record means no consent.
    pub fn has_consent(&self, channel: ChannelKind) -> bool {
        self.consents
            .iter()
            .filter(|c| c.channel == channel)
            .max_by_key(|c| c.at)
            .is_some_and(|c| c.granted)
    }
}

/// An e-mail address for logs: the first letter of the local part and of the domain, and the
/// top-level domain (`j***@e***.com`); anything that is not an address is hidden whole.
pub fn mask_email(address: &str) -> String {
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            let tld = domain
                .rsplit_once('.')
                .map(|(_, t)| format!(".{t}"))
                .unwrap_or_default();
            format!("{}***@{}***{tld}", first(local), first(domain))
        }
        _ => "***".into(),
    }
}

#[cfg(test)]
mod mask_tests {
    use super::mask_email;

    #[test]
    fn masks_addresses() {
        assert_eq!(mask_email("juana.perez@example.com"), "j***@e***.com");
        assert_eq!(mask_email("x@localhost"), "x***@l***");
        assert_eq!(mask_email("not an address"), "***");
        assert_eq!(mask_email("@example.com"), "***");
    }
}
