//! A compliance policy as data: when, how often and on which channels a debtor may be written
//! to, and what stops collection. Presets per jurisdiction (`presets`), composed as the
//! strictest of each rule; a tenant may only tighten them.

use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Serialize};

use crate::domain::ChannelKind;

/// Minutes since local midnight, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

    fn intersect(self, other: Range) -> Option<Range> {
        let r = Range {
            start: self.start.max(other.start),
            end: self.end.min(other.end),
        };
        (r.start < r.end).then_some(r)
    }

    fn within(self, other: Range) -> bool {
        other.start <= self.start && self.end <= other.end
    }
}

/// Allowed local times per weekday, Monday first. An empty day allows nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windows(pub [Vec<Range>; 7]);

impl Windows {
    pub fn days(days: &[Weekday], range: Range) -> Self {
        let mut w: [Vec<Range>; 7] = Default::default();
        for d in days {
            w[d.to_monday_zero_offset() as usize].push(range);
        }
        Windows(w)
    }

    pub fn and(mut self, days: &[Weekday], range: Range) -> Self {
        for d in days {
            self.0[d.to_monday_zero_offset() as usize].push(range);
        }
        self
    }

    pub fn on(&self, day: Weekday) -> &[Range] {
        &self.0[day.to_monday_zero_offset() as usize]
    }

    fn intersect(&self, other: &Windows) -> Windows {
        let mut w: [Vec<Range>; 7] = Default::default();
        for (i, slot) in w.iter_mut().enumerate() {
            for a in &self.0[i] {
                for b in &other.0[i] {
                    slot.extend(a.intersect(*b));
                }
            }
        }
        Windows(w)
    }
}

/// At most `max` contacts on `channels` (empty: every channel) in any `days`-day rolling window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    #[serde(default)]
    pub channels: Vec<ChannelKind>,
    pub max: u32,
    pub days: u32,
}

impl Cap {
    pub fn counts(&self, c: ChannelKind) -> bool {
        self.channels.is_empty() || self.channels.contains(&c)
    }

    pub fn id(&self) -> String {
        let group = if self.channels.is_empty() {
            "all".to_string()
        } else {
            self.channels
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join("+")
        };
        format!("cap:{group}:{}/{}d", self.max, self.days)
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
    pub fn as_str(self) -> &'static str {
        match self {
            StopTrigger::LawsuitServed => "lawsuit_served",
            StopTrigger::Insolvency => "insolvency",
            StopTrigger::DisputeOpen => "dispute_open",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// `CL`, `BR-SP`, or several joined by `+` once composed.
    pub id: String,
    pub version: String,
    pub effective_from: Date,
    #[serde(default)]
    pub effective_to: Option<Date>,
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
    /// Only one channel in any 7 days (Colombia).
    #[serde(default)]
    pub one_channel_per_week: bool,
    /// Channels that need the debtor's explicit consent record (WhatsApp's opt-in everywhere;
    /// Colombia: every channel). Others may be used unless the debtor opted out.
    pub consent_required: Vec<ChannelKind>,
    /// SMS and e-mail must carry an opt-out line (US Reg F; cobro adds one to every SMS and
    /// e-mail anyway).
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

fn err(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError {
        field: field.into(),
        message: message.into(),
    }
}

const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl Policy {
    /// Checks a policy read from data; the error names the field.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.id.trim().is_empty() {
            return Err(err("id", "is empty"));
        }
        if self.sources.is_empty() {
            return Err(err("sources", "name at least one source"));
        }
        if let Some(to) = self.effective_to {
            if to < self.effective_from {
                return Err(err("effective_to", "is before effective_from"));
            }
        }
        for (d, ranges) in self.windows.0.iter().enumerate() {
            for (i, r) in ranges.iter().enumerate() {
                if r.start >= r.end || r.end > 24 * 60 {
                    return Err(err(
                        format!("windows.{}[{i}]", DAY_NAMES[d]),
                        "start must be before end, within the day",
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
        }
        for (i, c) in self.caps.iter().enumerate() {
            if c.days == 0 {
                return Err(err(format!("caps[{i}].days"), "must be at least 1"));
            }
            if c.max == 0 {
                return Err(err(
                    format!("caps[{i}].max"),
                    "0 would forbid every contact; stop the channel instead",
                ));
            }
        }
        if self.max_per_day == Some(0) {
            return Err(err("max_per_day", "must be at least 1"));
        }
        Ok(())
    }

    /// Both policies at once: the strictest of each rule. Used when several jurisdictions
    /// apply (the tenant's country, the debtor's) and for a tenant's own tightening.
    pub fn compose(&self, other: &Policy) -> Policy {
        let union = |a: &[String], b: &[String]| {
            let mut v = a.to_vec();
            v.extend(b.iter().filter(|x| !a.contains(x)).cloned());
            v
        };
        let holidays = union(&self.holidays, &other.holidays);
        let sources = union(&self.sources, &other.sources);
        let mut consent = self.consent_required.clone();
        consent.extend(
            other
                .consent_required
                .iter()
                .filter(|c| !self.consent_required.contains(c)),
        );
        let mut stop_on = self.stop_on.clone();
        stop_on.extend(other.stop_on.iter().filter(|s| !self.stop_on.contains(s)));
        let mut caps = self.caps.clone();
        caps.extend(
            other
                .caps
                .iter()
                .filter(|c| !self.caps.contains(c))
                .cloned(),
        );
        Policy {
            id: if self.id == other.id {
                self.id.clone()
            } else {
                format!("{}+{}", self.id, other.id)
            },
            version: if self.version == other.version {
                self.version.clone()
            } else {
                format!("{}+{}", self.version, other.version)
            },
            effective_from: self.effective_from.max(other.effective_from),
            effective_to: match (self.effective_to, other.effective_to) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            sources,
            windows: self.windows.intersect(&other.windows),
            holidays,
            caps,
            min_days_between: self.min_days_between.max(other.min_days_between),
            max_per_day: match (self.max_per_day, other.max_per_day) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            one_channel_per_week: self.one_channel_per_week || other.one_channel_per_week,
            consent_required: consent,
            opt_out_footer: self.opt_out_footer || other.opt_out_footer,
            stop_on,
        }
    }

    /// A tenant's policy must be at least as strict as the preset in every rule. The error
    /// names the first field that loosens it.
    pub fn check_tightens(&self, preset: &Policy) -> Result<(), PolicyError> {
        for (d, ranges) in self.windows.0.iter().enumerate() {
            for (i, r) in ranges.iter().enumerate() {
                if !preset.windows.0[d].iter().any(|p| r.within(*p)) {
                    return Err(err(
                        format!("windows.{}[{i}]", DAY_NAMES[d]),
                        format!("allows a time the {} preset does not", preset.id),
                    ));
                }
            }
        }
        for h in &preset.holidays {
            if !self.holidays.contains(h) {
                return Err(err("holidays", format!("drops the {h} calendar")));
            }
        }
        for (i, p) in preset.caps.iter().enumerate() {
            let kept = self.caps.iter().any(|c| {
                c.days >= p.days
                    && c.max <= p.max
                    && p.channels.iter().all(|ch| c.counts(*ch))
                    && (c.channels.is_empty() || !p.channels.is_empty())
            });
            if !kept {
                return Err(err(
                    format!("caps[{i}]"),
                    format!("the preset's {} is missing or looser", p.id()),
                ));
            }
        }
        if self.min_days_between < preset.min_days_between {
            return Err(err("min_days_between", "is shorter than the preset's"));
        }
        if let Some(p) = preset.max_per_day {
            if self.max_per_day.is_none_or(|m| m > p) {
                return Err(err("max_per_day", "is higher than the preset's"));
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
