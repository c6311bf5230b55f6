//! Deciding who is contacted, when, on which channel and with what words.

pub mod decide;
pub mod strategy;
pub mod templates;
pub mod window;

pub use decide::{Contact, Decider, Verdict};
