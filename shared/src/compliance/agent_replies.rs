//! When a person's reply in a conversation may reach the debtor.
//!
//! A reply answers the debtor, so the reminders' caps and gaps do not hold it. But a person
//! answers when they get to it: hours after the debtor wrote, from another time zone, on a
//! holiday. Soon after the debtor's own message (`LIVE_FOR`) the debtor is there and the reply
//! goes out whatever the hour, as the bot's does; later it is a message at an hour of the
//! agent's choosing, so the contact hours and holidays of the debtor's policy hold it, as they
//! hold a reminder. It waits for the next allowed instant when that comes before the reply
//! window closes (24 hours after the debtor's message), and is refused when it does not.
//! Care for someone at risk (the crisis line, a person answering self-harm) is never held.

use jiff::{SignedDuration, Timestamp};

use super::engine::{hours, Hours};
use super::policy::Policy;
use crate::domain::{ChannelKind, Debtor};

/// How long after the debtor's message a person's reply goes out at any hour.
pub const LIVE_FOR: SignedDuration = SignedDuration::from_hours(1);
/// How long after the debtor's message any reply may go out at all: WhatsApp's 24-hour
/// customer service window (the same day's limit on SMS and e-mail), less ten minutes for the
/// message's way to Meta.
pub const WINDOW: SignedDuration = SignedDuration::from_secs(24 * 3600 - 10 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentReplyTime {
    Now,
    /// Held until `at` (inside the window): `reason` says which rule.
    Wait {
        at: Timestamp,
        reason: String,
    },
    /// The reply window is closed (`outside_window`).
    WindowClosed {
        reason: String,
    },
    /// The hours allow none of what is left of the window, or no policy covers the debtor
    /// (`outside_hours`).
    OutsideHours {
        reason: String,
    },
}

/// When a person's reply on `channel` may go out, the debtor's last message on it having come
/// at `last_inbound`. `policy`: the debtor's, `None` when no preset covers their jurisdiction
/// (then only a reply within `LIVE_FOR`, or care, goes).
pub fn agent_reply_time(
    policy: Option<&Policy>,
    debtor: &Debtor,
    channel: ChannelKind,
    last_inbound: Timestamp,
    care: bool,
    now: Timestamp,
) -> AgentReplyTime {
    let closes = last_inbound
        .saturating_add(WINDOW)
        .unwrap_or(Timestamp::MAX);
    if now >= closes {
        return AgentReplyTime::WindowClosed {
            reason: format!(
                "outside_window: no message from the debtor on {} in the last 24 hours",
                channel.as_str()
            ),
        };
    }
    if care || now.duration_since(last_inbound) < LIVE_FOR {
        return AgentReplyTime::Now;
    }
    let Some(policy) = policy else {
        return AgentReplyTime::OutsideHours {
            reason: "outside_hours: no compliance policy covers the debtor's jurisdiction, so only a reply within the hour of their message goes out".into(),
        };
    };
    match hours(policy, debtor, channel, now) {
        Hours::Now => AgentReplyTime::Now,
        Hours::Later { at, verdict } if at < closes => AgentReplyTime::Wait {
            at,
            reason: format!(
                "{verdict}; the debtor wrote more than an hour ago, so the reply waits until {at}"
            ),
        },
        Hours::Later { at, verdict } => AgentReplyTime::OutsideHours {
            reason: format!(
                "outside_hours: {verdict}; the next allowed time, {at}, comes after the reply window closes at {closes}"
            ),
        },
        Hours::Never { verdict } => AgentReplyTime::OutsideHours {
            reason: format!("outside_hours: {verdict}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::preset;
    use crate::compliance::tests::debtor;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    // Chile: Monday to Saturday 08:00–20:00, no holidays. Santiago is UTC−3 in December.

    #[test]
    fn a_late_reply_waits_for_the_debtors_hours_inside_the_window() {
        let policy = preset("CL").unwrap();
        let d = debtor("America/Santiago", "+56912345678", &[]);
        // The debtor wrote on Wednesday at 19:00; the agent answers at 23:30.
        let wrote = at("2026-12-02T22:00:00Z");
        let now = at("2026-12-03T02:30:00Z");
        match agent_reply_time(Some(policy), &d, ChannelKind::Whatsapp, wrote, false, now) {
            AgentReplyTime::Wait { at: when, reason } => {
                // Thursday 08:00 in Santiago.
                assert_eq!(when, at("2026-12-03T11:00:00Z"));
                assert!(reason.contains("[window]"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Within the hour of the debtor's message: at once, whatever the hour.
        let soon = at("2026-12-02T22:40:00Z");
        assert_eq!(
            agent_reply_time(Some(policy), &d, ChannelKind::Whatsapp, wrote, false, soon),
            AgentReplyTime::Now
        );
        // Care is never held.
        assert_eq!(
            agent_reply_time(Some(policy), &d, ChannelKind::Whatsapp, wrote, true, now),
            AgentReplyTime::Now
        );
    }

    #[test]
    fn a_reply_whose_next_allowed_hour_is_after_the_window_is_refused() {
        let policy = preset("CL").unwrap();
        let d = debtor("America/Santiago", "+56912345678", &[]);
        // Saturday at 19:30; the agent answers at 21:00. Next allowed: Monday 08:00, after
        // the window closes on Sunday evening.
        let wrote = at("2026-12-05T22:30:00Z");
        let now = at("2026-12-06T00:00:00Z");
        match agent_reply_time(Some(policy), &d, ChannelKind::Sms, wrote, false, now) {
            AgentReplyTime::OutsideHours { reason } => {
                assert!(reason.starts_with("outside_hours"), "{reason}");
                assert!(reason.contains("2026-12-07T11:00:00Z"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // After the window: refused, care or not.
        let late = at("2026-12-06T22:30:00Z");
        match agent_reply_time(Some(policy), &d, ChannelKind::Whatsapp, wrote, true, late) {
            AgentReplyTime::WindowClosed { reason } => {
                assert!(reason.starts_with("outside_window"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inside_the_hours_it_goes_now() {
        let policy = preset("CL").unwrap();
        let d = debtor("America/Santiago", "+56912345678", &[]);
        let wrote = at("2026-12-02T12:00:00Z");
        let now = at("2026-12-02T15:00:00Z"); // Wednesday 12:00
        assert_eq!(
            agent_reply_time(Some(policy), &d, ChannelKind::Whatsapp, wrote, false, now),
            AgentReplyTime::Now
        );
    }
}
