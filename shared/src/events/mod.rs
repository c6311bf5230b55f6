//! The events cobro publishes on its bus for CRMs and other systems: a typed struct per event
//! (`catalog`), the list of them (`CATALOG`), and how they reach a tenant's own webhook
//! (`webhook`: the payload, its signature, the retry schedule).
//!
//! Publishers build the typed struct and turn it into a bus event with `DomainEvent::event`, so
//! what goes out always has the shape `docs/events.md` documents (the schemas there are generated
//! from these structs; a test keeps the file in step).

pub mod catalog;
pub mod webhook;

pub use catalog::*;

use serde::Serialize;

use crate::domain::TenantId;
use crate::ports::Event;

/// A detail of a bus event.
pub trait DomainEvent: Serialize {
    /// The detail type on the bus.
    fn detail_type(&self) -> &'static str;

    fn tenant(&self) -> &TenantId;

    /// The bus event carrying it.
    fn event(&self) -> Event {
        Event::new(
            self.detail_type(),
            serde_json::to_value(self).expect("an event serializes"),
        )
    }
}

macro_rules! named {
    ($($name:ident => $tenant:ident $(. $path:ident)*),* $(,)?) => {
        $(impl DomainEvent for $name {
            fn detail_type(&self) -> &'static str {
                stringify!($name)
            }
            fn tenant(&self) -> &TenantId {
                &self.$tenant $(.$path)*
            }
        })*
    };
}

named!(
    PaymentApplied => payment.tenant,
    PlanCompleted => payment.tenant,
    PromiseKept => payment.tenant,
    AccountSettled => payment.tenant,
    PlanAccepted => tenant,
    PlanBroken => tenant,
    PromiseMade => tenant,
    PromiseBroken => tenant,
    OptedOut => tenant,
    ConsentGiven => tenant,
    DisputeOpened => tenant,
    VulnerabilityFlagged => tenant,
    HandoffRequested => tenant,
    HandoffReleased => tenant,
    HandoffClosed => tenant,
    ChannelStopped => tenant,
    IdentityCheckLocked => tenant,
    CollectionPaused => tenant,
    PreferencesChanged => tenant,
    ReceiptReceived => tenant,
    DebtorPreferenceChanged => tenant,
    DebtorNumberChanged => tenant,
    ProviderErrorReported => tenant,
    MediaReceived => tenant,
);

/// One detail type per provider status, all with the same detail.
impl DomainEvent for MessageStatus {
    fn detail_type(&self) -> &'static str {
        match self.status.as_str() {
            "failed" => "MessageFailed",
            "delivered" => "MessageDelivered",
            "read" | "played" => "MessageRead",
            _ => "MessageSent",
        }
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// Who an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Published for CRMs and other systems: on the bus and, when a tenant registered one,
    /// delivered to its webhook.
    Out,
    /// Published into cobro by others (a CRM, a PSP integration) for cobro to act on.
    In,
}

/// One entry of the catalog.
pub struct Entry {
    pub detail_type: &'static str,
    pub audience: Audience,
    /// The group it is listed under in `docs/events.md`.
    pub group: &'static str,
    #[cfg(feature = "schema")]
    pub schema: fn() -> schemars::Schema,
}

macro_rules! entries {
    ($($group:literal : $($name:literal => $ty:ty $([$aud:ident])?),* ;)*) => {
        &[$($(Entry {
            detail_type: $name,
            audience: entries!(@aud $($aud)?),
            group: $group,
            #[cfg(feature = "schema")]
            schema: || schemars::schema_for!($ty),
        },)*)*]
    };
    (@aud) => { Audience::Out };
    (@aud $aud:ident) => { Audience::$aud };
}

/// Every event, in the order `docs/events.md` lists them.
pub const CATALOG: &[Entry] = entries!(
    "Payments":
        "PaymentConfirmed" => crate::repo::PaymentConfirmed [In],
        "PaymentApplied" => PaymentApplied,
        "AccountSettled" => AccountSettled;
    "Plans and promises":
        "PlanAccepted" => PlanAccepted,
        "PlanCompleted" => PlanCompleted,
        "PlanBroken" => PlanBroken,
        "PromiseMade" => PromiseMade,
        "PromiseKept" => PromiseKept,
        "PromiseBroken" => PromiseBroken;
    "Consent":
        "OptedOut" => OptedOut,
        "ConsentGiven" => ConsentGiven;
    "The conversation":
        "DisputeOpened" => DisputeOpened,
        "VulnerabilityFlagged" => VulnerabilityFlagged,
        "HandoffRequested" => HandoffRequested,
        "HandoffReleased" => HandoffReleased,
        "HandoffClosed" => HandoffClosed,
        "IdentityCheckLocked" => IdentityCheckLocked,
        "CollectionPaused" => CollectionPaused,
        "PreferencesChanged" => PreferencesChanged,
        "ReceiptReceived" => ReceiptReceived,
        "MediaReceived" => MediaReceived,
        "DebtorPreferenceChanged" => DebtorPreferenceChanged,
        "DebtorNumberChanged" => DebtorNumberChanged;
    "Messages":
        "MessageSent" => MessageStatus,
        "MessageDelivered" => MessageStatus,
        "MessageRead" => MessageStatus,
        "MessageFailed" => MessageStatus,
        "ChannelStopped" => ChannelStopped,
        "ProviderErrorReported" => ProviderErrorReported;
);

/// The detail types published for others (what a tenant's webhook can receive).
pub fn published() -> impl Iterator<Item = &'static str> {
    CATALOG
        .iter()
        .filter(|e| e.audience == Audience::Out)
        .map(|e| e.detail_type)
}

pub fn is_published(detail_type: &str) -> bool {
    published().any(|t| t == detail_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_type_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for e in CATALOG {
            assert!(seen.insert(e.detail_type), "{} twice", e.detail_type);
        }
        assert!(is_published("PaymentApplied"));
        assert!(!is_published("PaymentConfirmed"));
        assert!(!is_published("ExportRequested"));
    }

    #[test]
    fn message_status_names_its_detail_type() {
        let mut m = MessageStatus {
            tenant: TenantId::parse("t").unwrap(),
            account: crate::domain::AccountId::parse("a").unwrap(),
            debtor: crate::domain::DebtorId::parse("d").unwrap(),
            decision_id: "x".into(),
            channel: crate::domain::ChannelKind::Whatsapp,
            provider_message_id: "wamid.1".into(),
            status: "played".into(),
            error: None,
            error_code: None,
            error_class: None,
            pricing_category: None,
            at: jiff::Timestamp::UNIX_EPOCH,
        };
        assert_eq!(m.detail_type(), "MessageRead");
        m.status = "failed".into();
        assert_eq!(m.event().detail_type, "MessageFailed");
        assert_eq!(m.event().detail["tenant"], "t");
    }
}
