//! `Clock`: the current time, settable in tests and in the local stack.

use jiff::{SignedDuration, Timestamp};
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// System time shifted by an offset that can be set or advanced: time moves on by itself, and a
/// demo or test can jump ahead ("three days later") without touching the data.
#[derive(Default)]
pub struct ShiftedClock {
    offset: Mutex<SignedDuration>,
}

impl ShiftedClock {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn advance(&self, by: SignedDuration) {
        let mut o = self.offset.lock().expect("clock lock");
        *o = o.saturating_add(by);
    }
    pub fn set(&self, to: Timestamp) {
        *self.offset.lock().expect("clock lock") = to.duration_since(Timestamp::now());
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        let offset = *self.offset.lock().expect("clock lock");
        Timestamp::now()
            .saturating_add(offset)
            .expect("timestamp in range")
    }
}

/// A clock that stands still until moved: deterministic tests.
pub struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    pub fn at(t: Timestamp) -> Self {
        Self(Mutex::new(t))
    }
    pub fn set(&self, t: Timestamp) {
        *self.0.lock().expect("clock lock") = t;
    }
    pub fn advance(&self, by: SignedDuration) {
        let mut t = self.0.lock().expect("clock lock");
        *t = t.saturating_add(by).expect("timestamp in range");
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}
