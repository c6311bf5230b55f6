//! The engine: a pure function (policy, debtor, account holds, contact history, candidate
//! channels, now) → contact on this channel at this instant, or not, with the rule and the next
//! instant it could. Called by the reminders for every due account and again by the sender
//! right before a message leaves.

use jiff::{civil::Date, tz::TimeZone, SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use super::holidays::{is_holiday, HolidayError};
use super::policy::{Policy, StopTrigger};
use crate::domain::{ChannelKind, Debtor};

/// One contact already made (sent, or in flight) to the debtor, on any account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastContact {
    pub at: Timestamp,
    pub channel: ChannelKind,
}

/// Why collection on an account must stop or wait, whatever the schedule says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holds {
    #[serde(default)]
    pub lawsuit_served: bool,
    #[serde(default)]
    pub insolvency: bool,
    #[serde(default)]
    pub dispute_open: bool,
    /// A pause (breathing space, vulnerability): until an instant, or until lifted (`None`
    /// with `paused` set).
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub paused_until: Option<Timestamp>,
    #[serde(default)]
    pub pause_reason: Option<String>,
}

impl Holds {
    fn has(&self, t: StopTrigger) -> bool {
        match t {
            StopTrigger::LawsuitServed => self.lawsuit_served,
            StopTrigger::Insolvency => self.insolvency,
            StopTrigger::DisputeOpen => self.dispute_open,
        }
    }
}

pub struct Facts<'a> {
    pub debtor: &'a Debtor,
    pub holds: &'a Holds,
    pub history: &'a [PastContact],
    /// The channels the tenant may use, in its order of preference.
    pub channels: &'a [ChannelKind],
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    /// Contact on `channel` at `at` (now, or the first instant every rule allows). `waited_for`
    /// names the rule that pushed it later, if one did.
    Contact {
        channel: ChannelKind,
        at: Timestamp,
        waited_for: Option<Verdict>,
        policy: String,
    },
    /// No contact. `next_possible`: when it could be decided again; `None`: not until
    /// something changes (a consent, a hold lifted).
    Blocked {
        verdict: Verdict,
        next_possible: Option<Timestamp>,
        policy: String,
    },
}

/// A rule that fired, with a machine-readable id and words for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: String,
    pub reason: String,
}

fn verdict(rule: impl Into<String>, reason: impl Into<String>) -> Verdict {
    Verdict {
        rule: rule.into(),
        reason: reason.into(),
    }
}

/// The latest consent record for a channel: `Some(true)` granted, `Some(false)` withdrawn.
fn consent(debtor: &Debtor, c: ChannelKind) -> Option<bool> {
    debtor
        .consents
        .iter()
        .filter(|x| x.channel == c)
        .max_by_key(|x| x.at)
        .map(|x| x.granted)
}

const DAY: SignedDuration = SignedDuration::from_hours(24);

fn start_of(day: Date, tz: &TimeZone) -> Timestamp {
    day.to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

fn next_day_start(local: &Zoned, tz: &TimeZone) -> Timestamp {
    match local.date().tomorrow() {
        Ok(d) => start_of(d, tz),
        Err(_) => Timestamp::MAX,
    }
}

pub fn evaluate(policy: &Policy, f: &Facts<'_>) -> Decision {
    let tag = format!("{}@{}", policy.id, policy.version);
    let blocked = |v: Verdict, next: Option<Timestamp>| Decision::Blocked {
        verdict: v,
        next_possible: next,
        policy: tag.clone(),
    };
    for t in &policy.stop_on {
        if f.holds.has(*t) {
            return blocked(
                verdict(
                    format!("stop:{}", t.as_str()),
                    format!(
                        "collection stops by law or policy: {}",
                        t.as_str().replace('_', " ")
                    ),
                ),
                None,
            );
        }
    }
    if f.holds.paused || f.holds.paused_until.is_some_and(|u| u > f.now) {
        let why = f.holds.pause_reason.as_deref().unwrap_or("no reason given");
        let until = f.holds.paused_until.filter(|u| *u > f.now);
        return blocked(
            verdict("pause", format!("collection is paused ({why})")),
            until,
        );
    }
    // Channels: consent where required, never after an opt-out.
    let mut opted_out = Vec::new();
    let mut no_consent = Vec::new();
    let mut allowed: Vec<ChannelKind> = Vec::new();
    for c in f.channels {
        match consent(f.debtor, *c) {
            Some(false) => opted_out.push(c.as_str()),
            None if policy.consent_required.contains(c) => no_consent.push(c.as_str()),
            _ => allowed.push(*c),
        }
    }
    if allowed.is_empty() {
        return if !opted_out.is_empty() && no_consent.is_empty() {
            blocked(
                verdict(
                    "opt_out",
                    format!("the debtor opted out of {}", opted_out.join(", ")),
                ),
                None,
            )
        } else {
            let mut why = Vec::new();
            if !no_consent.is_empty() {
                why.push(format!(
                    "no consent on record for {}",
                    no_consent.join(", ")
                ));
            }
            if !opted_out.is_empty() {
                why.push(format!("opted out of {}", opted_out.join(", ")));
            }
            if why.is_empty() {
                why.push("the tenant has no channel".into());
            }
            blocked(verdict("consent", why.join("; ")), None)
        };
    }
    if policy.one_channel_per_week {
        let week_ago = f.now.saturating_sub(DAY * 7).expect("in range");
        if let Some(last) = f
            .history
            .iter()
            .filter(|h| h.at > week_ago)
            .max_by_key(|h| h.at)
        {
            if allowed.contains(&last.channel) {
                allowed = vec![last.channel];
            } else {
                let first_in_week = f
                    .history
                    .iter()
                    .filter(|h| h.at > week_ago)
                    .map(|h| h.at)
                    .min()
                    .unwrap_or(last.at);
                return blocked(
                    verdict(
                        "one_channel_per_week",
                        format!(
                            "{} was used this week; only one channel a week",
                            last.channel.as_str()
                        ),
                    ),
                    first_in_week.checked_add(DAY * 7).ok(),
                );
            }
        }
    }
    if policy.windows.0.iter().all(Vec::is_empty) {
        return blocked(
            verdict("window", "the policy allows no contact time at all"),
            None,
        );
    }
    let tz = f.debtor.time_zone.tz();
    let mut best: Option<(Timestamp, ChannelKind, Option<Verdict>)> = None;
    for c in allowed {
        match earliest(policy, f, &tz, c) {
            Ok((at, why)) => {
                if best.as_ref().is_none_or(|(b, _, _)| at < *b) {
                    best = Some((at, c, why));
                }
            }
            Err(v) => return blocked(v, None),
        }
    }
    match best {
        Some((at, channel, waited_for)) if at < Timestamp::MAX => Decision::Contact {
            channel,
            at,
            waited_for,
            policy: tag,
        },
        _ => blocked(verdict("no_slot", "no allowed time was found"), None),
    }
}

/// The first instant at or after `now` every time rule allows on channel `c`, and the first
/// rule that pushed it later. `Err`: a fail-closed condition (no holiday data).
fn earliest(
    policy: &Policy,
    f: &Facts<'_>,
    tz: &TimeZone,
    c: ChannelKind,
) -> Result<(Timestamp, Option<Verdict>), Verdict> {
    let mut t = f.now;
    let mut first: Option<Verdict> = None;
    let mut push = |t: &mut Timestamp, to: Timestamp, v: Verdict| {
        if first.is_none() {
            first = Some(v);
        }
        // Always forward, so the search ends.
        *t = to.max(
            t.saturating_add(SignedDuration::from_secs(1))
                .expect("in range"),
        );
    };
    for _ in 0..128 {
        if t >= Timestamp::MAX.saturating_sub(DAY * 400).expect("in range") {
            break;
        }
        let local = t.to_zoned(tz.clone());
        let day = local.date();
        // Holidays, failing closed on a year without data.
        let mut holiday = None;
        for cal in &policy.holidays {
            match is_holiday(cal, day) {
                Ok(true) => holiday = Some(cal.clone()),
                Ok(false) => {}
                Err(e @ HolidayError::NoDataForYear { .. }) => {
                    return Err(verdict("no_holiday_data", e.to_string()))
                }
                Err(e) => return Err(verdict("no_holiday_data", e.to_string())),
            }
        }
        if let Some(cal) = holiday {
            push(
                &mut t,
                next_day_start(&local, tz),
                verdict("holiday", format!("{day} is a public holiday ({cal})")),
            );
            continue;
        }
        // The contact window, in the debtor's zone.
        let minute = (local.hour() as u16) * 60 + local.minute() as u16;
        let ranges = policy.windows.on(local.weekday());
        if !ranges.iter().any(|r| r.start <= minute && minute < r.end) {
            let later_today = ranges
                .iter()
                .filter(|r| r.start > minute)
                .map(|r| r.start)
                .min();
            let to = match later_today {
                Some(m) => day
                    .at((m / 60) as i8, (m % 60) as i8, 0, 0)
                    .to_zoned(tz.clone())
                    .map(|z| z.timestamp())
                    .unwrap_or(Timestamp::MAX),
                None => next_day_start(&local, tz),
            };
            push(
                &mut t,
                to,
                verdict(
                    "window",
                    format!(
                        "{} {:02}:{:02} in {} is outside the contact hours",
                        local.strftime("%A"),
                        local.hour(),
                        local.minute(),
                        f.debtor.time_zone.name()
                    ),
                ),
            );
            continue;
        }
        // One a day (local), and the gap between contacts in local days.
        let days_of = |h: &PastContact| h.at.to_zoned(tz.clone()).date();
        if let Some(max) = policy.max_per_day {
            let today = f.history.iter().filter(|h| days_of(h) == day).count() as u32;
            if today >= max {
                push(
                    &mut t,
                    next_day_start(&local, tz),
                    verdict(
                        "max_per_day",
                        format!("{today} contact(s) already on {day}"),
                    ),
                );
                continue;
            }
        }
        if policy.min_days_between > 0 {
            if let Some(last) = f.history.iter().filter(|h| h.at <= t).map(days_of).max() {
                let gap = (day - last).get_days();
                if gap < policy.min_days_between as i32 {
                    let allowed_day = last
                        .checked_add(jiff::Span::new().days(policy.min_days_between as i64))
                        .unwrap_or(Date::MAX);
                    push(
                        &mut t,
                        start_of(allowed_day, tz),
                        verdict(
                            "gap",
                            format!(
                                "last contact on {last}; at least {} days between contacts",
                                policy.min_days_between
                            ),
                        ),
                    );
                    continue;
                }
            }
        }
        // Caps over rolling windows.
        let mut capped = false;
        for cap in policy.caps.iter().filter(|cap| cap.counts(c)) {
            let since = t.saturating_sub(DAY * cap.days as i32).expect("in range");
            let mut inside: Vec<Timestamp> = f
                .history
                .iter()
                .filter(|h| cap.counts(h.channel) && h.at > since && h.at <= t)
                .map(|h| h.at)
                .collect();
            if inside.len() as u32 >= cap.max {
                inside.sort();
                // When enough of them leave the window for one more to fit.
                let leaving = inside[inside.len() - cap.max as usize];
                push(
                    &mut t,
                    leaving
                        .saturating_add(DAY * cap.days as i32)
                        .expect("in range"),
                    verdict(
                        cap.id(),
                        format!(
                            "{} contact(s) in {} days already (at most {})",
                            inside.len(),
                            cap.days,
                            cap.max
                        ),
                    ),
                );
                capped = true;
                break;
            }
        }
        if capped {
            continue;
        }
        return Ok((t, first));
    }
    Ok((Timestamp::MAX, first))
}
