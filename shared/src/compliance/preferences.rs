//! The debtor's own wishes, applied after the law and the tenant: they can only narrow. Hours
//! the debtor prefers cut every day's allowed window; a preferred channel is tried first.

use jiff::civil::Weekday;

use super::policy::{Policy, Range, Windows};
use super::presets::{resolve_policy, NoPolicy};
use crate::domain::{ChannelKind, Debtor, Tenant};

const WEEK: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// The policy with the debtor's preferred hours, when they gave some.
pub fn with_preferred_hours(mut policy: Policy, debtor: &Debtor) -> Policy {
    if let Some(hours) = debtor.preferences.hours {
        policy.windows = policy.windows.intersect(&Windows::days(&WEEK, hours));
        policy
            .sources
            .push(format!("debtor preference: {hours} local"));
    }
    policy
}

/// The policy every contact with `debtor` is held to: the law of the tenant's country and of
/// the debtor's, the tenant's tightening ([`resolve_policy`]), then the debtor's hours.
pub fn debtor_policy(tenant: &Tenant, debtor: &Debtor) -> Result<Policy, NoPolicy> {
    resolve_policy(
        &tenant.country,
        debtor.phone.as_str(),
        tenant.policy.as_ref(),
    )
    .map(|p| with_preferred_hours(p, debtor))
}

/// The channels with the debtor's preferred one first, when it is among them.
pub fn preferred_first(mut channels: Vec<ChannelKind>, debtor: &Debtor) -> Vec<ChannelKind> {
    if let Some(p) = debtor.preferences.channel {
        if let Some(i) = channels.iter().position(|c| *c == p) {
            let c = channels.remove(i);
            channels.insert(0, c);
        }
    }
    channels
}

/// A range from whole hours, for tests and presets.
pub fn hours(start: u16, end: u16) -> Range {
    Range::hours(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::preset;

    fn debtor() -> Debtor {
        serde_json::from_value(serde_json::json!({
            "tenant": "t", "id": "d", "name": "Ana", "phone": "+56911112222",
            "time_zone": "America/Santiago", "language": "es",
            "preferences": { "channel": "sms", "hours": "18:00-21:00" }
        }))
        .unwrap()
    }

    #[test]
    fn preferred_hours_only_narrow_the_law() {
        let cl = preset("CL").unwrap().clone();
        let narrowed = with_preferred_hours(cl, &debtor());
        // Chile allows 08–20; the debtor asked 18–21: 18–20 is left, Sunday stays closed.
        assert_eq!(narrowed.windows.0[0], vec![hours(18, 20)]);
        assert!(narrowed.windows.0[6].is_empty());
    }

    #[test]
    fn the_preferred_channel_goes_first() {
        let order = vec![ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email];
        assert_eq!(
            preferred_first(order, &debtor()),
            vec![ChannelKind::Sms, ChannelKind::Whatsapp, ChannelKind::Email]
        );
        // Not usable: the order stays.
        assert_eq!(
            preferred_first(vec![ChannelKind::Whatsapp], &debtor()),
            vec![ChannelKind::Whatsapp]
        );
    }
}
