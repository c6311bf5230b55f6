//! The engine: a pure function (policy, debtor, account holds, contact history, candidate
//! channels, now) → contact on this channel at this instant, or not, with the rule and the next
//! instant it could. Called by the reminders for every due account and again by the sender
//! right before a message leaves, so it is cheap: no allocation until the decision is written
//! out (the policy tag and the reason), and a handful of time-zone lookups per rule.

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousTimestamp, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::holidays::{calendar, Calendar, HolidayError};
use super::local_zones::{Clocks, LocalZone};
use super::policy::{Policy, StopTrigger};
use crate::domain::{ChannelKind, Debtor};

/// One contact already made (sent, or in flight) to the debtor, on any account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastContact {
    pub at: Timestamp,
    pub channel: ChannelKind,
}

/// Why collection on an account must stop or wait, whatever the schedule says. Unknown fields
/// are refused: a misspelt hold (`lawsuit` for `lawsuit_served`) must not be silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holds {
    #[serde(default)]
    pub lawsuit_served: bool,
    #[serde(default)]
    pub insolvency: bool,
    #[serde(default)]
    pub dispute_open: bool,
    /// A pause (breathing space, vulnerability) until it is lifted. With `paused_until` the
    /// pause ends at that instant instead.
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub paused_until: Option<Timestamp>,
    #[serde(default)]
    pub pause_reason: Option<String>,
}

impl Holds {
    pub fn has(&self, t: StopTrigger) -> bool {
        match t {
            StopTrigger::LawsuitServed => self.lawsuit_served,
            StopTrigger::Insolvency => self.insolvency,
            StopTrigger::DisputeOpen => self.dispute_open,
        }
    }

    /// Whether a pause holds at `now`; `Some(until)` when it ends at a known instant.
    pub fn pause_at(&self, now: Timestamp) -> Option<Option<Timestamp>> {
        match self.paused_until {
            Some(until) if until > now => Some(Some(until)),
            Some(_) => None,
            None if self.paused => Some(None),
            None => None,
        }
    }

    /// Adds a pause (`until`: `None` until it is lifted) to the one holding at `now`, if any:
    /// a pause never shortens another. A moratorium or a vulnerability pause must not end
    /// because the debtor asked for 30 days meanwhile; only a resume (`lift_pause`) ends a
    /// pause early. The reason is the one of the pause that ends last.
    pub fn pause(&mut self, until: Option<Timestamp>, reason: String, now: Timestamp) {
        let replaces = match (self.pause_at(now), until) {
            (Some(None), _) => false,
            (_, None) | (None, _) => true,
            (Some(Some(current)), Some(new)) => new > current,
        };
        if replaces {
            self.paused = until.is_none();
            self.paused_until = until;
            self.pause_reason = Some(reason);
        }
    }

    /// Ends any pause (a person reviewed the case).
    pub fn lift_pause(&mut self) {
        self.paused = false;
        self.paused_until = None;
        self.pause_reason = None;
    }

    /// What holds for one account of a debtor at `now`: the account's own holds and the
    /// debtor's (an insolvency, a pause), the stricter of each.
    pub fn with(&self, debtor: &Holds, now: Timestamp) -> Holds {
        let mut all = self.clone();
        all.lawsuit_served |= debtor.lawsuit_served;
        all.insolvency |= debtor.insolvency;
        all.dispute_open |= debtor.dispute_open;
        if let Some(until) = debtor.pause_at(now) {
            let reason = debtor.pause_reason.clone().unwrap_or_default();
            all.pause(until, reason, now);
        }
        all
    }
}

pub struct Facts<'a> {
    pub debtor: &'a Debtor,
    pub holds: &'a Holds,
    /// The debtor's contacts on every account, in any order.
    pub history: &'a [PastContact],
    /// The channels the tenant may use, in its order of preference.
    pub channels: &'a [ChannelKind],
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    /// Contact on `channel` at `at`: now, or the first instant every rule allows (the earliest
    /// over the candidate channels; a tie goes to the preferred one). `waited_for` names the
    /// rule that pushed it later, if one did.
    Contact {
        channel: ChannelKind,
        at: Timestamp,
        waited_for: Option<Verdict>,
        /// `id@version` of the policy that decided.
        policy: String,
        /// The message must carry an opt-out line ("Reply STOP …"): US Reg F §1006.6(e).
        #[serde(default)]
        opt_out_text: bool,
    },
    /// No contact. `next_possible`: the first instant the same rule no longer blocks; `None`:
    /// not until something changes (a consent, a hold lifted, new holiday data).
    Blocked {
        verdict: Verdict,
        next_possible: Option<Timestamp>,
        policy: String,
    },
}

impl Decision {
    /// The rule that blocked or delayed the contact; `None` for a contact nothing delayed.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Decision::Contact { waited_for, .. } => waited_for.as_ref().map(|v| v.rule.as_str()),
            Decision::Blocked { verdict, .. } => Some(&verdict.rule),
        }
    }
}

/// A rule that fired, with a machine-readable id and words for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: String,
    pub reason: String,
}

/// `[rule] reason`: how decisions and attempts record a verdict (the rule is read back from
/// the brackets by `explain::why`).
impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.rule, self.reason)
    }
}

/// The rule ids a decision can carry (besides `cap:<group>:<days>d` and `stop:<trigger>`).
pub mod rules {
    pub const WINDOW: &str = "window";
    pub const HOLIDAY: &str = "holiday";
    pub const GAP: &str = "gap";
    pub const MAX_PER_DAY: &str = "max_per_day";
    pub const ONE_CHANNEL_PER_WEEK: &str = "one_channel_per_week";
    pub const CONSENT: &str = "consent";
    pub const OPT_OUT: &str = "opt_out";
    pub const PAUSE: &str = "pause";
    pub const NO_CHANNEL: &str = "no_channel";
    pub const UNKNOWN_TIME_ZONE: &str = "unknown_time_zone";
    pub const NO_HOLIDAY_DATA: &str = "no_holiday_data";
    pub const NOT_IN_FORCE: &str = "policy_not_in_force";
    pub const NO_SLOT: &str = "no_slot";
}

fn verdict(rule: impl Into<String>, reason: impl Into<String>) -> Verdict {
    Verdict {
        rule: rule.into(),
        reason: reason.into(),
    }
}

/// The latest consent record for a channel: `Some(true)` granted, `Some(false)` withdrawn.
pub fn latest_consent(debtor: &Debtor, c: ChannelKind) -> Option<bool> {
    debtor
        .consents
        .iter()
        .filter(|x| x.channel == c)
        .max_by_key(|x| x.at)
        .map(|x| x.granted)
}

const DAY: SignedDuration = SignedDuration::from_hours(24);
const WEEK: SignedDuration = SignedDuration::from_hours(24 * 7);
/// How far ahead the engine looks for an allowed instant before it gives up (`no_slot`).
const HORIZON: SignedDuration = SignedDuration::from_hours(24 * 400);
const MAX_STEPS: usize = 2_000;

fn channel_bit(c: ChannelKind) -> u8 {
    match c {
        ChannelKind::Whatsapp => 1,
        ChannelKind::Sms => 2,
        ChannelKind::Email => 4,
    }
}

fn channel_list(mask: u8) -> String {
    [ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email]
        .into_iter()
        .filter(|c| mask & channel_bit(*c) != 0)
        .map(ChannelKind::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn evaluate(policy: &Policy, f: &Facts<'_>) -> Decision {
    let tag = || format!("{}@{}", policy.id, policy.version);
    let blocked = |v: Verdict, next: Option<Timestamp>| Decision::Blocked {
        verdict: v,
        next_possible: next,
        policy: tag(),
    };
    for t in &policy.stop_on {
        if f.holds.has(*t) {
            return blocked(
                verdict(
                    t.rule(),
                    format!(
                        "collection stops by law or policy: {}",
                        t.as_str().replace('_', " ")
                    ),
                ),
                None,
            );
        }
    }
    if let Some(until) = f.holds.pause_at(f.now) {
        let why = f.holds.pause_reason.as_deref().unwrap_or("no reason given");
        let reason = match until {
            Some(u) => format!("collection is paused ({why}) until {u}"),
            None => format!("collection is paused ({why}) until it is lifted"),
        };
        return blocked(verdict(rules::PAUSE, reason), until);
    }
    // The debtor's local time: their zone, or every zone of their phone's country (and the
    // zone on record, when it names a place) when the zone on record is not one of them.
    let clocks = match Clocks::of(f.debtor) {
        Ok(clocks) => clocks,
        Err(why) => return blocked(verdict(rules::UNKNOWN_TIME_ZONE, why), None),
    };
    let zones = clocks.zones();
    let today_in = |z: &LocalZone<'_>| z.tz.to_datetime(f.now).date();
    if let Some(today) = zones.iter().map(today_in).find(|d| !policy.in_force(*d)) {
        // In force once it is in force on every clock.
        let next = (today < policy.effective_from).then(|| {
            zones
                .iter()
                .map(|z| start_of(policy.effective_from, &z.tz))
                .fold(Timestamp::MIN, Timestamp::max)
        });
        return blocked(
            verdict(
                rules::NOT_IN_FORCE,
                format!(
                    "the {} policy applies from {} to {} only",
                    policy.id,
                    policy.effective_from,
                    policy
                        .effective_to
                        .map_or("further notice".to_string(), |d| d.to_string())
                ),
            ),
            next,
        );
    }
    // Channels: consent where required, never after an opt-out.
    let (mut allowed, mut opted_out, mut no_consent) = (0u8, 0u8, 0u8);
    for c in f.channels {
        match latest_consent(f.debtor, *c) {
            Some(false) => opted_out |= channel_bit(*c),
            None if policy.consent_required.contains(c) => no_consent |= channel_bit(*c),
            _ => allowed |= channel_bit(*c),
        }
    }
    if allowed == 0 {
        return if f.channels.is_empty() {
            blocked(verdict(rules::NO_CHANNEL, "no channel to write on"), None)
        } else if no_consent == 0 {
            blocked(
                verdict(
                    rules::OPT_OUT,
                    format!("the debtor opted out of {}", channel_list(opted_out)),
                ),
                None,
            )
        } else {
            let mut why = format!(
                "no consent on record for {} (the law or the platform requires one)",
                channel_list(no_consent)
            );
            if opted_out != 0 {
                why.push_str(&format!("; opted out of {}", channel_list(opted_out)));
            }
            blocked(verdict(rules::CONSENT, why), None)
        };
    }
    if policy.windows.is_empty() {
        return blocked(
            verdict(rules::WINDOW, "the policy allows no contact time at all"),
            None,
        );
    }
    let search = Search {
        policy,
        zones,
        history: f.history,
        now: f.now,
    };
    let mut best: Option<(Timestamp, ChannelKind, Option<Hit>)> = None;
    let mut seen = 0u8;
    for c in f.channels {
        let bit = channel_bit(*c);
        if allowed & bit == 0 || seen & bit != 0 {
            continue;
        }
        seen |= bit;
        match search.earliest(*c) {
            Ok((at, hit)) => {
                if best.as_ref().is_none_or(|(b, _, _)| at < *b) {
                    best = Some((at, *c, hit));
                }
                if at == f.now {
                    break; // Nothing is earlier than now.
                }
            }
            Err(Fail::Holidays(e)) => {
                return blocked(verdict(rules::NO_HOLIDAY_DATA, e.to_string()), None)
            }
            Err(Fail::NoSlot) => {}
        }
    }
    match best {
        Some((at, channel, hit)) => Decision::Contact {
            channel,
            at,
            waited_for: hit.map(|h| {
                let mut v = h.verdict(&search);
                if let Some(note) = clocks.distrust() {
                    v.reason = format!("{} ({note})", v.reason);
                }
                v
            }),
            policy: tag(),
            opt_out_text: policy.opt_out_footer,
        },
        None => {
            let mut why = "no instant in the next 400 days satisfies every rule".to_string();
            // Zones far apart may share no hours: say which were read.
            if let Some(note) = clocks.distrust() {
                why = format!("{why} ({note})");
            }
            blocked(verdict(rules::NO_SLOT, why), None)
        }
    }
}

/// What the time rules alone (the policy's dates, contact hours and holidays, on every clock of
/// the debtor) say of a message at `now`: for a message that is no collection contact the
/// reminders decided, so their caps and gaps do not apply, but that must still not reach the
/// debtor at an hour the law or the tenant forbids (an agent's late reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hours {
    /// Allowed now.
    Now,
    /// Not now; `at` is the first instant every clock allows.
    Later { at: Timestamp, verdict: Verdict },
    /// Not within the engine's horizon, or not decidable (an unknown zone, no holiday data).
    Never { verdict: Verdict },
}

pub fn hours(policy: &Policy, debtor: &Debtor, channel: ChannelKind, now: Timestamp) -> Hours {
    let clocks = match Clocks::of(debtor) {
        Ok(clocks) => clocks,
        Err(why) => {
            return Hours::Never {
                verdict: verdict(rules::UNKNOWN_TIME_ZONE, why),
            }
        }
    };
    let zones = clocks.zones();
    if policy.windows.is_empty() {
        return Hours::Never {
            verdict: verdict(rules::WINDOW, "the policy allows no contact time at all"),
        };
    }
    // The policy's dates as `evaluate` reads them: in force once in force on every clock; one
    // that is not in force yet is waited for, one that ended is not.
    let today = |z: &LocalZone<'_>| z.tz.to_datetime(now).date();
    let mut from = now;
    if zones.iter().any(|z| !policy.in_force(today(z))) {
        let not_yet = zones
            .iter()
            .all(|z| today(z) < policy.effective_from || policy.in_force(today(z)));
        if !not_yet {
            return Hours::Never {
                verdict: verdict(
                    rules::NOT_IN_FORCE,
                    format!("the {} policy is no longer in force", policy.id),
                ),
            };
        }
        from = zones
            .iter()
            .map(|z| start_of(policy.effective_from, &z.tz))
            .fold(now, Timestamp::max);
    }
    // No history: caps, gaps and the per-day count (never zero, `Policy::validate`) cannot
    // fire, so only the hours and the holidays are asked.
    let search = Search {
        policy,
        zones,
        history: &[],
        now: from,
    };
    match search.earliest(channel) {
        Ok((at, None)) if at == now => Hours::Now,
        Ok((at, hit)) => Hours::Later {
            at,
            verdict: hit.map(|h| h.verdict(&search)).unwrap_or_else(|| {
                verdict(
                    rules::NOT_IN_FORCE,
                    format!(
                        "the {} policy applies from {}",
                        policy.id, policy.effective_from
                    ),
                )
            }),
        },
        Err(Fail::Holidays(e)) => Hours::Never {
            verdict: verdict(rules::NO_HOLIDAY_DATA, e.to_string()),
        },
        Err(Fail::NoSlot) => Hours::Never {
            verdict: verdict(
                rules::NO_SLOT,
                "no instant in the next 400 days is inside the contact hours",
            ),
        },
    }
}

/// The first local instant of `day` (01:00 where midnight is skipped by a DST change).
fn start_of(day: Date, tz: &TimeZone) -> Timestamp {
    resolve(tz.to_ambiguous_timestamp(day.to_datetime(jiff::civil::Time::midnight())))
}

fn resolve(a: AmbiguousTimestamp) -> Timestamp {
    a.compatible().unwrap_or(Timestamp::MAX)
}

/// Days since 1970-01-01 of a civil date (Hinnant's algorithm): gaps in whole local days
/// without building spans.
fn day_number(d: Date) -> i32 {
    let (y, m, dd) = (d.year() as i32, d.month() as i32, d.day() as i32);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

enum Fail {
    Holidays(HolidayError),
    NoSlot,
}

/// The first rule that pushed a contact later, kept as data so the words are written once.
/// A window's `zone` is the index of the search's zone it was outside the hours in.
#[derive(Clone, Copy)]
enum Hit {
    Holiday { day: Date, cal: &'static Calendar },
    Window { local: DateTime, zone: usize },
    PerDay { day: Date, count: u32, max: u32 },
    Gap { last: Date, days: u32 },
    OneChannel { used: ChannelKind, at: Timestamp },
    Cap { index: usize, count: u32 },
}

impl Hit {
    fn verdict(self, s: &Search<'_>) -> Verdict {
        match self {
            Hit::Holiday { day, cal } => verdict(
                rules::HOLIDAY,
                format!(
                    "{day} is a public holiday in {} ({})",
                    cal.name(),
                    cal.holiday_name(day).unwrap_or("holiday")
                ),
            ),
            Hit::Window { local, zone } => verdict(
                rules::WINDOW,
                format!(
                    "{} {:02}:{:02} in {} is outside the contact hours",
                    local.strftime("%A"),
                    local.hour(),
                    local.minute(),
                    s.zones[zone].name
                ),
            ),
            Hit::PerDay { day, count, max } => verdict(
                rules::MAX_PER_DAY,
                format!("{count} contact(s) already on {day} (at most {max} a day)"),
            ),
            Hit::Gap { last, days } => verdict(
                rules::GAP,
                format!("a contact on {last}; at least {days} days between contacts"),
            ),
            Hit::OneChannel { used, at } => verdict(
                rules::ONE_CHANNEL_PER_WEEK,
                format!(
                    "{} was used at {at}; only one channel in any 7 days",
                    used.as_str()
                ),
            ),
            Hit::Cap { index, count } => {
                let cap = &s.policy.caps[index];
                verdict(
                    cap.id(),
                    format!(
                        "{count} contact(s) in the last {} days already (at most {})",
                        cap.days, cap.max
                    ),
                )
            }
        }
    }
}

struct Search<'a> {
    policy: &'a Policy,
    /// The clocks a contact must be allowed on, all of them (usually the debtor's one zone).
    zones: &'a [LocalZone<'a>],
    history: &'a [PastContact],
    now: Timestamp,
}

fn local_day(tz: &TimeZone, t: Timestamp) -> Date {
    tz.to_datetime(t).date()
}

fn next_day_start(tz: &TimeZone, day: Date) -> Timestamp {
    day.tomorrow().map_or(Timestamp::MAX, |d| start_of(d, tz))
}

impl Search<'_> {
    /// The first instant at or after `now` every time rule allows on channel `c`, and the first
    /// rule that pushed it later.
    fn earliest(&self, c: ChannelKind) -> Result<(Timestamp, Option<Hit>), Fail> {
        let limit = self.now.saturating_add(HORIZON).unwrap_or(Timestamp::MAX);
        let mut t = self.now;
        let mut first: Option<Hit> = None;
        for _ in 0..MAX_STEPS {
            if t > limit {
                return Err(Fail::NoSlot);
            }
            match self.check(t, c)? {
                None => return Ok((t, first)),
                Some((to, hit)) => {
                    first.get_or_insert(hit);
                    // Always forward, so the search ends.
                    t = to.max(t.saturating_add(SignedDuration::from_secs(1)).unwrap_or(t));
                }
            }
        }
        Err(Fail::NoSlot)
    }

    /// `None` when a contact on `c` at `t` breaks no rule on any of the clocks; else the
    /// first rule it breaks and the earliest instant every clock could allow: no clock allows
    /// before its own bound, so that is the latest of them.
    fn check(&self, t: Timestamp, c: ChannelKind) -> Result<Option<(Timestamp, Hit)>, Fail> {
        let mut out: Option<(Timestamp, Hit)> = None;
        for zone in 0..self.zones.len() {
            if let Some((to, hit)) = self.check_in(zone, t, c)? {
                out = Some(match out {
                    Some((later, first)) => (later.max(to), first),
                    None => (to, hit),
                });
            }
        }
        Ok(out)
    }

    /// `None` when a contact on `c` at `t` breaks no rule in the search's `zone`-th zone;
    /// else the first rule it breaks and the earliest instant that rule could allow there.
    fn check_in(
        &self,
        zone: usize,
        t: Timestamp,
        c: ChannelKind,
    ) -> Result<Option<(Timestamp, Hit)>, Fail> {
        let tz = &self.zones[zone].tz;
        let local = tz.to_datetime(t);
        let day = local.date();
        // Holidays, failing closed on a calendar or year without data.
        for name in &self.policy.holidays {
            let cal = calendar(name)
                .ok_or_else(|| Fail::Holidays(HolidayError::UnknownCalendar(name.clone())))?;
            if cal.check(day).map_err(Fail::Holidays)? {
                return Ok(Some((next_day_start(tz, day), Hit::Holiday { day, cal })));
            }
        }
        // The contact window, in this zone.
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let ranges = self.policy.windows.on(day.weekday());
        if !ranges.iter().any(|r| r.contains(minute)) {
            let later_today = ranges.iter().find(|r| r.start > minute).and_then(|r| {
                let at = day.at((r.start / 60) as i8, (r.start % 60) as i8, 0, 0);
                let amb = tz.to_ambiguous_timestamp(at);
                // In a repeated hour the first occurrence may already be past.
                [amb.compatible().ok(), amb.later().ok()]
                    .into_iter()
                    .flatten()
                    .find(|x| *x > t)
            });
            let to = later_today.unwrap_or_else(|| next_day_start(tz, day));
            return Ok(Some((to, Hit::Window { local, zone })));
        }
        let today = day_number(day);
        // At most so many a local day, any channel.
        if let Some(max) = self.policy.max_per_day {
            let count = self
                .history
                .iter()
                .filter(|h| day_number(local_day(tz, h.at)) == today)
                .count() as u32;
            if count >= max {
                return Ok(Some((
                    next_day_start(tz, day),
                    Hit::PerDay { day, count, max },
                )));
            }
        }
        // Whole local days between any two contacts (a contact in flight later counts too).
        let gap = self.policy.min_days_between as i32;
        if gap > 0 {
            let close = self
                .history
                .iter()
                .map(|h| day_number(local_day(tz, h.at)))
                .filter(|d| (today - d).abs() < gap)
                .max();
            if let Some(last) = close {
                let last_day = day
                    .checked_add(jiff::Span::new().days(last - today))
                    .unwrap_or(day);
                let allowed = last_day
                    .checked_add(jiff::Span::new().days(gap))
                    .map_or(Timestamp::MAX, |d| start_of(d, tz));
                return Ok(Some((
                    allowed,
                    Hit::Gap {
                        last: last_day,
                        days: gap as u32,
                    },
                )));
            }
        }
        // One channel in any rolling 7 days.
        if self.policy.one_channel_per_week {
            let other = self
                .history
                .iter()
                .filter(|h| h.channel != c && (h.at.duration_since(t)).abs() < WEEK)
                .max_by_key(|h| h.at);
            if let Some(h) = other {
                let to = h.at.saturating_add(WEEK).unwrap_or(Timestamp::MAX);
                return Ok(Some((
                    to,
                    Hit::OneChannel {
                        used: h.channel,
                        at: h.at,
                    },
                )));
            }
        }
        // Caps over rolling windows: every window of `days` that would hold this contact.
        for (index, cap) in self.policy.caps.iter().enumerate() {
            if !cap.counts(c) {
                continue;
            }
            let span = DAY * cap.days as i32;
            let counted = |h: &&PastContact| cap.counts(h.channel);
            let since = t.saturating_sub(span).unwrap_or(Timestamp::MIN);
            let inside = |lo: Timestamp, hi: Timestamp| {
                self.history
                    .iter()
                    .filter(counted)
                    .filter(move |h| h.at > lo && h.at <= hi)
            };
            let count = inside(since, t).count() as u32;
            if count >= cap.max {
                // When enough of them leave the window for one more to fit: the `max`-th
                // newest leaves at its instant plus the window.
                let leaving = nth_newest(inside(since, t).map(|h| h.at), cap.max);
                return Ok(Some((
                    leaving.saturating_add(span).unwrap_or(Timestamp::MAX),
                    Hit::Cap { index, count },
                )));
            }
            // Windows ending at a later contact (one in flight) hold this one too.
            let until = t
                .saturating_add(span - SignedDuration::from_nanos(1))
                .unwrap_or(Timestamp::MAX);
            for later in inside(t, until) {
                let s = later.at;
                let n = inside(s.saturating_sub(span).unwrap_or(Timestamp::MIN), s).count() as u32;
                if n + 1 > cap.max {
                    return Ok(Some((
                        s.saturating_add(SignedDuration::from_secs(1))
                            .unwrap_or(Timestamp::MAX),
                        Hit::Cap { index, count: n },
                    )));
                }
            }
        }
        Ok(None)
    }
}

/// The `n`-th largest instant (1: the newest), counting repeats; without sorting or allocating,
/// since `n` is a cap's small maximum.
fn nth_newest(items: impl Iterator<Item = Timestamp> + Clone, n: u32) -> Timestamp {
    let mut upper: Option<Timestamp> = None;
    let mut left = n;
    loop {
        let Some(top) = items.clone().filter(|x| upper.is_none_or(|u| *x < u)).max() else {
            return upper.unwrap_or(Timestamp::MIN);
        };
        let same = items.clone().filter(|x| *x == top).count() as u32;
        if same >= left {
            return top;
        }
        left -= same;
        upper = Some(top);
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn day_numbers_match_jiff() {
        for d in [
            date(1970, 1, 1),
            date(2024, 2, 29),
            date(2026, 3, 1),
            date(2030, 12, 31),
        ] {
            let expected = (d - date(1970, 1, 1)).get_days();
            assert_eq!(day_number(d), expected, "{d}");
        }
    }

    #[test]
    fn nth_newest_counts_repeats() {
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        let xs = [t(5), t(9), t(9), t(1)];
        assert_eq!(nth_newest(xs.iter().copied(), 1), t(9));
        assert_eq!(nth_newest(xs.iter().copied(), 2), t(9));
        assert_eq!(nth_newest(xs.iter().copied(), 3), t(5));
        assert_eq!(nth_newest(xs.iter().copied(), 4), t(1));
    }
}
