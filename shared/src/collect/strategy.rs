//! Strategies as data: steps keyed on days relative to the due date (negative = before it),
//! each with its templates and channel order, and what happens after the last step. Tenants
//! define their own in a `StrategyBook` (see `book`); the built-in default is −3, 0, 3, 7, 15,
//! 30 days on the tenant's channels.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::domain::{ChannelKind, Language};

/// Days relative to the due date on which the default strategy writes.
pub const DEFAULT_STEPS: [i32; 6] = [-3, 0, 3, 7, 15, 30];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Days from the due date: −3 is three days before it.
    pub day: i32,
    /// The provider's template name per language; unset languages use the built-in reminder
    /// of the step's kind (before due, due today, overdue).
    #[serde(default)]
    pub templates: BTreeMap<Language, String>,
    /// The step's own templates were registered with cobro's opt-out quick reply as their
    /// first button (payload `OPTOUT`). Off by default: cobro cannot see a tenant's template,
    /// and a button component the template lacks makes Meta refuse the send (132000) while a
    /// payload on another button would opt out a debtor who pressed, say, "Pay". The built-in
    /// names always have it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opt_out_button: bool,
    /// Channels in order of preference for this step; empty: the tenant's order.
    #[serde(default)]
    pub channels: Vec<ChannelKind>,
}

/// What happens after the last step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndAction {
    /// Automation stops.
    #[default]
    Stop,
    /// A person takes over (the account is flagged for the agents).
    Handoff,
    /// The account goes to the legal process.
    Legal,
}

impl EndAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EndAction::Stop => "stop",
            EndAction::Handoff => "handoff",
            EndAction::Legal => "legal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    pub id: String,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub end: EndAction,
}

impl Default for Strategy {
    fn default() -> Self {
        Self::on_days("default", &DEFAULT_STEPS)
    }
}

impl Strategy {
    /// A strategy of plain steps on these days (tests, examples).
    pub fn on_days(id: &str, days: &[i32]) -> Self {
        Self {
            id: id.into(),
            steps: days
                .iter()
                .map(|d| Step {
                    day: *d,
                    templates: BTreeMap::new(),
                    opt_out_button: false,
                    channels: vec![],
                })
                .collect(),
            end: EndAction::Stop,
        }
    }

    pub fn step(&self, day: i32) -> Option<&Step> {
        self.steps.iter().find(|s| s.day == day)
    }

    /// The latest step whose day has come (`None` before the first).
    pub fn current_step(&self, due: Date, today: Date) -> Option<i32> {
        let offset = (today - due).get_days();
        self.steps
            .iter()
            .map(|s| s.day)
            .filter(|s| *s <= offset)
            .max()
    }

    /// The first step strictly after `step` (or the first one when `None`), with its date.
    pub fn step_after(&self, due: Date, step: Option<i32>) -> Option<(i32, Date)> {
        let s = self
            .steps
            .iter()
            .map(|s| s.day)
            .filter(|s| step.is_none_or(|c| *s > c))
            .min()?;
        Some((s, due.checked_add(jiff::Span::new().days(s)).ok()?))
    }

    /// The deterministic id of the decision for one step of one due date: the same step is
    /// never decided twice, however often the schedule fires.
    pub fn decision_id(due: Date, step: i32) -> String {
        format!("{due}:d{step:+}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn steps_follow_the_due_date() {
        let s = Strategy::default();
        let due = date(2026, 3, 10);
        assert_eq!(s.current_step(due, date(2026, 3, 6)), None);
        assert_eq!(s.current_step(due, date(2026, 3, 7)), Some(-3));
        assert_eq!(s.current_step(due, date(2026, 3, 15)), Some(3));
        assert_eq!(s.current_step(due, date(2026, 6, 15)), Some(30));
        assert_eq!(s.step_after(due, None), Some((-3, date(2026, 3, 7))));
        assert_eq!(s.step_after(due, Some(3)), Some((7, date(2026, 3, 17))));
        assert_eq!(s.step_after(due, Some(30)), None);
        assert_eq!(Strategy::decision_id(due, -3), "2026-03-10:d-3");
        assert_eq!(Strategy::decision_id(due, 7), "2026-03-10:d+7");
    }
}
