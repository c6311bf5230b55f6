//! A compliance policy as data: when, how often and on which channels a debtor may be written
//! to, and what stops collection. Presets per jurisdiction (`presets`), composed as the
//! strictest of each rule; a tenant may only tighten them.
//!
//! In JSON a window is `"08:00-20:00"` (local, half-open) and the windows are a map from
//! weekday to ranges; a weekday left out allows nothing:
//!
//! ```json
//! {"monday": ["08:00-20:00"], "saturday": ["08:00-15:00"]}
//! ```

use jiff::civil::{Date, Weekday};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

use crate::domain::ChannelKind;

/// Minutes since local midnight, `[start, end)`; `end` may be 1440 (midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u16,
    pub end: u16,
}

impl Range {
    pub const fn hours(start: u16, end: u16) -> Self {
        Self {
            start: start * 60,
            end: end * 60,
        }
    }

    pub fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }

    pub(crate) fn intersect(self, other: Range) -> Option<Range> {
        let r = Range {
            start: self.start.max(other.start),
            end: self.end.min(other.end),
        };
        (r.start < r.end).then_some(r)
    }

    fn within(self, other: Range) -> bool {
        other.start <= self.start && self.end <= other.end
    }

    fn parse(s: &str) -> Result<Range, String> {
        let bad = || format!("`{s}`: expected a local time range like \"08:00-20:00\"");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let minute = |t: &str| -> Result<u16, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if m >= 60 || h > 24 || (h == 24 && m != 0) {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        Ok(Range {
            start: minute(a)?,
            end: minute(b)?,
        })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Range {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Range".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "local hours, `HH:MM-HH:MM` (end may be 24:00)",
            "pattern": r"^\d{2}:\d{2}-\d{2}:\d{2}$",
        })
    }
}

impl Serialize for Range {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `"08:00-20:00"`, or `{"start": 480, "end": 1200}` in minutes (the older stored form).
impl<'de> Deserialize<'de> for Range {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Minutes { start: u16, end: u16 },
        }
        match Repr::deserialize(d)? {
            Repr::Text(s) => Range::parse(&s).map_err(de::Error::custom),
            Repr::Minutes { start, end } => Ok(Range { start, end }),
        }
    }
}

pub(crate) const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Allowed local times per weekday, Monday first. An empty day allows nothing. Ranges within a
/// day are sorted and do not overlap (`Policy::validate`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows(pub [Vec<Range>; 7]);

impl Windows {
    pub fn days(days: &[Weekday], range: Range) -> Self {
        Windows::default().and(days, range)
    }

    pub fn and(mut self, days: &[Weekday], range: Range) -> Self {
        for d in days {
            let slot = &mut self.0[d.to_monday_zero_offset() as usize];
            slot.push(range);
            slot.sort();
        }
        self
    }

    pub fn on(&self, day: Weekday) -> &[Range] {
        &self.0[day.to_monday_zero_offset() as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Vec::is_empty)
    }

    pub(crate) fn intersect(&self, other: &Windows) -> Windows {
        let mut w: [Vec<Range>; 7] = Default::default();
        for (i, slot) in w.iter_mut().enumerate() {
            for a in &self.0[i] {
                for b in &other.0[i] {
                    slot.extend(a.intersect(*b));
                }
            }
            slot.sort();
        }
        Windows(w)
    }
}

impl Serialize for Windows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let days = self.0.iter().filter(|d| !d.is_empty()).count();
        let mut map = s.serialize_map(Some(days))?;
        for (name, ranges) in DAY_NAMES.iter().zip(&self.0) {
            if !ranges.is_empty() {
                map.serialize_entry(name, ranges)?;
            }
        }
        map.end()
    }
}

/// A map from weekday name to ranges, or the older array of seven days (Monday first).
impl<'de> Deserialize<'de> for Windows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Windows;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from weekday (monday … sunday) to time ranges")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Windows, A::Error> {
                let mut w = Windows::default();
                while let Some(day) = map.next_key::<String>()? {
                    let i = DAY_NAMES
                        .iter()
                        .position(|n| n.eq_ignore_ascii_case(&day))
                        .ok_or_else(|| {
                            de::Error::custom(format!("windows: unknown weekday `{day}`"))
                        })?;
                    w.0[i] = map.next_value()?;
                }
                Ok(w)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Windows, A::Error> {
                let mut w = Windows::default();
                for (i, slot) in w.0.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(8, &self));
                }
                Ok(w)
            }
        }
        d.deserialize_any(V)
    }
}

/// At most `max` contacts on `channels` (empty: every channel) in any rolling `days` days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// A name for the channel group in the rule id (`written` → `cap:written:7d`). Default:
    /// `all` for every channel, else the channels joined by `+`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default)]
    pub channels: Vec<ChannelKind>,
    pub max: u32,
    pub days: u32,
}

impl Cap {
    pub fn counts(&self, c: ChannelKind) -> bool {
        self.channels.is_empty() || self.channels.contains(&c)
    }

    /// The rule id when this cap fires: `cap:<group>:<days>d`.
    pub fn id(&self) -> String {
        let group = match (&self.group, self.channels.is_empty()) {
            (Some(g), _) => g.clone(),
            (None, true) => "all".to_string(),
            (None, false) => self
                .channels
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join("+"),
        };
        format!("cap:{group}:{}d", self.days)
    }

    /// Every channel this cap counts is counted by `other` too.
    fn covered_by(&self, other: &Cap) -> bool {
        other.channels.is_empty()
            || (!self.channels.is_empty() && self.channels.iter().all(|c| other.counts(*c)))
    }

    fn same_group(&self, other: &Cap) -> bool {
        self.covered_by(other) && other.covered_by(self)
    }
}

/// What stops automated collection on an account, by law or by the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopTrigger {
    LawsuitServed,
    Insolvency,
    DisputeOpen,
}

impl StopTrigger {
    pub const ALL: [StopTrigger; 3] = [
        StopTrigger::LawsuitServed,
        StopTrigger::Insolvency,
        StopTrigger::DisputeOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StopTrigger::LawsuitServed => "lawsuit_served",
            StopTrigger::Insolvency => "insolvency",
            StopTrigger::DisputeOpen => "dispute_open",
        }
    }

    /// The rule id of a decision this trigger blocks.
    pub fn rule(self) -> &'static str {
        match self {
            StopTrigger::LawsuitServed => "stop:lawsuit_served",
            StopTrigger::Insolvency => "stop:insolvency",
            StopTrigger::DisputeOpen => "stop:dispute_open",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `CL`, `BR-SP`, or several joined by `+` once composed.
    pub id: String,
    pub version: String,
    /// The first local date the policy applies; before it the engine does not send.
    pub effective_from: Date,
    /// The last local date it applies (inclusive), if it has one.
    #[serde(default)]
    pub effective_to: Option<Date>,
    /// Where each rule comes from. Tags as in the reference: [V] verified in a named source,
    /// [R] commonly stated, [P] engineering proposal, [U] unclear (the stricter reading).
    pub sources: Vec<String>,
    pub windows: Windows,
    /// Holiday calendars whose days allow no contact (`CL`, `BR-SP`).
    pub holidays: Vec<String>,
    #[serde(default)]
    pub caps: Vec<Cap>,
    /// Local calendar days from one contact to the next (Chile's "two days apart": 3, Monday
    /// to Thursday). 0: no gap.
    #[serde(default)]
    pub min_days_between: u32,
    /// Contacts per local day, any channel.
    #[serde(default)]
    pub max_per_day: Option<u32>,
    /// Every contact in any rolling 7 days on one channel (Colombia's "one channel a week").
    #[serde(default)]
    pub one_channel_per_week: bool,
    /// Channels that need the debtor's explicit consent record (WhatsApp's opt-in everywhere;
    /// Colombia: every channel, only those the debtor authorised). Others may be used unless
    /// the debtor opted out.
    pub consent_required: Vec<ChannelKind>,
    /// Every message must carry an opt-out line ("Reply STOP"): US Reg F §1006.6(e).
    #[serde(default)]
    pub opt_out_footer: bool,
    pub stop_on: Vec<StopTrigger>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    /// The offending field's path, e.g. `windows.saturday[0]` or `caps[1].max`.
    pub field: String,
    pub message: String,
}

pub(crate) fn err(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError {
        field: field.into(),
        message: message.into(),
    }
}

/// Longest rolling window a cap may count over: the debtor's contact log keeps a year and a few
/// days (`repo::channel_state`'s `LOG_KEEPS`), so every contact in such a window is counted.
pub const MAX_CAP_DAYS: u32 = 366;

impl Policy {
    /// Reads a policy from JSON and validates it; the error names the field.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let p: Policy = serde_json::from_str(text).map_err(|e| {
            // serde names unknown and missing fields in its message, and the position.
            err("(json)", e.to_string())
        })?;
        p.validate()?;
        Ok(p)
    }

    /// Whether the policy applies on that local date.
    pub fn in_force(&self, day: Date) -> bool {
        self.effective_from <= day && self.effective_to.is_none_or(|to| day <= to)
    }

    /// Checks a policy read from data; the error names the field.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.id.trim().is_empty() {
            return Err(err("id", "is empty"));
        }
        if self.version.trim().is_empty() {
            return Err(err("version", "is empty"));
        }
        if self.sources.is_empty() {
            return Err(err("sources", "name at least one source"));
        }
        if let Some(i) = self.sources.iter().position(|s| s.trim().is_empty()) {
            return Err(err(format!("sources[{i}]"), "is empty"));
        }
        if let Some(to) = self.effective_to {
            if to < self.effective_from {
                return Err(err("effective_to", "is before effective_from"));
            }
        }
        for (d, ranges) in self.windows.0.iter().enumerate() {
            for (i, r) in ranges.iter().enumerate() {
                let field = || format!("windows.{}[{i}]", DAY_NAMES[d]);
                if r.start >= r.end || r.end > 24 * 60 {
                    return Err(err(field(), "start must be before end, within the day"));
                }
                if i > 0 && ranges[i - 1].end > r.start {
                    return Err(err(
                        field(),
                        format!(
                            "overlaps or comes before {} ({}); list ranges in order",
                            format_args!("windows.{}[{}]", DAY_NAMES[d], i - 1),
                            ranges[i - 1]
                        ),
                    ));
                }
            }
        }
        for (i, h) in self.holidays.iter().enumerate() {
            if !super::holidays::has_calendar(h) {
                return Err(err(
                    format!("holidays[{i}]"),
                    format!("no holiday calendar `{h}`"),
                ));
            }
            if self.holidays[..i].contains(h) {
                return Err(err(
                    format!("holidays[{i}]"),
                    format!("`{h}` appears twice"),
                ));
            }
        }
        for (i, c) in self.caps.iter().enumerate() {
            if c.days == 0 || c.days > MAX_CAP_DAYS {
                return Err(err(
                    format!("caps[{i}].days"),
                    format!("must be between 1 and {MAX_CAP_DAYS}"),
                ));
            }
            if c.max == 0 {
                return Err(err(
                    format!("caps[{i}].max"),
                    "0 would forbid every contact; leave the channel out instead",
                ));
            }
            for (j, ch) in c.channels.iter().enumerate() {
                if c.channels[..j].contains(ch) {
                    return Err(err(
                        format!("caps[{i}].channels[{j}]"),
                        format!("{} appears twice", ch.as_str()),
                    ));
                }
            }
            if let Some(g) = &c.group {
                let ok = !g.is_empty()
                    && g.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !ok {
                    return Err(err(
                        format!("caps[{i}].group"),
                        "use lower-case letters, digits and _",
                    ));
                }
            }
        }
        if self.max_per_day == Some(0) {
            return Err(err(
                "max_per_day",
                "must be at least 1 (leave the channels out to stop contact)",
            ));
        }
        if self.min_days_between > 31 {
            return Err(err("min_days_between", "must be at most 31 days"));
        }
        for (i, c) in self.consent_required.iter().enumerate() {
            if self.consent_required[..i].contains(c) {
                return Err(err(
                    format!("consent_required[{i}]"),
                    format!("{} appears twice", c.as_str()),
                ));
            }
        }
        for (i, s) in self.stop_on.iter().enumerate() {
            if self.stop_on[..i].contains(s) {
                return Err(err(
                    format!("stop_on[{i}]"),
                    format!("{} appears twice", s.as_str()),
                ));
            }
        }
        Ok(())
    }

    /// Both policies at once: the strictest of each rule. Used when several jurisdictions
    /// apply (the tenant's country, the debtor's) and for a tenant's own tightening.
    pub fn compose(&self, other: &Policy) -> Policy {
        fn union<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
            let mut v = a.to_vec();
            v.extend(b.iter().filter(|x| !a.contains(x)).cloned());
            v
        }
        let joined = |a: &str, b: &str| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}+{b}")
            }
        };
        Policy {
            id: joined(&self.id, &other.id),
            version: joined(&self.version, &other.version),
            effective_from: self.effective_from.max(other.effective_from),
            effective_to: match (self.effective_to, other.effective_to) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            sources: union(&self.sources, &other.sources),
            windows: self.windows.intersect(&other.windows),
            holidays: union(&self.holidays, &other.holidays),
            // Every cap of both: a contact must pass each.
            caps: union(&self.caps, &other.caps),
            min_days_between: self.min_days_between.max(other.min_days_between),
            max_per_day: match (self.max_per_day, other.max_per_day) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            one_channel_per_week: self.one_channel_per_week || other.one_channel_per_week,
            consent_required: union(&self.consent_required, &other.consent_required),
            opt_out_footer: self.opt_out_footer || other.opt_out_footer,
            stop_on: union(&self.stop_on, &other.stop_on),
        }
    }

    /// A tenant's policy must be at least as strict as the preset in every rule. The error
    /// names the first field of `self` that loosens it.
    pub fn check_tightens(&self, preset: &Policy) -> Result<(), PolicyError> {
        for (d, ranges) in self.windows.0.iter().enumerate() {
            for (i, r) in ranges.iter().enumerate() {
                if !preset.windows.0[d].iter().any(|p| r.within(*p)) {
                    return Err(err(
                        format!("windows.{}[{i}]", DAY_NAMES[d]),
                        format!("allows a time the {} preset does not ({r})", preset.id),
                    ));
                }
            }
        }
        for h in &preset.holidays {
            if !self.holidays.contains(h) {
                return Err(err("holidays", format!("drops the {h} calendar")));
            }
        }
        for p in &preset.caps {
            // Kept when some cap counts at least the same channels, over at least as many
            // days, with at most as many contacts: every window of `p.days` lies inside one
            // of `c.days`, so it holds at most `c.max <= p.max`.
            let kept = self
                .caps
                .iter()
                .any(|c| p.covered_by(c) && c.days >= p.days && c.max <= p.max);
            if !kept {
                let (field, what) = match self.caps.iter().position(|c| c.same_group(p)) {
                    Some(j) if self.caps[j].max > p.max => (format!("caps[{j}].max"), "higher"),
                    Some(j) => (format!("caps[{j}].days"), "shorter"),
                    None => ("caps".to_string(), "missing"),
                };
                return Err(err(
                    field,
                    format!(
                        "the preset's {} (at most {} in {} days) is {what} here",
                        p.id(),
                        p.max,
                        p.days
                    ),
                ));
            }
        }
        if self.min_days_between < preset.min_days_between {
            return Err(err(
                "min_days_between",
                format!("is shorter than the preset's {}", preset.min_days_between),
            ));
        }
        if let Some(p) = preset.max_per_day {
            if self.max_per_day.is_none_or(|m| m > p) {
                return Err(err(
                    "max_per_day",
                    format!("is higher than the preset's {p}"),
                ));
            }
        }
        if preset.one_channel_per_week && !self.one_channel_per_week {
            return Err(err("one_channel_per_week", "the preset requires it"));
        }
        for c in &preset.consent_required {
            if !self.consent_required.contains(c) {
                return Err(err(
                    "consent_required",
                    format!("drops the consent the preset requires for {}", c.as_str()),
                ));
            }
        }
        if preset.opt_out_footer && !self.opt_out_footer {
            return Err(err("opt_out_footer", "the preset requires it"));
        }
        for s in &preset.stop_on {
            if !self.stop_on.contains(s) {
                return Err(err("stop_on", format!("drops {}", s.as_str())));
            }
        }
        Ok(())
    }
}
