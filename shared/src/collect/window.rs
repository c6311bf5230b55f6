//! Contact windows: when a debtor may be written to, in the debtor's own time zone.

use jiff::{civil::Weekday, tz::TimeZone, Timestamp, Zoned};

/// Hours [start, end) on the allowed weekdays, local to the debtor. The default is a common
/// floor of the laws cobro knows (08–20 or stricter, no Sundays); the compliance engine
/// replaces it with per-country policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactWindow {
    pub start_hour: i8,
    pub end_hour: i8,
    pub days: Vec<Weekday>,
}

impl Default for ContactWindow {
    fn default() -> Self {
        use Weekday::*;
        Self {
            start_hour: 9,
            end_hour: 20,
            days: vec![Monday, Tuesday, Wednesday, Thursday, Friday, Saturday],
        }
    }
}

impl ContactWindow {
    pub fn is_open(&self, at: &Zoned) -> bool {
        self.days.contains(&at.weekday())
            && at.hour() >= self.start_hour
            && at.hour() < self.end_hour
    }

    /// `now` if the window is open, else the next moment it opens, in `tz`.
    pub fn next_open(&self, now: Timestamp, tz: &TimeZone) -> Timestamp {
        let local = now.to_zoned(tz.clone());
        if self.is_open(&local) {
            return now;
        }
        let mut day = local.date();
        for _ in 0..8 {
            if let Ok(start) = day.at(self.start_hour, 0, 0, 0).to_zoned(tz.clone()) {
                if start.timestamp() > now && self.days.contains(&start.weekday()) {
                    return start.timestamp();
                }
            }
            day = day.tomorrow().expect("date in range");
        }
        // No allowed day at all: never open. A week on, to be decided again.
        now.checked_add(jiff::SignedDuration::from_hours(24 * 7))
            .expect("in range")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn windows_are_local_to_the_debtor() {
        let w = ContactWindow::default();
        let santiago = TimeZone::get("America/Santiago").unwrap();
        // 2026-03-10 is a Tuesday. 12:00Z is 09:00 in Santiago (UTC-3 in March).
        assert_eq!(
            w.next_open(ts("2026-03-10T12:30:00Z"), &santiago),
            ts("2026-03-10T12:30:00Z")
        );
        // 03:00 local: wait until 09:00 local.
        assert_eq!(
            w.next_open(ts("2026-03-10T06:00:00Z"), &santiago),
            ts("2026-03-10T12:00:00Z")
        );
        // Saturday 21:00 local → Monday 09:00 local (no Sundays).
        assert_eq!(
            w.next_open(ts("2026-03-15T00:00:00Z"), &santiago),
            ts("2026-03-16T12:00:00Z")
        );
    }
}
