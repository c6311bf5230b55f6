//! The collection strategy: steps keyed on days relative to the due date. This is the built-in
//! default; per-tenant strategies as data come with the compliance engine.

use jiff::civil::Date;

/// Days relative to the due date on which a reminder goes out: a pre-due reminder, the due
/// day, then follow-ups. After the last step automation stops.
pub const DEFAULT_STEPS: [i32; 6] = [-3, 0, 3, 7, 15, 30];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    steps: Vec<i32>,
}

impl Default for Strategy {
    fn default() -> Self {
        Self {
            steps: DEFAULT_STEPS.to_vec(),
        }
    }
}

impl Strategy {
    /// The latest step whose day has come (`None` before the first).
    pub fn current_step(&self, due: Date, today: Date) -> Option<i32> {
        let offset = (today - due).get_days();
        self.steps.iter().copied().filter(|s| *s <= offset).max()
    }

    /// The first step strictly after `step` (or the first one when `None`), with its date.
    pub fn step_after(&self, due: Date, step: Option<i32>) -> Option<(i32, Date)> {
        let s = self
            .steps
            .iter()
            .copied()
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
